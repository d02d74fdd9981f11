attn::attention! {
    pub fn f(q: [8, 16, 32], k: [2, 16, 32], v: [4, 16, 32]) -> [8, 16, 32];
}

fn main() {}
