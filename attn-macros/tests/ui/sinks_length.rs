attn::attention! {
    /// Sinks are one logit per query head: [4] here.
    pub fn f(q: [1, 4, 16, 32], k: [1, 2, 24, 32], v: [1, 2, 24, 32], sinks: [2]) -> [1, 4, 16, 32];
}

fn main() {}
