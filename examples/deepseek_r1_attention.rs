//! One attention layer of DeepSeek-R1-Distill-Qwen-1.5B, computed with attn's AOT kernels:
//! hidden size 1536, 12 query heads over 2 key/value heads (GQA), head dim 128, rotary position
//! embedding (theta 10000), causal. Weights come from a fixed seed (no checkpoint is loaded).
//!
//! ```text
//! cargo run --release --example deepseek_r1_attention                # prefill 40 tokens + decode
//! cargo run --release --example deepseek_r1_attention -- --seq 4096 --decode 16
//! ```
//!
//! Prefill: `x [S, 1536]` -> Q/K/V projections (AOT `attn::matmul`, with biases as in Qwen2) ->
//! RoPE -> causal GQA attention (`attn::Attention`) -> output projection. Decode: one token at a
//! time, its K/V appended to an `attn::KvCache`, attention over the cache. Everything is checked
//! against the naive f64 reference path (`attn::reference`), on all rows for short sequences and
//! on the last rows for long ones. RoPE and the bias adds are elementwise glue written in the
//! example itself.

use attn::{Attention, KvCache, Tensor, TensorView, options::AttentionOptions, reference};
use std::time::Instant;

const HIDDEN: usize = 1536;
const HEADS: usize = 12;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 128;
const THETA: f64 = 10000.0;

/// Deterministic weights in [-scale, scale).
fn weights(shape: &[usize], seed: u64, scale: f32) -> Result<Tensor, attn::Error> {
    Ok(Tensor::random(shape, seed)?.map(|x: f32| x * scale))
}

struct Layer {
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
    bq: Tensor,
    bk: Tensor,
    bv: Tensor,
}

impl Layer {
    fn new() -> Result<Self, attn::Error> {
        let s = 1.0 / (HIDDEN as f32).sqrt();
        Ok(Layer {
            wq: weights(&[HIDDEN, HEADS * HEAD_DIM], 11, s)?,
            wk: weights(&[HIDDEN, KV_HEADS * HEAD_DIM], 12, s)?,
            wv: weights(&[HIDDEN, KV_HEADS * HEAD_DIM], 13, s)?,
            wo: weights(&[HEADS * HEAD_DIM, HIDDEN], 14, s)?,
            bq: weights(&[HEADS * HEAD_DIM], 15, 0.1)?,
            bk: weights(&[KV_HEADS * HEAD_DIM], 16, 0.1)?,
            bv: weights(&[KV_HEADS * HEAD_DIM], 17, 0.1)?,
        })
    }
}

/// `[S, H * D]` row-major (+ bias) -> `[1, H, S, D]` with RoPE applied from position `pos0`.
/// Rotates pairs `(i, i + D/2)` by `pos * theta^(-2i/D)`, as Qwen2 does.
fn heads_rope(
    x: &[f32],
    bias: &[f32],
    s: usize,
    h: usize,
    pos0: usize,
    rope: bool,
) -> Result<Tensor, attn::Error> {
    let d = HEAD_DIM;
    let mut out = vec![0.0f32; h * s * d];
    for t in 0..s {
        let pos = (pos0 + t) as f64;
        for hh in 0..h {
            let src = &x[t * h * d + hh * d..t * h * d + (hh + 1) * d];
            let b = &bias[hh * d..(hh + 1) * d];
            let dst = &mut out[(hh * s + t) * d..(hh * s + t + 1) * d];
            for i in 0..d / 2 {
                let (x0, x1) = (src[i] + b[i], src[i + d / 2] + b[i + d / 2]);
                if rope {
                    let angle = pos * THETA.powf(-2.0 * i as f64 / d as f64);
                    let (sin, cos) = (angle.sin() as f32, angle.cos() as f32);
                    dst[i] = x0 * cos - x1 * sin;
                    dst[i + d / 2] = x0 * sin + x1 * cos;
                } else {
                    dst[i] = x0;
                    dst[i + d / 2] = x1;
                }
            }
        }
    }
    Tensor::from_vec(&[1, h, s, d], out)
}

/// `[1, H, S, D]` -> `[S, H * D]`.
fn merge_heads(o: &Tensor) -> Result<Tensor, attn::Error> {
    let (h, s, d) = (o.shape()[1], o.shape()[2], o.shape()[3]);
    let mut out = vec![0.0f32; s * h * d];
    for hh in 0..h {
        for t in 0..s {
            out[t * h * d + hh * d..t * h * d + (hh + 1) * d]
                .copy_from_slice(&o.as_slice()[(hh * s + t) * d..(hh * s + t + 1) * d]);
        }
    }
    Tensor::from_vec(&[s, h * d], out)
}

/// The layer on `x [S, HIDDEN]` at positions `pos0..`, with AOT kernels; K/V go to `cache`.
fn forward(
    layer: &Layer,
    x: &Tensor,
    pos0: usize,
    cache: &mut KvCache,
) -> Result<Tensor, attn::Error> {
    let s = x.shape()[0];
    let q = attn::matmul(x, &layer.wq)?;
    let k = attn::matmul(x, &layer.wk)?;
    let v = attn::matmul(x, &layer.wv)?;
    let q = heads_rope(q.as_slice(), layer.bq.as_slice(), s, HEADS, pos0, true)?;
    let k = heads_rope(k.as_slice(), layer.bk.as_slice(), s, KV_HEADS, pos0, true)?;
    let v = heads_rope(v.as_slice(), layer.bv.as_slice(), s, KV_HEADS, pos0, false)?;
    cache.append(&k, &v)?;
    let o = cache.attend(&Attention::new().causal(true), &q)?;
    attn::matmul(&merge_heads(&o)?, &layer.wo)
}

