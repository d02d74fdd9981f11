//! The kernels of `src/mods.rs` against an f64 reference that evaluates the score and mask mods
//! itself (as Rust closures), element by element; the window and softcap of `composed` come from
//! the built-in options' definitions (`AttentionOptions::key_bounds` and `cap tanh(s / cap)`).
//!
//! Tolerances, `|actual - expected| <= atol + rtol |expected|`: f32 rtol 1e-4 / atol 1e-6, f64
//! rtol 1e-12 / atol 1e-13, bf16 rtol 2^-8 / atol 1e-5 (as `tests/options.rs`).

use attn::half::bf16;
use attn::options::AttentionOptions;
use attn_downstream_example::mods;

/// `[B, H, Sq, D]` q, `[B, Hkv, Sk, D]` k, `[B, Hkv, Sk, Dv]` v.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    h: usize,
    hk: usize,
    sq: usize,
    sk: usize,
    d: usize,
    dv: usize,
}

/// A score mod `(s, b, h, i, j)` and a mask mod `(b, h, i, j)` in f64.
type ScoreFn<'a> = &'a dyn Fn(f64, usize, usize, usize, usize) -> f64;
type KeepFn<'a> = &'a dyn Fn(usize, usize, usize, usize) -> bool;

/// `softmax(score(q k^T scale) masked by keep) v`, rows without keys 0, in f64.
fn reference(
    n: Dims,
    [q, k, v]: [&[f64]; 3],
    scale: f64,
    score: ScoreFn,
    keep: KeepFn,
) -> Vec<f64> {
    let mut out = vec![0.0; n.b * n.h * n.sq * n.dv];
    let mut s = vec![0.0; n.sk];
    for b in 0..n.b {
        for h in 0..n.h {
            let kh = h / (n.h / n.hk);
            for i in 0..n.sq {
                let qr = &q[((b * n.h + h) * n.sq + i) * n.d..][..n.d];
                let mut m = f64::NEG_INFINITY;
                for (j, sj) in s.iter_mut().enumerate() {
                    let kr = &k[((b * n.hk + kh) * n.sk + j) * n.d..][..n.d];
                    let dot: f64 = qr.iter().zip(kr).map(|(x, y)| x * y).sum();
                    *sj = if keep(b, h, i, j) {
                        score(dot * scale, b, h, i, j)
                    } else {
                        f64::NEG_INFINITY
                    };
                    m = m.max(*sj);
                }
                if m == f64::NEG_INFINITY {
                    continue;
                }
                let mut l = 0.0;
                for sj in s.iter_mut() {
                    *sj = (*sj - m).exp();
                    l += *sj;
                }
                let o = &mut out[((b * n.h + h) * n.sq + i) * n.dv..][..n.dv];
                for (j, p) in s.iter().enumerate() {
                    let vr = &v[((b * n.hk + kh) * n.sk + j) * n.dv..][..n.dv];
                    for (oc, x) in o.iter_mut().zip(vr) {
                        *oc += p / l * x;
                    }
                }
            }
        }
    }
    out
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn check(what: &str, actual: &[f64], want: &[f64], (rtol, atol): (f64, f64)) {
    assert_eq!(actual.len(), want.len());
    let mut worst: f64 = 0.0;
    for (x, (a, w)) in actual.iter().zip(want).enumerate() {
        let e = (a - w).abs() / (atol + rtol * w.abs());
        assert!(e <= 1.0, "{what}[{x}]: want {w}, got {a}");
        worst = worst.max(e);
    }
    println!("{what}: {} values, worst error/tolerance {worst:.3}", want.len());
}

const F32_TOL: (f64, f64) = (1e-4, 1e-6);

/// Copies `src` into a nested f32 array through its flat view.
fn put(dst: &mut [f32], src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s as f32;
    }
}

