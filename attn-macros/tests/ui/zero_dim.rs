attn::attention! {
    pub fn f(q: [0, 8], k: [4, 8], v: [4, 8]) -> [0, 8];
}

fn main() {}
