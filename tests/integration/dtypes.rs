//! Attention in every element type (f32, f64, bf16, f16) against the f64 reference of the same
//! (rounded) inputs, with the tolerances documented on `attn::AttentionElement`: odd shapes
//! (non-powers of two, Sq != Sk, Dv != D), grouped heads, causal, masks, key padding, the
//! streaming decode path (few query rows) and strided views.

use crate::common::Rng;
use attn::{
    Attention, AttentionElement, Element, Tensor, TensorView,
    half::{bf16, f16},
    options::AttentionOptions,
    reference,
};

/// Per-dtype tolerance: `|out - ref| <= atol + rtol |ref|`.
fn tolerance<T: Element>() -> (f64, f64) {
    match T::DTYPE {
        attn::DType::F64 => (1e-12, 1e-13),
        attn::DType::F32 => (1e-4, 1e-6),
        // One rounding of the output (half an ulp: 2^-9 for bf16, 2^-12 for f16) plus the f32
        // computation's error.
        attn::DType::BF16 => (2.0f64.powi(-8), 1e-5),
        attn::DType::F16 => (2.0f64.powi(-10), 1e-5),
        other => panic!("no tolerance for {other}"),
    }
}

fn convert<T: Element>(t: &Tensor) -> Tensor<T> {
    t.map(|x| T::from_f64(f64::from(x)))
}

/// Runs `options` on q, k, v converted to `T` and checks against the reference of the
/// converted inputs.
#[allow(clippy::too_many_arguments)]
fn check<T: AttentionElement>(
    what: &str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    causal: bool,
    mask: Option<&Tensor>,
    key_padding: Option<&[bool]>,
) {
    let (qt, kt, vt) = (convert::<T>(q), convert::<T>(k), convert::<T>(v));
    let mut a = Attention::new().causal(causal);
    if let Some(m) = mask {
        a = a.mask(m);
    }
    if let Some(p) = key_padding {
        a = a.key_padding(p);
    }
    let out: Tensor<T> = a.run(&qt, &kt, &vt).unwrap();
    let m64 = mask.map(|m| m.to_f64());
    let expected = reference::attention_with(
        &qt.to_f64(),
        &kt.to_f64(),
        &vt.to_f64(),
        &reference::AttentionOptions {
            options: AttentionOptions::new().with_causal(causal),
            mask: m64.as_ref().map(|m| m.view()),
            key_padding,
            ..Default::default()
        },
    )
    .unwrap();
    let (rtol, atol) = tolerance::<T>();
    let c = reference::compare(&out, &expected, rtol, atol).unwrap();
    assert!(
        c.ok,
        "{} {what}: max abs err {:e}, max rel err {:e} (shape {:?})",
        T::DTYPE,
        c.max_abs_err,
        c.max_rel_err,
        expected.shape()
    );
}

fn every_dtype(
    what: &str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    causal: bool,
    mask: Option<&Tensor>,
    key_padding: Option<&[bool]>,
) {
    check::<f32>(what, q, k, v, causal, mask, key_padding);
    check::<f64>(what, q, k, v, causal, mask, key_padding);
    check::<bf16>(what, q, k, v, causal, mask, key_padding);
    check::<f16>(what, q, k, v, causal, mask, key_padding);
}

#[test]
fn odd_shapes_grouped_heads_and_causal_in_every_dtype() {
    let mut rng = Rng::new(11);
    // (B, Hq, Hkv, Sq, Sk, D, Dv): odd sizes, GQA, MQA, Sq > Sk, decode-sized Sq.
    for &(b, hq, hkv, sq, sk, d, dv) in &[
        (1, 1, 1, 37, 53, 80, 24),
        (2, 6, 2, 17, 23, 20, 12),
        (1, 4, 1, 70, 33, 64, 64),
        (1, 12, 2, 1, 300, 128, 128),
        (2, 3, 3, 5, 129, 7, 9),
        (1, 2, 2, 300, 300, 3, 1),
    ] {
        let q = rng.tensor(&[b, hq, sq, d]);
        let k = rng.tensor(&[b, hkv, sk, d]);
        let v = rng.tensor(&[b, hkv, sk, dv]);
        for causal in [false, true] {
            every_dtype(
                &format!("{b}x{hq}/{hkv}x{sq}x{sk}x{d}x{dv} causal={causal}"),
                &q,
                &k,
                &v,
                causal,
                None,
                None,
            );
        }
    }
}

#[test]
fn masks_and_key_padding_in_every_dtype() {
    let mut rng = Rng::new(12);
    let (b, hq, hkv, sq, sk, d) = (2, 4, 2, 19, 45, 24);
    let q = rng.tensor(&[b, hq, sq, d]);
    let k = rng.tensor(&[b, hkv, sk, d]);
    let v = rng.tensor(&[b, hkv, sk, d]);
    let mut mask = rng.tensor(&[b, 1, sq, sk]);
    // Some -inf entries, and one fully masked row (zeros expected).
    for (i, x) in mask.as_mut_slice().iter_mut().enumerate() {
        if i % 7 == 3 || i < sk {
            *x = f32::NEG_INFINITY;
        }
    }
    let padding: Vec<bool> = (0..b * sk).map(|i| i % 5 != 1).collect();
    for causal in [false, true] {
        every_dtype("mask", &q, &k, &v, causal, Some(&mask), None);
        every_dtype("padding", &q, &k, &v, causal, None, Some(&padding));
        every_dtype(
            "mask+padding",
            &q,
            &k,
            &v,
            causal,
            Some(&mask),
            Some(&padding),
        );
    }
    // Decode-sized (streaming path) with a mask.
    let q1 = rng.tensor(&[b, hq, 3, d]);
    let m1 = rng.tensor(&[3, sk]);
    every_dtype("decode mask", &q1, &k, &v, false, Some(&m1), None);
}

