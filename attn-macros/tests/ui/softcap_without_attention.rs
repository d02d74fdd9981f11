attn::attention! {
    #[attn(softcap = 30.0)]
    pub fn f(x: [16, 32]) -> [16, 32] { softmax(x) }
}

fn main() {}
