//! `Build::skip_codegen`: bindings and the `attention!` manifest without compiling or linking
//! anything (docs.rs, `cargo doc` without LLVM). Runs with and without the `codegen` feature.

use attn_build::{
    Build,
    graph::{Graph, KernelDef, TensorType},
};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attn-bindings-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn build(dir: &std::path::Path, skip: bool) -> Build {
    let mut g = Graph::new();
    let (a, b) = (
        g.input("a", TensorType::f32_dynamic(2)),
        g.input("b", TensorType::f32_dynamic(2)),
    );
    let c = g.matmul(a, b).unwrap();
    let src = dir.join("lib.rs");
    std::fs::write(
        &src,
        "attn::attention! { pub fn small(q: [4, 2], k: [4, 2], v: [4, 2]) -> [4, 2]; }\n",
    )
    .unwrap();
    let mut b = Build::new();
    b.out_dir(dir)
        .cache_dir(dir.join("cache"))
        .cargo_metadata(false)
        .skip_codegen(skip)
        .kernel(KernelDef::new("mm", g, c))
        .file(&src);
    b
}

#[test]
fn skipping_codegen_writes_bindings_and_manifest_only() {
    let dir = scratch("skip");
    let report = build(&dir, true).compile("docs_only").unwrap();
    assert!(report.kernels.is_empty());
    let text = std::fs::read_to_string(&report.bindings).unwrap();
    assert!(
        text.contains("pub static MM: ::attn_runtime::ffi::Kernel"),
        "{text}"
    );
    assert!(
        text.contains("#[link_name = \"_mlir_ciface_attn_mm_"),
        "{text}"
    );
    let manifest = std::fs::read_to_string(dir.join("docs_only.attn-manifest")).unwrap();
    assert!(manifest.contains("small"), "{manifest}");
    // Nothing compiled, archived or cached.
    assert!(!dir.join("libdocs_only.a").exists());
    assert!(!dir.join("cache").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bindings written without code generation are those of a real build, byte for byte.
#[cfg(feature = "codegen")]
#[test]
fn bindings_without_codegen_match_a_real_build() {
    let dir = scratch("same");
    let skipped = build(&dir, true).compile("same").unwrap();
    let skipped_text = std::fs::read_to_string(&skipped.bindings).unwrap();
    let skipped_manifest = std::fs::read_to_string(dir.join("same.attn-manifest")).unwrap();
    let real = build(&dir, false).compile("same").unwrap();
    assert!(!real.kernels.is_empty());
    assert_eq!(
        std::fs::read_to_string(&real.bindings).unwrap(),
        skipped_text
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("same.attn-manifest")).unwrap(),
        skipped_manifest
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without the `codegen` feature, compiling is an error that says what is missing.
#[cfg(not(feature = "codegen"))]
#[test]
fn compiling_without_codegen_is_an_error() {
    let dir = scratch("nocodegen");
    let e = build(&dir, false).compile("x").unwrap_err().to_string();
    assert!(e.contains("without its `codegen` feature"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
