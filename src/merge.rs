//! Merging attention results over disjoint key sets by their log-sum-exp: the public
//! [`merge_partials`], and the row rule that split-KV decoding uses too.

use crate::AttentionElement;
use attn_runtime::{Error, Tensor, TensorView, shape};

/// The merge of one row: `lses` holds the parts' log-sum-exps and receives their weights
/// `e^{lse_p - lse}`; `extra` is the log-sum-exp of one more part with no value (a sink;
/// `-inf`: none). Returns the merged `lse = ln(sum_p e^{lse_p} + e^{extra})`. Every part at
/// `-inf` gives weights 0 and `-inf`; a NaN or `+inf` part gives NaN weights and lse.
pub(crate) fn merge_weights(lses: &mut [f64], extra: f64) -> f64 {
    let mut max = extra;
    let mut nan = extra.is_nan();
    for &l in lses.iter() {
        nan |= l.is_nan();
        max = max.max(l);
    }
    if nan || max == f64::INFINITY {
        lses.fill(f64::NAN);
        return f64::NAN;
    }
    if max == f64::NEG_INFINITY {
        lses.fill(0.0);
        return f64::NEG_INFINITY;
    }
    let mut total = (extra - max).exp();
    for l in lses.iter_mut() {
        *l = (*l - max).exp();
        total += *l;
    }
    for l in lses.iter_mut() {
        *l /= total;
    }
    max + total.ln()
}

/// Merges attention results over disjoint key sets of the same queries into the result over
/// their union: each part is `(out [.., Sq, Dv], lse [.., Sq])` as
/// [`Attention::run_with_lse`](crate::Attention::run_with_lse) returns them (any strides), all
/// of the same shapes. Returns `lse = ln sum_p e^{lse_p}` and `out = sum_p e^{lse_p - lse}
/// out_p`, computed in f64 and rounded once. Rows whose parts all have `lse = -inf` (no
/// visible key anywhere) give zeros and `-inf`. This is how split-KV decoding combines its key
/// chunks, and how results over a paged or distributed KV cache combine.
///
/// ```
/// use attn::{Attention, Tensor, TensorView};
/// let q = Tensor::random(&[4, 16], 1)?;
/// let k = Tensor::random(&[10, 16], 2)?;
/// let v = Tensor::random(&[10, 8], 3)?;
/// let rows = |t: &Tensor, a: usize, b: usize| -> Result<Tensor, attn::Error> {
///     let w = t.shape()[1];
///     Ok(TensorView::from_strided(t.as_slice(), &[b - a, w], &[w, 1], a * w)?.to_tensor())
/// };
/// let a = Attention::new().scale(0.25);
/// let first = a.run_with_lse(&q, &rows(&k, 0, 6)?, &rows(&v, 0, 6)?)?;
/// let second = a.run_with_lse(&q, &rows(&k, 6, 10)?, &rows(&v, 6, 10)?)?;
/// let (out, lse) = attn::merge_partials(&[
///     (first.0.view(), first.1.view()),
///     (second.0.view(), second.1.view()),
/// ])?;
/// let (whole, whole_lse) = a.run_with_lse(&q, &k, &v)?;
/// for (x, y) in out.as_slice().iter().zip(whole.as_slice()) {
///     assert!((x - y).abs() < 1e-5);
/// }
/// # let _ = (lse, whole_lse);
/// # Ok::<(), attn::Error>(())
/// ```
pub fn merge_partials<T: AttentionElement>(
    parts: &[(TensorView<'_, T>, TensorView<'_, f32>)],
) -> Result<(Tensor<T>, Tensor<f32>), Error> {
    let shapes: Vec<(&[usize], &[usize])> =
        parts.iter().map(|(o, l)| (o.shape(), l.shape())).collect();
    let (out_shape, lse_shape) = shape::merge_partials(&shapes)?;
    let dv = out_shape.last().copied().unwrap_or(1);
    let rows: usize = lse_shape.iter().product();
    let outs: Vec<Vec<T>> = parts.iter().map(|(o, _)| o.iter().collect()).collect();
    let lses: Vec<Vec<f32>> = parts.iter().map(|(_, l)| l.iter().collect()).collect();
    let mut out = Vec::with_capacity(rows * dv);
    let mut lse = Vec::with_capacity(rows);
    let mut w = vec![0.0f64; parts.len()];
    let mut acc = vec![0.0f64; dv];
    for r in 0..rows {
        for (wp, l) in w.iter_mut().zip(&lses) {
            *wp = f64::from(l[r]);
        }
        let merged = merge_weights(&mut w, f64::NEG_INFINITY);
        acc.fill(0.0);
        for (&wp, o) in w.iter().zip(&outs) {
            if wp != 0.0 {
                for (a, x) in acc.iter_mut().zip(&o[r * dv..(r + 1) * dv]) {
                    *a += wp * x.to_f64();
                }
            }
        }
        out.extend(acc.iter().map(|&a| T::from_f64(a)));
        lse.push(merged as f32);
    }
    Ok((
        Tensor::from_vec(&out_shape, out)?,
        Tensor::from_vec(&lse_shape, lse)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_a_row() {
        let mut w = [0.0f64, 0.0];
        let lse = merge_weights(&mut w, f64::NEG_INFINITY);
        assert!((lse - 2f64.ln()).abs() < 1e-15);
        assert_eq!(w, [0.5, 0.5]);
        let mut w = [0.0f64];
        let lse = merge_weights(&mut w, 0.0); // a sink as large as the part
        assert!((lse - 2f64.ln()).abs() < 1e-15 && w[0] == 0.5);
        let mut w = [f64::NEG_INFINITY; 3];
        assert_eq!(merge_weights(&mut w, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(w, [0.0; 3]);
        let mut w = [f64::NEG_INFINITY];
        assert_eq!(merge_weights(&mut w, 1.5), 1.5);
        assert_eq!(w, [0.0]);
        let mut w = [1.0, f64::NAN];
        assert!(merge_weights(&mut w, f64::NEG_INFINITY).is_nan() && w[0].is_nan());
        let mut w = [1.0, f64::INFINITY];
        assert!(merge_weights(&mut w, f64::NEG_INFINITY).is_nan());
        // Far apart: no overflow.
        let mut w = [1000.0, -1000.0];
        let lse = merge_weights(&mut w, f64::NEG_INFINITY);
        assert_eq!((lse, w[0]), (1000.0, 1.0));
    }
}
