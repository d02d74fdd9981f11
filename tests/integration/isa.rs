//! Every ISA variant of the default kernels, forced one after the other, against the reference.
//! (`ATTN_ISA=v1|v3|v4` does the same for a whole process.)

use crate::common::{Rng, assert_close, assert_close_tol};
use attn::half::{bf16, f16};
use attn::isa::{self, Isa};
use attn::reference;

#[test]
fn every_supported_variant_matches_the_reference() {
    // Forcing an ISA level changes the results of the tests running beside it: alone.
    if !crate::common::alone(
        module_path!(),
        "every_supported_variant_matches_the_reference",
    ) {
        return;
    }
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
        // The other dtypes' kernels (bf16's tail loads differ from the others'; f16 conversions
        // are instructions on v3/v4 and library calls on the baseline).
        let (qb, kb, vb) = (
            q.map(bf16::from_f32),
            k.map(bf16::from_f32),
            v.map(bf16::from_f32),
        );
        let wide = |t: &attn::Tensor<bf16>| t.map(f32::from);
        let expected_b = reference::attention(&wide(&qb), &wide(&kb), &wide(&vb), None).unwrap();
        let got = attn::attention(&qb, &kb, &vb).unwrap().map(f32::from);
        assert_close_tol(&got, &expected_b, 2.0f64.powi(-8), 1e-5);
        let (qh, kh, vh) = (
            q.map(f16::from_f32),
            k.map(f16::from_f32),
            v.map(f16::from_f32),
        );
        let wide = |t: &attn::Tensor<f16>| t.map(f32::from);
        let expected_h = reference::attention(&wide(&qh), &wide(&kh), &wide(&vh), None).unwrap();
        let got = attn::attention(&qh, &kh, &vh).unwrap().map(f32::from);
        assert_close_tol(&got, &expected_h, 2.0f64.powi(-10), 1e-5);
        let got = attn::attention(&q.map(f64::from), &k.map(f64::from), &v.map(f64::from)).unwrap();
        let c = reference::compare(&got, &expected, 1e-12, 1e-13).unwrap();
        assert!(c.ok, "f64 on {level:?}: {c:?}");
        ran.push(level);
    }
    isa::force(None).unwrap();
    // Baseline x86-64 always runs on x86-64.
    assert!(ran.contains(&Isa::X86_64), "{ran:?}");
}
