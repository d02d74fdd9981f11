//! Checking `attention`: its arguments, its options (parsed by [`option`](super::super::option),
//! validated by [`AttentionOptions::validate`]) and its shapes, by the shared rule of
//! [`crate::shape`] with compiled kernels' mask rule ([`MaskRule::Compiled`]).

use super::super::literal::float_literal_value;
use super::super::option::{self, Form};
use super::{At, Builder, Op, Value, show};
use crate::DType;
use crate::options::{AttentionOptions, default_scale};
use crate::shape::{self, AttentionShapeError, MaskRule, Operand};
use syn::{Expr, ext::IdentExt, spanned::Spanned};

/// One `attention` to check: its operands with the tokens errors about them point at, and its
/// options (the kernel's, overridden by the call's named arguments).
pub(super) struct AttentionCall {
    pub(super) q: (Value, At),
    pub(super) k: (Value, At),
    pub(super) v: (Value, At),
    /// The mask operand.
    pub(super) mask: Option<(Value, At)>,
    /// The sink logits, f32 `[Hq]` (`[Sq]` at rank 2).
    pub(super) sinks: Option<(Value, At)>,
    /// The ALiBi slopes, f32 `[Hq]` (`[Sq]` at rank 2).
    pub(super) alibi: Option<(Value, At)>,
    /// The options; `scale: None` is `1/sqrt(D)`.
    pub(super) options: AttentionOptions,
    /// The score and mask mods as written (closures).
    pub(super) mods: Vec<(crate::mods::ModKind, Expr)>,
    /// The whole call (or the kernel's name, for the declaration form).
    pub(super) at: At,
}

const USAGE: &str = "`attention(q, k, v)`, optionally followed by a scale literal and the named \
     arguments `scale = <f32 literal>`, `mask = <f32 input>`, `causal = true | false`, \
     `window = (<left>, <right>)`, `softcap = <f32 literal>`, `sinks = <f32 input [Hq]>`, \
     `alibi = <f32 input [Hq]>`, `score_mod = |s, b, h, i, j| ..`, `mask_mod = |b, h, i, j| ..`";

/// The named arguments of `attention` that are operands (f32 tensors), not options.
const OPERANDS: [&str; 3] = ["mask", "sinks", "alibi"];

impl Builder {
    /// `attention(q, k, v)`, then optionally a scale literal, then named arguments: the
    /// operands `mask`, `sinks` and `alibi` (f32 tensors) and the attention options (`scale =
    /// <f32 literal>`, `causal = <bool literal>`, `window = (<int>, <int>)`, `softcap = <f32
    /// literal>`).
    pub(super) fn attention_call(
        &mut self,
        call: &syn::ExprCall,
        args: &[&Expr],
    ) -> syn::Result<Value> {
        let [q, k, v, rest @ ..] = args else {
            return Err(syn::Error::new_spanned(
                call,
                format!(
                    "`attention` takes q, k and v, got {} argument{}: {USAGE}",
                    args.len(),
                    if args.len() == 1 { "" } else { "s" }
                ),
            ));
        };
        let mut operand = |e: &Expr| -> syn::Result<(Value, At)> {
            Ok((self.eval(e)?, quote::ToTokens::to_token_stream(e)))
        };
        let (q, k, v) = (operand(q)?, operand(k)?, operand(v)?);
        let mut options = self.defaults;
        let mut given: Vec<&str> = Vec::new();
        // mask, sinks, alibi
        let mut operands: [Option<(Value, At)>; 3] = [None, None, None];
        let mut mods: Vec<(crate::mods::ModKind, Expr)> = Vec::new();
        for (i, a) in rest.iter().enumerate() {
            let Expr::Assign(assign) = a else {
                if i == 0 {
                    // A positional scale.
                    options.scale = Some(f64::from(float_literal_value(a, "the attention scale")?));
                    options
                        .validate()
                        .map_err(|e| syn::Error::new_spanned(a, e.to_string()))?;
                    given.push("scale");
                    continue;
                }
                return Err(syn::Error::new_spanned(
                    a,
                    format!("expected a named argument: {USAGE}"),
                ));
            };
            let key = match &*assign.left {
                Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
                _ => None,
            };
            let key_span = assign.left.span();
            let name = key.map(|k| k.unraw().to_string()).unwrap_or_default();
            let operand_slot = OPERANDS.iter().position(|o| *o == name);
            let mod_kind = super::super::mods::kind_of(&name);
            if given.contains(&name.as_str())
                || operand_slot.is_some_and(|i| operands[i].is_some())
                || mod_kind.is_some_and(|k| mods.iter().any(|(g, _)| *g == k))
            {
                return Err(syn::Error::new(
                    key_span,
                    format!("`{name}` is given twice in this `attention`"),
                ));
            }
            if let Some(kind) = mod_kind {
                mods.push((kind, (*assign.right).clone()));
                continue;
            }
            if let Some(i) = operand_slot {
                let m = self.eval(&assign.right)?;
                operands[i] = Some((m, quote::ToTokens::to_token_stream(&assign.right)));
                continue;
            }
            let set = match key {
                Some(key) => option::set(&mut options, key, Some(&assign.right), Form::Argument)?,
                None => None,
            };
            match set {
                Some(option) => given.push(option),
                None => {
                    return Err(syn::Error::new(
                        key_span,
                        format!("unknown argument of `attention`: {USAGE}"),
                    ));
                }
            }
        }
        let [mask, sinks, alibi] = operands;
        self.attention(AttentionCall {
            q,
            k,
            v,
            mask,
            sinks,
            alibi,
            options,
            mods,
            at: quote::ToTokens::to_token_stream(call),
        })
    }