fn widen(xs: &[f32]) -> Vec<f64> {
    xs.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn docs_mask_reads_an_i32_input() {
    let n = Dims { b: 1, h: 4, hk: 4, sq: 256, sk: 256, d: 64, dv: 64 };
    let mut q = Box::new([[[0f32; 64]; 256]; 4]);
    let mut k = Box::new([[[0f32; 64]; 256]; 4]);
    let mut v = Box::new([[[0f32; 64]; 256]; 4]);
    put(q.as_flattened_mut().as_flattened_mut(), &values(n.h * n.sq * n.d, 1));
    put(k.as_flattened_mut().as_flattened_mut(), &values(n.h * n.sk * n.d, 2));
    put(v.as_flattened_mut().as_flattened_mut(), &values(n.h * n.sk * n.dv, 3));
    // Documents of 37, 100, 1, 90 and 28 tokens.
    let mut doc = [0i32; 256];
    let mut at = 0;
    for (d, len) in [37, 100, 1, 90, 28].into_iter().enumerate() {
        doc[at..at + len].fill(d as i32);
        at += len;
    }
    let out = mods::docs(&q, &k, &v, &doc);
    let want = reference(
        n,
        [
            &widen(q.as_flattened().as_flattened()),
            &widen(k.as_flattened().as_flattened()),
            &widen(v.as_flattened().as_flattened()),
        ],
        f64::from(0.125f32),
        &|s, _, _, _, _| s,
        &|_, _, i, j| doc[i] == doc[j] && j <= i,
    );
    check("docs", &widen(out.as_flattened().as_flattened()), &want, F32_TOL);
    // The one-token document sees itself only: its output is its value row.
    for h in 0..4 {
        assert_eq!(out[h][137], v[h][137], "head {h}");
    }
}

#[test]
fn prefix_lm_mask() {
    let n = Dims { b: 1, h: 2, hk: 2, sq: 128, sk: 128, d: 32, dv: 32 };
    let mut q = Box::new([[[0f32; 32]; 128]; 2]);
    let mut k = q.clone();
    let mut v = q.clone();
    put(q.as_flattened_mut().as_flattened_mut(), &values(2 * 128 * 32, 4));
    put(k.as_flattened_mut().as_flattened_mut(), &values(2 * 128 * 32, 5));
    put(v.as_flattened_mut().as_flattened_mut(), &values(2 * 128 * 32, 6));
    let out = mods::prefix_lm(&q, &k, &v);
    let want = reference(
        n,
        [
            &widen(q.as_flattened().as_flattened()),
            &widen(k.as_flattened().as_flattened()),
            &widen(v.as_flattened().as_flattened()),
        ],
        f64::from((1.0 / 32f64.sqrt()) as f32),
        &|s, _, _, _, _| s,
        &|_, _, i, j| j <= i || j < 64,
    );
    check("prefix_lm", &widen(out.as_flattened().as_flattened()), &want, F32_TOL);
}

#[test]
fn relpos_score_mod_reads_a_bias_table() {
    let n = Dims { b: 1, h: 2, hk: 2, sq: 64, sk: 64, d: 32, dv: 32 };
    let mut q = Box::new([[[0f32; 32]; 64]; 2]);
    let mut k = q.clone();
    let mut v = q.clone();
    put(q.as_flattened_mut().as_flattened_mut(), &values(2 * 64 * 32, 7));
    put(k.as_flattened_mut().as_flattened_mut(), &values(2 * 64 * 32, 8));
    put(v.as_flattened_mut().as_flattened_mut(), &values(2 * 64 * 32, 9));
    let mut bias = [[0f32; 127]; 2];
    put(bias.as_flattened_mut(), &values(2 * 127, 10));
    let out = mods::relpos(&q, &k, &v, &bias);
    let want = reference(
        n,
        [
            &widen(q.as_flattened().as_flattened()),
            &widen(k.as_flattened().as_flattened()),
            &widen(v.as_flattened().as_flattened()),
        ],
        f64::from((1.0 / 32f64.sqrt()) as f32),
        &|s, _, h, i, j| s + f64::from(bias[h][j + 63 - i]),
        &|_, _, _, _| true,
    );
    check("relpos", &widen(out.as_flattened().as_flattened()), &want, F32_TOL);
}

#[test]
fn composed_mods_equal_the_built_in_window_and_softcap() {
    let n = Dims { b: 2, h: 4, hk: 2, sq: 40, sk: 72, d: 32, dv: 16 };
    let mut q = Box::new([[[[0f32; 32]; 40]; 4]; 2]);
    let mut k = Box::new([[[[0f32; 32]; 72]; 2]; 2]);
    let mut v = Box::new([[[[0f32; 16]; 72]; 2]; 2]);
    // Large scores, so that the softcap matters.
    let big: Vec<f64> = values(2 * 4 * 40 * 32, 11).iter().map(|x| 4.0 * x).collect();
    put(q.as_flattened_mut().as_flattened_mut().as_flattened_mut(), &big);
    put(k.as_flattened_mut().as_flattened_mut().as_flattened_mut(), &values(2 * 2 * 72 * 32, 12));
    put(v.as_flattened_mut().as_flattened_mut().as_flattened_mut(), &values(2 * 2 * 72 * 16, 13));
    let out = mods::composed(&q, &k, &v);
    // The built-in options: a causal window of 16 keys before each query's bottom-right
    // position, and a softcap of 20.
    let builtin = AttentionOptions::new()
        .with_causal(true)
        .with_window(16, 0)
        .with_softcap(20.0);
    let cap = f64::from(builtin.softcap.unwrap());
    let visible = |i: usize, j: usize| {
        let p = (i + n.sk - n.sq) as i64;
        let (lo, hi) = builtin.key_bounds(p);
        lo.is_none_or(|lo| j as i64 >= lo) && hi.is_none_or(|hi| j as i64 <= hi)
    };
    let want = reference(
        n,
        [
            &widen(q.as_flattened().as_flattened().as_flattened()),
            &widen(k.as_flattened().as_flattened().as_flattened()),
            &widen(v.as_flattened().as_flattened().as_flattened()),
        ],
        f64::from((1.0 / 32f64.sqrt()) as f32),
        &|s, _, _, _, _| cap * (s / cap).tanh(),
        &|_, _, i, j| visible(i, j),
    );
    let got = widen(out.as_flattened().as_flattened().as_flattened());
    check("composed", &got, &want, F32_TOL);
    // Without the softcap the result differs: it is not a no-op at these scores.
    let uncapped = reference(
        n,
        [
            &widen(q.as_flattened().as_flattened().as_flattened()),
            &widen(k.as_flattened().as_flattened().as_flattened()),
            &widen(v.as_flattened().as_flattened().as_flattened()),
        ],
        f64::from((1.0 / 32f64.sqrt()) as f32),
        &|s, _, _, _, _| s,
        &|_, _, i, j| visible(i, j),
    );
    let diff = got.iter().zip(&uncapped).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff > 1e-3, "{diff}");
}

