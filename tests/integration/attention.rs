//! `attn::attention` against the f64 reference.

use crate::common::{Rng, assert_close};
use attn::{Error, Tensor, TensorView, TensorViewMut, reference};

fn check(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    let out = attn::attention(q, k, v).unwrap_or_else(|e| panic!("{e}"));
    assert_close(&out, &reference::attention(q, k, v, None).unwrap());
    out
}

#[test]
fn seeded_random_4x8() {
    let mut rng = Rng::new(1);
    let (q, k, v) = (
        rng.tensor(&[4, 8]),
        rng.tensor(&[4, 8]),
        rng.tensor(&[4, 8]),
    );
    check(&q, &k, &v);
}

#[test]
fn worked_example() {
    let q = Tensor::from_vec(
        &[4, 3],
        vec![1., 0., 0., 0., 1., 0., 0., 0., 1., 0.3, 0.3, 0.3],
    )
    .unwrap();
    let v = Tensor::from_vec(&[4, 2], vec![1., 2., 3., 4., 5., 6., 7., 8.]).unwrap();
    let out = check(&q, &q, &v);
    // softmax(Q Q^T / sqrt(3)) V, computed independently (by hand in f64): these are the values
    // for the standard scale. (The figures [[2.62, 3.62], ...] match no uniform scale.)
    let expected = [
        3.6426, 4.6426, 3.9569, 4.9569, 4.2713, 5.2713, 3.9871, 4.9871,
    ];
    for (a, e) in out.as_slice().iter().zip(expected) {
        assert!((a - e).abs() < 1e-3, "{:?}", out.as_slice());
    }
}

#[test]
fn identity_queries_and_keys() {
    // Q = K = I (4x4): row i attends to key i with weight e^(1/2) / (e^(1/2) + 3).
    let mut eye = vec![0.0f32; 16];
    for i in 0..4 {
        eye[i * 5] = 1.0;
    }
    let q = Tensor::from_vec(&[4, 4], eye).unwrap();
    let mut rng = Rng::new(7);
    let v = rng.tensor(&[4, 5]);
    check(&q, &q, &v);
}

#[test]
fn uniform_input_gives_ones() {
    let ones = Tensor::full(&[16, 8], 1.0f32).unwrap();
    let out = check(&ones, &ones, &ones);
    assert!(out.as_slice().iter().all(|&x| (x - 1.0).abs() < 1e-6));
}

