attn::attention! {
    #[attn(dtype = bf16)]
    pub fn f(q: [16, 16], k: [16, 16], v: [16, 16]) -> [16, 16] {
        attention(q, k, v, mask = k)
    }
}

fn main() {}
