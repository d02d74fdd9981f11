attn::attention! {
    #[attn(causal, kv_heads = 4)]
    pub fn f(q: [1, 8, 16, 32], k: [1, 2, 16, 32], v: [1, 2, 16, 32]) -> [1, 8, 16, 32];
}

fn main() {}
