//! The kernels of `src/variants.rs` (window, softcap, sinks, ALiBi) against attn's f64
//! reference, `reference::attention_with`, with the tolerances of `tests/options.rs`.

use attn::half::bf16;
use attn::reference::{self, AttentionOptions};
use attn::{Element, Tensor, options::AttentionOptions as Options};
use attn_downstream_example::variants;

/// Deterministic values in [-2, 2), rounded to `T`.
fn fill<T: Element>(xs: &mut [T], seed: u64) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for x in xs {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let u = (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f64 / (1u64 << 24) as f64;
        *x = T::from_f64(u * 4.0 - 2.0);
    }
}

fn tensor<T: Element>(shape: &[usize], data: &[T]) -> Tensor<f64> {
    Tensor::from_vec(shape, data.iter().map(|x| x.to_f64()).collect()).unwrap()
}

#[track_caller]
fn check<T: Element>(shape: &[usize], actual: &[T], expected: &Tensor<f64>, tol: (f64, f64)) {
    let actual = Tensor::from_vec(shape, actual.to_vec()).unwrap();
    let c = reference::compare(&actual, expected, tol.0, tol.1).unwrap();
    println!(
        "{} {shape:?}: max abs err {:.2e}, max rel err {:.2e}",
        T::DTYPE,
        c.max_abs_err,
        c.max_rel_err
    );
    assert!(c.ok, "{} kernel: {c:?}", T::DTYPE);
}

#[test]
fn local_softcap_f32() {
    let mut q = [[[[0f32; 16]; 12]; 4]; 1];
    let mut k = [[[[0f32; 16]; 12]; 2]; 1];
    let mut v = [[[[0f32; 16]; 12]; 2]; 1];
    fill(
        q.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        1,
    );
    fill(
        k.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        2,
    );
    fill(
        v.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        3,
    );
    let out = variants::local_softcap(&q, &k, &v);
    let (qt, kt, vt) = (
        tensor(
            &[1, 4, 12, 16],
            q.as_flattened().as_flattened().as_flattened(),
        ),
        tensor(
            &[1, 2, 12, 16],
            k.as_flattened().as_flattened().as_flattened(),
        ),
        tensor(
            &[1, 2, 12, 16],
            v.as_flattened().as_flattened().as_flattened(),
        ),
    );
    let o = Options::new()
        .with_causal(true)
        .with_window(3, 0)
        .with_softcap(5.0)
        .with_scale(f64::from(0.25f32));
    let want = reference::attention_with(&qt, &kt, &vt, &o.into()).unwrap();
    check(
        &[1, 4, 12, 16],
        out.as_flattened().as_flattened().as_flattened(),
        &want,
        (1e-4, 1e-6),
    );
    // The run-time API computes the same.
    let run = attn::Attention::new()
        .causal(true)
        .window(3, 0)
        .softcap(5.0)
        .run(
            &qt.map(|x| x as f32),
            &kt.map(|x| x as f32),
            &vt.map(|x| x as f32),
        )
        .unwrap();
    check(&[1, 4, 12, 16], run.as_slice(), &want, (1e-4, 1e-6));
}

#[test]
fn sinks_bf16() {
    let mut q = [[[bf16::ZERO; 32]; 9]; 2];
    let mut k = [[[bf16::ZERO; 32]; 9]; 2];
    let mut v = [[[bf16::ZERO; 32]; 9]; 2];
    fill(q.as_flattened_mut().as_flattened_mut(), 4);
    fill(k.as_flattened_mut().as_flattened_mut(), 5);
    fill(v.as_flattened_mut().as_flattened_mut(), 6);
    let sinks = [1.5f32, -0.5];
    let out = variants::sinks_bf16(&q, &k, &v, &sinks);
    let o = Options::new().with_causal(true).with_window(5, 0);
    let want = reference::attention_with(
        &tensor(&[2, 9, 32], q.as_flattened().as_flattened()),
        &tensor(&[2, 9, 32], k.as_flattened().as_flattened()),
        &tensor(&[2, 9, 32], v.as_flattened().as_flattened()),
        &AttentionOptions {
            sinks: Some(&sinks),
            ..o.into()
        },
    )
    .unwrap();
    check(
        &[2, 9, 32],
        out.as_flattened().as_flattened(),
        &want,
        (1.0 / 256.0, 1e-5),
    );
}

