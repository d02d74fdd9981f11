//! The one hash function of attn: symbol names, the object cache keys and the kernel
//! manifest all use it.

/// 64-bit FNV-1a over the parts (each followed by a separator byte): stable across runs, hosts
/// and compiler versions, unlike `std`'s hashers.
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(core::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn stable_and_separated() {
        assert_eq!(fnv1a(&["a"]), fnv1a(&["a"]));
        assert_ne!(fnv1a(&["ab", "c"]), fnv1a(&["a", "bc"]));
        // FNV-1a 64 of the bytes "a", 0xff: fixed, since symbol names and cache keys depend on
        // it.
        assert_eq!(fnv1a(&["a"]), 0x089b_c907_b544_c769);
    }
}
