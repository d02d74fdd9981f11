//! The build-time graph API: typed tensor values, the `transformer` primitives, shape inference,
//! and emission of a kernel as `transformer`-dialect IR.
//!
//! ```
//! use attn_build::graph::{Dim, Graph, TensorType};
//!
//! let mut g = Graph::new();
//! let q = g.input("q", TensorType::f32(&[Dim::Dynamic, Dim::Static(64)]));
//! let k = g.input("k", TensorType::f32(&[Dim::Dynamic, Dim::Static(64)]));
//! let kt = g.transpose(k).unwrap();
//! let s = g.matmul(q, kt).unwrap();
//! let p = g.softmax(s).unwrap();
//! assert_eq!(g.ty(p).to_string(), "tensor<?x?xf32>");
//! ```

use crate::error::GraphError;
use std::fmt::{self, Write};

/// Element types a kernel can compute in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ElementType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// bfloat16 storage (attention only; computed in f32).
    BF16,
    /// IEEE half-precision storage (attention only; computed in f32).
    F16,
}

impl ElementType {
    /// The MLIR spelling (`f32`, `f64`, `bf16`, `f16`).
    pub fn mlir(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::F64 => "f64",
            ElementType::BF16 => "bf16",
            ElementType::F16 => "f16",
        }
    }

    /// The type arithmetic runs in: f64 for f64, else f32 (16-bit types are storage formats,
    /// widened on load and rounded once on store). An attention scale given at run time has
    /// this type.
    pub fn compute(self) -> ElementType {
        match self {
            ElementType::F64 => ElementType::F64,
            _ => ElementType::F32,
        }
    }

    /// Whether this is a 16-bit storage type (bf16, f16).
    pub fn is_half(self) -> bool {
        matches!(self, ElementType::BF16 | ElementType::F16)
    }
}

/// One dimension of a tensor type: known at build time, or given at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A size fixed when the kernel is compiled.
    Static(usize),
    /// A size read from the memref descriptor at run time.
    Dynamic,
}

impl Dim {
    fn unify(self, other: Dim) -> Option<Dim> {
        match (self, other) {
            (Dim::Static(a), Dim::Static(b)) => (a == b).then_some(Dim::Static(a)),
            (Dim::Static(a), Dim::Dynamic) | (Dim::Dynamic, Dim::Static(a)) => Some(Dim::Static(a)),
            (Dim::Dynamic, Dim::Dynamic) => Some(Dim::Dynamic),
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Static(n) => write!(f, "{n}"),
            Dim::Dynamic => f.write_str("?"),
        }
    }
}

/// A ranked tensor type: element type and dimensions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Element type.
    pub element: ElementType,
    /// Dimensions, outermost first.
    pub dims: Vec<Dim>,
}

impl TensorType {
    /// A tensor type with the given element type and dims.
    pub fn new(element: ElementType, dims: &[Dim]) -> Self {
        TensorType {
            element,
            dims: dims.to_vec(),
        }
    }

    /// An f32 tensor type.
    pub fn f32(dims: &[Dim]) -> Self {
        Self::new(ElementType::F32, dims)
    }

    /// An f32 tensor type whose every dim is dynamic.
    pub fn f32_dynamic(rank: usize) -> Self {
        Self::new(ElementType::F32, &vec![Dim::Dynamic; rank])
    }

    /// An f32 tensor type with static dims.
    pub fn f32_static(dims: &[usize]) -> Self {
        Self::new(
            ElementType::F32,
            &dims.iter().map(|&d| Dim::Static(d)).collect::<Vec<_>>(),
        )
    }

    /// Rank (number of dims).
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The memref type this tensor has at the kernel's C ABI.
    pub fn memref(&self, layout: Layout) -> String {
        let mut s = String::from("memref<");
        for d in &self.dims {
            let _ = write!(s, "{d}x");
        }
        s.push_str(self.element.mlir());
        match layout {
            Layout::Contiguous => {}
            Layout::Strided => {
                let strides = vec!["?"; self.rank()].join(", ");
                let _ = write!(s, ", strided<[{strides}], offset: ?>");
            }
        }
        s.push('>');
        s
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor<")?;
        for d in &self.dims {
            write!(f, "{d}x")?;
        }
        write!(f, "{}>", self.element.mlir())
    }
}

