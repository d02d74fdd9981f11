//! `attn-build`: the ahead-of-time compiler behind `attn`.
//!
//! Kernels are described with the [graph API](graph), emitted as IR of the `transformer`
//! dialect (a real MLIR dialect defined in IRDL, see [`dialect`]), lowered by rewrite patterns to
//! linalg ([`lower`]), bufferized, lowered to loops and to the LLVM dialect ([`pipeline`]), and
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
//! Set `ATTN_DUMP_IR=<dir>` to get the IR of every stage of every kernel.

mod build;
pub mod dialect;
mod error;
pub mod flash;
pub mod graph;
mod llvm;
pub mod lower;
pub mod pipeline;
pub mod primitives;
pub mod scan;
pub mod target;

pub use build::{Build, CompiledKernel, CompiledVariant, Report};
pub use error::{Error, GraphError};
pub use pipeline::Stage;
