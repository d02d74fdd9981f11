//! Shape and element-type inference, and canonical specs.

use super::parse::{Body, Invocation, KernelItem, ShapeLit, float_literal};
use super::{ABI_VERSION, MAX_DIM, MAX_ELEMENTS, MAX_INPUTS, PRIMITIVES, RANKS, float_repr, fnv1a};
use crate::DType;
use proc_macro2::Span;
use std::collections::HashMap;
use std::fmt::Write as _;
use syn::{Expr, Ident, ext::IdentExt, spanned::Spanned};

/// A checked kernel: static shapes and element types inferred for every value.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Its name.
    pub name: String,
    /// The declared element type (`#[attn(dtype = ..)]`, default f32): that of every input,
    /// computed value and the output, except attention masks, which are f32.
    pub dtype: DType,
    /// Its inputs, in signature order.
    pub inputs: Vec<Input>,
    /// The computed values, in evaluation order (operands come first).
    pub nodes: Vec<Node>,
    /// The value written to the output.
    pub output: Value,
}

/// A kernel input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type: the kernel's, or f32 for an attention mask.
    pub dtype: DType,
}

/// A value of a kernel: an input or a computed node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// `inputs[i]`.
    Input(usize),
    /// `nodes[i]`.
    Node(usize),
}

/// A computed value.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The primitive.
    pub op: Op,
    /// Its inferred shape.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: DType,
}

/// The primitives.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// `[M, K] x [K, N]`, or batched `[B, M, K] x [B, K, N]`.
    Matmul(Value, Value),
    /// Swaps the last two dims.
    Transpose(Value),
    /// Softmax over the last dim.
    Softmax(Value),
    /// Multiplication by a constant.
    Scale(Value, f32),
    /// Elementwise sum of same-shaped operands.
    Add(Value, Value),
    /// Elementwise product of same-shaped operands.
    Mul(Value, Value),
    /// `softmax(q k^T * scale + mask) v`, causal or not.
    Attention {
        /// Queries `[.., Hq, Sq, D]`.
        q: Value,
        /// Keys `[.., Hkv, Sk, D]` (`Hq % Hkv == 0`: grouped-query attention).
        k: Value,
        /// Values `[.., Hkv, Sk, Dv]`.
        v: Value,
        /// The scale of the scores.
        scale: f32,
        /// An additive f32 mask: `[Sq, Sk]`, or of q's rank with each leading dim 1 or q's.
        mask: Option<Value>,
        /// Bottom-right aligned causal masking: query `i` sees the keys `j <= i + Sk - Sq`.
        causal: bool,
    },
}

impl Kernel {
    /// The shape of `v`.
    pub fn shape(&self, v: Value) -> &[usize] {
        match v {
            Value::Input(i) => &self.inputs[i].shape,
            Value::Node(i) => &self.nodes[i].shape,
        }
    }

    /// The element type of `v`.
    pub fn dtype_of(&self, v: Value) -> DType {
        match v {
            Value::Input(i) => self.inputs[i].dtype,
            Value::Node(i) => self.nodes[i].dtype,
        }
    }

    /// The output shape.
    pub fn output_shape(&self) -> &[usize] {
        self.shape(self.output)
    }

    /// The output's element type (always the kernel's [`dtype`](Kernel::dtype)).
    pub fn output_dtype(&self) -> DType {
        self.dtype_of(self.output)
    }

    fn value_name(&self, v: Value) -> String {
        match v {
            Value::Input(i) => format!("%{i}"),
            Value::Node(i) => format!("%{}", i + self.inputs.len()),
        }
    }

