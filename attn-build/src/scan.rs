//! Finding `attention!` kernels in source files, for [`Build::file`](crate::Build::file).
//!
//! Files are parsed with `syn` and searched for `attention! { .. }` / `attn::attention! { .. }`
//! item invocations, including inside inline modules; each kernel is parsed and checked with the
//! grammar that the macro uses (`attn_runtime::syntax`), so both sides agree on shapes, canonical
//! specs and symbols by construction. A kernel the grammar rejects is skipped: the macro reports it
//! at the offending token when the crate compiles, which a build script cannot do.

use crate::{
    Error,
    graph::{AttentionOptions, Dim, Graph, KernelDef, Layout, Mods, TensorType, Value},
};
use attn_runtime::DType;
use attn_runtime::options::default_scale;
use attn_runtime::syntax::{self, Invocation, Kernel};
use std::{fs, path::Path};

/// A kernel found in a file.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// The checked kernel.
    pub kernel: Kernel,
    /// `file:line` of its name.
    pub location: String,
}

/// What scanning one file gave.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scanned {
    /// The kernels, in source order.
    pub kernels: Vec<Found>,
    /// Set when the file is not valid Rust: rustc reports why when the crate compiles.
    pub unparsable: Option<String>,
}

/// Scans `path` (shown as `display` in locations).
pub(crate) fn scan_file(path: &Path, display: &str) -> Result<Scanned, Error> {
    let text = fs::read_to_string(path).map_err(|e| {
        Error::io(
            format!("reading {} (given to Build::file)", path.display()),
            e,
        )
    })?;
    Ok(scan_source(&text, display))
}

/// Scans Rust source text.
pub(crate) fn scan_source(text: &str, display: &str) -> Scanned {
    let file = match syn::parse_file(text) {
        Ok(f) => f,
        Err(e) => {
            let at = e.span().start();
            return Scanned {
                kernels: Vec::new(),
                unparsable: Some(format!("{display}:{}:{}: {e}", at.line, at.column + 1)),
            };
        }
    };
    let mut out = Scanned::default();
    visit(&file.items, display, &mut out.kernels);
    out
}

fn visit(items: &[syn::Item], display: &str, out: &mut Vec<Found>) {
    for item in items {
        match item {
            syn::Item::Macro(m) if is_attention(&m.mac.path) => {
                let Ok(inv) = syn::parse2::<Invocation>(m.mac.tokens.clone()) else {
                    continue;
                };
                // Invalid kernels are reported by the macro; keep the valid ones of the invocation
                // only if the whole invocation is valid (as the macro does).
                let Ok(kernels) = inv.check() else { continue };
                for (item, kernel) in inv.kernels.iter().zip(kernels) {
                    let line = item.name.span().start().line;
                    out.push(Found {
                        kernel,
                        location: format!("{display}:{line}"),
                    });
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    visit(items, display, out);
                }
            }
            _ => {}
        }
    }
}

/// `attention`, `attn::attention` or `::attn::attention`.
fn is_attention(path: &syn::Path) -> bool {
    let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segs.as_slice() {
        [one] => one == "attention" && path.leading_colon.is_none(),
        [krate, name] => krate == "attn" && name == "attention",
        _ => false,
    }
}

/// A static tensor type.
fn static_type(element: DType, shape: &[usize]) -> TensorType {
    let dims: Vec<Dim> = shape.iter().map(|&d| Dim::Static(d)).collect();
    TensorType::new(element, &dims)
}

