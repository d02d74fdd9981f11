attn::attention! {
    pub fn f(a: [4, 8], b: [8, 4]) -> [4, 8] {
        add(a, b)
    }
}

fn main() {}
