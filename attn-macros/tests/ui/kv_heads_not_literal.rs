const KV: usize = 2;

attn::attention! {
    #[attn(kv_heads = KV)]
    pub fn f(q: [4, 16, 32], k: [2, 16, 32], v: [2, 16, 32]) -> [4, 16, 32];
}

fn main() {}
