//! The baseline every speed claim is measured against: attention (and the softmax primitive)
//! compiled through the MLIR tutorial's route only (transformer -> linalg named/generic ops ->
//! bufferization -> plain loops -> LLVM), without the fused, register-tiled kernels that
//! [`crate::attention()`] and [`crate::softmax()`] use.
//!
//! ```
//! let q = attn::Tensor::full(&[4, 8], 0.5)?;
//! let fast = attn::attention(&q, &q, &q)?;
//! let slow = attn::baseline::attention(&q, &q, &q)?;
//! assert!(attn::reference::compare(&slow, &fast.to_f64(), 1e-4, 1e-6)?.ok);
//! # Ok::<(), attn::Error>(())
//! ```

use crate::kernels;
use attn_runtime::{AsTensorView, DynMemRef, Error, Tensor, TensorView, shape};

/// `softmax(q k^T / sqrt(D)) v` for q `[Sq, D]`, k `[Sk, D]`, v `[Sk, Dv]` through the loop
/// pipeline (materializes the `[Sq, Sk]` scores). Same checks and errors as [`crate::attention()`].
pub fn attention(
    q: &impl AsTensorView<f32>,
    k: &impl AsTensorView<f32>,
    v: &impl AsTensorView<f32>,
) -> Result<Tensor, Error> {
    let (q, k, v) = (
        q.try_as_tensor_view()?,
        k.try_as_tensor_view()?,
        v.try_as_tensor_view()?,
    );
    let out_shape = shape::attention(q.shape(), k.shape(), v.shape())?;
    if q.rank() != 2 {
        return Err(Error::InvalidRank {
            op: "baseline::attention",
            arg: "q",
            shape: q.shape().to_vec(),
            expected: "rank 2".into(),
        });
    }
    for (arg, view) in [("q", &q), ("k", &k), ("v", &v)] {
        shape::check_nonempty("baseline::attention", arg, view.shape())?;
    }
    let scale = 1.0 / (q.shape()[1] as f32).sqrt();
    let s = TensorView::new(std::slice::from_ref(&scale), &[])?;
    let mut out = Tensor::zeros(&out_shape)?;
    let mut o = out.view_mut();
    kernels::ATTENTION_LOOPS_R2.launch(&mut [
        DynMemRef::input(&q)?,
        DynMemRef::input(&k)?,
        DynMemRef::input(&v)?,
        DynMemRef::input(&s)?,
        DynMemRef::output(&mut o)?,
    ])?;
    Ok(out)
}

/// Softmax over the last dim of a rank-2 `x` through the loop pipeline (a max reduction,
/// `exp(x - max)`, a sum reduction and a division, each a plain loop nest). Same result as
/// [`crate::softmax()`] up to rounding.
///
/// ```
/// let x = attn::Tensor::random(&[3, 5], 7)?;
/// let fast = attn::softmax(&x)?;
/// let slow = attn::baseline::softmax(&x)?;
/// assert!(attn::reference::compare(&slow, &fast.to_f64(), 1e-5, 1e-6)?.ok);
/// # Ok::<(), attn::Error>(())
/// ```
pub fn softmax(x: &impl AsTensorView<f32>) -> Result<Tensor, Error> {
    let x = x.try_as_tensor_view()?;
    let out_shape = shape::softmax(x.shape())?;
    if x.rank() != 2 {
        return Err(Error::InvalidRank {
            op: "baseline::softmax",
            arg: "x",
            shape: x.shape().to_vec(),
            expected: "rank 2".into(),
        });
    }
    let mut out = Tensor::zeros(&out_shape)?;
    if out.is_empty() {
        return Ok(out);
    }
    let mut o = out.view_mut();
    kernels::SOFTMAX_LOOPS_R2.launch(&mut [DynMemRef::input(&x)?, DynMemRef::output(&mut o)?])?;
    Ok(out)
}
