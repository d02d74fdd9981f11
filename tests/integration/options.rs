//! The attention options of the issue "Attention variants" against the f64 reference: sliding
//! windows, softcapping, ALiBi, attention sinks, alone and combined with each other, with
//! causal masking, masks, key padding, grouped-query heads, ranks 2 to 4, every dtype, strided
//! views and `KvCache`; `run_with_lse` values; `merge_partials`; split-KV decoding (bitwise
//! identical for any thread count); and the errors.

use crate::common::Rng;
use attn::{
    Attention, AttentionElement, Element, KvCache, Tensor, TensorView,
    half::{bf16, f16},
    options::AttentionOptions,
    reference,
};

/// Options of one test case (the tensors they borrow live in the test).
#[derive(Clone, Copy, Default)]
struct Case<'a> {
    causal: bool,
    window: Option<(usize, usize)>,
    softcap: Option<f32>,
    alibi: Option<&'a [f32]>,
    sinks: Option<&'a [f32]>,
    mask: Option<&'a Tensor>,
    padding: Option<&'a [bool]>,
    scale: Option<f64>,
}

impl<'a> Case<'a> {
    fn attention(&self) -> Attention<'a> {
        let mut a = Attention::new().causal(self.causal);
        if let Some((l, r)) = self.window {
            a = a.window(l, r);
        }
        if let Some(c) = self.softcap {
            a = a.softcap(c);
        }
        if let Some(s) = self.alibi {
            a = a.alibi(s);
        }
        if let Some(s) = self.sinks {
            a = a.sinks(s);
        }
        if let Some(m) = self.mask {
            a = a.mask(m);
        }
        if let Some(p) = self.padding {
            a = a.key_padding(p);
        }
        if let Some(s) = self.scale {
            a = a.scale(s);
        }
        a
    }

    fn reference<T: AttentionElement>(
        &self,
        q: &Tensor<T>,
        k: &Tensor<T>,
        v: &Tensor<T>,
    ) -> (Tensor<f64>, Tensor<f64>) {
        let mut o = AttentionOptions::new().with_causal(self.causal);
        o.window = self.window;
        o.softcap = self.softcap;
        // The kernels take the scale in their compute type.
        o.scale = self.scale.map(|s| T::Compute::from_f64(s).to_f64());
        let mask = self.mask.map(|m| m.to_f64());
        reference::attention_with_lse(
            &q.to_f64(),
            &k.to_f64(),
            &v.to_f64(),
            &reference::AttentionOptions {
                options: o,
                mask: mask.as_ref().map(|m| m.view()),
                key_padding: self.padding,
                alibi: self.alibi,
                sinks: self.sinks,
            },
        )
        .unwrap()
    }
}

/// Output tolerances (rtol, atol) per dtype, and the lse's absolute tolerance.
fn tolerances<T: AttentionElement>() -> (f64, f64, f64) {
    match T::DTYPE {
        attn::DType::F64 => (1e-11, 1e-12, 1e-11),
        attn::DType::BF16 => (2f64.powi(-8), 2f64.powi(-9), 1e-4),
        attn::DType::F16 => (2f64.powi(-10), 2f64.powi(-11), 1e-4),
        _ => (1e-4, 1e-6, 1e-4),
    }
}

/// Runs `case` with `run_with_lse` and `run`, compares both with the reference.
#[track_caller]
fn check<T: AttentionElement>(
    what: &str,
    case: &Case<'_>,
    q: &Tensor<T>,
    k: &Tensor<T>,
    v: &Tensor<T>,
) {
    let (rtol, atol, lse_tol) = tolerances::<T>();
    let (want, want_lse) = case.reference(q, k, v);
    let (out, lse) = case.attention().run_with_lse(q, k, v).unwrap();
    let c = reference::compare(&out, &want, rtol, atol).unwrap();
    assert!(
        c.ok,
        "{what} ({}): out max abs err {:e} at {}",
        T::DTYPE,
        c.max_abs_err,
        c.worst_index
    );
    let c = reference::compare(&lse, &want_lse, 1e-5, lse_tol).unwrap();
    assert!(
        c.ok,
        "{what} ({}): lse max abs err {:e} at {} ({} vs {})",
        T::DTYPE,
        c.max_abs_err,
        c.worst_index,
        lse.as_slice()[c.worst_index],
        want_lse.as_slice()[c.worst_index]
    );
    let plain = case.attention().run(q, k, v).unwrap();
    let c = reference::compare(&plain, &want, rtol, atol).unwrap();
    assert!(
        c.ok,
        "{what} ({}): run max abs err {:e}",
        T::DTYPE,
        c.max_abs_err
    );
}

