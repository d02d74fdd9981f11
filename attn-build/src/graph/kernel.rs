//! A kernel ([`KernelDef`]: a graph, its output, layout and code generation) and its
//! `transformer`-dialect IR.

use super::{AttentionOptions, Graph, Layout, Op, Scale, TensorType, Value};
use attn_runtime::options;
use std::fmt::Write;

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
                    options,
                } => Self::attention_ir(i, g, [*q, *k, *v], *scale, options, ty),
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

    /// The lines of one `transformer.attention`: the scale's constant, if any, then the op, whose
    /// attributes are the plain-data options (the scale is an operand).
    fn attention_ir(
        i: usize,
        g: &Graph,
        [q, k, v]: [Value; 3],
        scale: Scale,
        options: &AttentionOptions,
        ty: &TensorType,
    ) -> String {
        // Every field, so that a new option cannot be forgotten here.
        let AttentionOptions {
            options:
                options::AttentionOptions {
                    causal,
                    scale: _,
                    window: _,
                    softcap: _,
                },
            scale_input: _,
            mask,
            positions,
        } = *options;
        let elem = ty.element.compute().name();
        let (pre, sname) = match scale {
            Scale::Constant(c) => (
                format!(
                    "    %s{i} = arith.constant dense<{}> : tensor<{elem}>\n",
                    float_literal_f64(c)
                ),
                format!("%s{i}"),
            ),
            Scale::Input(sv) => (String::new(), format!("%v{}", sv.0)),
        };
        let (mut names, mut types) = (String::new(), String::new());
        for x in [mask, positions].into_iter().flatten() {
            let _ = write!(names, ", %v{}", x.0);
            let _ = write!(types, ", {}", g.ty(x));
        }
        format!(
            "{pre}    %v{i} = \"transformer.attention\"(%v{}, %v{}, %v{}, {sname}{names}) {{causal = {causal}, operandSegmentSizes = array<i32: 1, 1, 1, 1, {}, {}>}} : ({}, {}, {}, tensor<{elem}>{types}) -> {ty}",
            q.0,
            k.0,
            v.0,
            usize::from(mask.is_some()),
            usize::from(positions.is_some()),
            g.ty(q),
            g.ty(k),
            g.ty(v)
        )
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
