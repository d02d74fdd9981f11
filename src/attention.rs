//! Attention with every option: grouped-query heads, causal masking, sliding windows, logit
//! softcapping, ALiBi, attention sinks, additive masks, key padding; split over batch x heads x
//! query blocks (and, for long decodes, key chunks) in Rust, each piece one call of a rank-2 AOT
//! kernel on strided sub-views.
//!
//! # Semantics
//! - q `[B, Hq, Sq, D]`, `[Hq, Sq, D]` or `[Sq, D]`; k `[.., Hkv, Sk, D]`; v `[.., Hkv, Sk, Dv]`
//!   (same rank); `Hq % Hkv == 0`: query head `h` attends with key/value head `h / (Hq / Hkv)`
//!   (grouped-query attention; `Hkv = 1` is multi-query). The output is q's shape with `Dv` last.
//! - With `p(i) = i + Sk - Sq` query `i`'s bottom-right aligned position, each score is, in
//!   this order: `s = scale * (q_i . k_j)` (`scale` defaulting to `1/sqrt(D)`); with a softcap
//!   `c`, `s = c * tanh(s / c)`; with ALiBi, `s -= slope_h * |p(i) - j|`; plus the mask; then
//!   the key is removed if causal, the window or key padding hides it. The softmax's
//!   denominator includes `exp(sink_h)` when sinks are given.
//! - **causal**: query `i` sees the keys `j <= p(i)` (with `Sq = Sk` the usual lower triangle;
//!   with `Sq < Sk`, e.g. decoding with a cache, the last query sees every key).
//! - **window** `(left, right)`: query `i` sees the keys `p(i) - left <= j <= p(i) + right`
//!   (`usize::MAX`: unbounded on that side); with causal, also `j <= p(i)`.
//! - **mask**: an additive f32 mask broadcastable (dims aligned to the right, each 1 or equal)
//!   to `[B, Hq, Sq, Sk]`, e.g. `[Sq, Sk]`, `[B, 1, Sq, Sk]`, `[B, Hq, Sq, Sk]`, `[B, 1, 1, Sk]`;
//!   `-inf` removes a key. Broadcast dims are read through zero strides, never copied.
//! - **key padding**: `[B, Sk]` booleans (row-major), `false` removes key `j` of batch `b`.
//! - A row whose every key is removed gives **zeros** (and, with sinks, zeros too: the sink has
//!   no value vector), not NaN. NaN inputs still give NaN rows, and infinite scores NaN rows.
//!
//! # Kernels and cost
//! - no option: `attention_r2`; any option (or [`Attention::run_with_lse`]):
//!   `attention_opts_r2`, which takes per-row positions (f32: exact below 2^24), the window,
//!   the softcap, per-row sinks and ALiBi slopes and also returns each row's log-sum-exp; with
//!   a mask or key padding, `attention_opts_mask_r2` on a strided `[rows, keys]` view of the
//!   mask. Key blocks that no row of a kernel call sees are not computed, and each call's K and
//!   V are cut to the keys its rows can see (a sliding window reads only its window).
//! - mask and key padding together are merged once per call into one `[B, Hm, Sqm, Sk]` mask
//!   (`Hm`, `Sqm`: 1 where the user's mask broadcasts).
//! - grouped heads: when the layout allows (q's and the mask's head stride equal `Sq` times their
//!   row stride, or `Sq = 1` as in decoding), the `Hq / Hkv` query heads of a group are stacked
//!   as the rows of one kernel call, so each K/V head is read (and packed) once per group.
//! - split-KV decoding: when a group's rows fit one work item (at most
//!   [`tuning::SPLIT_KV_MAX_ROWS`](crate::tuning::SPLIT_KV_MAX_ROWS) stacked rows, as in
//!   decoding) and there are more than
//!   [`tuning::SPLIT_KV_KEYS`](crate::tuning::SPLIT_KV_KEYS) keys, the keys are split
//!   into chunks of that fixed size, computed in parallel and merged by their log-sum-exp.
//!   The split depends on the shapes only, never on the thread count, so results are bitwise
//!   identical for any number of threads.

