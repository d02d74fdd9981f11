//! Statically shaped attention kernels, compiled ahead of time by `build.rs`.
//!
//! Each kernel `name` is a pair of functions whose argument types spell the shapes:
//! `name(&q, &k, &v) -> Box<[[f32; ..]; ..]>` and `name_into(&q, &k, &v, &mut out)`.

#![deny(missing_docs)]

pub mod heads;
pub mod mods;
pub mod options;
pub mod variants;

attn::attention! {
    /// Single-head attention: 37 queries of dim 80 against 53 keys, value dim 24.
    pub fn odd(q: [37, 80], k: [53, 80], v: [53, 24]) -> [37, 24];

    /// Attention probabilities `softmax(Q K^T * 0.3)`, 19 queries against 23 keys.
    pub fn probs(q: [19, 16], k: [23, 16]) -> [19, 23] {
        softmax(scale(matmul(q, transpose(k)), 0.3))
    }
}

/// Kernels in an inline module are found too.
pub mod small {
    use attn::attention;

    attention! {
        /// Softmax of a vector.
        pub fn vector_softmax(x: [33]) -> [33] {
            softmax(x)
        }

        /// A copy: the output is an input.
        pub fn copy(x: [2, 3]) -> [2, 3] {
            x
        }

        /// Elementwise composition with `let` bindings.
        pub fn mixed(a: [6, 7], b: [6, 7]) -> [6, 7] {
            let s = add(a, b);
            mul(softmax(s), a)
        }
    }
}