/// How a kernel's arguments are laid out in memory at its C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Any strides and offset, read from the descriptors (views need no copy).
    Strided,
    /// Dense row-major (identity layout): the fastest code for static kernels.
    Contiguous,
}

/// A value in a [`Graph`]: a graph input or the result of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Value(usize);

/// The `transformer` primitives.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A kernel argument.
    Input {
        /// Argument name (used in messages and the C ABI description).
        name: String,
    },
    /// `transformer.matmul`: `[M, K] x [K, N]` or batched `[B, M, K] x [B, K, N]`.
    Matmul(Value, Value),
    /// `transformer.transpose`: swaps the last two dims.
    Transpose(Value),
    /// `transformer.softmax`: numerically stable softmax over the last dim.
    Softmax(Value),
    /// `transformer.add`: elementwise sum (same shape, or a rank-0 right operand).
    Add(Value, Value),
    /// `transformer.mul`: elementwise product (same shape, or a rank-0 right operand).
    Mul(Value, Value),
    /// `transformer.scale`: multiplication by a constant.
    Scale(Value, f32),
    /// `transformer.attention`: `softmax(q k^T * scale) v`; the scale is a rank-0 tensor.
    Attention {
        /// Queries `[.., Sq, D]`.
        q: Value,
        /// Keys `[.., Sk, D]`.
        k: Value,
        /// Values `[.., Sk, Dv]`.
        v: Value,
        /// Scale applied to the scores.
        scale: Scale,
        /// Optional additive f32 mask: `[Sq, Sk]`, or of q's rank (leading dims 1 or q's).
        mask: Option<Value>,
        /// Optional causal query positions `[Sq]` (rank-2 attention only).
        positions: Option<Value>,
        /// Bottom-right aligned causal masking: query `i` sees keys `j <= i + Sk - Sq`.
        causal: bool,
    },
}

/// The options of [`Graph::attention_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionOptions {
    /// An additive f32 mask added to the scaled scores; `-inf` removes a key. `[Sq, Sk]`
    /// (shared by every batch and head), or of q's rank with each leading dim 1 (broadcast) or
    /// equal to q's. A row whose every key is removed gives zeros.
    pub mask: Option<Value>,
    /// Causal masking by explicit positions (rank 2 only): f32 `[Sq]` holding integers (exact
    /// below 2^24); query row `i` sees the keys `j <= positions[i]`. Fully masked key blocks are
    /// skipped.
    pub positions: Option<Value>,
    /// Bottom-right aligned causal masking at any rank: query `i` sees the keys
    /// `j <= i + Sk - Sq` (the usual lower triangle when `Sq = Sk`). Fully masked key blocks are
    /// skipped. Excludes `positions`.
    pub causal: bool,
}

/// Where the attention scale comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// A constant compiled into the kernel, rounded to the kernel's compute type (f64 keeps
    /// every digit for f64 kernels).
    Constant(f64),
    /// A rank-0 graph input, given at run time.
    Input(Value),
}

#[derive(Clone, Debug)]
struct Node {
    op: Op,
    ty: TensorType,
}

/// A dataflow graph of `transformer` primitives with inferred types.
///
/// Every builder method checks shapes as far as they are static and returns a [`GraphError`] that
/// names the operation, the operands and their types.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
}

