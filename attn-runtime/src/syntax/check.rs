//! Shape inference and canonical specs.

use super::parse::{Body, Invocation, KernelItem, ShapeLit, float_literal};
use super::{ABI_VERSION, MAX_DIM, MAX_ELEMENTS, MAX_INPUTS, PRIMITIVES, RANKS, float_repr, fnv1a};
use proc_macro2::Span;
use std::collections::HashMap;
use std::fmt::Write as _;
use syn::{Expr, Ident, ext::IdentExt};

/// A checked kernel: static shapes inferred for every value.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Its name.
    pub name: String,
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
    /// `softmax(q k^T * scale) v`.
    Attention {
        /// Queries `[.., Sq, D]`.
        q: Value,
        /// Keys `[.., Sk, D]`.
        k: Value,
        /// Values `[.., Sk, Dv]`.
        v: Value,
        /// The scale of the scores.
        scale: f32,
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

    /// The output shape.
    pub fn output_shape(&self) -> &[usize] {
        self.shape(self.output)
    }

    fn value_name(&self, v: Value) -> String {
        match v {
            Value::Input(i) => format!("%{i}"),
            Value::Node(i) => format!("%{}", i + self.inputs.len()),
        }
    }

    /// The canonical spec: every input, the output and every node with its operands and
    /// constants, independent of formatting, comments, docs, visibility and `let` names.
    /// Example: `scores(q:f32[64,32],k:f32[64,32])->f32[64,64]{%2=transpose(%1);%3=matmul(%0,%2);return %3}`.
    pub fn canonical(&self) -> String {
        let dims = |s: &[usize]| s.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let mut s = format!("{}(", self.name);
        for (i, input) in self.inputs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{}:f32[{}]", input.name, dims(&input.shape));
        }
        let _ = write!(s, ")->f32[{}]{{", dims(self.output_shape()));
        for (i, node) in self.nodes.iter().enumerate() {
            let n = |v: Value| self.value_name(v);
            let op = match &node.op {
                Op::Matmul(a, b) => format!("matmul({},{})", n(*a), n(*b)),
                Op::Transpose(a) => format!("transpose({})", n(*a)),
                Op::Softmax(a) => format!("softmax({})", n(*a)),
                Op::Scale(a, f) => format!("scale({},{})", n(*a), float_repr(*f)),
                Op::Add(a, b) => format!("add({},{})", n(*a), n(*b)),
                Op::Mul(a, b) => format!("mul({},{})", n(*a), n(*b)),
                Op::Attention { q, k, v, scale } => format!(
                    "attention({},{},{},scale={})",
                    n(*q),
                    n(*k),
                    n(*v),
                    float_repr(*scale)
                ),
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

struct Builder {
    kernel: Kernel,
    env: HashMap<String, Value>,
    default_scale: Option<f32>,
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
        self.kernel.nodes.push(Node { op, shape });
        Ok(Value::Node(self.kernel.nodes.len() - 1))
    }

    fn shape(&self, v: Value) -> Vec<usize> {
        self.kernel.shape(v).to_vec()
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
        let args: Vec<&Expr> = call.args.iter().collect();
        let arity_ok = match prim.as_str() {
            "attention" => args.len() == 3 || args.len() == 4,
            _ => arity.parse::<usize>().ok() == Some(args.len()),
        };
        if !arity_ok {
            return Err(syn::Error::new_spanned(
                call,
                format!(
                    "`{prim}` takes {arity} argument{}, got {}",
                    if arity == "1" { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        // The non-tensor argument of `scale` and `attention` is a literal.
        let tensor_args = match prim.as_str() {
            "scale" => 1,
            "attention" => 3,
            _ => args.len(),
        };
        let mut vals = Vec::new();
        for a in &args[..tensor_args] {
            vals.push(self.eval(a)?);
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
            "attention" => {
                let scale = match args.get(3) {
                    Some(a) => Some(float_literal(a, "the attention scale")?),
                    None => None,
                };
                self.attention(vals[0], vals[1], vals[2], scale, call)
            }
            _ => unreachable!("every primitive is handled"),
        }
    }

    fn attention(
        &mut self,
        q: Value,
        k: Value,
        v: Value,
        scale: Option<f32>,
        at: &dyn quote::ToTokens,
    ) -> syn::Result<Value> {
        let (sq, sk, sv) = (self.shape(q), self.shape(k), self.shape(v));
        let err = |msg: String| Err(syn::Error::new_spanned(at, format!("`attention`: {msg}")));
        let r = sq.len();
        if !(2..=4).contains(&r) || sk.len() != r || sv.len() != r {
            return err(format!(
                "q, k and v must have the same rank, 2 to 4; got {}, {} and {}",
                show(&sq),
                show(&sk),
                show(&sv)
            ));
        }
        if sq[..r - 2] != sk[..r - 2] || sq[..r - 2] != sv[..r - 2] {
            return err(format!(
                "leading (batch, head) dims differ: q {}, k {}, v {}",
                show(&sq),
                show(&sk),
                show(&sv)
            ));
        }
        if sq[r - 1] != sk[r - 1] {
            return err(format!(
                "q and k must have the same head dim (last dim): q {}, k {}",
                show(&sq),
                show(&sk)
            ));
        }
        if sk[r - 2] != sv[r - 2] {
            return err(format!(
                "k and v must have the same number of keys (dim {}): k {}, v {}",
                r - 2,
                show(&sk),
                show(&sv)
            ));
        }
        let scale = scale
            .or(self.default_scale)
            .unwrap_or_else(|| (1.0 / (sq[r - 1] as f64).sqrt()) as f32);
        let mut shape = sq[..r - 1].to_vec();
        shape.push(sv[r - 1]);
        self.push(Op::Attention { q, k, v, scale }, shape, at)
    }
}

impl KernelItem {
    /// The kernel's name, without any `r#`.
    pub fn name_string(&self) -> String {
        self.name.unraw().to_string()
    }

    /// Infers every shape and checks the declaration.
    pub fn check(&self) -> syn::Result<Kernel> {
        let name = self.name_string();
        if let Some(span) = self.options.causal {
            return Err(syn::Error::new(
                span,
                "`causal` is not supported yet: masked attention is not implemented by the attn pipeline",
            ));
        }
        if let Some((ty, span)) = &self.options.dtype
            && ty != "f32"
        {
            return Err(syn::Error::new(
                *span,
                format!("unsupported dtype `{ty}`: kernels compute in `f32` for now"),
            ));
        }
        if self.params.len() > MAX_INPUTS {
            return Err(syn::Error::new(
                self.params[MAX_INPUTS].name.span(),
                format!("a kernel takes at most {MAX_INPUTS} inputs"),
            ));
        }
        let mut kernel = Kernel {
            name,
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
            kernel.inputs.push(Input { name: pname, shape });
        }
        let declared = check_shape("the output", &self.output);
        if let Err(e) = &declared {
            add_err(e.clone());
        }
        if let Some(e) = errors {
            return Err(e);
        }
        let declared = declared?;
        let mut b = Builder {
            kernel,
            env,
            default_scale: self.options.scale.map(|(s, _)| s),
        };
        let out = match &self.body {
            None => {
                if self.params.len() != 3 {
                    return Err(syn::Error::new(
                        self.name.span(),
                        format!(
                            "a kernel without a body computes `attention(q, k, v)` and takes exactly 3 inputs, not {}; write a body `{{ ... }}` for other computations",
                            self.params.len()
                        ),
                    ));
                }
                let at = &self.name;
                b.attention(Value::Input(0), Value::Input(1), Value::Input(2), None, at)?
            }
            Some(Body { lets, result }) => {
                for (name, e) in lets {
                    let v = b.eval(e)?;
                    b.env.insert(name.unraw().to_string(), v);
                }
                b.eval(result)?
            }
        };
        b.kernel.output = out;
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
