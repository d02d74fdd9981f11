//! Attention with every option: grouped-query heads, causal masking, additive masks, key
//! padding; split over batch x heads x query blocks in Rust, each piece one call of a rank-2 AOT
//! kernel on strided sub-views.
//!
//! # Semantics
//! - q `[B, Hq, Sq, D]`, `[Hq, Sq, D]` or `[Sq, D]`; k `[.., Hkv, Sk, D]`; v `[.., Hkv, Sk, Dv]`
//!   (same rank); `Hq % Hkv == 0`: query head `h` attends with key/value head `h / (Hq / Hkv)`
//!   (grouped-query attention; `Hkv = 1` is multi-query). The output is q's shape with `Dv` last.
//! - scores `s[i][j] = (q_i . k_j) * scale + mask[i][j]`, `scale` defaulting to `1/sqrt(D)`.
//! - **causal** is bottom-right aligned: query `i` sees the keys `j <= i + Sk - Sq` (with
//!   `Sq = Sk` the usual lower triangle; with `Sq < Sk`, e.g. decoding with a cache, the last
//!   query sees every key). Key blocks that no query row of a kernel call sees are not computed.
//! - **mask**: an additive f32 mask broadcastable (dims aligned to the right, each 1 or equal)
//!   to `[B, Hq, Sq, Sk]`, e.g. `[Sq, Sk]`, `[B, 1, Sq, Sk]`, `[B, Hq, Sq, Sk]`, `[B, 1, 1, Sk]`;
//!   `-inf` removes a key. Broadcast dims are read through zero strides, never copied.
//! - **key padding**: `[B, Sk]` booleans (row-major), `false` removes key `j` of batch `b`.
//! - A row whose every key is removed (causal, mask `-inf` or padding) gives **zeros**, not NaN.
//!   NaN inputs still give NaN rows, and infinite scores NaN rows, as without options.
//!
//! # Kernels and cost
//! - no option: `attention_r2`; causal only: `attention_causal_r2`, which takes the position of
//!   each query row (as f32: exact up to 2^24 keys) and skips fully masked key blocks; a mask
//!   and/or key padding: `attention_mask_r2` on a strided `[rows, Sk]` view of the mask.
//! - causal combined with a mask or key padding: per query block, K and V are cut at the last
//!   visible key and the causal `-inf` is merged into a copy of that block's mask rows.
//! - mask and key padding together are merged once per call into one `[B, Hm, Sqm, Sk]` mask
//!   (`Hm`, `Sqm`: 1 where the user's mask broadcasts).
//! - grouped heads: when the layout allows (q's and the mask's head stride equal `Sq` times their
//!   row stride, or `Sq = 1` as in decoding), the `Hq / Hkv` query heads of a group are stacked
//!   as the rows of one kernel call, so each K/V head is read (and packed) once per group.

use crate::kernels;
use attn_runtime::{
    AsTensorView, DynMemRef, Element, Error, Tensor, TensorView, TensorViewMut,
    ffi::Kernel,
    half::{bf16, f16},
    options::{AttentionOptions, default_scale},
    shape::{self, AttentionDims, MaskRule},
};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for super::bf16 {}
    impl Sealed for super::f16 {}
}

