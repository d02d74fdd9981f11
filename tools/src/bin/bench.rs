//! Attention throughput on one shape, for tables and plots.
//!
//! ```text
//! cargo run --release -p attn-tools --bin bench -- --batch 1 --heads 12 --seq 2048 --dim 128 --threads 1
//! cargo run --release -p attn-tools --bin bench -- --seq 512 --dim 64 --threads 2 --json
//! cargo run --release -p attn-tools --bin bench -- --seq 512 --dim 64 --naive   # the loop pipeline
//! cargo run --release -p attn-tools --bin bench -- --heads 12 --seq 2048 --dim 128 --dtype bf16
//! cargo run --release -p attn-tools --bin bench -- --heads 8 --seq 4096 --causal --window 1023,0 --softcap 30
//! cargo run --release -p attn-tools --bin bench -- --heads 64 --kv-heads 8 --seq 1 --kv-seq 32768 --sinks --window 127,0
//! ```
//!
//! Attention variants: `--window L,R` (a sliding window, `max` for an unbounded side),
//! `--softcap C`, `--alibi` (the ALiBi paper's slopes `2^(-8h/H)`), `--sinks` (one sink logit
//! per query head), `--mask` (an additive f32 mask `[Sq, Sk]` of values in [-1, 0), the same
//! for every head); they combine with each other and with `--causal`. GFLOP/s always counts
//! the dense `4*B*H*Sq*Sk*D`, so a window shows as a higher rate.
//!
//! `--dtype f32|f64|bf16|f16` (default f32) picks the element type of q, k, v and the output;
//! the error is measured against the f64 reference of the same (rounded) inputs.
//!
//! Prints the median time per call, GFLOP/s (`4*B*H*Sq*Sk*D / t`) and the max abs error
//! against the f64 reference (checked on the first and last head). With `--json`, the last line
//! is exactly one JSON object: `{"median_ms": .., "gflops": .., "max_abs_err": .., "cpu_ms": ..}`.
//! `cpu_ms` is the median time the calling thread spent on a CPU per call (Linux:
//! `/proc/thread-self/schedstat`; `null` elsewhere): at one thread, a measure of the kernel's
//! cost that other load on the machine does not inflate (it excludes time spent waiting to run).

use attn::{
    AttentionElement, Element, Tensor, TensorView,
    half::{bf16, f16},
    reference,
};
use std::time::{Duration, Instant};

struct Args {
    batch: usize,
    heads: usize,
    kv_heads: Option<usize>,
    seq: usize,
    kv_seq: Option<usize>,
    dim: usize,
    threads: usize,
    causal: bool,
    naive: bool,
    json: bool,
    dtype: String,
    // Attention variants.
    window: Option<(usize, usize)>,
    softcap: Option<f32>,
    alibi: bool,
    sinks: bool,
    mask: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        batch: 1,
        heads: 1,
        kv_heads: None,
        seq: 512,
        kv_seq: None,
        dim: 64,
        threads: 1,
        causal: false,
        naive: false,
        json: false,
        dtype: "f32".into(),
        window: None,
        softcap: None,
        alibi: false,
        sinks: false,
        mask: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .ok_or(format!("{name} needs a value"))?
                .parse::<usize>()
                .map_err(|e| format!("{name}: {e}"))
                .and_then(|n| {
                    if n == 0 {
                        Err(format!("{name} must be positive"))
                    } else {
                        Ok(n)
                    }
                })
        };
        match flag.as_str() {
            "--batch" => a.batch = num("--batch")?,
            "--heads" => a.heads = num("--heads")?,
            "--kv-heads" => a.kv_heads = Some(num("--kv-heads")?),
            "--seq" => a.seq = num("--seq")?,
            "--kv-seq" => a.kv_seq = Some(num("--kv-seq")?),
            "--dim" => a.dim = num("--dim")?,
            "--threads" => a.threads = num("--threads")?,
            "--causal" => a.causal = true,
            "--naive" => a.naive = true,
            "--json" => a.json = true,
            "--window" => {
                let v = it.next().ok_or("--window needs L,R")?;
                let side = |x: &str| match x.trim() {
                    "max" => Ok(usize::MAX),
                    n => n.parse::<usize>().map_err(|e| format!("--window {v}: {e}")),
                };
                let (l, r) = v
                    .split_once(',')
                    .ok_or(format!("--window {v}: expected L,R"))?;
                a.window = Some((side(l)?, side(r)?));
            }
            "--softcap" => {
                let v = it.next().ok_or("--softcap needs a value")?;
                a.softcap = Some(v.parse().map_err(|e| format!("--softcap {v}: {e}"))?);
            }
            "--alibi" => a.alibi = true,
            "--sinks" => a.sinks = true,
            "--mask" => a.mask = true,
            "--dtype" => {
                a.dtype = it.next().ok_or("--dtype needs a value")?;
                if !["f32", "f64", "bf16", "f16"].contains(&a.dtype.as_str()) {
                    return Err(format!(
                        "--dtype: expected f32, f64, bf16 or f16, got {}",
                        a.dtype
                    ));
                }
            }
            "-h" | "--help" => {
                return Err("usage: bench [--batch B] [--heads H] [--kv-heads HKV] [--seq S] [--kv-seq SK] [--dim D] [--threads T] [--causal] [--window L,R] [--softcap C] [--alibi] [--sinks] [--mask] [--naive] [--dtype f32|f64|bf16|f16] [--json]".into());
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(a)
}

/// Deterministic values in [-1, 1).
fn random(shape: &[usize], seed: u64) -> Result<Tensor, attn::Error> {
    Tensor::random(shape, seed)
}

/// Head `h` of a [B, H, S, D] tensor as a [S, D] view.
fn head<'a, T: Element>(t: &'a Tensor<T>, h: usize) -> Result<TensorView<'a, T>, attn::Error> {
    let s = t.shape();
    let (rows, cols) = (s[2], s[3]);
    TensorView::from_strided(t.as_slice(), &[rows, cols], &[cols, 1], h * rows * cols)
}

