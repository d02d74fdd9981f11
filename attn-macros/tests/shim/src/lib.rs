//! The part of `attn`'s root crate that `attention!` expansions use.
pub use attn_macros::attention;
pub use attn_runtime::half;

#[doc(hidden)]
pub mod __private {
    pub use attn_runtime::*;
}
