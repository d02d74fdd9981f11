attn::attention! {
    pub fn f(a: [4, 8], b: [4, 8, 1]) -> [4, 8] {
        let p = softmax(a);
        mul(p, b)
    }
}

fn main() {}
