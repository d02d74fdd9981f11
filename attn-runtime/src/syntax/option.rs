//! The attention options as written: on a kernel,
//! `#[attn(causal, scale = 0.125, window = (128, 0), softcap = 30.0)]`; in a body, the named
//! arguments `attention(q, k, v, causal = true, scale = 0.125, window = (128, 0))`. One parser
//! for both forms, and one validation: [`AttentionOptions::validate`], whose error is reported at
//! the option's value.

use super::literal::float_literal_value;
use crate::options::AttentionOptions;
use syn::{Expr, Ident, ext::IdentExt};

/// The attention options, as `#[attn(..)]` and the named arguments of `attention` spell them.
pub const ATTENTION_OPTIONS: [&str; 4] = ["causal", "scale", "window", "softcap"];

/// Where an attention option is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// `#[attn(causal)]`, `#[attn(scale = 0.125)]`: flags take no value.
    Attribute,
    /// `attention(q, k, v, causal = true, scale = 0.125)`: every option has a value.
    Argument,
}

/// Sets the option `key` of `options` from its `value` as written, and validates the result.
/// Returns the option's name, or `None` when `key` names no attention option.
pub(crate) fn set(
    options: &mut AttentionOptions,
    key: &Ident,
    value: Option<&Expr>,
    form: Form,
) -> syn::Result<Option<&'static str>> {
    let name = key.unraw().to_string();
    let Some(&option) = ATTENTION_OPTIONS.iter().find(|o| **o == name) else {
        return Ok(None);
    };
    match (option, value) {
        ("causal", None) if form == Form::Attribute => options.causal = true,
        ("causal", Some(_)) if form == Form::Attribute => {
            return Err(syn::Error::new(
                key.span(),
                "`causal` takes no value: write `#[attn(causal)]` (non-causal is the default)",
            ));
        }
        ("causal", Some(e)) => match e {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Bool(b),
                ..
            }) => options.causal = b.value,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`causal` is `true` or `false`: kernels are compiled ahead of time",
                ));
            }
        },
        ("scale", Some(e)) => {
            options.scale = Some(f64::from(float_literal_value(e, "the attention scale")?));
        }
        ("window", Some(e)) => options.window = Some(window(e)?),
        ("softcap", Some(e)) => {
            options.softcap = Some(float_literal_value(e, "the softcap")?);
        }
        (_, _) => {
            return Err(syn::Error::new(
                key.span(),
                format!("`{option}` takes a value, like `{option} = ..`"),
            ));
        }
    }
    options.validate().map_err(|e| match value {
        Some(v) => syn::Error::new_spanned(v, e.to_string()),
        None => syn::Error::new(key.span(), e.to_string()),
    })?;
    Ok(Some(option))
}

/// `(left, right)`: two integer literals, the keys a query sees before and after its position.
fn window(e: &Expr) -> syn::Result<(usize, usize)> {
    let bad = |at: &dyn quote::ToTokens, why: &str| {
        syn::Error::new_spanned(
            at,
            format!(
                "`window` is `(left, right)`, two integer literals: the keys a query sees before \
                 and after its position, like `window = (128, 0)`; {why}"
            ),
        )
    };
    let Expr::Tuple(t) = e else {
        return Err(bad(e, "got no tuple"));
    };
    if t.elems.len() != 2 {
        return Err(bad(e, &format!("got {} values", t.elems.len())));
    }
    let side = |x: &Expr| -> syn::Result<usize> {
        match x {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(i),
                ..
            }) if matches!(i.suffix(), "" | "usize") => i
                .base10_parse::<usize>()
                .map_err(|_| bad(x, "this one does not fit `usize`")),
            Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                ..
            }) => Err(bad(x, "a side cannot be negative")),
            _ => Err(bad(x, "this one is not an integer literal")),
        }
    };
    Ok((side(&t.elems[0])?, side(&t.elems[1])?))
}
