//! The options of scaled dot-product attention that are plain data (no tensors), shared by every
//! layer: the run-time API (`attn::Attention`), the reference ([`crate::reference`]), the
//! `attention!` grammar ([`crate::syntax`], feature `syntax`), and the compiler's graph and
//! lowering (`attn-build`).
//!
//! [`AttentionOptions::validate`] is the one definition of what a valid option is; each layer
//! turns its [`OptionError`] into its own error (a run-time [`Error`](crate::Error), a
//! `compile_error!` at the option's token, a graph error).
//!
//! Adding an option is one field here, its check in [`AttentionOptions::validate`], and each
//! layer's handling of it (how it is written, compiled and computed).
//!
//! ```
//! use attn_runtime::options::AttentionOptions;
//!
//! let o = AttentionOptions::new().with_causal(true).with_scale(0.125);
//! assert!(o.validate().is_ok());
//! assert_eq!(o.scale_for(64), 0.125);
//! assert_eq!(AttentionOptions::new().scale_for(64), 0.125); // 1/sqrt(D)
//! let e = AttentionOptions::new().with_scale(f64::NAN).validate().unwrap_err();
//! assert_eq!(e.to_string(), "option `scale`: the scale must be finite, got NaN");
//! ```

use core::fmt;

/// The plain-data options of one attention: `softmax(q k^T * scale + mask) v`, causal or not.
/// Tensors that go with an attention (masks, key padding) are held next to these by each layer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionOptions {
    /// Bottom-right aligned causal masking: query `i` sees the keys `j <= i + Sk - Sq` (the lower
    /// triangle when `Sq == Sk`); a query that sees no key gives zeros.
    pub causal: bool,
    /// The scale of the scores; `None` is `1/sqrt(D)` (D: the head dim of q and k). Must be
    /// finite. f64 attention uses it exactly; f32, bf16 and f16 round it to f32.
    pub scale: Option<f64>,
    /// A sliding window `(left, right)`: with `p(i) = i + Sk - Sq` query `i`'s bottom-right
    /// aligned position, query `i` sees the keys `j` with `p(i) - left <= j <= p(i) + right`
    /// (`usize::MAX`: unbounded on that side); with `causal` the right bound is also `p(i)`.
    pub window: Option<(usize, usize)>,
    /// Logit softcapping: each scaled score `s` becomes `cap * tanh(s / cap)` (before the ALiBi
    /// bias and the mask). Must be positive and finite.
    pub softcap: Option<f32>,
}

impl AttentionOptions {
    /// No option: not causal, scale `1/sqrt(D)`.
    pub const fn new() -> Self {
        AttentionOptions {
            causal: false,
            scale: None,
            window: None,
            softcap: None,
        }
    }

    /// These options with a sliding window of `left` keys before and `right` keys after each
    /// query's position (`usize::MAX`: unbounded).
    pub const fn with_window(mut self, left: usize, right: usize) -> Self {
        self.window = Some((left, right));
        self
    }

    /// These options with logit softcapping at `cap`.
    pub const fn with_softcap(mut self, cap: f32) -> Self {
        self.softcap = Some(cap);
        self
    }

    /// The visible keys of a query at bottom-right position `p` (may be negative), as the
    /// inclusive range `[lo, hi]` of key indices before clipping to `[0, Sk)`: the window's
    /// bounds, and `causal`'s `p`, combined (`None` on a side without a bound). The one rule
    /// every layer (reference, kernels' parameters) derives the visible keys from.
    pub fn key_bounds(&self, p: i64) -> (Option<i64>, Option<i64>) {
        let side = |n: usize| (n != usize::MAX).then(|| i64::try_from(n).unwrap_or(i64::MAX));
        let (mut lo, mut hi) = (None, None);
        if let Some((l, r)) = self.window {
            lo = side(l).map(|l| p.saturating_sub(l));
            hi = side(r).map(|r| p.saturating_add(r));
        }
        if self.causal {
            hi = Some(hi.map_or(p, |h| h.min(p)));
        }
        (lo, hi)
    }

    /// These options with `causal` set to `on`.
    pub const fn with_causal(mut self, on: bool) -> Self {
        self.causal = on;
        self
    }