/// The reference path for the last `rows` positions of a prefill of `x` (f64 accumulation).
fn reference_tail(layer: &Layer, x: &Tensor, rows: usize) -> Result<Tensor<f64>, attn::Error> {
    let s = x.shape()[0];
    let f32_of = |t: &Tensor<f64>| t.map(|v| v as f32);
    let q = f32_of(&reference::matmul(x, &layer.wq)?);
    let k = f32_of(&reference::matmul(x, &layer.wk)?);
    let v = f32_of(&reference::matmul(x, &layer.wv)?);
    let q = heads_rope(q.as_slice(), layer.bq.as_slice(), s, HEADS, 0, true)?;
    let k = heads_rope(k.as_slice(), layer.bk.as_slice(), s, KV_HEADS, 0, true)?;
    let v = heads_rope(v.as_slice(), layer.bv.as_slice(), s, KV_HEADS, 0, false)?;
    // The last `rows` queries against all keys: bottom-right causal alignment keeps their rows.
    let d = HEAD_DIM;
    let q_tail = TensorView::from_strided(
        q.as_slice(),
        &[1, HEADS, rows, d],
        &[HEADS * s * d, s * d, d, 1],
        (s - rows) * d,
    )?;
    let options = AttentionOptions::new().with_causal(true).into();
    let o = f32_of(&reference::attention_with(&q_tail, &k, &v, &options)?);
    reference::matmul(&merge_heads(&o)?, &layer.wo)
}

fn main() {
    let mut seq = 40usize;
    let mut decode = 8usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = |v: Option<String>| v.and_then(|s| s.parse::<usize>().ok()).filter(|&n| n > 0);
        match a.as_str() {
            "--seq" => seq = value(args.next()).unwrap_or_else(|| usage()),
            "--decode" => decode = value(args.next()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }
    if let Err(e) = run(seq, decode) {
        eprintln!("deepseek_r1_attention: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: deepseek_r1_attention [--seq S (1..=32768)] [--decode N]");
    std::process::exit(2);
}

fn run(seq: usize, decode: usize) -> Result<(), attn::Error> {
    if seq > 32768 {
        usage();
    }
    println!(
        "DeepSeek-R1-Distill-Qwen-1.5B attention layer: hidden {HIDDEN}, {HEADS} query heads, {KV_HEADS} KV heads, head dim {HEAD_DIM}, RoPE theta {THETA}, causal; batch 1, seq {seq}, threads {}",
        attn::num_threads()
    );
    let layer = Layer::new()?;
    let x = weights(&[seq + decode, HIDDEN], 1, 1.0)?;
    let prompt = Tensor::from_vec(&[seq, HIDDEN], x.as_slice()[..seq * HIDDEN].to_vec())?;
    let mut cache = KvCache::new(1, KV_HEADS, seq + decode, HEAD_DIM, HEAD_DIM)?;

    let t = Instant::now();
    let out = forward(&layer, &prompt, 0, &mut cache)?;
    let prefill = t.elapsed();
    println!(
        "prefill: {:.2} ms for {seq} tokens",
        prefill.as_secs_f64() * 1e3
    );

    // Check the last rows (all rows of short prompts) against the reference path.
    let rows = seq.min(16);
    let expected = reference_tail(&layer, &prompt, rows)?;
    let tail = Tensor::from_vec(
        &[rows, HIDDEN],
        out.as_slice()[(seq - rows) * HIDDEN..].to_vec(),
    )?;
    let c = reference::compare(&tail, &expected, 1e-3, 1e-4)?;
    println!(
        "prefill vs reference (last {rows} rows): max abs err {:.2e} {}",
        c.max_abs_err,
        if c.ok { "ok" } else { "MISMATCH" }
    );

    let mut times = Vec::new();
    let mut last = None;
    for i in 0..decode {
        let pos = seq + i;
        let token = Tensor::from_vec(
            &[1, HIDDEN],
            x.as_slice()[pos * HIDDEN..(pos + 1) * HIDDEN].to_vec(),
        )?;
        let t = Instant::now();
        let y = forward(&layer, &token, pos, &mut cache)?;
        times.push(t.elapsed().as_secs_f64());
        last = Some(y);
    }
    let mut ok = c.ok;
    if let Some(y) = last {
        // The last decoded token equals the last row of a prefill over every token so far.
        let all = Tensor::from_vec(&[seq + decode, HIDDEN], x.as_slice().to_vec())?;
        let expected = reference_tail(&layer, &all, 1)?;
        let c = reference::compare(&y, &expected, 1e-3, 1e-4)?;
        ok &= c.ok;
        times.sort_by(f64::total_cmp);
        println!(
            "decode: {:.3} ms per token (median of {decode}, cache of {} positions); last token vs reference: max abs err {:.2e} {}",
            times[times.len() / 2] * 1e3,
            cache.len(),
            c.max_abs_err,
            if c.ok { "ok" } else { "MISMATCH" }
        );
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
