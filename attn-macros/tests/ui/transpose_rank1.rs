attn::attention! {
    pub fn f(x: [8]) -> [8] {
        transpose(x)
    }
}

fn main() {}