/// The element types attention runs on: `f32`, `f64`, and the 16-bit storage types
/// [`half::bf16`](bf16) and [`half::f16`](f16).
///
/// q, k, v and the output share the element type; masks are f32 for every type. 16-bit inputs
/// are widened to f32 as the kernel packs them, every product, exponential and sum runs in f32,
/// and the output is rounded once. Expected accuracy against the f64 reference of the same
/// (rounded) inputs, as the tests check it: f32 about 1e-6 absolute for unit-scale data, f64
/// about 1e-13, bf16 and f16 within one rounding of the output (relative 2^-8 for bf16,
/// 2^-11 for f16) plus the f32 error.
///
/// ```
/// use attn::{half::bf16, Tensor};
/// let q = Tensor::random(&[2, 5, 64], 1)?.map(bf16::from_f32);
/// let k = Tensor::random(&[2, 7, 64], 2)?.map(bf16::from_f32);
/// let v = Tensor::random(&[2, 7, 64], 3)?.map(bf16::from_f32);
/// let out: Tensor<bf16> = attn::attention(&q, &k, &v)?;
/// assert_eq!(out.shape(), &[2, 5, 64]);
/// # Ok::<(), attn::Error>(())
/// ```
pub trait AttentionElement: Element + sealed::Sealed {
    /// The type the kernels compute in, and the type of the scale they take: `f64` for `f64`,
    /// else `f32`.
    type Compute: Element;
    /// The rank-2 kernels: dense, causal by positions, masked.
    #[doc(hidden)]
    fn kernels() -> [&'static Kernel; 3];
}

impl AttentionElement for f32 {
    type Compute = f32;
    fn kernels() -> [&'static Kernel; 3] {
        [
            &kernels::ATTENTION_R2,
            &kernels::ATTENTION_CAUSAL_R2,
            &kernels::ATTENTION_MASK_R2,
        ]
    }
}

impl AttentionElement for f64 {
    type Compute = f64;
    fn kernels() -> [&'static Kernel; 3] {
        [
            &kernels::ATTENTION_F64_R2,
            &kernels::ATTENTION_CAUSAL_F64_R2,
            &kernels::ATTENTION_MASK_F64_R2,
        ]
    }
}

impl AttentionElement for bf16 {
    type Compute = f32;
    fn kernels() -> [&'static Kernel; 3] {
        [
            &kernels::ATTENTION_BF16_R2,
            &kernels::ATTENTION_CAUSAL_BF16_R2,
            &kernels::ATTENTION_MASK_BF16_R2,
        ]
    }
}

impl AttentionElement for f16 {
    type Compute = f32;
    fn kernels() -> [&'static Kernel; 3] {
        [
            &kernels::ATTENTION_F16_R2,
            &kernels::ATTENTION_CAUSAL_F16_R2,
            &kernels::ATTENTION_MASK_F16_R2,
        ]
    }
}

/// Attention with options, built step by step; [`crate::attention()`] is the no-option shortcut.
///
/// ```
/// use attn::{Attention, Tensor};
/// let q = Tensor::full(&[2, 4, 3, 8], 0.1)?;      // [B, Hq, Sq, D]
/// let k = Tensor::full(&[2, 2, 5, 8], 0.2)?;      // [B, Hkv, Sk, D]: 2 query heads per KV head
/// let v = Tensor::full(&[2, 2, 5, 6], 0.3)?;      // [B, Hkv, Sk, Dv]
/// let valid = [true, true, true, true, false, true, true, true, false, false]; // [B, Sk]
/// let out = Attention::new().causal(true).key_padding(&valid).run(&q, &k, &v)?;
/// assert_eq!(out.shape(), &[2, 4, 3, 6]);
/// // Head counts that don't divide are errors naming the shapes.
/// let bad = Tensor::full(&[2, 3, 5, 8], 0.2)?;
/// assert!(Attention::new().run(&q, &bad, &bad).is_err());
/// # Ok::<(), attn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Attention<'a> {
    /// Causal masking and the scale (`attn::options`, shared with the reference and the
    /// compiler).
    options: AttentionOptions,
    mask: Option<TensorView<'a, f32>>,
    /// Set when the mask's layout could not be borrowed as a view (reported by `run`).
    mask_unusable: bool,
    key_padding: Option<&'a [bool]>,
}

impl<'a> Attention<'a> {
    /// No options: `softmax(q k^T / sqrt(D)) v`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Causal masking, bottom-right aligned: query `i` sees keys `j <= i + Sk - Sq`.
    pub fn causal(mut self, on: bool) -> Self {
        self.options.causal = on;
        self
    }

