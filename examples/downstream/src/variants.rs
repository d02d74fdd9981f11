//! Sliding windows, logit softcapping, attention sinks and ALiBi in `attention!` kernels (a
//! separate file: listed in build.rs too).

attn::attention! {
    /// Gemma 2 style: a causal sliding window of 4 keys (the token and the 3 before it) and a
    /// logit softcap, 4 query heads over 2 key/value heads.
    #[attn(causal, window = (3, 0), softcap = 5.0, kv_heads = 2)]
    pub fn local_softcap(q: [1, 4, 12, 16], k: [1, 2, 12, 16], v: [1, 2, 12, 16]) -> [1, 4, 12, 16];

    /// gpt-oss style: one sink logit per query head (f32 in a bf16 kernel) and a causal
    /// window of 6 keys.
    #[attn(causal, window = (5, 0), dtype = bf16)]
    pub fn sinks_bf16(q: [2, 9, 32], k: [2, 9, 32], v: [2, 9, 32], sinks: [2]) -> [2, 9, 32];

    /// ALiBi slopes and sinks as named arguments of `attention` in an f64 body, with a
    /// two-sided window and a softcap.
    #[attn(dtype = f64)]
    pub fn alibi_f64(q: [3, 5, 16], k: [3, 8, 16], v: [3, 8, 16], slopes: [3], s: [3]) -> [3, 5, 16] {
        attention(q, k, v, alibi = slopes, sinks = s, window = (2, 1), softcap = 4.0)
    }

    /// Every operand at rank 2 (one head): a mask, and sinks and slopes per query row.
    #[attn(window = (4, 2), scale = 0.3)]
    pub fn every_operand(q: [6, 16], k: [10, 16], v: [10, 8], mask: [6, 10], sinks: [6], alibi: [6]) -> [6, 8];
}
