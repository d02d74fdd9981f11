attn::attention! {
    pub fn f(q: [16, 32], k: [24, 32], v: [24, 32]) -> [16, 32] {
        attention(q, k, v, softcap = q)
    }
}

fn main() {}
