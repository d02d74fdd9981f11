//! Batched and multi-head kernels (a separate file: listed in build.rs too).

attn::attention! {
    /// Two batches of three heads with an explicit scale.
    #[attn(scale = 0.2)]
    pub fn multi_head(q: [2, 3, 9, 16], k: [2, 3, 11, 16], v: [2, 3, 11, 5]) -> [2, 3, 9, 5];

    /// Batched matrix product.
    pub fn batched(a: [3, 5, 7], b: [3, 7, 2]) -> [3, 5, 2] {
        matmul(a, b)
    }
}
