attn::attention! {
    /// A window is two integers.
    #[attn(window = (128, 0, 0))]
    pub fn f(q: [16, 32], k: [24, 32], v: [24, 32]) -> [16, 32];
}

fn main() {}