    /// The canonical spec: every input and the output with its element type and shape, and every
    /// node with its operands and constants (attention: the scale, the mask operand, `causal`),
    /// independent of formatting, comments, docs, visibility and `let` names. `kv_heads` is an
    /// assertion about k's shape, which the spec already holds.
    /// Example: `scores(q:f32[64,32],k:f32[64,32])->f32[64,64]{%2=transpose(%1);%3=matmul(%0,%2);return %3}`,
    /// `gqa(q:bf16[1,4,8,16],k:bf16[1,2,8,16],v:bf16[1,2,8,16],mask:f32[8,8])->bf16[1,4,8,16]{%4=attention(%0,%1,%2,scale=2.5e-1,mask=%3,causal);return %4}`.
    pub fn canonical(&self) -> String {
        let dims = |s: &[usize]| s.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let mut s = format!("{}(", self.name);
        for (i, input) in self.inputs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{}:{}[{}]",
                input.name,
                input.dtype.name(),
                dims(&input.shape)
            );
        }
        let _ = write!(
            s,
            ")->{}[{}]{{",
            self.output_dtype().name(),
            dims(self.output_shape())
        );
        for (i, node) in self.nodes.iter().enumerate() {
            let n = |v: Value| self.value_name(v);
            let op = match &node.op {
                Op::Matmul(a, b) => format!("matmul({},{})", n(*a), n(*b)),
                Op::Transpose(a) => format!("transpose({})", n(*a)),
                Op::Softmax(a) => format!("softmax({})", n(*a)),
                Op::Scale(a, f) => format!("scale({},{})", n(*a), float_repr(*f)),
                Op::Add(a, b) => format!("add({},{})", n(*a), n(*b)),
                Op::Mul(a, b) => format!("mul({},{})", n(*a), n(*b)),
                Op::Attention {
                    q,
                    k,
                    v,
                    scale,
                    mask,
                    causal,
                } => {
                    let mut a = format!(
                        "attention({},{},{},scale={}",
                        n(*q),
                        n(*k),
                        n(*v),
                        float_repr(*scale)
                    );
                    if let Some(m) = mask {
                        let _ = write!(a, ",mask={}", n(*m));
                    }
                    if *causal {
                        a.push_str(",causal");
                    }
                    a.push(')');
                    a
                }
            };
            let _ = write!(s, "{}={op};", self.value_name(Value::Node(i)));
        }
        let _ = write!(s, "return {}}}", self.value_name(self.output));
        s
    }

    /// The C symbol of the kernel's entry point (without MLIR's `_mlir_ciface_` prefix):
    /// `attn_<name>_<hash>`, the hash covering the canonical spec, the ABI version and the version
    /// of this crate, so a caller and a build that disagree on any of them fail to link.
    pub fn symbol(&self) -> String {
        let h = fnv1a(&[&self.canonical(), ABI_VERSION, env!("CARGO_PKG_VERSION")]);
        format!("attn_{}_{h:016x}", self.name)
    }
}

