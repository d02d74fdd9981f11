attn::attention! {
    pub fn m(q: [64, 32], k: [64, 32], v: [64, 32], doc: [64] as i32) -> [64, 32] {
        attention(q, k, v, mask_mod = |b, h, i, j| dog[i] == doc[j])
    }
}

fn main() {}
