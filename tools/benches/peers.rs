//! Criterion: attn next to a Rust peer, candle's CPU path (`matmul`, `softmax_last_dim`,
//! `matmul`), and the naive f64 reference, for S = 64..512 with D = 64 and one multi-head shape
//! (1 x 12 x 512 x 64).
//!
//! `cargo bench -p attn-tools --features peers --bench peers`
//!
//! Both libraries use their default threading (attn: `ATTN_NUM_THREADS` or every core; candle:
//! its `gemm` thread pool). candle is built without BLAS (default features off), which is its
//! plain CPU path. Before timing, each shape checks candle's result against attn's.

use attn::{Tensor, reference};
use candle_core::{Device, Tensor as CandleTensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Deterministic values in [-1, 1).
fn random(shape: &[usize], seed: u64) -> Tensor {
    Tensor::random(shape, seed).expect("a valid shape")
}

fn to_candle(t: &Tensor) -> CandleTensor {
    CandleTensor::from_slice(t.as_slice(), t.shape(), &Device::Cpu).expect("valid candle tensor")
}

/// `softmax(q k^T * scale) v` with candle's CPU kernels.
fn candle_attention(
    q: &CandleTensor,
    k: &CandleTensor,
    v: &CandleTensor,
    scale: f64,
) -> candle_core::Result<CandleTensor> {
    let scores = (q.matmul(&k.t()?)? * scale)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(v)
}

fn check(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) {
    let ours = attn::attention(q, k, v).expect("valid shapes");
    let theirs = candle_attention(&to_candle(q), &to_candle(k), &to_candle(v), scale)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .expect("candle runs");
    let max = ours
        .as_slice()
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-4, "candle and attn differ by {max}");
}

fn bench_shape(
    c: &mut Criterion,
    group: &str,
    shape: &[usize],
    sizes: &[usize],
    reference_too: bool,
) {
    let mut g = c.benchmark_group(group);
    for &s in sizes {
        let mut dims = shape.to_vec();
        let r = dims.len();
        dims[r - 2] = s;
        let d = dims[r - 1];
        let lead: usize = dims[..r - 2].iter().product();
        let (q, k, v) = (random(&dims, 1), random(&dims, 2), random(&dims, 3));
        let scale = 1.0 / (d as f64).sqrt();
        check(&q, &k, &v, scale);
        let (cq, ck, cv) = (to_candle(&q), to_candle(&k), to_candle(&v));
        // FLOPs of Q K^T and P V.
        g.throughput(Throughput::Elements((4 * lead * s * s * d) as u64));
        g.bench_with_input(BenchmarkId::new("attn", s), &s, |b, _| {
            b.iter(|| black_box(attn::attention(&q, &k, &v).expect("valid shapes")))
        });
        g.bench_with_input(BenchmarkId::new("candle", s), &s, |b, _| {
            b.iter(|| black_box(candle_attention(&cq, &ck, &cv, scale).expect("candle runs")))
        });
        if reference_too {
            g.bench_with_input(BenchmarkId::new("naive_reference", s), &s, |b, _| {
                b.iter(|| black_box(reference::attention(&q, &k, &v, None).expect("valid shapes")))
            });
        }
    }
    g.finish();
}

fn peers(c: &mut Criterion) {
    bench_shape(c, "peers_d64", &[0, 64], &[64, 128, 256, 512], true);
    bench_shape(c, "peers_1x12xSx64", &[1, 12, 0, 64], &[512], false);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = peers
}
criterion_main!(benches);
