//! Shape and element-type inference of kernels as written (`parse`), giving checked kernels
//! (`kernel`): the primitives here, `attention` in [`attention`], whole kernels and
//! invocations in [`item`].

mod attention;
mod item;
mod mods;

use super::kernel::{Kernel, Node, Op, Value};
use super::literal::float_literal;
use super::parse::ShapeLit;
use super::{MAX_DIM, MAX_ELEMENTS, PRIMITIVES, RANKS};
use crate::DType;
use crate::options::AttentionOptions;
use crate::shape::Show;
use proc_macro2::Span;
use std::collections::HashMap;
use syn::{Expr, Ident, ext::IdentExt};

fn show(shape: &[usize]) -> String {
    Show(shape).to_string()
}

fn elements(shape: &[usize]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
}

/// Checks a written shape: rank, dims, element count.
fn check_shape(what: &str, s: &ShapeLit) -> syn::Result<Vec<usize>> {
    if !RANKS.contains(&s.dims.len()) {
        return Err(syn::Error::new(
            s.span,
            format!(
                "{what} has rank {}; kernels take and return tensors of rank {} to {}",
                s.dims.len(),
                RANKS.start(),
                RANKS.end()
            ),
        ));
    }
    let mut out = Vec::new();
    for d in &s.dims {
        match d.value {
            Some(0) => {
                return Err(syn::Error::new(
                    d.span,
                    format!("{what} has a zero dim: every dim must be at least 1"),
                ));
            }
            Some(v) if v <= MAX_DIM => out.push(v as usize),
            _ => {
                return Err(syn::Error::new(
                    d.span,
                    format!("{what} has an absurd dim: the largest accepted dim is {MAX_DIM}"),
                ));
            }
        }
    }
    if elements(&out).is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(syn::Error::new(
            s.span,
            format!(
                "{what} {} has more than {MAX_ELEMENTS} elements",
                show(&out)
            ),
        ));
    }
    Ok(out)
}

/// Tokens an error points at (first to last token).
type At = proc_macro2::TokenStream;

/// One token with `span`, for errors at a span (a shape's brackets, an option's keyword).
fn at_span(span: Span) -> At {
    quote::ToTokens::to_token_stream(&Ident::new("here", span))
}

struct Builder {
    kernel: Kernel,
    env: HashMap<String, Value>,
    /// The element type each input is used with so far, and the f32 role of that use (empty
    /// for a tensor of the kernel's dtype); `None`: not used yet.
    input_uses: Vec<Option<(DType, &'static str)>>,
    /// The kernel's `#[attn(..)]` attention options: the defaults of its `attention`s.
    defaults: AttentionOptions,
    /// `#[attn(kv_heads = N)]`: the key/value heads every `attention` must have.
    kv_heads: Option<(usize, Span)>,
    /// How many `attention`s the kernel computes.
    attentions: usize,
    /// The element type each input is declared with (`as i32`), and its span.
    declared: Vec<Option<(DType, Span)>>,
}

impl Builder {
    fn push(&mut self, op: Op, shape: Vec<usize>, at: &dyn quote::ToTokens) -> syn::Result<Value> {
        if elements(&shape).is_none_or(|n| n > MAX_ELEMENTS) {
            return Err(syn::Error::new_spanned(
                at,
                format!(
                    "this computes a tensor of shape {} with more than {MAX_ELEMENTS} elements",
                    show(&shape)
                ),
            ));
        }
        let dtype = self.kernel.dtype;
        self.kernel.nodes.push(Node { op, shape, dtype });
        Ok(Value::Node(self.kernel.nodes.len() - 1))
    }

    fn shape(&self, v: Value) -> Vec<usize> {
        self.kernel.shape(v).to_vec()
    }

    /// Records that `v` is used as a tensor of element type `want` (the kernel's dtype for every
    /// operand, f32 for the f32 operands of attention: masks, sinks, ALiBi slopes, named by
    /// `f32_role`, empty for other uses): an input takes the type of its uses, which must agree.
    fn use_as(
        &mut self,
        v: Value,
        want: DType,
        f32_role: &'static str,
        at: &dyn quote::ToTokens,
    ) -> syn::Result<()> {
        let mask = !f32_role.is_empty();
        let kernel = self.kernel.dtype;
        if let Value::Input(i) = v
            && let Some((d, span)) = self.declared[i]
            && d != want
        {
            let name = &self.kernel.inputs[i].name;
            let mut e = syn::Error::new_spanned(
                at,
                format!(
                    "input `{name}` is declared `as {d}`: only score and mask mods read it, not `{}` (which takes {want} tensors)",
                    if mask { "mask" } else { "this operation" }
                ),
            );
            e.combine(syn::Error::new(
                span,
                format!("`{name}` is declared `as {d}` here"),
            ));
            return Err(e);
        }
        match v {
            Value::Input(i) => match self.input_uses[i] {
                None => {
                    self.input_uses[i] = Some((want, f32_role));
                    Ok(())
                }
                Some((d, _)) if d == want => Ok(()),
                Some((_, first_role)) => {
                    let name = &self.kernel.inputs[i].name;
                    Err(syn::Error::new_spanned(
                        at,
                        format!(
                            "input `{name}` is used both as {} (always f32) and as a \
                             {kernel} tensor of this `dtype = {kernel}` kernel: declare two inputs",
                            if mask { f32_role } else { first_role }
                        ),
                    ))
                }
            },
            Value::Node(i) if self.kernel.nodes[i].dtype == want => Ok(()),
            Value::Node(_) if mask => Err(syn::Error::new_spanned(
                at,
                format!(
                    "{f32_role} is f32: in a `dtype = {kernel}` kernel it must be an input \
                     of the kernel, not a computed ({kernel}) value"
                ),
            )),
            Value::Node(i) => Err(syn::Error::new_spanned(
                at,
                format!(
                    "expected a {want} tensor, got a {}",
                    self.kernel.nodes[i].dtype
                ),
            )),
        }
    }

