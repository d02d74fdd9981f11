attn::attention! {
    pub fn f(q: [8, 64], k: [16, 32], v: [16, 32]) -> [8, 32];
}

fn main() {}
