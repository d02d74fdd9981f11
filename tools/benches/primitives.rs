//! Criterion: the AOT primitives (`matmul`, `softmax`) at 512x512 against the naive f64
//! reference of `attn::reference`, and softmax also against the loop pipeline
//! (`attn::baseline::softmax`) at 128, 512 and 2048.
//!
//! `cargo bench -p attn-tools --bench primitives`

use attn::{Tensor, reference};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Deterministic values in [-1, 1).
fn random(shape: &[usize], seed: u64) -> Tensor {
    Tensor::random(shape, seed).expect("a valid shape")
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    {
        let n = 512usize;
        let (a, b) = (random(&[n, n], 1), random(&[n, n], 2));
        // FLOPs: 2 M N K.
        group.throughput(Throughput::Elements((2 * n * n * n) as u64));
        group.bench_with_input(BenchmarkId::new("aot", n), &n, |bch, _| {
            bch.iter(|| black_box(attn::matmul(&a, &b).expect("valid shapes")))
        });
        group.bench_with_input(BenchmarkId::new("naive_reference", n), &n, |bch, _| {
            bch.iter(|| black_box(reference::matmul(&a, &b).expect("valid shapes")))
        });
    }
    group.finish();
}

fn softmax(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax");
    for n in [128usize, 512, 2048] {
        let x = random(&[n, n], 3);
        group.throughput(Throughput::Elements((n * n) as u64));
        group.bench_with_input(BenchmarkId::new("aot", n), &n, |bch, _| {
            bch.iter(|| black_box(attn::softmax(&x).expect("valid shape")))
        });
        group.bench_with_input(BenchmarkId::new("loops", n), &n, |bch, _| {
            bch.iter(|| black_box(attn::baseline::softmax(&x).expect("valid shape")))
        });
        group.bench_with_input(BenchmarkId::new("naive_reference", n), &n, |bch, _| {
            bch.iter(|| black_box(reference::softmax(&x).expect("valid shape")))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = matmul, softmax
}
criterion_main!(benches);
