attn::attention! {
    pub fn relpos(q: [2, 64, 32], k: [2, 64, 32], v: [2, 64, 32], bias: [2, 127]) -> [2, 64, 32] {
        attention(q, k, v, score_mod = |s, b, h, i, j| s + bias[h][j - i + 64])
    }
}

fn main() {}