/// The tutorial's loop pipeline (`attn::baseline`: linalg -> loops, no fusion or tiling), one
/// head at a time.
fn naive(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor, attn::Error> {
    let s = q.shape();
    let (heads, sq, dv) = (s[0] * s[1], s[2], v.shape()[3]);
    let mut out = Vec::with_capacity(heads * sq * dv);
    for h in 0..heads {
        let (qh, kh, vh) = (head(q, h)?, head(k, h)?, head(v, h)?);
        out.extend_from_slice(attn::baseline::attention(&qh, &kh, &vh)?.as_slice());
    }
    Tensor::from_vec(&[s[0], s[1], sq, dv], out)
}

/// The variants' per-head values: ALiBi slopes `2^(-8h/H)` and sink logits in [-1, 2].
fn per_head(heads: usize) -> (Vec<f32>, Vec<f32>) {
    let slopes = (1..=heads)
        .map(|h| 2f32.powf(-8.0 * h as f32 / heads as f32))
        .collect();
    let sinks = (0..heads).map(|h| (h % 4) as f32 - 1.0).collect();
    (slopes, sinks)
}

/// The attention options of the command line (`attn::attention` when there are none).
fn options<'a>(
    a: &Args,
    slopes: &'a [f32],
    sinks: &'a [f32],
    mask: &'a Tensor,
) -> attn::Attention<'a> {
    let mut att = attn::Attention::new().causal(a.causal);
    if a.mask {
        att = att.mask(mask);
    }
    if let Some((l, r)) = a.window {
        att = att.window(l, r);
    }
    if let Some(c) = a.softcap {
        att = att.softcap(c);
    }
    if a.alibi {
        att = att.alibi(slopes);
    }
    if a.sinks {
        att = att.sinks(sinks);
    }
    att
}

fn has_variants(a: &Args) -> bool {
    a.window.is_some() || a.softcap.is_some() || a.alibi || a.sinks || a.mask
}

fn run<T: AttentionElement>(
    a: &Args,
    att: &attn::Attention<'_>,
    q: &Tensor<T>,
    k: &Tensor<T>,
    v: &Tensor<T>,
) -> Result<Tensor<T>, attn::Error> {
    if a.naive {
        // f32 only (checked in `bench`).
        let f = |t: &Tensor<T>| t.map(|x| x.to_f64() as f32);
        let o = naive(&f(q), &f(k), &f(v))?;
        return Ok(o.map(|x| T::from_f64(f64::from(x))));
    }
    if a.causal || has_variants(a) {
        return att.run(q, k, v);
    }
    attn::attention(q, k, v)
}

/// The variants in the printed line: ` window=(L,R) softcap=C alibi sinks`.
fn variants_label(a: &Args) -> String {
    let mut s = String::new();
    if let Some((l, r)) = a.window {
        let side = |n: usize| {
            if n == usize::MAX {
                "max".to_string()
            } else {
                n.to_string()
            }
        };
        s += &format!(" window=({},{})", side(l), side(r));
    }
    if let Some(c) = a.softcap {
        s += &format!(" softcap={c}");
    }
    if a.alibi {
        s += " alibi";
    }
    if a.sinks {
        s += " sinks";
    }
    if a.mask {
        s += " mask";
    }
    s
}

