//! The AOT kernels compiled by this crate's build script, declared by generated code.
//!
//! This is the only module of `attn` with `unsafe`: the generated declarations of the kernels'
//! C entry points, each wrapped in an `attn_runtime::ffi::Kernel` whose constructor carries the
//! safety contract (see the `SAFETY` notes in the generated file).

include!(concat!(env!("OUT_DIR"), "/attn_kernels.rs"));
