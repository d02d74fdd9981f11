//! Property tests: random shapes (1 to 300, primes included) and strided views, against the f64
//! reference, attention with every option included. `ATTN_PROPTEST_CASES=10000` runs the long
//! version (default 500 for attention).

use crate::common::{Rng, assert_close, assert_close_tol};
use attn::{Tensor, TensorView, options::AttentionOptions, reference};
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("ATTN_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Sizes 1..=300, biased towards primes and tiny sizes where remainders live.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => 1usize..=4,
        1 => prop::sample::select(vec![2usize, 3, 5, 7, 11, 13, 31, 61, 97, 127, 173, 251, 293]),
        2 => 1usize..=300,
    ]
}

/// How an operand is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Dense,
    /// Stored as the transpose of its shape and seen through swapped strides.
    Transposed,
    /// Rows padded inside a larger buffer, starting at an offset.
    Padded,
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::Dense),
        Just(Layout::Transposed),
        Just(Layout::Padded)
    ]
}

/// Owned storage for a 2-D operand in some layout.
struct Operand {
    data: Vec<f32>,
    shape: [usize; 2],
    strides: [usize; 2],
    offset: usize,
}

impl Operand {
    fn new(rng: &mut Rng, rows: usize, cols: usize, layout: Layout) -> Self {
        let (strides, offset, len) = match layout {
            Layout::Dense => ([cols, 1], 0, rows * cols),
            Layout::Transposed => ([1, rows], 0, rows * cols),
            Layout::Padded => ([cols + 3, 1], 5, 5 + rows * (cols + 3)),
        };
        let data = (0..len).map(|_| rng.uniform()).collect();
        Operand {
            data,
            shape: [rows, cols],
            strides,
            offset,
        }
    }

    fn view(&self) -> TensorView<'_, f32> {
        TensorView::from_strided(&self.data, &self.shape, &self.strides, self.offset).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(500), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn attention_matches_reference(
        sq in size(), sk in size(), d in size(), dv in size(),
        lq in layout(), lk in layout(), lv in layout(), seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let q = Operand::new(&mut rng, sq, d, lq);
        let k = Operand::new(&mut rng, sk, d, lk);
        let v = Operand::new(&mut rng, sk, dv, lv);
        let (q, k, v) = (q.view(), k.view(), v.view());
        let out = attn::attention(&q, &k, &v).unwrap();
        assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());
    }

    #[test]
    fn batched_attention_matches_reference(
        b in 1usize..=3, h in 1usize..=3, sq in 1usize..=40, sk in 1usize..=40, d in 1usize..=33, dv in 1usize..=17,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let (q, k, v) = (rng.tensor(&[b, h, sq, d]), rng.tensor(&[b, h, sk, d]), rng.tensor(&[b, h, sk, dv]));
        let out = attn::attention(&q, &k, &v).unwrap();
        assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(100), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn primitives_match_reference(m in size(), k in size(), n in size(), la in layout(), seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let a = Operand::new(&mut rng, m, k, la);
        let b = rng.tensor(&[k, n]);
        let a = a.view();
        // f32 accumulation over K terms of magnitude <= 1: allow K ulps of absolute error where
        // the sum cancels to near zero.
        let atol = (k as f64 * f64::from(f32::EPSILON)).max(1e-6);
        assert_close_tol(&attn::matmul(&a, &b).unwrap(), &reference::matmul(&a, &b).unwrap(), 1e-4, atol);
        assert_close(&attn::softmax(&a).unwrap(), &reference::softmax(&a).unwrap());
        assert_close(&attn::transpose(&a).unwrap(), &reference::transpose(&a).unwrap());
        let c = rng.tensor(&[m, k]);
        assert_close(&attn::add(&a, &c).unwrap(), &reference::add(&a, &c).unwrap());
        assert_close(&attn::mul(&a, &c).unwrap(), &reference::mul(&a, &c).unwrap());
        assert_close(&attn::scale(&a, 0.7).unwrap(), &reference::scale(&a, 0.7).unwrap());
    }

    #[test]
    fn bad_shapes_are_errors_not_panics(
        sq in 0usize..5, d1 in 0usize..5, sk in 0usize..5, d2 in 0usize..5, sv in 0usize..5, dv in 0usize..5,
    ) {
        let q = Tensor::zeros(&[sq, d1]).unwrap();
        let k = Tensor::zeros(&[sk, d2]).unwrap();
        let v = Tensor::zeros(&[sv, dv]).unwrap();
        let valid = d1 == d2 && sk == sv && [sq, d1, sk, dv].iter().all(|&x| x > 0);
        prop_assert_eq!(attn::attention(&q, &k, &v).is_ok(), valid);
        let mm_valid = d1 == sk;
        prop_assert_eq!(attn::matmul(&q, &k).is_ok(), mm_valid);
    }
}

