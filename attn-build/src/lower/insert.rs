//! Inserting the generated kernels into the module being lowered: the fused attention
//! functions of [`crate::flash`] and the matmul/softmax kernels of [`crate::primitives`] are
//! generated as MLIR text for the ops the module holds, parsed, and appended as private
//! functions (the pipeline inlines them after the lowering).

use super::attention::Operands;
use super::mods::ModTable;
use crate::flash::Tiling;
use melior::{
    Context,
    ir::{
        BlockLike, OperationRef, RegionLike, ValueLike,
        operation::{OperationLike, WalkOrder, WalkResult},
    },
};

/// Inserts into `module` the private fused-attention functions that its `transformer.attention`
/// ops of rank 2 to 4 will call (see [`crate::flash`]).
pub(super) fn flash_kernels(
    ctx: &Context,
    module: &OperationRef,
    tiling: &Tiling,
    table: &ModTable,
) -> Result<(), String> {
    let mut specs = Vec::new();
    let mut existing = Vec::new();
    module.walk(WalkOrder::PreOrder, |op| {
        let name = op
            .name()
            .as_string_ref()
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name == "transformer.attention"
            && let Ok(spec) = Operands::of(&op).and_then(|o| o.spec(table))
            && (2..=4).contains(&spec.rank)
            && !specs.contains(&spec)
        {
            specs.push(spec);
        }
        if name == "func.func"
            && let Ok(a) = op.attribute("sym_name")
        {
            existing.push(a.to_string());
        }
        WalkResult::Advance
    });
    if specs.is_empty() {
        return Ok(());
    }
    let text = crate::flash::module_text(&specs, tiling);
    append_functions(ctx, module, &text, &existing, "the fused attention kernel")
}

/// The rank of an f32 ranked tensor type (`tensor<?x4xf32>` -> 2), `None` for anything else.
fn f32_rank(ty: &str) -> Option<usize> {
    let inner = ty.strip_prefix("tensor<")?.strip_suffix('>')?;
    let mut parts: Vec<&str> = inner.split('x').collect();
    if parts.pop()? != "f32" {
        return None;
    }
    Some(parts.len())
}

/// Inserts into `module` the private kernels that its f32 `transformer.matmul` and
/// `transformer.softmax` ops will call (also those of the composition an f32 attention of rank
/// above 4 lowers to).
pub(super) fn primitive_kernels(
    ctx: &Context,
    module: &OperationRef,
    tiling: &Tiling,
) -> Result<(), String> {
    let (mut mm, mut sm, mut existing) = (Vec::new(), Vec::new(), Vec::new());
    let add = |v: &mut Vec<usize>, r: usize| {
        if !v.contains(&r) {
            v.push(r);
        }
    };
    module.walk(WalkOrder::PreOrder, |op| {
        let name = op
            .name()
            .as_string_ref()
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name == "func.func" {
            if let Ok(a) = op.attribute("sym_name") {
                existing.push(a.to_string());
            }
            // Generated kernels (private) hold no transformer op: skip their large bodies.
            if op
                .attribute("sym_visibility")
                .is_ok_and(|v| v.to_string() == "\"private\"")
            {
                return WalkResult::Skip;
            }
            return WalkResult::Advance;
        }
        if !name.starts_with("transformer.") {
            return WalkResult::Advance;
        }
        let rank = op
            .operand(0)
            .ok()
            .and_then(|x| f32_rank(&x.r#type().to_string()));
        match (name.as_str(), rank) {
            ("transformer.matmul", Some(r)) if r >= 2 => add(&mut mm, r),
            ("transformer.softmax", Some(r)) if r >= 1 => add(&mut sm, r),
            ("transformer.attention", Some(r)) if r > 4 => {
                add(&mut mm, r);
                add(&mut sm, r);
            }
            _ => {}
        }
        WalkResult::Advance
    });
    if mm.is_empty() && sm.is_empty() {
        return Ok(());
    }
    let text = crate::primitives::module_text(&mm, &sm, tiling);
    append_functions(ctx, module, &text, &existing, "the primitive kernels")
}

/// Parses `text` (a module of private kernel functions generated as MLIR text) and appends to
/// `module` every function whose symbol is not in `existing`.
fn append_functions(
    ctx: &Context,
    module: &OperationRef,
    text: &str,
    existing: &[String],
    what: &str,
) -> Result<(), String> {
    let kernels = melior::ir::Module::parse(ctx, text)
        .ok_or_else(|| format!("internal: {what} does not parse"))?;
    let body = module
        .region(0)
        .ok()
        .and_then(|r| r.first_block())
        .ok_or("internal: the module has no body")?;
    let mut next = kernels.body().first_operation();
    while let Some(op) = next {
        let taken = op
            .attribute("sym_name")
            .map(|a| existing.contains(&a.to_string()))
            .unwrap_or(false);
        if !taken {
            body.append_operation((*op).clone());
        }
        next = op.next_in_block();
    }
    Ok(())
}
