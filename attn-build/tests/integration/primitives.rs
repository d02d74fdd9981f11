//! The f32 primitives `matmul` and `softmax` lower to the register-tiled kernels of
//! `primitives.rs` (inlined, vectorized, no copies, polynomial exp), for every rank and for static
//! and dynamic shapes; f64 keeps the naive `linalg` lowering. Their numerics are tested against
//! the f64 reference by the root crate (tests/integration/primitives.rs, tests/integration/properties.rs).

use attn_build::{
    Build,
    graph::{Dim, ElementType, Graph, KernelDef, Layout, TensorType},
};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attn-prim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn matmul(name: &str, ty: TensorType, layout: Layout) -> KernelDef {
    let mut g = Graph::new();
    let (a, b) = (g.input("a", ty.clone()), g.input("b", ty));
    let c = g.matmul(a, b).unwrap();
    KernelDef::new(name, g, c).with_layout(layout)
}

fn softmax(name: &str, ty: TensorType, layout: Layout) -> KernelDef {
    let mut g = Graph::new();
    let x = g.input("x", ty);
    let y = g.softmax(x).unwrap();
    KernelDef::new(name, g, y).with_layout(layout)
}

#[test]
fn primitives_lower_to_the_tiled_kernels() {
    let dir = scratch("ir");
    let kernels = vec![
        matmul("mm_r2", TensorType::f32_dynamic(2), Layout::Strided),
        matmul("mm_r3", TensorType::f32_dynamic(3), Layout::Strided),
        matmul(
            "mm_static",
            TensorType::f32_static(&[37, 37]),
            Layout::Contiguous,
        ),
        softmax("sm_r1", TensorType::f32_dynamic(1), Layout::Strided),
        softmax("sm_r2", TensorType::f32_dynamic(2), Layout::Strided),
        softmax("sm_r4", TensorType::f32_dynamic(4), Layout::Strided),
        softmax(
            "sm_static",
            TensorType::f32_static(&[5, 33]),
            Layout::Contiguous,
        ),
    ];
    let mut build = Build::new();
    build
        .out_dir(&dir)
        .cache_dir(dir.join("cache"))
        .cargo_metadata(false)
        .dump_ir(dir.join("ir"));
    for k in kernels {
        build.kernel(k);
    }
    let compiled = build.compile_objects().unwrap_or_else(|e| panic!("{e}"));
    for k in &compiled {
        let stage =
            |f: &str| std::fs::read_to_string(dir.join("ir").join(&k.name).join(f)).unwrap();
        let linalg = stage("02-linalg.mlir");
        assert!(
            !linalg.contains("linalg.") && !linalg.contains("func.call"),
            "{}: not the inlined kernel:\n{linalg}",
            k.name
        );
        let bufferized = stage("03-bufferized.mlir");
        assert!(
            !bufferized.contains("memref.copy"),
            "{}: the output is copied:\n{bufferized}",
            k.name
        );
        let ll = stage("06-llvm-ir.ll");
        assert!(
            !ll.contains("@expf") && !ll.contains("@llvm.exp."),
            "{}: exp is not the polynomial",
            k.name
        );
        assert!(
            ll.contains("@llvm.fma.v") || ll.contains("@llvm.fmuladd.v"),
            "{}: no vector FMA in LLVM IR",
            k.name
        );
        if k.name.starts_with("sm") {
            let sums: Vec<&str> = ll
                .lines()
                .filter(|l| l.contains("call") && l.contains("@llvm.vector.reduce.fadd"))
                .collect();
            assert!(
                !sums.is_empty() && sums.iter().all(|l| l.contains("reassoc")),
                "{}: the row sums are not reassociable reductions: {sums:?}",
                k.name
            );
            // No flag assuming the absence of NaN or infinities.
            assert!(
                !ll.contains(" nnan") && !ll.contains(" ninf") && !ll.contains(" fast "),
                "{}: NaN/inf-assuming fast-math flags",
                k.name
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn f64_primitives_keep_the_naive_lowering() {
    let dir = scratch("f64");
    let ty = TensorType::new(ElementType::F64, &[Dim::Dynamic, Dim::Dynamic]);
    let mut g = Graph::new();
    let (a, b) = (g.input("a", ty.clone()), g.input("b", ty));
    let c = g.matmul(a, b).unwrap();
    let y = g.softmax(c).unwrap();
    let mut build = Build::new();
    build
        .out_dir(&dir)
        .cache_dir(dir.join("cache"))
        .cargo_metadata(false)
        .dump_ir(dir.join("ir"));
    build.kernel(KernelDef::new("f64_mm_sm", g, y));
    build.compile_objects().unwrap_or_else(|e| panic!("{e}"));
    let linalg = std::fs::read_to_string(dir.join("ir/f64_mm_sm/02-linalg.mlir")).unwrap();
    assert!(linalg.contains("linalg.matmul"), "{linalg}");
    assert!(!linalg.contains("__attn_"), "{linalg}");
    let _ = std::fs::remove_dir_all(&dir);
}
