//! End-to-end pipeline checks: every primitive lowers through every stage to an object file.

use attn_build::{
    Build, Error, Stage,
    graph::{Dim, Graph, KernelDef, Layout, Scale, TensorType},
};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attn-build-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn kernels() -> Vec<KernelDef> {
    let dynamic = |r| TensorType::f32_dynamic(r);
    let mut out = Vec::new();
    for rank in [2usize, 3] {
        let mut g = Graph::new();
        let a = g.input("a", dynamic(rank));
        let b = g.input("b", dynamic(rank));
        let c = g.matmul(a, b).unwrap();
        out.push(KernelDef::new(&format!("matmul_r{rank}"), g, c));
    }
    for rank in [1usize, 3] {
        let mut g = Graph::new();
        let x = g.input("x", dynamic(rank));
        let y = g.softmax(x).unwrap();
        out.push(KernelDef::new(&format!("softmax_r{rank}"), g, y));
    }
    let mut g = Graph::new();
    let x = g.input("x", dynamic(4));
    let y = g.transpose(x).unwrap();
    out.push(KernelDef::new("transpose_r4", g, y));
    let mut g = Graph::new();
    let a = g.input("a", dynamic(2));
    let b = g.input("b", dynamic(2));
    let s = g.input("s", dynamic(0));
    let c = g.add(a, b).unwrap();
    let d = g.mul(c, s).unwrap();
    let e = g.scale(d, 0.5).unwrap();
    out.push(KernelDef::new("elementwise", g, e));
    for rank in [2usize, 4] {
        let mut g = Graph::new();
        let q = g.input("q", dynamic(rank));
        let k = g.input("k", dynamic(rank));
        let v = g.input("v", dynamic(rank));
        let s = g.input("scale", dynamic(0));
        let o = g.attention(q, k, v, Scale::Input(s)).unwrap();
        out.push(KernelDef::new(&format!("attention_r{rank}"), g, o));
    }
    let mut g = Graph::new();
    let q = g.input("q", TensorType::f32_static(&[37, 80]));
    let k = g.input("k", TensorType::f32(&[Dim::Static(53), Dim::Dynamic]));
    let v = g.input("v", TensorType::f32_static(&[53, 24]));
    let o = g.attention(q, k, v, Scale::Constant(0.125)).unwrap();
    out.push(KernelDef::new("attention_static", g, o).with_layout(Layout::Contiguous));
    out
}

#[test]
fn every_primitive_compiles_and_dumps_every_stage() {
    let dir = scratch("all");
    let mut build = Build::new();
    build
        .out_dir(&dir)
        .cache_dir(dir.join("cache"))
        .dump_ir(dir.join("ir"))
        .cargo_metadata(false);
    for k in kernels() {
        build.kernel(k);
    }
    let report = build
        .compile("attn_test_kernels")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.kernels.len(), kernels().len());
    for k in &report.kernels {
        let bytes = std::fs::read(&k.object).unwrap();
        assert!(
            bytes.starts_with(b"\x7fELF"),
            "{} is not an ELF object",
            k.object.display()
        );
        for stage in Stage::ALL {
            let p = dir.join("ir").join(&k.name).join(stage.file_name());
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|_| panic!("missing {}", p.display()));
            assert!(!text.is_empty());
        }
        let linalg =
            std::fs::read_to_string(dir.join("ir").join(&k.name).join("02-linalg.mlir")).unwrap();
        assert!(
            !linalg.contains("transformer."),
            "{}: transformer ops left:\n{linalg}",
            k.name
        );
        let ll =
            std::fs::read_to_string(dir.join("ir").join(&k.name).join("06-llvm-ir.ll")).unwrap();
        assert!(
            // The dump is of the variant this machine runs.
            k.variants
                .iter()
                .any(|v| ll.contains(&format!("_mlir_ciface_{}", v.symbol))),
            "{}",
            k.name
        );
    }
    let bindings = std::fs::read_to_string(&report.bindings).unwrap();
    assert!(bindings.contains("pub static ATTENTION_R2"));
    assert!(dir.join("libattn_test_kernels.a").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cached_objects_are_reused() {
    let dir = scratch("cache");
    let k = kernels().remove(0);
    let mut build = Build::new();
    build
        .out_dir(&dir)
        .cache_dir(dir.join("cache"))
        .cargo_metadata(false)
        .kernel(k);
    let first = build.compile_objects().unwrap();
    assert!(!first[0].cached);
    let second = build.compile_objects().unwrap();
    assert!(second[0].cached);
    // A truncated entry is detected and rebuilt.
    let bytes = std::fs::read(&first[0].object).unwrap();
    std::fs::write(&first[0].object, &bytes[..bytes.len() / 2]).unwrap();
    let third = build.compile_objects().unwrap();
    assert!(!third[0].cached);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_verifier_rejects_ill_typed_transformer_ir() {
    let c = attn_build::pipeline::Compiler::new().unwrap();
    let bad = r#"module {
  func.func @k(%a: tensor<4x4xf32>, %out: memref<4x4xf32>) {
    %0 = "transformer.scale"(%a) {factor = 2 : i32} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    bufferization.materialize_in_destination %0 in restrict writable %out : (tensor<4x4xf32>, memref<4x4xf32>) -> ()
    return
  }
}"#;
    let err = c
        .lower("bad_scale", bad, "identity-layout-map", |_, _| {}, false)
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("bad_scale") && msg.contains("transformer"),
        "{msg}"
    );
    let not_tensor = r#"module {
  func.func @k(%a: f32) {
    %0 = "transformer.softmax"(%a) : (f32) -> f32
    return
  }
}"#;
    let err = c
        .lower(
            "not_tensor",
            not_tensor,
            "identity-layout-map",
            |_, _| {},
            false,
        )
        .expect_err("must fail");
    assert!(matches!(err, Error::Mlir { .. }), "{err}");
}

#[test]
fn the_lowering_rejects_mismatched_static_shapes() {
    let c = attn_build::pipeline::Compiler::new().unwrap();
    let bad = r#"module {
  func.func @k(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>, %out: memref<2x5xf32>) {
    %0 = "transformer.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
    bufferization.materialize_in_destination %0 in restrict writable %out : (tensor<2x5xf32>, memref<2x5xf32>) -> ()
    return
  }
}"#;
    let err = c
        .lower("bad_matmul", bad, "identity-layout-map", |_, _| {}, false)
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("bad_matmul") && msg.contains("linalg") && msg.contains("inner dimensions"),
        "{msg}"
    );
}
