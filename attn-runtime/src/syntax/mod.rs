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
//!     /// Grouped-query causal attention: 8 query heads over 2 key/value heads, in bf16.
//!     #[attn(causal, kv_heads = 2, dtype = bf16)]
//!     pub fn gqa(q: [1, 8, 16, 64], k: [1, 2, 16, 64], v: [1, 2, 16, 64]) -> [1, 8, 16, 64];
//!
//!     /// An additive f32 mask: the fourth input, named `mask`.
//!     pub fn masked(q: [16, 32], k: [24, 32], v: [24, 32], mask: [16, 24]) -> [16, 32];
//!
//!     /// Sliding window and softcap (Gemma 2), sinks per query head (gpt-oss).
//!     #[attn(causal, window = (63, 0), softcap = 30.0)]
//!     pub fn local(q: [4, 16, 32], k: [4, 16, 32], v: [4, 16, 32], sinks: [4]) -> [4, 16, 32];
//!
//!     pub fn scores(q: [64, 32], k: [64, 32]) -> [64, 64] {
//!         let s = matmul(q, transpose(k));
//!         softmax(scale(s, 0.125))
//!     }
//!
//!     pub fn twice(q: [8, 16], k: [8, 16], v: [8, 16], m: [8, 8]) -> [8, 16] {
//!         let a = attention(q, k, v, mask = m, causal = true);
//!         attention(a, k, v, scale = 0.5)
//!     }
//! }
//! ```
//!
//! # Kernels
//!
//! A kernel without a body computes `attention(q, k, v)` of its first three arguments; the
//! inputs after them must be named `mask`, `sinks` or `alibi` (each at most once), and are the
//! attention's operands of those names: `attention(q, k, v, mask = mask, sinks = sinks)`.
//! Bodies are expressions over the primitives `matmul`, `transpose`, `softmax`,
//! `scale(x, <f32 literal>)`, `add`, `mul` and `attention`, with `let` bindings. `attention` takes
//! q, k and v, then optionally a scale literal (`attention(q, k, v, 0.125)`), then named
//! arguments: `scale = <f32 literal>`, `mask = <input>`, `causal = true | false`,
//! `window = (<left>, <right>)`, `softcap = <f32 literal>`, `sinks = <input>`,
//! `alibi = <input>`, and the [score and mask mods](#score-and-mask-mods).
//!
//! Shapes are static, ranks 1 to 4, every dim between 1 and [`MAX_DIM`]. Attention takes q
//! `[Sq, D]`, `[Hq, Sq, D]` or `[B, Hq, Sq, D]`, k `[.., Hkv, Sk, D]` and v `[.., Hkv, Sk, Dv]`
//! of the same rank, with equal batch dims and `Hq % Hkv == 0` (grouped-query attention: query
//! head `h` reads key/value head `h / (Hq / Hkv)`), and gives `[.., Hq, Sq, Dv]`.
//!
//! # Options
//!
//! `#[attn(..)]` takes options separated by commas, in one or several attributes, each at most
//! once: `#[attn(causal, kv_heads = 2, dtype = f16, scale = 0.125)]`. They are the defaults of every
//! `attention` of the kernel (a call's named arguments override `scale`, `causal`, `window`
//! and `softcap`). These four are the fields of
//! [`AttentionOptions`](crate::options::AttentionOptions), parsed by one parser in both places
//! and validated by its `validate`:
//!
//! - `scale = <f32 literal>`: the scale of the scores (default `1/sqrt(D)`). The scale is an
//!   f32 constant in every dtype: in f64 kernels too, `1/sqrt(D)` is rounded to f32 (exact when
//!   `D` is a power of 4, else within 2^-24 relative).
//! - `causal`: bottom-right aligned causal masking, query `i` sees the keys `j <= i + Sk - Sq`
//!   (the lower triangle when `Sq == Sk`; a query that sees no key gives zeros).
//! - `window = (L, R)`: a sliding window, two integer literals: query `i` sees the keys `j`
//!   with `p - L <= j <= p + R`, `p = i + Sk - Sq` its bottom-right aligned position (with
//!   `causal`, also `j <= p`); `usize::MAX` (18446744073709551615) leaves a side unbounded.
//! - `softcap = <f32 literal>`: each scaled score `s` becomes `cap * tanh(s / cap)`; positive.
//! - `kv_heads = N`: asserts that k and v have `N` heads (so `q`'s head count is a multiple of
//!   `N`); a mismatch is an error naming the shapes. It changes nothing else.
//! - `dtype = f32 | f64 | bf16 | f16`: the element type of the inputs, the output and every
//!   computed value (default f32). Masks stay f32. bf16 and f16 are storage formats (attention
//!   computes in f32 and rounds once) and support `attention` only: the other primitives have no
//!   16-bit lowering. f64 works with every primitive.
//!
//! # Masks
//!
//! A mask is an additive f32 tensor (`-inf` removes a key), `[Sq, Sk]` (shared by every batch
//! and head) or of q's rank with each leading dim 1 (broadcast) or equal to q's:
//! `[1, 1, Sq, Sk]`, `[B, 1, Sq, Sk]`, `[B, Hq, Sq, Sk]`
//! ([`MaskRule::Compiled`](crate::shape::MaskRule::Compiled): the shared shape rule of
//! [`crate::shape`], which every check of a kernel's shapes uses). In a kernel of another dtype than f32, a
//! mask must be an input of the kernel (that input is then f32); an input cannot be both a mask
//! and a tensor of another type.
//!
//! # Sinks and ALiBi
//!
//! `sinks` and `alibi` are f32 tensors `[Hq]`, one value per query head (at rank 2, where q has
//! one head, `[Sq]`: one per query row, as `attn_build::graph` takes them), like masks always
//! f32 and, in kernels of another dtype, inputs of the kernel. `sinks[h]` is a logit whose `exp`
//! joins the softmax denominator of every row of head `h` (no value vector); `alibi[h]` is the
//! slope of the bias `-alibi[h] * |p - j|` added to the scores.
//!
//! # Score and mask mods
//!
//! `attention` also takes `score_mod = |s, b, h, i, j| <float expr>` (the score after the scale
//! and softcap, before the masks) and `mask_mod = |b, h, i, j| <bool expr>` (key `j` stays
//! visible to query `i` of batch `b`, query head `h` when true), alone, together and with every
//! other option; see [`crate::mods`] for the expressions. They read the kernel's inputs by name,
//! indexed by integer expressions: an input is f32 (`bias: [2, 127]`) or declared `as i32`
//! (`doc: [256] as i32`, passed as `&[i32; 256]`).
//!
//! ```text
//! pub fn docs(q: [4, 256, 64], k: [4, 256, 64], v: [4, 256, 64], doc: [256] as i32) -> [4, 256, 64] {
//!     attention(q, k, v, mask_mod = |b, h, i, j| doc[i] == doc[j], causal = true)
//! }
//! ```
//!
//! Every index is proven in bounds by interval arithmetic over the static ranges of `b`, `h`,
//! `i`, `j`; an index that can leave its input, a divisor that can be zero, a type error, an
//! unknown name or function and a wrong number of parameters are errors at the offending tokens.
//! The mods are part of the canonical spec (parameters named by position, so `|_, _, q, kv|`
//! and `|b, h, i, j|` give the same kernel).
//!
//! # Checking, specs and symbols
//!
//! [`Invocation`] parses the body of one `attention!`; [`Invocation::check`] infers every shape
//! and element type and returns checked [`Kernel`]s, or a [`syn::Error`] spanning the offending
//! tokens. Each kernel has a [canonical spec](Kernel::canonical) (every dtype and option
//! included) and a [C symbol](Kernel::symbol) derived from it, from [`ABI_VERSION`] and from this
//! crate's version. The build script lists what it compiled in a [`Manifest`].