#[test]
fn alibi_and_sinks_f64() {
    let mut q = [[[0f64; 16]; 5]; 3];
    let mut k = [[[0f64; 16]; 8]; 3];
    let mut v = [[[0f64; 16]; 8]; 3];
    fill(q.as_flattened_mut().as_flattened_mut(), 7);
    fill(k.as_flattened_mut().as_flattened_mut(), 8);
    fill(v.as_flattened_mut().as_flattened_mut(), 9);
    let (slopes, sinks) = ([0.5f32, 0.25, 0.125], [0.0f32, 2.0, f32::NEG_INFINITY]);
    let out = variants::alibi_f64(&q, &k, &v, &slopes, &sinks);
    let o = Options::new()
        .with_window(2, 1)
        .with_softcap(4.0)
        .with_scale(0.25);
    let want = reference::attention_with(
        &tensor(&[3, 5, 16], q.as_flattened().as_flattened()),
        &tensor(&[3, 8, 16], k.as_flattened().as_flattened()),
        &tensor(&[3, 8, 16], v.as_flattened().as_flattened()),
        &AttentionOptions {
            alibi: Some(&slopes),
            sinks: Some(&sinks),
            ..o.into()
        },
    )
    .unwrap();
    check(
        &[3, 5, 16],
        out.as_flattened().as_flattened(),
        &want,
        (1e-12, 1e-13),
    );
}

#[test]
fn every_operand_at_rank_2() {
    let (mut q, mut k, mut v) = ([[0f32; 16]; 6], [[0f32; 16]; 10], [[0f32; 8]; 10]);
    let mut mask = [[0f32; 10]; 6];
    fill(q.as_flattened_mut(), 10);
    fill(k.as_flattened_mut(), 11);
    fill(v.as_flattened_mut(), 12);
    fill(mask.as_flattened_mut(), 13);
    mask[2] = [f32::NEG_INFINITY; 10]; // a hidden row: zeros, with or without a sink
    let sinks = [0.5f32, -1.0, 3.0, 0.0, 1.0, -2.0];
    let alibi = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6];
    let out = variants::every_operand(&q, &k, &v, &mask, &sinks, &alibi);
    let (qt, kt, vt, mt) = (
        tensor(&[6, 16], q.as_flattened()),
        tensor(&[10, 16], k.as_flattened()),
        tensor(&[10, 8], v.as_flattened()),
        tensor(&[6, 10], mask.as_flattened()),
    );
    assert!(out[2].iter().all(|&x| x == 0.0));
    // Sinks and slopes per row: the reference takes them per head, so compare row by row as
    // single-row attentions (row i sees the keys of p(i) = i + 4).
    for i in 0..6 {
        let row = |t: &Tensor<f64>, w: usize| {
            Tensor::from_vec(&[1, w], t.as_slice()[i * w..(i + 1) * w].to_vec()).unwrap()
        };
        let (qi, mi) = (row(&qt, 16), row(&mt, 10));
        // The window and ALiBi of the row's position p = i + 4, folded into its mask row.
        let mut shifted = mi.as_slice().to_vec();
        for (j, x) in shifted.iter_mut().enumerate() {
            let p = i as i64 + 4;
            let d = p - j as i64;
            *x -= f64::from(alibi[i]) * d.unsigned_abs() as f64;
            if !(p - 4..=p + 2).contains(&(j as i64)) {
                *x = f64::NEG_INFINITY;
            }
        }
        let m = Tensor::from_vec(&[1, 10], shifted).unwrap();
        let want = reference::attention_with(
            &qi,
            &kt,
            &vt,
            &AttentionOptions {
                mask: Some(m.view()),
                sinks: Some(&sinks[i..i + 1]),
                ..Options::new().with_scale(f64::from(0.3f32)).into()
            },
        )
        .unwrap();
        check(&[1, 8], &out[i], &want, (1e-4, 1e-6));
    }
}
