//! The kernel-spec grammar of `attention!`, shared by the proc-macro (`attn-macros`) and the build
//! helper (`attn-build`), so that the two can never disagree on what a kernel means. Enabled by
//! the `syntax` feature; it needs `syn` and is meant for host code only (macros, build scripts).
//!
//! ```text
//! attention! {
//!     /// Docs and other attributes are carried to the generated functions.
//!     #[attn(scale = 0.125)]
//!     pub fn window(q: [128, 64], k: [128, 64], v: [128, 64]) -> [128, 64];
//!
//!     pub fn scores(q: [64, 32], k: [64, 32]) -> [64, 64] {
//!         let s = matmul(q, transpose(k));
//!         softmax(scale(s, 0.125))
//!     }
//! }
//! ```
//!
//! A kernel without a body computes `attention(q, k, v)` of its three arguments. Bodies are
//! expressions over the primitives `matmul`, `transpose`, `softmax`, `scale(x, <f32 literal>)`,
//! `add`, `mul` and `attention(q, k, v)` (optionally `attention(q, k, v, <f32 literal>)`), with
//! `let` bindings. Options go in `#[attn(..)]`: `scale = <f32 literal>` (the attention scale,
//! default `1/sqrt(head dim)`), `dtype = f32`; `causal` is recognised and rejected as not supported
//! yet. Shapes are static, ranks 1 to 4, every dim between 1 and [`MAX_DIM`].
//!
//! [`Invocation`] parses the body of one `attention!`; [`Invocation::check`] infers every shape
//! and returns checked [`Kernel`]s, or a [`syn::Error`] spanning the offending tokens. Each kernel
//! has a [canonical spec](Kernel::canonical) and a [C symbol](Kernel::symbol) derived from it and
//! from this crate's version. The build script lists what it compiled in a [`Manifest`].

mod check;
mod manifest;
mod parse;

pub use check::{Input, Kernel, Node, Op, Value};
pub use manifest::{MANIFEST_EXTENSION, Manifest, ManifestDuplicate, ManifestFile, ManifestKernel};
pub use parse::{Body, DimLit, Invocation, KernelItem, Options, Param, ShapeLit};

/// The largest accepted dimension.
pub const MAX_DIM: u64 = 1 << 24;
/// The largest accepted number of elements of any tensor of a kernel (inputs, intermediate
/// values, output).
pub const MAX_ELEMENTS: u64 = 1 << 30;
/// The ranks a kernel's arguments and output may have.
pub const RANKS: core::ops::RangeInclusive<usize> = 1..=4;
/// The most inputs a kernel may take (the output is one more argument of the entry point).
pub const MAX_INPUTS: usize = 5;
/// Version of the kernel ABI and of the canonical spec format; part of every symbol.
pub const ABI_VERSION: &str = "attn-abi-1";

/// The primitives a body may call, with their arities.
pub const PRIMITIVES: &[(&str, &str)] = &[
    ("matmul", "2"),
    ("transpose", "1"),
    ("softmax", "1"),
    ("scale", "2"),
    ("add", "2"),
    ("mul", "2"),
    ("attention", "3 or 4"),
];

/// 64-bit FNV-1a over the parts (each followed by a separator byte): stable across runs, hosts
/// and compiler versions, unlike `std`'s hashers.
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(core::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The shortest decimal form that reads back as the same `f32` (`1.25e-1`, `-2e0`).
pub fn float_repr(x: f32) -> String {
    format!("{x:e}")
}

#[cfg(test)]
mod tests;
