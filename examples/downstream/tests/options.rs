//! The kernels of `src/options.rs` (causal, grouped-query heads, masks, bf16/f16/f64) against
//! attn's f64 reference, `reference::attention_with`.
//!
//! Tolerances, `|actual - expected| <= atol + rtol * |expected|` per element, as documented on
//! `attn::AttentionElement` (the inputs of 16-bit kernels are bf16/f16 values, so the reference
//! sees exactly what the kernel sees; the kernel computes in f32 and rounds the output once):
//! - f32: rtol 1e-4, atol 1e-6.
//! - f64: rtol 1e-12, atol 1e-13 (f64 throughout).
//! - bf16: rtol 2^-8, atol 1e-5: one rounding of the output (relative error at most 2^-8: bf16
//!   keeps 8 significant bits) plus the f32 computation's error, which atol covers.
//! - f16: rtol 2^-10, atol 1e-5: one rounding (at most 2^-11: f16 keeps 11 significant bits),
//!   with a factor of 2 to spare.
//!
//! `cargo test --test options -- --nocapture` prints the errors measured.

use attn::half::{bf16, f16};
use attn::reference::{self, AttentionOptions};
use attn::{Element, Tensor};
use attn_downstream_example::options;

const F32_TOL: (f64, f64) = (1e-4, 1e-6);
const F64_TOL: (f64, f64) = (1e-12, 1e-13);
const BF16_TOL: (f64, f64) = (1.0 / 256.0, 1e-5);
const F16_TOL: (f64, f64) = (1.0 / 1024.0, 1e-5);