    /// The scale of the scores (default `1/sqrt(D)`); must be finite.
    pub fn scale(mut self, scale: f32) -> Self {
        self.options.scale = Some(f64::from(scale));
        self
    }

    /// Sets every plain-data option at once (causal, scale; see
    /// [`options::AttentionOptions`](crate::options::AttentionOptions)), keeping the mask and
    /// the key padding. A scale given here is rounded to the kernels' compute type (f32, or f64
    /// for f64 tensors).
    ///
    /// ```
    /// use attn::{Attention, Tensor, options::AttentionOptions};
    /// let q = Tensor::full(&[3, 8], 0.5)?;
    /// let o = AttentionOptions::new().with_causal(true).with_scale(0.25);
    /// let a = Attention::new().with_options(o).run(&q, &q, &q)?;
    /// let b = Attention::new().causal(true).scale(0.25).run(&q, &q, &q)?;
    /// assert_eq!(a, b);
    /// assert_eq!(Attention::new().with_options(o).options(), o);
    /// # Ok::<(), attn::Error>(())
    /// ```
    pub fn with_options(mut self, options: AttentionOptions) -> Self {
        self.options = options;
        self
    }

    /// The plain-data options (causal, scale).
    pub fn options(&self) -> AttentionOptions {
        self.options
    }

    /// An additive mask broadcastable to `[B, Hq, Sq, Sk]` (any strides; not copied).
    pub fn mask(mut self, mask: &'a impl AsTensorView<f32>) -> Self {
        match mask.try_as_tensor_view() {
            Ok(view) => self.mask = Some(view),
            Err(_) => self.mask_unusable = true,
        }
        self
    }

    /// Key padding, `[B, Sk]` row-major: `false` removes the key from every query of that batch.
    pub fn key_padding(mut self, valid: &'a [bool]) -> Self {
        self.key_padding = Some(valid);
        self
    }

    /// Runs attention into a new tensor of shape q's shape with `Dv` last (any
    /// [`AttentionElement`] type).
    pub fn run<T: AttentionElement>(
        &self,
        q: &impl AsTensorView<T>,
        k: &impl AsTensorView<T>,
        v: &impl AsTensorView<T>,
    ) -> Result<Tensor<T>, Error> {
        let (q, k, v) = (
            q.try_as_tensor_view()?,
            k.try_as_tensor_view()?,
            v.try_as_tensor_view()?,
        );
        let dims = check(&q, &k, &v)?;
        let mut shape = [0usize; 4];
        shape[..dims.rank].copy_from_slice(q.shape());
        shape[dims.rank - 1] = dims.dv;
        let mut out = Tensor::zeros(&shape[..dims.rank])?;
        self.run_checked(q, k, v, dims, &mut out.view_mut())?;
        Ok(out)
    }

    /// Runs attention into `out` (q's shape with `Dv` last, any strides). Allocates nothing for
    /// a contiguous `out` without options on one thread.
    pub fn run_into<T: AttentionElement>(
        &self,
        q: &impl AsTensorView<T>,
        k: &impl AsTensorView<T>,
        v: &impl AsTensorView<T>,
        out: &mut TensorViewMut<'_, T>,
    ) -> Result<(), Error> {
        let (q, k, v) = (
            q.try_as_tensor_view()?,
            k.try_as_tensor_view()?,
            v.try_as_tensor_view()?,
        );
        let dims = check(&q, &k, &v)?;
        let r = dims.rank;
        let good = out.rank() == r
            && out.shape()[..r - 1] == q.shape()[..r - 1]
            && out.shape()[r - 1] == dims.dv;
        if !good {
            let mut expected = q.shape().to_vec();
            expected[r - 1] = dims.dv;
            return Err(Error::ShapeMismatch {
                op: "attention",
                message: format!(
                    "out has shape {:?} but the result has shape {expected:?}",
                    out.shape()
                ),
            });
        }
        self.run_checked(q, k, v, dims, out)
    }