#[test]
fn single_token_returns_v() {
    let mut rng = Rng::new(3);
    let (q, k, v) = (
        rng.tensor(&[5, 16]),
        rng.tensor(&[1, 16]),
        rng.tensor(&[1, 7]),
    );
    let out = check(&q, &k, &v);
    for row in out.as_slice().chunks(7) {
        for (a, b) in row.iter().zip(v.as_slice()) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}

#[test]
fn many_sizes_from_1_to_512() {
    let mut rng = Rng::new(11);
    for &(sq, sk, d, dv) in &[
        (1, 1, 1, 1),
        (1, 7, 3, 2),
        (2, 3, 5, 7),
        (13, 17, 19, 23),
        (37, 53, 80, 24),
        (64, 64, 64, 64),
        (100, 33, 64, 1),
        (127, 129, 31, 65),
        (256, 256, 64, 64),
        (300, 211, 97, 48),
        (512, 512, 64, 64),
        (511, 509, 1, 3),
    ] {
        let (q, k, v) = (
            rng.tensor(&[sq, d]),
            rng.tensor(&[sk, d]),
            rng.tensor(&[sk, dv]),
        );
        check(&q, &k, &v);
    }
}

#[test]
fn batched_and_multi_head() {
    let mut rng = Rng::new(5);
    let (q, k, v) = (
        rng.tensor(&[3, 9, 16]),
        rng.tensor(&[3, 11, 16]),
        rng.tensor(&[3, 11, 5]),
    );
    check(&q, &k, &v);
    let (q, k, v) = (
        rng.tensor(&[2, 3, 7, 8]),
        rng.tensor(&[2, 3, 13, 8]),
        rng.tensor(&[2, 3, 13, 6]),
    );
    check(&q, &k, &v);
}

#[test]
fn strided_views_need_no_copy() {
    // K stored transposed ([D, Sk]) and seen as [Sk, D] through strides.
    let mut rng = Rng::new(9);
    let (q, kt, v) = (
        rng.tensor(&[6, 10]),
        rng.tensor(&[10, 12]),
        rng.tensor(&[12, 4]),
    );
    let k_view = kt.view().t().unwrap();
    assert!(!k_view.is_contiguous());
    let out = attn::attention(&q, &k_view, &v).unwrap();
    assert_close(&out, &reference::attention(&q, &k_view, &v, None).unwrap());
    // Q as every other row of a larger buffer (row stride 2 * D).
    let big = rng.tensor(&[12, 10]);
    let q_rows = TensorView::from_strided(big.as_slice(), &[6, 10], &[20, 1], 10).unwrap();
    let out = attn::attention(&q_rows, &k_view, &v).unwrap();
    assert_close(
        &out,
        &reference::attention(&q_rows, &k_view, &v, None).unwrap(),
    );
}

#[test]
fn explicit_scale_and_into() {
    let mut rng = Rng::new(13);
    let (q, k, v) = (
        rng.tensor(&[9, 4]),
        rng.tensor(&[5, 4]),
        rng.tensor(&[5, 3]),
    );
    let out = attn::attention_with_scale(&q, &k, &v, Some(0.3)).unwrap();
    assert_close(&out, &reference::attention(&q, &k, &v, Some(0.3)).unwrap());
    let mut buf = vec![0.0f32; 27];
    let mut view = TensorViewMut::new(&mut buf, &[9, 3]).unwrap();
    attn::attention_into(&q, &k, &v, &mut view).unwrap();
    let plain = attn::attention(&q, &k, &v).unwrap();
    assert_eq!(buf, plain.as_slice());
}

#[test]
fn shape_errors_name_the_arguments() {
    let mut rng = Rng::new(2);
    let q = rng.tensor(&[4, 8]);
    let k_bad_d = rng.tensor(&[5, 7]);
    let v = rng.tensor(&[5, 3]);
    let e = attn::attention(&q, &k_bad_d, &v).unwrap_err().to_string();
    assert!(
        e.contains("attention") && e.contains("[5, 7]") && e.contains("[4, 8]"),
        "{e}"
    );

    let k = rng.tensor(&[5, 8]);
    let v_bad = rng.tensor(&[6, 3]);
    let e = attn::attention(&q, &k, &v_bad).unwrap_err().to_string();
    assert!(e.contains("[6, 3]") && e.contains("v"), "{e}");

    let q3 = rng.tensor(&[2, 4, 8]);
    let e = attn::attention(&q3, &k, &v).unwrap_err();
    assert!(!e.to_string().is_empty());

    let empty = Tensor::zeros(&[0, 8]).unwrap();
    let e = attn::attention(&empty, &k, &v).unwrap_err();
    assert!(matches!(e, Error::EmptyDimension { .. }), "{e}");

    let q5 = rng.tensor(&[1, 1, 1, 1, 1]);
    assert!(attn::attention(&q5, &q5, &q5).is_err());

    let e = attn::attention_with_scale(&q, &k, &v, Some(f64::NAN))
        .unwrap_err()
        .to_string();
    assert!(e.contains("scale"), "{e}");

    let mut small = vec![0.0f32; 4];
    let mut out = TensorViewMut::new(&mut small, &[2, 2]).unwrap();
    let e = attn::attention_into(&q, &k, &v, &mut out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("out") && e.contains("[4, 3]"), "{e}");
}

#[test]
fn the_loop_pipeline_baseline_agrees() {
    let mut rng = Rng::new(41);
    let (q, k, v) = (
        rng.tensor(&[37, 80]),
        rng.tensor(&[53, 80]),
        rng.tensor(&[53, 24]),
    );
    let out = attn::baseline::attention(&q, &k, &v).unwrap();
    assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());
    let q3 = rng.tensor(&[2, 37, 80]);
    assert!(attn::baseline::attention(&q3, &k, &v).is_err());
}
