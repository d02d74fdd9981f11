//! Parsing of `attention!` bodies (no semantic checks: see `check`).

use super::MAX_DIM;
use super::option::{self, Form};
use crate::DType;
use crate::options::AttentionOptions;
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
    /// The computation; `None` means `attention` of the inputs `q, k, v`, with the inputs
    /// after them, named `mask`, `sinks` and `alibi`, as its mask, sink logits and ALiBi slopes.
    pub body: Option<Body>,
}

/// One input: `name: [dims]`, optionally `as i32` or `as f32` (a table read by score and mask
/// mods).
#[derive(Clone, Debug)]
pub struct Param {
    /// Its name.
    pub name: Ident,
    /// Its shape.
    pub shape: ShapeLit,
    /// `as i32` / `as f32`: its declared element type, and the type's span.
    pub elem: Option<(DType, Span)>,
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

/// The `#[attn(..)]` options of a kernel. Options are `key` or `key = value` pairs, several per
/// attribute or spread over several attributes; each may be given once.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// The attention options (`causal`, `scale = <f32 literal>`, `window = (L, R)`,
    /// `softcap = <f32 literal>`), validated by [`AttentionOptions::validate`]: the defaults of
    /// every `attention` of the kernel, which its named arguments override. `scale` defaults to
    /// `1/sqrt(head dim)`; `causal` is bottom-right aligned causal masking (query `i` sees keys
    /// `j <= i + Sk - Sq`); `window` a sliding window around that position; `softcap` caps the
    /// scaled scores at `cap * tanh(s / cap)`.
    pub attention: AttentionOptions,
    /// The attention options given, each with the span of its keyword, in source order.
    pub attention_given: Vec<(&'static str, Span)>,
    /// `kv_heads = N`: asserts that k and v of every `attention` of the kernel have `N` heads
    /// (grouped-query attention); the span is the `kv_heads` keyword's.
    pub kv_heads: Option<(usize, Span)>,
    /// `dtype = f32 | f64 | bf16 | f16`: the element type of the kernel's tensors (masks stay
    /// f32); the span is the type's.
    pub dtype: Option<(DType, Span)>,
}

impl Options {
    /// The span of the keyword of attention option `option` (`"causal"`, `"scale"`), if given.
    pub fn attention_span(&self, option: &str) -> Option<Span> {
        self.attention_given
            .iter()
            .find(|(o, _)| *o == option)
            .map(|(_, s)| *s)
    }
}

/// The options `#[attn(..)]` knows, for messages.
pub const KNOWN_OPTIONS: &str = "`scale = <f32 literal>`, `causal`, `window = (<left>, <right>)`, \
     `softcap = <f32 literal>`, `kv_heads = <integer>`, `dtype = f32 | f64 | bf16 | f16`";

/// The element types a kernel may declare, as written in `dtype = ..`.
pub const DTYPES: &[(&str, DType)] = &[
    ("f32", DType::F32),
    ("f64", DType::F64),
    ("bf16", DType::BF16),
    ("f16", DType::F16),
];

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
        let shape = input.parse()?;
        // (Mods: `doc: [256] as i32`, a table of integers.)
        let elem = if input.peek(Token![as]) {
            input.parse::<Token![as]>()?;
            let ty = input.call(Ident::parse_any)?;
            match ty.to_string().as_str() {
                "i32" => Some((DType::I32, ty.span())),
                "f32" => Some((DType::F32, ty.span())),
                _ => {
                    return Err(syn::Error::new(
                        ty.span(),
                        "an input is declared `as i32` (integers) or `as f32`: the tables that score and mask mods read",
                    ));
                }
            }
        } else {
            None
        };
        Ok(Param { name, shape, elem })
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
            let given = match key.as_str() {
                "kv_heads" => self.kv_heads.is_some(),
                "dtype" => self.dtype.is_some(),
                _ => self.attention_span(&key).is_some(),
            };
            if given {
                return Err(syn::Error::new(
                    span,
                    format!("option `{key}` is given twice"),
                ));
            }
            if let Some(ident) = meta.path.get_ident() {
                let value: Option<Expr> = if meta.input.peek(Token![=]) {
                    Some(meta.value()?.parse()?)
                } else {
                    None
                };
                if let Some(option) =
                    option::set(&mut self.attention, ident, value.as_ref(), Form::Attribute)?
                {
                    self.attention_given.push((option, span));
                    return Ok(());
                }
                if matches!(key.as_str(), "kv_heads" | "dtype") {
                    let Some(value) = value else {
                        return Err(syn::Error::new(
                            span,
                            format!("`{key}` takes a value, like `{key} = ..`"),
                        ));
                    };
                    return self.kernel_option(&key, span, value);
                }
            }
            Err(syn::Error::new_spanned(
                &meta.path,
                format!(
                    "unknown option `{}`; `#[attn(..)]` accepts {KNOWN_OPTIONS}",
                    quote::ToTokens::to_token_stream(&meta.path)
                ),
            ))
        })
    }

    /// `kv_heads = N` and `dtype = ..`: the options of the kernel itself (not of its
    /// `attention`s); `span` is the keyword's.
    fn kernel_option(&mut self, key: &str, span: Span, expr: Expr) -> syn::Result<()> {
        if key == "kv_heads" {
            let n = match &expr {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(i),
                    ..
                }) if matches!(i.suffix(), "" | "usize") => i.base10_parse::<usize>().ok(),
                _ => None,
            };
            return match n {
                Some(n) if n >= 1 && n as u64 <= MAX_DIM => {
                    self.kv_heads = Some((n, span));
                    Ok(())
                }
                _ => Err(syn::Error::new_spanned(
                    &expr,
                    "`kv_heads` is the number of key/value heads: an integer literal \
                     between 1 and the number of query heads, like `kv_heads = 2`",
                )),
            };
        }
        let name = match &expr {
            Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(Ident::unraw),
            _ => None,
        };
        let Some(dtype) = name
            .as_ref()
            .and_then(|n| DTYPES.iter().find(|(d, _)| n == d))
            .map(|(_, d)| *d)
        else {
            let known = DTYPES
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(syn::Error::new_spanned(
                &expr,
                format!(
                    "unknown dtype `{}`: the element types are {known}",
                    quote::ToTokens::to_token_stream(&expr),
                ),
            ));
        };
        self.dtype = Some((dtype, expr.span()));
        Ok(())
    }
}
