//! The main job: attention computed by AOT-compiled MLIR kernels, checked against the naive
//! f64 reference.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use attn::{Tensor, reference};
use std::time::Instant;

fn show(name: &str, t: &Tensor) {
    let cols = *t.shape().last().unwrap_or(&1);
    println!("{name} {:?}:", t.shape());
    let rows = t.as_slice().chunks(cols);
    let n = rows.len();
    for (i, row) in rows.enumerate() {
        if n > 6 && (3..n - 2).contains(&i) {
            if i == 3 {
                println!("  ... ({} more rows)", n - 5);
            }
            continue;
        }
        let cells: Vec<String> = row.iter().take(6).map(|x| format!("{x:8.4}")).collect();
        let more = if row.len() > 6 {
            format!(" ... ({} more)", row.len() - 6)
        } else {
            String::new()
        };
        println!("  [{}{more}]", cells.join(", "));
    }
}

/// Deterministic values in [-1, 1).
fn random(shape: &[usize], seed: u64) -> Result<Tensor, attn::Error> {
    Tensor::random(shape, seed)
}

fn max_error(out: &Tensor, expected: &Tensor<f64>) -> Result<f64, attn::Error> {
    Ok(reference::compare(out, expected, 1e-4, 1e-6)?.max_abs_err)
}

fn main() -> Result<(), attn::Error> {
    // The worked example: four 3-dim tokens attending to themselves.
    let q = Tensor::from_vec(
        &[4, 3],
        vec![1., 0., 0., 0., 1., 0., 0., 0., 1., 0.3, 0.3, 0.3],
    )?;
    let v = Tensor::from_vec(&[4, 2], vec![1., 2., 3., 4., 5., 6., 7., 8.])?;
    let out = attn::attention(&q, &q, &v)?;
    println!("== worked example: softmax(Q K^T / sqrt(3)) V with K = Q ==");
    show("output", &out);
    let err = max_error(&out, &reference::attention(&q, &q, &v, None)?)?;
    println!("max abs error vs f64 reference: {err:.3e}\n");

    // A random 512 x 64 problem.
    let (s, d) = (512, 64);
    let (q, k, v) = (
        random(&[s, d], 1)?,
        random(&[s, d], 2)?,
        random(&[s, d], 3)?,
    );
    let out = attn::attention(&q, &k, &v)?;
    println!("== random attention, Q, K, V of shape [{s}, {d}] ==");
    show("output", &out);
    let expected = reference::attention(&q, &k, &v, None)?;
    println!(
        "max abs error vs f64 reference: {:.3e}",
        max_error(&out, &expected)?
    );

    let mut times = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        std::hint::black_box(attn::attention(&q, &k, &v)?);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let gflops = 4.0 * (s * s * d) as f64 / median / 1e9;
    println!(
        "time per call: {:.3} ms (median of {}), {gflops:.2} GFLOP/s",
        median * 1e3,
        times.len()
    );
    let t = Instant::now();
    std::hint::black_box(reference::attention(&q, &k, &v, None)?);
    println!(
        "naive f64 reference: {:.3} ms (one call)",
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
