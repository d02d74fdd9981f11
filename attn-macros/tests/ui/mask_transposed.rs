attn::attention! {
    pub fn f(q: [16, 32], k: [24, 32], v: [24, 32], mask: [24, 16]) -> [16, 32];
}

fn main() {}
