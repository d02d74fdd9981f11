//! Finding `attention!` kernels in source files, for [`Build::file`](crate::Build::file).
//!
//! Files are parsed with `syn` and searched for `attention! { .. }` / `attn::attention! { .. }`
//! item invocations, including inside inline modules; each kernel is parsed and checked with the
//! grammar that the macro uses (`attn_runtime::syntax`), so both sides agree on shapes, canonical
//! specs and symbols by construction. A kernel the grammar rejects is skipped: the macro reports it
//! at the offending token when the crate compiles, which a build script cannot do.

use crate::{
    Error,
    graph::{Graph, KernelDef, Layout, Scale, TensorType, Value},
};
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

/// The kernel as a graph with static shapes and contiguous arguments (what [`Build::file`](crate::Build::file)
/// compiles, and what `attnc` shows).
pub fn kernel_def(k: &Kernel) -> Result<KernelDef, Error> {
    let mut g = Graph::new();
    let inputs: Vec<Value> = k
        .inputs
        .iter()
        .map(|i| g.input(&i.name, TensorType::f32_static(&i.shape)))
        .collect();
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
            syntax::Op::Attention { q, k, v, scale } => g.attention(
                val(*q, &nodes),
                val(*k, &nodes),
                val(*v, &nodes),
                Scale::Constant(*scale),
            ),
            other => {
                return Err(Error::Config(format!(
                    "kernel `{}`: primitive {other:?} is not supported by this attn-build",
                    k.name
                )));
            }
        }
        .map_err(|e| Error::Config(format!("kernel `{}`: {e}", k.name)))?;
        let want = TensorType::f32_static(&node.shape);
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn unparsable_files_are_left_to_rustc() {
        let s = scan_source("fn (", "src/bad.rs");
        assert!(s.kernels.is_empty());
        assert!(s.unparsable.unwrap().starts_with("src/bad.rs:1:"));
    }
}
