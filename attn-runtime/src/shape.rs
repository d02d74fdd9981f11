//! Shape rules shared by the kernels' Rust wrappers and the reference
//! implementations. Each returns the output shape, or an [`Error`] naming the
//! operation, the arguments and their shapes.
//!
//! Argument names: `a`, `b` for binary operations, `x` for unary ones and
//! `q`, `k`, `v` for attention.

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
/// multiple of it (grouped-query attention; `Hkv = 1` is multi-query).
pub fn attention(q: &[usize], k: &[usize], v: &[usize]) -> Result<Vec<usize>, Error> {
    attention_dims(q, k, v).map(|d| {
        let mut out = q.to_vec();
        out[q.len() - 1] = d.dv;
        out
    })
}

/// The sizes of an attention call, with q, k and v seen as 4-D `[B, H, S, D]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    /// Rank of q, k and v (2 to 4).
    pub rank: usize,
    /// Batch size (1 below rank 4).
    pub b: usize,
    /// Query heads (1 for rank 2).
    pub hq: usize,
    /// Key/value heads (divides `hq`).
    pub hkv: usize,
    /// Query rows.
    pub sq: usize,
    /// Keys.
    pub sk: usize,
    /// Head dim of q and k.
    pub d: usize,
    /// Head dim of v (and the output).
    pub dv: usize,
}

impl AttentionDims {
    /// Query heads per key/value head.
    pub fn group(&self) -> usize {
        self.hq / self.hkv
    }
}

/// Checks attention shapes (see [`attention`]) and returns their sizes.
pub fn attention_dims(q: &[usize], k: &[usize], v: &[usize]) -> Result<AttentionDims, Error> {
    const OP: &str = "attention";
    for (arg, s) in [("q", q), ("k", k), ("v", v)] {
        if !(2..=4).contains(&s.len()) {
            return Err(rank_err(OP, arg, s, "2, 3 or 4"));
        }
    }
    let r = q.len();
    for (arg, s) in [("k", k), ("v", v)] {
        if s.len() != r {
            return Err(Error::ShapeMismatch {
                op: OP,
                message: format!(
                    "{arg} has shape {s:?} but q has shape {q:?}; the ranks ({} and {r}) must match",
                    s.len()
                ),
            });
        }
        if r == 4 && s[0] != q[0] {
            return Err(Error::ShapeMismatch {
                op: OP,
                message: format!(
                    "{arg} has shape {s:?} but q has shape {q:?}; the leading (batch) dimensions [{}] and [{}] must match",
                    s[0], q[0]
                ),
            });
        }
    }
    if r >= 3 {
        let (hq, hk, hv) = (q[r - 3], k[r - 3], v[r - 3]);
        if hv != hk {
            return Err(Error::ShapeMismatch {
                op: OP,
                message: format!(
                    "v has shape {v:?} but k has shape {k:?}; k and v must have the same number of heads ({hv} and {hk})"
                ),
            });
        }
        if hk == 0 || hq % hk != 0 {
            return Err(Error::ShapeMismatch {
                op: OP,
                message: format!(
                    "k has shape {k:?} but q has shape {q:?}; the query heads ({hq}) must be a multiple of the key/value heads ({hk}) (grouped-query attention)"
                ),
            });
        }
    }
    if k[r - 1] != q[r - 1] {
        return Err(Error::ShapeMismatch {
            op: OP,
            message: format!(
                "k has shape {k:?} but q has shape {q:?}; the last dimensions (head dim D) must match"
            ),
        });
    }
    if v[r - 2] != k[r - 2] {
        return Err(Error::ShapeMismatch {
            op: OP,
            message: format!(
                "v has shape {v:?} but k has shape {k:?}; the sequence dimensions (Sk: {} and {}) must match",
                v[r - 2],
                k[r - 2]
            ),
        });
    }
    let lead = |s: &[usize], i: usize| if r + i >= 4 { s[r + i - 4] } else { 1 };
    Ok(AttentionDims {
        rank: r,
        b: lead(q, 0),
        hq: lead(q, 1),
        hkv: lead(k, 1),
        sq: q[r - 2],
        sk: k[r - 2],
        d: q[r - 1],
        dv: v[r - 1],
    })
}

