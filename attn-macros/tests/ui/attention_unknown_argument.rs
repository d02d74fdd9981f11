attn::attention! {
    pub fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4] {
        attention(q, k, v, dropout = 0.1)
    }
}

fn main() {}
