attn::attention! {
    #[attn(dtype = bf16)]
    pub fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4];
}

fn main() {
    let x = [[0.0f32; 4]; 8];
    let _ = f(&x, &x, &x);
}
