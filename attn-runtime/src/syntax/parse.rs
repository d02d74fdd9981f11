//! Parsing of `attention!` bodies (no semantic checks: see `check`).

use proc_macro2::Span;
use syn::{
    Attribute, Expr, Ident, Token, Visibility, braced, bracketed,
    ext::IdentExt,
    parenthesized,
    parse::{Parse, ParseStream},
    punctuated::Punctuated,
    spanned::Spanned,
};

/// The body of one `attention! { ... }`: any number of kernels.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The kernels, in source order.
    pub kernels: Vec<KernelItem>,
}

/// One kernel as written: `#[attrs] vis fn name(params) -> [dims] (; | { body })`.
#[derive(Clone, Debug)]
pub struct KernelItem {
    /// Attributes other than `#[attn(..)]` (doc comments, `cfg`, lints), carried to the
    /// generated functions.
    pub attrs: Vec<Attribute>,
    /// What the `#[attn(..)]` attributes say.
    pub options: Options,
    /// Visibility of the generated functions.
    pub vis: Visibility,
    /// The kernel's name (also the name of the generated function).
    pub name: Ident,
    /// The inputs.
    pub params: Vec<Param>,
    /// The declared output shape.
    pub output: ShapeLit,
    /// The computation; `None` means `attention` of the three inputs.
    pub body: Option<Body>,
}

/// One input: `name: [dims]`.
#[derive(Clone, Debug)]
pub struct Param {
    /// Its name.
    pub name: Ident,
    /// Its shape.
    pub shape: ShapeLit,
}

/// A shape as written: `[128, 64]`.
#[derive(Clone, Debug)]
pub struct ShapeLit {
    /// The dims.
    pub dims: Vec<DimLit>,
    /// The span of the brackets and everything inside.
    pub span: Span,
}

/// One dim as written.
#[derive(Clone, Debug)]
pub struct DimLit {
    /// Its value, `None` when it does not fit `u64`.
    pub value: Option<u64>,
    /// The literal's span.
    pub span: Span,
}

/// A body: `let` bindings, then the result expression.
#[derive(Clone, Debug)]
pub struct Body {
    /// `let name = expr;` in order.
    pub lets: Vec<(Ident, Expr)>,
    /// The result.
    pub result: Expr,
}

/// The `#[attn(..)]` options of a kernel. Options are `key` or `key = value` pairs, so new ones
/// (kv heads, masks, dtypes) fit without changing the grammar.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// `scale = <f32 literal>`: the attention scale (default `1/sqrt(head dim)`).
    pub scale: Option<(f32, Span)>,
    /// `causal`: recognised so that it can be rejected with a clear message (not supported yet).
    pub causal: Option<Span>,
    /// `dtype = f32`: the element type (only f32 for now).
    pub dtype: Option<(Ident, Span)>,
}

/// The options `#[attn(..)]` knows, for messages.
pub const KNOWN_OPTIONS: &str = "`scale = <f32 literal>`, `dtype = f32`, `causal`";

impl Parse for Invocation {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut kernels = Vec::new();
        while !input.is_empty() {
            kernels.push(input.parse()?);
        }
        Ok(Invocation { kernels })
    }
}

impl Parse for KernelItem {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let all_attrs = input.call(Attribute::parse_outer)?;
        let mut attrs = Vec::new();
        let mut options = Options::default();
        for attr in all_attrs {
            if attr.path().is_ident("attn") {
                options.merge(&attr)?;
            } else {
                attrs.push(attr);
            }
        }
        let vis: Visibility = input.parse()?;
        if !input.peek(Token![fn]) {
            return Err(input.error(
                "expected a kernel: `fn name(q: [128, 64], k: [128, 64], v: [128, 64]) -> [128, 64];`",
            ));
        }
        input.parse::<Token![fn]>()?;
        let name = input.call(Ident::parse_any)?;
        let content;
        parenthesized!(content in input);
        let params = Punctuated::<Param, Token![,]>::parse_terminated(&content)?
            .into_iter()
            .collect();
        if !input.peek(Token![->]) {
            return Err(input.error("expected `-> [dims]`: a kernel declares its output shape"));
        }
        input.parse::<Token![->]>()?;
        let output: ShapeLit = input.parse()?;
        let body = if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
            None
        } else if input.peek(syn::token::Brace) {
            Some(input.parse()?)
        } else {
            return Err(input.error("expected `;` or a body `{ ... }` after the output shape"));
        };
        Ok(KernelItem {
            attrs,
            options,
            vis,
            name,
            params,
            output,
            body,
        })
    }
}

