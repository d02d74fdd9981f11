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
    /// More outputs, each written to an argument of that name after `out` (e.g. an attention's
    /// log-sum-exp, `lse`).
    pub extra_outputs: Vec<(String, Value)>,
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
            extra_outputs: Vec::new(),
            layout: Layout::Strided,
            codegen: Codegen::Fused,
        }
    }

    /// Adds an output argument `name` (after `out` and the outputs added before) holding
    /// `value`.
    pub fn with_output(mut self, name: &str, value: Value) -> Self {
        self.extra_outputs.push((name.to_string(), value));
        self
    }

    /// Every output: `("out", output)`, then the extra ones.
    pub fn outputs(&self) -> Vec<(String, Value)> {
        let mut all = vec![("out".to_string(), self.output)];
        all.extend(self.extra_outputs.iter().cloned());
        all
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
        let mut args: Vec<String> = inputs
            .iter()
            .map(|v| format!("%v{}: {}", v.0, g.ty(*v)))
            .collect();
        for (name, v) in self.outputs() {
            args.push(format!("%{name}: {}", g.ty(v).memref(self.layout)));
        }
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
                } => {
                    // Its log-sum-exp, when some node takes it, is the op's second result.
                    let lse = g
                        .nodes
                        .iter()
                        .position(|n| matches!(n.op, Op::Lse(a) if a.0 == i))
                        .map(|j| (j, g.nodes[j].ty.clone()));
                    Self::attention_ir(i, g, [*q, *k, *v], *scale, options, ty, lse)
                }
                Op::Lse(_) => continue,
            };
            let _ = writeln!(s, "{line}");
        }
        for (name, v) in self.outputs() {
            let t = g.ty(v);
            let _ = writeln!(
                s,
                "    bufferization.materialize_in_destination %v{} in restrict writable %{name} : ({t}, {}) -> ()",
                v.0,
                t.memref(self.layout)
            );
        }
        let _ = writeln!(s, "    return\n  }}");
        // The score/mask mods of the attentions: private functions named by the ops.
        for (i, node) in g.nodes.iter().enumerate() {
            let Op::Attention { q, options, .. } = &node.op else {
                continue;
            };
            let Some(m) = options.mods.and_then(|r| g.mods_of(r)) else {
                continue;
            };
            let types: Vec<TensorType> = m.inputs.iter().map(|v| g.ty(*v).clone()).collect();
            let ct = g.ty(*q).element.compute();
            for (kind, e) in m.pair.each() {
                let name = mod_symbol(kind, i);
                s.push_str(&super::mods::function_text(&name, kind, e, &types, ct));
            }
        }
        let _ = writeln!(s, "}}");
        s
    }

    /// The lines of one `transformer.attention`: constants of the scale and of the window and
    /// softcap options, if any, then the op: its operands in [`super::ATTENTION_OPTIONAL`]
    /// order, then the mods' inputs, with their segment sizes, `causal` and the mods' function
    /// symbols as attributes, and with `lse` (the node and type of its log-sum-exp) a second
    /// result.
    fn attention_ir(
        i: usize,
        g: &Graph,
        [q, k, v]: [Value; 3],
        scale: Scale,
        options: &AttentionOptions,
        ty: &TensorType,
        lse: Option<(usize, TensorType)>,
    ) -> String {
        // Every field, so that a new option cannot be forgotten here.
        let AttentionOptions {
            options:
                options::AttentionOptions {
                    causal,
                    scale: _,
                    window,
                    softcap,
                },
            scale_input: _,
            mask,
            positions,
            window_input,
            softcap_input,
            sinks,
            alibi,
            mods,
        } = *options;
        let elem = ty.element.compute().name();
        let mut pre = String::new();
        let sname = match scale {
            Scale::Constant(c) => {
                let _ = writeln!(
                    pre,
                    "    %s{i} = arith.constant dense<{}> : tensor<{elem}>",
                    float_literal_f64(c)
                );
                format!("%s{i}")
            }
            Scale::Input(sv) => format!("%v{}", sv.0),
        };
        // Each optional operand: its name and type, or nothing.
        let val = |x: Option<Value>| x.map(|x| (format!("%v{}", x.0), g.ty(x).to_string()));
        let window = match (window_input, window) {
            (Some(w), _) => val(Some(w)),
            (None, Some((l, r))) => {
                // usize::MAX (unbounded) and other huge values become 2^30 (unbounded).
                let side = |n: usize| float_literal_f64(n.min(1 << 30) as f64);
                let _ = writeln!(
                    pre,
                    "    %w{i} = arith.constant dense<[{}, {}]> : tensor<2xf32>",
                    side(l),
                    side(r)
                );
                Some((format!("%w{i}"), "tensor<2xf32>".to_string()))
            }
            (None, None) => None,
        };
        let softcap = match (softcap_input, softcap) {
            (Some(c), _) => val(Some(c)),
            (None, Some(c)) => {
                let _ = writeln!(
                    pre,
                    "    %c{i} = arith.constant dense<{}> : tensor<f32>",
                    float_literal(c)
                );
                Some((format!("%c{i}"), "tensor<f32>".to_string()))
            }
            (None, None) => None,
        };
        let optional = [
            val(mask),
            val(positions),
            window,
            softcap,
            val(sinks),
            val(alibi),
        ];
        let (mut names, mut types, mut sizes) = (String::new(), String::new(), String::new());
        for x in &optional {
            let _ = write!(sizes, ", {}", usize::from(x.is_some()));
            if let Some((n, t)) = x {
                let _ = write!(names, ", {n}");
                let _ = write!(types, ", {t}");
            }
        }
        // The mods: their inputs (the last, variadic segment) and their functions' symbols.
        let mut attrs = String::new();
        let n_mod = match mods.and_then(|r| g.mods_of(r)) {
            Some(m) => {
                for v in &m.inputs {
                    let _ = write!(names, ", %v{}", v.0);
                    let _ = write!(types, ", {}", g.ty(*v));
                }
                for (kind, _) in m.pair.each() {
                    let _ = write!(attrs, ", {} = @{}", kind.name(), mod_symbol(kind, i));
                }
                m.inputs.len()
            }
            None => 0,
        };
        for slot in 0..super::MOD_INPUTS {
            let _ = write!(sizes, ", {}", usize::from(slot < n_mod));
        }
        let (lhs, results, rsizes) = match &lse {
            Some((j, t)) => (format!("%v{i}, %v{j}"), format!("({ty}, {t})"), "1, 1"),
            None => (format!("%v{i}"), ty.to_string(), "1, 0"),
        };
        format!(
            "{pre}    {lhs} = \"transformer.attention\"(%v{}, %v{}, %v{}, {sname}{names}) {{causal = {causal}{attrs}, operandSegmentSizes = array<i32: 1, 1, 1, 1{sizes}>, resultSegmentSizes = array<i32: {rsizes}>}} : ({}, {}, {}, tensor<{elem}>{types}) -> {results}",
            q.0,
            k.0,
            v.0,
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

/// The symbol of the function of mod `kind` of the attention at node `i`.
fn mod_symbol(kind: attn_runtime::mods::ModKind, i: usize) -> String {
    format!("__attn_{}_{i}", kind.name())
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
