attn::attention! {
    pub fn f(q: [65536, 64], k: [65536, 64]) -> [65536, 65536] {
        matmul(q, transpose(k))
    }
}

fn main() {}
