//! attn-build's integration tests, as one test binary: every binary that uses code generation
//! links LLVM/MLIR (about 300 MB in a debug build), so one binary per file cost gigabytes of
//! `target/` and a link each. Each file is a module; a test's name is `file::test`
//! (`cargo test -p attn-build --test integration cache::` runs those of `cache.rs`).
//!
//! The tests run on parallel threads of one process: none changes the process environment.
//! Those that need another environment (`cache.rs`, `diagnostics.rs`) run one test of this
//! binary in a child process with it, see [`test_path`].
//!
//! Without the `codegen` feature (`cargo test -p attn-build --no-default-features`) only the
//! modules that compile nothing are built: `bindings_only` and `fuzz_spec`.

#[cfg(feature = "codegen")]
mod attnc;
mod bindings_only;
#[cfg(feature = "codegen")]
mod cache;
#[cfg(feature = "codegen")]
mod diagnostics;
#[cfg(feature = "codegen")]
mod file_kernels;
#[cfg(feature = "codegen")]
mod flash;
mod fuzz_spec;
#[cfg(feature = "codegen")]
mod harness;
#[cfg(feature = "codegen")]
mod mods;
#[cfg(feature = "codegen")]
mod parallel;
#[cfg(feature = "codegen")]
mod pipeline;
#[cfg(feature = "codegen")]
mod primitives;
#[cfg(feature = "codegen")]
mod snapshots;
#[cfg(feature = "codegen")]
mod targets;
#[cfg(feature = "codegen")]
mod variants;

/// The name the test harness gives test `name` of the module whose `module_path!()` is
/// `module` (the module path without this crate's name), for running exactly that test in a
/// child process (`<exe> <path> --exact`).
#[cfg(feature = "codegen")]
fn test_path(module: &str, name: &str) -> String {
    let module = module.split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}