/// The kernel as a graph with static shapes and contiguous arguments (what [`Build::file`](crate::Build::file)
/// compiles, and what `attnc` shows): element types as declared (masks, sinks and ALiBi slopes
/// f32), attention options (the spec's [`attn_runtime::options::AttentionOptions`], with its
/// window and softcap as constants, and its mask, sinks and ALiBi operands) as
/// [`AttentionOptions`].
pub fn kernel_def(k: &Kernel) -> Result<KernelDef, Error> {
    let mut g = Graph::new();
    let mut inputs: Vec<Value> = Vec::new();
    for i in &k.inputs {
        let ty = static_type(i.dtype, &i.shape);
        inputs.push(g.input(&i.name, ty));
    }
    let mut nodes: Vec<Value> = Vec::new();
    let val = |v: syntax::Value, nodes: &[Value]| match v {
        syntax::Value::Input(i) => inputs[i],
        syntax::Value::Node(i) => nodes[i],
    };
    for node in &k.nodes {
        let v = match &node.op {
            syntax::Op::Matmul(a, b) => g.matmul(val(*a, &nodes), val(*b, &nodes)),
            syntax::Op::Transpose(a) => g.transpose(val(*a, &nodes)),
            syntax::Op::Softmax(a) => g.softmax(val(*a, &nodes)),
            syntax::Op::Scale(a, f) => g.scale(val(*a, &nodes), *f),
            syntax::Op::Add(a, b) => g.add(val(*a, &nodes), val(*b, &nodes)),
            syntax::Op::Mul(a, b) => g.mul(val(*a, &nodes), val(*b, &nodes)),
            syntax::Op::Attention {
                q,
                k,
                v,
                mask,
                sinks,
                alibi,
                options,
                mods,
            } => {
                let q = val(*q, &nodes);
                let scale = exact_scale(options.scale, g.ty(q));
                let mods = mods.as_ref().map(|m| {
                    let inputs = m.inputs.iter().map(|v| val(*v, &nodes)).collect();
                    g.mods(Mods {
                        pair: m.mods.clone(),
                        inputs,
                    })
                });
                g.attention_with(
                    q,
                    val(*k, &nodes),
                    val(*v, &nodes),
                    AttentionOptions {
                        options: attn_runtime::options::AttentionOptions { scale, ..*options },
                        mask: mask.map(|m| val(m, &nodes)),
                        sinks: sinks.map(|x| val(x, &nodes)),
                        alibi: alibi.map(|x| val(x, &nodes)),
                        mods,
                        ..AttentionOptions::default()
                    },
                )
            }
            other => {
                return Err(Error::Config(format!(
                    "kernel `{}`: primitive {other:?} is not supported by this attn-build",
                    k.name
                )));
            }
        }
        .map_err(|e| Error::Config(format!("kernel `{}`: {e}", k.name)))?;
        let want = static_type(node.dtype, &node.shape);
        if g.ty(v) != &want {
            return Err(Error::Config(format!(
                "kernel `{}`: the graph inferred {} where the spec inferred {want}",
                k.name,
                g.ty(v)
            )));
        }
        nodes.push(v);
    }
    let out = val(k.output, &nodes);
    Ok(KernelDef::new(&k.name, g, out).with_layout(Layout::Contiguous))
}

