//! Naive reference implementations with `f64` accumulation, for tests and
//! benchmarks, plus [`compare`] for checking kernel results against them.
//!
//! Inputs may be any [`AsTensorView`] (owned tensors, strided views) of any
//! [`Element`] type; outputs are contiguous `Tensor<f64>`s.

use crate::element::Element;
use crate::error::Error;
use crate::options;
use crate::shape;
use crate::tensor::{AsTensorView, Tensor};

/// The elements of `x` in logical row-major order, as `f64`.
fn dense<T: Element>(x: &impl AsTensorView<T>) -> Vec<f64> {
    x.as_tensor_view().iter().map(Element::to_f64).collect()
}

/// Matrix product, 2-D or batched 3-D (see [`shape::matmul`]).
pub fn matmul<T: Element>(
    a: &impl AsTensorView<T>,
    b: &impl AsTensorView<T>,
) -> Result<Tensor<f64>, Error> {
    let (av, bv) = (a.as_tensor_view(), b.as_tensor_view());
    let out_shape = shape::matmul(av.shape(), bv.shape())?;
    let r = av.rank();
    let (m, k, n) = (av.shape()[r - 2], av.shape()[r - 1], bv.shape()[r - 1]);
    let batch = if r == 3 { av.shape()[0] } else { 1 };
    let (ad, bd) = (dense(&av), dense(&bv));
    let mut out_t = Tensor::<f64>::zeros(&out_shape)?;
    let out = out_t.as_mut_slice();
    for bi in 0..batch {
        let ab = &ad[bi * m * k..(bi + 1) * m * k];
        let bb = &bd[bi * k * n..(bi + 1) * k * n];
        let ob = &mut out[bi * m * n..(bi + 1) * m * n];
        for i in 0..m {
            for p in 0..k {
                let x = ab[i * k + p];
                for j in 0..n {
                    ob[i * n + j] += x * bb[p * n + j];
                }
            }
        }
    }
    Ok(out_t)
}

/// Swaps the last two axes (rank >= 2).
pub fn transpose<T: Element>(x: &impl AsTensorView<T>) -> Result<Tensor<f64>, Error> {
    let xv = x.as_tensor_view();
    shape::transpose(xv.shape())?;
    Ok(xv.t()?.to_tensor().to_f64())
}

/// Softmax over the last axis, subtracting each row's maximum first.
pub fn softmax<T: Element>(x: &impl AsTensorView<T>) -> Result<Tensor<f64>, Error> {
    let xv = x.as_tensor_view();
    let out_shape = shape::softmax(xv.shape())?;
    let mut data = dense(&xv);
    let n = xv.shape()[xv.rank() - 1];
    if n > 0 {
        for row in data.chunks_mut(n) {
            softmax_row(row);
        }
    }
    Tensor::from_vec(&out_shape, data)
}

fn softmax_row(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in row.iter_mut() {
        *x /= sum;
    }
}

fn binary<T: Element>(
    op: &'static str,
    a: &impl AsTensorView<T>,
    b: &impl AsTensorView<T>,
    f: impl Fn(f64, f64) -> f64,
) -> Result<Tensor<f64>, Error> {
    let (av, bv) = (a.as_tensor_view(), b.as_tensor_view());
    let out_shape = shape::elementwise(op, av.shape(), bv.shape())?;
    let data: Vec<f64> = if bv.rank() == 0 && av.rank() != 0 {
        let s = bv.iter().next().map_or(0.0, Element::to_f64);
        av.iter().map(|x| f(x.to_f64(), s)).collect()
    } else {
        av.iter()
            .zip(bv.iter())
            .map(|(x, y)| f(x.to_f64(), y.to_f64()))
            .collect()
    };
    Tensor::from_vec(&out_shape, data)
}

/// Element-wise sum; `b` has `a`'s shape or is a scalar.
pub fn add<T: Element>(
    a: &impl AsTensorView<T>,
    b: &impl AsTensorView<T>,
) -> Result<Tensor<f64>, Error> {
    binary("add", a, b, |x, y| x + y)
}

/// Element-wise product; `b` has `a`'s shape or is a scalar.
pub fn mul<T: Element>(
    a: &impl AsTensorView<T>,
    b: &impl AsTensorView<T>,
) -> Result<Tensor<f64>, Error> {
    binary("mul", a, b, |x, y| x * y)
}

/// Multiplies every element by `factor`.
pub fn scale<T: Element>(x: &impl AsTensorView<T>, factor: f64) -> Result<Tensor<f64>, Error> {
    let xv = x.as_tensor_view();
    Tensor::from_vec(xv.shape(), xv.iter().map(|v| v.to_f64() * factor).collect())
}