    /// These options with an explicit scale.
    pub const fn with_scale(mut self, scale: f64) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Checks every option: the scale, when given, is finite; the softcap, when given, is
    /// positive and finite.
    pub fn validate(&self) -> Result<(), OptionError> {
        if let Some(s) = self.scale
            && !s.is_finite()
        {
            return Err(OptionError {
                option: "scale",
                message: format!("the scale must be finite, got {s}"),
            });
        }
        if let Some(c) = self.softcap
            && !(c.is_finite() && c > 0.0)
        {
            return Err(OptionError {
                option: "softcap",
                message: format!("the softcap must be positive and finite, got {c}"),
            });
        }
        Ok(())
    }

    /// The scale for head dim `head_dim`: the explicit one, else `1/sqrt(head_dim)`.
    pub fn scale_for(&self, head_dim: usize) -> f64 {
        self.scale.unwrap_or_else(|| default_scale(head_dim))
    }
}

/// Checks a per-query-head option (the `alibi` slopes, the `sinks` logits) of an attention
/// whose q has shape `q_shape` with `hq` query heads (1 at rank 2): exactly `hq` values, each
/// finite (a sink may also be `-inf`: no sink for that head). The one check the run-time API
/// and the reference apply.
///
/// ```
/// use attn_runtime::options::check_per_head;
/// assert!(check_per_head("alibi", &[0.5, 0.25], 2, &[1, 2, 7, 8]).is_ok());
/// let e = check_per_head("sinks", &[0.0; 3], 2, &[1, 2, 7, 8]).unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     "option `sinks`: 3 values given, but q [1, 2, 7, 8] has Hq = 2 query heads (one value per query head)"
/// );
/// ```
pub fn check_per_head(
    option: &'static str,
    values: &[f32],
    hq: usize,
    q_shape: &[usize],
) -> Result<(), OptionError> {
    if values.len() != hq {
        return Err(OptionError {
            option,
            message: format!(
                "{} values given, but q {q_shape:?} has Hq = {hq} query heads (one value per \
                 query head)",
                values.len()
            ),
        });
    }
    let sink = option == "sinks";
    if let Some((h, x)) = values
        .iter()
        .enumerate()
        .find(|(_, x)| !(x.is_finite() || (sink && **x == f32::NEG_INFINITY)))
    {
        let allowed = if sink {
            "finite (or -inf: no sink for that head)"
        } else {
            "finite"
        };
        return Err(OptionError {
            option,
            message: format!("the value of query head {h} is {x}; each must be {allowed}"),
        });
    }
    Ok(())
}

/// The default scale of attention with head dim `head_dim`: `1/sqrt(head_dim)`.
pub fn default_scale(head_dim: usize) -> f64 {
    1.0 / (head_dim as f64).sqrt()
}

/// An invalid attention option: which option, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError {
    /// The option's name, as the API and the `#[attn(..)]` attribute spell it (`"scale"`).
    pub option: &'static str,
    /// What is wrong, with the value given.
    pub message: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "option `{}`: {}", self.option, self.message)
    }
}

impl std::error::Error for OptionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_builders() {
        let o = AttentionOptions::default();
        assert_eq!(o, AttentionOptions::new());
        assert!(!o.causal && o.scale.is_none());
        assert_eq!(o.scale_for(4), 0.5);
        let o = o.with_causal(true).with_scale(2.0);
        assert!(o.causal);
        assert_eq!(o.scale_for(4), 2.0);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn window_and_causal_key_bounds() {
        let o = AttentionOptions::new();
        assert_eq!(o.key_bounds(5), (None, None));
        assert_eq!(o.with_causal(true).key_bounds(5), (None, Some(5)));
        let w = o.with_window(2, 1);
        assert_eq!(w.key_bounds(5), (Some(3), Some(6)));
        assert_eq!(w.with_causal(true).key_bounds(5), (Some(3), Some(5)));
        assert_eq!(
            o.with_window(usize::MAX, 0).key_bounds(-3),
            (None, Some(-3))
        );
        assert_eq!(o.with_window(0, usize::MAX).key_bounds(7), (Some(7), None));
    }

    #[test]
    fn softcaps_must_be_positive_and_finite() {
        for c in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
            let e = AttentionOptions::new()
                .with_softcap(c)
                .validate()
                .unwrap_err();
            assert_eq!(e.option, "softcap");
        }
        assert!(
            AttentionOptions::new()
                .with_softcap(30.0)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn non_finite_scales_are_rejected() {
        for s in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = AttentionOptions::new()
                .with_scale(s)
                .validate()
                .unwrap_err();
            assert_eq!(e.option, "scale");
            assert!(e.to_string().contains("must be finite"), "{e}");
        }
        assert!(AttentionOptions::new().with_scale(-0.5).validate().is_ok());
    }
}