/// The attention scale as the graph takes it: the spec's (an f32 value; `None` does not occur in
/// a checked spec and means `1/sqrt(D)` too), except that the default `1/sqrt(D)` of an f64
/// kernel is recomputed in f64 (the spec holds it rounded to f32).
fn exact_scale(scale: Option<f64>, q: &TensorType) -> Option<f64> {
    let d = match q.dims.last() {
        Some(Dim::Static(d)) => Some(*d),
        _ => None,
    };
    Some(match (scale, d) {
        (Some(s), Some(d)) if q.element == DType::F64 && default_scale(d) as f32 == s as f32 => {
            default_scale(d)
        }
        (Some(s), _) => s,
        (None, Some(d)) if q.element == DType::F64 => default_scale(d),
        (None, Some(d)) => f64::from(default_scale(d) as f32),
        // A dynamic head dim: the graph reports that the default scale needs a static one.
        (None, None) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Scale;

    const SRC: &str = r#"
        use attn::attention;
        attention! {
            /// Docs.
            pub fn window(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4];
        }
        pub mod inner {
            attn::attention! {
                pub fn scores(q: [6, 5], k: [7, 5]) -> [6, 7] {
                    let s = matmul(q, transpose(k));
                    softmax(scale(s, 0.25))
                }
            }
            mod deeper {
                ::attn::attention! { fn deep(x: [3]) -> [3] { softmax(x) } }
            }
        }
        fn not_scanned() {
            attention! { fn hidden(x: [3]) -> [3] { softmax(x) } }
        }
        attention! { fn broken(x: [3]) -> [4] { softmax(x) } }
        other::attention! { fn foreign(x: [3]) -> [3] { x } }
        mod file_module;
    "#;

    #[test]
    fn finds_kernels_in_inline_modules() {
        let s = scan_source(SRC, "src/lib.rs");
        assert!(s.unparsable.is_none());
        let names: Vec<&str> = s.kernels.iter().map(|f| f.kernel.name.as_str()).collect();
        assert_eq!(names, ["window", "scores", "deep"]);
        assert_eq!(s.kernels[0].location, "src/lib.rs:5");
        assert_eq!(s.kernels[1].location, "src/lib.rs:9");
    }

    #[test]
    fn converts_to_static_contiguous_graphs() {
        let s = scan_source(SRC, "src/lib.rs");
        for f in &s.kernels {
            let def = kernel_def(&f.kernel).unwrap();
            assert_eq!(def.layout, Layout::Contiguous);
            assert_eq!(
                def.output_type(),
                &TensorType::f32_static(f.kernel.output_shape())
            );
            let ir = def.to_transformer_ir(&f.kernel.symbol());
            assert!(ir.contains(&format!("@{}(", f.kernel.symbol())), "{ir}");
            assert!(!ir.contains('?'), "static shapes only: {ir}");
        }
        let ir = kernel_def(&s.kernels[1].kernel)
            .unwrap()
            .to_transformer_ir("x");
        assert!(
            ir.contains("transformer.scale") && ir.contains("2.5e-1"),
            "{ir}"
        );
    }

    const OPTIONS: &str = r#"
        attn::attention! {
            #[attn(causal, kv_heads = 2, dtype = bf16)]
            pub fn gqa(q: [2, 4, 8, 16], k: [2, 2, 8, 16], v: [2, 2, 8, 16], mask: [2, 1, 8, 8]) -> [2, 4, 8, 16];

            #[attn(dtype = f64, scale = 0.5)]
            pub fn wide(q: [3, 5, 8], k: [3, 7, 8], v: [3, 7, 4]) -> [3, 5, 4];

            #[attn(dtype = f16)]
            pub fn half(q: [6, 8], k: [9, 8], v: [9, 8]) -> [6, 8];

            #[attn(dtype = f64)]
            pub fn probs(q: [4, 8], k: [6, 8], m: [4, 6]) -> [4, 8] {
                attention(q, k, k, mask = m, causal = true, scale = 0.25)
            }
        }
    "#;

    #[test]
    fn options_and_dtypes_become_attention_options() {
        let s = scan_source(OPTIONS, "src/lib.rs");
        let defs: Vec<KernelDef> = s
            .kernels
            .iter()
            .map(|f| kernel_def(&f.kernel).unwrap())
            .collect();
        assert_eq!(defs.len(), 4);

        let g = &defs[0].graph;
        let types: Vec<String> = g.inputs().iter().map(|v| g.ty(*v).to_string()).collect();
        assert_eq!(
            types,
            [
                "tensor<2x4x8x16xbf16>",
                "tensor<2x2x8x16xbf16>",
                "tensor<2x2x8x16xbf16>",
                "tensor<2x1x8x8xf32>"
            ]
        );
        assert_eq!(defs[0].output_type().to_string(), "tensor<2x4x8x16xbf16>");
        match g.op(defs[0].output) {
            crate::graph::Op::Attention { scale, options, .. } => {
                assert_eq!(*scale, Scale::Constant(0.25));
                assert_eq!(options.mask, Some(g.inputs()[3]));
                assert_eq!(options.positions, None);
                assert!(options.options.causal);
            }
            other => panic!("{other:?}"),
        }
        let ir = defs[0].to_transformer_ir("gqa");
        assert!(ir.contains("causal = true"), "{ir}");
        assert!(
            ir.contains("array<i32: 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0>"),
            "{ir}"
        );
        assert!(ir.contains("memref<2x4x8x16xbf16>"), "{ir}");
        assert!(
            ir.contains("tensor<f32>"),
            "bf16 computes (and scales) in f32: {ir}"
        );

        let ir = defs[1].to_transformer_ir("wide");
        assert!(ir.contains("dense<5.0e-1> : tensor<f64>"), "{ir}");
        assert!(ir.contains("causal = false"), "{ir}");
        assert_eq!(defs[1].output_type().to_string(), "tensor<3x5x4xf64>");

        assert_eq!(defs[2].output_type().to_string(), "tensor<6x8xf16>");

        let ir = defs[3].to_transformer_ir("probs");
        assert!(
            ir.contains(
                "(tensor<4x8xf64>, tensor<6x8xf64>, tensor<6x8xf64>, tensor<f64>, tensor<4x6xf32>)"
            ),
            "{ir}"
        );
        assert!(ir.contains("causal = true"), "{ir}");
    }

    const VARIANTS: &str = r#"
        attn::attention! {
            #[attn(causal, window = (3, 0), softcap = 30.0, dtype = bf16)]
            pub fn local(q: [1, 4, 8, 16], k: [1, 2, 8, 16], v: [1, 2, 8, 16], sinks: [4], alibi: [4]) -> [1, 4, 8, 16];

            pub fn body(q: [6, 8], k: [9, 8], v: [9, 8], s: [6]) -> [6, 8] {
                attention(q, k, v, window = (2, 2), softcap = 5.0, sinks = s)
            }
        }
    "#;

    #[test]
    fn window_softcap_sinks_and_alibi_reach_the_graph() {
        let s = scan_source(VARIANTS, "src/lib.rs");
        assert_eq!(s.kernels.len(), 2);
        let def = kernel_def(&s.kernels[0].kernel).unwrap();
        let g = &def.graph;
        let types: Vec<String> = g.inputs().iter().map(|v| g.ty(*v).to_string()).collect();
        assert_eq!(&types[3..], ["tensor<4xf32>", "tensor<4xf32>"]);
        match g.op(def.output) {
            crate::graph::Op::Attention { options, .. } => {
                assert_eq!(options.options.window, Some((3, 0)));
                assert_eq!(options.options.softcap, Some(30.0));
                assert!(options.options.causal);
                assert_eq!(options.sinks, Some(g.inputs()[3]));
                assert_eq!(options.alibi, Some(g.inputs()[4]));
            }
            other => panic!("{other:?}"),
        }
        let def = kernel_def(&s.kernels[1].kernel).unwrap();
        match def.graph.op(def.output) {
            crate::graph::Op::Attention { options, .. } => {
                assert_eq!(options.options.window, Some((2, 2)));
                assert_eq!(options.sinks, Some(def.graph.inputs()[3]));
                assert_eq!(options.alibi, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unparsable_files_are_left_to_rustc() {
        let s = scan_source("fn (", "src/bad.rs");
        assert!(s.kernels.is_empty());
        assert!(s.unparsable.unwrap().starts_with("src/bad.rs:1:"));
    }
}