mod check;
mod kernel;
mod literal;
mod manifest;
mod mods;
mod option;
mod parse;

pub use kernel::{AttentionMods, Input, Kernel, Node, Op, Value};
pub use manifest::{MANIFEST_EXTENSION, Manifest, ManifestDuplicate, ManifestFile, ManifestKernel};
pub use option::ATTENTION_OPTIONS;
pub use parse::{Body, DTYPES, DimLit, Invocation, KernelItem, Options, Param, ShapeLit};

/// The largest accepted dimension.
pub const MAX_DIM: u64 = 1 << 24;
/// The largest accepted number of elements of any tensor of a kernel (inputs, intermediate
/// values, output).
pub const MAX_ELEMENTS: u64 = 1 << 30;
/// The ranks a kernel's arguments and output may have.
pub const RANKS: core::ops::RangeInclusive<usize> = 1..=4;
/// The most inputs a kernel may take (the output is one more argument of the entry point).
pub const MAX_INPUTS: usize = 8;
/// Version of the kernel ABI and of the canonical spec format; part of every symbol. Version 2:
/// element types (f32, f64, bf16, f16) per argument, attention masks, causal attention and
/// grouped-query heads.
pub const ABI_VERSION: &str = "attn-abi-2";

/// The primitives a body may call, with their arities.
pub const PRIMITIVES: &[(&str, &str)] = &[
    ("matmul", "2"),
    ("transpose", "1"),
    ("softmax", "1"),
    ("scale", "2"),
    ("add", "2"),
    ("mul", "2"),
    ("attention", "3 (q, k, v) and options"),
];

pub use crate::hash::fnv1a;

/// The shortest decimal form that reads back as the same `f32` (`1.25e-1`, `-2e0`).
pub fn float_repr(x: f32) -> String {
    format!("{x:e}")
}

#[cfg(test)]
mod mods_tests;
#[cfg(test)]
mod tests;
