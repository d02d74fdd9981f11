//! The generated functions have the typed signatures the README promises. Nothing here calls a
//! kernel (that would need the kernels linked: the downstream example crate runs them).

mod kernels {
    attn::attention! {
        /// Single-head attention over 128 tokens, head dim 64.
        pub fn window(q: [128, 64], k: [128, 64], v: [128, 64]) -> [128, 64];

        /// A composition of primitives.
        #[attn(scale = 0.5)]
        pub fn scores(q: [64, 32], k: [64, 32]) -> [64, 64] {
            let s = matmul(q, transpose(k));
            softmax(scale(s, 0.125))
        }

        pub(crate) fn heads(q: [2, 3, 5, 8], k: [2, 3, 7, 8], v: [2, 3, 7, 4]) -> [2, 3, 5, 4];

        fn vector(x: [10]) -> [10] { softmax(x) }

        /// Causal grouped-query attention in bf16: 8 query heads over 2 key/value heads.
        #[attn(causal, kv_heads = 2, dtype = bf16)]
        pub fn gqa(q: [1, 8, 16, 64], k: [1, 2, 16, 64], v: [1, 2, 16, 64]) -> [1, 8, 16, 64];

        /// f16 with an f32 mask broadcast over the batch.
        #[attn(dtype = f16, scale = 0.125)]
        pub fn masked_half(q: [2, 4, 8], k: [2, 4, 8], v: [2, 4, 8], mask: [1, 4, 4]) -> [2, 4, 8];

        /// f64 works with every primitive.
        #[attn(dtype = f64)]
        pub fn wide(q: [4, 8], k: [6, 8]) -> [4, 6] {
            softmax(scale(matmul(q, transpose(k)), 0.5))
        }

        /// A sliding window with a softcap, sinks and ALiBi slopes (f32 in a bf16 kernel).
        #[attn(causal, window = (7, 0), softcap = 30.0, dtype = bf16)]
        pub fn local(q: [1, 4, 16, 64], k: [1, 2, 16, 64], v: [1, 2, 16, 64], sinks: [4], alibi: [4]) -> [1, 4, 16, 64];

        /// The same options as named arguments.
        pub fn local_body(q: [2, 16, 8], k: [2, 16, 8], v: [2, 16, 8], s: [2]) -> [2, 16, 8] {
            attention(q, k, v, window = (3, 3), softcap = 5.0, sinks = s)
        }

        /// A body with named attention arguments; the mask is f32 in an f64 kernel.
        #[attn(dtype = f64, causal)]
        pub fn chained(q: [4, 8], k: [6, 8], v: [6, 8], m: [4, 6]) -> [4, 8] {
            let a = attention(q, k, v, mask = m, causal = false);
            attention(a, k, v, scale = 0.5, mask = m)
        }
    }

    #[allow(dead_code)]
    pub fn private_vector() -> fn(&[f32; 10]) -> Box<[f32; 10]> {
        vector
    }
}

type M = [[f32; 64]; 128];

#[allow(dead_code)]
fn typed() {
    let _: fn(&M, &M, &M) -> Box<M> = kernels::window;
    let _: fn(&M, &M, &M, &mut M) = kernels::window_into;
    let _: fn(&[[f32; 32]; 64], &[[f32; 32]; 64]) -> Box<[[f32; 64]; 64]> = kernels::scores;
    let _: fn(&[[[[f32; 8]; 5]; 3]; 2], &[[[[f32; 8]; 7]; 3]; 2], &[[[[f32; 4]; 7]; 3]; 2]) -> Box<[[[[f32; 4]; 5]; 3]; 2]> =
        kernels::heads;
}

type Bf = attn::half::bf16;
type H = attn::half::f16;

#[allow(dead_code)]
fn typed_options() {
    let _: fn(
        &[[[[Bf; 64]; 16]; 8]; 1],
        &[[[[Bf; 64]; 16]; 2]; 1],
        &[[[[Bf; 64]; 16]; 2]; 1],
    ) -> Box<[[[[Bf; 64]; 16]; 8]; 1]> = kernels::gqa;
    let _: fn(
        &[[[[Bf; 64]; 16]; 8]; 1],
        &[[[[Bf; 64]; 16]; 2]; 1],
        &[[[[Bf; 64]; 16]; 2]; 1],
        &mut [[[[Bf; 64]; 16]; 8]; 1],
    ) = kernels::gqa_into;
    let _: fn(&[[[H; 8]; 4]; 2], &[[[H; 8]; 4]; 2], &[[[H; 8]; 4]; 2], &[[[f32; 4]; 4]; 1]) -> Box<[[[H; 8]; 4]; 2]> =
        kernels::masked_half;
    let _: fn(&[[f64; 8]; 4], &[[f64; 8]; 6]) -> Box<[[f64; 6]; 4]> = kernels::wide;
    let _: fn(
        &[[[[Bf; 64]; 16]; 4]; 1],
        &[[[[Bf; 64]; 16]; 2]; 1],
        &[[[[Bf; 64]; 16]; 2]; 1],
        &[f32; 4],
        &[f32; 4],
    ) -> Box<[[[[Bf; 64]; 16]; 4]; 1]> = kernels::local;
    let _: fn(&[[[f32; 8]; 16]; 2], &[[[f32; 8]; 16]; 2], &[[[f32; 8]; 16]; 2], &[f32; 2]) -> Box<[[[f32; 8]; 16]; 2]> =
        kernels::local_body;
    let _: fn(&[[f64; 8]; 4], &[[f64; 8]; 6], &[[f64; 8]; 6], &[[f32; 6]; 4], &mut [[f64; 8]; 4]) =
        kernels::chained_into;
}

/// Score and mask mods: inputs `as i32` are `&[i32; ..]`, other tables `&[f32; ..]`.
mod mods {
    attn::attention! {
        /// Document masking: a query sees the keys of its own document, causally.
        #[attn(causal)]
        pub fn docs(q: [4, 256, 64], k: [4, 256, 64], v: [4, 256, 64], doc: [256] as i32) -> [4, 256, 64] {
            attention(q, k, v, mask_mod = |b, h, i, j| doc[i] == doc[j])
        }

        /// A learned relative-position bias per head.
        pub fn relpos(q: [2, 64, 32], k: [2, 64, 32], v: [2, 64, 32], bias: [2, 127]) -> [2, 64, 32] {
            attention(q, k, v, score_mod = |s, b, h, i, j| s + bias[h][j - i + 63])
        }
    }
}

type Q = [[[f32; 64]; 256]; 4];

#[allow(dead_code)]
fn typed_mods() {
    let _: fn(&Q, &Q, &Q, &[i32; 256]) -> Box<Q> = mods::docs;
    let _: fn(&Q, &Q, &Q, &[i32; 256], &mut Q) = mods::docs_into;
    type R = [[[f32; 32]; 64]; 2];
    let _: fn(&R, &R, &R, &[[f32; 127]; 2]) -> Box<R> = mods::relpos;
}

fn main() {}