fn show(shape: &[usize]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn elements(shape: &[usize]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
}

fn is_half(d: DType) -> bool {
    matches!(d, DType::BF16 | DType::F16)
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

/// One `attention` to check: its operands with the tokens errors about them point at, and its
/// own options.
struct AttentionCall {
    q: (Value, At),
    k: (Value, At),
    v: (Value, At),
    /// The mask operand.
    mask: Option<(Value, At)>,
    /// An explicit scale (else the kernel's, else `1/sqrt(D)`).
    scale: Option<f32>,
    /// An explicit `causal = ..` (else the kernel's).
    causal: Option<bool>,
    /// The whole call (or the kernel's name, for the declaration form).
    at: At,
}

struct Builder {
    kernel: Kernel,
    env: HashMap<String, Value>,
    /// The element type each input is used with so far (`None`: not used yet).
    input_uses: Vec<Option<DType>>,
    default_scale: Option<f32>,
    default_causal: bool,
    kv_heads: Option<(usize, Span)>,
    /// How many `attention`s the kernel computes.
    attentions: usize,
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
    /// operand, f32 for masks): an input takes the type of its uses, which must agree.
    fn use_as(
        &mut self,
        v: Value,
        want: DType,
        mask: bool,
        at: &dyn quote::ToTokens,
    ) -> syn::Result<()> {
        let kernel = self.kernel.dtype;
        match v {
            Value::Input(i) => match self.input_uses[i] {
                None => {
                    self.input_uses[i] = Some(want);
                    Ok(())
                }
                Some(d) if d == want => Ok(()),
                Some(_) => {
                    let name = &self.kernel.inputs[i].name;
                    Err(syn::Error::new_spanned(
                        at,
                        format!(
                            "input `{name}` is used both as an attention mask (always f32) and as a \
                             {kernel} tensor of this `dtype = {kernel}` kernel: declare two inputs"
                        ),
                    ))
                }
            },
            Value::Node(i) if self.kernel.nodes[i].dtype == want => Ok(()),
            Value::Node(_) if mask => Err(syn::Error::new_spanned(
                at,
                format!(
                    "an attention mask is f32: in a `dtype = {kernel}` kernel it must be an input \
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
        if prim != "attention" && is_half(dtype) {
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
            self.use_as(v, dtype, false, a)?;
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

    /// `attention(q, k, v)`, then optionally a scale literal, then named arguments
    /// `scale = <f32 literal>`, `mask = <tensor>`, `causal = <bool literal>`.
    fn attention_call(&mut self, call: &syn::ExprCall, args: &[&Expr]) -> syn::Result<Value> {
        const USAGE: &str = "`attention(q, k, v)`, optionally followed by a scale literal and the \
             named arguments `scale = <f32 literal>`, `mask = <f32 input>`, `causal = true | false`";
        if args.len() < 3 {
            return Err(syn::Error::new_spanned(
                call,
                format!(
                    "`attention` takes q, k and v, got {} argument{}: {USAGE}",
                    args.len(),
                    if args.len() == 1 { "" } else { "s" }
                ),
            ));
        }
        let mut tensors = Vec::new();
        for a in &args[..3] {
            tensors.push((self.eval(a)?, quote::ToTokens::to_token_stream(a)));
        }
        let mut scale: Option<(f32, Span)> = None;
        let mut mask: Option<(Value, At)> = None;
        let mut causal: Option<(bool, Span)> = None;
        for (i, a) in args[3..].iter().enumerate() {
            let Expr::Assign(assign) = a else {
                if i == 0 {
                    scale = Some((float_literal(a, "the attention scale")?, a.span()));
                    continue;
                }
                return Err(syn::Error::new_spanned(
                    a,
                    format!("expected a named argument: {USAGE}"),
                ));
            };
            let key = match &*assign.left {
                Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(Ident::unraw),
                _ => None,
            };
            let key_span = assign.left.span();
            let key = key.map(|k| k.to_string()).unwrap_or_default();
            let twice = || {
                Err(syn::Error::new(
                    key_span,
                    format!("`{key}` is given twice in this `attention`"),
                ))
            };
            match key.as_str() {
                "scale" => {
                    if scale.is_some() {
                        return twice();
                    }
                    let f = float_literal(&assign.right, "the attention scale")?;
                    scale = Some((f, assign.right.span()));
                }
                "mask" => {
                    if mask.is_some() {
                        return twice();
                    }
                    let m = self.eval(&assign.right)?;
                    mask = Some((m, quote::ToTokens::to_token_stream(&assign.right)));
                }
                "causal" => {
                    if causal.is_some() {
                        return twice();
                    }
                    let b = match &*assign.right {
                        Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Bool(b),
                            ..
                        }) => b.value,
                        other => {
                            return Err(syn::Error::new_spanned(
                                other,
                                "`causal` is `true` or `false`: kernels are compiled ahead of time",
                            ));
                        }
                    };
                    causal = Some((b, assign.right.span()));
                }
                _ => {
                    return Err(syn::Error::new(
                        key_span,
                        format!("unknown argument of `attention`: {USAGE}"),
                    ));
                }
            }
        }
        self.attention(AttentionCall {
            mask,
            v: tensors.pop().unwrap_or_else(|| unreachable!()),
            k: tensors.pop().unwrap_or_else(|| unreachable!()),
            q: tensors.pop().unwrap_or_else(|| unreachable!()),
            scale: scale.map(|s| s.0),
            causal: causal.map(|c| c.0),
            at: quote::ToTokens::to_token_stream(call),
        })
    }

    fn attention(&mut self, c: AttentionCall) -> syn::Result<Value> {
        let dtype = self.kernel.dtype;
        for (v, at) in [&c.q, &c.k, &c.v] {
            self.use_as(*v, dtype, false, at)?;
        }
        let (q, k, v) = (c.q.0, c.k.0, c.v.0);
        let (sq, sk, sv) = (self.shape(q), self.shape(k), self.shape(v));
        let at = |tokens: &At, msg: String| {
            Err(syn::Error::new_spanned(
                tokens,
                format!("`attention`: {msg}"),
            ))
        };
        let r = sq.len();
        if !(2..=4).contains(&r) || sk.len() != r || sv.len() != r {
            return at(
                &c.at,
                format!(
                    "q, k and v must have the same rank, 2 to 4; got {}, {} and {}",
                    show(&sq),
                    show(&sk),
                    show(&sv)
                ),
            );
        }
        // [B, H, S, D]: batch dims (all but the head dim) equal; k and v share their head count,
        // which divides q's (grouped-query attention).
        let batch = r.saturating_sub(3);
        if sq[..batch] != sk[..batch] || sq[..batch] != sv[..batch] {
            return at(
                &c.at,
                format!(
                    "batch dims (dim 0) differ: q {}, k {}, v {}",
                    show(&sq),
                    show(&sk),
                    show(&sv)
                ),
            );
        }
        if r >= 3 {
            let h = r - 3;
            if sk[h] != sv[h] {
                return at(
                    &c.v.1,
                    format!(
                        "k and v must have the same number of heads (dim {h}): k {}, v {}",
                        show(&sk),
                        show(&sv)
                    ),
                );
            }
            if sq[h] % sk[h] != 0 {
                return at(
                    &c.k.1,
                    format!(
                        "the key/value heads must divide the query heads (grouped-query \
                         attention, dim {h}): q {} has {} heads, k {} has {}",
                        show(&sq),
                        sq[h],
                        show(&sk),
                        sk[h]
                    ),
                );
            }
        }
        if let Some((n, span)) = self.kv_heads {
            if r < 3 {
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
            let h = r - 3;
            if sk[h] != n {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "`kv_heads = {n}`, but k {} and v {} have {} key/value heads (dim {h}; \
                         q {} has {} query heads)",
                        show(&sk),
                        show(&sv),
                        sk[h],
                        show(&sq),
                        sq[h]
                    ),
                ));
            }
        }
        if sq[r - 1] != sk[r - 1] {
            return at(
                &c.at,
                format!(
                    "q and k must have the same head dim (last dim): q {}, k {}",
                    show(&sq),
                    show(&sk)
                ),
            );
        }
        if sk[r - 2] != sv[r - 2] {
            return at(
                &c.at,
                format!(
                    "k and v must have the same number of keys (dim {}): k {}, v {}",
                    r - 2,
                    show(&sk),
                    show(&sv)
                ),
            );
        }
        if let Some((m, tokens)) = &c.mask {
            let m = *m;
            self.use_as(m, DType::F32, true, tokens)?;
            let sm = self.shape(m);
            let rm = sm.len();
            let (nq, nk) = (sq[r - 2], sk[r - 2]);
            let ok = (rm == 2 || rm == r)
                && (0..rm - 2).all(|i| sm[i] == 1 || sm[i] == sq[i])
                && sm[rm - 2] == nq
                && sm[rm - 1] == nk;
            if !ok {
                let lead: Vec<String> = sq[..r - 2]
                    .iter()
                    .map(|&d| if d == 1 { "1".into() } else { format!("1|{d}") })
                    .collect();
                let full = if r > 2 {
                    format!(
                        ", or [{}, {nq}, {nk}] (q's rank, each leading dim 1 or q's)",
                        lead.join(", ")
                    )
                } else {
                    String::new()
                };
                return at(
                    tokens,
                    format!(
                        "the mask must be f32 [Sq, Sk] = [{nq}, {nk}]{full} for q {} and k {}; \
                         got {}",
                        show(&sq),
                        show(&sk),
                        show(&sm)
                    ),
                );
            }
        }
        let scale = c
            .scale
            .or(self.default_scale)
            .unwrap_or_else(|| (1.0 / (sq[r - 1] as f64).sqrt()) as f32);
        let causal = c.causal.unwrap_or(self.default_causal);
        let mut shape = sq[..r - 1].to_vec();
        shape.push(sv[r - 1]);
        self.attentions += 1;
        let op = Op::Attention {
            q,
            k,
            v,
            scale,
            mask: c.mask.as_ref().map(|m| m.0),
            causal,
        };
        self.push(op, shape, &c.at)
    }
}

impl KernelItem {
    /// The kernel's name, without any `r#`.
    pub fn name_string(&self) -> String {
        self.name.unraw().to_string()
    }

    /// Infers every shape and element type, and checks the declaration.
    pub fn check(&self) -> syn::Result<Kernel> {
        let name = self.name_string();
        let dtype = self.options.dtype.map_or(DType::F32, |d| d.0);
        if self.params.len() > MAX_INPUTS {
            return Err(syn::Error::new(
                self.params[MAX_INPUTS].name.span(),
                format!("a kernel takes at most {MAX_INPUTS} inputs"),
            ));
        }
        let mut kernel = Kernel {
            name,
            dtype,
            inputs: Vec::new(),
            nodes: Vec::new(),
            output: Value::Input(0),
        };
        let mut env = HashMap::new();
        let mut errors: Option<syn::Error> = None;
        let mut add_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        for (i, p) in self.params.iter().enumerate() {
            let pname = p.name.unraw().to_string();
            let shape = match check_shape(&format!("input `{pname}`"), &p.shape) {
                Ok(s) => s,
                Err(e) => {
                    add_err(e);
                    Vec::new()
                }
            };
            if pname == "out" {
                add_err(syn::Error::new(
                    p.name.span(),
                    "`out` is reserved for the kernel's output: rename this input",
                ));
            }
            if env.insert(pname.clone(), Value::Input(i)).is_some() {
                add_err(syn::Error::new(
                    p.name.span(),
                    format!("input `{pname}` is declared twice"),
                ));
            }
            kernel.inputs.push(Input {
                name: pname,
                shape,
                dtype,
            });
        }
        let declared = check_shape("the output", &self.output);
        if let Err(e) = &declared {
            add_err(e.clone());
        }
        if let Some(e) = errors {
            return Err(e);
        }
        let declared = declared?;
        let n_inputs = kernel.inputs.len();
        let mut b = Builder {
            kernel,
            env,
            input_uses: vec![None; n_inputs],
            default_scale: self.options.scale.map(|(s, _)| s),
            default_causal: self.options.causal.is_some(),
            kv_heads: self.options.kv_heads,
            attentions: 0,
        };
        let out = match &self.body {
            None => {
                let n = self.params.len();
                if !(n == 3 || n == 4) {
                    return Err(syn::Error::new(
                        self.name.span(),
                        format!(
                            "a kernel without a body computes `attention(q, k, v)` and takes exactly 3 inputs (4 with a `mask`), not {n}; write a body `{{ ... }}` for other computations"
                        ),
                    ));
                }
                if n == 4 && self.params[3].name.unraw() != "mask" {
                    return Err(syn::Error::new(
                        self.params[3].name.span(),
                        format!(
                            "the fourth input of a kernel without a body is its attention mask and must be named `mask`, not `{}`",
                            self.params[3].name.unraw()
                        ),
                    ));
                }
                let shape = |i: usize| at_span(self.params[i].shape.span);
                b.attention(AttentionCall {
                    q: (Value::Input(0), shape(0)),
                    k: (Value::Input(1), shape(1)),
                    v: (Value::Input(2), shape(2)),
                    mask: (n == 4).then(|| (Value::Input(3), shape(3))),
                    scale: None,
                    causal: None,
                    at: quote::ToTokens::to_token_stream(&self.name),
                })?
            }
            Some(Body { lets, result }) => {
                for (name, e) in lets {
                    let v = b.eval(e)?;
                    b.env.insert(name.unraw().to_string(), v);
                }
                b.eval(result)?
            }
        };
        if b.attentions == 0 {
            for (option, span) in [
                ("causal", self.options.causal),
                ("kv_heads", self.options.kv_heads.map(|k| k.1)),
            ] {
                if let Some(span) = span {
                    return Err(syn::Error::new(
                        span,
                        format!(
                            "`{option}` is an option of `attention`, which this kernel does not compute"
                        ),
                    ));
                }
            }
        }
        b.use_as(out, dtype, false, &at_span(self.output.span))?;
        b.kernel.output = out;
        for (input, used) in b.kernel.inputs.iter_mut().zip(&b.input_uses) {
            input.dtype = used.unwrap_or(dtype);
        }
        let inferred = b.kernel.output_shape().to_vec();
        if inferred != declared {
            return Err(syn::Error::new(
                self.output.span,
                format!(
                    "the declared output shape {} differs from the inferred shape {}",
                    show(&declared),
                    show(&inferred)
                ),
            ));
        }
        Ok(b.kernel)
    }
}

impl Invocation {
    /// Checks every kernel, and that names are unique (including against the generated
    /// `<name>_into` functions). Reports every failing kernel at once.
    pub fn check(&self) -> syn::Result<Vec<Kernel>> {
        let mut errors: Option<syn::Error> = None;
        let mut add_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        let mut seen: HashMap<String, Span> = HashMap::new();
        for item in &self.kernels {
            let name = item.name_string();
            if let Some(first) = seen.get(&name) {
                let mut e = syn::Error::new(
                    item.name.span(),
                    format!("duplicate kernel name `{name}`: kernel names must be unique"),
                );
                e.combine(syn::Error::new(
                    *first,
                    format!("`{name}` is first defined here"),
                ));
                add_err(e);
            }
            seen.insert(name.clone(), item.name.span());
        }
        for item in &self.kernels {
            let name = item.name_string();
            if let Some(base) = name.strip_suffix("_into")
                && seen.contains_key(base)
            {
                add_err(syn::Error::new(
                    item.name.span(),
                    format!(
                        "kernel name `{name}` collides with the `_into` function generated for kernel `{base}`"
                    ),
                ));
            }
        }
        let mut out = Vec::new();
        for item in &self.kernels {
            match item.check() {
                Ok(k) => out.push(k),
                Err(e) => add_err(e),
            }
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}
