attn::attention! {
    pub fn f(q: [4, 16, 32], k: [4, 24, 32], v: [4, 24, 32], slopes: [4, 1]) -> [4, 16, 32] {
        attention(q, k, v, alibi = slopes)
    }
}

fn main() {}
