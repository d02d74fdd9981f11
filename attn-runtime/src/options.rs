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
    /// finite.
    pub scale: Option<f64>,
}

impl AttentionOptions {
    /// No option: not causal, scale `1/sqrt(D)`.
    pub const fn new() -> Self {
        AttentionOptions {
            causal: false,
            scale: None,
        }
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

    /// Checks every option: the scale, when given, is finite.
    pub fn validate(&self) -> Result<(), OptionError> {
        if let Some(s) = self.scale
            && !s.is_finite()
        {
            return Err(OptionError {
                option: "scale",
                message: format!("the scale must be finite, got {s}"),
            });
        }
        Ok(())
    }

    /// The scale for head dim `head_dim`: the explicit one, else `1/sqrt(head_dim)`.
    pub fn scale_for(&self, head_dim: usize) -> f64 {
        self.scale.unwrap_or_else(|| default_scale(head_dim))
    }
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