const MAX_RANK: usize = 8;

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kernel argument. Arguments appear in the kernel's signature in the order added.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Value {
        self.push(
            Op::Input {
                name: name.to_string(),
            },
            ty,
        )
    }

    /// The inferred type of `v`.
    pub fn ty(&self, v: Value) -> &TensorType {
        &self.nodes[v.0].ty
    }

    /// The operation that defines `v`.
    pub fn op(&self, v: Value) -> &Op {
        &self.nodes[v.0].op
    }

    /// The graph inputs, in signature order.
    pub fn inputs(&self) -> Vec<Value> {
        (0..self.nodes.len())
            .filter(|&i| matches!(self.nodes[i].op, Op::Input { .. }))
            .map(Value)
            .collect()
    }

    /// The name of an input value (`None` for computed values).
    pub fn input_name(&self, v: Value) -> Option<&str> {
        match &self.nodes[v.0].op {
            Op::Input { name } => Some(name),
            _ => None,
        }
    }

    fn push(&mut self, op: Op, ty: TensorType) -> Value {
        self.nodes.push(Node { op, ty });
        Value(self.nodes.len() - 1)
    }

    fn check(&self, v: Value, op: &'static str) -> Result<&TensorType, GraphError> {
        self.nodes
            .get(v.0)
            .map(|n| &n.ty)
            .ok_or_else(|| GraphError {
                op,
                message: format!("value #{} does not belong to this graph", v.0),
            })
    }

    fn describe(&self, v: Value) -> String {
        match &self.nodes[v.0].op {
            Op::Input { name } => format!("{name}: {}", self.nodes[v.0].ty),
            _ => format!("{}", self.nodes[v.0].ty),
        }
    }

    fn err(op: &'static str, message: String) -> GraphError {
        GraphError { op, message }
    }

    /// `transformer.matmul`.
    pub fn matmul(&mut self, a: Value, b: Value) -> Result<Value, GraphError> {
        const OP: &str = "matmul";
        let (ta, tb) = (self.check(a, OP)?.clone(), self.check(b, OP)?.clone());
        self.same_element(OP, a, b)?;
        let rank = ta.rank();
        if !(rank == 2 || rank == 3) || tb.rank() != rank {
            return Err(Self::err(
                OP,
                format!(
                    "operands must both be 2-D or both 3-D (batched), got {} and {}",
                    self.describe(a),
                    self.describe(b)
                ),
            ));
        }
        let mut dims = Vec::new();
        if rank == 3 {
            let batch = ta.dims[0].unify(tb.dims[0]).ok_or_else(|| {
                Self::err(
                    OP,
                    format!(
                        "batch dimensions differ: {} and {}",
                        self.describe(a),
                        self.describe(b)
                    ),
                )
            })?;
            dims.push(batch);
        }
        let (ka, kb) = (ta.dims[rank - 1], tb.dims[rank - 2]);
        if ka.unify(kb).is_none() {
            return Err(Self::err(
                OP,
                format!(
                    "inner dimensions differ ({ka} and {kb}): {} and {}",
                    self.describe(a),
                    self.describe(b)
                ),
            ));
        }
        dims.push(ta.dims[rank - 2]);
        dims.push(tb.dims[rank - 1]);
        Ok(self.push(Op::Matmul(a, b), TensorType::new(ta.element, &dims)))
    }

    /// `transformer.transpose` (swaps the last two dims).
    pub fn transpose(&mut self, a: Value) -> Result<Value, GraphError> {
        let t = self.check(a, "transpose")?.clone();
        if t.rank() < 2 || t.rank() > MAX_RANK {
            return Err(Self::err(
                "transpose",
                format!(
                    "operand must have rank 2 to {MAX_RANK}, got {}",
                    self.describe(a)
                ),
            ));
        }
        let mut dims = t.dims.clone();
        let r = dims.len();
        dims.swap(r - 1, r - 2);
        Ok(self.push(Op::Transpose(a), TensorType::new(t.element, &dims)))
    }

    /// `transformer.softmax` over the last dim.
    pub fn softmax(&mut self, a: Value) -> Result<Value, GraphError> {
        let t = self.check(a, "softmax")?.clone();
        if t.rank() < 1 || t.rank() > MAX_RANK {
            return Err(Self::err(
                "softmax",
                format!(
                    "operand must have rank 1 to {MAX_RANK}, got {}",
                    self.describe(a)
                ),
            ));
        }
        Ok(self.push(Op::Softmax(a), t))
    }

    fn same_element(&self, op: &'static str, a: Value, b: Value) -> Result<(), GraphError> {
        if self.ty(a).element != self.ty(b).element {
            return Err(Self::err(
                op,
                format!(
                    "element types differ: {} and {}",
                    self.describe(a),
                    self.describe(b)
                ),
            ));
        }
        Ok(())
    }

    fn elementwise(
        &mut self,
        op: &'static str,
        a: Value,
        b: Value,
    ) -> Result<TensorType, GraphError> {
        let (ta, tb) = (self.check(a, op)?.clone(), self.check(b, op)?.clone());
        self.same_element(op, a, b)?;
        if tb.rank() == 0 {
            return Ok(ta);
        }
        if ta.rank() != tb.rank() {
            return Err(Self::err(
                op,
                format!(
                    "shapes differ: {} and {} (the right operand may also be a rank-0 scalar)",
                    self.describe(a),
                    self.describe(b)
                ),
            ));
        }
        let dims = ta
            .dims
            .iter()
            .zip(&tb.dims)
            .map(|(x, y)| x.unify(*y))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Self::err(
                    op,
                    format!(
                        "shapes differ: {} and {}",
                        self.describe(a),
                        self.describe(b)
                    ),
                )
            })?;
        Ok(TensorType::new(ta.element, &dims))
    }

    /// `transformer.add`.
    pub fn add(&mut self, a: Value, b: Value) -> Result<Value, GraphError> {
        let t = self.elementwise("add", a, b)?;
        Ok(self.push(Op::Add(a, b), t))
    }

    /// `transformer.mul`.
    pub fn mul(&mut self, a: Value, b: Value) -> Result<Value, GraphError> {
        let t = self.elementwise("mul", a, b)?;
        Ok(self.push(Op::Mul(a, b), t))
    }

    /// `transformer.scale` by a constant factor.
    pub fn scale(&mut self, a: Value, factor: f32) -> Result<Value, GraphError> {
        let t = self.check(a, "scale")?.clone();
        if !factor.is_finite() {
            return Err(Self::err(
                "scale",
                format!("factor must be finite, got {factor}"),
            ));
        }
        Ok(self.push(Op::Scale(a, factor), t))
    }

    /// `transformer.attention`: `softmax(q k^T * scale) v` for q `[.., Sq, D]`, k `[.., Sk, D]`,
    /// v `[.., Sk, Dv]` (ranks 2 to 4, identical leading dims), giving `[.., Sq, Dv]`.
    pub fn attention(
        &mut self,
        q: Value,
        k: Value,
        v: Value,
        scale: Scale,
    ) -> Result<Value, GraphError> {
        self.attention_with(q, k, v, scale, AttentionOptions::default())
    }

    /// [`Graph::attention`] with an additive mask and/or causal positions (see
    /// [`AttentionOptions`]); with either, q, k and v must be rank 2.
    pub fn attention_with(
        &mut self,
        q: Value,
        k: Value,
        v: Value,
        scale: Scale,
        options: AttentionOptions,
    ) -> Result<Value, GraphError> {
        const OP: &str = "attention";
        let (tq, tk, tv) = (
            self.check(q, OP)?.clone(),
            self.check(k, OP)?.clone(),
            self.check(v, OP)?.clone(),
        );
        self.same_element(OP, q, k)?;
        self.same_element(OP, q, v)?;
        let r = tq.rank();
        if !(2..=4).contains(&r) || tk.rank() != r || tv.rank() != r {
            return Err(Self::err(
                OP,
                format!(
                    "q, k and v must have the same rank, 2 to 4; got {}, {} and {}",
                    self.describe(q),
                    self.describe(k),
                    self.describe(v)
                ),
            ));
        }
        let mut dims = Vec::new();
        // Batch dims (all but the head dim) are equal; k and v share their head count, which
        // divides q's (grouped-query attention: query head h reads key/value head h / (Hq/Hkv)).
        for i in 0..r - 2 {
            let kv = tk.dims[i].unify(tv.dims[i]);
            let d = if i + 3 == r {
                let ok = match (tq.dims[i], kv) {
                    (Dim::Static(hq), Some(Dim::Static(hkv))) => hkv > 0 && hq % hkv == 0,
                    (_, kv) => kv.is_some(),
                };
                ok.then_some(tq.dims[i])
            } else {
                kv.and_then(|d| d.unify(tq.dims[i]))
            };
            let d = d.ok_or_else(|| {
                Self::err(
                    OP,
                    format!(
                        "leading (batch/head) dimensions don't match: {}, {} and {} (batch dims \
                         must be equal; k and v must have the same number of heads, which must \
                         divide q's)",
                        self.describe(q),
                        self.describe(k),
                        self.describe(v)
                    ),
                )
            })?;
            dims.push(d);
        }
        if tq.dims[r - 1].unify(tk.dims[r - 1]).is_none() {
            return Err(Self::err(
                OP,
                format!(
                    "the head dims of q and k differ: {} and {}",
                    self.describe(q),
                    self.describe(k)
                ),
            ));
        }
        if tk.dims[r - 2].unify(tv.dims[r - 2]).is_none() {
            return Err(Self::err(
                OP,
                format!(
                    "k and v must have the same number of keys: {} and {}",
                    self.describe(k),
                    self.describe(v)
                ),
            ));
        }
        let compute = tq.element.compute();
        if let Scale::Input(s) = scale {
            let ts = self.check(s, OP)?;
            if ts.rank() != 0 || ts.element != compute {
                return Err(Self::err(
                    OP,
                    format!(
                        "the scale must be a rank-0 {} tensor, got {}",
                        compute.mlir(),
                        self.describe(s)
                    ),
                ));
            }
        }
        if let Scale::Constant(c) = scale
            && !c.is_finite()
        {
            return Err(Self::err(OP, format!("the scale must be finite, got {c}")));
        }
        if options.positions.is_some() && (r != 2 || options.causal) {
            return Err(Self::err(
                OP,
                format!(
                    "explicit causal positions need rank-2 q, k and v ([Sq, D]) and exclude \
                     `causal`; got {}",
                    self.describe(q)
                ),
            ));
        }
        if let Some(m) = options.mask {
            let tm = self.check(m, OP)?.clone();
            let rm = tm.rank();
            let lead_ok = (rm == 2 || rm == r)
                && (0..rm - 2).all(|i| {
                    tm.dims[i] == Dim::Static(1) || tm.dims[i].unify(tq.dims[i]).is_some()
                });
            let ok = tm.element == ElementType::F32
                && rm >= 2
                && lead_ok
                && tm.dims[rm - 2].unify(tq.dims[r - 2]).is_some()
                && tm.dims[rm - 1].unify(tk.dims[r - 2]).is_some();
            if !ok {
                return Err(Self::err(
                    OP,
                    format!(
                        "the mask must be f32 [Sq, Sk], or of q's rank with each leading dim 1 or \
                         q's, for q {} and k {}; got {}",
                        self.describe(q),
                        self.describe(k),
                        self.describe(m)
                    ),
                ));
            }
        }
        if let Some(p) = options.positions {
            let tp = self.check(p, OP)?.clone();
            let ok = tp.element == ElementType::F32
                && tp.rank() == 1
                && tp.dims[0].unify(tq.dims[0]).is_some();
            if !ok {
                return Err(Self::err(
                    OP,
                    format!(
                        "the positions must be f32 [Sq] for q {}; got {}",
                        self.describe(q),
                        self.describe(p)
                    ),
                ));
            }
        }
        dims.push(tq.dims[r - 2]);
        dims.push(tv.dims[r - 1]);
        Ok(self.push(
            Op::Attention {
                q,
                k,
                v,
                scale,
                mask: options.mask,
                positions: options.positions,
                causal: options.causal,
            },
            TensorType::new(tq.element, &dims),
        ))
    }
}

