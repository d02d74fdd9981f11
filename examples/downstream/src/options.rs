//! Attention options of `attention!`: causal masking, grouped-query heads, additive masks and
//! element types (a separate file: listed in build.rs too).

attn::attention! {
    /// Causal grouped-query attention: 2 batches, 6 query heads over 2 key/value heads, 13
    /// tokens, head dim 16, value dim 8.
    #[attn(causal, kv_heads = 2)]
    pub fn gqa_causal(q: [2, 6, 13, 16], k: [2, 2, 13, 16], v: [2, 2, 13, 8]) -> [2, 6, 13, 8];

    /// Causal with fewer queries than keys, bottom-right aligned: query `i` sees the keys
    /// `j <= i + 12` (a chunk of 5 new tokens after 12 cached ones).
    #[attn(causal)]
    pub fn causal_chunk(q: [5, 32], k: [17, 32], v: [17, 32]) -> [5, 32];

    /// An additive f32 mask per batch, broadcast over the heads.
    pub fn masked(q: [2, 4, 9, 16], k: [2, 4, 11, 16], v: [2, 4, 11, 16], mask: [2, 1, 9, 11]) -> [2, 4, 9, 16];

    /// A mask, causal masking and a scale as named arguments of `attention` in a body.
    pub fn biased(q: [12, 16], k: [12, 16], v: [12, 16], bias: [12, 12]) -> [12, 16] {
        attention(q, k, v, mask = bias, causal = true, scale = 0.3)
    }

    /// Multi-query causal attention in bf16 (4 query heads share one key/value head).
    #[attn(causal, kv_heads = 1, dtype = bf16)]
    pub fn mqa_bf16(q: [1, 4, 16, 64], k: [1, 1, 16, 64], v: [1, 1, 16, 64]) -> [1, 4, 16, 64];

    /// f16 heads with an f32 `[Sq, Sk]` mask shared by every head.
    #[attn(dtype = f16)]
    pub fn heads_f16(q: [3, 10, 32], k: [3, 14, 32], v: [3, 14, 32], mask: [10, 14]) -> [3, 10, 32];

    /// Causal grouped-query attention in f64.
    #[attn(dtype = f64, causal, kv_heads = 2)]
    pub fn gqa_f64(q: [1, 4, 7, 16], k: [1, 2, 9, 16], v: [1, 2, 9, 16]) -> [1, 4, 7, 16];

    /// f64 works with every primitive.
    #[attn(dtype = f64)]
    pub fn probs_f64(q: [6, 16], k: [9, 16]) -> [6, 9] {
        softmax(scale(matmul(q, transpose(k)), 0.25))
    }
}
