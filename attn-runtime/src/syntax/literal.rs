//! Literal values in kernel declarations and options: kernels are compiled ahead of time, so
//! numbers must be literals.

use syn::Expr;

/// Reads an `f32` literal (`0.125`, `-2.0`, `1`, `0.5f32`), or fails at the expression; the
/// value must be finite.
pub(crate) fn float_literal(expr: &Expr, what: &str) -> syn::Result<f32> {
    let value = float_literal_value(expr, what)?;
    if !value.is_finite() {
        return Err(syn::Error::new_spanned(
            expr,
            format!("{what} must be a finite f32, got {value}"),
        ));
    }
    Ok(value)
}

/// Reads an `f32` literal (`0.125`, `-2.0`, `1`, `0.5f32`; `1e39` reads as infinity), or fails
/// at the expression.
pub(crate) fn float_literal_value(expr: &Expr, what: &str) -> syn::Result<f32> {
    let (negative, lit) = match expr {
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => (true, &**expr),
        e => (false, e),
    };
    let bad = || {
        syn::Error::new_spanned(
            expr,
            format!(
                "{what} must be an f32 literal, like `0.125`: kernels are compiled ahead of time"
            ),
        )
    };
    let value: f32 = match lit {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Float(f),
            ..
        }) if matches!(f.suffix(), "" | "f32") => f.base10_parse().map_err(|_| bad())?,
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) if i.suffix().is_empty() => i.base10_parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    Ok(if negative { -value } else { value })
}