/// Scaled dot-product attention `softmax(q k^T * scale) v` over the last two
/// axes, for ranks 2 to 4 (see [`shape::attention`]; grouped-query heads
/// allowed). `scale` defaults to `1 / sqrt(D)`. All dimensions must be positive.
pub fn attention<T: Element>(
    q: &impl AsTensorView<T>,
    k: &impl AsTensorView<T>,
    v: &impl AsTensorView<T>,
    scale: Option<f64>,
) -> Result<Tensor<f64>, Error> {
    attention_with(
        q,
        k,
        v,
        &AttentionOptions {
            options: options::AttentionOptions {
                scale,
                ..options::AttentionOptions::new()
            },
            ..AttentionOptions::default()
        },
    )
}

/// The options of [`attention_with`]: the plain-data [`options::AttentionOptions`] (causal,
/// scale, window, softcap) and the tensors and per-head values that go with them.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionOptions<'a, T: Element> {
    /// Causal masking, the scale (`None`: `1 / sqrt(D)`), the sliding window and the softcap.
    pub options: options::AttentionOptions,
    /// An additive mask broadcastable to `[B, Hq, Sq, Sk]` (see [`shape::mask_dims`]).
    pub mask: Option<crate::tensor::TensorView<'a, T>>,
    /// Key padding `[B, Sk]` (row-major): `false` removes key `j` of batch `b`.
    pub key_padding: Option<&'a [bool]>,
    /// ALiBi slopes, one per query head: the score of query `i` and key `j` in head `h` gets
    /// `-alibi[h] * |p(i) - j|`, with `p(i) = i + Sk - Sq`.
    pub alibi: Option<&'a [f32]>,
    /// Attention-sink logits, one per query head: `exp(sinks[h])` joins the denominator of the
    /// softmax of every row of head `h` (`-inf`: no sink), with no value vector.
    pub sinks: Option<&'a [f32]>,
}

impl<T: Element> From<options::AttentionOptions> for AttentionOptions<'_, T> {
    /// These options without mask, key padding, ALiBi or sinks.
    fn from(options: options::AttentionOptions) -> Self {
        AttentionOptions {
            options,
            mask: None,
            key_padding: None,
            alibi: None,
            sinks: None,
        }
    }
}

/// Attention with every option: q `[B, Hq, Sq, D]` (or `[Hq, Sq, D]`, `[Sq, D]`), k
/// `[.., Hkv, Sk, D]`, v `[.., Hkv, Sk, Dv]` with `Hq % Hkv == 0` (query head `h` uses key/value
/// head `h / (Hq / Hkv)`). See [`attention_with_lse`] for the order in which the options
/// apply. A row with no visible key gives zeros; a NaN score makes its row NaN.
pub fn attention_with<T: Element>(
    q: &impl AsTensorView<T>,
    k: &impl AsTensorView<T>,
    v: &impl AsTensorView<T>,
    options: &AttentionOptions<'_, T>,
) -> Result<Tensor<f64>, Error> {
    attention_with_lse(q, k, v, options).map(|(out, _)| out)
}

