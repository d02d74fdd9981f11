//! Helpers shared by the integration tests (`tests/integration/`, `tests/ndarray.rs`): a seeded
//! generator, reference comparison, and running a test alone in a process of its own.
#![allow(dead_code)]

use attn::{AsTensorView, Tensor, TensorView, options::AttentionOptions, reference};

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

/// Runs the calling test alone, in a child process of this test binary, and tells the caller
/// whether to run the test's body: `true` in that child, `false` in the parent once the child
/// passed (it panics with the child's output if not).
///
/// The tests of a binary run on parallel threads of one process. A test that changes
/// process-wide state that other tests' results depend on, bit for bit (`attn::isa::force`),
/// or whose assertions see every other thread's effect on the process (the thread pools that
/// a changed `attn::set_num_threads` creates, counted as allocations), runs alone this way.
/// `module` is the test's `module_path!()`, `name` its function name.
pub fn alone(module: &str, name: &str) -> bool {
    const CHILD: &str = "ATTN_TEST_ALONE";
    // The harness's name of the test: its module path without the crate.
    let test = match module.split_once("::") {
        Some((_, m)) => format!("{m}::{name}"),
        None => name.to_string(),
    };
    if std::env::var_os(CHILD).is_some_and(|t| t == *test) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([&test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, &test)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} failed in its own process:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// The f64 reference of f32 attention with the causal option, an optional additive mask and
/// optional key padding.
pub fn reference_with(
    q: &impl attn::AsTensorView<f32>,
    k: &impl attn::AsTensorView<f32>,
    v: &impl attn::AsTensorView<f32>,
    causal: bool,
    mask: Option<TensorView<'_, f32>>,
    key_padding: Option<&[bool]>,
) -> Tensor<f64> {
    reference::attention_with(
        q,
        k,
        v,
        &reference::AttentionOptions {
            options: AttentionOptions::new().with_causal(causal),
            mask,
            key_padding,
            ..Default::default()
        },
    )
    .unwrap()
}
