//! Declaring your own statically shaped kernels with `attn::attention!`.
//!
//! This crate's build script lists this file (`Build::file("examples/custom_kernel.rs")`), so
//! the kernels below are compiled through MLIR when the crate is built; each becomes a typed
//! function whose argument types spell the shapes.
//!
//! ```text
//! cargo run --release --example custom_kernel
//! ```

use attn::half::bf16;
use attn::{Tensor, options::AttentionOptions, reference};

attn::attention! {
    /// Single-head attention over 128 tokens, head dim 64.
    pub fn window(q: [128, 64], k: [128, 64], v: [128, 64]) -> [128, 64];

    /// A composition of primitives: attention probabilities with a fixed scale.
    pub fn scores(q: [64, 32], k: [64, 32]) -> [64, 64] {
        softmax(scale(matmul(q, transpose(k)), 0.125))
    }

    /// Causal grouped-query attention in bf16: 8 query heads over 2 key/value heads, 64 tokens,
    /// head dim 64. The arguments are `attn::half::bf16` arrays.
    #[attn(causal, kv_heads = 2, dtype = bf16)]
    pub fn gqa(q: [1, 8, 64, 64], k: [1, 2, 64, 64], v: [1, 2, 64, 64]) -> [1, 8, 64, 64];
}

type Heads<const H: usize> = [[[[bf16; 64]; 64]; H]; 1];

/// A `[1, H, 64, 64]` bf16 array of deterministic values in [-1, 1), and the same as a tensor.
fn heads<const H: usize>(seed: u64) -> Result<(Box<Heads<H>>, Tensor<bf16>), attn::Error> {
    let t = Tensor::<bf16>::random(&[1, H, 64, 64], seed)?;
    let mut a = Box::new([[[[bf16::ZERO; 64]; 64]; H]; 1]);
    a.as_flattened_mut()
        .as_flattened_mut()
        .as_flattened_mut()
        .copy_from_slice(t.as_slice());
    Ok((a, t))
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
    let expected = reference::attention(&tensor(&q)?, &tensor(&k)?, &tensor(&v)?, None)?;
    let c = reference::compare(&tensor(&out)?, &expected, 1e-4, 1e-6)?;
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
        &reference::matmul(&tensor(&q)?, &tensor(&k)?.view().t()?)?,
        0.125,
    )?)?;
    let c = reference::compare(&tensor(&p)?, &expected, 1e-4, 1e-6)?;
    println!(
        "scores: row 0 sums to {row_sum:.6}, max abs err {:.2e}",
        c.max_abs_err
    );

    // bf16 in, bf16 out: computed in f32, the output rounded once (relative error 2^-8).
    let ((q, qt), (k, kt), (v, vt)) = (heads::<8>(6)?, heads::<2>(7)?, heads::<2>(8)?);
    let out = gqa(&q, &k, &v);
    let expected = reference::attention_with(
        &qt,
        &kt,
        &vt,
        &AttentionOptions::new().with_causal(true).into(),
    )?;
    let out = Tensor::from_vec(
        &[1, 8, 64, 64],
        out.as_flattened().as_flattened().as_flattened().to_vec(),
    )?;
    let c = reference::compare(&out, &expected, 1.0 / 256.0, 1e-5)?;
    assert!(c.ok, "{c:?}");
    println!(
        "gqa (causal, bf16, 8 query heads over 2 key/value heads): max abs err {:.2e}",
        c.max_abs_err
    );
    Ok(())
}
