//! `fuse-attention`: a pass on the `transformer` dialect that recognizes attention written as
//! the tutorial's composition and replaces it by one `transformer.attention`, which lowers to
//! the fused kernel:
//!
//! ```text
//! matmul(softmax(scale(matmul(q, transpose(k)), c)), v)          -> attention(q, k, v, scale = c)
//! matmul(softmax(mul(matmul(q, transpose(k)), c)), v)             (c a rank-0 tensor: the scale)
//! matmul(softmax(add(scale(matmul(q, transpose(k)), c), m)), v)  -> .., mask = m (f32, either order)
//! ```
//!
//! for q `[.., Sq, D]`, k `[.., Sk, D]`, v `[.., Sk, Dv]` of rank 2 or 3 (batched: heads), f32
//! or f64. Each intermediate value must have no other use (else it is computed anyway and
//! nothing is gained). The result is the same, except that a row whose every score is `-inf`
//! (a mask removing every key) gives zeros instead of the composition's NaN. Modules of the
//! baseline (`attn.codegen = "loops"`) are left alone. The pipeline dumps the IR after it as
//! stage `fused` (`01b-fused.mlir`).

use super::types::TensorTy;
use crate::ffi::mlir::{module_pass, use_count};
use crate::graph::{ATTENTION_OPTIONAL, MOD_INPUTS, float_literal};
use melior::{
    Context, IrRewriter,
    dialect::DialectHandle,
    ir::{
        Attribute, Identifier, OperationRef, Type, Value, ValueLike,
        attribute::FloatAttribute,
        operation::{OperationBuilder, OperationLike, OperationResult, WalkOrder, WalkResult},
        r#type::TypeId,
    },
    pass::Pass,
};

