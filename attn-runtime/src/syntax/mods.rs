//! `score_mod = |s, b, h, i, j| ..` and `mask_mod = |b, h, i, j| ..` as written: closures
//! converted to [`crate::mods::Expr`] trees, keeping the tokens of every node so that the checker's
//! errors point at the offending subexpression.

use crate::mods::{BinOp, Expr, Func, Kind, ModKind, Type, Var};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Ident, ext::IdentExt};

/// The tokens of every node of a converted mod, by node id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Spans(Vec<TokenStream>);

impl Spans {
    /// An error at node `id` (or at `fallback` if the id is unknown).
    pub(crate) fn error(&self, id: u32, fallback: &TokenStream, message: &str) -> syn::Error {
        let at = self.0.get(id as usize).unwrap_or(fallback);
        syn::Error::new_spanned(at, message)
    }
}

/// The mod a named argument of `attention` gives, if any.
pub(crate) fn kind_of(name: &str) -> Option<ModKind> {
    match name {
        "score_mod" => Some(ModKind::Score),
        "mask_mod" => Some(ModKind::Mask),
        _ => None,
    }
}

/// The usage of a mod, for messages.
pub(crate) fn usage(kind: ModKind) -> &'static str {
    match kind {
        ModKind::Score => "`score_mod = |s, b, h, i, j| <float expression>`",
        ModKind::Mask => "`mask_mod = |b, h, i, j| <bool expression>`",
    }
}

/// Converts the closure `closure` of a mod of `kind`; `input` resolves a name that is not a
/// parameter to the number of the mods' input it reads (or fails at the name).
pub(crate) fn convert(
    kind: ModKind,
    closure: &syn::Expr,
    input: &mut dyn FnMut(&Ident) -> syn::Result<usize>,
) -> syn::Result<(Expr, Spans)> {
    let syn::Expr::Closure(c) = closure else {
        return Err(syn::Error::new_spanned(
            closure,
            format!("`{}` takes a closure: {}", kind.name(), usage(kind)),
        ));
    };
    if c.movability.is_some() || c.asyncness.is_some() || c.lifetimes.is_some() {
        return Err(syn::Error::new_spanned(
            closure,
            format!("a mod is a plain closure: {}", usage(kind)),
        ));
    }
    if let syn::ReturnType::Type(arrow, ty) = &c.output {
        let mut at = arrow.to_token_stream();
        at.extend(ty.to_token_stream());
        return Err(syn::Error::new_spanned(
            at,
            "a mod's closure has no return type: its type is fixed by the mod",
        ));
    }
    let vars = Var::params(kind);
    if c.inputs.len() != vars.len() {
        let mut at = c.or1_token.to_token_stream();
        at.extend(c.inputs.to_token_stream());
        at.extend(c.or2_token.to_token_stream());
        return Err(syn::Error::new_spanned(
            at,
            format!(
                "a `{}` takes {} parameters, got {}: {}",
                kind.name(),
                vars.len(),
                c.inputs.len(),
                usage(kind)
            ),
        ));
    }
    let mut params: Vec<(String, Var)> = Vec::new();
    for (pat, var) in c.inputs.iter().zip(vars) {
        match pat {
            syn::Pat::Wild(_) => {}
            syn::Pat::Ident(p)
                if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() =>
            {
                let name = p.ident.unraw().to_string();
                if params.iter().any(|(n, _)| *n == name) {
                    return Err(syn::Error::new_spanned(
                        pat,
                        format!("parameter `{name}` is declared twice"),
                    ));
                }
                params.push((name, *var));
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    format!(
                        "a mod's parameters are plain names without types: {}",
                        usage(kind)
                    ),
                ));
            }
        }
    }
    let mut cv = Converter {
        params,
        input,
        spans: Vec::new(),
    };
    let expr = cv.expr(&c.body)?;
    Ok((expr, Spans(cv.spans)))
}

struct Converter<'a> {
    params: Vec<(String, Var)>,
    input: &'a mut dyn FnMut(&Ident) -> syn::Result<usize>,
    spans: Vec<TokenStream>,
}

const SUPPORTED: &str = "a mod is an expression of literals, its parameters, `+ - * / %`, \
     comparisons, `&& || !`, `if c { a } else { b }`, `min`, `max`, `abs`, `exp`, `tanh`, `sqrt`, \
     `as f32` / `as i64` and reads of inputs like `doc[i]`";

