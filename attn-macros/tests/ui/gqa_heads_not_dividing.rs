attn::attention! {
    pub fn f(q: [2, 6, 16, 32], k: [2, 4, 16, 32], v: [2, 4, 16, 32]) -> [2, 6, 16, 32];
}

fn main() {}
