//! Criterion: the AOT attention kernel against the tutorial's loop pipeline (`attn::baseline`) and
//! the naive f64 reference, S = 64..512, D = 64.
//!
//! `cargo bench -p attn-tools --bench attention`

use attn::{Tensor, reference};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Deterministic values in [-1, 1).
fn random(shape: &[usize], seed: u64) -> Tensor {
    Tensor::random(shape, seed).expect("a valid shape")
}

fn attention(c: &mut Criterion) {
    let d = 64;
    let mut group = c.benchmark_group("attention_d64");
    for s in [64usize, 128, 256, 512] {
        let (q, k, v) = (random(&[s, d], 1), random(&[s, d], 2), random(&[s, d], 3));
        // FLOPs of Q K^T and P V.
        group.throughput(Throughput::Elements((4 * s * s * d) as u64));
        group.bench_with_input(BenchmarkId::new("aot", s), &s, |b, _| {
            b.iter(|| black_box(attn::attention(&q, &k, &v).expect("valid shapes")))
        });
        group.bench_with_input(BenchmarkId::new("loop_pipeline", s), &s, |b, _| {
            b.iter(|| black_box(attn::baseline::attention(&q, &k, &v).expect("valid shapes")))
        });
        group.bench_with_input(BenchmarkId::new("naive_reference", s), &s, |b, _| {
            b.iter(|| black_box(reference::attention(&q, &k, &v, None).expect("valid shapes")))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = attention
}
criterion_main!(benches);
