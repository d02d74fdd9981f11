attn::attention! {
    #[attn(causal)]
    pub fn f(x: [8, 4]) -> [8, 4] {
        softmax(x)
    }
}

fn main() {}
