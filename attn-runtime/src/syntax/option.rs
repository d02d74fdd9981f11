//! The attention options as written: on a kernel, `#[attn(causal, scale = 0.125)]`; in a body,
//! the named arguments `attention(q, k, v, causal = true, scale = 0.125)`. One parser for both
//! forms, and one validation: [`AttentionOptions::validate`], whose error is reported at the
//! option's value.

use super::parse::float_literal_value;
use crate::options::AttentionOptions;
use syn::{Expr, Ident, ext::IdentExt};

/// The attention options, as `#[attn(..)]` and the named arguments of `attention` spell them.
pub const ATTENTION_OPTIONS: [&str; 2] = ["causal", "scale"];

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