/// A kernel: a named graph with one output, ready to be compiled.
#[derive(Clone, Debug)]
pub struct KernelDef {
    /// The kernel's name (a Rust/C identifier).
    pub name: String,
    /// The computation.
    pub graph: Graph,
    /// The value the kernel writes to its output argument.
    pub output: Value,
    /// Memory layout of the arguments at the C ABI.
    pub layout: Layout,
    /// How the lowering generates code.
    pub codegen: Codegen,
}

/// How `convert-transformer-to-linalg` generates code for a kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Codegen {
    /// Fused and register-tiled kernels for f32 attention, matmul and softmax (the default).
    #[default]
    Fused,
    /// The tutorial's route only: linalg named/generic ops lowered to plain loops, no fusion,
    /// no tiling. Kept as the baseline that benchmarks compare against.
    Loops,
}

impl KernelDef {
    /// A kernel computing `output` of `graph`, with strided arguments.
    pub fn new(name: &str, graph: Graph, output: Value) -> Self {
        KernelDef {
            name: name.to_string(),
            graph,
            output,
            layout: Layout::Strided,
            codegen: Codegen::Fused,
        }
    }

    /// Sets how code is generated (see [`Codegen`]).
    pub fn with_codegen(mut self, codegen: Codegen) -> Self {
        self.codegen = codegen;
        self
    }

