attn::attention! {
    #[attn(dtype = bf16)]
    pub fn scores(q: [64, 32], k: [64, 32]) -> [64, 64] {
        softmax(scale(matmul(q, transpose(k)), 0.125))
    }
}

fn main() {}