    fn run_checked<T: AttentionElement>(
        &self,
        q: TensorView<'_, T>,
        k: TensorView<'_, T>,
        v: TensorView<'_, T>,
        dims: AttentionDims,
        out: &mut TensorViewMut<'_, T>,
    ) -> Result<(), Error> {
        if self.mask_unusable {
            return Err(Error::InvalidView {
                op: "attention",
                message: "mask: its layout cannot be borrowed as a view (negative strides, or gaps \
                          in a borrowed array view); pass a copy (e.g. `ViewOrCopy` with the ndarray \
                          feature)"
                    .into(),
            });
        }
        self.options.validate()?;
        // Every field, so that a new option cannot be forgotten here.
        let AttentionOptions {
            causal,
            scale,
            window,
            softcap,
        } = self.options;
        if window.is_some() || softcap.is_some() {
            return Err(Error::Unsupported {
                op: "attention",
                message: "the `window` and `softcap` options are not available in this build yet"
                    .into(),
            });
        }
        let scale = scale.unwrap_or_else(|| default_scale(dims.d));
        let target = dims.target();
        // The mask as a 4-D strided view (zero strides where it broadcasts), merged with the key
        // padding when both are given.
        let mut merged: Vec<f32> = Vec::new();
        let mask: Option<V4<'_, f32>> = match (&self.mask, self.key_padding) {
            (None, None) => None,
            (Some(m), None) => Some(V4::mask(m, &dims)?),
            (None, Some(p)) => {
                check_padding(p, &dims)?;
                merged = p
                    .iter()
                    .map(|&ok| if ok { 0.0 } else { f32::NEG_INFINITY })
                    .collect();
                Some(V4 {
                    data: &merged,
                    shape: target,
                    strides: [dims.sk, 0, 0, 1],
                    offset: 0,
                })
            }
            (Some(m), Some(p)) => {
                check_padding(p, &dims)?;
                let mv = V4::mask(m, &dims)?;
                let hm = if mv.strides[1] != 0 { dims.hq } else { 1 };
                let sqm = if mv.strides[2] != 0 { dims.sq } else { 1 };
                merged.reserve_exact(dims.b * hm * sqm * dims.sk);
                for b in 0..dims.b {
                    for h in 0..hm {
                        for i in 0..sqm {
                            for j in 0..dims.sk {
                                let x = mv.at(b, h, i, j);
                                merged.push(if p[b * dims.sk + j] {
                                    x
                                } else {
                                    f32::NEG_INFINITY
                                });
                            }
                        }
                    }
                }
                let sh = if hm > 1 { sqm * dims.sk } else { 0 };
                let si = if sqm > 1 { dims.sk } else { 0 };
                Some(V4 {
                    data: &merged,
                    shape: target,
                    strides: [hm * sqm * dims.sk, sh, si, 1],
                    offset: 0,
                })
            }
        };
        let plan = Plan::new(
            dims,
            V4::of(&q),
            V4::of(&k),
            V4::of(&v),
            mask,
            causal,
            scale,
        );
        match out.as_contiguous_slice_mut() {
            Some(data) => plan.run(data),
            None => {
                // A strided output: compute contiguous, then copy.
                let mut tmp = Tensor::zeros(out.shape())?;
                plan.run(tmp.as_mut_slice())?;
                out.copy_from(&tmp)
            }
        }
    }
}

fn check<T: Element>(
    q: &TensorView<'_, T>,
    k: &TensorView<'_, T>,
    v: &TensorView<'_, T>,
) -> Result<AttentionDims, Error> {
    let dims = shape::attention_dims(q.shape(), k.shape(), v.shape())?;
    shape::check_nonempty("attention", "q", q.shape())?;
    shape::check_nonempty("attention", "k", k.shape())?;
    shape::check_nonempty("attention", "v", v.shape())?;
    Ok(dims)
}

