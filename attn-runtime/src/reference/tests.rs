//! Tests of the f64 reference against worked examples and invariants.

use super::*;
use crate::tensor::TensorView;

fn t(shape: &[usize], data: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(shape, data.to_vec()).unwrap()
}

fn assert_close(a: &Tensor<f64>, e: &[f64], tol: f64) {
    assert_eq!(a.len(), e.len());
    for (x, y) in a.as_slice().iter().zip(e) {
        assert!((x - y).abs() <= tol, "{:?} vs {e:?}", a.as_slice());
    }
}

#[test]
fn matmul_2d_and_batched() {
    let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = t(&[3, 2], &[7., 8., 9., 10., 11., 12.]);
    let c = matmul(&a, &b).unwrap();
    assert_eq!(c.shape(), &[2, 2]);
    assert_eq!(c.as_slice(), &[58., 64., 139., 154.]);
    // a * a^T through a strided view.
    let c = matmul(&a, &a.view().t().unwrap()).unwrap();
    assert_eq!(c.as_slice(), &[14., 32., 32., 77.]);
    let a3 = t(&[2, 1, 2], &[1., 2., 3., 4.]);
    let b3 = t(&[2, 2, 1], &[1., 1., 2., 0.5]);
    assert_eq!(matmul(&a3, &b3).unwrap().as_slice(), &[3., 8.]);
    assert!(matmul(&a, &a).unwrap_err().to_string().contains("inner"));
    // f32 input.
    let af = Tensor::from_vec(&[1, 2], vec![1.0f32, 2.0]).unwrap();
    let bf = Tensor::from_vec(&[2, 1], vec![3.0f32, 4.0]).unwrap();
    assert_eq!(matmul(&af, &bf).unwrap().as_slice(), &[11.0]);
}

