attn::attention! {
    pub fn f(q: [16, 32], k: [24, 32], v: [24, 32], bias: [16, 24]) -> [16, 32];
}

fn main() {}
