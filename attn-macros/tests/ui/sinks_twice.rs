attn::attention! {
    pub fn f(q: [4, 16, 32], k: [4, 24, 32], v: [4, 24, 32], s: [4]) -> [4, 16, 32] {
        attention(q, k, v, sinks = s, sinks = s)
    }
}

fn main() {}