#[test]
fn transpose_softmax_elementwise() {
    let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let tr = transpose(&a).unwrap();
    assert_eq!(tr.shape(), &[3, 2]);
    assert_eq!(tr.as_slice(), &[1., 4., 2., 5., 3., 6.]);
    assert!(transpose(&t(&[2], &[1., 2.])).is_err());

    let s = softmax(&t(&[2, 3], &[1., 2., 3., 1000., 1000., 1000.])).unwrap();
    for row in s.as_slice().chunks(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    assert_close(
        &s,
        &[
            0.09003057,
            0.24472847,
            0.66524096,
            1. / 3.,
            1. / 3.,
            1. / 3.,
        ],
        1e-8,
    );
    assert!(softmax(&Tensor::<f64>::zeros(&[]).unwrap()).is_err());

    let sc = Tensor::from_vec(&[], vec![10.0]).unwrap();
    assert_eq!(
        add(&a, &sc).unwrap().as_slice(),
        &[11., 12., 13., 14., 15., 16.]
    );
    assert_eq!(
        mul(&a, &a).unwrap().as_slice(),
        &[1., 4., 9., 16., 25., 36.]
    );
    assert_eq!(
        scale(&a, 0.5).unwrap().as_slice(),
        &[0.5, 1., 1.5, 2., 2.5, 3.]
    );
    let e = add(&a, &tr).unwrap_err().to_string();
    assert!(
        e.starts_with("add: a has shape [2, 3] and b has shape [3, 2]"),
        "{e}"
    );
}

#[test]
fn attention_uniform_keys_average_values() {
    let q = t(&[2, 2], &[1., 2., -3., 0.5]);
    let k = t(&[3, 2], &[1., 1., 1., 1., 1., 1.]);
    let v = t(&[3, 2], &[1., 10., 2., 20., 6., 60.]);
    let o = attention(&q, &k, &v, None).unwrap();
    assert_eq!(o.shape(), &[2, 2]);
    assert_close(&o, &[3., 30., 3., 30.], 1e-12);
}

#[test]
fn attention_worked_example() {
    let q = t(
        &[4, 3],
        &[1., 0., 0., 0., 1., 0., 0., 0., 1., 0.3, 0.3, 0.3],
    );
    let v = t(&[4, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    // Default scale 1/sqrt(3).
    let o = attention(&q, &q, &v, None).unwrap();
    assert_close(
        &o,
        &[
            3.6426, 4.6426, 3.9569, 4.9569, 4.2713, 5.2713, 3.9871, 4.9871,
        ],
        1e-3,
    );
    // Unscaled.
    let o = attention(&q, &q, &v, Some(1.0)).unwrap();
    assert_close(
        &o,
        &[
            3.3235, 4.3235, 3.8898, 4.8898, 4.4561, 5.4561, 3.9777, 4.9777,
        ],
        1e-3,
    );
}

#[test]
fn attention_batched_matches_per_head() {
    // Two heads; head 1 is head 0 with V doubled.
    let q = t(&[1, 2, 2, 2], &[1., 0., 0., 1., 1., 0., 0., 1.]);
    let k = t(
        &[1, 2, 3, 2],
        &[1., 0., 0., 1., 1., 1., 1., 0., 0., 1., 1., 1.],
    );
    let v = t(&[1, 2, 3, 1], &[1., 2., 3., 2., 4., 6.]);
    let o = attention(&q, &k, &v, Some(2.0)).unwrap();
    assert_eq!(o.shape(), &[1, 2, 2, 1]);
    let h0 = attention(
        &t(&[2, 2], &[1., 0., 0., 1.]),
        &t(&[3, 2], &[1., 0., 0., 1., 1., 1.]),
        &t(&[3, 1], &[1., 2., 3.]),
        Some(2.0),
    )
    .unwrap();
    let s = o.as_slice();
    let h = h0.as_slice();
    assert_close(&o, &[h[0], h[1], 2. * h[0], 2. * h[1]], 1e-12);
    assert!(s.iter().all(|x| x.is_finite()));
}

#[test]
fn attention_errors() {
    let q = t(&[0, 4], &[]);
    let k = t(&[1, 4], &[0.; 4]);
    let e = attention(&q, &k, &k, None).unwrap_err().to_string();
    assert_eq!(
        e,
        "attention: q has a zero-sized dimension (shape [0, 4]); all sizes must be positive"
    );
    let q = t(&[4, 16], &[0.; 64]);
    let k = t(&[5, 8], &[0.; 40]);
    let e = attention(&q, &k, &k, None).unwrap_err().to_string();
    assert!(
        e.contains("k has shape [5, 8] but q has shape [4, 16]"),
        "{e}"
    );
}

fn lse_of(
    q: &Tensor<f64>,
    k: &Tensor<f64>,
    v: &Tensor<f64>,
    o: AttentionOptions<'_, f64>,
) -> (Tensor<f64>, Tensor<f64>) {
    attention_with_lse(q, k, v, &o).unwrap()
}

fn seq(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::<f32>::random(shape, seed).unwrap().to_f64()
}

#[test]
fn window_alibi_and_causal_equal_their_masks() {
    // Sq = 4, Sk = 6: p(i) = i + 2.
    let (q, k, v) = (seq(&[2, 4, 3], 1), seq(&[1, 6, 3], 2), seq(&[1, 6, 2], 3));
    for (causal, window) in [
        (false, (1, 0)),
        (false, (0, 2)),
        (true, (2, 5)),
        (true, (usize::MAX, usize::MAX)),
        (false, (usize::MAX, 1)),
    ] {
        let slopes = [0.5f32, 0.25];
        let mut m = vec![0.0; 2 * 4 * 6];
        for h in 0..2 {
            for i in 0..4i64 {
                for j in 0..6i64 {
                    let p = i + 2;
                    let hi = if window.1 == usize::MAX {
                        i64::MAX
                    } else {
                        p + window.1 as i64
                    };
                    let hi = if causal { hi.min(p) } else { hi };
                    let lo = if window.0 == usize::MAX {
                        i64::MIN
                    } else {
                        p - window.0 as i64
                    };
                    let x = &mut m[((h * 4 + i as usize) * 6) + j as usize];
                    *x = -f64::from(slopes[h]) * (p - j).abs() as f64;
                    if j < lo || j > hi {
                        *x = f64::NEG_INFINITY;
                    }
                }
            }
        }
        let m = t(&[2, 4, 6], &m);
        let o = options::AttentionOptions::new()
            .with_causal(causal)
            .with_window(window.0, window.1);
        let a = lse_of(
            &q,
            &k,
            &v,
            AttentionOptions {
                alibi: Some(&slopes),
                ..o.into()
            },
        );
        let b = lse_of(
            &q,
            &k,
            &v,
            AttentionOptions {
                mask: Some(m.view()),
                ..AttentionOptions::default()
            },
        );
        assert_close(&a.0, b.0.as_slice(), 1e-12);
        assert_close(&a.1, b.1.as_slice(), 1e-12);
    }
}

#[test]
fn softcap_sinks_and_lse_by_hand() {
    // One query, two keys, scale 1: scores 3 and -1.
    let q = t(&[1, 1], &[1.0]);
    let k = t(&[2, 1], &[3.0, -1.0]);
    let v = t(&[2, 1], &[10.0, 20.0]);
    let o = options::AttentionOptions::new().with_scale(1.0);
    let cap = 2.0f64;
    let s = [cap * (3.0 / cap).tanh(), cap * (-1.0 / cap).tanh()];
    let (out, lse) = lse_of(&q, &k, &v, o.with_softcap(2.0).into());
    let z = s[0].exp() + s[1].exp();
    assert_close(&out, &[(s[0].exp() * 10.0 + s[1].exp() * 20.0) / z], 1e-12);
    assert_close(&lse, &[z.ln()], 1e-12);
    // A sink of 1: joins the denominator only.
    let sinks = [1.0f32];
    let (out, lse) = lse_of(
        &q,
        &k,
        &v,
        AttentionOptions {
            sinks: Some(&sinks),
            ..o.into()
        },
    );
    let z = 3f64.exp() + (-1f64).exp() + 1f64.exp();
    assert_close(
        &out,
        &[(3f64.exp() * 10.0 + (-1f64).exp() * 20.0) / z],
        1e-12,
    );
    assert_close(&lse, &[z.ln()], 1e-12);
    // No visible key: zeros, lse -inf; with a sink, zeros and lse = the sink.
    let hidden = o.with_window(0, 0);
    let q2 = t(&[3, 1], &[1.0, 1.0, 1.0]); // p(0) = -1: sees nothing
    let (out, lse) = lse_of(&q2, &k, &v, hidden.into());
    assert_eq!(out.as_slice()[0], 0.0);
    assert_eq!(lse.as_slice()[0], f64::NEG_INFINITY);
    assert_close(&out, &[0.0, 10.0, 20.0], 1e-12);
    let (out, lse) = lse_of(
        &q2,
        &k,
        &v,
        AttentionOptions {
            sinks: Some(&sinks),
            ..hidden.into()
        },
    );
    assert_eq!(out.as_slice()[0], 0.0);
    assert_close(
        &lse,
        &[
            1.0,
            (3f64.exp() + 1f64.exp()).ln(),
            ((-1f64).exp() + 1f64.exp()).ln(),
        ],
        1e-12,
    );
    assert_close(
        &out,
        &[
            0.0,
            10.0 * 3f64.exp() / (3f64.exp() + 1f64.exp()),
            20.0 * (-1f64).exp() / ((-1f64).exp() + 1f64.exp()),
        ],
        1e-12,
    );
}

#[test]
fn per_head_options_are_checked() {
    let (q, k) = (seq(&[2, 3, 4], 1), seq(&[1, 5, 4], 2));
    let one = [0.5f32];
    let e = attention_with(
        &q,
        &k,
        &k,
        &AttentionOptions {
            alibi: Some(&one),
            ..AttentionOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("option `alibi`") && e.contains("1 values") && e.contains("Hq = 2"),
        "{e}"
    );
    let nan = [0.0f32, f32::NAN];
    let e = attention_with(
        &q,
        &k,
        &k,
        &AttentionOptions {
            sinks: Some(&nan),
            ..AttentionOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("option `sinks`") && e.contains("head 1 is NaN"),
        "{e}"
    );
}

#[test]
fn merged_parts_equal_the_whole() {
    let (q, k, v) = (seq(&[2, 5, 4], 4), seq(&[2, 9, 4], 5), seq(&[2, 9, 3], 6));
    let o: AttentionOptions<'_, f64> = options::AttentionOptions::new().with_scale(0.7).into();
    let whole = lse_of(&q, &k, &v, o);
    let rows = |x: &Tensor<f64>, a: usize, b: usize| {
        let s = x.shape();
        TensorView::from_strided(
            x.as_slice(),
            &[s[0], b - a, s[2]],
            &[s[1] * s[2], s[2], 1],
            a * s[2],
        )
        .unwrap()
        .to_tensor()
    };
    let parts: Vec<(Tensor<f64>, Tensor<f64>)> = [(0, 2), (2, 7), (7, 9)]
        .iter()
        .map(|&(a, b)| lse_of(&q, &rows(&k, a, b), &rows(&v, a, b), o))
        .collect();
    let views: Vec<_> = parts.iter().map(|(o, l)| (o.view(), l.view())).collect();
    let (out, lse) = merge_partials(&views).unwrap();
    assert_close(&out, whole.0.as_slice(), 1e-12);
    assert_close(&lse, whole.1.as_slice(), 1e-12);
    // All-(-inf) rows give zeros; shapes must agree.
    let z = t(&[1, 2], &[5.0, 6.0]);
    let l = t(&[1], &[f64::NEG_INFINITY]);
    let (out, lse) = merge_partials(&[(z.view(), l.view()), (z.view(), l.view())]).unwrap();
    assert_eq!(
        (out.as_slice(), lse.as_slice()),
        (&[0.0, 0.0][..], &[f64::NEG_INFINITY][..])
    );
    let e = merge_partials(&[(z.view(), l.view()), (v.view(), l.view())]).unwrap_err();
    assert!(e.to_string().contains("part 1 has out [2, 9, 3]"), "{e}");
}

#[test]
fn compare_semantics() {
    let e = t(&[2, 2], &[1.0, 2.0, 0.0, f64::NAN]);
    let a = Tensor::from_vec(&[2, 2], vec![1.0f32, 2.01, 0.0, f32::NAN]).unwrap();
    let c = compare(&a, &e, 1e-2, 0.0).unwrap();
    assert!(c.ok, "{c:?}");
    let c = compare(&a, &e, 1e-3, 0.0).unwrap();
    assert!(!c.ok);
    assert_eq!(c.worst_index, 1);
    assert!((c.max_abs_err - 0.01).abs() < 1e-6);
    assert!((c.max_rel_err - 0.005).abs() < 1e-6);

    let a = t(&[2, 2], &[1.0, f64::NAN, 0.0, 1.0]);
    let c = compare(&a, &e, 1.0, 1.0).unwrap();
    assert!(!c.ok);
    assert_eq!(c.worst_index, 1);
    assert!(c.max_abs_err.is_infinite());

    let inf = t(&[1], &[f64::INFINITY]);
    assert!(compare(&inf, &inf, 0.0, 0.0).unwrap().ok);
    let ninf = t(&[1], &[f64::NEG_INFINITY]);
    assert!(!compare(&ninf, &inf, 0.0, 0.0).unwrap().ok);

    let err = compare(&a.view().t().unwrap(), &t(&[4], &[0.; 4]), 0.0, 0.0).unwrap_err();
    assert!(err.to_string().contains("[2, 2]") && err.to_string().contains("[4]"));

    let empty = Tensor::<f64>::zeros(&[0, 3]).unwrap();
    let c = compare(&empty, &empty, 0.0, 0.0).unwrap();
    assert!(c.ok);

    // Strided actual.
    let data = [1.0, 9.0, 2.0, 9.0];
    let sv = TensorView::from_strided(&data, &[2], &[2], 0).unwrap();
    assert!(compare(&sv, &t(&[2], &[1.0, 2.0]), 0.0, 0.0).unwrap().ok);
}
