attn::attention! {
    // The run-time API broadcasts a `[1, Sk]` mask over the rows; compiled kernels read every
    // row of an `[Sq, Sk]` mask.
    pub fn f(q: [16, 32], k: [24, 32], v: [24, 32], mask: [1, 24]) -> [16, 32];
}

fn main() {}