/// [`attention_with`], also returning the log-sum-exp of each row's final scores, of q's shape
/// without its last dim.
///
/// With `p(i) = i + Sk - Sq` query `i`'s bottom-right aligned position, each score is, in this
/// order: `s = scale * (q_i . k_j)`; with a softcap `c`, `s = c * tanh(s / c)`; with ALiBi,
/// `s -= alibi[h] * |p(i) - j|`; plus the mask; then `-inf` where the key is removed (outside
/// [`options::AttentionOptions::key_bounds`] of `p(i)`: causal, window; or by key padding).
/// `out_i = sum_j e^{s_ij} v_j / (sum_j e^{s_ij} + e^{sink_h})` and
/// `lse_i = ln(sum_j e^{s_ij} + e^{sink_h})` (no sink term without sinks). A row with no
/// visible key and no sink gives zeros and `lse = -inf`.
pub fn attention_with_lse<T: Element>(
    q: &impl AsTensorView<T>,
    k: &impl AsTensorView<T>,
    v: &impl AsTensorView<T>,
    options: &AttentionOptions<'_, T>,
) -> Result<(Tensor<f64>, Tensor<f64>), Error> {
    const OP: &str = "attention";
    let (qv, kv, vv) = (q.as_tensor_view(), k.as_tensor_view(), v.as_tensor_view());
    let dims = shape::attention_dims(qv.shape(), kv.shape(), vv.shape())?;
    shape::check_nonempty(OP, "q", qv.shape())?;
    shape::check_nonempty(OP, "k", kv.shape())?;
    shape::check_nonempty(OP, "v", vv.shape())?;
    let o = options.options;
    o.validate()?;
    let (b_n, hq, sq, d, sk, dv) = (dims.b, dims.hq, dims.sq, dims.d, dims.sk, dims.dv);
    for (name, values) in [("alibi", options.alibi), ("sinks", options.sinks)] {
        if let Some(x) = values {
            options::check_per_head(name, x, hq, qv.shape())?;
        }
    }
    let group = dims.group();
    let mask = match &options.mask {
        Some(m) => {
            let has = shape::mask_dims(m.shape(), &dims, shape::MaskRule::Broadcast)?;
            // Row-major strides of the mask, mapped onto the four target dims.
            let mut strides = [0usize; 4];
            let mut st = 1;
            for (i, &n) in m.shape().iter().enumerate().rev() {
                let t = 4 - m.rank() + i;
                if has[t] {
                    strides[t] = st;
                }
                st *= n;
            }
            Some((dense(m), strides))
        }
        None => None,
    };
    if let Some(p) = options.key_padding
        && p.len() != b_n * sk
    {
        return Err(Error::ShapeMismatch {
            op: OP,
            message: format!(
                "key_padding has {} elements but must be [B, Sk] = [{b_n}, {sk}] ({} elements)",
                p.len(),
                b_n * sk
            ),
        });
    }
    let scale = o.scale_for(d);
    let cap = o.softcap.map(f64::from);
    let (qd, kd, vd) = (dense(&qv), dense(&kv), dense(&vv));
    let mut out_t = Tensor::<f64>::zeros(&dims.output())?;
    let mut lse_t = Tensor::<f64>::zeros(&dims.output()[..dims.rank - 1])?;
    let out = out_t.as_mut_slice();
    let lse = lse_t.as_mut_slice();
    let mut scores = vec![0.0; sk];
    for b in 0..b_n {
        for h in 0..hq {
            let kvh = b * dims.hkv + h / group;
            let qh = &qd[(b * hq + h) * sq * d..][..sq * d];
            let kb = &kd[kvh * sk * d..][..sk * d];
            let vb = &vd[kvh * sk * dv..][..sk * dv];
            let ob = &mut out[(b * hq + h) * sq * dv..][..sq * dv];
            let slope = options.alibi.map_or(0.0, |a| f64::from(a[h]));
            let sink = options.sinks.map_or(f64::NEG_INFINITY, |x| f64::from(x[h]));
            for i in 0..sq {
                // Bottom-right aligned position (may be negative when Sq > Sk).
                let p = i as i64 + sk as i64 - sq as i64;
                let (lo, hi) = o.key_bounds(p);
                let qi = &qh[i * d..(i + 1) * d];
                for (j, s) in scores.iter_mut().enumerate() {
                    let kj = &kb[j * d..(j + 1) * d];
                    *s = qi.iter().zip(kj).map(|(x, y)| x * y).sum::<f64>() * scale;
                    if let Some(c) = cap {
                        *s = c * (*s / c).tanh();
                    }
                    if slope != 0.0 {
                        *s -= slope * (p - j as i64).unsigned_abs() as f64;
                    }
                    if let Some((m, st)) = &mask {
                        *s += m[b * st[0] + h * st[1] + i * st[2] + j * st[3]];
                    }
                    let j = j as i64;
                    let outside = lo.is_some_and(|lo| j < lo) || hi.is_some_and(|hi| j > hi);
                    let padded = options.key_padding.is_some_and(|p| !p[b * sk + j as usize]);
                    if outside || padded {
                        *s = f64::NEG_INFINITY;
                    }
                }
                let oi = &mut ob[i * dv..(i + 1) * dv];
                let row = (b * hq + h) * sq + i;
                let max = scores.iter().copied().fold(sink, f64::max);
                if max == f64::NEG_INFINITY {
                    // No visible key and no sink: zeros.
                    lse[row] = f64::NEG_INFINITY;
                    continue;
                }
                let mut sum = (sink - max).exp();
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                lse[row] = max + sum.ln();
                for (j, &e) in scores.iter().enumerate() {
                    let p = e / sum;
                    for (o, &x) in oi.iter_mut().zip(&vb[j * dv..(j + 1) * dv]) {
                        *o += p * x;
                    }
                }
            }
        }
    }
    Ok((out_t, lse_t))
}

