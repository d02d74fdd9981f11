attn::attention! {
    pub fn m(q: [2, 64, 32], k: [2, 64, 32], v: [2, 64, 32], bias: [2, 127]) -> [2, 64, 32] {
        attention(q, k, v, mask_mod = |b, h, i, j| bias[h] > 0.0)
    }
}

fn main() {}
