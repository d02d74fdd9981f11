//! Declaring your own statically shaped kernels with `attn::attention!`.
//!
//! This crate's build script lists this file (`Build::file("examples/custom_kernel.rs")`), so
//! the kernels below are compiled through MLIR when the crate is built; each becomes a typed
//! function whose argument types spell the shapes.
//!
//! ```text
//! cargo run --release --example custom_kernel
//! ```

use attn::{Tensor, reference};

attn::attention! {
    /// Single-head attention over 128 tokens, head dim 64.
    pub fn window(q: [128, 64], k: [128, 64], v: [128, 64]) -> [128, 64];

    /// A composition of primitives: attention probabilities with a fixed scale.
    pub fn scores(q: [64, 32], k: [64, 32]) -> [64, 64] {
        softmax(scale(matmul(q, transpose(k)), 0.125))
    }
}

/// Fills a nested array with a deterministic pattern in [-1, 1).
fn fill<const R: usize, const C: usize>(seed: u32) -> Box<[[f32; C]; R]> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    let mut out = Box::new([[0.0f32; C]; R]);
    for row in out.iter_mut() {
        for x in row.iter_mut() {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *x = (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
        }
    }
    out
}

fn tensor<const R: usize, const C: usize>(a: &[[f32; C]; R]) -> Result<Tensor, attn::Error> {
    Tensor::from_vec(&[R, C], a.iter().flatten().copied().collect())
}

fn main() -> Result<(), attn::Error> {
    let (q, k, v) = (fill::<128, 64>(1), fill::<128, 64>(2), fill::<128, 64>(3));
    let out = window(&q, &k, &v);
    let expected = reference::attention(&tensor(&*q)?, &tensor(&*k)?, &tensor(&*v)?, None)?;
    let c = reference::compare(&tensor(&*out)?, &expected, 1e-4, 1e-6)?;
    println!(
        "window: out[0][..4] = {:?}, max abs err {:.2e}",
        &out[0][..4],
        c.max_abs_err
    );

    // The `_into` form writes into storage you own and allocates nothing.
    let mut again = Box::new([[0.0f32; 64]; 128]);
    window_into(&q, &k, &v, &mut again);
    assert_eq!(*again, *out);

    let (q, k) = (fill::<64, 32>(4), fill::<64, 32>(5));
    let p = scores(&q, &k);
    let row_sum: f32 = p[0].iter().sum();
    let expected = reference::softmax(&reference::scale(
        &reference::matmul(&tensor(&*q)?, &tensor(&*k)?.view().t()?)?,
        0.125,
    )?)?;
    let c = reference::compare(&tensor(&*p)?, &expected, 1e-4, 1e-6)?;
    println!(
        "scores: row 0 sums to {row_sum:.6}, max abs err {:.2e}",
        c.max_abs_err
    );
    Ok(())
}
