//! Attention variants against the f64 reference: grouped-query heads, causal (bottom-right
//! aligned, Sq != Sk), additive masks with broadcasting, key padding, their combinations, fully
//! masked rows, strided layouts ([B, S, H, D] memory, fused QKV), and the errors.

use crate::common::{Rng, assert_close, reference_with};
use attn::{Attention, Tensor, TensorView, reference};

#[test]
fn grouped_query_heads_match_the_reference() {
    let mut rng = Rng::new(1);
    // (B, Hq, Hkv, Sq, Sk, D, Dv): MHA, GQA, MQA, odd sizes, decode.
    for &(b, hq, hkv, sq, sk, d, dv) in &[
        (1, 4, 4, 9, 13, 16, 16),
        (2, 6, 2, 17, 23, 20, 12),
        (1, 12, 2, 33, 40, 64, 64),
        (2, 5, 1, 7, 31, 8, 24),
        (1, 12, 2, 1, 300, 128, 128),
        (3, 4, 2, 1, 5, 3, 5),
    ] {
        let q = rng.tensor(&[b, hq, sq, d]);
        let k = rng.tensor(&[b, hkv, sk, d]);
        let v = rng.tensor(&[b, hkv, sk, dv]);
        for causal in [false, true] {
            let out = Attention::new().causal(causal).run(&q, &k, &v).unwrap();
            assert_close(&out, &reference_with(&q, &k, &v, causal, None, None));
        }
    }
    // Rank 3: [H, S, D].
    let q = rng.tensor(&[6, 11, 8]);
    let k = rng.tensor(&[3, 14, 8]);
    let v = rng.tensor(&[3, 14, 5]);
    let out = attn::attention(&q, &k, &v).unwrap();
    assert_eq!(out.shape(), &[6, 11, 5]);
    assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());
}

#[test]
fn causal_is_bottom_right_aligned() {
    let mut rng = Rng::new(2);
    for &(sq, sk) in &[
        (1, 1),
        (5, 5),
        (37, 37),
        (300, 300),
        (7, 19),
        (1, 50),
        (19, 7),
        (260, 530),
        (513, 700),
    ] {
        let (d, dv) = (24, 40);
        let q = rng.tensor(&[2, 3, sq, d]);
        let k = rng.tensor(&[2, 3, sk, d]);
        let v = rng.tensor(&[2, 3, sk, dv]);
        let out = Attention::new().causal(true).run(&q, &k, &v).unwrap();
        let expected = reference_with(&q, &k, &v, true, None, None);
        assert_close(&out, &expected);
        if sq > sk {
            // Rows i < Sq - Sk see no key: zeros, not NaN.
            let head0 = &out.as_slice()[..sq * dv];
            assert!(head0[..(sq - sk) * dv].iter().all(|&x| x == 0.0));
        }
    }
    // Row i of a square causal call sees keys 0..=i: row 0 is v[0].
    let q = rng.tensor(&[4, 8]);
    let k = rng.tensor(&[4, 8]);
    let v = rng.tensor(&[4, 3]);
    let out = Attention::new().causal(true).run(&q, &k, &v).unwrap();
    assert_eq!(&out.as_slice()[..3], &v.as_slice()[..3]);
}

#[test]
fn additive_masks_broadcast() {
    let mut rng = Rng::new(3);
    let (b, h, sq, sk, d) = (2, 4, 13, 29, 16);
    let q = rng.tensor(&[b, h, sq, d]);
    let k = rng.tensor(&[b, 2, sk, d]);
    let v = rng.tensor(&[b, 2, sk, 10]);
    for shape in [
        vec![sq, sk],
        vec![b, 1, sq, sk],
        vec![b, h, sq, sk],
        vec![1, h, 1, sk],
        vec![b, 1, 1, sk],
        vec![sk],
    ] {
        let mut m = rng.tensor(&shape).map(|x| x * 3.0);
        // Some -inf entries, never a whole row.
        for (i, x) in m.as_mut_slice().iter_mut().enumerate() {
            if i % 7 == 3 {
                *x = f32::NEG_INFINITY;
            }
        }
        for causal in [false, true] {
            let out = Attention::new()
                .causal(causal)
                .mask(&m)
                .run(&q, &k, &v)
                .unwrap();
            let expected = reference_with(&q, &k, &v, causal, Some(m.view()), None);
            assert_close(&out, &expected);
        }
    }
    // A transposed (strided) mask view.
    let mt = rng.tensor(&[sk, sq]);
    let out = Attention::new()
        .mask(&mt.view().t().unwrap())
        .run(&q, &k, &v)
        .unwrap();
    assert_close(
        &out,
        &reference_with(&q, &k, &v, false, Some(mt.view().t().unwrap()), None),
    );
}

