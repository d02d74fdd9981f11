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

fn main() {}
