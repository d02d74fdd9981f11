attn::attention! {
    #[attn(causal, scale = 1e40)]
    pub fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4];
}

fn main() {}
