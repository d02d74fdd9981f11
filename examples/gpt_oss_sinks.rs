//! gpt-oss style attention: a learned sink logit per query head in every layer, alternating
//! sliding-window (128 tokens) and full causal layers, grouped query heads; decoding from a long
//! `KvCache` takes the split-KV path. Checked against the f64 reference.
//!
//! ```text
//! cargo run --release --example gpt_oss_sinks
//! cargo run --release --example gpt_oss_sinks -- --context 16384
//! ```
//!
//! gpt-oss has 64 query heads over 8 key/value heads of dim 64; each head's sink `s_h` adds
//! `exp(s_h)` to its softmax denominator (attention that may go "nowhere"), and banded layers see
//! the last 128 tokens. Here 16 query heads over 2 key/value heads keep the check quick.

use attn::{Attention, KvCache, Tensor, options::AttentionOptions, reference};
use std::time::Instant;

const HEADS: usize = 16;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 64;
const BAND: usize = 128;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random(heads: usize, seq: usize, seed: u64) -> Result<Tensor, attn::Error> {
    Ok(Tensor::<f32>::random(&[1, heads, seq, HEAD_DIM], seed)?.map(|x| x * 2.0))
}

/// `out` and `lse` against the f64 reference with `sinks`.
fn check(
    (out, lse): (&Tensor, &Tensor<f32>),
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    options: AttentionOptions,
    sinks: &[f32],
) -> Result<f64, attn::Error> {
    let (want, want_lse) = reference::attention_with_lse(
        q,
        k,
        v,
        &reference::AttentionOptions {
            options,
            sinks: Some(sinks),
            ..Default::default()
        },
    )?;
    let e = reference::compare(out, &want, 0.0, 0.0)?.max_abs_err;
    let l = reference::compare(lse, &want_lse, 0.0, 0.0)?.max_abs_err;
    Ok(e.max(l * 1e-2))
}

fn main() -> Result<(), attn::Error> {
    let context = arg("--context", 6000);
    // Learned sinks, one per query head (here a spread of values around 0).
    let sinks: Vec<f32> = (0..HEADS).map(|h| (h as f32 - 8.0) * 0.4).collect();
    let banded = Attention::new()
        .causal(true)
        .window(BAND - 1, 0)
        .sinks(&sinks);
    let full = Attention::new().causal(true).sinks(&sinks);
    println!(
        "gpt-oss style attention: {HEADS} query heads over {KV_HEADS} KV heads, head dim \
         {HEAD_DIM}, sinks per head, banded ({BAND}) and full layers, context {context}"
    );
    let (k, v) = (random(KV_HEADS, context, 2)?, random(KV_HEADS, context, 3)?);
    let mut cache = KvCache::<f32>::new(1, KV_HEADS, context + 4, HEAD_DIM, HEAD_DIM)?;
    cache.append(&k, &v)?;
    let mut worst = 0.0f64;
    for step in 0..4u64 {
        let (qn, kn, vn) = (
            random(HEADS, 1, 10 + step)?,
            random(KV_HEADS, 1, 20 + step)?,
            random(KV_HEADS, 1, 30 + step)?,
        );
        cache.append(&kn, &vn)?;
        let (keys, values) = (cache.keys()?.to_tensor(), cache.values()?.to_tensor());
        for (name, layer) in [("banded", &banded), ("full", &full)] {
            let t = Instant::now();
            let (y, lse) = cache.attend_with_lse(layer, &qn)?;
            let us = t.elapsed().as_secs_f64() * 1e6;
            let err = check((&y, &lse), &qn, &keys, &values, layer.options(), &sinks)?;
            worst = worst.max(err);
            println!(
                "decode step {step}, {name:<6} layer: {} keys, {us:>7.0} us, max abs err {err:.2e}, \
                 lse of head 0 {:.4}",
                cache.len(),
                lse.as_slice()[0]
            );
        }
    }
    // A sink absorbs probability mass: with a large sink the output shrinks towards zero.
    let qn = random(HEADS, 1, 99)?;
    let big = vec![30.0f32; HEADS];
    let y = cache.attend(&Attention::new().causal(true).sinks(&big), &qn)?;
    let largest = y.as_slice().iter().fold(0.0f32, |m, x| m.max(x.abs()));
    println!("with sink logits of 30 every output is near zero: max |out| = {largest:.2e}");
    if worst > 1e-5 || largest > 1e-3 {
        eprintln!("mismatch: max abs err {worst:e}, max |out| {largest:e}");
        std::process::exit(1);
    }
    Ok(())
}
