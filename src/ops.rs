//! Safe wrappers over the AOT kernels: shape checks, output allocation, descriptor building and
//! the kernel launch.

use crate::kernels;
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
    let (a, b) = (a.as_tensor_view(), b.as_tensor_view());
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
    let x = x.as_tensor_view();
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
    let x = x.as_tensor_view();
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
        a.as_tensor_view(),
        b.as_tensor_view(),
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
        a.as_tensor_view(),
        b.as_tensor_view(),
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
    let x = x.as_tensor_view();
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
    binary(k, x, scalar_view(&factor), &x.shape().to_vec())
}

/// Scaled dot-product attention `softmax(q k^T / sqrt(D)) v`.
///
/// Shapes: q `[Sq, D]`, k `[Sk, D]`, v `[Sk, Dv]` gives `[Sq, Dv]`; leading batch and head
/// dimensions (`[B, S, D]` or `[B, H, S, D]`, identical for q, k and v) are supported too.
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
pub fn attention(
    q: &impl AsTensorView<f32>,
    k: &impl AsTensorView<f32>,
    v: &impl AsTensorView<f32>,
) -> Result<Tensor, Error> {
    attention_with_scale(q, k, v, None)
}

/// [`attention`] with an explicit scale (`None`: `1/sqrt(D)`).
pub fn attention_with_scale(
    q: &impl AsTensorView<f32>,
    k: &impl AsTensorView<f32>,
    v: &impl AsTensorView<f32>,
    scale: Option<f32>,
) -> Result<Tensor, Error> {
    let (q, k, v) = (q.as_tensor_view(), k.as_tensor_view(), v.as_tensor_view());
    let out_shape = check_attention(&q, &k, &v)?;
    let mut out = Tensor::zeros(out_shape.as_slice())?;
    run_attention(q, k, v, scale, &mut out.view_mut())?;
    Ok(out)
}

/// [`attention`] writing into `out` (shape `[.., Sq, Dv]`), allocating nothing.
pub fn attention_into(
    q: &impl AsTensorView<f32>,
    k: &impl AsTensorView<f32>,
    v: &impl AsTensorView<f32>,
    out: &mut TensorViewMut<'_, f32>,
) -> Result<(), Error> {
    let (q, k, v) = (q.as_tensor_view(), k.as_tensor_view(), v.as_tensor_view());
    let out_shape = check_attention(&q, &k, &v)?;
    if out.shape() != out_shape.as_slice() {
        return Err(Error::ShapeMismatch {
            op: "attention",
            message: format!(
                "out has shape {:?} but the result has shape {:?}",
                out.shape(),
                out_shape.as_slice()
            ),
        });
    }
    run_attention(q, k, v, None, out)
}

/// Validates q, k, v and returns the output shape (`[.., Sq, Dv]`) without allocating; the
/// detailed error comes from `shape::attention` when something is wrong.
fn check_attention(
    q: &TensorView<'_, f32>,
    k: &TensorView<'_, f32>,
    v: &TensorView<'_, f32>,
) -> Result<OutShape, Error> {
    let r = q.rank();
    let fine = (2..=4).contains(&r)
        && k.rank() == r
        && v.rank() == r
        && q.shape()[..r - 2] == k.shape()[..r - 2]
        && q.shape()[..r - 2] == v.shape()[..r - 2]
        && q.shape()[r - 1] == k.shape()[r - 1]
        && k.shape()[r - 2] == v.shape()[r - 2];
    if !fine {
        shape::attention(q.shape(), k.shape(), v.shape())?;
    }
    shape::check_nonempty("attention", "q", q.shape())?;
    shape::check_nonempty("attention", "k", k.shape())?;
    shape::check_nonempty("attention", "v", v.shape())?;
    let mut out = OutShape {
        dims: [0; 4],
        rank: r,
    };
    out.dims[..r - 1].copy_from_slice(&q.shape()[..r - 1]);
    out.dims[r - 1] = v.shape()[r - 1];
    Ok(out)
}

/// An output shape of rank <= 4, held inline.
struct OutShape {
    dims: [usize; 4],
    rank: usize,
}

