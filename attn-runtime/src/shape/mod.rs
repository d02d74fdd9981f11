//! Shape rules shared by the kernels' Rust wrappers and the reference
//! implementations. Each returns the output shape, or an [`Error`] naming the
//! operation, the arguments and their shapes.
//!
//! Argument names: `a`, `b` for binary operations, `x` for unary ones and
//! `q`, `k`, `v`, `mask` for attention.
//!
//! Attention's rule ([`attention_dims`], [`mask_dims`]) is generic over the size of a dim
//! ([`Extent`]: `usize`, or [`Dim`] for kernels whose dims are known only at run time) and
//! returns a plain-data [`AttentionShapeError`]: it is the one rule of the run-time API, the
//! reference, the `attention!` checker, and `attn-build`'s graph and lowering.

mod attention;
mod error;
mod extent;
mod rule;

pub use attention::{AttentionDims, attention_dims, mask_dims};
pub use error::{AttentionShapeError, Mismatch, Operand};
#[cfg(feature = "syntax")]
pub(crate) use extent::Show;
pub use extent::{Dim, Extent};
pub use rule::MaskRule;

use crate::error::Error;

fn rank_err(op: &'static str, arg: &'static str, shape: &[usize], expected: &str) -> Error {
    Error::InvalidRank {
        op,
        arg,
        shape: shape.to_vec(),
        expected: expected.to_string(),
    }
}

