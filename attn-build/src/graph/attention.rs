//! Attention in the graph: [`Graph::attention_with`] and its [`AttentionOptions`]: the
//! plain-data options shared with every layer (`attn_runtime::options`), checked by their one
//! validation, and the operands that go with them; shapes checked by the shared rule of
//! `attn_runtime::shape` (dims may be dynamic), with compiled kernels' mask rule
//! ([`MaskRule::Compiled`]).

use super::{Dim, Graph, Op, TensorType, Value};
use crate::error::GraphError;
use attn_runtime::DType;
use attn_runtime::options::{self, default_scale};
use attn_runtime::shape::{self, AttentionShapeError, Extent, MaskRule};

/// The options of [`Graph::attention_with`]: the plain-data options every layer shares
/// (`causal`, a constant `scale`), and the operands that go with them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionOptions {
    /// `causal` (bottom-right aligned at any rank: query `i` sees the keys `j <= i + Sk - Sq`;
    /// fully masked key blocks are skipped; excludes `positions`) and a constant `scale`,
    /// rounded to the kernel's compute type (f64 keeps every digit for f64 kernels). Without
    /// `options.scale` and `scale_input`, the scale is `1/sqrt(D)` (then D must be static).
    pub options: options::AttentionOptions,
    /// The scale as a rank-0 input of the compute type (f64 for f64 kernels, else f32), given
    /// at run time. Excludes `options.scale`.
    pub scale_input: Option<Value>,
    /// An additive f32 mask added to the scaled scores; `-inf` removes a key. `[Sq, Sk]`
    /// (shared by every batch and head), or of q's rank with each leading dim 1 (broadcast) or
    /// equal to q's ([`MaskRule::Compiled`]). A row whose every key is removed gives zeros.
    pub mask: Option<Value>,
    /// Explicit positions (rank 2 only): f32 `[Sq]` holding integers (exact below 2^24). Without
    /// a window, query row `i` sees the keys `j <= positions[i]` (causal by positions); with one,
    /// they are the centres of the rows' windows. Fully masked key blocks are skipped. Excludes
    /// `options.causal`.
    pub positions: Option<Value>,
    /// The window `(left, right)` at run time: f32 `[2]` (values of 2^30 and more, or infinite:
    /// unbounded on that side); query `i` sees the keys `p(i) - left <= j <= p(i) + right`.
    /// Excludes `options.window`.
    pub window_input: Option<Value>,
    /// The softcap at run time: f32 `[]`; not positive: no softcapping. Excludes
    /// `options.softcap`.
    pub softcap_input: Option<Value>,
    /// Attention sinks: f32 `[Hq]` (one logit per query head) for q of rank 3/4, `[Sq]` (one per
    /// row) at rank 2; `-inf`: none.
    pub sinks: Option<Value>,
    /// ALiBi slopes: f32 `[Hq]` for q of rank 3/4, `[Sq]` at rank 2; the bias of key `j` for
    /// query `i` is `-slope |p(i) - j|`.
    pub alibi: Option<Value>,
    /// User score and mask mods ([`Graph::mods`]): the score mod maps each score after the
    /// scale and softcap, before ALiBi and the masks; the mask mod removes the keys for which it
    /// is false, after every other mask. Needs static batch, head and sequence dims.
    pub mods: Option<super::ModsRef>,
}

impl From<Scale> for AttentionOptions {
    /// No option but the scale.
    fn from(scale: Scale) -> Self {
        match scale {
            Scale::Constant(c) => AttentionOptions {
                options: options::AttentionOptions::new().with_scale(c),
                ..Default::default()
            },
            Scale::Input(v) => AttentionOptions {
                scale_input: Some(v),
                ..Default::default()
            },
        }
    }
}

/// The optional operands of `transformer.attention`, in their order after `(q, k, v, scale)`
/// (the op's `operandSegmentSizes` has one entry for each, after four 1s).
pub const ATTENTION_OPTIONAL: [&str; 6] =
    ["mask", "positions", "window", "softcap", "sinks", "slopes"];

/// The most inputs the mods of one attention may read (one optional operand of
/// `transformer.attention` each).
pub const MOD_INPUTS: usize = 6;

/// Where the attention scale comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// A constant compiled into the kernel, rounded to the kernel's compute type (f64 keeps
    /// every digit for f64 kernels).
    Constant(f64),
    /// A rank-0 graph input, given at run time.
    Input(Value),
}

impl Graph {
    /// [`Graph::attention_with`], also returning the log-sum-exp of every query row
    /// (`[.., Hq, Sq]`, f64 for f64 kernels, else f32): `ln(sum_j e^{s_ij})` over the final
    /// scores (`+ e^{sink}` with sinks); `-inf` for a row without visible keys.
    pub fn attention_lse(
        &mut self,
        q: Value,
        k: Value,
        v: Value,
        options: AttentionOptions,
    ) -> Result<(Value, Value), GraphError> {
        let out = self.attention_with(q, k, v, options)?;
        let ty = self.ty(out).clone();
        let r = ty.rank();
        let lse_ty = TensorType::new(ty.element.compute(), &ty.dims[..r - 1]);
        Ok((out, self.push(Op::Lse(out), lse_ty)))
    }

