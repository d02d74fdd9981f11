//! `attn-build`: the ahead-of-time compiler behind `attn`.
//!
//! Kernels are described with the [graph API](graph), emitted as IR of the `transformer`
//! dialect (a real MLIR dialect defined in IRDL, see `dialect`), lowered by rewrite patterns to
//! linalg (`lower`), bufferized, lowered to loops and to the LLVM dialect ([`pipeline`]), and
//! compiled to object files that [`Build`] archives and links into the crate whose build script
//! runs it, together with generated Rust declarations of the kernels' C ABI.
//!
//! ```no_run
//! // build.rs
//! use attn_build::{Build, graph::{Graph, KernelDef, TensorType, Scale}};
//!
//! let mut g = Graph::new();
//! let q = g.input("q", TensorType::f32_static(&[128, 64]));
//! let k = g.input("k", TensorType::f32_static(&[128, 64]));
//! let v = g.input("v", TensorType::f32_static(&[128, 64]));
//! let o = g.attention(q, k, v, Scale::Constant(0.125)).unwrap();
//! Build::new().kernel(KernelDef::new("window", g, o)).compile("my_kernels").unwrap();
//! ```
//!
//! Kernels declared in the crate's source with `attn::attention!` are found by [`Build::file`],
//! which parses the listed files with the grammar the macro uses (`attn_runtime::syntax`):
//!
//! ```no_run
//! // build.rs of a crate whose src/lib.rs contains `attn::attention! { .. }`
//! attn_build::Build::new().file("src/lib.rs").compile("kernels").unwrap();
//! ```
//!
//! Kernels (one object per ISA variant) are compiled concurrently, by up to `NUM_JOBS` worker
//! threads (see [`Build::jobs`]); the library and bindings do not depend on the number. Set
//! `ATTN_DUMP_IR=<dir>` to get the IR of every stage of every kernel, and `ATTN_VERBOSE=1` for one
//! progress line per object (with the time of the MLIR passes, LLVM optimization and code
//! generation) or cache hit.
//!
//! # Features
//!
//! - `codegen` (default): code generation through LLVM/MLIR 22 (`melior`, `mlir-sys`): the
//!   `dialect`, `lower`, `flash`, `primitives` modules, `pipeline::Compiler` and object emission.
//!   Without it nothing links LLVM, and [`Build::compile`] generates the bindings and the
//!   `attention!` manifest without compiling any kernel (see [`Build::skip_codegen`]): enough for
//!   docs.rs, `cargo doc` and `cargo check` on a machine without LLVM, not for linking.
//!
//! # Object cache
//!
//! Objects are cached by content (the kernel's IR, the pipeline and LLVM versions, the target)
//! in `target/attn-cache/` of the workspace being built, shared by every crate of the workspace
//! and by debug and release builds, or in `ATTN_CACHE_DIR`. Entries not used for a while are
//! evicted, least recently used first, when the cache outgrows `ATTN_CACHE_MAX_MB` (512 by
//! default); see [`Build::cache_max_bytes`].
//!
//! # Unsafe code
//!
//! Every `unsafe` operation (LLVM's C API, raw MLIR handles) is in the private `ffi` module,
//! behind safe functions; the rest of the crate denies `unsafe_code`.

#![deny(unsafe_code)]

mod build;
pub mod cache;
#[cfg(feature = "codegen")]
pub mod dialect;
#[cfg(feature = "codegen")]
pub mod emit;
mod error;
#[cfg(feature = "codegen")]
mod ffi;
#[cfg(feature = "codegen")]
pub mod flash;
pub mod graph;
#[cfg(feature = "codegen")]
pub mod lower;
pub mod pipeline;
#[cfg(feature = "codegen")]
pub mod primitives;
pub mod scan;
pub mod target;

pub use build::{Build, CompiledKernel, CompiledVariant, Report};
pub use error::{Error, GraphError};
pub use pipeline::Stage;
