attn::attention! {
    pub fn f(x: [4, 8], y: [4, 8]) -> [4, 8] {
        softmax(x, y)
    }
}

fn main() {}