fn unsupported(at: &dyn ToTokens, what: &str) -> syn::Error {
    syn::Error::new_spanned(at, format!("{what}: {SUPPORTED}"))
}

impl Converter<'_> {
    fn node(&mut self, at: &dyn ToTokens, kind: Kind) -> Expr {
        let id = u32::try_from(self.spans.len()).unwrap_or(u32::MAX);
        self.spans.push(at.to_token_stream());
        Expr::new(id, kind)
    }

    fn boxed(&mut self, e: &syn::Expr) -> syn::Result<Box<Expr>> {
        Ok(Box::new(self.expr(e)?))
    }

    fn expr(&mut self, e: &syn::Expr) -> syn::Result<Expr> {
        match e {
            syn::Expr::Paren(p) => self.expr(&p.expr),
            syn::Expr::Group(g) => self.expr(&g.expr),
            syn::Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => {
                self.block(&b.block, e)
            }
            syn::Expr::Lit(l) => self.literal(l),
            syn::Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let id = p.path.get_ident().map(Ident::unraw);
                let Some(id) = id else {
                    return Err(unsupported(e, "expected a name"));
                };
                let name = id.to_string();
                if let Some((_, v)) = self.params.iter().find(|(n, _)| *n == name) {
                    let v = *v;
                    return Ok(self.node(e, Kind::Var(v)));
                }
                // An input without an index: resolve it for the message.
                (self.input)(&id)?;
                Err(syn::Error::new_spanned(
                    e,
                    format!("input `{name}` is a tensor: read an element of it, like `{name}[i]`"),
                ))
            }
            syn::Expr::Index(_) => self.read(e),
            syn::Expr::Unary(u) => {
                let x = self.boxed(&u.expr)?;
                let kind = match u.op {
                    syn::UnOp::Neg(_) => Kind::Neg(x),
                    syn::UnOp::Not(_) => Kind::Not(x),
                    _ => return Err(unsupported(e, "unsupported unary operator")),
                };
                Ok(self.node(e, kind))
            }
            syn::Expr::Binary(b) => {
                use syn::BinOp as B;
                let op = match b.op {
                    B::Add(_) => BinOp::Add,
                    B::Sub(_) => BinOp::Sub,
                    B::Mul(_) => BinOp::Mul,
                    B::Div(_) => BinOp::Div,
                    B::Rem(_) => BinOp::Rem,
                    B::Eq(_) => BinOp::Eq,
                    B::Ne(_) => BinOp::Ne,
                    B::Lt(_) => BinOp::Lt,
                    B::Le(_) => BinOp::Le,
                    B::Gt(_) => BinOp::Gt,
                    B::Ge(_) => BinOp::Ge,
                    B::And(_) => BinOp::And,
                    B::Or(_) => BinOp::Or,
                    _ => {
                        return Err(unsupported(
                            &b.op,
                            &format!("unsupported operator `{}`", b.op.to_token_stream()),
                        ));
                    }
                };
                let (l, r) = (self.boxed(&b.left)?, self.boxed(&b.right)?);
                Ok(self.node(e, Kind::Binary(op, l, r)))
            }
            syn::Expr::If(i) => {
                let Some((_, other)) = &i.else_branch else {
                    return Err(syn::Error::new_spanned(
                        e,
                        "an `if` in a mod needs an `else`: `if c { a } else { b }`",
                    ));
                };
                let c = self.boxed(&i.cond)?;
                let a = Box::new(self.block(&i.then_branch, e)?);
                let b = self.boxed(other)?;
                Ok(self.node(e, Kind::If(c, a, b)))
            }
            syn::Expr::Call(call) => {
                let name = match &*call.func {
                    syn::Expr::Path(p) if p.qself.is_none() => {
                        p.path.get_ident().map(|i| i.unraw().to_string())
                    }
                    _ => None,
                };
                let args: Vec<&syn::Expr> = call.args.iter().collect();
                self.call(e, &call.func, name.as_deref(), &args)
            }
            syn::Expr::MethodCall(m) if m.turbofish.is_none() => {
                let mut args = vec![&*m.receiver];
                args.extend(m.args.iter());
                let name = m.method.unraw().to_string();
                self.call(e, &m.method, Some(&name), &args)
            }
            syn::Expr::Cast(c) => {
                let ty = match &*c.ty {
                    syn::Type::Path(p) if p.qself.is_none() => {
                        p.path.get_ident().map(|i| i.to_string())
                    }
                    _ => None,
                };
                let to = match ty.as_deref() {
                    Some("f32" | "f64") => Type::Float,
                    Some("i64") => Type::Int,
                    _ => {
                        return Err(syn::Error::new_spanned(
                            &c.ty,
                            "a mod converts with `as f32` (or `as f64`) and `as i64`",
                        ));
                    }
                };
                let x = self.boxed(&c.expr)?;
                Ok(self.node(e, Kind::Cast(x, to)))
            }
            other => Err(unsupported(other, "unsupported expression in a mod")),
        }
    }

    fn block(&mut self, b: &syn::Block, at: &syn::Expr) -> syn::Result<Expr> {
        match b.stmts.as_slice() {
            [syn::Stmt::Expr(x, None)] => self.expr(x),
            _ => Err(syn::Error::new_spanned(
                at,
                "a block in a mod holds one expression, without `let` or `;`",
            )),
        }
    }

    fn literal(&mut self, l: &syn::ExprLit) -> syn::Result<Expr> {
        let kind = match &l.lit {
            syn::Lit::Int(i) if matches!(i.suffix(), "" | "i64") => match i.base10_parse::<i64>() {
                Ok(v) => Kind::Int(v),
                Err(_) => {
                    return Err(syn::Error::new_spanned(l, "this integer does not fit i64"));
                }
            },
            syn::Lit::Float(f) if matches!(f.suffix(), "" | "f32" | "f64") => {
                match f.base10_parse::<f64>() {
                    Ok(v) if v.is_finite() => Kind::Float(v),
                    _ => {
                        return Err(syn::Error::new_spanned(l, "a float literal must be finite"));
                    }
                }
            }
            syn::Lit::Bool(b) => Kind::Bool(b.value),
            _ => {
                return Err(syn::Error::new_spanned(
                    l,
                    "a mod's literals are integers (`64`), floats (`0.5`) and `true`/`false`",
                ));
            }
        };
        Ok(self.node(l, kind))
    }

    /// `name[a][b]..`.
    fn read(&mut self, e: &syn::Expr) -> syn::Result<Expr> {
        let mut index = Vec::new();
        let mut base = e;
        while let syn::Expr::Index(ix) = base {
            index.push(&*ix.index);
            base = &ix.expr;
        }
        index.reverse();
        let name = match base {
            syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(Ident::unraw),
            _ => None,
        };
        let Some(name) = name else {
            return Err(syn::Error::new_spanned(
                base,
                "only the kernel's inputs can be indexed, like `doc[i]`",
            ));
        };
        if self.params.iter().any(|(n, _)| name == n) {
            return Err(syn::Error::new_spanned(
                base,
                format!("`{name}` is a parameter of the mod, an integer: it cannot be indexed"),
            ));
        }
        let input = (self.input)(&name)?;
        let index = index
            .into_iter()
            .map(|x| self.expr(x))
            .collect::<syn::Result<Vec<_>>>()?;
        Ok(self.node(e, Kind::Read { input, index }))
    }

    fn call(
        &mut self,
        e: &syn::Expr,
        func: &dyn ToTokens,
        name: Option<&str>,
        args: &[&syn::Expr],
    ) -> syn::Result<Expr> {
        let known = || {
            Func::ALL
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(f) = name.and_then(|n| Func::ALL.iter().find(|(k, _)| *k == n).map(|(_, f)| *f))
        else {
            return Err(syn::Error::new_spanned(
                func,
                format!(
                    "unknown function `{}` in a mod; the functions are {}",
                    func.to_token_stream(),
                    known()
                ),
            ));
        };
        if args.len() != f.arity() {
            return Err(syn::Error::new_spanned(
                e,
                format!(
                    "`{}` takes {} argument{}, got {}",
                    f.name(),
                    f.arity(),
                    if f.arity() == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        let args = args
            .iter()
            .map(|a| self.expr(a))
            .collect::<syn::Result<Vec<_>>>()?;
        Ok(self.node(e, Kind::Call(f, args)))
    }
}
