attn::attention! {
    pub fn window(q: [16, 8], k: [16, 8], v: [16, 8]) -> [16, 8];
}

fn main() {
    let q = [[0.0f32; 8]; 16];
    let mut out = [[0.0f32; 16]; 8];
    window_into(&q, &q, &q, &mut out);
}
