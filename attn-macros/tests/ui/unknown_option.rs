attn::attention! {
    #[attn(dropout = 0.1)]
    pub fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4];
}

fn main() {}
