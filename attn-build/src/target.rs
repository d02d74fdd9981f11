//! Code generation for an explicit target: triple, CPU and features, through LLVM's
//! `TargetMachine` (the LLVM C API, linked into `mlir-sys`).
//!
//! This is what lets `attn-build` emit objects for Cargo's `TARGET` when cross-compiling (e.g.
//! `aarch64-unknown-linux-gnu` on an x86-64 host), honor `-C target-cpu` / `ATTN_TARGET_CPU`, and
//! build several ISA levels of one kernel for run-time dispatch.
//!
//! The object emission (`emit`: LLVM IR, then the optimization pipeline [`LLVM_PASSES`], then
//! code generation, each step timed) and the exact host CPU need the `codegen` feature. The
//! LLVM C API itself is called in the crate's `ffi` module.

#[cfg(feature = "codegen")]
use crate::ffi::llvm::{self, FileType, LlvmModule, TargetMachine};
#[cfg(feature = "codegen")]
use melior::ir::Module;
use std::time::Duration;
#[cfg(feature = "codegen")]
use std::{path::Path, time::Instant};

/// A code-generation target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetSpec {
    /// LLVM target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub triple: String,
    /// CPU name (`x86-64-v3`, `znver3`, `generic`, ...).
    pub cpu: String,
    /// Feature string (`+avx2,+fma`), may be empty.
    pub features: String,
}

/// What `emit` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// A relocatable object file.
    Object,
    /// Textual assembly.
    Assembly,
}

/// The LLVM optimization pipeline run on every kernel before code generation (a textual
/// pipeline of the new pass manager, as `opt -passes=` takes).
pub const LLVM_PASSES: &str = "default<O3>";

/// How long each LLVM step of `emit` took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmitTimes {
    /// Translating the LLVM-dialect module to LLVM IR.
    pub translate: Duration,
    /// The LLVM optimization pipeline ([`LLVM_PASSES`]).
    pub optimize: Duration,
    /// Code generation (instruction selection, register allocation, ...) and writing the file.
    pub codegen: Duration,
}

impl TargetSpec {
    /// The machine running this code, with its exact CPU and features.
    #[cfg(feature = "codegen")]
    pub fn host() -> Self {
        let (triple, cpu, features) = llvm::host();
        TargetSpec {
            triple,
            cpu,
            features,
        }
    }

    /// The machine running this code, without LLVM (no `codegen` feature): Cargo's `HOST` triple
    /// (or the architecture this was compiled for, on Linux), CPU `generic`, no features.
    #[cfg(not(feature = "codegen"))]
    pub fn host() -> Self {
        let triple = std::env::var("HOST")
            .unwrap_or_else(|_| format!("{}-unknown-linux-gnu", std::env::consts::ARCH));
        TargetSpec::new(&triple, "generic")
    }

    /// A target for `triple` with a CPU name and no extra features.
    pub fn new(triple: &str, cpu: &str) -> Self {
        TargetSpec {
            triple: triple.to_string(),
            cpu: cpu.to_string(),
            features: String::new(),
        }
    }

    /// The short architecture name of the triple (`x86_64`, `aarch64`, ...).
    pub fn arch(&self) -> &str {
        self.triple.split('-').next().unwrap_or("")
    }

    /// A stable text for cache keys.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.triple, self.cpu, self.features)
    }
}

/// Translates `module` (LLVM dialect) to LLVM IR, optimizes it with [`LLVM_PASSES`] for
/// `target` and writes an object or assembly file to `path`; returns the time of each step.
#[cfg(feature = "codegen")]
pub fn emit(
    module: &Module,
    target: &TargetSpec,
    kind: OutputKind,
    path: &Path,
) -> Result<EmitTimes, String> {
    emit_with_passes(module, target, kind, path, LLVM_PASSES)
}

/// [`emit`] with another LLVM optimization pipeline (`default<O2>`, `default<O3>`, or any
/// pipeline `opt -passes=` accepts): to compare pipelines on a kernel.
#[cfg(feature = "codegen")]
pub fn emit_with_passes(
    module: &Module,
    target: &TargetSpec,
    kind: OutputKind,
    path: &Path,
    passes: &str,
) -> Result<EmitTimes, String> {
    emit_as(module, None, target, kind, path, passes)
}

/// [`emit`] of `module` under another kernel symbol: with `rename = Some((from, to))`, the
/// functions named after the symbol `from` (the kernel and its `_mlir_ciface_` wrapper) are
/// renamed after `to` in the LLVM IR. This is how one lowered module serves several ISA
/// variants of a kernel, whose symbols differ in their suffix only.
#[cfg(feature = "codegen")]
pub fn emit_renamed(
    module: &Module,
    rename: Option<(&str, &str)>,
    target: &TargetSpec,
    kind: OutputKind,
    path: &Path,
) -> Result<EmitTimes, String> {
    emit_as(module, rename, target, kind, path, LLVM_PASSES)
}

#[cfg(feature = "codegen")]
fn emit_as(
    module: &Module,
    rename: Option<(&str, &str)>,
    target: &TargetSpec,
    kind: OutputKind,
    path: &Path,
    passes: &str,
) -> Result<EmitTimes, String> {
    let tm = TargetMachine::new(&target.triple, &target.cpu, &target.features)?;
    let start = Instant::now();
    let mut ir = LlvmModule::translate(module).ok_or("translation to LLVM IR failed")?;
    if let Some((from, to)) = rename
        && from != to
        && ir.rename_functions(from, to) == 0
    {
        return Err(format!("no function named after `{from}` to rename"));
    }
    ir.configure_for(&tm);
    let translated = Instant::now();
    ir.optimize(&tm, passes)
        .map_err(|e| format!("LLVM optimization failed: {e}"))?;
    let optimized = Instant::now();
    let file_type = match kind {
        OutputKind::Object => FileType::Object,
        OutputKind::Assembly => FileType::Assembly,
    };
    ir.emit_to_file(&tm, path, file_type)
        .map_err(|e| format!("code generation failed: {e}"))?;
    Ok(EmitTimes {
        translate: translated - start,
        optimize: optimized - translated,
        codegen: optimized.elapsed(),
    })
}

/// Translates `module` (LLVM dialect) to LLVM IR text, unoptimized and without a target; `None`
/// if translation fails.
#[cfg(feature = "codegen")]
pub fn llvm_ir(module: &Module) -> Option<String> {
    LlvmModule::translate(module).map(|m| m.print())
}

/// The ELF machine number of an object file (`62` x86-64, `183` AArch64), if it is ELF.
pub fn elf_machine(bytes: &[u8]) -> Option<u16> {
    if bytes.len() < 20 || !bytes.starts_with(b"\x7fELF") {
        return None;
    }
    Some(u16::from_le_bytes([bytes[18], bytes[19]]))
}