mod plan;

use crate::kernels;
use attn_runtime::{
    AsTensorView, Element, Error, Tensor, TensorView, TensorViewMut,
    ffi::Kernel,
    half::{bf16, f16},
    options::{self, AttentionOptions},
    shape::{self, AttentionDims},
};
use plan::Plan;

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
/// q, k, v and the output share the element type; masks, ALiBi slopes and sinks are f32 for
/// every type. 16-bit inputs are widened to f32 as the kernel packs them, every product,
/// exponential and sum runs in f32, and the output is rounded once. Expected accuracy against
/// the f64 reference of the same (rounded) inputs, as the tests check it: f32 about 1e-6
/// absolute for unit-scale data, f64 about 1e-13, bf16 and f16 within one rounding of the
/// output (relative 2^-8 for bf16, 2^-11 for f16) plus the f32 error.
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
    /// The type the kernels compute in, and the type of the scale they take and of the
    /// log-sum-exp they return: `f64` for `f64`, else `f32`.
    type Compute: Element;
    /// The rank-2 kernels: dense, with every option, with every option and a mask.
    #[doc(hidden)]
    fn kernels() -> [&'static Kernel; 3];
}

impl AttentionElement for f32 {
    type Compute = f32;
    fn kernels() -> [&'static Kernel; 3] {
        [
            &kernels::ATTENTION_R2,
            &kernels::ATTENTION_OPTS_R2,
            &kernels::ATTENTION_OPTS_MASK_R2,
        ]
    }
}

impl AttentionElement for f64 {
    type Compute = f64;
    fn kernels() -> [&'static Kernel; 3] {
        [
            &kernels::ATTENTION_F64_R2,
            &kernels::ATTENTION_OPTS_F64_R2,
            &kernels::ATTENTION_OPTS_MASK_F64_R2,
        ]
    }
}

impl AttentionElement for bf16 {
    type Compute = f32;
    fn kernels() -> [&'static Kernel; 3] {
        [
            &kernels::ATTENTION_BF16_R2,
            &kernels::ATTENTION_OPTS_BF16_R2,
            &kernels::ATTENTION_OPTS_MASK_BF16_R2,
        ]
    }
}

impl AttentionElement for f16 {
    type Compute = f32;
    fn kernels() -> [&'static Kernel; 3] {
        [
            &kernels::ATTENTION_F16_R2,
            &kernels::ATTENTION_OPTS_F16_R2,
            &kernels::ATTENTION_OPTS_MASK_F16_R2,
        ]
    }
}

