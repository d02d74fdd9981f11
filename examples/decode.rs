//! Prefill, then a decode loop over an `attn::KvCache` (grouped-query heads, causal).
//!
//! ```text
//! cargo run --release --example decode -- [prompt_len] [new_tokens]
//! ```
//!
//! Each step appends one position's keys and values to the cache and attends over the filled
//! part through strided views (no copy of the cache). The last step is checked against the f64
//! reference on the whole sequence.

use attn::{Attention, KvCache, Tensor, options::AttentionOptions, reference};
use std::time::Instant;

/// Deterministic values in [-1, 1).
fn random(shape: &[usize], seed: u64) -> Tensor {
    Tensor::random(shape, seed).expect("a valid shape")
}

fn main() -> Result<(), attn::Error> {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().unwrap_or(0));
    let prompt = args.next().filter(|&n| n > 0).unwrap_or(512);
    let steps = args.next().filter(|&n| n > 0).unwrap_or(32);
    let (hq, hkv, d) = (12, 2, 128);
    let total = prompt + steps;
    // Every position's q, k, v, as if produced by the model.
    let q_all = random(&[1, hq, total, d], 1);
    let k_all = random(&[1, hkv, total, d], 2);
    let v_all = random(&[1, hkv, total, d], 3);
    let causal = Attention::new().causal(true);
    let mut cache = KvCache::new(1, hkv, total, d, d)?;

    let t = Instant::now();
    cache.append(&rows(&k_all, 0, prompt)?, &rows(&v_all, 0, prompt)?)?;
    let prefill_out = cache.attend(&causal, &rows(&q_all, 0, prompt)?)?;
    let prefill = t.elapsed();
    println!(
        "prefill: {prompt} tokens, {hq} query heads over {hkv} KV heads, D = {d}: {:.2} ms (out {:?})",
        prefill.as_secs_f64() * 1e3,
        prefill_out.shape()
    );

    let mut last = None;
    let t = Instant::now();
    for i in prompt..total {
        cache.append(&rows(&k_all, i, 1)?, &rows(&v_all, i, 1)?)?;
        last = Some(cache.attend(&causal, &rows(&q_all, i, 1)?)?);
    }
    let per_token = t.elapsed().as_secs_f64() / steps as f64;
    println!(
        "decode: {steps} tokens, {:.3} ms per token (cache {} / {})",
        per_token * 1e3,
        cache.len(),
        cache.capacity()
    );

    // The last decoded token against the reference over the whole sequence.
    let expected = reference::attention_with(
        &rows(&q_all, total - 1, 1)?,
        &k_all,
        &v_all,
        &AttentionOptions::new().with_causal(true).into(),
    )?;
    let c = reference::compare(&last.expect("at least one step"), &expected, 1e-4, 1e-6)?;
    println!(
        "last token vs f64 reference: max abs err {:.2e} ({})",
        c.max_abs_err,
        if c.ok { "ok" } else { "MISMATCH" }
    );
    if !c.ok {
        std::process::exit(1);
    }
    Ok(())
}

/// Positions `from..from + n` of a `[1, H, S, D]` tensor, as a strided view.
fn rows(t: &Tensor, from: usize, n: usize) -> Result<attn::TensorView<'_, f32>, attn::Error> {
    let s = t.shape();
    attn::TensorView::from_strided(
        t.as_slice(),
        &[1, s[1], n, s[3]],
        &[s[1] * s[2] * s[3], s[2] * s[3], s[3], 1],
        from * s[3],
    )
}