#[test]
fn key_padding_and_fully_masked_rows() {
    let mut rng = Rng::new(4);
    let (b, h, sq, sk, d) = (3, 2, 6, 11, 8);
    let q = rng.tensor(&[b, h, sq, d]);
    let k = rng.tensor(&[b, h, sk, d]);
    let v = rng.tensor(&[b, h, sk, 4]);
    // Batch 0: keys 0..8 valid; batch 1: every key padded; batch 2: all valid.
    let mut valid = vec![true; b * sk];
    valid[8..sk].fill(false);
    for j in 0..sk {
        valid[sk + j] = false;
    }
    let m = rng.tensor(&[sq, sk]);
    for causal in [false, true] {
        for mask in [None, Some(m.view())] {
            let mut a = Attention::new().causal(causal).key_padding(&valid);
            if let Some(mv) = &mask {
                a = a.mask(mv);
            }
            let out = a.run(&q, &k, &v).unwrap();
            assert_close(
                &out,
                &reference_with(&q, &k, &v, causal, mask, Some(&valid)),
            );
            // Batch 1 is fully masked: zeros.
            let per_b = h * sq * 4;
            assert!(
                out.as_slice()[per_b..2 * per_b].iter().all(|&x| x == 0.0),
                "causal {causal}"
            );
        }
    }
    // A mask row of -inf only gives zeros; NaN still propagates.
    let mut m = Tensor::zeros(&[sq, sk]).unwrap();
    for j in 0..sk {
        m.as_mut_slice()[2 * sk + j] = f32::NEG_INFINITY;
    }
    let mut q2 = q.clone();
    q2.as_mut_slice()[4 * d] = f32::NAN; // batch 0, head 0, row 4
    let out = Attention::new().mask(&m).run(&q2, &k, &v).unwrap();
    let o = out.as_slice();
    assert!(o[2 * 4..3 * 4].iter().all(|&x| x == 0.0));
    assert!(o[4 * 4..5 * 4].iter().all(|x| x.is_nan()));
    assert!(o[..2 * 4].iter().all(|x| x.is_finite()));
}

#[test]
fn strided_layouts_bshd_and_fused_qkv() {
    let mut rng = Rng::new(5);
    let (b, s, hq, hkv, d) = (2, 19, 6, 2, 16);
    // [B, S, H, D] memory seen as [B, H, S, D] through strides.
    let qm = rng.tensor(&[b, s, hq, d]);
    let km = rng.tensor(&[b, s, hkv, d]);
    let vm = rng.tensor(&[b, s, hkv, d]);
    let q = qm.view().transpose(1, 2).unwrap();
    let k = km.view().transpose(1, 2).unwrap();
    let v = vm.view().transpose(1, 2).unwrap();
    assert_eq!(q.shape(), &[b, hq, s, d]);
    for causal in [false, true] {
        let out = Attention::new().causal(causal).run(&q, &k, &v).unwrap();
        assert_close(&out, &reference_with(&q, &k, &v, causal, None, None));
    }
    // Q, K and V as slices of one fused QKV buffer [B, S, (Hq + 2 Hkv) * D].
    let w = (hq + 2 * hkv) * d;
    let qkv = rng.tensor(&[b, s, w]);
    let data = qkv.as_slice();
    let view = |h: usize, off: usize| {
        TensorView::from_strided(data, &[b, h, s, d], &[s * w, d, w, 1], off).unwrap()
    };
    let (q, k, v) = (view(hq, 0), view(hkv, hq * d), view(hkv, (hq + hkv) * d));
    for causal in [false, true] {
        let out = Attention::new().causal(causal).run(&q, &k, &v).unwrap();
        assert_close(&out, &reference_with(&q, &k, &v, causal, None, None));
    }
    // Into a strided output ([B, S, H, Dv] memory).
    let mut o = Tensor::zeros(&[b, s, hq, d]).unwrap();
    let mut ot = attn::TensorViewMut::from_strided(
        o.as_mut_slice(),
        &[b, hq, s, d],
        &[s * hq * d, d, hq * d, 1],
        0,
    )
    .unwrap();
    Attention::new()
        .causal(true)
        .run_into(&q, &k, &v, &mut ot)
        .unwrap();
    let expected = reference_with(&q, &k, &v, true, None, None);
    assert_close(&ot.to_tensor(), &expected);
}

