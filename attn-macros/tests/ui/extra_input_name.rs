attn::attention! {
    pub fn f(q: [4, 16, 32], k: [4, 24, 32], v: [4, 24, 32], sink: [4]) -> [4, 16, 32];
}

fn main() {}