#[test]
fn wide_mods_in_f64() {
    let n = Dims { b: 1, h: 3, hk: 3, sq: 50, sk: 60, d: 16, dv: 8 };
    let mut q = Box::new([[[0f64; 16]; 50]; 3]);
    let mut k = Box::new([[[0f64; 16]; 60]; 3]);
    let mut v = Box::new([[[0f64; 8]; 60]; 3]);
    q.as_flattened_mut().as_flattened_mut().copy_from_slice(&values(3 * 50 * 16, 14));
    k.as_flattened_mut().as_flattened_mut().copy_from_slice(&values(3 * 60 * 16, 15));
    v.as_flattened_mut().as_flattened_mut().copy_from_slice(&values(3 * 60 * 8, 16));
    let mut w = [0f32; 60];
    put(&mut w, &values(60, 17));
    let out = mods::wide(&q, &k, &v, &w);
    let want = reference(
        n,
        [
            q.as_flattened().as_flattened(),
            k.as_flattened().as_flattened(),
            v.as_flattened().as_flattened(),
        ],
        0.25,
        &|s, _, _, i, j| s * 0.5 - (i as f64 - j as f64).abs() * 0.05 + f64::from(w[j]),
        &|_, h, _, j| (j + h) % 4 != 0 || j < 10,
    );
    check("wide (f64)", out.as_flattened().as_flattened(), &want, (1e-12, 1e-13));
}

#[test]
fn decode_path_in_bf16() {
    let n = Dims { b: 1, h: 2, hk: 1, sq: 4, sk: 64, d: 64, dv: 64 };
    let round = |x: &f64| bf16::from_f64(*x);
    let q: Vec<bf16> = values(2 * 4 * 64, 18).iter().map(round).collect();
    let k: Vec<bf16> = values(64 * 64, 19).iter().map(round).collect();
    let v: Vec<bf16> = values(64 * 64, 20).iter().map(round).collect();
    let mut qa = Box::new([[[bf16::ZERO; 64]; 4]; 2]);
    let mut ka = Box::new([[[bf16::ZERO; 64]; 64]; 1]);
    let mut va = ka.clone();
    qa.as_flattened_mut().as_flattened_mut().copy_from_slice(&q);
    ka.as_flattened_mut().as_flattened_mut().copy_from_slice(&k);
    va.as_flattened_mut().as_flattened_mut().copy_from_slice(&v);
    let doc: [i32; 64] = std::array::from_fn(|j| (j / 20) as i32);
    let out = mods::decode_bf16(&qa, &ka, &va, &doc);
    let wide = |xs: &[bf16]| xs.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let want = reference(
        n,
        [&wide(&q), &wide(&k), &wide(&v)],
        0.125,
        &|s, _, _, _, _| s,
        &|_, _, i, j| doc[j] == doc[i + 60] && j <= i + 60,
    );
    check(
        "decode (bf16)",
        &wide(out.as_flattened().as_flattened()),
        &want,
        (1.0 / 256.0, 1e-5),
    );
}
