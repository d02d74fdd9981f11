//! The softmax primitive against the loop pipeline, side by side: `attn::softmax` and
//! `attn::baseline::softmax` (the same graph through `Codegen::Loops`) on `[rows, cols]` f32,
//! the calls in alternating blocks so that both see the same machine load.
//!
//! ```text
//! cargo run --release -p attn-tools --bin softmax_bench              # 128x128, 512x512, 2048x2048
//! cargo run --release -p attn-tools --bin softmax_bench -- 512 64x4096 --reps 400
//! cargo run --release -p attn-tools --bin softmax_bench -- 512 --attn-only   # for a profiler
//! ```
//!
//! Prints, per size, the median time per call of each and their ratio, and the max abs
//! difference between the two outputs.
//!
//! The loop pipeline allocates `[rows, cols]` temporaries on every call; whether glibc hands
//! them back to the kernel between calls (so that every call page-faults them in again) depends
//! on the heap's history, and changes its time by up to 2x. For steady numbers, fix the malloc
//! thresholds: `GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=1073741824`.

use attn::Tensor;
use std::time::Instant;

/// Calls per block; the blocks of the two alternate.
const BLOCK: usize = 5;

fn main() {
    let mut sizes = Vec::new();
    let mut reps: Option<usize> = None;
    let mut attn_only = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => reps = it.next().and_then(|r| r.parse().ok()),
            "--attn-only" => attn_only = true,
            "-h" | "--help" => {
                println!("usage: softmax_bench [N | RxC ...] [--reps R] [--attn-only]");
                return;
            }
            size => {
                // `N` (an N x N input) or `RxC`.
                let dims: Vec<usize> = size.split('x').filter_map(|d| d.parse().ok()).collect();
                match dims[..] {
                    [n] if n > 0 => sizes.push((n, n)),
                    [r, c] if r > 0 && c > 0 && size.split('x').count() == 2 => sizes.push((r, c)),
                    _ => {
                        eprintln!("not a size: `{size}` (see --help)");
                        std::process::exit(2);
                    }
                }
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![(128, 128), (512, 512), (2048, 2048)];
    }
    println!(
        "{:>10} {:>7} {:>14} {:>14} {:>8} {:>10}",
        "shape", "reps", "attn median", "loops median", "ratio", "max diff"
    );
    for (rows, cols) in sizes {
        let x = Tensor::random(&[rows, cols], 3).expect("a valid shape");
        // About 0.5 s of loop-pipeline calls (its time is about 10 ns per element).
        let reps = reps.unwrap_or_else(|| (50_000_000 / (rows * cols)).clamp(10, 2000));
        let fast = attn::softmax(&x).expect("softmax");
        let slow = attn::baseline::softmax(&x).expect("baseline softmax");
        let diff = fast
            .as_slice()
            .iter()
            .zip(slow.as_slice())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let (mut ta, mut tl) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
        // Alternating blocks of calls: each block runs warm (like a benchmark loop), and both
        // sides see the same load over the run.
        for _ in 0..reps.div_ceil(BLOCK) {
            for _ in 0..BLOCK {
                let t = Instant::now();
                std::hint::black_box(attn::softmax(&x).expect("softmax"));
                ta.push(t.elapsed().as_secs_f64());
            }
            for _ in 0..BLOCK {
                if attn_only {
                    tl.push(f64::NAN);
                    continue;
                }
                let t = Instant::now();
                std::hint::black_box(attn::baseline::softmax(&x).expect("baseline softmax"));
                tl.push(t.elapsed().as_secs_f64());
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (a, l) = (median(&mut ta), median(&mut tl));
        println!(
            "{:>10} {reps:>7} {:>11.1} us {:>11.1} us {:>7.1}x {diff:>10.1e}",
            format!("{rows}x{cols}"),
            a * 1e6,
            l * 1e6,
            l / a
        );
    }
}