#[test]
fn strided_half_views_need_no_copy() {
    // [B, S, H, D] bf16 memory seen as [B, H, S, D] through strides.
    let mut rng = Rng::new(13);
    let (b, s, h, d) = (2, 21, 3, 16);
    let bshd: Tensor<bf16> = convert(&rng.tensor(&[b, s, h, d]));
    let strides = [s * h * d, d, h * d, 1];
    let view = TensorView::from_strided(bshd.as_slice(), &[b, h, s, d], &strides, 0).unwrap();
    let out = attn::attention(&view, &view, &view).unwrap();
    let contiguous = view.to_tensor();
    let expected = attn::attention(&contiguous, &contiguous, &contiguous).unwrap();
    assert_eq!(out.as_slice(), expected.as_slice());
}

#[test]
fn f64_is_accurate_beyond_f32() {
    // Logits whose softmax an f32 computation resolves only to ~1e-7.
    let mut rng = Rng::new(14);
    let q = rng.tensor(&[9, 32]).map(|x| f64::from(x) * 3.0);
    let k = rng.tensor(&[40, 32]).map(|x| f64::from(x) * 3.0);
    let v = rng.tensor(&[40, 8]).map(f64::from);
    let out = attn::attention(&q, &k, &v).unwrap();
    let expected = reference::attention(&q, &k, &v, None).unwrap();
    let c = reference::compare(&out, &expected, 0.0, 1e-13).unwrap();
    assert!(c.ok, "f64 max abs err {:e}", c.max_abs_err);
}

#[test]
fn half_special_values() {
    // NaN poisons its row; a fully masked row gives zeros; large values stay finite.
    let mut q = Tensor::<f16>::full(&[3, 4], f16::from_f32(0.5)).unwrap();
    q.as_mut_slice()[0] = f16::NAN;
    let k = Tensor::<f16>::full(&[5, 4], f16::from_f32(60000.0)).unwrap();
    let v = Tensor::<f16>::full(&[5, 2], f16::from_f32(1.5)).unwrap();
    let out = attn::attention(&q, &k, &v).unwrap();
    assert!(out.as_slice()[..2].iter().all(|x| x.is_nan()));
    assert!(out.as_slice()[2..].iter().all(|&x| x == f16::from_f32(1.5)));
    let mask = Tensor::full(&[3, 5], f32::NEG_INFINITY).unwrap();
    let q = Tensor::<bf16>::full(&[3, 4], bf16::ONE).unwrap();
    let k = Tensor::<bf16>::full(&[5, 4], bf16::ONE).unwrap();
    let v = Tensor::<bf16>::full(&[5, 2], bf16::ONE).unwrap();
    let out = Attention::new().mask(&mask).run(&q, &k, &v).unwrap();
    assert!(out.as_slice().iter().all(|&x| x == bf16::ZERO));
}

#[test]
fn bf16_kv_cache_decodes_like_the_reference() {
    let mut rng = Rng::new(15);
    let (hq, hkv, d, total) = (4, 2, 32, 40);
    let q: Tensor<bf16> = convert(&rng.tensor(&[1, hq, total, d]));
    let k: Tensor<bf16> = convert(&rng.tensor(&[1, hkv, total, d]));
    let v: Tensor<bf16> = convert(&rng.tensor(&[1, hkv, total, d]));
    fn rows(t: &Tensor<bf16>, from: usize, n: usize) -> TensorView<'_, bf16> {
        let s = t.shape();
        TensorView::from_strided(
            t.as_slice(),
            &[1, s[1], n, s[3]],
            &[s[1] * s[2] * s[3], s[2] * s[3], s[3], 1],
            from * s[3],
        )
        .unwrap()
    }
    let mut cache = attn::KvCache::<bf16>::new(1, hkv, total, d, d).unwrap();
    let causal = Attention::new().causal(true);
    cache.append(&rows(&k, 0, 30), &rows(&v, 0, 30)).unwrap();
    let mut last = None;
    for i in 30..total {
        cache.append(&rows(&k, i, 1), &rows(&v, i, 1)).unwrap();
        last = Some(cache.attend(&causal, &rows(&q, i, 1)).unwrap());
    }
    let wide = |t: TensorView<'_, bf16>| t.to_tensor().to_f64();
    let expected = reference::attention_with(
        &wide(rows(&q, total - 1, 1)),
        &k.to_f64(),
        &v.to_f64(),
        &AttentionOptions::new().with_causal(true).into(),
    )
    .unwrap();
    let (rtol, atol) = tolerance::<bf16>();
    let c = reference::compare(&last.unwrap(), &expected, rtol, atol).unwrap();
    assert!(c.ok, "bf16 cache: {c:?}");
}
