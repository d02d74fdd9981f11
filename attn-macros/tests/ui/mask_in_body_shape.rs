attn::attention! {
    pub fn f(q: [16, 32], k: [24, 32], v: [24, 32], m: [16, 16]) -> [16, 32] {
        attention(q, k, v, mask = m, causal = true)
    }
}

fn main() {}
