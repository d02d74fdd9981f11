//! Lowering `transformer` -> `linalg` on tensors, as rewrite patterns driven by MLIR's greedy
//! pattern driver inside an external pass (`convert-transformer-to-linalg`).
//!
//! Each op of the dialect has one entry in [`PATTERNS`] (an op without one is an error, not a
//! silent fallback):
//! - `matmul` -> the register-tiled kernel of [`crate::primitives`] for f32, else
//!   `tensor.empty` + `linalg.fill` (zero) + `linalg.matmul` / `linalg.batch_matmul`;
//! - `transpose` -> `linalg.transpose` of the last two dims;
//! - `softmax` -> the vectorized kernel for f32, else max reduction, `exp(x - max)`, sum
//!   reduction, division (all `linalg.generic`);
//! - `add` / `mul` / `scale` -> elementwise `linalg.generic` (rank-0 right operands broadcast);
//! - `attention` (f32, f64, bf16, f16; rank 2 to 4; GQA heads, masks, causal) -> a call to the
//!   fused flash-attention kernel of [`crate::flash`], a private function the pass inserts into
//!   the module (the pipeline inlines it right after this pass); in `attn.codegen = "loops"`
//!   modules (the baseline), f32/f64 attention without options -> the composition: transpose,
//!   matmul, scale, softmax, matmul.
//! - bf16/f16 tensors are accepted by `attention` only (storage types, computed in f32).
//!
//! A pattern that meets an op it cannot lower (ill-shaped, unsupported element type) emits an
//! error diagnostic at the op; the pass then fails instead of leaving `transformer` ops behind.

mod attention;
mod builder;
mod fuse;
mod insert;
mod linalg;
mod mods;
mod types;

pub use fuse::fuse_attention;

use crate::ffi::mlir::{detach, emit_error, module_pass, op_pattern};
use crate::flash::Tiling;
use builder::{Builder, LowerResult};
use melior::{
    Context, GreedyRewriteDriverConfig, RewritePatternSet,
    apply_patterns_and_fold_greedily_with_op,
    dialect::DialectHandle,
    ir::{
        OperationRef, Value,
        attribute::FloatAttribute,
        operation::{OperationLike, WalkOrder, WalkResult},
        r#type::TypeId,
    },
    pass::Pass,
};
use types::{TensorTy, tensor_ty};

/// Lowers one matched op of the pattern's kind; returns the replacement values (one per result
/// of the op).
type Lowering =
    for<'c, 'a> fn(&OperationRef<'c, 'a>, &Builder<'c, 'a>) -> Result<Vec<Value<'c, 'a>>, String>;

/// Operand `i` of `op`, or an error naming the op.
fn operand<'c, 'a>(op: &OperationRef<'c, 'a>, i: usize) -> Result<Value<'c, 'a>, String> {
    op.operand(i)
        .map(detach)
        .map_err(|_| format!("{}: missing operand #{i}", op_name(op)))
}

