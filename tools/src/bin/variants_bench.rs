//! Timings of the attention variants (issue 5): causal, grouped-query causal, and decoding.
//!
//! ```text
//! cargo run --release -p attn-tools --bin variants_bench            # every case
//! cargo run --release -p attn-tools --bin variants_bench -- decode  # the cases whose name contains it
//! ```
//!
//! Prints the median of repeated calls and the dense-equivalent GFLOP/s
//! (`4 * B * Hq * Sq * Sk * D / t`), and checks one call against the f64 reference.

use attn::{Attention, Tensor, options::AttentionOptions, reference};
use std::time::{Duration, Instant};

/// Deterministic values in [-1, 1).
fn random(shape: &[usize], seed: u64) -> Tensor {
    Tensor::random(shape, seed).expect("a valid shape")
}

struct Case {
    name: &'static str,
    b: usize,
    hq: usize,
    hkv: usize,
    sq: usize,
    sk: usize,
    d: usize,
    causal: bool,
    threads: usize,
}

fn main() -> Result<(), attn::Error> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let cases = [
        Case {
            name: "dense (1,12,2048,128)",
            b: 1,
            hq: 12,
            hkv: 12,
            sq: 2048,
            sk: 2048,
            d: 128,
            causal: false,
            threads: 2,
        },
        Case {
            name: "causal (1,12,2048,128)",
            b: 1,
            hq: 12,
            hkv: 12,
            sq: 2048,
            sk: 2048,
            d: 128,
            causal: true,
            threads: 2,
        },
        Case {
            name: "gqa 12/2 causal S=1024",
            b: 1,
            hq: 12,
            hkv: 2,
            sq: 1024,
            sk: 1024,
            d: 128,
            causal: true,
            threads: 2,
        },
        Case {
            name: "decode Sk=4096 H=12",
            b: 1,
            hq: 12,
            hkv: 12,
            sq: 1,
            sk: 4096,
            d: 128,
            causal: true,
            threads: 1,
        },
        Case {
            name: "decode Sk=4096 H=12 KV=2",
            b: 1,
            hq: 12,
            hkv: 2,
            sq: 1,
            sk: 4096,
            d: 128,
            causal: true,
            threads: 1,
        },
    ];
    for c in cases.iter().filter(|c| c.name.contains(filter.as_str())) {
        attn::set_num_threads(c.threads);
        let q = random(&[c.b, c.hq, c.sq, c.d], 1);
        let k = random(&[c.b, c.hkv, c.sk, c.d], 2);
        let v = random(&[c.b, c.hkv, c.sk, c.d], 3);
        let op = Attention::new().causal(c.causal);
        let out = op.run(&q, &k, &v)?;
        // Check against the f64 reference (on the first query head's group only when large).
        let err = if c.sq * c.sk <= 1 << 22 || c.hq == 1 {
            let expected = reference::attention_with(
                &q,
                &k,
                &v,
                &AttentionOptions::new().with_causal(c.causal).into(),
            )?;
            reference::compare(&out, &expected, 1e-4, 1e-5)?.max_abs_err
        } else {
            let expected = reference::attention_with(
                &head(&q, 0)?,
                &head(&k, 0)?,
                &head(&v, 0)?,
                &AttentionOptions::new().with_causal(c.causal).into(),
            )?;
            reference::compare(&head(&out, 0)?, &expected, 1e-4, 1e-5)?.max_abs_err
        };
        for _ in 0..2 {
            std::hint::black_box(op.run(&q, &k, &v)?);
        }
        let mut times = Vec::new();
        let start = Instant::now();
        while times.len() < 5 || (times.len() < 50 && start.elapsed() < Duration::from_secs(2)) {
            let t = Instant::now();
            std::hint::black_box(op.run(&q, &k, &v)?);
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let flops = 4.0 * (c.b * c.hq * c.sq * c.sk * c.d) as f64;
        println!(
            "{:<28} threads={} median {:8.3} ms over {:2} calls, {:7.1} GFLOP/s dense-equivalent, max abs err {:.1e}",
            c.name,
            c.threads,
            median * 1e3,
            times.len(),
            flops / median / 1e9,
            err
        );
    }
    Ok(())
}

/// Head `h` of a `[B, H, S, D]` tensor as a `[S, D]` view.
fn head(t: &Tensor, h: usize) -> Result<attn::TensorView<'_, f32>, attn::Error> {
    let s = t.shape();
    attn::TensorView::from_strided(t.as_slice(), &[s[2], s[3]], &[s[3], 1], h * s[2] * s[3])
}