    /// Checks the inputs of the window, softcap, sinks and ALiBi options.
    fn check_variant_inputs(
        &self,
        q: Value,
        options: &AttentionOptions,
        dims: &shape::AttentionDims<Dim>,
    ) -> Result<(), GraphError> {
        const OP: &str = "attention";
        let o = &options.options;
        if options.window_input.is_some() && o.window.is_some() {
            return Err(Self::err(
                OP,
                "the window is given twice: option `window` and an input".into(),
            ));
        }
        if options.softcap_input.is_some() && o.softcap.is_some() {
            return Err(Self::err(
                OP,
                "the softcap is given twice: option `softcap` and an input".into(),
            ));
        }
        let f32_of = |g: &Graph, v: Value, what: &str, want: &[Dim]| -> Result<(), GraphError> {
            let t = g.check(v, OP)?;
            let ok = t.element == DType::F32
                && t.rank() == want.len()
                && t.dims.iter().zip(want).all(|(a, b)| a.unify(*b).is_some());
            if ok {
                return Ok(());
            }
            let want = want
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            Err(Self::err(
                OP,
                format!(
                    "{what} must be f32 [{want}] for q {}; got {}",
                    g.describe(q),
                    g.describe(v)
                ),
            ))
        };
        if let Some(w) = options.window_input {
            f32_of(self, w, "the window input", &[Dim::Static(2)])?;
        }
        if let Some(c) = options.softcap_input {
            f32_of(self, c, "the softcap input", &[])?;
        }
        let per_head = if dims.rank == 2 { dims.sq } else { dims.hq };
        let what = if dims.rank == 2 {
            "[Sq] (one per row)"
        } else {
            "[Hq] (one per query head)"
        };
        for (name, x) in [("sinks", options.sinks), ("alibi", options.alibi)] {
            if let Some(x) = x {
                f32_of(self, x, &format!("option `{name}` {what}"), &[per_head])?;
            }
        }
        Ok(())
    }

    /// `transformer.attention`: `softmax(q k^T * scale) v` for q `[.., Hq, Sq, D]`,
    /// k `[.., Hkv, Sk, D]`, v `[.., Hkv, Sk, Dv]` (ranks 2 to 4, equal batch dims,
    /// `Hq % Hkv == 0`), giving `[.., Hq, Sq, Dv]`.
    pub fn attention(
        &mut self,
        q: Value,
        k: Value,
        v: Value,
        scale: Scale,
    ) -> Result<Value, GraphError> {
        self.attention_with(q, k, v, AttentionOptions::from(scale))
    }

    /// [`Graph::attention`] with every option (see [`AttentionOptions`]).
    pub fn attention_with(
        &mut self,
        q: Value,
        k: Value,
        v: Value,
        options: AttentionOptions,
    ) -> Result<Value, GraphError> {
        const OP: &str = "attention";
        let (tq, tk, tv) = (
            self.check(q, OP)?.clone(),
            self.check(k, OP)?.clone(),
            self.check(v, OP)?.clone(),
        );
        self.same_element(OP, q, k)?;
        self.same_element(OP, q, v)?;
        let shape_err = |e: AttentionShapeError<Dim>| Self::err(OP, e.to_string());
        let dims = shape::attention_dims(&tq.dims, &tk.dims, &tv.dims).map_err(shape_err)?;
        options
            .options
            .validate()
            .map_err(|e| Self::err(OP, e.to_string()))?;
        self.check_variant_inputs(q, &options, &dims)?;
        if let Some(m) = options.mods {
            self.check_mods(m, &dims)?;
        }
        let scale = match (options.scale_input, options.options.scale) {
            (Some(s), Some(c)) => {
                return Err(Self::err(
                    OP,
                    format!(
                        "the scale is given twice: option `scale` = {c} and the input {}",
                        self.describe(s)
                    ),
                ));
            }
            (Some(s), None) => {
                let compute = tq.element.compute();
                let ts = self.check(s, OP)?;
                if ts.rank() != 0 || ts.element != compute {
                    return Err(Self::err(
                        OP,
                        format!(
                            "the scale must be a rank-0 {} tensor, got {}",
                            compute.name(),
                            self.describe(s)
                        ),
                    ));
                }
                Scale::Input(s)
            }
            (None, Some(c)) => Scale::Constant(c),
            (None, None) => match dims.d.size() {
                Some(d) => Scale::Constant(default_scale(d)),
                None => {
                    return Err(Self::err(
                        OP,
                        format!(
                            "the default scale 1/sqrt(D) needs a static head dim D, but q is {}: \
                             give option `scale` or a scale input",
                            self.describe(q)
                        ),
                    ));
                }
            },
        };
        if options.positions.is_some() && (dims.rank != 2 || options.options.causal) {
            return Err(Self::err(
                OP,
                format!(
                    "explicit causal positions need rank-2 q, k and v ([Sq, D]) and exclude \
                     option `causal`; got q {}",
                    self.describe(q)
                ),
            ));
        }
        if let Some(m) = options.mask {
            let tm = self.check(m, OP)?.clone();
            if tm.element != DType::F32 {
                return Err(Self::err(
                    OP,
                    format!("the mask must be f32, got {}", self.describe(m)),
                ));
            }
            shape::mask_dims(&tm.dims, &dims, MaskRule::Compiled).map_err(shape_err)?;
        }
        if let Some(p) = options.positions {
            let tp = self.check(p, OP)?.clone();
            let ok =
                tp.element == DType::F32 && tp.rank() == 1 && tp.dims[0].unify(dims.sq).is_some();
            if !ok {
                return Err(Self::err(
                    OP,
                    format!(
                        "the positions must be f32 [Sq] = [{}] for q {}; got {}",
                        dims.sq,
                        self.describe(q),
                        self.describe(p)
                    ),
                ));
            }
        }
        Ok(self.push(
            Op::Attention {
                q,
                k,
                v,
                scale,
                options,
            },
            TensorType::new(tq.element, &dims.output()),
        ))
    }
}