impl OutShape {
    fn as_slice(&self) -> &[usize] {
        &self.dims[..self.rank]
    }
}

/// Below this many flops a call runs on the calling thread only.
const PARALLEL_MIN_FLOPS: usize = 1 << 22;

fn run_attention(
    q: TensorView<'_, f32>,
    k: TensorView<'_, f32>,
    v: TensorView<'_, f32>,
    scale: Option<f32>,
    out: &mut TensorViewMut<'_, f32>,
) -> Result<(), Error> {
    let r = q.rank();
    let d = q.shape()[r - 1];
    let scale = scale.unwrap_or(1.0 / (d as f32).sqrt());
    if !scale.is_finite() {
        return Err(Error::Unsupported {
            op: "attention",
            message: format!("the scale must be finite, got {scale}"),
        });
    }
    let plan = Plan::new(&q, &k, &v);
    let threads = if plan.flops < PARALLEL_MIN_FLOPS {
        1
    } else {
        crate::num_threads()
    };
    let Some(out_data) = out.as_contiguous_slice_mut() else {
        // A strided output: one kernel call per batch/head, on the calling thread.
        return plan.run_strided(&q, &k, &v, scale, out);
    };
    let blocking = plan.blocking(threads);
    let n_items = plan.lead * blocking.0;
    if threads <= 1 || n_items <= 1 {
        return plan.run_items(&q, &k, &v, scale, 0..n_items, blocking, out_data);
    }
    // Contiguous ranges of work items: each owns a contiguous range of output rows.
    let per = n_items.div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    let mut rest = out_data;
    let mut start = 0;
    while start < n_items {
        let end = (start + per).min(n_items);
        let rows: usize = (start..end).map(|i| plan.item(i, blocking).rows).sum();
        let (head, tail) = rest.split_at_mut(rows * plan.dv);
        chunks.push((start..end, head));
        rest = tail;
        start = end;
    }
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(chunks.len());
        let mut chunks = chunks.into_iter();
        let first = chunks.next();
        for (range, chunk) in chunks {
            let (q, k, v, plan) = (&q, &k, &v, &plan);
            handles.push(s.spawn(move || plan.run_items(q, k, v, scale, range, blocking, chunk)));
        }
        let mut result = match first {
            Some((range, chunk)) => plan.run_items(&q, &k, &v, scale, range, blocking, chunk),
            None => Ok(()),
        };
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(Error::Unsupported {
                    op: "attention",
                    message: "a worker thread panicked".into(),
                })
            });
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

/// One piece of attention work: the rows `row0..row0 + rows` of batch/head `lead`.
#[derive(Clone, Copy, Debug)]
struct Item {
    lead: usize,
    row0: usize,
    rows: usize,
}

/// How an attention call splits into rank-2 kernel calls on sub-views.
struct Plan {
    rank: usize,
    lead: usize,
    sq: usize,
    sk: usize,
    dv: usize,
    flops: usize,
}

impl Plan {
    fn new(q: &TensorView<'_, f32>, k: &TensorView<'_, f32>, v: &TensorView<'_, f32>) -> Self {
        let rank = q.rank();
        let lead = q.shape()[..rank - 2].iter().product();
        let (sq, d) = (q.shape()[rank - 2], q.shape()[rank - 1]);
        let (sk, dv) = (k.shape()[rank - 2], v.shape()[rank - 1]);
        let flops = [lead, sq, sk, d.max(dv), 4]
            .iter()
            .fold(1usize, |a, &b| a.saturating_mul(b));
        Plan {
            rank,
            lead,
            sq,
            sk,
            dv,
            flops,
        }
    }

    /// Splits each head's queries into `blocks` blocks (more pieces than threads, for balance,
    /// when there are fewer heads than threads can use); returns (blocks per head, block rows).
    fn blocking(&self, threads: usize) -> (usize, usize) {
        let target = threads.saturating_mul(4).max(1);
        let blocks = target
            .div_ceil(self.lead)
            .clamp(1, self.sq.div_ceil(16).max(1));
        let block = self.sq.div_ceil(blocks);
        (self.sq.div_ceil(block), block)
    }

