//! Register-tiled f32 kernels for the primitives `transformer.matmul` ([`matmul`]) and
//! `transformer.softmax` ([`softmax`]), generated with the typed emitter like the fused
//! attention kernel: `convert-transformer-to-linalg` inserts them as private functions and calls
//! them in place of each f32 op; the `inline` pass then specializes every call for its static
//! shapes. f64 keeps the naive `linalg` lowering.

pub mod matmul;
pub mod softmax;

use crate::emit;
use attn_runtime::tuning::Tiling;
use melior::{
    Context,
    ir::{
        OperationRef, ValueLike,
        operation::{OperationLike, WalkOrder, WalkResult},
    },
};

/// The MLIR text of a module holding the matmul kernel of every rank in `matmul_ranks`
/// (`(a, b, init: tensor<?x..xf32>) -> tensor`) and the softmax kernel of every rank in
/// `softmax_ranks` (`(x, init) -> tensor`).
pub fn module_text(matmul_ranks: &[usize], softmax_ranks: &[usize], t: &Tiling) -> String {
    let funcs = matmul_ranks
        .iter()
        .map(|&r| matmul::function(r, t))
        .chain(softmax_ranks.iter().map(|&r| softmax::function(r, t)));
    emit::module(funcs)
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
pub(crate) fn insert_kernels(
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
    let text = module_text(&mm, &sm, tiling);
    crate::lower::append_functions(ctx, module, &text, &existing, "the primitive kernels")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_text_parses_with_every_tiling_and_rank() {
        let c = crate::pipeline::Compiler::new().unwrap();
        for t in [Tiling::AVX2, Tiling::AVX512] {
            let text = module_text(&[2, 3, 4], &[1, 2, 3, 4], &t);
            assert!(
                melior::ir::Module::parse(c.context(), &text).is_some(),
                "{t:?}:\n{text}"
            );
        }
    }
}