/// Deterministic values in [-1, 1), rounded to `T`.
fn fill<T: Element>(xs: &mut [T], seed: u64) {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for x in xs {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *x = T::from_f64(((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0);
    }
}

/// A mask of values in [-1, 1) with `-inf` sprinkled in, and row `full_row` (of the first
/// `[Sq, Sk]` block) fully masked, which gives zeros.
fn mask_values(xs: &mut [f32], sk: usize, full_row: usize, seed: u64) {
    fill(xs, seed);
    for (i, x) in xs.iter_mut().enumerate() {
        if i % 7 == 3 || i / sk == full_row {
            *x = f32::NEG_INFINITY;
        }
    }
}

/// The f32 tensor of any element type's values (exact: every element type widens to f32 or f64
/// without rounding, and the values of f64 kernels here are f32 values).
fn tensor<T: Element>(shape: &[usize], data: &[T]) -> Tensor {
    Tensor::from_vec(shape, data.iter().map(|x| x.to_f64() as f32).collect()).unwrap()
}

fn check<T: Element>(shape: &[usize], actual: &[T], expected: &Tensor<f64>, tol: (f64, f64)) {
    let actual = Tensor::from_vec(shape, actual.to_vec()).unwrap();
    let c = reference::compare(&actual, expected, tol.0, tol.1).unwrap();
    println!(
        "{} {shape:?}: max abs err {:.2e}, max rel err {:.2e} (rtol {:.1e}, atol {:.0e})",
        T::DTYPE,
        c.max_abs_err,
        c.max_rel_err,
        tol.0,
        tol.1
    );
    assert!(c.ok, "{} kernel: {c:?}", T::DTYPE);
}

fn expected(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    causal: bool,
    mask: Option<&Tensor>,
    scale: Option<f64>,
) -> Tensor<f64> {
    reference::attention_with(
        q,
        k,
        v,
        &AttentionOptions {
            options: attn::options::AttentionOptions {
                causal,
                scale,
                ..Default::default()
            },
            mask: mask.map(Tensor::view),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn gqa_causal_f32() {
    let mut q = [[[[0f32; 16]; 13]; 6]; 2];
    let mut k = [[[[0f32; 16]; 13]; 2]; 2];
    let mut v = [[[[0f32; 8]; 13]; 2]; 2];
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
    let out = options::gqa_causal(&q, &k, &v);
    let want = expected(
        &tensor(
            &[2, 6, 13, 16],
            q.as_flattened().as_flattened().as_flattened(),
        ),
        &tensor(
            &[2, 2, 13, 16],
            k.as_flattened().as_flattened().as_flattened(),
        ),
        &tensor(
            &[2, 2, 13, 8],
            v.as_flattened().as_flattened().as_flattened(),
        ),
        true,
        None,
        None,
    );
    let flat = out.as_flattened().as_flattened().as_flattened();
    check(&[2, 6, 13, 8], flat, &want, F32_TOL);
    // The first query of every head sees the first key only: its output is that key's value row
    // (of the head's key/value group: query heads 0-2 read head 0, 3-5 head 1).
    for b in 0..2 {
        for h in 0..6 {
            for (o, x) in out[b][h][0].iter().zip(&v[b][h / 3][0]) {
                assert!((o - x).abs() < 1e-6, "batch {b} head {h}: {o} vs {x}");
            }
        }
    }
    let mut into = [[[[f32::NAN; 8]; 13]; 6]; 2];
    options::gqa_causal_into(&q, &k, &v, &mut into);
    assert_eq!(into, *out);
}

#[test]
fn causal_chunk_is_bottom_right_aligned() {
    let mut q = [[0f32; 32]; 5];
    let mut k = [[0f32; 32]; 17];
    let mut v = [[0f32; 32]; 17];
    fill(q.as_flattened_mut(), 4);
    fill(k.as_flattened_mut(), 5);
    fill(v.as_flattened_mut(), 6);
    let out = options::causal_chunk(&q, &k, &v);
    let (qt, kt, vt) = (
        tensor(&[5, 32], q.as_flattened()),
        tensor(&[17, 32], k.as_flattened()),
        tensor(&[17, 32], v.as_flattened()),
    );
    check(
        &[5, 32],
        out.as_flattened(),
        &expected(&qt, &kt, &vt, true, None, None),
        F32_TOL,
    );
    // The last query sees every key: plain attention for that row.
    let full = expected(&qt, &kt, &vt, false, None, None);
    for (j, o) in out[4].iter().enumerate() {
        assert!((f64::from(*o) - full.as_slice()[4 * 32 + j]).abs() < 1e-5);
    }
}

#[test]
fn masked_per_batch_f32() {
    let mut q = [[[[0f32; 16]; 9]; 4]; 2];
    let mut k = [[[[0f32; 16]; 11]; 4]; 2];
    let mut v = [[[[0f32; 16]; 11]; 4]; 2];
    let mut mask = [[[[0f32; 11]; 9]; 1]; 2];
    fill(
        q.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        7,
    );
    fill(
        k.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        8,
    );
    fill(
        v.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        9,
    );
    mask_values(
        mask.as_flattened_mut()
            .as_flattened_mut()
            .as_flattened_mut(),
        11,
        2,
        10,
    );
    let out = options::masked(&q, &k, &v, &mask);
    let want = expected(
        &tensor(
            &[2, 4, 9, 16],
            q.as_flattened().as_flattened().as_flattened(),
        ),
        &tensor(
            &[2, 4, 11, 16],
            k.as_flattened().as_flattened().as_flattened(),
        ),
        &tensor(
            &[2, 4, 11, 16],
            v.as_flattened().as_flattened().as_flattened(),
        ),
        false,
        Some(&tensor(
            &[2, 1, 9, 11],
            mask.as_flattened().as_flattened().as_flattened(),
        )),
        None,
    );
    check(
        &[2, 4, 9, 16],
        out.as_flattened().as_flattened().as_flattened(),
        &want,
        F32_TOL,
    );
    // Batch 0's row 2 is fully masked in every head: zeros, not NaN.
    for h in 0..4 {
        assert_eq!(out[0][h][2], [0.0; 16]);
    }
}

#[test]
fn mask_causal_and_scale_in_a_body() {
    let mut q = [[0f32; 16]; 12];
    let mut k = [[0f32; 16]; 12];
    let mut v = [[0f32; 16]; 12];
    let mut bias = [[0f32; 12]; 12];
    fill(q.as_flattened_mut(), 11);
    fill(k.as_flattened_mut(), 12);
    fill(v.as_flattened_mut(), 13);
    mask_values(bias.as_flattened_mut(), 12, 7, 14);
    let out = options::biased(&q, &k, &v, &bias);
    let want = expected(
        &tensor(&[12, 16], q.as_flattened()),
        &tensor(&[12, 16], k.as_flattened()),
        &tensor(&[12, 16], v.as_flattened()),
        true,
        Some(&tensor(&[12, 12], bias.as_flattened())),
        Some(0.3f32 as f64),
    );
    check(&[12, 16], out.as_flattened(), &want, F32_TOL);
    assert_eq!(out[7], [0.0; 16]);
}

#[test]
fn mqa_causal_bf16() {
    let mut q = [[[[bf16::ZERO; 64]; 16]; 4]; 1];
    let mut k = [[[[bf16::ZERO; 64]; 16]; 1]; 1];
    let mut v = [[[[bf16::ZERO; 64]; 16]; 1]; 1];
    fill(
        q.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        15,
    );
    fill(
        k.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        16,
    );
    fill(
        v.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        17,
    );
    let out = options::mqa_bf16(&q, &k, &v);
    let want = expected(
        &tensor(
            &[1, 4, 16, 64],
            q.as_flattened().as_flattened().as_flattened(),
        ),
        &tensor(
            &[1, 1, 16, 64],
            k.as_flattened().as_flattened().as_flattened(),
        ),
        &tensor(
            &[1, 1, 16, 64],
            v.as_flattened().as_flattened().as_flattened(),
        ),
        true,
        None,
        None,
    );
    check(
        &[1, 4, 16, 64],
        out.as_flattened().as_flattened().as_flattened(),
        &want,
        BF16_TOL,
    );
    // Row 0 of every head is key 0's value row (a weight of 1).
    for h in 0..4 {
        for (o, x) in out[0][h][0].iter().zip(&v[0][0][0]) {
            assert!(
                (o.to_f32() - x.to_f32()).abs() <= x.to_f32().abs() / 128.0,
                "{o} vs {x}"
            );
        }
    }
    let mut into = [[[[bf16::NAN; 64]; 16]; 4]; 1];
    options::mqa_bf16_into(&q, &k, &v, &mut into);
    assert_eq!(
        into.as_flattened()
            .as_flattened()
            .as_flattened()
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>(),
        out.as_flattened()
            .as_flattened()
            .as_flattened()
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>()
    );
}

#[test]
fn heads_f16_with_a_shared_mask() {
    let mut q = [[[f16::ZERO; 32]; 10]; 3];
    let mut k = [[[f16::ZERO; 32]; 14]; 3];
    let mut v = [[[f16::ZERO; 32]; 14]; 3];
    let mut mask = [[0f32; 14]; 10];
    fill(q.as_flattened_mut().as_flattened_mut(), 18);
    fill(k.as_flattened_mut().as_flattened_mut(), 19);
    fill(v.as_flattened_mut().as_flattened_mut(), 20);
    mask_values(mask.as_flattened_mut(), 14, 9, 21);
    let out = options::heads_f16(&q, &k, &v, &mask);
    let want = expected(
        &tensor(&[3, 10, 32], q.as_flattened().as_flattened()),
        &tensor(&[3, 14, 32], k.as_flattened().as_flattened()),
        &tensor(&[3, 14, 32], v.as_flattened().as_flattened()),
        false,
        Some(&tensor(&[10, 14], mask.as_flattened())),
        None,
    );
    check(
        &[3, 10, 32],
        out.as_flattened().as_flattened(),
        &want,
        F16_TOL,
    );
    for h in 0..3 {
        assert!(out[h][9].iter().all(|x| x.to_f32() == 0.0));
    }
}

#[test]
fn gqa_causal_f64() {
    let mut q = [[[[0f64; 16]; 7]; 4]; 1];
    let mut k = [[[[0f64; 16]; 9]; 2]; 1];
    let mut v = [[[[0f64; 16]; 9]; 2]; 1];
    fill(
        q.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        22,
    );
    fill(
        k.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        23,
    );
    fill(
        v.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        24,
    );
    let out = options::gqa_f64(&q, &k, &v);
    let t = |shape: &[usize], d: &[f64]| Tensor::from_vec(shape, d.to_vec()).unwrap();
    let want = reference::attention_with(
        &t(
            &[1, 4, 7, 16],
            q.as_flattened().as_flattened().as_flattened(),
        ),
        &t(
            &[1, 2, 9, 16],
            k.as_flattened().as_flattened().as_flattened(),
        ),
        &t(
            &[1, 2, 9, 16],
            v.as_flattened().as_flattened().as_flattened(),
        ),
        &attn::options::AttentionOptions::new()
            .with_causal(true)
            .into(),
    )
    .unwrap();
    check(
        &[1, 4, 7, 16],
        out.as_flattened().as_flattened().as_flattened(),
        &want,
        F64_TOL,
    );
}

#[test]
fn primitives_f64() {
    let mut q = [[0f64; 16]; 6];
    let mut k = [[0f64; 16]; 9];
    fill(q.as_flattened_mut(), 25);
    fill(k.as_flattened_mut(), 26);
    let out = options::probs_f64(&q, &k);
    let (qt, kt) = (
        Tensor::from_vec(&[6, 16], q.as_flattened().to_vec()).unwrap(),
        Tensor::from_vec(&[9, 16], k.as_flattened().to_vec()).unwrap(),
    );
    let scores = reference::matmul(&qt, &reference::transpose(&kt).unwrap()).unwrap();
    let want = reference::softmax(&reference::scale(&scores, 0.25).unwrap()).unwrap();
    check(&[6, 9], out.as_flattened(), &want, F64_TOL);
}