/// How an attention mask of shape `mask` broadcasts to `[B, Hq, Sq, Sk]`: for each of the four
/// target dims, whether the mask has it (`true`) or broadcasts it (`false`; a missing or size-1
/// dim). The mask's dims align to the right (`[Sq, Sk]`, `[B, 1, Sq, Sk]`, `[1, Sk]`, ...).
pub fn mask_broadcast(
    op: &'static str,
    arg: &'static str,
    mask: &[usize],
    target: [usize; 4],
) -> Result<[bool; 4], Error> {
    let err = || Error::ShapeMismatch {
        op,
        message: format!(
            "{arg} has shape {mask:?}, which does not broadcast to [B, Hq, Sq, Sk] = {target:?}; each of its dims (aligned to the right) must be 1 or equal"
        ),
    };
    if mask.len() > 4 {
        return Err(err());
    }
    let mut has = [false; 4];
    for (i, &m) in mask.iter().enumerate() {
        let t = 4 - mask.len() + i;
        if m == target[t] && m != 1 {
            has[t] = true;
        } else if m != 1 {
            return Err(err());
        }
    }
    Ok(has)
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
    fn attention_shapes() {
        assert_eq!(attention(&[4, 16], &[5, 16], &[5, 8]).unwrap(), vec![4, 8]);
        assert_eq!(
            attention(&[2, 3, 4, 16], &[2, 3, 5, 16], &[2, 3, 5, 7]).unwrap(),
            vec![2, 3, 4, 7]
        );
        assert_eq!(
            msg(attention(&[4, 16], &[5, 8], &[5, 8])),
            "attention: k has shape [5, 8] but q has shape [4, 16]; the last dimensions (head dim D) must match"
        );
        let m = msg(attention(&[4, 16], &[5, 16], &[6, 8]));
        assert!(
            m.contains("v has shape [6, 8]") && m.contains("[5, 16]"),
            "{m}"
        );
        let m = msg(attention(&[2, 4, 16], &[3, 5, 16], &[3, 5, 8]));
        assert!(
            m.contains("query heads (2) must be a multiple of the key/value heads (3)"),
            "{m}"
        );
        let m = msg(attention(&[2, 6, 4, 16], &[3, 2, 5, 16], &[3, 2, 5, 8]));
        assert!(
            m.contains("leading") && m.contains("[3]") && m.contains("[2]"),
            "{m}"
        );
        // Grouped-query attention: 6 query heads over 2 key/value heads.
        let d = attention_dims(&[2, 6, 4, 16], &[2, 2, 5, 16], &[2, 2, 5, 8]).unwrap();
        assert_eq!(
            (d.b, d.hq, d.hkv, d.group(), d.sq, d.sk),
            (2, 6, 2, 3, 4, 5)
        );
        let m = msg(attention(&[6, 4, 16], &[2, 5, 16], &[3, 5, 8]));
        assert!(m.contains("same number of heads"), "{m}");
        assert_eq!(
            mask_broadcast("attention", "mask", &[4, 5], [2, 6, 4, 5]).unwrap(),
            [false, false, true, true]
        );
        assert_eq!(
            mask_broadcast("attention", "mask", &[2, 1, 1, 5], [2, 6, 4, 5]).unwrap(),
            [true, false, false, true]
        );
        let m = msg(mask_broadcast("attention", "mask", &[3, 5], [2, 6, 4, 5]));
        assert!(
            m.contains("mask has shape [3, 5]") && m.contains("[2, 6, 4, 5]"),
            "{m}"
        );
        let m = msg(attention(&[2, 4, 16], &[5, 16], &[5, 8]));
        assert!(
            m.contains("k has shape [5, 16]") && m.contains("ranks"),
            "{m}"
        );
        let m = msg(attention(&[16], &[5, 16], &[5, 8]));
        assert!(m.starts_with("attention: q has shape [16] (rank 1)"), "{m}");
        let m = msg(attention(&[1, 1, 1, 4, 16], &[5, 16], &[5, 8]));
        assert!(m.contains("2, 3 or 4"), "{m}");
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
