//! Score and mask mods compiled into the fused kernel, and the tutorial's composition fused by
//! `fuse-attention`, at S = 2048, H = 8, D = 64 on one thread: each kernel is checked against
//! attn's f64 reference (on one head) and timed against the dense kernel. A mask's kernel runs in
//! time proportional to the blocks it leaves visible.
//!
//! This crate's build script lists this file (`Build::file("examples/mods.rs")`).
//!
//! ```text
//! cargo run --release --example mods [-- --rounds 7]
//! ```

use attn::{Tensor, reference};
use std::time::Instant;

attn::attention! {
    /// Dense attention: the baseline.
    pub fn dense(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64];

    /// The built-in causal option.
    #[attn(causal)]
    pub fn causal(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64];

    /// Prefix-LM: the first 64 positions see each other; the rest are causal.
    pub fn prefix_lm(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64] {
        attention(q, k, v, mask_mod = |b, h, i, j| j <= i || j < 64)
    }

    /// Document masking by a table of document ids (blocks classified in the kernel).
    pub fn docs(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64], doc: [2048] as i32) -> [8, 2048, 64] {
        attention(q, k, v, mask_mod = |b, h, i, j| doc[i] == doc[j])
    }

    /// Four documents of 512 tokens, by index (blocks classified at build time).
    pub fn docs_by_index(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64] {
        attention(q, k, v, mask_mod = |b, h, i, j| i / 512 == j / 512)
    }

    /// A relative-position bias per head (a score mod reading a table).
    pub fn relpos(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64], bias: [8, 4095]) -> [8, 2048, 64] {
        attention(q, k, v, score_mod = |s, b, h, i, j| s + bias[h][j - i + 2047])
    }

    /// The tutorial's composition: fused into one attention by the compiler.
    pub fn tutorial(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64] {
        matmul(softmax(scale(matmul(q, transpose(k)), 0.125)), v)
    }
}

const H: usize = 8;
const S: usize = 2048;
const D: usize = 64;
type Heads = [[[f32; D]; S]; H];

/// A boxed `[H, S, D]` array of zeros (built on the heap).
fn zeroed() -> Box<Heads> {
    vec![[[0f32; D]; S]; H]
        .into_boxed_slice()
        .try_into()
        .expect("H heads")
}

/// A boxed `[H, S, D]` array of deterministic values in [-1, 1).
fn heads(seed: u64) -> Result<Box<Heads>, attn::Error> {
    let t = Tensor::<f32>::random(&[H, S, D], seed)?;
    let mut a = zeroed();
    a.as_flattened_mut()
        .as_flattened_mut()
        .copy_from_slice(t.as_slice());
    Ok(a)
}

/// Head 0 of a `[H, S, D]` array as a tensor.
fn head0(a: &Heads) -> Result<Tensor, attn::Error> {
    Tensor::from_vec(&[S, D], a[0].as_flattened().to_vec())
}

/// The max abs error of head 0 of `out` against the f64 reference, with an additive mask that
/// is `bias(i, j)` where `keep(i, j)` and `-inf` elsewhere.
fn error(
    [q, k, v]: [&Heads; 3],
    out: &Heads,
    keep: &dyn Fn(usize, usize) -> bool,
    bias: &dyn Fn(usize, usize) -> f32,
) -> Result<f64, attn::Error> {
    let mut m = vec![0f32; S * S];
    for (x, mx) in m.iter_mut().enumerate() {
        let (i, j) = (x / S, x % S);
        *mx = if keep(i, j) {
            bias(i, j)
        } else {
            f32::NEG_INFINITY
        };
    }
    let mask = Tensor::from_vec(&[S, S], m)?;
    let want = reference::attention_with(
        &head0(q)?,
        &head0(k)?,
        &head0(v)?,
        &reference::AttentionOptions {
            mask: Some(mask.view()),
            ..Default::default()
        },
    )?;
    let got = head0(out)?;
    Ok(reference::compare(&got, &want, 1e-4, 1e-6)?.max_abs_err)
}

fn main() -> Result<(), attn::Error> {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let (q, k, v) = (heads(1)?, heads(2)?, heads(3)?);
    let doc: [i32; S] = std::array::from_fn(|i| (i / 512) as i32);
    let mut bias = Box::new([[0f32; 4095]; H]);
    for (h, row) in bias.iter_mut().enumerate() {
        for (d, x) in row.iter_mut().enumerate() {
            *x = 0.5 * ((d as f32 - 2047.0) / 300.0).sin() * (h as f32 + 1.0) / 8.0;
        }
    }
    let mut out = zeroed();
    type Case<'a> = (&'a str, Box<dyn Fn(&mut Heads) + 'a>, f64);
    let cases: Vec<Case> = vec![
        ("dense", Box::new(|o| dense_into(&q, &k, &v, o)), 1.0),
        ("causal", Box::new(|o| causal_into(&q, &k, &v, o)), 0.5),
        (
            "prefix_lm",
            Box::new(|o| prefix_lm_into(&q, &k, &v, o)),
            0.5,
        ),
        ("docs", Box::new(|o| docs_into(&q, &k, &v, &doc, o)), 0.25),
        (
            "docs_by_index",
            Box::new(|o| docs_by_index_into(&q, &k, &v, o)),
            0.25,
        ),
        (
            "relpos",
            Box::new(|o| relpos_into(&q, &k, &v, &bias, o)),
            1.0,
        ),
        ("tutorial", Box::new(|o| tutorial_into(&q, &k, &v, o)), 1.0),
    ];
    // Correctness first (head 0 against the f64 reference).
    let all = |_: usize, _: usize| true;
    let none = |_: usize, _: usize| 0.0;
    for (name, run, _) in &cases {
        run(&mut out);
        let err = match *name {
            "causal" => error([&q, &k, &v], &out, &|i, j| j <= i, &none)?,
            "prefix_lm" => error([&q, &k, &v], &out, &|i, j| j <= i || j < 64, &none)?,
            "docs" | "docs_by_index" => {
                error([&q, &k, &v], &out, &|i, j| i / 512 == j / 512, &none)?
            }
            "relpos" => error([&q, &k, &v], &out, &all, &|i, j| bias[0][j + 2047 - i])?,
            _ => error([&q, &k, &v], &out, &all, &none)?,
        };
        println!("{name:>14}: max abs error vs f64 reference (head 0) {err:.2e}");
        assert!(err < 1e-5, "{name}: {err}");
    }
    // Timing: rounds interleaved over the kernels, medians.
    let mut times = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (t, (_, run, _)) in times.iter_mut().zip(&cases) {
            let t0 = Instant::now();
            run(&mut out);
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let median = |t: &mut Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let medians: Vec<f64> = times.iter_mut().map(median).collect();
    let flops = 4.0 * (H * S * S * D) as f64;
    println!("\nS = {S}, H = {H}, D = {D}, f32, one thread, median of {rounds} rounds");
    println!(
        "{:>14} {:>9} {:>10} {:>11} {:>14}",
        "kernel", "visible", "ms", "vs dense", "GFLOP/s (dense-eq.)"
    );
    for ((name, _, visible), ms) in cases.iter().zip(&medians) {
        println!(
            "{name:>14} {:>8.0}% {ms:>10.2} {:>10.2}x {:>14.1}",
            visible * 100.0,
            medians[0] / ms,
            flops / ms / 1e6
        );
    }
    Ok(())
}