fn check_padding(p: &[bool], dims: &AttentionDims) -> Result<(), Error> {
    if p.len() != dims.b * dims.sk {
        return Err(Error::ShapeMismatch {
            op: "attention",
            message: format!(
                "key_padding has {} elements but must be [B, Sk] = [{}, {}] ({} elements)",
                p.len(),
                dims.b,
                dims.sk,
                dims.b * dims.sk
            ),
        });
    }
    Ok(())
}

/// A view seen as 4-D `[B, H, S, D]` (missing leading dims: size 1, stride 0).
#[derive(Clone, Copy, Debug)]
struct V4<'a, T> {
    data: &'a [T],
    shape: [usize; 4],
    strides: [usize; 4],
    offset: usize,
}

impl<'a, T: Element> V4<'a, T> {
    fn of(x: &TensorView<'a, T>) -> Self {
        let r = x.rank();
        let mut v = V4 {
            data: x.data(),
            shape: [1; 4],
            strides: [0; 4],
            offset: x.offset(),
        };
        v.shape[4 - r..].copy_from_slice(x.shape());
        v.strides[4 - r..].copy_from_slice(x.strides());
        v
    }

    fn mask(m: &TensorView<'a, T>, dims: &AttentionDims) -> Result<Self, Error> {
        let has = shape::mask_dims(m.shape(), dims, MaskRule::Broadcast)?;
        let mut v = V4 {
            data: m.data(),
            shape: dims.target(),
            strides: [0; 4],
            offset: m.offset(),
        };
        let r = m.rank();
        for (i, &s) in m.strides().iter().enumerate() {
            let t = 4 - r + i;
            if has[t] {
                v.strides[t] = s;
            }
        }
        Ok(v)
    }

    fn at(&self, b: usize, h: usize, i: usize, j: usize) -> T {
        let s = self.strides;
        self.data[self.offset + b * s[0] + h * s[1] + i * s[2] + j * s[3]]
    }

    /// Whether heads `h..h+n` can be seen as consecutive rows (`rows` per head), and the row
    /// stride of that stacking.
    fn stack_stride(&self, rows: usize) -> Option<usize> {
        if rows == 1 {
            Some(self.strides[1])
        } else if self.strides[1] == rows * self.strides[2] {
            Some(self.strides[2])
        } else {
            None
        }
    }

    /// The 2-D sub-view `[rows, cols]` at (b, h, row0) with the given row stride.
    fn sub(
        &self,
        b: usize,
        h: usize,
        row0: usize,
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Result<TensorView<'a, T>, Error> {
        let off = self.offset + b * self.strides[0] + h * self.strides[1] + row0 * row_stride;
        TensorView::from_strided(
            self.data,
            &[rows, cols],
            &[row_stride, self.strides[3]],
            off,
        )
    }
}

/// Below this many flops a call runs on the calling thread only.
const PARALLEL_MIN_FLOPS: usize = 1 << 23;

/// One piece of work: rows `row0..row0 + rows` of unit `unit` (a head, or a stacked group).
#[derive(Clone, Copy, Debug)]
struct Item {
    unit: usize,
    row0: usize,
    rows: usize,
}

struct Plan<'a, T> {
    d: AttentionDims,
    q: V4<'a, T>,
    k: V4<'a, T>,
    v: V4<'a, T>,
    mask: Option<V4<'a, f32>>,
    causal: bool,
    scale: f64,
    /// Query heads per unit (the group size when stacked, else 1).
    heads: usize,
    /// Rows per unit (`heads * Sq`).
    rows: usize,
    units: usize,
    q_rs: usize,
    m_rs: usize,
    flops: usize,
}

