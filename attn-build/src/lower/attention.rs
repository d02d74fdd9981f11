//! The lowering of `transformer.attention`: the fused kernel of [`crate::flash`] (inserted into
//! the module and called), or, in the baseline's `loops` modules, the composition of the
//! primitives' lowerings.

use super::builder::{Builder, DimSource};
use super::mods::ModTable;
use super::types::{TensorTy, dtype_of, segments, tensor_ty};
use crate::ffi::mlir::detach;
use crate::flash::Spec;
use crate::graph::{ATTENTION_OPTIONAL, MOD_INPUTS};
use attn_runtime::shape::{self, Dim, MaskRule};
use melior::ir::{
    OperationRef, Value,
    operation::{OperationBuilder, OperationLike},
};

/// The operands and attributes of one `transformer.attention` op.
pub(super) struct Operands<'c, 'a> {
    q: Value<'c, 'a>,
    k: Value<'c, 'a>,
    v: Value<'c, 'a>,
    scale: Value<'c, 'a>,
    /// The optional operands, in [`ATTENTION_OPTIONAL`] order.
    optional: [Option<Value<'c, 'a>>; 6],
    causal: bool,
    lse: bool,
    /// The inputs of the op's user mods (its last, variadic segment).
    mod_inputs: Vec<Value<'c, 'a>>,
    /// The key of its mods in the pass's table ([`super::mods::key_of`]).
    mods_key: Option<String>,
}

impl<'c, 'a> Operands<'c, 'a> {
    /// Reads the op's operands by its `operandSegmentSizes`.
    pub(super) fn of(op: &OperationRef<'c, 'a>) -> Result<Self, String> {
        let sizes = segments(op, "operandSegmentSizes")?;
        let expected = 4 + ATTENTION_OPTIONAL.len() + MOD_INPUTS;
        if sizes.len() != expected {
            return Err(format!(
                "transformer.attention has {} operand segments, expected {expected}",
                sizes.len(),
            ));
        }
        let operand = |i: usize| {
            op.operand(i)
                .map(detach)
                .map_err(|_| format!("transformer.attention: missing operand #{i}"))
        };
        let mut optional = [None; 6];
        let mut at = 4;
        for (slot, &n) in optional.iter_mut().zip(&sizes[4..]) {
            if n > 0 {
                *slot = Some(operand(at)?);
                at += 1;
            }
        }
        let slots = &sizes[4 + ATTENTION_OPTIONAL.len()..];
        let n_mod = slots.iter().take_while(|&&n| n > 0).count();
        if slots[n_mod..].iter().any(|&n| n > 0) {
            return Err(
                "transformer.attention: the mod inputs must fill their slots in order".into(),
            );
        }
        let mod_inputs = (at..at + n_mod).map(operand).collect::<Result<_, _>>()?;
        let results = segments(op, "resultSegmentSizes").unwrap_or_else(|_| vec![1, 0]);
        Ok(Operands {
            q: operand(0)?,
            k: operand(1)?,
            v: operand(2)?,
            scale: operand(3)?,
            optional,
            causal: op
                .attribute("causal")
                .is_ok_and(|a| a.to_string() == "true"),
            lse: results.get(1).is_some_and(|&n| n > 0),
            mod_inputs,
            mods_key: super::mods::key_of(op),
        })
    }

    fn get(&self, name: &str) -> Option<Value<'c, 'a>> {
        let i = ATTENTION_OPTIONAL.iter().position(|n| *n == name)?;
        self.optional[i]
    }

    /// The fused function this op calls (its mods from `table`).
    pub(super) fn spec(&self, table: &ModTable) -> Result<Spec, String> {
        let tq = tensor_ty(self.q)?;
        let has = |n: &str| self.get(n).is_some();
        let mods = match &self.mods_key {
            Some(key) => Some(
                table
                    .get(key)
                    .cloned()
                    .ok_or_else(|| format!("internal: the mods `{key}` were not read"))?,
            ),
            None if !self.mod_inputs.is_empty() => {
                return Err("`mod_inputs` without a `score_mod` or `mask_mod`".into());
            }
            None => None,
        };
        Ok(Spec {
            rank: tq.rank(),
            dtype: dtype_of(&tq.elem).ok_or_else(|| format!("unsupported {}", tq.show()))?,
            mask_rank: self.get("mask").and_then(TensorTy::of).map(|t| t.rank()),
            positions: has("positions"),
            causal: self.causal,
            window: has("window"),
            softcap: has("softcap"),
            sinks: has("sinks"),
            alibi: has("slopes"),
            lse: self.lse,
            mods,
        })
    }
}

