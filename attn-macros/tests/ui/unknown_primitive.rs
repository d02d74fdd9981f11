attn::attention! {
    pub fn f(x: [4, 8]) -> [4, 8] {
        relu(x)
    }
}

fn main() {}