/// Nanoseconds the calling thread has spent on a CPU (Linux), if readable.
fn on_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let result = match a.dtype.as_str() {
        "f64" => bench::<f64>(&a),
        "bf16" => bench::<bf16>(&a),
        "f16" => bench::<f16>(&a),
        _ => bench::<f32>(&a),
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn bench<T: AttentionElement>(a: &Args) -> Result<(), attn::Error> {
    attn::set_num_threads(a.threads);
    let sk = a.kv_seq.unwrap_or(a.seq);
    let hkv = a.kv_heads.unwrap_or(a.heads);
    if a.naive && (a.causal || has_variants(a) || hkv != a.heads || a.dtype != "f32") {
        return Err(attn::Error::Unsupported {
            op: "bench",
            message: "--naive times plain f32 attention only (no --causal, --kv-heads, --dtype, \
                      --window, --softcap, --alibi, --sinks, --mask)"
                .into(),
        });
    }
    let (slopes, sinks) = per_head(a.heads);
    let mask = if a.mask {
        random(&[a.seq, sk], 4)?.map(|x| 0.5 * x - 0.5)
    } else {
        Tensor::zeros(&[1, 1])?
    };
    let att = options(a, &slopes, &sinks, &mask);
    let convert = |t: Tensor| t.map(|x| T::from_f64(f64::from(x)));
    let q = convert(random(&[a.batch, a.heads, a.seq, a.dim], 1)?);
    let k = convert(random(&[a.batch, hkv, sk, a.dim], 2)?);
    let v = convert(random(&[a.batch, hkv, sk, a.dim], 3)?);

    // Correctness on the first and last head, against the f64 reference.
    let out = run(a, &att, &q, &k, &v)?;
    let mut max_abs_err = 0.0f64;
    let last = a.batch * a.heads - 1;
    for h in [0, last] {
        // Query head h of batch b reads key/value head (h % H) / (H / Hkv) of batch b.
        let kvh = (h / a.heads) * hkv + (h % a.heads) / (a.heads / hkv).max(1);
        let (qh, kh, vh) = (head(&q, h)?, head(&k, kvh)?, head(&v, kvh)?);
        let hh = h % a.heads;
        let options = attn::reference::AttentionOptions {
            options: att.options(),
            alibi: a.alibi.then(|| &slopes[hh..hh + 1]),
            sinks: a.sinks.then(|| &sinks[hh..hh + 1]),
            ..Default::default()
        };
        let wide = |x: TensorView<'_, T>| x.to_tensor().to_f64();
        let mask64 = mask.to_f64();
        let options = attn::reference::AttentionOptions {
            mask: a.mask.then(|| mask64.view()),
            ..options
        };
        let expected = reference::attention_with(&wide(qh), &wide(kh), &wide(vh), &options)?;
        let c = reference::compare(&head(&out, h)?, &expected, 0.0, 0.0)?;
        max_abs_err = max_abs_err.max(c.max_abs_err);
    }

    // Warm up (at least 2 calls and 0.1 s), then time samples of `inner` back-to-back calls,
    // `inner` chosen so that a sample lasts at least 10 ms (short calls are not timed one by
    // one), until about a second has passed (3 to 30 samples); report the median per call.
    let warm = Instant::now();
    let mut calls = 0u32;
    while calls < 2 || warm.elapsed() < Duration::from_millis(100) {
        std::hint::black_box(run(a, &att, &q, &k, &v)?);
        calls += 1;
    }
    let per_call = warm.elapsed().as_secs_f64() / f64::from(calls);
    let inner = ((0.01 / per_call).ceil() as usize).clamp(1, 100_000);
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (times.len() < 30 && start.elapsed() < Duration::from_secs(1)) {
        let (t, c) = (Instant::now(), on_cpu_ns());
        for _ in 0..inner {
            std::hint::black_box(run(a, &att, &q, &k, &v)?);
        }
        times.push(t.elapsed().as_secs_f64() / inner as f64);
        if let (Some(c0), Some(c1)) = (c, on_cpu_ns()) {
            cpu_times.push((c1 - c0) as f64 * 1e-9 / inner as f64);
        }
    }
    times.sort_by(f64::total_cmp);
    cpu_times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let cpu_median = (cpu_times.len() == times.len()).then(|| cpu_times[cpu_times.len() / 2]);
    let flops = 4.0 * (a.batch * a.heads * a.seq * sk * a.dim) as f64;
    let gflops = flops / median / 1e9;
    println!(
        "attention {} B={} H={} Hkv={hkv} Sq={} Sk={} D={} threads={}{}: median {:.3} ms over {} samples of {inner} calls, {:.1} GFLOP/s, max abs err {:.2e}",
        a.dtype,
        a.batch,
        a.heads,
        a.seq,
        sk,
        a.dim,
        a.threads,
        match (a.causal, a.naive) {
            (true, _) => " causal",
            (_, true) => " naive-pipeline",
            _ => "",
        }
        .to_string()
            + &variants_label(a),
        median * 1e3,
        times.len(),
        gflops,
        max_abs_err
    );
    if a.json {
        let cpu = cpu_median.map_or("null".to_string(), |c| format!("{:.6}", c * 1e3));
        println!(
            "{{\"median_ms\": {:.6}, \"gflops\": {:.3}, \"max_abs_err\": {:e}, \"cpu_ms\": {cpu}}}",
            median * 1e3,
            gflops,
            max_abs_err
        );
    }
    Ok(())
}