/// Attention with options, built step by step; [`crate::attention()`] is the no-option shortcut.
///
/// | option | rule (`p(i) = i + Sk - Sq`, `s` the score) |
/// |---|---|
/// | [`causal`](Attention::causal) | query `i` sees keys `j <= p(i)` |
/// | [`window`](Attention::window)`(l, r)` | query `i` sees keys `p(i) - l <= j <= p(i) + r` |
/// | [`softcap`](Attention::softcap)`(c)` | `s = c * tanh(s / c)` |
/// | [`alibi`](Attention::alibi)`(slopes)` | `s -= slopes[h] * \|p(i) - j\|` |
/// | [`sinks`](Attention::sinks)`(logits)` | `exp(logits[h])` joins the softmax denominator |
/// | [`mask`](Attention::mask)`(m)` | `s += m[.., i, j]` |
/// | [`key_padding`](Attention::key_padding)`(valid)` | `valid[b * Sk + j] == false` removes key `j` |
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
    /// Causal masking, the scale, the window and the softcap (`attn::options`, shared with the
    /// reference and the compiler).
    options: AttentionOptions,
    mask: Option<TensorView<'a, f32>>,
    /// Set when the mask's layout could not be borrowed as a view (reported by `run`).
    mask_unusable: bool,
    key_padding: Option<&'a [bool]>,
    alibi: Option<&'a [f32]>,
    sinks: Option<&'a [f32]>,
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

    /// The scale of the scores (default `1/sqrt(D)`); must be finite. f64 attention uses it
    /// exactly; f32, bf16 and f16 attention round it to f32.
    ///
    /// ```
    /// use attn::{Attention, Tensor};
    /// let q = Tensor::full(&[3, 8], 0.5f64)?;
    /// let third = Attention::new().scale(1.0 / 3.0).run(&q, &q, &q)?; // f64: exactly 1/3
    /// let q32 = Tensor::full(&[3, 8], 0.5f32)?;
    /// let rounded = Attention::new().scale(0.1f32).run(&q32, &q32, &q32)?;
    /// assert_eq!((third.shape(), rounded.shape()), (&[3, 8][..], &[3, 8][..]));
    /// # Ok::<(), attn::Error>(())
    /// ```
    pub fn scale(mut self, scale: impl Into<f64>) -> Self {
        self.options.scale = Some(scale.into());
        self
    }

    /// A sliding window: query `i` sees the keys `j` with `p(i) - left <= j <= p(i) + right`,
    /// `p(i) = i + Sk - Sq` its bottom-right aligned position. `usize::MAX` leaves a side
    /// unbounded; with [`causal`](Attention::causal) the right bound is also `p(i)`. Keys
    /// outside every window of a block of rows are neither read nor computed.
    ///
    /// ```
    /// use attn::{Attention, Tensor};
    /// // Each token sees itself and the 2 tokens before it (Mistral-style, window 3).
    /// let x = Tensor::<f32>::random(&[6, 8], 7)?;
    /// let out = Attention::new().causal(true).window(2, 0).run(&x, &x, &x)?;
    /// assert_eq!(out.shape(), &[6, 8]);
    /// # Ok::<(), attn::Error>(())
    /// ```
    pub fn window(mut self, left: usize, right: usize) -> Self {
        self.options.window = Some((left, right));
        self
    }

    /// Logit softcapping (Gemma 2): each scaled score `s` becomes `cap * tanh(s / cap)`, before
    /// the ALiBi bias and the mask. `cap` must be positive and finite (else `run` returns an
    /// error naming the value).
    pub fn softcap(mut self, cap: f32) -> Self {
        self.options.softcap = Some(cap);
        self
    }

    /// ALiBi: one slope per query head (`Hq` values, 1 at rank 2); the score of query `i` and
    /// key `j` in head `h` gets `-slopes[h] * |p(i) - j|`. Slopes must be finite.
    pub fn alibi(mut self, slopes: &'a [f32]) -> Self {
        self.alibi = Some(slopes);
        self
    }

    /// Attention sinks (gpt-oss): one logit per query head (`Hq` values, 1 at rank 2); the
    /// softmax denominator of every row of head `h` includes `exp(logits[h])`, with no value
    /// vector: `out_i = sum_j e^{s_ij} v_j / (sum_j e^{s_ij} + e^{logits[h]})`. Logits must be
    /// finite, or `-inf` (no sink for that head).
    ///
    /// ```
    /// use attn::{Attention, Tensor};
    /// let q = Tensor::full(&[1, 2, 4], 0.0f32)?;  // [Hq = 1, Sq, D]: scores 0
    /// let k = Tensor::full(&[1, 3, 4], 1.0f32)?;
    /// let v = Tensor::full(&[1, 3, 1], 1.0f32)?;
    /// // A sink of logit 0 counts as a fourth key with value 0: out = 3 / 4.
    /// let out = Attention::new().sinks(&[0.0]).run(&q, &k, &v)?;
    /// assert!((out.as_slice()[0] - 0.75).abs() < 1e-6);
    /// # Ok::<(), attn::Error>(())
    /// ```
    pub fn sinks(mut self, logits: &'a [f32]) -> Self {
        self.sinks = Some(logits);
        self
    }

    /// Sets every plain-data option at once (causal, scale, window, softcap; see
    /// [`options::AttentionOptions`](crate::options::AttentionOptions)), keeping the mask, the
    /// key padding, ALiBi and sinks. A scale given here is rounded to the kernels' compute type
    /// (f32, or f64 for f64 tensors).
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

    /// The plain-data options (causal, scale, window, softcap).
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
        let mut out = Tensor::zeros(&out_shape(&dims)[..dims.rank])?;
        self.run_checked(q, k, v, dims, &mut out.view_mut(), None)?;
        Ok(out)
    }

    /// Runs attention and also returns the log-sum-exp of each row's final scores,
    /// `lse[.., i] = ln(sum_j e^{s_ij} (+ e^{sink_h}))`, of q's shape without its last dim
    /// (f32). A row with no visible key and no sink gives zeros and `lse = -inf`. Results over
    /// disjoint key sets of the same queries merge into the result over their union with
    /// [`merge_partials`](crate::merge_partials).
    ///
    /// ```
    /// use attn::{Attention, Tensor};
    /// let q = Tensor::<f32>::random(&[2, 3, 8], 1)?;
    /// let k = Tensor::<f32>::random(&[2, 5, 8], 2)?;
    /// let v = Tensor::<f32>::random(&[2, 5, 4], 3)?;
    /// let (out, lse) = Attention::new().causal(true).run_with_lse(&q, &k, &v)?;
    /// assert_eq!((out.shape(), lse.shape()), (&[2, 3, 4][..], &[2, 3][..]));
    /// # Ok::<(), attn::Error>(())
    /// ```
    pub fn run_with_lse<T: AttentionElement>(
        &self,
        q: &impl AsTensorView<T>,
        k: &impl AsTensorView<T>,
        v: &impl AsTensorView<T>,
    ) -> Result<(Tensor<T>, Tensor<f32>), Error> {
        let (q, k, v) = (
            q.try_as_tensor_view()?,
            k.try_as_tensor_view()?,
            v.try_as_tensor_view()?,
        );
        let dims = check(&q, &k, &v)?;
        let out_shape = dims.output();
        let mut out = Tensor::zeros(&out_shape)?;
        let mut lse = Tensor::zeros(&out_shape[..dims.rank - 1])?;
        self.run_checked(q, k, v, dims, &mut out.view_mut(), Some(lse.as_mut_slice()))?;
        Ok((out, lse))
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
            return Err(Error::ShapeMismatch {
                op: "attention",
                message: format!(
                    "out has shape {:?} but the result has shape {:?}",
                    out.shape(),
                    dims.output()
                ),
            });
        }
        self.run_checked(q, k, v, dims, out, None)
    }

    fn run_checked<T: AttentionElement>(
        &self,
        q: TensorView<'_, T>,
        k: TensorView<'_, T>,
        v: TensorView<'_, T>,
        dims: AttentionDims,
        out: &mut TensorViewMut<'_, T>,
        lse: Option<&mut [f32]>,
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
        for (name, values) in [("alibi", self.alibi), ("sinks", self.sinks)] {
            if let Some(x) = values {
                options::check_per_head(name, x, dims.hq, q.shape())?;
            }
        }
        if let Some(p) = self.key_padding {
            check_padding(p, &dims)?;
        }
        let plan = Plan::new(
            dims,
            (q, k, v),
            self.mask.as_ref(),
            self.key_padding,
            self.options,
            self.alibi,
            self.sinks,
            lse.is_some(),
        )?;
        match (out.as_contiguous_slice_mut(), lse) {
            (Some(data), lse) => plan.run(data, lse),
            (None, lse) => {
                // A strided output: compute contiguous, then copy.
                let mut tmp = Tensor::zeros(out.shape())?;
                plan.run(tmp.as_mut_slice(), lse)?;
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

/// The output's shape (the first `rank` dims): q's with `Dv` last, without allocating.
fn out_shape(dims: &AttentionDims) -> [usize; 4] {
    let mut s = [dims.b, dims.hq, dims.sq, dims.dv];
    s.rotate_left(4 - dims.rank);
    s
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
