//! The `memcheck` tool, run natively: every kernel of the default set once, each result checked
//! against the reference (it exits non-zero on a mismatch). Being an integration test of this
//! package, it also makes `cargo test --workspace --all-targets` build `target/debug/memcheck`,
//! which `./dev test` then runs under valgrind without a `cargo build` of its own (a cargo
//! invocation selecting other packages resolves other features and rebuilt attn's build script).

#[test]
fn every_default_kernel_runs_and_matches_the_reference() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memcheck"))
        .output()
        .expect("running memcheck");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
