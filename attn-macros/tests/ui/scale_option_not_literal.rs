attn::attention! {
    #[attn(scale = 1.0 / 8.0)]
    pub fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4];
}

fn main() {}