fn tensors<T: AttentionElement>(
    rng: &mut Rng,
    q: &[usize],
    k: &[usize],
    v: &[usize],
) -> (Tensor<T>, Tensor<T>, Tensor<T>) {
    let mut t = |s: &[usize]| rng.tensor(s).map(|x| T::from_f64(f64::from(x) * 2.0));
    (t(q), t(k), t(v))
}

fn slopes(n: usize) -> Vec<f32> {
    // The ALiBi paper's geometric slopes.
    (1..=n)
        .map(|h| 2f32.powf(-8.0 * h as f32 / n as f32))
        .collect()
}

fn sink_logits(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform() * 3.0).collect()
}

/// Shape prefixes of q and of k/v, then Sq, Sk, D, Dv.
type Layout = (
    &'static [usize],
    &'static [usize],
    usize,
    usize,
    usize,
    usize,
);

/// Every option alone, then combined, for one element type, at ranks 2 to 4 with GQA.
fn every_option<T: AttentionElement>(seed: u64) {
    let mut rng = Rng::new(seed);
    // (shape prefix of q, of k/v, Sq, Sk, D, Dv)
    let layouts: [Layout; 5] = [
        (&[], &[], 13, 29, 16, 8),
        (&[4], &[2], 9, 9, 24, 24),
        (&[2, 6], &[2, 2], 17, 40, 8, 12),
        (&[1, 3], &[1, 1], 40, 17, 32, 16),
        (&[2, 8], &[2, 2], 1, 300, 64, 64),
    ];
    for (qp, kp, sq, sk, d, dv) in layouts {
        let hq = qp.last().copied().unwrap_or(1);
        let shape = |p: &[usize], s: usize, w: usize| [p, &[s, w]].concat();
        let (q, k, v) = tensors::<T>(
            &mut rng,
            &shape(qp, sq, d),
            &shape(kp, sk, d),
            &shape(kp, sk, dv),
        );
        let b = if qp.len() == 2 { qp[0] } else { 1 };
        let al = slopes(hq);
        let sk_logits = sink_logits(&mut rng, hq);
        let mask = rng.tensor(&[sq, sk]).map(|x| x * 2.0);
        let padding: Vec<bool> = (0..b * sk).map(|i| i % 5 != 3).collect();
        let what = format!("q {:?}, k {:?}", q.shape(), k.shape());
        let cases = [
            (
                "causal",
                Case {
                    causal: true,
                    ..Case::default()
                },
            ),
            (
                "window (3, 2)",
                Case {
                    window: Some((3, 2)),
                    ..Case::default()
                },
            ),
            (
                "window (0, 0)",
                Case {
                    window: Some((0, 0)),
                    ..Case::default()
                },
            ),
            (
                "window (MAX, 1)",
                Case {
                    window: Some((usize::MAX, 1)),
                    ..Case::default()
                },
            ),
            (
                "window (5, MAX)",
                Case {
                    window: Some((5, usize::MAX)),
                    ..Case::default()
                },
            ),
            (
                "softcap",
                Case {
                    softcap: Some(1.5),
                    ..Case::default()
                },
            ),
            (
                "alibi",
                Case {
                    alibi: Some(&al),
                    ..Case::default()
                },
            ),
            (
                "sinks",
                Case {
                    sinks: Some(&sk_logits),
                    ..Case::default()
                },
            ),
            (
                "scale",
                Case {
                    scale: Some(0.37),
                    ..Case::default()
                },
            ),
            (
                "causal window softcap",
                Case {
                    causal: true,
                    window: Some((4, 9)),
                    softcap: Some(2.0),
                    ..Case::default()
                },
            ),
            (
                "everything",
                Case {
                    causal: true,
                    window: Some((6, 0)),
                    softcap: Some(3.0),
                    alibi: Some(&al),
                    sinks: Some(&sk_logits),
                    mask: Some(&mask),
                    padding: Some(&padding),
                    scale: Some(0.3),
                },
            ),
            (
                "window alibi sinks mask",
                Case {
                    window: Some((2, 3)),
                    alibi: Some(&al),
                    sinks: Some(&sk_logits),
                    mask: Some(&mask),
                    ..Case::default()
                },
            ),
            (
                "softcap padding sinks",
                Case {
                    softcap: Some(0.5),
                    padding: Some(&padding),
                    sinks: Some(&sk_logits),
                    ..Case::default()
                },
            ),
        ];
        for (name, case) in &cases {
            check(&format!("{name}, {what}"), case, &q, &k, &v);
        }
    }
}