impl<'a, T: AttentionElement> Plan<'a, T> {
    fn new(
        d: AttentionDims,
        q: V4<'a, T>,
        k: V4<'a, T>,
        v: V4<'a, T>,
        mask: Option<V4<'a, f32>>,
        causal: bool,
        scale: f64,
    ) -> Self {
        let g = d.group();
        let stacked = if g > 1 {
            match (q.stack_stride(d.sq), mask.map(|m| m.stack_stride(d.sq))) {
                (Some(qs), None) => Some((qs, 0)),
                (Some(qs), Some(Some(ms))) => Some((qs, ms)),
                _ => None,
            }
        } else {
            None
        };
        let (heads, q_rs, m_rs) = match stacked {
            Some((qs, ms)) => (g, qs, ms),
            None => (1, q.strides[2], mask.map_or(0, |m| m.strides[2])),
        };
        let flops = [d.b, d.hq, d.sq, d.sk, d.d.max(d.dv), 4]
            .iter()
            .fold(1usize, |a, &b| a.saturating_mul(b));
        Plan {
            d,
            q,
            k,
            v,
            mask,
            causal,
            scale,
            heads,
            rows: heads * d.sq,
            units: d.b * d.hq / heads,
            q_rs,
            m_rs,
            flops,
        }
    }

    /// Splits each unit's rows into blocks (more pieces than threads, for balance); returns
    /// (blocks per unit, rows per block).
    fn blocking(&self, threads: usize) -> (usize, usize) {
        let target = threads.saturating_mul(4).max(1);
        let blocks = target
            .div_ceil(self.units)
            .clamp(1, self.rows.div_ceil(16).max(1));
        let block = self.rows.div_ceil(blocks);
        (self.rows.div_ceil(block), block)
    }

    fn item(&self, i: usize, (blocks, block): (usize, usize)) -> Item {
        let (unit, b) = (i / blocks, i % blocks);
        let row0 = b * block;
        Item {
            unit,
            row0,
            rows: block.min(self.rows - row0),
        }
    }

    /// The position (last visible key) of stacked row `r`, bottom-right aligned.
    fn position(&self, r: usize) -> isize {
        (r % self.d.sq) as isize + self.d.sk as isize - self.d.sq as isize
    }

