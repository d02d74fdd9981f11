attn::attention! {
    #[attn(kv_heads = 2)]
    pub fn f(q: [16, 32], k: [16, 32], v: [16, 32]) -> [16, 32];
}

fn main() {}