#[test]
fn every_option_alone_and_combined_f32() {
    every_option::<f32>(1);
}

#[test]
fn every_option_alone_and_combined_f64() {
    every_option::<f64>(2);
}

#[test]
fn every_option_alone_and_combined_bf16() {
    every_option::<bf16>(3);
}

#[test]
fn every_option_alone_and_combined_f16() {
    every_option::<f16>(4);
}

#[test]
fn hidden_rows_give_zeros_and_sinks_their_logit() {
    let mut rng = Rng::new(5);
    // Sq > Sk: p(i) = i - 6 is negative for the first rows; window (0, 2) hides rows 0..4.
    let (q, k, v) = tensors::<f32>(&mut rng, &[2, 10, 8], &[2, 4, 8], &[2, 4, 5]);
    let sinks = [0.25f32, -2.0];
    for case in [
        Case {
            causal: true,
            ..Case::default()
        },
        Case {
            window: Some((0, 2)),
            ..Case::default()
        },
        Case {
            causal: true,
            sinks: Some(&sinks),
            ..Case::default()
        },
        Case {
            window: Some((1, 0)),
            sinks: Some(&sinks),
            alibi: Some(&[0.5, 0.1]),
            ..Case::default()
        },
    ] {
        let (out, lse) = case.attention().run_with_lse(&q, &k, &v).unwrap();
        check("hidden rows", &case, &q, &k, &v);
        for h in 0..2 {
            // Row 0 sees no key in every case above.
            let row = h * 10;
            assert!(
                out.as_slice()[row * 5..row * 5 + 5]
                    .iter()
                    .all(|&x| x == 0.0)
            );
            let want = case.sinks.map_or(f32::NEG_INFINITY, |s| s[h]);
            assert_eq!(lse.as_slice()[row], want);
        }
    }
    // A row removed by the mask and padding together, with and without a sink.
    let (q, k, v) = tensors::<f64>(&mut rng, &[1, 1, 3, 4], &[1, 1, 6, 4], &[1, 1, 6, 2]);
    let mut m = vec![0.0f32; 18];
    m[6..12].fill(f32::NEG_INFINITY);
    let mask = Tensor::from_vec(&[3, 6], m).unwrap();
    let padding = [true, false, true, true, true, true];
    for sinks in [None, Some(&[1.0f32][..])] {
        let case = Case {
            mask: Some(&mask),
            padding: Some(&padding),
            sinks,
            ..Case::default()
        };
        check("masked row", &case, &q, &k, &v);
        let (out, lse) = case.attention().run_with_lse(&q, &k, &v).unwrap();
        assert_eq!(&out.as_slice()[2..4], &[0.0, 0.0]);
        assert_eq!(lse.as_slice()[1], sinks.map_or(f32::NEG_INFINITY, |s| s[0]));
    }
}

