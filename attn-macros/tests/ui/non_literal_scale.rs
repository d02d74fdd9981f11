const C: f32 = 0.5;

attn::attention! {
    pub fn f(x: [4, 8]) -> [4, 8] {
        scale(x, C)
    }
}

fn main() {}
