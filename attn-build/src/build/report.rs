//! What a build produced: [`Report`], [`CompiledKernel`] and [`CompiledVariant`].

use crate::{graph::TensorType, target::TargetSpec};
use attn_runtime::isa::Isa;
use std::path::PathBuf;

/// One compiled kernel.
#[derive(Clone, Debug)]
pub struct CompiledKernel {
    /// The kernel's name.
    pub name: String,
    /// The C symbol of its entry point (without the `_mlir_ciface_` prefix).
    pub symbol: String,
    /// The object file.
    pub object: PathBuf,
    /// True when the object came from the cache.
    pub cached: bool,
    /// Argument names and types, inputs then the outputs (the first named `out`).
    pub args: Vec<(String, TensorType)>,
    /// How many of `args` (the last ones) are outputs.
    pub outputs: usize,
    /// Every compiled variant (ISA level, symbol, object), best first; `symbol` and `object`
    /// above are those of the first.
    pub variants: Vec<CompiledVariant>,
}

/// One ISA variant of a compiled kernel.
#[derive(Clone, Debug)]
pub struct CompiledVariant {
    /// The x86-64 level it was compiled for (`None`: one variant for the target as given).
    pub isa: Option<Isa>,
    /// Its C symbol (without the `_mlir_ciface_` prefix).
    pub symbol: String,
    /// Its object file.
    pub object: PathBuf,
    /// The code-generation target.
    pub target: TargetSpec,
}

/// What [`Build::compile`](crate::Build::compile) produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every kernel (none when code generation was skipped, see
    /// [`Build::skip_codegen`](crate::Build::skip_codegen)).
    pub kernels: Vec<CompiledKernel>,
    /// The Rust declarations to `include!`.
    pub bindings: PathBuf,
}