#[test]
fn sinks_equal_an_extra_key_with_a_zero_value() {
    // A sink of logit L is a key whose score is L and whose value is zero: compare with that.
    let mut rng = Rng::new(6);
    let (q, k, v) = tensors::<f64>(&mut rng, &[3, 7, 8], &[3, 11, 8], &[3, 11, 4]);
    let sinks = [0.5f32, -1.0, 2.0];
    let (out, lse) = Attention::new()
        .scale(0.5)
        .sinks(&sinks)
        .run_with_lse(&q, &k, &v)
        .unwrap();
    // Extra key: column D holds 1 in the extra key and sink/scale in the queries.
    // `extra(h, i, c)` fills the added row and column.
    let ext = |t: &Tensor<f64>, extra: &dyn Fn(usize, usize, usize) -> f64, rows: usize| {
        let s = t.shape();
        let (n, w) = (s[1], s[2]);
        let mut data = Vec::new();
        for h in 0..3 {
            for i in 0..rows {
                for c in 0..=w {
                    data.push(if i < n && c < w {
                        t.as_slice()[(h * n + i) * w + c]
                    } else {
                        extra(h, i, c)
                    });
                }
            }
        }
        Tensor::from_vec(&[3, rows, w + 1], data).unwrap()
    };
    let q2 = ext(&q, &|h, _, _| f64::from(sinks[h]) / 0.5, 7);
    let k2 = ext(&k, &|_, i, c| if i == 11 && c == 8 { 1.0 } else { 0.0 }, 12);
    let v2 = ext(&v, &|_, _, _| 0.0, 12);
    let (want, want_lse) = reference::attention_with_lse(
        &q2,
        &k2,
        &v2,
        &AttentionOptions::new().with_scale(0.5).into(),
    )
    .unwrap();
    for h in 0..3 {
        for i in 0..7 {
            for c in 0..4 {
                let (a, b) = (
                    out.as_slice()[(h * 7 + i) * 4 + c],
                    want.as_slice()[(h * 7 + i) * 5 + c],
                );
                assert!((a - b).abs() < 1e-12, "{a} vs {b}");
            }
            let (a, b) = (lse.as_slice()[h * 7 + i], want_lse.as_slice()[h * 7 + i]);
            assert!((f64::from(a) - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}

#[test]
fn strided_views_with_every_option() {
    // [B, S, H, D] memory seen as [B, H, S, D], and a transposed mask.
    let mut rng = Rng::new(7);
    let (b, h, hkv, sq, sk, d) = (2, 4, 2, 11, 23, 16);
    let store = |rng: &mut Rng, s: usize, heads: usize| rng.tensor(&[b, s, heads, d]);
    let (qs, ks, vs) = (
        store(&mut rng, sq, h),
        store(&mut rng, sk, hkv),
        store(&mut rng, sk, hkv),
    );
    fn view(t: &Tensor, b: usize, s: usize, heads: usize, d: usize) -> TensorView<'_, f32> {
        TensorView::from_strided(
            t.as_slice(),
            &[b, heads, s, d],
            &[s * heads * d, d, heads * d, 1],
            0,
        )
        .unwrap()
    }
    let (q, k, v) = (
        view(&qs, b, sq, h, d),
        view(&ks, b, sk, hkv, d),
        view(&vs, b, sk, hkv, d),
    );
    let mask_t = rng.tensor(&[sk, sq]);
    let mask = mask_t.view().t().unwrap();
    let al = slopes(h);
    let sinks = [0.1f32, 0.2, -0.3, 1.0];
    let a = Attention::new()
        .causal(true)
        .window(5, 0)
        .softcap(4.0)
        .alibi(&al)
        .sinks(&sinks)
        .mask(&mask);
    let (out, lse) = a.run_with_lse(&q, &k, &v).unwrap();
    let case = Case {
        causal: true,
        window: Some((5, 0)),
        softcap: Some(4.0),
        alibi: Some(&al),
        sinks: Some(&sinks),
        mask: Some(&mask.to_tensor()),
        ..Case::default()
    };
    let (want, want_lse) = case.reference(&q.to_tensor(), &k.to_tensor(), &v.to_tensor());
    assert!(reference::compare(&out, &want, 1e-4, 1e-6).unwrap().ok);
    assert!(reference::compare(&lse, &want_lse, 1e-5, 1e-4).unwrap().ok);
    // A strided output.
    let mut buf = vec![0.0f32; b * h * sq * d * 2];
    let mut o = attn::TensorViewMut::from_strided(
        &mut buf,
        &[b, h, sq, d],
        &[h * sq * d * 2, sq * d * 2, d * 2, 1],
        0,
    )
    .unwrap();
    a.run_into(&q, &k, &v, &mut o).unwrap();
    assert!(
        reference::compare(&o.as_view(), &want, 1e-4, 1e-6)
            .unwrap()
            .ok
    );
}

/// Splits the keys into `cuts` by key padding (so positions, windows and ALiBi are unchanged),
/// merges the parts and compares with the whole.
fn merge_by_padding<T: AttentionElement>(seed: u64) {
    let mut rng = Rng::new(seed);
    let (b, sq, sk) = (2, 9, 31);
    let (q, k, v) = tensors::<T>(&mut rng, &[b, 4, sq, 16], &[b, 2, sk, 16], &[b, 2, sk, 8]);
    let al = slopes(4);
    let sinks = [0.5f32, 1.5, -0.5, 0.0];
    let base = Attention::new()
        .causal(true)
        .window(7, 2)
        .softcap(5.0)
        .alibi(&al);
    let (whole, whole_lse) = base.sinks(&sinks).run_with_lse(&q, &k, &v).unwrap();
    for cuts in [&[0, 12, 31][..], &[0, 5, 20, 31]] {
        let pads: Vec<Vec<bool>> = cuts
            .windows(2)
            .map(|c| {
                (0..b * sk)
                    .map(|i| (c[0]..c[1]).contains(&(i % sk)))
                    .collect()
            })
            .collect();
        let parts: Vec<(Tensor<T>, Tensor<f32>)> = pads
            .iter()
            .enumerate()
            .map(|(p, pad)| {
                // The sinks join one part only.
                let a = if p == 0 { base.sinks(&sinks) } else { base };
                a.key_padding(pad).run_with_lse(&q, &k, &v).unwrap()
            })
            .collect();
        let views: Vec<_> = parts.iter().map(|(o, l)| (o.view(), l.view())).collect();
        let (out, lse) = attn::merge_partials(&views).unwrap();
        let (rtol, atol, lse_tol) = tolerances::<T>();
        // Each part is rounded to T before the merge: two roundings for 16-bit types. The lse
        // of the parts is f32, so the weights of an f64 merge are exact to about 1e-7.
        let (rtol, atol) = (rtol.max(1e-6), atol.max(1e-7));
        let c = reference::compare(&out, &whole.to_f64(), 2.0 * rtol, 2.0 * atol + rtol).unwrap();
        assert!(
            c.ok,
            "{} cuts {cuts:?}: max abs err {:e}",
            T::DTYPE,
            c.max_abs_err
        );
        let c = reference::compare(&lse, &whole_lse.to_f64(), 1e-5, lse_tol).unwrap();
        assert!(
            c.ok,
            "{} cuts {cuts:?}: lse max abs err {:e}",
            T::DTYPE,
            c.max_abs_err
        );
    }
}

#[test]
fn merged_parts_equal_the_whole() {
    merge_by_padding::<f32>(8);
    merge_by_padding::<f64>(9);
    merge_by_padding::<bf16>(10);
    merge_by_padding::<f16>(11);
}

#[test]
fn merging_key_slices_and_the_errors() {
    let mut rng = Rng::new(12);
    let (q, k, v) = tensors::<f32>(&mut rng, &[5, 8], &[12, 8], &[12, 3]);
    fn rows(t: &Tensor, a: usize, b: usize) -> TensorView<'_, f32> {
        let w = t.shape()[1];
        TensorView::from_strided(t.as_slice(), &[b - a, w], &[w, 1], a * w).unwrap()
    }
    let parts: Vec<(Tensor, Tensor<f32>)> = [(0, 4), (4, 5), (5, 12)]
        .iter()
        .map(|&(a, b)| {
            Attention::new()
                .scale(0.5)
                .run_with_lse(&q, &rows(&k, a, b), &rows(&v, a, b))
                .unwrap()
        })
        .collect();
    let views: Vec<_> = parts.iter().map(|(o, l)| (o.view(), l.view())).collect();
    let (out, lse) = attn::merge_partials(&views).unwrap();
    let (want, want_lse) =
        reference::attention_with_lse(&q, &k, &v, &AttentionOptions::new().with_scale(0.5).into())
            .unwrap();
    assert!(reference::compare(&out, &want, 1e-5, 1e-6).unwrap().ok);
    assert!(reference::compare(&lse, &want_lse, 1e-6, 1e-5).unwrap().ok);
    // One part merges to itself; all -inf rows give zeros and -inf.
    let (one, one_lse) = attn::merge_partials(&views[..1]).unwrap();
    assert_eq!((&one, &one_lse), (&parts[0].0, &parts[0].1));
    let z = Tensor::full(&[2, 3], 7.0f32).unwrap();
    let l = Tensor::full(&[2], f32::NEG_INFINITY).unwrap();
    let (o, ol) = attn::merge_partials(&[(z.view(), l.view()), (z.view(), l.view())]).unwrap();
    assert!(o.as_slice().iter().all(|&x| x == 0.0));
    assert!(ol.as_slice().iter().all(|&x| x == f32::NEG_INFINITY));
    // Shapes must agree; the errors name them.
    let e = attn::merge_partials(&[(z.view(), l.view()), (out.view(), lse.view())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("part 1 has out [5, 3] and lse [5]") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = attn::merge_partials(&[(z.view(), lse.view())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("lse must be out's shape without its last dim ([2])"),
        "{e}"
    );
    let e = attn::merge_partials::<f32>(&[]).unwrap_err().to_string();
    assert!(e.contains("no parts"), "{e}");
}

/// Split-KV decoding: a long cache with few query rows is split into fixed key chunks; the
/// result is bitwise the same for 1, 2 and 16 threads, and matches the reference.
fn split_kv<T: AttentionElement>(seed: u64) {
    let mut rng = Rng::new(seed);
    // Sk = 5000: three chunks of 2048 keys (the last partial); B x Hkv = 2 work units.
    let (sk, d) = (5000, 64);
    let (q, k, v) = tensors::<T>(&mut rng, &[1, 8, 1, d], &[1, 2, sk, d], &[1, 2, sk, d]);
    let al = slopes(8);
    let sinks = sink_logits(&mut rng, 8);
    let cases = [
        Case::default(),
        Case {
            causal: true,
            window: Some((3000, 0)),
            softcap: Some(10.0),
            ..Case::default()
        },
        Case {
            alibi: Some(&al),
            sinks: Some(&sinks),
            ..Case::default()
        },
        Case {
            causal: true,
            window: Some((100, 0)),
            sinks: Some(&sinks),
            ..Case::default()
        },
    ];
    for case in &cases {
        let mut results = Vec::new();
        for threads in [1, 2, 16] {
            attn::set_num_threads(threads);
            results.push(case.attention().run_with_lse(&q, &k, &v).unwrap());
        }
        attn::set_num_threads(0);
        for r in &results[1..] {
            assert!(
                r.0.as_slice()
                    .iter()
                    .zip(results[0].0.as_slice())
                    .all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()),
                "{}: outputs differ between thread counts",
                T::DTYPE
            );
            assert!(
                r.1.as_slice()
                    .iter()
                    .zip(results[0].1.as_slice())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{}: lse differs between thread counts",
                T::DTYPE
            );
        }
        let (want, want_lse) = case.reference(&q, &k, &v);
        let (rtol, atol, lse_tol) = tolerances::<T>();
        let c = reference::compare(&results[0].0, &want, 2.0 * rtol, 2.0 * atol + rtol).unwrap();
        assert!(c.ok, "{}: max abs err {:e}", T::DTYPE, c.max_abs_err);
        let c = reference::compare(&results[0].1, &want_lse, 1e-5, lse_tol).unwrap();
        assert!(c.ok, "{}: lse max abs err {:e}", T::DTYPE, c.max_abs_err);
    }
}

#[test]
fn split_kv_decoding_is_bitwise_identical_across_thread_counts() {
    split_kv::<f32>(13);
    split_kv::<f64>(14);
    split_kv::<bf16>(15);
}

#[test]
fn kv_cache_takes_every_option() {
    let mut rng = Rng::new(16);
    let (b, hkv, hq, d) = (2, 2, 4, 16);
    let mut cache = KvCache::<f32>::new(b, hkv, 64, d, d).unwrap();
    let al = slopes(hq);
    let sinks = [0.3f32, -0.2, 1.1, 0.0];
    let a = Attention::new()
        .causal(true)
        .window(7, 0)
        .softcap(8.0)
        .alibi(&al)
        .sinks(&sinks);
    let (mut all_k, mut all_v) = (Vec::new(), Vec::new());
    for step in 0..20 {
        let n = if step == 0 { 9 } else { 1 };
        let (k, v) = (rng.tensor(&[b, hkv, n, d]), rng.tensor(&[b, hkv, n, d]));
        cache.append(&k, &v).unwrap();
        all_k.push(k);
        all_v.push(v);
        let q = rng.tensor(&[b, hq, n, d]);
        let (out, lse) = cache.attend_with_lse(&a, &q).unwrap();
        assert_eq!(out, cache.attend(&a, &q).unwrap());
        let case = Case {
            causal: true,
            window: Some((7, 0)),
            softcap: Some(8.0),
            alibi: Some(&al),
            sinks: Some(&sinks),
            ..Case::default()
        };
        let (want, want_lse) = case.reference(
            &q,
            &cache.keys().unwrap().to_tensor(),
            &cache.values().unwrap().to_tensor(),
        );
        assert!(
            reference::compare(&out, &want, 1e-4, 1e-6).unwrap().ok,
            "step {step}"
        );
        assert!(
            reference::compare(&lse, &want_lse, 1e-5, 1e-4).unwrap().ok,
            "step {step}"
        );
    }
}

#[test]
fn f64_scales_are_exact_and_f32_scales_rounded() {
    let mut rng = Rng::new(17);
    let (q, k, v) = tensors::<f64>(&mut rng, &[6, 8], &[9, 8], &[9, 8]);
    let third = Attention::new().scale(1.0 / 3.0).run(&q, &k, &v).unwrap();
    let want = reference::attention(&q, &k, &v, Some(1.0 / 3.0)).unwrap();
    assert!(reference::compare(&third, &want, 1e-13, 1e-14).unwrap().ok);
    // The f32 rounding of 1/3 differs by 1e-8 relative: visible in f64.
    let rounded = Attention::new()
        .scale(1.0f32 / 3.0)
        .run(&q, &k, &v)
        .unwrap();
    assert!(
        !reference::compare(&rounded, &want, 1e-13, 1e-14)
            .unwrap()
            .ok
    );
    let with = attn::attention_with_scale(&q, &k, &v, Some(1.0 / 3.0)).unwrap();
    assert_eq!(with, third);
    let (q, k, v) = (
        q.map(|x| x as f32),
        k.map(|x| x as f32),
        v.map(|x| x as f32),
    );
    assert_eq!(
        Attention::new().scale(0.1f64).run(&q, &k, &v).unwrap(),
        Attention::new().scale(0.1f32).run(&q, &k, &v).unwrap()
    );
}

#[test]
fn bad_options_are_errors_naming_the_option_and_sizes() {
    let q = Tensor::full(&[2, 3, 5, 8], 0.1f32).unwrap();
    let k = Tensor::full(&[2, 1, 7, 8], 0.2f32).unwrap();
    let err = |a: Attention<'_>| a.run(&q, &k, &k).unwrap_err().to_string();
    let e = err(Attention::new().alibi(&[0.5, 0.25]));
    assert_eq!(
        e,
        "attention: option `alibi`: 2 values given, but q [2, 3, 5, 8] has Hq = 3 query heads (one value per query head)"
    );
    let e = err(Attention::new().sinks(&[0.0; 4]));
    assert!(
        e.contains("option `sinks`: 4 values") && e.contains("Hq = 3"),
        "{e}"
    );
    let e = err(Attention::new().sinks(&[0.0, f32::INFINITY, 0.0]));
    assert!(
        e.contains("option `sinks`") && e.contains("query head 1 is inf"),
        "{e}"
    );
    assert!(
        Attention::new()
            .sinks(&[0.0, f32::NEG_INFINITY, 0.0])
            .run(&q, &k, &k)
            .is_ok()
    );
    let e = err(Attention::new().alibi(&[0.0, f32::NAN, 0.0]));
    assert!(e.contains("option `alibi`") && e.contains("NaN"), "{e}");
    for cap in [0.0f32, -30.0, f32::NAN, f32::INFINITY] {
        let e = err(Attention::new().softcap(cap));
        assert!(
            e.contains("option `softcap`") && e.contains(&format!("got {cap}")),
            "{e}"
        );
    }
    let e = err(Attention::new().scale(f64::INFINITY));
    assert!(e.contains("option `scale`"), "{e}");
    // Errors through run_with_lse, run_into and KvCache too.
    assert!(
        Attention::new()
            .softcap(-1.0)
            .run_with_lse(&q, &k, &k)
            .is_err()
    );
    let mut cache = KvCache::<f32>::new(2, 1, 8, 8, 8).unwrap();
    cache
        .append(
            &Tensor::full(&[2, 1, 3, 8], 0.1f32).unwrap(),
            &Tensor::full(&[2, 1, 3, 8], 0.1f32).unwrap(),
        )
        .unwrap();
    let e = cache
        .attend(&Attention::new().alibi(&[1.0]), &q)
        .unwrap_err()
        .to_string();
    assert!(e.contains("option `alibi`: 1 values"), "{e}");
    // Huge windows do not overflow.
    let out = Attention::new()
        .window(usize::MAX, usize::MAX)
        .causal(true)
        .run(&q, &k, &k)
        .unwrap();
    assert_eq!(out, Attention::new().causal(true).run(&q, &k, &k).unwrap());
    let out = Attention::new()
        .window(usize::MAX - 1, usize::MAX - 1)
        .run(&q, &k, &k)
        .unwrap();
    assert_eq!(
        out,
        Attention::new()
            .window(1 << 40, 1 << 40)
            .run(&q, &k, &k)
            .unwrap()
    );
}
