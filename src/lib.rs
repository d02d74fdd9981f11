//! # attn: attention compiled ahead of time through MLIR
//!
//! `attn` computes scaled dot-product attention, `softmax(Q K^T * scale) V`, and its primitives
//! with machine code that MLIR generated when this crate was built. There is no JIT and no MLIR at
//! run time: the build script runs the whole pipeline and links the objects into the crate.
//!
//! ```text
//! graph API ─► transformer dialect ─► linalg on tensors ─► bufferized memrefs ─► loops
//!           ─► LLVM dialect ─► LLVM IR ─► object file ─► static library linked here
//! ```
//!
//! Set `ATTN_DUMP_IR=<dir>` while building to see the IR of every stage of every kernel.
//!
//! ```
//! use attn::Tensor;
//!
//! let q = Tensor::from_vec(&[2, 4], vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])?;
//! let k = q.clone();
//! let v = Tensor::from_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
//! let out = attn::attention(&q, &k, &v)?;
//! assert_eq!(out.shape(), &[2, 3]);
//!
//! // Compare with the naive f64 reference.
//! let expected = attn::reference::attention(&q, &k, &v, None)?;
//! assert!(attn::reference::compare(&out, &expected, 1e-4, 1e-6)?.ok);
//! # Ok::<(), attn::Error>(())
//! ```
//!
//! Every function takes anything that implements [`AsTensorView`]: an owned [`Tensor`] or a
//! borrowed, possibly strided [`TensorView`] (for example a transposed view), without copying.
//! Wrong shapes give an [`Error`] naming the arguments and their shapes; nothing panics.
//!
//! Attention runs on `f32`, `f64`, [`half::bf16`] and [`half::f16`] tensors (see
//! [`AttentionElement`]); the 16-bit types are stored as such and computed in f32. The
//! primitives are f32. (Untyped float literals, as above, make `f64` tensors.)

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod attention;
pub mod baseline;
#[allow(unsafe_code)]
mod kernels;
mod kv_cache;
mod ops;
mod threads;

pub use attention::{Attention, AttentionElement};
pub use attn_runtime::{
    AsTensorView, DType, Element, Error, MAX_RANK, MemRefDescriptor, Tensor, TensorView,
    TensorViewMut, reference,
};
pub use attn_runtime::{half, isa, options};
pub use kv_cache::KvCache;
pub use ops::{
    add, attention, attention_into, attention_with_scale, matmul, mul, scale, softmax, transpose,
};
pub use threads::{num_threads, set_num_threads};

/// `ndarray` interop (feature `ndarray`): arrays as arguments, results as `ndarray::Array`.
#[cfg(feature = "ndarray")]
pub use attn_runtime::{ndarray, ndarray_interop};

/// Declares statically shaped kernels compiled by your build script (see `attn_build::Build::file`).
///
/// ```text
/// attn::attention! {
///     /// Single-head attention over 128 tokens, head dim 64.
///     pub fn window(q: [128, 64], k: [128, 64], v: [128, 64]) -> [128, 64];
///
///     /// Causal grouped-query attention in bf16 with an additive f32 mask.
///     #[attn(causal, kv_heads = 2, dtype = bf16)]
///     pub fn gqa(q: [1, 8, 64, 64], k: [1, 2, 64, 64], v: [1, 2, 64, 64], mask: [64, 64]) -> [1, 8, 64, 64];
/// }
/// // window(&q, &k, &v) -> Box<[[f32; 64]; 128]>
/// // gqa(&q, &k, &v, &mask) with q: &[[[[attn::half::bf16; 64]; 64]; 8]; 1], mask: &[[f32; 64]; 64]
/// ```
///
/// Options (`#[attn(scale = .., causal, kv_heads = .., dtype = f32 | f64 | bf16 | f16)]`), masks
/// and bodies of primitives are described in the guide (`docs/guide/kernels.md` in the
/// repository) and in `attn_runtime::syntax`.
pub use attn_macros::attention;

/// The README's Rust examples, compiled and run as doc tests (`cargo test --doc`); the guide's
/// (`docs/guide/`) are doc tests of the workspace-internal `attn-tools` crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Paths used by code that `attention!` generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use attn_runtime::*;
}