/// A random additive mask over `[sq, sk]`: zeros, moderate values and -inf, so that some rows
/// are fully masked.
fn mask_values(rng: &mut Rng, n: usize, density: u8) -> Vec<f32> {
    (0..n)
        .map(|_| match rng.next_u64() % 8 {
            x if x < u64::from(density) => f32::NEG_INFINITY,
            0..=5 => 0.0,
            _ => rng.uniform() * 3.0,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), failure_persistence: None, ..ProptestConfig::default() })]

    /// Causal (bottom-right), GQA/MQA, additive masks (broadcast from [Sq, Sk] or per head) and
    /// key padding, alone and combined, against the reference.
    #[test]
    fn attention_variants_match_reference(
        b in 1usize..=2, hkv in 1usize..=3, group in 1usize..=3,
        sq in 1usize..=70, sk in 1usize..=70, d in 1usize..=40, dv in 1usize..=20,
        causal in any::<bool>(), mask_kind in 0u8..3, padding in any::<bool>(), density in 0u8..4,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let hq = hkv * group;
        let q = rng.tensor(&[b, hq, sq, d]);
        let k = rng.tensor(&[b, hkv, sk, d]);
        let v = rng.tensor(&[b, hkv, sk, dv]);
        let mask = match mask_kind {
            1 => Some(Tensor::from_vec(&[sq, sk], mask_values(&mut rng, sq * sk, density)).unwrap()),
            2 => Some(Tensor::from_vec(&[b, hq, sq, sk], mask_values(&mut rng, b * hq * sq * sk, density)).unwrap()),
            _ => None,
        };
        let valid: Vec<bool> = (0..b * sk).map(|_| !rng.next_u64().is_multiple_of(4)).collect();
        let mut att = attn::Attention::new().causal(causal);
        if let Some(m) = &mask {
            att = att.mask(m);
        }
        if padding {
            att = att.key_padding(&valid);
        }
        let out = att.run(&q, &k, &v).unwrap();
        let options = reference::AttentionOptions {
            options: AttentionOptions::new().with_causal(causal),
            mask: mask.as_ref().map(|m| m.view()),
            key_padding: padding.then_some(&valid[..]),
            ..Default::default()
        };
        let expected = reference::attention_with(&q, &k, &v, &options).unwrap();
        assert_close(&out, &expected);
    }
}

/// A window side: small, around the sizes, or unbounded.
fn window_side() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0usize..=8,
        1 => 9usize..=80,
        1 => Just(usize::MAX),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), failure_persistence: None, ..ProptestConfig::default() })]

    /// Window, softcap, ALiBi and sinks with every other option (causal, GQA, masks, key
    /// padding), output and log-sum-exp against the reference; long key sets with few query
    /// rows take the split-KV path.
    #[test]
    fn attention_options_match_reference(
        b in 1usize..=2, hkv in 1usize..=2, group in 1usize..=3,
        sq in 1usize..=40, sk in prop_oneof![4 => 1usize..=70, 1 => 2049usize..=4500], d in 1usize..=24, dv in 1usize..=12,
        causal in any::<bool>(), window in proptest::option::of((window_side(), window_side())),
        softcap in proptest::option::of(0.5f32..20.0), alibi in any::<bool>(), sinks in any::<bool>(),
        mask in any::<bool>(), padding in any::<bool>(), seed in any::<u64>(),
    ) {
        let hq = hkv * group;
        // Keep long (split-KV) cases to decode shapes.
        let sq = if sk > 2048 { 1 + sq % 3 } else { sq };
        let mut rng = Rng::new(seed);
        let q = rng.tensor(&[b, hq, sq, d]).map(|x| x * 3.0);
        let k = rng.tensor(&[b, hkv, sk, d]).map(|x| x * 3.0);
        let v = rng.tensor(&[b, hkv, sk, dv]);
        let slopes: Vec<f32> = (0..hq).map(|_| rng.uniform().abs()).collect();
        let sink: Vec<f32> = (0..hq).map(|_| rng.uniform() * 4.0).collect();
        let m = Tensor::from_vec(&[sq, sk], mask_values(&mut rng, sq * sk, 1)).unwrap();
        let valid: Vec<bool> = (0..b * sk).map(|_| !rng.next_u64().is_multiple_of(4)).collect();
        let mut att = attn::Attention::new().causal(causal);
        let mut o = AttentionOptions::new().with_causal(causal);
        if let Some((l, r)) = window {
            att = att.window(l, r);
            o = o.with_window(l, r);
        }
        if let Some(c) = softcap {
            att = att.softcap(c);
            o = o.with_softcap(c);
        }
        if alibi {
            att = att.alibi(&slopes);
        }
        if sinks {
            att = att.sinks(&sink);
        }
        if mask {
            att = att.mask(&m);
        }
        if padding {
            att = att.key_padding(&valid);
        }
        let (out, lse) = att.run_with_lse(&q, &k, &v).unwrap();
        let options = reference::AttentionOptions {
            options: o,
            mask: mask.then(|| m.view()),
            key_padding: padding.then_some(&valid[..]),
            alibi: alibi.then_some(&slopes[..]),
            sinks: sinks.then_some(&sink[..]),
        };
        let (want, want_lse) = reference::attention_with_lse(&q, &k, &v, &options).unwrap();
        assert_close(&out, &want);
        assert_close_tol(&lse, &want_lse, 1e-5, 1e-4);
    }
}
