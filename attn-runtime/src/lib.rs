//! Run-time support for `attn` kernels: tensors and views, MLIR memref
//! descriptors, the error type, shape rules, and naive reference
//! implementations used by tests and benchmarks.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod descriptor;
mod element;
mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub mod reference;
pub mod shape;
mod tensor;

pub use descriptor::{DynMemRef, MemRefDescriptor};
pub use element::{DType, Element};
pub use error::Error;
pub use tensor::{AsTensorView, Iter, MAX_RANK, Tensor, TensorView, TensorViewMut};
