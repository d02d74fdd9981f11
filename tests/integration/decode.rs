//! The streaming decode path of the fused kernel (at most 8 query rows per kernel call, K and V
//! with unit stride along D): decode shapes with 1 to 8 query rows, stacked GQA/MQA heads, odd
//! and large head dims, causal positions, masks (fully masked rows give zeros), NaN, strided
//! inputs; and the packed path for K/V without unit stride, against the f64 reference.

use crate::common::{Rng, assert_close, reference_with};
use attn::{Attention, TensorView};

#[test]
fn few_query_rows_match_the_reference() {
    let mut rng = Rng::new(101);
    // (Sq, Sk, D, Dv): every row count of the path, keys around the block sizes (16 for AVX2,
    // 32 for AVX-512), head dims with and without a partial last vector.
    let mut shapes = Vec::new();
    for sq in 1..=8 {
        shapes.push((sq, 37, 16, 16));
    }
    for &(sk, d, dv) in &[
        (1, 1, 1),
        (2, 7, 5),
        (15, 8, 8),
        (16, 9, 17),
        (17, 80, 80),
        (31, 129, 129),
        (33, 128, 128),
        (64, 3, 48),
        (65, 24, 40),
        (300, 64, 7),
    ] {
        for sq in [1, 3, 8] {
            shapes.push((sq, sk, d, dv));
        }
    }
    for (sq, sk, d, dv) in shapes {
        let q = rng.tensor(&[sq, d]);
        let k = rng.tensor(&[sk, d]);
        let v = rng.tensor(&[sk, dv]);
        let out = attn::attention(&q, &k, &v).unwrap();
        assert_close(&out, &reference_with(&q, &k, &v, false, None, None));
        for causal in [false, true] {
            let out = Attention::new().causal(causal).run(&q, &k, &v).unwrap();
            assert_close(&out, &reference_with(&q, &k, &v, causal, None, None));
        }
    }
}

#[test]
fn stacked_query_heads_match_the_reference() {
    let mut rng = Rng::new(102);
    // (B, Hq, Hkv, Sq, Sk, D): GQA groups stacked into one call of 1 to 8 rows (and past 8,
    // the packed path), MQA, decode over long caches.
    for &(b, hq, hkv, sq, sk, d) in &[
        (1, 12, 2, 1, 4096, 128),
        (1, 12, 12, 1, 513, 128),
        (2, 8, 1, 1, 77, 64),
        (1, 4, 2, 3, 40, 80),
        (1, 8, 2, 2, 33, 7),
        (2, 6, 3, 4, 19, 1),
        (1, 16, 1, 1, 50, 129),
        (1, 4, 1, 3, 21, 32),
    ] {
        let q = rng.tensor(&[b, hq, sq, d]);
        let k = rng.tensor(&[b, hkv, sk, d]);
        let v = rng.tensor(&[b, hkv, sk, d]);
        for causal in [false, true] {
            let out = Attention::new().causal(causal).run(&q, &k, &v).unwrap();
            assert_close(&out, &reference_with(&q, &k, &v, causal, None, None));
        }
    }
}

#[test]
fn causal_rows_before_the_first_key_are_zeros() {
    let mut rng = Rng::new(103);
    // Sq > Sk, bottom-right aligned: rows i < Sq - Sk see no key.
    for &(sq, sk) in &[(5, 3), (8, 1), (4, 4), (7, 2)] {
        let (q, k, v) = (
            rng.tensor(&[sq, 9]),
            rng.tensor(&[sk, 9]),
            rng.tensor(&[sk, 11]),
        );
        let out = Attention::new().causal(true).run(&q, &k, &v).unwrap();
        assert_close(&out, &reference_with(&q, &k, &v, true, None, None));
        let hidden = sq.saturating_sub(sk) * 11;
        assert!(out.as_slice()[..hidden].iter().all(|&x| x == 0.0));
    }
}

#[test]
fn masks_and_key_padding_match_the_reference() {
    let mut rng = Rng::new(104);
    let (b, hq, hkv, sk, d) = (2, 6, 2, 45, 20);
    for sq in [1, 2] {
        let q = rng.tensor(&[b, hq, sq, d]);
        let k = rng.tensor(&[b, hkv, sk, d]);
        let v = rng.tensor(&[b, hkv, sk, 13]);
        for shape in [
            vec![b, hq, sq, sk],
            vec![b, 1, sq, sk],
            vec![sq, sk],
            vec![b, 1, 1, sk],
        ] {
            let mut m = rng.tensor(&shape).map(|x| x * 2.0);
            for (i, x) in m.as_mut_slice().iter_mut().enumerate() {
                if i % 5 == 1 {
                    *x = f32::NEG_INFINITY;
                }
            }
            // Row 0 of the mask fully masked: its output rows are zeros.
            for x in &mut m.as_mut_slice()[..sk] {
                *x = f32::NEG_INFINITY;
            }
            for causal in [false, true] {
                let out = Attention::new()
                    .causal(causal)
                    .mask(&m)
                    .run(&q, &k, &v)
                    .unwrap();
                let exp = reference_with(&q, &k, &v, causal, Some(m.view()), None);
                assert_close(&out, &exp);
                assert!(out.as_slice()[..13].iter().all(|&x| x == 0.0));
            }
        }
        let mut pad = vec![true; b * sk];
        for (i, p) in pad.iter_mut().enumerate() {
            *p = i % 3 != 0;
        }
        for causal in [false, true] {
            let out = Attention::new()
                .causal(causal)
                .key_padding(&pad)
                .run(&q, &k, &v)
                .unwrap();
            assert_close(&out, &reference_with(&q, &k, &v, causal, None, Some(&pad)));
        }
    }
}

