//! The lowering of `transformer.attention`: the fused kernel of [`crate::flash`] (inserted into
//! the module and called), or, in the baseline's `loops` modules, the composition of the
//! primitives' lowerings.

use super::builder::{Builder, DimSource, LowerResult, TensorTy, dtype_of, tensor_ty};
use crate::ffi::mlir::detach;
use crate::flash::{Spec, Tiling};
use attn_runtime::shape::{self, Dim, MaskRule};
use melior::{
    Context,
    ir::{
        OperationRef, Value,
        operation::{OperationBuilder, OperationLike, WalkOrder, WalkResult},
    },
};

impl<'c, 'a> Builder<'c, 'a> {
    /// `softmax(q k^T * scale + mask) v` (causal by `positions` or `causal`): the fused
    /// kernel, or, in the baseline's `loops` modules, the composition of the primitives'
    /// lowerings.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attention(
        &self,
        q: Value<'c, 'a>,
        k: Value<'c, 'a>,
        v: Value<'c, 'a>,
        scale: Value<'c, 'a>,
        mask: Option<Value<'c, 'a>>,
        positions: Option<Value<'c, 'a>>,
        causal: bool,
    ) -> LowerResult<'c, 'a> {
        let (tq, tk, tv) = (tensor_ty(q)?, tensor_ty(k)?, tensor_ty(v)?);
        // The shared shape rule (`attn_runtime::shape`), on the op's tensor types.
        let dims_of = |t: &TensorTy| t.dims.iter().map(|&d| Dim::from(d)).collect::<Vec<_>>();
        let dims = shape::attention_dims(&dims_of(&tq), &dims_of(&tk), &dims_of(&tv))
            .map_err(|e| format!("attention: {e}"))?;
        let r = dims.rank;
        if tk.elem != tq.elem || tv.elem != tq.elem {
            return Err(format!(
                "q, k and v must have the same element type, got {}, {} and {}",
                tq.show(),
                tk.show(),
                tv.show()
            ));
        }
        let mask_rank = match mask {
            Some(m) => {
                let tm = tensor_ty(m)?;
                if tm.elem != "f32" {
                    return Err(format!("the mask must be an f32 tensor, got {}", tm.show()));
                }
                shape::mask_dims(&dims_of(&tm), &dims, MaskRule::Compiled)
                    .map_err(|e| format!("attention: {e}"))?;
                Some(tm.rank())
            }
            None => None,
        };
        if positions.is_some() && (r != 2 || causal) {
            return Err(format!(
                "explicit causal positions need rank-2 operands and no `causal`, got {}",
                tq.show()
            ));
        }
        let spec = Spec {
            rank: r,
            dtype: dtype_of(&tq.elem).ok_or_else(|| format!("unsupported {}", tq.show()))?,
            mask_rank,
            positions: positions.is_some(),
            causal,
        };
        if self.fused {
            return self.flash_attention(q, k, v, scale, &spec, &tq, &tv, mask, positions);
        }
        if mask.is_some()
            || positions.is_some()
            || causal
            || !matches!(tq.elem.as_str(), "f32" | "f64")
        {
            return Err(format!(
                "the loop pipeline (the baseline) composes plain f32/f64 attention only, got {} with options",
                tq.show()
            ));
        }
        let kt = self.transpose(k)?;
        let scores = self.matmul(q, kt)?;
        let s = self.extract_scalar(scale)?;
        let scaled = self.scale_by(scores, s)?;
        let p = self.softmax(scaled)?;
        self.matmul(p, v)
    }

    /// Attention as a call to the fused function of `spec` (`flash.rs`, inserted into the
    /// module by the pass, inlined later): dynamic-shape operands, the scale as a scalar, and
    /// a `tensor.empty` destination.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn flash_attention(
        &self,
        q: Value<'c, 'a>,
        k: Value<'c, 'a>,
        v: Value<'c, 'a>,
        scale: Value<'c, 'a>,
        spec: &Spec,
        tq: &TensorTy,
        tv: &TensorTy,
        mask: Option<Value<'c, 'a>>,
        positions: Option<Value<'c, 'a>>,
    ) -> LowerResult<'c, 'a> {
        let r = tq.rank();
        let dynamic = |rank: usize, elem: &str| TensorTy {
            dims: vec![None; rank],
            elem: elem.to_string(),
        };
        let dyn_text = dynamic(r, &tq.elem).text();
        let s = self.extract_scalar(scale)?;
        let mut sources: Vec<DimSource> =
            (0..r - 1).map(|i| DimSource { of: q, index: i }).collect();
        sources.push(DimSource {
            of: v,
            index: r - 1,
        });
        let init = self.empty(&dynamic(r, &tq.elem), &sources)?;
        let mut operands = vec![
            self.cast(q, &dyn_text)?,
            self.cast(k, &dyn_text)?,
            self.cast(v, &dyn_text)?,
            s,
        ];
        if let (Some(m), Some(mr)) = (mask, spec.mask_rank) {
            operands.push(self.cast(m, &dynamic(mr, "f32").text())?);
        }
        if let Some(p) = positions {
            operands.push(self.cast(p, "tensor<?xf32>")?);
        }
        operands.push(init);
        let symbol = spec.symbol(&self.tiling);
        let call = self.insert(
            OperationBuilder::new("func.call", self.loc)
                .add_operands(&operands)
                .add_attributes(&[(self.ident("callee"), self.attr(&format!("@{symbol}"))?)])
                .add_results(&[self.ty(&dyn_text)?])
                .build(),
        )?;
        let mut out_ty = tq.clone();
        out_ty.dims[r - 1] = tv.dims[r - 1];
        self.cast(call, &out_ty.text())
    }
}

/// Inserts into `module` the private fused-attention functions that its f32
/// `transformer.attention` ops of rank 2 to 4 will call (see `flash.rs`).
pub(super) fn insert_flash_kernels(
    ctx: &Context,
    module: &OperationRef,
    tiling: &Tiling,
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
            && let Some(spec) = attention_spec(&op)
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
    super::append_functions(ctx, module, &text, &existing, "the fused attention kernel")
}

/// The optional operands of a `transformer.attention` op: the mask has the rank of q (>= 2),
/// the positions rank 1.
pub(super) fn attention_optional<'c, 'a>(
    op: &OperationRef<'c, 'a>,
) -> (Option<Value<'c, 'a>>, Option<Value<'c, 'a>>) {
    let (mut mask, mut positions) = (None, None);
    for i in 4..op.operand_count() {
        if let Ok(x) = op.operand(i) {
            match TensorTy::of(x).map(|t| t.rank()) {
                Some(1) => positions = Some(detach(x)),
                _ => mask = Some(detach(x)),
            }
        }
    }
    (mask, positions)
}

/// The fused function a `transformer.attention` op calls, if its types have one.
fn attention_spec(op: &OperationRef) -> Option<Spec> {
    let tq = TensorTy::of(op.operand(0).ok()?)?;
    let (mask, positions) = attention_optional(op);
    Some(Spec {
        rank: tq.rank(),
        dtype: dtype_of(&tq.elem)?,
        mask_rank: mask.and_then(TensorTy::of).map(|t| t.rank()),
        positions: positions.is_some(),
        causal: attention_causal(op),
    })
}

/// The `causal` attribute of a `transformer.attention` op.
pub(super) fn attention_causal(op: &OperationRef) -> bool {
    op.attribute("causal")
        .is_ok_and(|a| a.to_string() == "true")
}
