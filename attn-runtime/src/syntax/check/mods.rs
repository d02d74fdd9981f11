//! Checking the score and mask mods of an `attention`: converting their closures
//! ([`super::super::mods`]), resolving the inputs they read, and proving them well-typed and in
//! bounds for the attention's static ranges ([`crate::mods::check`]).

use super::super::kernel::{AttentionMods, Value};
use super::super::mods::{Spans, convert};
use super::Builder;
use crate::DType;
use crate::mods::{self, Dims, InputInfo, ModKind, ModPair};
use crate::shape::AttentionDims;
use quote::ToTokens;
use syn::{Ident, ext::IdentExt};

impl Builder {
    /// The mods `given` (kind and closure, at most one of each kind) of an attention of `dims`,
    /// checked; `None` when there are none.
    pub(super) fn attention_mods(
        &mut self,
        given: &[(ModKind, syn::Expr)],
        dims: &AttentionDims,
    ) -> syn::Result<Option<AttentionMods>> {
        if given.is_empty() {
            return Ok(None);
        }
        let mut inputs: Vec<Value> = Vec::new();
        let mut pair = ModPair::default();
        let mut converted: Vec<(ModKind, Spans, &syn::Expr)> = Vec::new();
        for (kind, closure) in given {
            let env = &self.env;
            let mut resolve = |id: &Ident| -> syn::Result<usize> {
                let name = id.unraw().to_string();
                match env.get(&name) {
                    Some(v @ Value::Input(_)) => Ok(match inputs.iter().position(|x| x == v) {
                        Some(n) => n,
                        None => {
                            inputs.push(*v);
                            inputs.len() - 1
                        }
                    }),
                    Some(Value::Node(_)) => Err(syn::Error::new(
                        id.span(),
                        format!(
                            "`{name}` is a computed value: a mod reads the kernel's inputs only"
                        ),
                    )),
                    None => Err(syn::Error::new(
                        id.span(),
                        format!(
                            "unknown name `{name}`: expected a parameter of the mod or an input \
                             of the kernel"
                        ),
                    )),
                }
            };
            let (expr, spans) = convert(*kind, closure, &mut resolve)?;
            match kind {
                ModKind::Score => pair.score = Some(expr),
                ModKind::Mask => pair.mask = Some(expr),
            }
            converted.push((*kind, spans, closure));
        }
        let infos: Vec<InputInfo> = inputs
            .iter()
            .map(|v| {
                let Value::Input(i) = *v else {
                    unreachable!("mods read inputs only")
                };
                InputInfo {
                    name: self.kernel.inputs[i].name.clone(),
                    shape: self.kernel.inputs[i].shape.clone(),
                    int: self.declared[i].is_some_and(|(d, _)| d == DType::I32),
                }
            })
            .collect();
        let d = Dims {
            b: dims.b,
            h: dims.hq,
            sq: dims.sq,
            sk: dims.sk,
        };
        for (kind, spans, closure) in &converted {
            let expr = match kind {
                ModKind::Score => pair.score.as_ref(),
                ModKind::Mask => pair.mask.as_ref(),
            };
            if let Some(expr) = expr {
                mods::check(expr, *kind, &d, &infos)
                    .map_err(|e| spans.error(e.node, &closure.to_token_stream(), &e.message))?;
            }
        }
        for (v, (_, _, closure)) in inputs.iter().zip(converted.iter().cycle()) {
            self.use_in_mod(*v, closure)?;
        }
        Ok(Some(AttentionMods { inputs, mods: pair }))
    }

    /// Records that a mod reads input `v`: as the type it is declared with (`as i32`), else
    /// f32, which its other uses must agree with.
    fn use_in_mod(&mut self, v: Value, at: &syn::Expr) -> syn::Result<()> {
        let Value::Input(i) = v else { return Ok(()) };
        let want = self.declared[i].map_or(DType::F32, |(d, _)| d);
        match self.input_uses[i] {
            Some((d, _)) if d != want => Err(syn::Error::new_spanned(
                at,
                format!(
                    "input `{}` is read by a mod as a {want} table and used as a {d} tensor \
                     elsewhere: declare two inputs",
                    self.kernel.inputs[i].name
                ),
            )),
            _ => {
                self.input_uses[i] = Some((want, "a table read by a mod"));
                Ok(())
            }
        }
    }
}
