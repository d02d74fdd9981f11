//! Every `unsafe` operation of `attn-build`, behind safe functions: the raw MLIR handles the
//! lowering pass and its rewrite patterns receive ([`mlir`]), and LLVM's C API for object
//! emission and translation ([`llvm`]). The rest of the crate is `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

pub mod llvm;
pub mod mlir;