    /// Checks one `attention` and adds it to the kernel.
    pub(super) fn attention(&mut self, c: AttentionCall) -> syn::Result<Value> {
        let dtype = self.kernel.dtype;
        for (v, at) in [&c.q, &c.k, &c.v] {
            self.use_as(*v, dtype, "", at)?;
        }
        let (q, k, v) = (c.q.0, c.k.0, c.v.0);
        let (sq, sk, sv) = (self.shape(q), self.shape(k), self.shape(v));
        // The tokens of the argument at fault.
        let at = |e: AttentionShapeError<usize>| {
            let tokens = match e.arg() {
                Operand::Q => &c.q.1,
                Operand::K => &c.k.1,
                Operand::V => &c.v.1,
                Operand::Mask => c.mask.as_ref().map_or(&c.at, |m| &m.1),
            };
            syn::Error::new_spanned(tokens, format!("`attention`: {e}"))
        };
        let dims = shape::attention_dims(&sq, &sk, &sv).map_err(at)?;
        if let Some((n, span)) = self.kv_heads {
            if dims.rank < 3 {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "`kv_heads = {n}` needs heads: q, k and v of rank 3 ([H, S, D]) or 4 \
                         ([B, H, S, D]); got q {}, k {}",
                        show(&sq),
                        show(&sk)
                    ),
                ));
            }
            if dims.hkv != n {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "`kv_heads = {n}`, but k {} and v {} have {} key/value heads (dim {}; \
                         q {} has {} query heads)",
                        show(&sk),
                        show(&sv),
                        dims.hkv,
                        dims.rank - 3,
                        show(&sq),
                        dims.hq
                    ),
                ));
            }
        }
        if let Some((m, tokens)) = &c.mask {
            self.use_as(*m, DType::F32, "an attention mask", tokens)?;
            shape::mask_dims(&self.shape(*m), &dims, MaskRule::Compiled).map_err(at)?;
        }
        // One value per query head, or at rank 2 (one head) one per query row, as the graph
        // API takes them.
        let (n, per, unit) = if dims.rank == 2 {
            (dims.sq, "[Sq]", "query row (rank 2: one head)")
        } else {
            (dims.hq, "[Hq]", "query head")
        };
        for (name, role, what, operand) in [
            (
                "sinks",
                "`sinks` (the sink logits)",
                "one sink logit",
                &c.sinks,
            ),
            (
                "alibi",
                "`alibi` (the ALiBi slopes)",
                "one ALiBi slope",
                &c.alibi,
            ),
        ] {
            let Some((x, tokens)) = operand else { continue };
            self.use_as(*x, DType::F32, role, tokens)?;
            let s = self.shape(*x);
            if s != [n] {
                return Err(syn::Error::new_spanned(
                    tokens,
                    format!(
                        "`attention`: {name} has shape {} but must be {per} = [{n}]: {what} per \
                         {unit} of q {}",
                        show(&s),
                        show(&sq)
                    ),
                ));
            }
        }
        let mods = self.attention_mods(&c.mods, &dims)?.map(Box::new);
        // Every scale of a kernel spec is an f32 value: the default too.
        let scale = c
            .options
            .scale
            .unwrap_or_else(|| f64::from(default_scale(dims.d) as f32));
        self.attentions += 1;
        let op = Op::Attention {
            q,
            k,
            v,
            mask: c.mask.as_ref().map(|m| m.0),
            sinks: c.sinks.as_ref().map(|m| m.0),
            alibi: c.alibi.as_ref().map(|m| m.0),
            options: AttentionOptions {
                scale: Some(scale),
                ..c.options
            },
            mods,
        };
        self.push(op, dims.output(), &c.at)
    }
}
