//! Helpers shared by the integration tests: a seeded generator and reference comparison.
#![allow(dead_code)]

use attn::{AsTensorView, Tensor, reference};

/// A small deterministic generator (xorshift64*), so tests need no extra dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|_| self.uniform()).collect()).unwrap()
    }
}

/// Asserts `actual` matches the f64 reference within rtol 1e-4, atol 1e-6.
#[track_caller]
pub fn assert_close(actual: &impl AsTensorView<f32>, expected: &Tensor<f64>) {
    assert_close_tol(actual, expected, 1e-4, 1e-6);
}

#[track_caller]
pub fn assert_close_tol(
    actual: &impl AsTensorView<f32>,
    expected: &Tensor<f64>,
    rtol: f64,
    atol: f64,
) {
    let c = reference::compare(actual, expected, rtol, atol).expect("shapes match");
    assert!(
        c.ok,
        "mismatch: max abs err {:e}, max rel err {:e} at flat index {} (shape {:?})",
        c.max_abs_err,
        c.max_rel_err,
        c.worst_index,
        expected.shape()
    );
}
