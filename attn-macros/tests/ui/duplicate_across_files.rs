mod a {
    attn::attention! {
        pub fn twice(x: [4, 8]) -> [4, 8] {
            softmax(x)
        }
    }
}

fn main() {}