    fn eval(&mut self, e: &Expr) -> syn::Result<Value> {
        match e {
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Group(g) => self.eval(&g.expr),
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let id = p
                    .path
                    .get_ident()
                    .map(Ident::unraw)
                    .unwrap_or_else(|| unreachable!());
                self.env.get(&id.to_string()).copied().ok_or_else(|| {
                    syn::Error::new(
                        id.span(),
                        format!("unknown name `{id}`: expected an input of the kernel or a `let` binding"),
                    )
                })
            }
            Expr::Call(call) => self.call(call),
            other => Err(syn::Error::new_spanned(
                other,
                "expected a primitive call (`matmul(a, b)`, `softmax(x)`, ...) or the name of an input",
            )),
        }
    }

    fn call(&mut self, call: &syn::ExprCall) -> syn::Result<Value> {
        let name = match &*call.func {
            Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(Ident::unraw),
            _ => None,
        }
        .ok_or_else(|| syn::Error::new_spanned(&call.func, "expected the name of a primitive"))?;
        let prim = name.to_string();
        let Some(&(_, arity)) = PRIMITIVES.iter().find(|(n, _)| *n == prim) else {
            let known = PRIMITIVES
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(syn::Error::new(
                name.span(),
                format!("unknown primitive `{prim}`; the primitives are {known}"),
            ));
        };
        let dtype = self.kernel.dtype;
        if prim != "attention" && dtype.is_half() {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "`{prim}` has no {dtype} lowering: `dtype = bf16` and `dtype = f16` are \
                     storage formats for `attention` only (computed in f32); use `dtype = f32` \
                     or `dtype = f64` for the other primitives"
                ),
            ));
        }
        let args: Vec<&Expr> = call.args.iter().collect();
        if prim == "attention" {
            return self.attention_call(call, &args);
        }
        if arity.parse::<usize>().ok() != Some(args.len()) {
            return Err(syn::Error::new_spanned(
                call,
                format!(
                    "`{prim}` takes {arity} argument{}, got {}",
                    if arity == "1" { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        // The non-tensor argument of `scale` is a literal.
        let tensor_args = if prim == "scale" { 1 } else { args.len() };
        let mut vals = Vec::new();
        for a in &args[..tensor_args] {
            let v = self.eval(a)?;
            self.use_as(v, dtype, "", a)?;
            vals.push(v);
        }
        let s: Vec<Vec<usize>> = vals.iter().map(|v| self.shape(*v)).collect();
        let err = |msg: String| Err(syn::Error::new_spanned(call, format!("`{prim}`: {msg}")));
        match prim.as_str() {
            "matmul" => {
                let (a, b) = (&s[0], &s[1]);
                let r = a.len();
                if !(r == 2 || r == 3) || b.len() != r {
                    return err(format!(
                        "operands must both be 2-D, or both 3-D (batched); got {} and {}",
                        show(a),
                        show(b)
                    ));
                }
                if r == 3 && a[0] != b[0] {
                    return err(format!("batch dims differ: {} and {}", show(a), show(b)));
                }
                if a[r - 1] != b[r - 2] {
                    return err(format!(
                        "inner dims differ: {} x {} ({} columns against {} rows)",
                        show(a),
                        show(b),
                        a[r - 1],
                        b[r - 2]
                    ));
                }
                let mut shape = a[..r - 1].to_vec();
                shape.push(b[r - 1]);
                self.push(Op::Matmul(vals[0], vals[1]), shape, call)
            }
            "transpose" => {
                let a = &s[0];
                if a.len() < 2 {
                    return err(format!(
                        "the operand must have rank 2 or more, got {}",
                        show(a)
                    ));
                }
                let mut shape = a.clone();
                let r = shape.len();
                shape.swap(r - 1, r - 2);
                self.push(Op::Transpose(vals[0]), shape, call)
            }
            "softmax" => {
                let shape = s[0].clone();
                self.push(Op::Softmax(vals[0]), shape, call)
            }
            "scale" => {
                let f = float_literal(args[1], "the factor of `scale`")?;
                let shape = s[0].clone();
                self.push(Op::Scale(vals[0], f), shape, call)
            }
            "add" | "mul" => {
                if s[0] != s[1] {
                    return err(format!(
                        "operands must have the same shape, got {} and {}",
                        show(&s[0]),
                        show(&s[1])
                    ));
                }
                let op = if prim == "add" {
                    Op::Add(vals[0], vals[1])
                } else {
                    Op::Mul(vals[0], vals[1])
                };
                self.push(op, s[0].clone(), call)
            }
            _ => unreachable!("every primitive is handled"),
        }
    }
}
