attn::attention! {
    /// Scores of 64 queries against 64 keys are [64, 64], not [64, 32].
    pub fn scores(q: [64, 32], k: [64, 32]) -> [64, 32] {
        softmax(scale(matmul(q, transpose(k)), 0.125))
    }
}

fn main() {}