/// Merges attention results over disjoint key sets of the same queries, as
/// `attn::merge_partials` does, in f64: `lse = ln sum_p e^{lse_p}` and
/// `out = sum_p e^{lse_p - lse} out_p`; rows whose every part has `lse = -inf` give zeros and
/// `-inf`. Each part is `(out [.., Sq, Dv], lse [.., Sq])`, with the same shapes in every part.
pub fn merge_partials<T: Element, L: Element>(
    parts: &[(
        crate::tensor::TensorView<'_, T>,
        crate::tensor::TensorView<'_, L>,
    )],
) -> Result<(Tensor<f64>, Tensor<f64>), Error> {
    let (out_shape, lse_shape) = shape::merge_partials(
        &parts
            .iter()
            .map(|(o, l)| (o.shape(), l.shape()))
            .collect::<Vec<_>>(),
    )?;
    let rows = lse_shape.iter().product::<usize>();
    let dv = out_shape.last().copied().unwrap_or(1);
    let outs: Vec<Vec<f64>> = parts.iter().map(|(o, _)| dense(o)).collect();
    let lses: Vec<Vec<f64>> = parts.iter().map(|(_, l)| dense(l)).collect();
    let mut out = vec![0.0; rows * dv];
    let mut lse = vec![f64::NEG_INFINITY; rows];
    for r in 0..rows {
        let max = lses.iter().map(|l| l[r]).fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            continue;
        }
        let sum: f64 = lses.iter().map(|l| (l[r] - max).exp()).sum();
        lse[r] = max + sum.ln();
        for (o, l) in outs.iter().zip(&lses) {
            let w = (l[r] - lse[r]).exp();
            for (a, &x) in out[r * dv..(r + 1) * dv].iter_mut().zip(&o[r * dv..]) {
                *a += w * x;
            }
        }
    }
    Ok((
        Tensor::from_vec(&out_shape, out)?,
        Tensor::from_vec(&lse_shape, lse)?,
    ))
}

/// The result of [`compare`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Largest `|actual - expected|` (NaN-vs-number counts as infinite).
    pub max_abs_err: f64,
    /// Largest `|actual - expected| / |expected|` (infinite where expected is 0 and they differ).
    pub max_rel_err: f64,
    /// Row-major index of the element furthest outside (or least inside) the tolerance.
    pub worst_index: usize,
    /// Whether every element satisfies `|a - e| <= atol + rtol * |e|`.
    pub ok: bool,
}

/// Compares `actual` with `expected` element-wise.
///
/// An element passes iff `|a - e| <= atol + rtol * |e|`, or both are NaN, or
/// both are the same infinity. A NaN in `actual` where `expected` is not NaN
/// fails. Shapes must be equal, otherwise `Err`.
pub fn compare<T: Element>(
    actual: &impl AsTensorView<T>,
    expected: &Tensor<f64>,
    rtol: f64,
    atol: f64,
) -> Result<Comparison, Error> {
    let av = actual.as_tensor_view();
    if av.shape() != expected.shape() {
        return Err(Error::ShapeMismatch {
            op: "compare",
            message: format!(
                "actual has shape {:?} but expected has shape {:?}; they must be equal",
                av.shape(),
                expected.shape()
            ),
        });
    }
    let mut c = Comparison {
        max_abs_err: 0.0,
        max_rel_err: 0.0,
        worst_index: 0,
        ok: true,
    };
    let mut worst_excess = f64::NEG_INFINITY;
    for (i, (a, &e)) in av.iter().zip(expected.as_slice()).enumerate() {
        let a = a.to_f64();
        let (abs, rel, excess, pass) = if a == e || (a.is_nan() && e.is_nan()) {
            (0.0, 0.0, -(atol + rtol * e.abs()), true)
        } else {
            let diff = (a - e).abs();
            if diff.is_nan() {
                // NaN on one side only, or opposite infinities.
                (f64::INFINITY, f64::INFINITY, f64::INFINITY, false)
            } else {
                let tol = atol + rtol * e.abs();
                let rel = if e == 0.0 {
                    f64::INFINITY
                } else {
                    diff / e.abs()
                };
                (diff, rel, diff - tol, diff <= tol)
            }
        };
        c.max_abs_err = c.max_abs_err.max(abs);
        c.max_rel_err = c.max_rel_err.max(rel);
        c.ok &= pass;
        if excess > worst_excess {
            worst_excess = excess;
            c.worst_index = i;
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests;
