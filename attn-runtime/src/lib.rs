//! Run-time support for `attn` kernels: tensors and views, MLIR memref
//! descriptors, the error type, the attention options ([`options`]) and shape
//! rules ([`shape`]) that every layer of `attn` shares, and naive reference
//! implementations used by tests and benchmarks.
//!
//! With the `syntax` feature (host code only: `attn-macros`, `attn-build`), the `syntax` module is the
//! grammar of `attention!` kernel specs. Besides [`ffi`], [`array`](mod@array) is the only module with
//! `unsafe` code: heap allocation of zeroed nested arrays for typed kernel outputs.

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
pub mod array;
mod descriptor;
mod element;
mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub mod hash;
pub mod isa;
pub mod mods;
#[cfg(feature = "ndarray")]
#[allow(unsafe_code)]
pub mod ndarray_interop;
pub mod options;
pub mod reference;
pub mod shape;
mod signature;
#[cfg(feature = "syntax")]
pub mod syntax;
mod tensor;
pub mod tuning;

pub use descriptor::{DynMemRef, MemRefDescriptor};
pub use element::{DType, Element};
pub use error::Error;
/// The `half` crate, whose [`half::bf16`] and [`half::f16`] are element types of tensors and kernels.
pub use half;
/// The `ndarray` crate this one interoperates with (feature `ndarray`).
#[cfg(feature = "ndarray")]
pub use ndarray;
pub use tensor::{AsTensorView, Iter, MAX_RANK, Tensor, TensorView, TensorViewMut};
