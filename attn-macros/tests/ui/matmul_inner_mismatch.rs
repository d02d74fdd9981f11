attn::attention! {
    pub fn f(a: [4, 8], b: [7, 3]) -> [4, 3] {
        matmul(a, b)
    }
}

fn main() {}