impl Parse for Param {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = input.call(Ident::parse_any)?;
        input.parse::<Token![:]>()?;
        Ok(Param {
            name,
            shape: input.parse()?,
        })
    }
}

impl Parse for ShapeLit {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if !input.peek(syn::token::Bracket) {
            return Err(input.error("expected a shape like `[128, 64]`"));
        }
        let content;
        let brackets = bracketed!(content in input);
        let lits = Punctuated::<syn::LitInt, Token![,]>::parse_terminated(&content)?;
        let mut dims = Vec::new();
        for lit in lits {
            if !matches!(lit.suffix(), "" | "usize") {
                return Err(syn::Error::new(
                    lit.span(),
                    "a dim is an unsuffixed integer literal",
                ));
            }
            dims.push(DimLit {
                value: lit.base10_parse::<u64>().ok(),
                span: lit.span(),
            });
        }
        Ok(ShapeLit {
            dims,
            span: brackets.span.join(),
        })
    }
}

impl Parse for Body {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        let braces = braced!(content in input);
        let mut lets = Vec::new();
        while content.peek(Token![let]) {
            content.parse::<Token![let]>()?;
            let name = content.call(Ident::parse_any)?;
            content.parse::<Token![=]>()?;
            let value: Expr = content.parse()?;
            content.parse::<Token![;]>()?;
            lets.push((name, value));
        }
        if content.is_empty() {
            return Err(syn::Error::new(
                braces.span.close(),
                "expected the kernel's result: an expression over the inputs",
            ));
        }
        let result: Expr = content.parse()?;
        if !content.is_empty() {
            return Err(content.error(
                "unexpected tokens after the result expression (a body is `let` bindings, then one expression)",
            ));
        }
        Ok(Body { lets, result })
    }
}

impl Options {
    fn merge(&mut self, attr: &Attribute) -> syn::Result<()> {
        if !matches!(attr.meta, syn::Meta::List(_)) {
            return Err(syn::Error::new_spanned(
                attr,
                format!("expected `#[attn(option, ..)]`; options: {KNOWN_OPTIONS}"),
            ));
        }
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            let span = meta.path.span();
            match key.as_str() {
                "causal" => {
                    if meta.input.peek(Token![=]) {
                        return Err(meta.error("`causal` takes no value"));
                    }
                    self.causal = Some(span);
                }
                "scale" => {
                    let expr: Expr = meta.value()?.parse()?;
                    let value = float_literal(&expr, "the attention scale")?;
                    self.scale = Some((value, expr.span()));
                }
                "dtype" => {
                    let ty: Ident = meta.value()?.parse()?;
                    let span = ty.span();
                    self.dtype = Some((ty, span));
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &meta.path,
                        format!(
                            "unknown option `{}`; `#[attn(..)]` accepts {KNOWN_OPTIONS}",
                            quote::ToTokens::to_token_stream(&meta.path)
                        ),
                    ));
                }
            }
            Ok(())
        })
    }
}

/// Reads an `f32` literal (`0.125`, `-2.0`, `1`, `0.5f32`), or fails at the expression.
pub(crate) fn float_literal(expr: &Expr, what: &str) -> syn::Result<f32> {
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
    let value = if negative { -value } else { value };
    if !value.is_finite() {
        return Err(syn::Error::new_spanned(
            expr,
            format!("{what} must be a finite f32, got {value}"),
        ));
    }
    Ok(value)
}
