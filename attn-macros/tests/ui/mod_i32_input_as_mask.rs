attn::attention! {
    pub fn m(q: [64, 32], k: [64, 32], v: [64, 32], doc: [64, 64] as i32) -> [64, 32] {
        attention(q, k, v, mask = doc)
    }
}

fn main() {}