    fn run(&self, out: &mut [T]) -> Result<(), Error> {
        let threads = if self.flops < PARALLEL_MIN_FLOPS {
            1
        } else {
            crate::num_threads()
        };
        let blocking = self.blocking(threads);
        let n_items = self.units * blocking.0;
        if threads <= 1 || n_items <= 1 {
            return self.run_items(0..n_items, blocking, out);
        }
        let per = n_items.div_ceil(threads);
        let mut chunks = Vec::with_capacity(threads);
        let mut rest = out;
        let mut start = 0;
        while start < n_items {
            let end = (start + per).min(n_items);
            let rows: usize = (start..end).map(|i| self.item(i, blocking).rows).sum();
            let (head, tail) = rest.split_at_mut(rows * self.d.dv);
            chunks.push((start..end, head));
            rest = tail;
            start = end;
        }
        // The calling thread runs the first chunk; the pool's `threads - 1` workers the others.
        if let Some(pool) = crate::threads::pool(threads - 1) {
            let mut results: Vec<Result<(), Error>> = (0..chunks.len()).map(|_| Ok(())).collect();
            let mut jobs = chunks.into_iter().zip(results.iter_mut());
            let first = jobs.next();
            pool.in_place_scope(|s| {
                for ((range, chunk), slot) in jobs {
                    s.spawn(move |_| *slot = self.run_items(range, blocking, chunk));
                }
                if let Some(((range, chunk), slot)) = first {
                    *slot = self.run_items(range, blocking, chunk);
                }
            });
            return results.into_iter().collect();
        }
        std::thread::scope(|s| {
            let mut handles = Vec::with_capacity(chunks.len());
            let mut chunks = chunks.into_iter();
            let first = chunks.next();
            for (range, chunk) in chunks {
                handles.push(s.spawn(move || self.run_items(range, blocking, chunk)));
            }
            let mut result = match first {
                Some((range, chunk)) => self.run_items(range, blocking, chunk),
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

    fn run_items(
        &self,
        range: std::ops::Range<usize>,
        blocking: (usize, usize),
        out: &mut [T],
    ) -> Result<(), Error> {
        let mut rest = out;
        let mut positions = Vec::new();
        let mut scratch = Vec::new();
        for i in range {
            let it = self.item(i, blocking);
            let (head, tail) = rest.split_at_mut(it.rows * self.d.dv);
            rest = tail;
            self.run_item(it, head, &mut positions, &mut scratch)?;
        }
        Ok(())
    }

    fn run_item(
        &self,
        it: Item,
        out: &mut [T],
        positions: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
    ) -> Result<(), Error> {
        let d = &self.d;
        let per_b = d.hq / self.heads;
        let (b, u) = (it.unit / per_b, it.unit % per_b);
        let h0 = u * self.heads;
        let kvh = h0 / d.group();
        // Keys visible to some row of the item.
        let mut sk = d.sk;
        if self.causal {
            let last = (it.row0..it.row0 + it.rows)
                .map(|r| self.position(r))
                .max()
                .unwrap_or(-1);
            sk = (last + 1).clamp(0, d.sk as isize) as usize;
            if sk == 0 {
                out.fill(T::from_f64(0.0));
                return Ok(());
            }
        }
        let qs = self.q.sub(b, h0, it.row0, it.rows, d.d, self.q_rs)?;
        let ks = self.k.sub(b, kvh, 0, sk, d.d, self.k.strides[2])?;
        let vs = self.v.sub(b, kvh, 0, sk, d.dv, self.v.strides[2])?;
        let mut o = TensorViewMut::new(out, &[it.rows, d.dv])?;
        let s = [T::Compute::from_f64(self.scale)];
        let s = TensorView::new(&s, &[])?;
        let [dense, causal_kernel, masked] = T::kernels();
        match (self.mask, self.causal) {
            (None, false) => dense.launch(&mut [
                DynMemRef::input(&qs)?,
                DynMemRef::input(&ks)?,
                DynMemRef::input(&vs)?,
                DynMemRef::input(&s)?,
                DynMemRef::output(&mut o)?,
            ]),
            (None, true) => {
                positions.clear();
                positions.extend((it.row0..it.row0 + it.rows).map(|r| self.position(r) as f32));
                let p = TensorView::new(positions.as_slice(), &[it.rows])?;
                causal_kernel.launch(&mut [
                    DynMemRef::input(&qs)?,
                    DynMemRef::input(&ks)?,
                    DynMemRef::input(&vs)?,
                    DynMemRef::input(&s)?,
                    DynMemRef::input(&p)?,
                    DynMemRef::output(&mut o)?,
                ])
            }
            (Some(m), causal) => {
                let ms = m.sub(b, h0, it.row0, it.rows, sk, self.m_rs)?;
                let ms = if causal {
                    // Merge the causal -inf into a copy of this block's mask rows.
                    scratch.clear();
                    for r in 0..it.rows {
                        let last = self.position(it.row0 + r);
                        for j in 0..sk {
                            let x = ms.get(&[r, j]).unwrap_or(0.0);
                            scratch.push(if j as isize <= last {
                                x
                            } else {
                                f32::NEG_INFINITY
                            });
                        }
                    }
                    TensorView::new(scratch.as_slice(), &[it.rows, sk])?
                } else {
                    ms
                };
                masked.launch(&mut [
                    DynMemRef::input(&qs)?,
                    DynMemRef::input(&ks)?,
                    DynMemRef::input(&vs)?,
                    DynMemRef::input(&s)?,
                    DynMemRef::input(&ms)?,
                    DynMemRef::output(&mut o)?,
                ])
            }
        }
    }
}
