//! Gemma 2 style local attention: a causal sliding window and logit softcapping, with grouped
//! query heads, for a prefill and a few decode steps from a `KvCache`, checked against the f64
//! reference.
//!
//! ```text
//! cargo run --release --example gemma2_local_attention
//! cargo run --release --example gemma2_local_attention -- --seq 8192 --window 4096
//! ```
//!
//! Gemma 2 alternates global layers with local ones whose tokens see the previous 4096 tokens
//! only, and caps every attention logit with `50 * tanh(s / 50)`; its query scale is
//! `1/sqrt(query_pre_attn_scalar)` (256 for the 9B model, equal to the head dim). Here 8 query
//! heads share 4 key/value heads of dim 256, and the window defaults to 512 keys (the token and
//! the 511 before it) for a 2048-token prompt, so that the check stays quick.

use attn::{Attention, KvCache, Tensor, options::AttentionOptions, reference};
use std::time::Instant;

const HEADS: usize = 8;
const KV_HEADS: usize = 4;
const HEAD_DIM: usize = 256;
const SOFTCAP: f32 = 50.0;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `[1, H, S, D]` values of unit-ish scale (Gemma's queries and keys are RMS-normalized).
fn random(heads: usize, seq: usize, seed: u64) -> Result<Tensor, attn::Error> {
    Ok(Tensor::<f32>::random(&[1, heads, seq, HEAD_DIM], seed)?.map(|x| x * 1.7))
}

/// Rows `a..b` of every head of a `[1, H, S, D]` tensor.
fn rows(t: &Tensor, a: usize, b: usize) -> Result<Tensor, attn::Error> {
    let s = t.shape();
    let v = attn::TensorView::from_strided(
        t.as_slice(),
        &[1, s[1], b - a, s[3]],
        &[s[1] * s[2] * s[3], s[2] * s[3], s[3], 1],
        a * s[3],
    )?;
    Ok(v.to_tensor())
}

/// Max abs error of `out` against the f64 reference.
fn check(
    out: &Tensor,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    options: AttentionOptions,
) -> Result<f64, attn::Error> {
    let want = reference::attention_with(q, k, v, &options.into())?;
    Ok(reference::compare(out, &want, 0.0, 0.0)?.max_abs_err)
}

fn main() -> Result<(), attn::Error> {
    let seq = arg("--seq", 2048);
    let window = arg("--window", 512);
    let steps = 4;
    // The token and the `window - 1` before it.
    let local = Attention::new()
        .causal(true)
        .window(window - 1, 0)
        .softcap(SOFTCAP)
        .scale(1.0 / (HEAD_DIM as f64).sqrt());
    println!(
        "Gemma 2 style local attention: {HEADS} query heads over {KV_HEADS} KV heads, head dim \
         {HEAD_DIM}, causal window {window}, softcap {SOFTCAP}, prompt {seq} tokens"
    );

    // Prefill: the prompt's queries against its own keys.
    let (q, k, v) = (
        random(HEADS, seq, 1)?,
        random(KV_HEADS, seq, 2)?,
        random(KV_HEADS, seq, 3)?,
    );
    let t = Instant::now();
    let out = local.run(&q, &k, &v)?;
    let prefill_ms = t.elapsed().as_secs_f64() * 1e3;
    let full = Attention::new()
        .causal(true)
        .softcap(SOFTCAP)
        .scale(1.0 / (HEAD_DIM as f64).sqrt());
    let t = Instant::now();
    std::hint::black_box(full.run(&q, &k, &v)?);
    let global_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "prefill: {prefill_ms:.1} ms with the window, {global_ms:.1} ms for global causal \
         attention (keys outside every window of a query block are never read)"
    );
    // Check the last 64 queries (they see a full window) against the reference.
    let tail = seq.saturating_sub(64);
    let err = check(
        &rows(&out, tail, seq)?,
        &rows(&q, tail, seq)?,
        &k,
        &v,
        local.options(),
    )?;
    println!("prefill max abs err vs f64 reference (last 64 queries): {err:.2e}");
    let mut worst = err;

    // Decode: append each new token's key and value, attend with the same options.
    let mut cache = KvCache::<f32>::new(1, KV_HEADS, seq + steps, HEAD_DIM, HEAD_DIM)?;
    cache.append(&k, &v)?;
    for step in 0..steps {
        let seed = 10 + 3 * step as u64;
        let (qn, kn, vn) = (
            random(HEADS, 1, seed)?,
            random(KV_HEADS, 1, seed + 1)?,
            random(KV_HEADS, 1, seed + 2)?,
        );
        cache.append(&kn, &vn)?;
        let t = Instant::now();
        let y = cache.attend(&local, &qn)?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        let err = check(
            &y,
            &qn,
            &cache.keys()?.to_tensor(),
            &cache.values()?.to_tensor(),
            local.options(),
        )?;
        println!(
            "decode step {step}: {} cached tokens, {us:.0} us, max abs err {err:.2e}",
            cache.len()
        );
        worst = worst.max(err);
    }
    if worst > 1e-5 {
        eprintln!("error {worst:e} exceeds 1e-5");
        std::process::exit(1);
    }
    Ok(())
}