fn name_of(op: &OperationRef) -> String {
    op.name()
        .as_string_ref()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The op named `name` that defines `v`, if `v` has no other use.
fn producer<'c, 'a>(v: Value<'c, 'a>, name: &str) -> Option<OperationRef<'c, 'a>> {
    let op = OperationResult::try_from(v).ok()?.owner();
    (name_of(&op) == name && use_count(v) == 1).then_some(op)
}

fn operand<'c, 'a>(op: &OperationRef<'c, 'a>, i: usize) -> Option<Value<'c, 'a>> {
    op.operand(i).ok()
}

/// Where the scale comes from.
enum ScaleOf<'c, 'a> {
    /// `transformer.scale`'s factor.
    Factor(f64),
    /// The rank-0 operand of `transformer.mul`.
    Tensor(Value<'c, 'a>),
}

/// A matched composition: the ops to erase (users first) and the attention's operands.
struct Matched<'c, 'a> {
    ops: Vec<OperationRef<'c, 'a>>,
    q: Value<'c, 'a>,
    k: Value<'c, 'a>,
    v: Value<'c, 'a>,
    scale: ScaleOf<'c, 'a>,
    mask: Option<Value<'c, 'a>>,
    /// The compute type (`f32` or `f64`).
    elem: String,
}

fn rank0(v: Value) -> bool {
    TensorTy::of(v).is_some_and(|t| t.rank() == 0)
}

/// `scale(s, c)` or `mul(s, c)` (c rank 0, either side) of a single-use value: the op, `s`
/// and the scale.
fn scaled<'c, 'a>(
    v: Value<'c, 'a>,
) -> Option<(OperationRef<'c, 'a>, Value<'c, 'a>, ScaleOf<'c, 'a>)> {
    if let Some(op) = producer(v, "transformer.scale") {
        let f = op
            .attribute("factor")
            .ok()
            .and_then(|a| FloatAttribute::try_from(a).ok())?
            .value();
        let s = operand(&op, 0)?;
        return Some((op, s, ScaleOf::Factor(f)));
    }
    let op = producer(v, "transformer.mul")?;
    let (a, b) = (operand(&op, 0)?, operand(&op, 1)?);
    if rank0(b) && !rank0(a) {
        Some((op, a, ScaleOf::Tensor(b)))
    } else if rank0(a) && !rank0(b) {
        Some((op, b, ScaleOf::Tensor(a)))
    } else {
        None
    }
}

/// Matches the composition whose outer `matmul` is `outer`.
fn matched<'c, 'a>(outer: OperationRef<'c, 'a>) -> Option<Matched<'c, 'a>> {
    if name_of(&outer) != "transformer.matmul" {
        return None;
    }
    let sm = producer(operand(&outer, 0)?, "transformer.softmax")?;
    let x = operand(&sm, 0)?;
    let mut ops = vec![outer, sm];
    let (sc, s, scale, mask) = match producer(x, "transformer.add") {
        Some(add) => {
            let (a, b) = (operand(&add, 0)?, operand(&add, 1)?);
            ops.push(add);
            match scaled(a) {
                Some((op, s, c)) => (op, s, c, Some(b)),
                None => {
                    let (op, s, c) = scaled(b)?;
                    (op, s, c, Some(a))
                }
            }
        }
        None => {
            let (op, s, c) = scaled(x)?;
            (op, s, c, None)
        }
    };
    ops.push(sc);
    let mm = producer(s, "transformer.matmul")?;
    let t = producer(operand(&mm, 1)?, "transformer.transpose")?;
    let (q, k, v) = (operand(&mm, 0)?, operand(&t, 0)?, operand(&outer, 1)?);
    ops.push(mm);
    ops.push(t);
    // Types: q, k, v of one float type and rank 2 or 3; the scale's and the mask's as
    // attention takes them.
    let (tq, tk, tv) = (TensorTy::of(q)?, TensorTy::of(k)?, TensorTy::of(v)?);
    let elem = tq.elem.clone();
    let ok = matches!(elem.as_str(), "f32" | "f64")
        && (2..=3).contains(&tq.rank())
        && tk.rank() == tq.rank()
        && tv.rank() == tq.rank()
        && tk.elem == elem
        && tv.elem == elem;
    if !ok {
        return None;
    }
    if let ScaleOf::Tensor(c) = &scale
        && TensorTy::of(*c)?.elem != elem
    {
        return None;
    }
    if let Some(m) = mask {
        let tm = TensorTy::of(m)?;
        if tm.elem != "f32" || tm.rank() != tq.rank() {
            return None;
        }
    }
    Some(Matched {
        ops,
        q,
        k,
        v,
        scale,
        mask,
        elem,
    })
}

/// Replaces the composition `m` by one `transformer.attention`.
fn rewrite(ctx: &Context, m: Matched) -> Result<(), String> {
    let owner = IrRewriter::new(ctx);
    let rw = owner.as_rewriter_base();
    let outer = m.ops[0];
    rw.set_insertion_point_before(outer);
    let loc = outer.location();
    let attr =
        |s: &str| Attribute::parse(ctx, s).ok_or_else(|| format!("internal: attribute `{s}`"));
    let ty = |s: &str| Type::parse(ctx, s).ok_or_else(|| format!("internal: type `{s}`"));
    let id = |s: &str| Identifier::new(ctx, s);
    let scale: Value = match m.scale {
        ScaleOf::Tensor(v) => v,
        ScaleOf::Factor(f) => {
            let t = format!("tensor<{}>", m.elem);
            let lit = float_literal(f as f32);
            let c = OperationBuilder::new("arith.constant", loc)
                .add_attributes(&[(id("value"), attr(&format!("dense<{lit}> : {t}"))?)])
                .add_results(&[ty(&t)?])
                .build()
                .map_err(|e| e.to_string())?;
            let c = rw.insert(c);
            c.result(0).map_err(|e| e.to_string())?.into()
        }
    };
    let mut operands = vec![m.q, m.k, m.v, scale];
    operands.extend(m.mask);
    let mut sizes = vec!["1"; 4];
    sizes.push(if m.mask.is_some() { "1" } else { "0" });
    sizes.extend(vec!["0"; ATTENTION_OPTIONAL.len() - 1 + MOD_INPUTS]);
    let out: Value = outer.result(0).map_err(|e| e.to_string())?.into();
    let op = OperationBuilder::new("transformer.attention", loc)
        .add_operands(&operands)
        .add_attributes(&[
            (id("causal"), attr("false")?),
            (
                id("operandSegmentSizes"),
                attr(&format!("array<i32: {}>", sizes.join(", ")))?,
            ),
            (id("resultSegmentSizes"), attr("array<i32: 1, 0>")?),
        ])
        .add_results(&[out.r#type()])
        .build()
        .map_err(|e| e.to_string())?;
    let op = rw.insert(op);
    let new: Value = op.result(0).map_err(|e| e.to_string())?.into();
    rw.replace_all_uses_with(out, new);
    for dead in m.ops {
        rw.erase_op(dead);
    }
    Ok(())
}

#[repr(align(8))]
struct PassId;
static FUSE_ATTENTION: PassId = PassId;

/// The `fuse-attention` pass (runs on `builtin.module`).
pub fn fuse_attention() -> Pass {
    module_pass(
        |module, ctx, pass| {
            let loops = module
                .attribute("attn.codegen")
                .is_ok_and(|a| a.to_string() == "\"loops\"");
            if loops {
                return;
            }
            // One composition per walk (the walk stops after a rewrite), until none is left.
            loop {
                let mut result: Option<Result<(), String>> = None;
                module.walk(WalkOrder::PostOrder, |op| match matched(op) {
                    Some(m) => {
                        result = Some(rewrite(ctx, m));
                        WalkResult::Interrupt
                    }
                    None => WalkResult::Advance,
                });
                match result {
                    None => break,
                    Some(Ok(())) => {}
                    Some(Err(message)) => {
                        crate::ffi::mlir::emit_error(
                            &module,
                            &format!("fuse-attention: {message}"),
                        );
                        pass.signal_failure();
                        return;
                    }
                }
            }
        },
        TypeId::create(&FUSE_ATTENTION),
        "FuseAttention",
        "fuse-attention",
        "Replace matmul(softmax(scale(matmul(q, transpose(k)))), v) by transformer.attention",
        &[DialectHandle::func()],
    )
}