fn op_name(op: &OperationRef) -> String {
    op.name()
        .as_string_ref()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// One lowering per op of the dialect (the names of [`crate::dialect::OPS`]).
const PATTERNS: [(&str, Lowering); 7] = [
    ("matmul", |op, b| {
        one(b.matmul(operand(op, 0)?, operand(op, 1)?))
    }),
    ("transpose", |op, b| one(b.transpose(operand(op, 0)?))),
    ("softmax", |op, b| one(b.softmax(operand(op, 0)?))),
    ("add", |op, b| {
        one(b.elementwise("arith.addf", operand(op, 0)?, operand(op, 1)?))
    }),
    ("mul", |op, b| {
        one(b.elementwise("arith.mulf", operand(op, 0)?, operand(op, 1)?))
    }),
    ("scale", |op, b| {
        let x = operand(op, 0)?;
        let tx = tensor_ty(x)?;
        let factor = op
            .attribute("factor")
            .ok()
            .and_then(|a| FloatAttribute::try_from(a).ok())
            .ok_or("transformer.scale needs a float `factor` attribute")?;
        let c = b.float(factor.value(), &tx.elem)?;
        one(b.scale_by(x, c))
    }),
    ("attention", |op, b| {
        b.attention(&attention::Operands::of(op)?)
    }),
];

/// The single replacement value of a one-result op.
fn one<'c, 'a>(v: LowerResult<'c, 'a>) -> Result<Vec<Value<'c, 'a>>, String> {
    v.map(|v| vec![v])
}

/// The lowering of the dialect op `name` (without the `transformer.` prefix).
fn lowering_of(name: &str) -> Option<Lowering> {
    PATTERNS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Rejects 16-bit operands of the primitives (storage types for `attention` only).
fn check_half(op: &OperationRef) -> Result<(), String> {
    if op_name(op) == "transformer.attention" {
        return Ok(());
    }
    for i in 0..op.operand_count() {
        if let Some(t) = TensorTy::of(operand(op, i)?)
            && matches!(t.elem.as_str(), "bf16" | "f16")
        {
            return Err(format!(
                "{} tensors are supported by `attention` only (the other primitives compute in f32 or f64), got {}",
                t.elem,
                t.show()
            ));
        }
    }
    Ok(())
}

fn add_pattern(
    set: &RewritePatternSet,
    context: &Context,
    op_name: String,
    lower: Lowering,
    tiling: Tiling,
    fused: bool,
    mods: std::rc::Rc<mods::ModTable>,
) {
    let root = op_name.clone();
    let pattern = op_pattern(&root, context, move |op, ctx, rw| {
        rw.set_insertion_point_before(op);
        let builder = Builder {
            ctx,
            loc: op.location(),
            rw,
            tiling,
            fused,
            mods: mods.clone(),
        };
        match check_half(&op).and_then(|()| lower(&op, &builder)) {
            Ok(values) => {
                rw.replace_op_with_values(op, &values);
                true
            }
            Err(message) => {
                emit_error(&op, &format!("cannot lower `{op_name}`: {message}"));
                false
            }
        }
    });
    set.add(pattern);
}

#[repr(align(8))]
struct PassId;
static CONVERT_TRANSFORMER_TO_LINALG: PassId = PassId;

/// The `convert-transformer-to-linalg` pass (runs on `builtin.module`); fused attention kernels
/// use `tiling`.
pub fn convert_transformer_to_linalg(tiling: Tiling) -> Pass {
    module_pass(
        move |module, ctx, pass| {
            // `module attributes {attn.codegen = "loops"}`: the tutorial's route, the baseline.
            let fused = !module
                .attribute("attn.codegen")
                .is_ok_and(|a| a.to_string() == "\"loops\"");
            // The mods of the attention ops, read before any pattern folds their functions.
            let table = match mods::collect(&module) {
                Ok(t) => std::rc::Rc::new(t),
                Err(message) => {
                    emit_error(
                        &module,
                        &format!("cannot lower `transformer.attention`: {message}"),
                    );
                    pass.signal_failure();
                    return;
                }
            };
            let inserted = if fused {
                insert::flash_kernels(ctx, &module, &tiling, &table)
                    .and_then(|()| insert::primitive_kernels(ctx, &module, &tiling))
            } else {
                Ok(())
            };
            if let Err(message) = inserted {
                emit_error(&module, &message);
                pass.signal_failure();
                return;
            }
            let set = RewritePatternSet::new(ctx);
            for op in crate::dialect::OPS {
                let Some(lower) = lowering_of(op) else {
                    emit_error(
                        &module,
                        &format!("internal: no lowering for `transformer.{op}`"),
                    );
                    pass.signal_failure();
                    return;
                };
                add_pattern(
                    &set,
                    ctx,
                    format!("transformer.{op}"),
                    lower,
                    tiling,
                    fused,
                    table.clone(),
                );
            }
            let config = GreedyRewriteDriverConfig::new();
            let applied = apply_patterns_and_fold_greedily_with_op(module, set.freeze(), &config);
            let mut leftover = None;
            module.walk(WalkOrder::PreOrder, |op| {
                let name = op_name(&op);
                if name.starts_with("transformer.") {
                    leftover = Some(name);
                    WalkResult::Interrupt
                } else {
                    WalkResult::Advance
                }
            });
            if applied.is_err() || leftover.is_some() {
                if let Some(name) = leftover {
                    emit_error(&module, &format!("`{name}` was not lowered to linalg"));
                }
                pass.signal_failure();
            }
        },
        TypeId::create(&CONVERT_TRANSFORMER_TO_LINALG),
        "ConvertTransformerToLinalg",
        "convert-transformer-to-linalg",
        "Lower transformer-dialect ops to linalg on tensors",
        &[DialectHandle::func()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_op_has_one_lowering() {
        for op in crate::dialect::OPS {
            assert!(lowering_of(op).is_some(), "{op}");
        }
        assert_eq!(PATTERNS.len(), crate::dialect::OPS.len());
        assert!(lowering_of("frobnicate").is_none());
    }
}
