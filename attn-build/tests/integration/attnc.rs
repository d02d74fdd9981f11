//! The `attnc` binary: every stage, assembly for the host and for AArch64, the C ABI, errors
//! (exit code 2 for bad specs and arguments) and progress lines under `ATTN_VERBOSE=1`.

use std::process::{Command, Output};

const SPEC: &str = "fn k(q: [64, 32], k: [64, 32], v: [64, 32]) -> [64, 32];";

fn attnc(args: &[&str], verbose: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_attnc"));
    c.args(args).env_remove("ATTN_VERBOSE");
    if verbose {
        c.env("ATTN_VERBOSE", "1");
    }
    c.output().expect("attnc runs")
}

fn ok(args: &[&str]) -> (String, String) {
    let out = attnc(args, false);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "attnc {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

fn fails(args: &[&str]) -> (i32, String) {
    let out = attnc(args, false);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_stage_prints_its_ir_after_the_c_abi() {
    let expect = [
        ("transformer", "\"transformer.attention\""),
        // The fused attention kernel: scf loops over vectors on tensors, no `transformer` op.
        ("linalg", "tensor<64x32xf32>"),
        ("bufferized", "memref<64x32xf32>"),
        ("loops", "scf.for"),
        ("llvm", "llvm.func @_mlir_ciface_attn_k_"),
        ("llvm-ir", "define void @_mlir_ciface_attn_k_"),
    ];
    for (stage, needle) in expect {
        let (out, stderr) = ok(&[SPEC, "--emit", stage]);
        assert!(
            out.contains(needle),
            "--emit {stage}: no `{needle}` in\n{out}"
        );
        assert!(stderr.is_empty(), "quiet without ATTN_VERBOSE: {stderr}");
        if stage != "transformer" {
            assert!(!out.contains("\"transformer."), "--emit {stage}:\n{out}");
        }
        let comment = if stage == "llvm-ir" { "; " } else { "// " };
        assert!(
            out.starts_with(&format!("{comment}C ABI of kernel `k`")),
            "--emit {stage}:\n{out}"
        );
    }
    // The transformer stage has no lowered ops yet; the LLVM dialect has nothing else.
    let (t, _) = ok(&[SPEC, "--emit", "transformer"]);
    assert!(!t.contains("linalg."), "{t}");
}

#[test]
fn c_abi_spells_element_types() {
    let spec = "#[attn(causal, kv_heads = 2, dtype = bf16)]\n\
                fn gqa(q: [1, 4, 8, 16], k: [1, 2, 8, 16], v: [1, 2, 8, 16], mask: [8, 8]) -> [1, 4, 8, 16];";
    let (abi, _) = ok(&[spec, "--emit", "abi"]);
    assert!(abi.contains("struct attn_memref_bf16_r4 {"), "{abi}");
    assert!(abi.contains("uint16_t *aligned;"), "{abi}");
    assert!(abi.contains("struct attn_memref_f32_r2 {"), "{abi}");
    assert!(
        abi.contains("const struct attn_memref_f32_r2 *mask /* [8, 8] */,\n    struct attn_memref_bf16_r4 *out /* [1, 4, 8, 16] */);"),
        "{abi}"
    );
    let (abi, _) = ok(&[
        "#[attn(dtype = f64)] fn s(x: [3]) -> [3] { softmax(x) }",
        "--emit",
        "abi",
    ]);
    assert!(abi.contains("double  *allocated;"), "{abi}");
}

#[test]
fn c_abi_has_one_descriptor_per_argument() {
    let spec = "fn scores(q: [6, 5], k: [7, 5]) -> [6, 7] { softmax(scale(matmul(q, transpose(k)), 0.5)) }\n\
                fn norm(x: [2, 3, 4]) -> [2, 3, 4] { softmax(x) }";
    let (abi, _) = ok(&[spec, "--emit", "abi"]);
    assert!(abi.contains("struct attn_memref_f32_r2 {"), "{abi}");
    assert!(abi.contains("struct attn_memref_f32_r3 {"), "{abi}");
    assert!(
        abi.contains("int64_t  strides[3];  /* offset 48, in elements */"),
        "{abi}"
    );
    assert!(abi.contains("};  /* 72 bytes, align 8 */"), "{abi}");
    assert!(abi.contains("};  /* 56 bytes, align 8 */"), "{abi}");
    assert!(abi.contains("void _mlir_ciface_attn_scores_"), "{abi}");
    assert!(
        abi.contains("const struct attn_memref_f32_r2 *q /* [6, 5] */,\n    const struct attn_memref_f32_r2 *k /* [7, 5] */,\n    struct attn_memref_f32_r2 *out /* [6, 7] */);"),
        "{abi}"
    );
    // --kernel picks one; the LLVM dialect agrees on the arity (one input and out: 2 pointers).
    let (llvm, _) = ok(&[spec, "--kernel", "norm", "--emit", "llvm"]);
    assert!(!llvm.contains("scores"), "{llvm}");
    let ciface = llvm
        .lines()
        .find(|l| l.contains("llvm.func @_mlir_ciface_attn_norm_"))
        .expect("the C interface wrapper");
    assert_eq!(ciface.matches("!llvm.ptr").count(), 2, "{ciface}");
}

#[test]
fn assembly_for_host_and_aarch64() {
    let (host, _) = ok(&[SPEC, "--emit", "asm"]);
    assert!(host.contains("_mlir_ciface_attn_k_"), "{host}");
    let (arm, _) = ok(&[
        SPEC,
        "--emit",
        "asm",
        "--target",
        "aarch64-unknown-linux-gnu",
        "--cpu",
        "neoverse-n1",
    ]);
    assert!(
        arm.contains("aarch64-unknown-linux-gnu"),
        "ABI header names the target"
    );
    // AArch64 mnemonics and registers.
    assert!(arm.contains("\tret") && arm.contains(" x0"), "{arm}");
    assert!(arm.contains("fmla") || arm.contains("fmadd"), "{arm}");
}

#[test]
fn verbose_progress_goes_to_stderr() {
    let out = attnc(&[SPEC, "--emit", "loops"], true);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "attnc: [",
        "parsed 1 kernel",
        "`k`: linalg",
        "`k`: llvm",
        "done",
    ] {
        assert!(err.contains(needle), "no `{needle}` in\n{err}");
    }
}

#[test]
fn bad_specs_and_arguments_exit_2() {
    let (code, err) = fails(&["fn k(q: [64, 32], k: [64, 32], v: [64, 32]) -> [64, 33];"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("differs from the inferred shape [64, 32]") && err.contains("spec:1:48"),
        "{err}"
    );
    let (code, err) = fails(&["fn k(q: [4, 4]) -> [4, 4] { relu(q) }"]);
    assert_eq!(code, 2);
    assert!(err.contains("relu"), "{err}");
    let (code, err) = fails(&["fn k(q: [64, 32]"]);
    assert_eq!(code, 2);
    assert!(err.contains("not valid Rust tokens"), "{err}");
    let (code, err) = fails(&[""]);
    assert_eq!(code, 2);
    assert!(err.contains("declares no kernel"), "{err}");
    let (code, err) = fails(&[SPEC, "--emit", "bogus"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown --emit `bogus`") && err.contains("usage:"),
        "{err}"
    );
    let (code, err) = fails(&[SPEC, "--kernel", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no kernel `nope`"), "{err}");
    let (code, err) = fails(&[SPEC, "--target", "riscv64gc-unknown-linux-gnu"]);
    assert_eq!(code, 2);
    assert!(err.contains("unsupported --target"), "{err}");
    let (code, _) = fails(&[]);
    assert_eq!(code, 2);
    let (help, _) = ok(&["--help"]);
    assert!(help.starts_with("usage: attnc"), "{help}");
}