    /// Sets the argument layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The output type.
    pub fn output_type(&self) -> &TensorType {
        self.graph.ty(self.output)
    }

    /// The kernel as `transformer`-dialect IR: one function `@symbol` taking every input as a
    /// tensor and the output as a writable memref (destination-passing style), marked
    /// `llvm.emit_c_interface`.
    pub fn to_transformer_ir(&self, symbol: &str) -> String {
        let g = &self.graph;
        let mut s = String::new();
        let inputs = g.inputs();
        let out_ty = self.output_type();
        let mut args: Vec<String> = inputs
            .iter()
            .map(|v| format!("%v{}: {}", v.0, g.ty(*v)))
            .collect();
        args.push(format!("%out: {}", out_ty.memref(self.layout)));
        match self.codegen {
            Codegen::Fused => {
                let _ = writeln!(s, "module {{");
            }
            Codegen::Loops => {
                let _ = writeln!(s, "module attributes {{attn.codegen = \"loops\"}} {{");
            }
        }
        let _ = writeln!(
            s,
            "  func.func @{symbol}({}) attributes {{llvm.emit_c_interface}} {{",
            args.join(", ")
        );
        for (i, node) in g.nodes.iter().enumerate() {
            let ty = &node.ty;
            let line = match &node.op {
                Op::Input { .. } => continue,
                Op::Matmul(a, b) => Self::op2("matmul", i, g, *a, *b, ty, ""),
                Op::Add(a, b) => Self::op2("add", i, g, *a, *b, ty, ""),
                Op::Mul(a, b) => Self::op2("mul", i, g, *a, *b, ty, ""),
                Op::Transpose(a) => Self::op1("transpose", i, g, *a, ty, ""),
                Op::Softmax(a) => Self::op1("softmax", i, g, *a, ty, ""),
                Op::Scale(a, f) => Self::op1(
                    "scale",
                    i,
                    g,
                    *a,
                    ty,
                    &format!(" {{factor = {} : f32}}", float_literal(*f)),
                ),
                Op::Attention {
                    q,
                    k,
                    v,
                    scale,
                    mask,
                    positions,
                    causal,
                } => {
                    let elem = ty.element.compute().mlir();
                    let (pre, sname) = match scale {
                        Scale::Constant(c) => (
                            format!(
                                "    %s{i} = arith.constant dense<{}> : tensor<{elem}>\n",
                                float_literal_f64(*c)
                            ),
                            format!("%s{i}"),
                        ),
                        Scale::Input(sv) => (String::new(), format!("%v{}", sv.0)),
                    };
                    let (mut names, mut types) = (String::new(), String::new());
                    for x in [mask, positions].into_iter().flatten() {
                        let _ = write!(names, ", %v{}", x.0);
                        let _ = write!(types, ", {}", g.ty(*x));
                    }
                    format!(
                        "{pre}    %v{i} = \"transformer.attention\"(%v{}, %v{}, %v{}, {sname}{names}) {{causal = {causal}, operandSegmentSizes = array<i32: 1, 1, 1, 1, {}, {}>}} : ({}, {}, {}, tensor<{elem}>{types}) -> {ty}",
                        q.0,
                        k.0,
                        v.0,
                        usize::from(mask.is_some()),
                        usize::from(positions.is_some()),
                        g.ty(*q),
                        g.ty(*k),
                        g.ty(*v)
                    )
                }
            };
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(
            s,
            "    bufferization.materialize_in_destination %v{} in restrict writable %out : ({out_ty}, {}) -> ()",
            self.output.0,
            out_ty.memref(self.layout)
        );
        let _ = writeln!(s, "    return\n  }}\n}}");
        s
    }

    fn op1(name: &str, i: usize, g: &Graph, a: Value, ty: &TensorType, attrs: &str) -> String {
        format!(
            "    %v{i} = \"transformer.{name}\"(%v{}){attrs} : ({}) -> {ty}",
            a.0,
            g.ty(a)
        )
    }

    fn op2(
        name: &str,
        i: usize,
        g: &Graph,
        a: Value,
        b: Value,
        ty: &TensorType,
        attrs: &str,
    ) -> String {
        format!(
            "    %v{i} = \"transformer.{name}\"(%v{}, %v{}){attrs} : ({}, {}) -> {ty}",
            a.0,
            b.0,
            g.ty(a),
            g.ty(b)
        )
    }
}

/// An f32 written so that MLIR parses it back to the same value.
pub fn float_literal(x: f32) -> String {
    float_literal_f64_repr(format!("{x:e}"))
}

/// [`float_literal`] of an f64 (every digit of it).
pub fn float_literal_f64(x: f64) -> String {
    float_literal_f64_repr(format!("{x:e}"))
}

fn float_literal_f64_repr(s: String) -> String {
    // `{:e}` is the shortest round-tripping form, e.g. `1.25e-1` or `1e0`; MLIR needs a dot.
    match s.split_once('e') {
        Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_inner_mismatch_names_types() {
        let mut g = Graph::new();
        let a = g.input("a", TensorType::f32_static(&[2, 3]));
        let b = g.input("b", TensorType::f32_static(&[4, 5]));
        let e = g.matmul(a, b).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("matmul"), "{m}");
        assert!(
            m.contains("a: tensor<2x3xf32>") && m.contains("b: tensor<4x5xf32>"),
            "{m}"
        );
    }

    #[test]
    fn dynamic_dims_unify_with_static() {
        let mut g = Graph::new();
        let a = g.input("a", TensorType::f32(&[Dim::Dynamic, Dim::Dynamic]));
        let b = g.input("b", TensorType::f32_static(&[4, 5]));
        let c = g.matmul(a, b).unwrap();
        assert_eq!(g.ty(c).to_string(), "tensor<?x5xf32>");
        let d = g.add(c, c).unwrap();
        assert_eq!(g.ty(d).dims, vec![Dim::Dynamic, Dim::Static(5)]);
    }

    #[test]
    fn attention_shapes() {
        let mut g = Graph::new();
        let q = g.input("q", TensorType::f32_static(&[37, 80]));
        let k = g.input("k", TensorType::f32_static(&[53, 80]));
        let v = g.input("v", TensorType::f32_static(&[53, 24]));
        let o = g.attention(q, k, v, Scale::Constant(0.1)).unwrap();
        assert_eq!(g.ty(o).to_string(), "tensor<37x24xf32>");
        let bad = g.input("v2", TensorType::f32_static(&[52, 24]));
        let e = g
            .attention(q, k, bad, Scale::Constant(0.1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("same number of keys"), "{e}");
    }

    #[test]
    fn elementwise_rank0_broadcast_and_mismatch() {
        let mut g = Graph::new();
        let a = g.input("a", TensorType::f32_static(&[3, 4]));
        let s = g.input("s", TensorType::f32_static(&[]));
        assert!(g.mul(a, s).is_ok());
        let b = g.input("b", TensorType::f32_static(&[4, 3]));
        assert!(
            g.add(a, b)
                .unwrap_err()
                .to_string()
                .contains("shapes differ")
        );
    }

    #[test]
    fn float_literals_round_trip() {
        for x in [0.125f32, 1.0, -3.0, 1e-30, 0.1, 123456.78] {
            let s = float_literal(x);
            assert!(s.contains('.'), "{s}");
            assert_eq!(s.parse::<f32>().unwrap(), x);
        }
    }

    #[test]
    fn emits_transformer_ir() {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32_dynamic(2));
        let y = g.softmax(x).unwrap();
        let ir = KernelDef::new("sm", g, y).to_transformer_ir("sym");
        assert!(
            ir.contains("\"transformer.softmax\"(%v0) : (tensor<?x?xf32>) -> tensor<?x?xf32>"),
            "{ir}"
        );
        assert!(
            ir.contains("memref<?x?xf32, strided<[?, ?], offset: ?>>"),
            "{ir}"
        );
    }
}