#[test]
fn nan_and_infinite_scores_give_nan_rows() {
    let mut rng = Rng::new(105);
    let (sq, sk, d) = (3, 40, 10);
    let mut q = rng.tensor(&[sq, d]);
    let k = rng.tensor(&[sk, d]);
    let mut v = rng.tensor(&[sk, d]);
    q.as_mut_slice()[d + 4] = f32::NAN;
    let out = attn::attention(&q, &k, &v).unwrap();
    let o = out.as_slice();
    assert!(o[d..2 * d].iter().all(|x| x.is_nan()));
    assert!(o[..d].iter().chain(&o[2 * d..]).all(|x| x.is_finite()));
    q.as_mut_slice()[d + 4] = f32::INFINITY;
    let out = attn::attention(&q, &k, &v).unwrap();
    assert!(out.as_slice()[d..2 * d].iter().all(|x| x.is_nan()));
    // A NaN in V reaches only the output columns it is in.
    q.as_mut_slice()[d + 4] = 0.5;
    v.as_mut_slice()[7 * d + 2] = f32::NAN;
    let out = attn::attention(&q, &k, &v).unwrap();
    for r in 0..sq {
        for c in 0..d {
            assert_eq!(
                out.as_slice()[r * d + c].is_nan(),
                c == 2,
                "row {r} col {c}"
            );
        }
    }
}

#[test]
fn strided_inputs_take_the_right_path() {
    let mut rng = Rng::new(106);
    let (b, hq, hkv, sk, d) = (2, 4, 2, 70, 24);
    // Decode from a fused QKV buffer [B, S, (Hq + 2 Hkv) * D]: unit stride along D, rows apart.
    let w = (hq + 2 * hkv) * d;
    let qkv = rng.tensor(&[b, sk, w]);
    let data = qkv.as_slice();
    let view = |h: usize, s: usize, off: usize| {
        TensorView::from_strided(data, &[b, h, s, d], &[sk * w, d, w, 1], off).unwrap()
    };
    let q = view(hq, 1, (sk - 1) * w);
    let (k, v) = (view(hkv, sk, hq * d), view(hkv, sk, (hq + hkv) * d));
    for causal in [false, true] {
        let out = Attention::new().causal(causal).run(&q, &k, &v).unwrap();
        assert_close(&out, &reference_with(&q, &k, &v, causal, None, None));
    }
    // K and V stored transposed ([D, Sk] memory): no unit stride along D, the packed path.
    let (q, kt, vt) = (
        rng.tensor(&[3, d]),
        rng.tensor(&[d, sk]),
        rng.tensor(&[d + 3, sk]),
    );
    let k = TensorView::from_strided(kt.as_slice(), &[sk, d], &[1, sk], 0).unwrap();
    let v = TensorView::from_strided(vt.as_slice(), &[sk, d + 3], &[1, sk], 0).unwrap();
    for causal in [false, true] {
        let out = Attention::new().causal(causal).run(&q, &k, &v).unwrap();
        assert_close(&out, &reference_with(&q, &k, &v, causal, None, None));
    }
    // Only V transposed; a query with strided rows.
    let qs = rng.tensor(&[2, 3 * d]);
    let q = TensorView::from_strided(qs.as_slice(), &[2, d], &[3 * d, 1], d).unwrap();
    let k = rng.tensor(&[sk, d]);
    let out = attn::attention(&q, &k, &v).unwrap();
    assert_close(&out, &reference_with(&q, &k, &v, false, None, None));
}

#[test]
fn every_supported_isa_variant_decodes() {
    // Forcing an ISA level changes the results of the tests running beside it: alone.
    if !crate::common::alone(module_path!(), "every_supported_isa_variant_decodes") {
        return;
    }
    use attn::isa::{self, Isa};
    let mut rng = Rng::new(107);
    let (q, k, v) = (
        rng.tensor(&[1, 6, 1, 80]),
        rng.tensor(&[1, 2, 97, 80]),
        rng.tensor(&[1, 2, 97, 33]),
    );
    let exp = reference_with(&q, &k, &v, true, None, None);
    for level in Isa::ALL {
        if level.supported() {
            isa::force(Some(level)).unwrap();
            let out = Attention::new().causal(true).run(&q, &k, &v).unwrap();
            assert_close(&out, &exp);
        }
    }
    isa::force(None).unwrap();
}
