//! Safe wrappers over the AOT kernels: shape checks, output allocation, descriptor building and
//! the kernel launch.

use crate::{Attention, AttentionElement, kernels};
use attn_runtime::{
    AsTensorView, DynMemRef, Error, Tensor, TensorView, TensorViewMut, ffi::Kernel, shape,
};

fn pick(
    op: &'static str,
    arg: &'static str,
    shape: &[usize],
    table: &[(usize, &'static Kernel)],
) -> Result<&'static Kernel, Error> {
    let rank = shape.len();
    table
        .iter()
        .find(|(r, _)| *r == rank)
        .map(|(_, k)| *k)
        .ok_or_else(|| Error::InvalidRank {
            op,
            arg,
            shape: shape.to_vec(),
            expected: format!(
                "rank {}",
                table
                    .iter()
                    .map(|(r, _)| r.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        })
}

fn scalar_view(value: &f32) -> TensorView<'_, f32> {
    TensorView::new(std::slice::from_ref(value), &[])
        .expect("a rank-0 view of one element is valid")
}

/// Runs a one-input kernel into a freshly allocated output.
fn unary(kernel: &Kernel, x: TensorView<'_, f32>, out_shape: &[usize]) -> Result<Tensor, Error> {
    let mut out = Tensor::zeros(out_shape)?;
    if out.is_empty() {
        return Ok(out);
    }
    let mut o = out.view_mut();
    kernel.launch(&mut [DynMemRef::input(&x)?, DynMemRef::output(&mut o)?])?;
    Ok(out)
}

/// Runs a two-input kernel into a freshly allocated output.
fn binary(
    kernel: &Kernel,
    a: TensorView<'_, f32>,
    b: TensorView<'_, f32>,
    out_shape: &[usize],
) -> Result<Tensor, Error> {
    let mut out = Tensor::zeros(out_shape)?;
    if out.is_empty() || a.is_empty() || b.is_empty() {
        // Empty operands: the result is empty, or (matmul with K = 0) all zeros.
        return Ok(out);
    }
    let mut o = out.view_mut();
    kernel.launch(&mut [
        DynMemRef::input(&a)?,
        DynMemRef::input(&b)?,
        DynMemRef::output(&mut o)?,
    ])?;
    Ok(out)
}

/// Matrix product `a b`: `[M, K] x [K, N] -> [M, N]`, or batched `[B, M, K] x [B, K, N]`.
///
/// ```
/// let a = attn::Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0])?;
/// let i = attn::Tensor::from_vec(&[2, 2], vec![1.0, 0.0, 0.0, 1.0])?;
/// assert_eq!(attn::matmul(&a, &i)?.as_slice(), a.as_slice());
/// # Ok::<(), attn::Error>(())
/// ```
pub fn matmul(a: &impl AsTensorView<f32>, b: &impl AsTensorView<f32>) -> Result<Tensor, Error> {
    let (a, b) = (a.try_as_tensor_view()?, b.try_as_tensor_view()?);
    let out = shape::matmul(a.shape(), b.shape())?;
    let k = pick(
        "matmul",
        "a",
        a.shape(),
        &[(2, &kernels::MATMUL_R2), (3, &kernels::MATMUL_R3)],
    )?;
    binary(k, a, b, &out)
}

/// Swaps the last two dimensions (rank 2 to 4).
pub fn transpose(x: &impl AsTensorView<f32>) -> Result<Tensor, Error> {
    let x = x.try_as_tensor_view()?;
    let out = shape::transpose(x.shape())?;
    let k = pick(
        "transpose",
        "x",
        x.shape(),
        &[
            (2, &kernels::TRANSPOSE_R2),
            (3, &kernels::TRANSPOSE_R3),
            (4, &kernels::TRANSPOSE_R4),
        ],
    )?;
    unary(k, x, &out)
}

/// Numerically stable softmax over the last dimension (rank 1 to 4).
pub fn softmax(x: &impl AsTensorView<f32>) -> Result<Tensor, Error> {
    let x = x.try_as_tensor_view()?;
    let out = shape::softmax(x.shape())?;
    let k = pick(
        "softmax",
        "x",
        x.shape(),
        &[
            (1, &kernels::SOFTMAX_R1),
            (2, &kernels::SOFTMAX_R2),
            (3, &kernels::SOFTMAX_R3),
            (4, &kernels::SOFTMAX_R4),
        ],
    )?;
    unary(k, x, &out)
}

/// Elementwise sum of two tensors of the same shape (rank 1 to 4).
pub fn add(a: &impl AsTensorView<f32>, b: &impl AsTensorView<f32>) -> Result<Tensor, Error> {
    elementwise(
        "add",
        a.try_as_tensor_view()?,
        b.try_as_tensor_view()?,
        &[
            (1, &kernels::ADD_R1),
            (2, &kernels::ADD_R2),
            (3, &kernels::ADD_R3),
            (4, &kernels::ADD_R4),
        ],
    )
}

/// Elementwise product of two tensors of the same shape (rank 1 to 4).
pub fn mul(a: &impl AsTensorView<f32>, b: &impl AsTensorView<f32>) -> Result<Tensor, Error> {
    elementwise(
        "mul",
        a.try_as_tensor_view()?,
        b.try_as_tensor_view()?,
        &[
            (1, &kernels::MUL_R1),
            (2, &kernels::MUL_R2),
            (3, &kernels::MUL_R3),
            (4, &kernels::MUL_R4),
        ],
    )
}

fn elementwise(
    op: &'static str,
    a: TensorView<'_, f32>,
    b: TensorView<'_, f32>,
    table: &[(usize, &'static Kernel)],
) -> Result<Tensor, Error> {
    if a.shape() != b.shape() {
        return Err(Error::ShapeMismatch {
            op,
            message: format!(
                "a has shape {:?} and b has shape {:?}; they must be equal",
                a.shape(),
                b.shape()
            ),
        });
    }
    let out = shape::elementwise(op, a.shape(), b.shape())?;
    let k = pick(op, "a", a.shape(), table)?;
    binary(k, a, b, &out)
}

/// Multiplies every element by `factor` (rank 1 to 4).
pub fn scale(x: &impl AsTensorView<f32>, factor: f32) -> Result<Tensor, Error> {
    let x = x.try_as_tensor_view()?;
    let k = pick(
        "scale",
        "x",
        x.shape(),
        &[
            (1, &kernels::SCALE_R1),
            (2, &kernels::SCALE_R2),
            (3, &kernels::SCALE_R3),
            (4, &kernels::SCALE_R4),
        ],
    )?;
    binary(k, x, scalar_view(&factor), x.shape())
}

/// Scaled dot-product attention `softmax(q k^T / sqrt(D)) v`.
///
/// Shapes: q `[Sq, D]`, k `[Sk, D]`, v `[Sk, Dv]` gives `[Sq, Dv]`; also `[H, S, D]` and
/// `[B, H, S, D]`, where k and v may have fewer heads than q (grouped-query attention, see
/// [`crate::Attention`], which also has causal masking, masks and key padding).
/// All sizes must be positive.
///
/// ```
/// use attn::Tensor;
/// let q = Tensor::from_vec(&[1, 2], vec![1.0, 0.0])?;
/// let k = Tensor::from_vec(&[3, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0])?;
/// let v = Tensor::from_vec(&[3, 1], vec![1.0, 2.0, 3.0])?;
/// let o = attn::attention(&q, &k, &v)?;
/// assert_eq!(o.shape(), &[1, 1]);
///
/// // A wrong shape is an error that names the arguments.
/// let bad = Tensor::from_vec(&[3, 3], vec![0.0; 9])?;
/// let e = attn::attention(&q, &bad, &v).unwrap_err();
/// assert!(e.to_string().contains("k"));
/// # Ok::<(), attn::Error>(())
/// ```
pub fn attention<T: AttentionElement>(
    q: &impl AsTensorView<T>,
    k: &impl AsTensorView<T>,
    v: &impl AsTensorView<T>,
) -> Result<Tensor<T>, Error> {
    Attention::new().run(q, k, v)
}

/// [`attention`] with an explicit scale (`None`: `1/sqrt(D)`). f64 attention uses the scale
/// exactly; f32, bf16 and f16 attention round it to f32.
pub fn attention_with_scale<T: AttentionElement>(
    q: &impl AsTensorView<T>,
    k: &impl AsTensorView<T>,
    v: &impl AsTensorView<T>,
    scale: Option<f64>,
) -> Result<Tensor<T>, Error> {
    match scale {
        Some(s) => Attention::new().scale(s).run(q, k, v),
        None => Attention::new().run(q, k, v),
    }
}

/// [`attention`] writing into `out` (shape `[.., Sq, Dv]`); allocates nothing for a contiguous
/// `out` when the call runs on one thread.
pub fn attention_into<T: AttentionElement>(
    q: &impl AsTensorView<T>,
    k: &impl AsTensorView<T>,
    v: &impl AsTensorView<T>,
    out: &mut TensorViewMut<'_, T>,
) -> Result<(), Error> {
    Attention::new().run_into(q, k, v, out)
}
