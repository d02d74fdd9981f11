attn::attention! {
    #[attn(causal, window = 128)]
    pub fn f(q: [16, 32], k: [24, 32], v: [24, 32]) -> [16, 32];
}

fn main() {}
