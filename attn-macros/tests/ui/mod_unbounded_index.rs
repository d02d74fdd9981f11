attn::attention! {
    pub fn docs(q: [64, 32], k: [64, 32], v: [64, 32], doc: [64] as i32) -> [64, 32] {
        attention(q, k, v, mask_mod = |b, h, i, j| doc[doc[j]] == 0)
    }
}

fn main() {}
