//! Score and mask mods: user functions of the scores and of the visible keys, compiled into the
//! fused attention kernel (a separate file: listed in build.rs too).

attn::attention! {
    /// Document masking: a query sees the keys of its own document, causally.
    #[attn(causal)]
    pub fn docs(q: [4, 256, 64], k: [4, 256, 64], v: [4, 256, 64], doc: [256] as i32) -> [4, 256, 64] {
        attention(q, k, v, mask_mod = |b, h, i, j| doc[i] == doc[j])
    }

    /// Prefix-LM: the first 64 positions see each other; the rest are causal.
    pub fn prefix_lm(q: [2, 128, 32], k: [2, 128, 32], v: [2, 128, 32]) -> [2, 128, 32] {
        attention(q, k, v, mask_mod = |b, h, i, j| j <= i || j < 64)
    }

    /// A learned relative-position bias per head.
    pub fn relpos(q: [2, 64, 32], k: [2, 64, 32], v: [2, 64, 32], bias: [2, 127]) -> [2, 64, 32] {
        attention(q, k, v, score_mod = |s, b, h, i, j| s + bias[h][j - i + 63])
    }

    /// A causal sliding window of 16 keys before each query, written as a mask mod, and logit
    /// softcapping at 20, written as a score mod: what the built-in `window` (16, 0) and
    /// `softcap` options compute. Grouped-query heads (4 over 2), fewer queries than keys.
    #[attn(kv_heads = 2)]
    pub fn composed(q: [2, 4, 40, 32], k: [2, 2, 72, 32], v: [2, 2, 72, 16]) -> [2, 4, 40, 16] {
        attention(q, k, v,
            mask_mod = |b, h, i, j| j <= i + 32 && i + 32 - j <= 16,
            score_mod = |s, b, h, i, j| 20.0 * tanh(s / 20.0))
    }

    /// Both mods in f64, with an f32 input table and per-head behaviour.
    #[attn(dtype = f64)]
    pub fn wide(q: [3, 50, 16], k: [3, 60, 16], v: [3, 60, 8], w: [60]) -> [3, 50, 8] {
        attention(q, k, v,
            mask_mod = |b, h, i, j| (j + h) % 4 != 0 || j < 10,
            score_mod = |s, b, h, i, j| s * 0.5 - (abs(i - j) as f64) * 0.05 + w[j])
    }

    /// A document mask in bf16 over a few query rows (the decode path), bottom-right aligned by
    /// hand (`i + 60` is query `i`'s position among the 64 keys).
    #[attn(dtype = bf16, kv_heads = 1)]
    pub fn decode_bf16(q: [2, 4, 64], k: [1, 64, 64], v: [1, 64, 64], doc: [64] as i32) -> [2, 4, 64] {
        attention(q, k, v, mask_mod = |b, h, i, j| doc[j] == doc[i + 60] && j <= i + 60)
    }
}
