//! The crate's error type.

use core::fmt;

/// Everything that can go wrong in this crate.
///
/// Every message names the operation, the argument(s) and the shapes involved.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Shapes of two or more arguments are incompatible.
    ShapeMismatch {
        /// The operation, e.g. `"matmul"`.
        op: &'static str,
        /// A sentence naming the arguments and their shapes.
        message: String,
    },
    /// An argument has a rank the operation does not accept.
    InvalidRank {
        /// The operation.
        op: &'static str,
        /// The argument.
        arg: &'static str,
        /// The argument's shape.
        shape: Vec<usize>,
        /// The accepted ranks, in words, e.g. `"2 or 3"`.
        expected: String,
    },
    /// The number of data elements does not match the shape.
    DataLength {
        /// The operation.
        op: &'static str,
        /// The requested shape.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements supplied.
        actual: usize,
    },
    /// An argument has a zero-sized dimension where all sizes must be positive.
    EmptyDimension {
        /// The operation.
        op: &'static str,
        /// The argument.
        arg: &'static str,
        /// The argument's shape.
        shape: Vec<usize>,
    },
    /// An element count, offset or byte size overflows `usize` or `i64`.
    Overflow {
        /// The operation.
        op: &'static str,
        /// The argument.
        arg: &'static str,
        /// The argument's shape.
        shape: Vec<usize>,
    },
    /// A strided view's strides or offset reach outside its data, or alias.
    InvalidView {
        /// The operation.
        op: &'static str,
        /// A sentence naming the shape, strides, offset and data length.
        message: String,
    },
    /// Arguments passed to a compiled kernel do not match its signature.
    KernelSignature {
        /// The kernel's name.
        kernel: &'static str,
        /// A sentence naming the argument and what was expected.
        message: String,
    },
    /// An option has an invalid value.
    InvalidOption {
        /// The operation.
        op: &'static str,
        /// The option, e.g. `"scale"`.
        option: &'static str,
        /// What is wrong, with the value given.
        message: String,
    },
    /// The operation is not supported for these arguments.
    Unsupported {
        /// The operation.
        op: &'static str,
        /// Why.
        message: String,
    },
}

impl Error {
    /// The operation (or kernel) that produced this error.
    pub fn op(&self) -> &str {
        match self {
            Error::ShapeMismatch { op, .. }
            | Error::InvalidRank { op, .. }
            | Error::DataLength { op, .. }
            | Error::EmptyDimension { op, .. }
            | Error::Overflow { op, .. }
            | Error::InvalidView { op, .. }
            | Error::InvalidOption { op, .. }
            | Error::Unsupported { op, .. } => op,
            Error::KernelSignature { kernel, .. } => kernel,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, message }
            | Error::InvalidView { op, message }
            | Error::Unsupported { op, message } => write!(f, "{op}: {message}"),
            Error::InvalidRank {
                op,
                arg,
                shape,
                expected,
            } => write!(
                f,
                "{op}: {arg} has shape {shape:?} (rank {}); expected rank {expected}",
                shape.len()
            ),
            Error::DataLength {
                op,
                shape,
                expected,
                actual,
            } => write!(
                f,
                "{op}: shape {shape:?} needs {expected} elements but data has {actual}"
            ),
            Error::EmptyDimension { op, arg, shape } => write!(
                f,
                "{op}: {arg} has a zero-sized dimension (shape {shape:?}); all sizes must be positive"
            ),
            Error::Overflow { op, arg, shape } => write!(
                f,
                "{op}: {arg} with shape {shape:?} is too large (element count, offset or byte size overflows)"
            ),
            Error::InvalidOption {
                op,
                option,
                message,
            } => write!(f, "{op}: option `{option}`: {message}"),
            Error::KernelSignature { kernel, message } => {
                write!(f, "kernel `{kernel}`: {message}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// An invalid attention option (see [`AttentionOptions::validate`](crate::options::AttentionOptions::validate)).
impl From<crate::options::OptionError> for Error {
    fn from(e: crate::options::OptionError) -> Self {
        Error::InvalidOption {
            op: "attention",
            option: e.option,
            message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_messages() {
        let e = Error::DataLength {
            op: "Tensor::from_vec",
            shape: vec![2, 3],
            expected: 6,
            actual: 5,
        };
        assert_eq!(
            e.to_string(),
            "Tensor::from_vec: shape [2, 3] needs 6 elements but data has 5"
        );
        assert_eq!(e.op(), "Tensor::from_vec");
        let e = Error::EmptyDimension {
            op: "attention",
            arg: "q",
            shape: vec![0, 4],
        };
        assert_eq!(
            e.to_string(),
            "attention: q has a zero-sized dimension (shape [0, 4]); all sizes must be positive"
        );
        let e = Error::InvalidRank {
            op: "softmax",
            arg: "x",
            shape: vec![],
            expected: "at least 1".into(),
        };
        assert_eq!(
            e.to_string(),
            "softmax: x has shape [] (rank 0); expected rank at least 1"
        );
        let e = Error::KernelSignature {
            kernel: "attn",
            message: "expected 4 arguments but got 3".into(),
        };
        assert_eq!(e.op(), "attn");
        assert!(e.to_string().contains("attn"));
    }

    #[test]
    fn option_errors_name_the_option() {
        let e = Error::from(crate::options::OptionError {
            option: "scale",
            message: "the scale must be finite, got inf".into(),
        });
        assert_eq!(
            e.to_string(),
            "attention: option `scale`: the scale must be finite, got inf"
        );
        assert_eq!(e.op(), "attention");
    }

    #[test]
    fn is_std_error() {
        fn takes(_: &dyn std::error::Error) {}
        takes(&Error::Unsupported {
            op: "x",
            message: "y".into(),
        });
    }
}
