//! Code generation for explicit targets: cross-compiled AArch64 objects, x86-64 ISA levels and
//! assembly output.

use attn_build::{
    graph::{Graph, KernelDef, Scale, TensorType},
    pipeline::Compiler,
    target::{OutputKind, TargetSpec, elf_machine, emit},
};

fn attention_ir() -> String {
    let mut g = Graph::new();
    let q = g.input("q", TensorType::f32_dynamic(2));
    let k = g.input("k", TensorType::f32_dynamic(2));
    let v = g.input("v", TensorType::f32_dynamic(2));
    let o = g.attention(q, k, v, Scale::Constant(0.125)).unwrap();
    KernelDef::new("t", g, o).to_transformer_ir("attn_target_test")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("attn-target-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn aarch64_objects_on_any_host() {
    let c = Compiler::new().unwrap();
    let module = c
        .lower(
            "t",
            &attention_ir(),
            "fully-dynamic-layout-map",
            |_, _| {},
            false,
        )
        .unwrap();
    let dir = scratch("aarch64");
    let obj = dir.join("k.o");
    emit(
        &module,
        &TargetSpec::new("aarch64-unknown-linux-gnu", "generic"),
        OutputKind::Object,
        &obj,
    )
    .unwrap();
    let bytes = std::fs::read(&obj).unwrap();
    assert_eq!(elf_machine(&bytes), Some(183), "not an AArch64 ELF object");
    let asm = dir.join("k.s");
    emit(
        &module,
        &TargetSpec::new("aarch64-unknown-linux-gnu", "neoverse-n1"),
        OutputKind::Assembly,
        &asm,
    )
    .unwrap();
    let text = std::fs::read_to_string(&asm).unwrap();
    assert!(text.contains("_mlir_ciface_attn_target_test"));
    assert!(
        text.contains("fmul") || text.contains("fmla") || text.contains("fmadd"),
        "no AArch64 float code"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn x86_isa_levels() {
    let c = Compiler::new().unwrap();
    let module = c
        .lower(
            "t",
            &attention_ir(),
            "fully-dynamic-layout-map",
            |_, _| {},
            false,
        )
        .unwrap();
    let dir = scratch("x86");
    for cpu in ["x86-64", "x86-64-v3", "x86-64-v4"] {
        let obj = dir.join(format!("{cpu}.o"));
        emit(
            &module,
            &TargetSpec::new("x86_64-unknown-linux-gnu", cpu),
            OutputKind::Object,
            &obj,
        )
        .unwrap();
        assert_eq!(elf_machine(&std::fs::read(&obj).unwrap()), Some(62));
    }
    let host = TargetSpec::host();
    assert!(!host.cpu.is_empty() && !host.triple.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_targets_are_errors() {
    let c = Compiler::new().unwrap();
    let module = c
        .lower(
            "t",
            &attention_ir(),
            "fully-dynamic-layout-map",
            |_, _| {},
            false,
        )
        .unwrap();
    let dir = scratch("unknown");
    let e = emit(
        &module,
        &TargetSpec::new("nonsense-unknown-none", "x"),
        OutputKind::Object,
        &dir.join("x.o"),
    )
    .unwrap_err();
    assert!(e.contains("nonsense"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
