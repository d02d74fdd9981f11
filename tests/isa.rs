//! Every ISA variant of the default kernels, forced one after the other, against the reference.
//! (`ATTN_ISA=v1|v3|v4` does the same for a whole process.)

mod common;

use attn::isa::{self, Isa};
use attn::reference;
use common::{Rng, assert_close};

#[test]
fn every_supported_variant_matches_the_reference() {
    let mut rng = Rng::new(31);
    let (q, k, v) = (
        rng.tensor(&[37, 80]),
        rng.tensor(&[53, 80]),
        rng.tensor(&[53, 24]),
    );
    let (a, b) = (rng.tensor(&[19, 23]), rng.tensor(&[23, 7]));
    let expected = reference::attention(&q, &k, &v, None).unwrap();
    let mut ran = Vec::new();
    for level in Isa::ALL {
        if !level.supported() {
            assert!(
                isa::force(Some(level)).is_err(),
                "{level:?} is not supported here"
            );
            continue;
        }
        isa::force(Some(level)).unwrap();
        assert_eq!(isa::active(), level);
        assert_close(&attn::attention(&q, &k, &v).unwrap(), &expected);
        assert_close(
            &attn::matmul(&a, &b).unwrap(),
            &reference::matmul(&a, &b).unwrap(),
        );
        assert_close(
            &attn::softmax(&a).unwrap(),
            &reference::softmax(&a).unwrap(),
        );
        ran.push(level);
    }
    isa::force(None).unwrap();
    // Baseline x86-64 always runs on x86-64.
    assert!(ran.contains(&Isa::X86_64), "{ran:?}");
}