#[test]
fn bad_combinations_are_clear_errors() {
    let mut rng = Rng::new(6);
    let q = rng.tensor(&[1, 6, 4, 8]);
    let k = rng.tensor(&[1, 4, 5, 8]);
    let e = Attention::new().run(&q, &k, &k).unwrap_err().to_string();
    assert!(
        e.contains("query heads (6) must be a multiple of the key/value heads (4)")
            && e.contains("[1, 4, 5, 8]")
            && e.contains("[1, 6, 4, 8]"),
        "{e}"
    );
    let k = rng.tensor(&[1, 2, 5, 8]);
    let m = rng.tensor(&[4, 6]);
    let e = Attention::new()
        .mask(&m)
        .run(&q, &k, &k)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mask has shape [4, 6]") && e.contains("[1, 6, 4, 5]"),
        "{e}"
    );
    let pad = [true; 3];
    let e = Attention::new()
        .key_padding(&pad)
        .run(&q, &k, &k)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key_padding has 3 elements") && e.contains("[1, 5]"),
        "{e}"
    );
    let e = Attention::new()
        .scale(f32::NAN)
        .run(&q, &k, &k)
        .unwrap_err()
        .to_string();
    assert!(e.contains("finite"), "{e}");
}

#[test]
fn kv_cache_decode_matches_the_reference() {
    let mut rng = Rng::new(7);
    let (hq, hkv, d, total) = (6, 2, 16, 23);
    let q = rng.tensor(&[1, hq, total, d]);
    let k = rng.tensor(&[1, hkv, total, d]);
    let v = rng.tensor(&[1, hkv, total, d]);
    let causal = Attention::new().causal(true);
    let mut cache = attn::KvCache::new(1, hkv, total, d, d).unwrap();
    cache.append(&rows(&k, 0, 9), &rows(&v, 0, 9)).unwrap();
    let pre = cache.attend(&causal, &rows(&q, 0, 9)).unwrap();
    assert_close(
        &pre,
        &reference_with(
            &rows(&q, 0, 9),
            &rows(&k, 0, 9),
            &rows(&v, 0, 9),
            true,
            None,
            None,
        ),
    );
    for i in 9..total {
        cache.append(&rows(&k, i, 1), &rows(&v, i, 1)).unwrap();
        let out = cache.attend(&causal, &rows(&q, i, 1)).unwrap();
        let expected = reference_with(
            &rows(&q, i, 1),
            &rows(&k, 0, i + 1),
            &rows(&v, 0, i + 1),
            true,
            None,
            None,
        );
        assert_close(&out, &expected);
    }
    let e = cache.append(&rows(&k, 0, 1), &rows(&v, 0, 1)).unwrap_err();
    assert!(e.to_string().contains("capacity"), "{e}");
}

/// Positions `from..from + n` of a `[1, H, S, D]` tensor, as a strided view.
fn rows(t: &Tensor, from: usize, n: usize) -> TensorView<'_, f32> {
    let s = t.shape();
    TensorView::from_strided(
        t.as_slice(),
        &[1, s[1], n, s[3]],
        &[s[1] * s[2] * s[3], s[2] * s[3], s[3], 1],
        from * s[3],
    )
    .unwrap()
}