impl<'c, 'a> Builder<'c, 'a> {
    /// `softmax(q k^T * scale + mask) v` with every option: the fused kernel, or, in the
    /// baseline's `loops` modules, the composition of the primitives' lowerings. Returns the
    /// output and, when the op has it, the rows' log-sum-exp.
    pub(super) fn attention(&self, o: &Operands<'c, 'a>) -> Result<Vec<Value<'c, 'a>>, String> {
        let (tq, tk, tv) = (tensor_ty(o.q)?, tensor_ty(o.k)?, tensor_ty(o.v)?);
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
        if let Some(m) = o.get("mask") {
            let tm = tensor_ty(m)?;
            if tm.elem != "f32" {
                return Err(format!("the mask must be an f32 tensor, got {}", tm.show()));
            }
            shape::mask_dims(&dims_of(&tm), &dims, MaskRule::Compiled)
                .map_err(|e| format!("attention: {e}"))?;
        }
        if o.get("positions").is_some() && (r != 2 || o.causal) {
            return Err(format!(
                "explicit positions need rank-2 operands and no `causal`, got {}",
                tq.show()
            ));
        }
        for name in ["positions", "window", "softcap", "sinks", "slopes"] {
            if let Some(x) = o.get(name) {
                let t = tensor_ty(x)?;
                if t.elem != "f32" {
                    return Err(format!("`{name}` must be an f32 tensor, got {}", t.show()));
                }
            }
        }
        let spec = o.spec(&self.mods)?;
        if self.fused {
            return self.flash_attention(o, &spec, &tq, &tv);
        }
        let options = o.optional.iter().any(Option::is_some)
            || o.causal
            || o.lse
            || o.mods_key.is_some()
            || !o.mod_inputs.is_empty();
        if options || !matches!(tq.elem.as_str(), "f32" | "f64") {
            return Err(format!(
                "the loop pipeline (the baseline) composes plain f32/f64 attention only, got {} with options",
                tq.show()
            ));
        }
        let kt = self.transpose(o.k)?;
        let scores = self.matmul(o.q, kt)?;
        let s = self.extract_scalar(o.scale)?;
        let scaled = self.scale_by(scores, s)?;
        let p = self.softmax(scaled)?;
        Ok(vec![self.matmul(p, o.v)?])
    }

    /// Attention as a call to the fused function of `spec` (inserted into the module by the
    /// pass, inlined later): dynamic-shape operands, the scale as a scalar, and a
    /// `tensor.empty` destination.
    fn flash_attention(
        &self,
        o: &Operands<'c, 'a>,
        spec: &Spec,
        tq: &TensorTy,
        tv: &TensorTy,
    ) -> Result<Vec<Value<'c, 'a>>, String> {
        let r = tq.rank();
        let dynamic = |rank: usize, elem: &str| TensorTy {
            dims: vec![None; rank],
            elem: elem.to_string(),
        };
        let dyn_text = dynamic(r, &tq.elem).text();
        let s = self.extract_scalar(o.scale)?;
        let mut sources: Vec<DimSource> = (0..r - 1)
            .map(|i| DimSource { of: o.q, index: i })
            .collect();
        sources.push(DimSource {
            of: o.v,
            index: r - 1,
        });
        let init = self.empty(&dynamic(r, &tq.elem), &sources)?;
        let mut operands = vec![
            self.cast(o.q, &dyn_text)?,
            self.cast(o.k, &dyn_text)?,
            self.cast(o.v, &dyn_text)?,
            s,
        ];
        for x in o.optional.iter().flatten() {
            // Every optional operand to its dynamic shape; the window keeps its [2].
            let t = tensor_ty(*x)?;
            let text = if t.dims == [Some(2)] && o.get("window") == Some(*x) {
                t.text()
            } else {
                dynamic(t.rank(), &t.elem).text()
            };
            operands.push(self.cast(*x, &text)?);
        }
        for x in &o.mod_inputs {
            let t = tensor_ty(*x)?;
            operands.push(self.cast(*x, &dynamic(t.rank(), &t.elem).text())?);
        }
        operands.push(init);
        let symbol = spec.symbol(&self.tiling);
        let ct = if tq.elem == "f64" { "f64" } else { "f32" };
        let lse_dyn = dynamic(r - 1, ct).text();
        let mut results = vec![self.ty(&dyn_text)?];
        if o.lse {
            results.push(self.ty(&lse_dyn)?);
        }
        let call = self.rw.insert(
            OperationBuilder::new("func.call", self.loc)
                .add_operands(&operands)
                .add_attributes(&[(self.ident("callee"), self.attr(&format!("@{symbol}"))?)])
                .add_results(&results)
                .build()
                .map_err(|e| format!("internal: building the call failed: {e}"))?,
        );
        let result = |i: usize| -> Result<Value<'c, 'a>, String> {
            let v: Value = call.result(i).map_err(|e| e.to_string())?.into();
            Ok(detach(v))
        };
        let mut out_ty = tq.clone();
        out_ty.dims[r - 1] = tv.dims[r - 1];
        let mut values = vec![self.cast(result(0)?, &out_ty.text())?];
        if o.lse {
            let lse_ty = TensorTy {
                dims: tq.dims[..r - 1].to_vec(),
                elem: ct.to_string(),
            };
            values.push(self.cast(result(1)?, &lse_ty.text())?);
        }
        Ok(values)
    }
}