    /// Work item `i` in output order, for the given blocking.
    fn item(&self, i: usize, (blocks, block): (usize, usize)) -> Item {
        let (lead, b) = (i / blocks, i % blocks);
        let row0 = b * block;
        Item {
            lead,
            row0,
            rows: block.min(self.sq - row0),
        }
    }

    /// The element offset of batch/head `lead` in a view (leading dims in row-major order).
    fn lead_offset(&self, view: &TensorView<'_, f32>, mut lead: usize) -> usize {
        let mut off = view.offset();
        for axis in (0..self.rank - 2).rev() {
            let n = view.shape()[axis];
            off += (lead % n) * view.strides()[axis];
            lead /= n;
        }
        off
    }

    fn sub<'a>(
        &self,
        view: &TensorView<'a, f32>,
        lead: usize,
        row0: usize,
        rows: usize,
    ) -> Result<TensorView<'a, f32>, Error> {
        let r = self.rank;
        let (rs, cs) = (view.strides()[r - 2], view.strides()[r - 1]);
        let off = self.lead_offset(view, lead) + row0 * rs;
        TensorView::from_strided(view.data(), &[rows, view.shape()[r - 1]], &[rs, cs], off)
    }

    fn launch(
        q: &TensorView<'_, f32>,
        k: &TensorView<'_, f32>,
        v: &TensorView<'_, f32>,
        scale: f32,
        out: &mut TensorViewMut<'_, f32>,
    ) -> Result<(), Error> {
        let s = scalar_view(&scale);
        kernels::ATTENTION_R2.launch(&mut [
            DynMemRef::input(q)?,
            DynMemRef::input(k)?,
            DynMemRef::input(v)?,
            DynMemRef::input(&s)?,
            DynMemRef::output(out)?,
        ])
    }

    /// Runs the work items `range` (consecutive in output order) into `out`, their contiguous
    /// output rows.
    #[allow(clippy::too_many_arguments)]
    fn run_items(
        &self,
        q: &TensorView<'_, f32>,
        k: &TensorView<'_, f32>,
        v: &TensorView<'_, f32>,
        scale: f32,
        range: std::ops::Range<usize>,
        blocking: (usize, usize),
        out: &mut [f32],
    ) -> Result<(), Error> {
        let mut rest = out;
        for i in range {
            let it = self.item(i, blocking);
            let (head, tail) = rest.split_at_mut(it.rows * self.dv);
            rest = tail;
            let qs = self.sub(q, it.lead, it.row0, it.rows)?;
            let ks = self.sub(k, it.lead, 0, self.sk)?;
            let vs = self.sub(v, it.lead, 0, self.sk)?;
            let mut o = TensorViewMut::new(head, &[it.rows, self.dv])?;
            Self::launch(&qs, &ks, &vs, scale, &mut o)?;
        }
        Ok(())
    }

    /// One call per batch/head into a strided output view.
    fn run_strided(
        &self,
        q: &TensorView<'_, f32>,
        k: &TensorView<'_, f32>,
        v: &TensorView<'_, f32>,
        scale: f32,
        out: &mut TensorViewMut<'_, f32>,
    ) -> Result<(), Error> {
        let r = self.rank;
        let (shape, strides, offset) = (out.shape().to_vec(), out.strides().to_vec(), out.offset());
        for lead in 0..self.lead {
            let mut off = offset;
            let mut rem = lead;
            for axis in (0..r - 2).rev() {
                off += (rem % shape[axis]) * strides[axis];
                rem /= shape[axis];
            }
            let qs = self.sub(q, lead, 0, self.sq)?;
            let ks = self.sub(k, lead, 0, self.sk)?;
            let vs = self.sub(v, lead, 0, self.sk)?;
            let data = out.data_mut();
            let mut o = TensorViewMut::from_strided(
                data,
                &[self.sq, self.dv],
                &[strides[r - 2], strides[r - 1]],
                off,
            )?;
            Self::launch(&qs, &ks, &vs, scale, &mut o)?;
        }
        Ok(())
    }
}
