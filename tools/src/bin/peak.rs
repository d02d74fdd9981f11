//! The machine's single-core fp32 FMA peak and read bandwidth, for marking them in the
//! performance tables and plot.
//!
//! Runs 12 independent chains of 8-lane (AVX2) fused multiply-adds, and 16-lane ones where
//! AVX-512 is available; prints GFLOP/s per core (best of several runs). Then reads a 48 MiB
//! buffer (the K/V of one decoding step at 4096 keys, 12 heads, head dim 128, f32: what the
//! decode benchmarks stream) and a 1 GiB one (main memory) on one thread, best of several passes,
//! in GB/s. With `--json`, one JSON object on the last line:
//! `{"peak_gflops_1core": .., "isa": "..", "read_gbs_48mib": .., "read_gbs_1gib": ..}`.

use std::time::Instant;

#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::*;

    /// `iters` rounds of 12 independent 8-lane FMAs; returns a value depending on all of them.
    #[target_feature(enable = "avx2,fma")]
    pub fn avx2(iters: usize) -> f32 {
        let mut acc = [_mm256_set1_ps(0.0); 12];
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut sum = _mm256_setzero_ps();
        for x in acc {
            sum = _mm256_add_ps(sum, x);
        }
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds 8 f32, the width of the store.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
        out.iter().sum()
    }

    /// `iters` rounds of 16 independent 16-lane FMAs.
    #[target_feature(enable = "avx512f")]
    pub fn avx512(iters: usize) -> f32 {
        let mut acc = [_mm512_set1_ps(0.0); 16];
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        let mut sum = _mm512_setzero_ps();
        for x in acc {
            sum = _mm512_add_ps(sum, x);
        }
        _mm512_reduce_add_ps(sum)
    }
}

/// Best read bandwidth (GB/s) of one thread summing `bytes` of memory, over `passes` passes
/// (eight independent accumulators, so the loop is bound by the loads, not by the adds).
fn read_bandwidth(bytes: usize, passes: usize) -> f64 {
    let words = bytes / 8;
    let buf: Vec<u64> = (0..words as u64).collect();
    let mut best = 0.0f64;
    for _ in 0..passes {
        let t = Instant::now();
        let mut acc = [0u64; 8];
        for chunk in buf.chunks_exact(8) {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a = a.wrapping_add(x);
            }
        }
        std::hint::black_box(acc);
        best = best.max(bytes as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

fn best_of(runs: usize, flops: f64, mut f: impl FnMut() -> f32) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.max(flops / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let iters = 20_000_000usize;
    let (mut peak, mut isa) = (0.0, "none");
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the function's target features (checked above).
            peak = best_of(7, (iters * 12 * 8 * 2) as f64, || unsafe {
                fma::avx2(iters)
            });
            isa = "avx2";
            println!("AVX2 (ymm) FMA peak, 1 core: {peak:.1} GFLOP/s");
        }
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the function's target features (checked above).
            let p = best_of(7, (iters * 16 * 16 * 2) as f64, || unsafe {
                fma::avx512(iters)
            });
            println!("AVX-512 (zmm) FMA peak, 1 core: {p:.1} GFLOP/s");
            if p > peak {
                (peak, isa) = (p, "avx512");
            }
        }
    }
    let l3 = read_bandwidth(48 << 20, 20);
    println!("read bandwidth, 1 thread, 48 MiB: {l3:.1} GB/s");
    let dram = read_bandwidth(1 << 30, 4);
    println!("read bandwidth, 1 thread, 1 GiB: {dram:.1} GB/s");
    if json {
        println!(
            "{{\"peak_gflops_1core\": {peak:.2}, \"isa\": \"{isa}\", \"read_gbs_48mib\": {l3:.2}, \"read_gbs_1gib\": {dram:.2}}}"
        );
    }
}