/// Checks that every dimension of `shape` is positive.
pub fn check_nonempty(op: &'static str, arg: &'static str, shape: &[usize]) -> Result<(), Error> {
    if shape.contains(&0) {
        return Err(Error::EmptyDimension {
            op,
            arg,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// Matrix product: `[M, K] x [K, N] -> [M, N]`, or batched
/// `[B, M, K] x [B, K, N] -> [B, M, N]`.
pub fn matmul(a: &[usize], b: &[usize]) -> Result<Vec<usize>, Error> {
    const OP: &str = "matmul";
    for (arg, s) in [("a", a), ("b", b)] {
        if !(2..=3).contains(&s.len()) {
            return Err(rank_err(OP, arg, s, "2 or 3"));
        }
    }
    if a.len() != b.len() {
        return Err(Error::ShapeMismatch {
            op: OP,
            message: format!(
                "a has shape {a:?} and b has shape {b:?}; the ranks ({} and {}) must match",
                a.len(),
                b.len()
            ),
        });
    }
    let r = a.len();
    let (m, ka) = (a[r - 2], a[r - 1]);
    let (kb, n) = (b[r - 2], b[r - 1]);
    if ka != kb {
        return Err(Error::ShapeMismatch {
            op: OP,
            message: format!(
                "a has shape {a:?} and b has shape {b:?}; the inner dimensions ({ka} and {kb}) must match"
            ),
        });
    }
    if r == 3 {
        if a[0] != b[0] {
            return Err(Error::ShapeMismatch {
                op: OP,
                message: format!(
                    "a has shape {a:?} and b has shape {b:?}; the batch dimensions ({} and {}) must match",
                    a[0], b[0]
                ),
            });
        }
        Ok(vec![a[0], m, n])
    } else {
        Ok(vec![m, n])
    }
}

/// Transpose of the last two axes: `[.., M, N] -> [.., N, M]`; rank >= 2.
pub fn transpose(x: &[usize]) -> Result<Vec<usize>, Error> {
    if x.len() < 2 {
        return Err(rank_err("transpose", "x", x, "at least 2"));
    }
    let mut out = x.to_vec();
    let r = out.len();
    out.swap(r - 2, r - 1);
    Ok(out)
}

/// Softmax over the last axis keeps the shape; rank >= 1.
pub fn softmax(x: &[usize]) -> Result<Vec<usize>, Error> {
    if x.is_empty() {
        return Err(rank_err("softmax", "x", x, "at least 1"));
    }
    Ok(x.to_vec())
}

/// Element-wise binary operation `op`: `b` has the shape of `a`, or is a
/// rank-0 scalar broadcast over `a`.
pub fn elementwise(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>, Error> {
    if a == b || b.is_empty() {
        return Ok(a.to_vec());
    }
    Err(Error::ShapeMismatch {
        op,
        message: format!(
            "a has shape {a:?} and b has shape {b:?}; b must have the same shape as a or be a scalar (shape [])"
        ),
    })
}

/// Scaled dot-product attention: `q [.., Sq, D]`, `k [.., Sk, D]`,
/// `v [.., Sk, Dv]` with the same rank (2 to 4) give `[.., Sq, Dv]`.
///
/// Rank 3 is `[H, S, D]`, rank 4 `[B, H, S, D]`. Batch sizes must be equal;
/// k and v have the same head count `Hkv`, and q's head count `Hq` must be a
/// multiple of it (grouped-query attention; `Hkv = 1` is multi-query). The rule
/// is [`attention_dims`].
pub fn attention(q: &[usize], k: &[usize], v: &[usize]) -> Result<Vec<usize>, Error> {
    Ok(attention_dims(q, k, v)?.output())
}

/// Merging partial attention results ([`crate::reference::merge_partials`],
/// `attn::merge_partials`): `parts` lists each part's `(out, lse)` shapes. Every `out` is
/// `[.., Sq, Dv]` (rank 1 to 4), every `lse` is its shape without the last dim, and all parts
/// have the same shapes. Returns the merged `(out, lse)` shapes.
pub fn merge_partials(parts: &[(&[usize], &[usize])]) -> Result<(Vec<usize>, Vec<usize>), Error> {
    const OP: &str = "merge_partials";
    let Some(&(out0, lse0)) = parts.first() else {
        return Err(Error::ShapeMismatch {
            op: OP,
            message: "no parts given; pass at least one (out, lse) pair".into(),
        });
    };
    if !(1..=4).contains(&out0.len()) {
        return Err(rank_err(OP, "out of part 0", out0, "1 to 4"));
    }
    if lse0 != &out0[..out0.len() - 1] {
        return Err(Error::ShapeMismatch {
            op: OP,
            message: format!(
                "part 0 has out {out0:?} and lse {lse0:?}; lse must be out's shape without its \
                 last dim ({:?})",
                &out0[..out0.len() - 1]
            ),
        });
    }
    for (p, &(out, lse)) in parts.iter().enumerate().skip(1) {
        if out != out0 || lse != lse0 {
            return Err(Error::ShapeMismatch {
                op: OP,
                message: format!(
                    "part {p} has out {out:?} and lse {lse:?} but part 0 has out {out0:?} and \
                     lse {lse0:?}; every part must have the same shapes"
                ),
            });
        }
    }
    Ok((out0.to_vec(), lse0.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T: core::fmt::Debug>(r: Result<T, Error>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn matmul_shapes() {
        assert_eq!(matmul(&[2, 3], &[3, 4]).unwrap(), vec![2, 4]);
        assert_eq!(matmul(&[5, 2, 3], &[5, 3, 4]).unwrap(), vec![5, 2, 4]);
        assert_eq!(
            msg(matmul(&[2, 3], &[4, 5])),
            "matmul: a has shape [2, 3] and b has shape [4, 5]; the inner dimensions (3 and 4) must match"
        );
        let m = msg(matmul(&[2, 2, 3], &[3, 3, 4]));
        assert!(
            m.contains("batch") && m.contains("[2, 2, 3]") && m.contains("[3, 3, 4]"),
            "{m}"
        );
        let m = msg(matmul(&[2, 3], &[1, 3, 4]));
        assert!(m.contains("ranks"), "{m}");
        let m = msg(matmul(&[3], &[3, 4]));
        assert!(m.starts_with("matmul: a has shape [3]"), "{m}");
        let m = msg(matmul(&[3, 3], &[1, 1, 3, 4]));
        assert!(m.starts_with("matmul: b has shape [1, 1, 3, 4]"), "{m}");
    }

    #[test]
    fn unary_shapes() {
        assert_eq!(transpose(&[2, 3, 4]).unwrap(), vec![2, 4, 3]);
        let m = msg(transpose(&[3]));
        assert!(
            m.contains("transpose") && m.contains("x") && m.contains("[3]"),
            "{m}"
        );
        assert_eq!(softmax(&[4]).unwrap(), vec![4]);
        assert!(msg(softmax(&[])).contains("softmax: x has shape []"));
    }

    #[test]
    fn elementwise_shapes() {
        assert_eq!(elementwise("add", &[2, 3], &[2, 3]).unwrap(), vec![2, 3]);
        assert_eq!(elementwise("mul", &[2, 3], &[]).unwrap(), vec![2, 3]);
        let m = msg(elementwise("add", &[2, 3], &[3]));
        assert!(
            m.starts_with("add: a has shape [2, 3] and b has shape [3]"),
            "{m}"
        );
    }

    #[test]
    fn attention_output_shapes() {
        assert_eq!(attention(&[4, 16], &[5, 16], &[5, 8]).unwrap(), vec![4, 8]);
        assert_eq!(
            attention(&[2, 3, 4, 16], &[2, 3, 5, 16], &[2, 3, 5, 7]).unwrap(),
            vec![2, 3, 4, 7]
        );
        assert_eq!(
            msg(attention(&[4, 16], &[5, 8], &[5, 8])),
            "attention: k has shape [5, 8] but q has shape [4, 16]; the last dimensions (head dim D: 8 and 16) must match"
        );
        let m = msg(attention(&[16], &[5, 16], &[5, 8]));
        assert!(m.starts_with("attention: q has shape [16] (rank 1)"), "{m}");
    }

    #[test]
    fn nonempty() {
        assert!(check_nonempty("attention", "q", &[1, 4]).is_ok());
        assert!(check_nonempty("attention", "q", &[]).is_ok());
        assert_eq!(
            check_nonempty("attention", "q", &[0, 4])
                .unwrap_err()
                .to_string(),
            "attention: q has a zero-sized dimension (shape [0, 4]); all sizes must be positive"
        );
    }
}
