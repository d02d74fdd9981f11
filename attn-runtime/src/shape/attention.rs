//! The shape rule of attention, generic over the size of a dim ([`Extent`]): the one rule that
//! the run-time API, the reference, the `attention!` checker, the graph API and the lowering
//! apply, each turning an [`AttentionShapeError`] (`error.rs`) into its own error type.

use super::error::{AttentionShapeError, Mismatch, Operand};
use super::extent::Extent;
use super::rule::MaskRule;
#[cfg(test)]
use crate::error::Error;

/// The sizes of an attention call, with q, k and v seen as 4-D `[B, H, S, D]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims<D = usize> {
    /// Rank of q, k and v (2 to 4).
    pub rank: usize,
    /// Batch size (1 below rank 4).
    pub b: D,
    /// Query heads (1 for rank 2).
    pub hq: D,
    /// Key/value heads (divides `hq`).
    pub hkv: D,
    /// Query rows.
    pub sq: D,
    /// Keys.
    pub sk: D,
    /// Head dim of q and k.
    pub d: D,
    /// Head dim of v (and the output).
    pub dv: D,
}

impl AttentionDims {
    /// Query heads per key/value head.
    pub fn group(&self) -> usize {
        self.hq / self.hkv
    }
}

impl<D: Extent> AttentionDims<D> {
    /// `[B, Hq, Sq, Sk]`: what a mask broadcasts to.
    pub fn target(&self) -> [D; 4] {
        [self.b, self.hq, self.sq, self.sk]
    }

    /// The output's shape: q's with `Dv` last.
    pub fn output(&self) -> Vec<D> {
        [self.b, self.hq, self.sq, self.dv][4 - self.rank..].to_vec()
    }
}

/// Checks the shapes of `attention(q, k, v)` and returns their sizes: q `[.., Hq, Sq, D]`,
/// k `[.., Hkv, Sk, D]` and v `[.., Hkv, Sk, Dv]` of the same rank (2 to 4: `[S, D]`,
/// `[H, S, D]`, `[B, H, S, D]`), equal batch sizes, and `Hq % Hkv == 0` (grouped-query
/// attention: query head `h` reads key/value head `h / (Hq / Hkv)`; `Hkv = 1` is multi-query).
///
/// Unknown sizes ([`Dim::Dynamic`](super::Dim::Dynamic)) match anything; the returned sizes are
/// the known ones where any is.
pub fn attention_dims<D: Extent>(
    q: &[D],
    k: &[D],
    v: &[D],
) -> Result<AttentionDims<D>, AttentionShapeError<D>> {
    use Operand::{K, Q, V};
    for (arg, s) in [(Q, q), (K, k), (V, v)] {
        if !(2..=4).contains(&s.len()) {
            return Err(AttentionShapeError::Rank {
                arg,
                shape: s.to_vec(),
            });
        }
    }
    let mismatch = |rule, arg, shape: &[D], other, other_shape: &[D], sizes| {
        Err(AttentionShapeError::Mismatch {
            rule,
            arg,
            shape: shape.to_vec(),
            other,
            other_shape: other_shape.to_vec(),
            sizes,
        })
    };
    let r = q.len();
    let mut b = if r == 4 { q[0] } else { D::known(1) };
    for (arg, s) in [(K, k), (V, v)] {
        if s.len() != r {
            return mismatch(
                Mismatch::Rank,
                arg,
                s,
                Q,
                q,
                (D::known(s.len()), D::known(r)),
            );
        }
        if r == 4 {
            match b.unify(s[0]) {
                Some(x) => b = x,
                None => {
                    let (other, o) = if s[0].unify(q[0]).is_none() {
                        (Q, q)
                    } else {
                        (K, k)
                    };
                    return mismatch(Mismatch::Batch, arg, s, other, o, (s[0], o[0]));
                }
            }
        }
    }
    let (mut hq, mut hkv) = (D::known(1), D::known(1));
    if r >= 3 {
        let h = r - 3;
        let Some(hk) = k[h].unify(v[h]) else {
            return mismatch(Mismatch::KvHeads, V, v, K, k, (v[h], k[h]));
        };
        if let (Some(nq), Some(nk)) = (q[h].size(), hk.size())
            && (nk == 0 || nq % nk != 0)
        {
            return mismatch(Mismatch::GroupedHeads, K, k, Q, q, (hk, q[h]));
        }
        (hq, hkv) = (q[h], hk);
    }
    let Some(d) = q[r - 1].unify(k[r - 1]) else {
        return mismatch(Mismatch::HeadDim, K, k, Q, q, (k[r - 1], q[r - 1]));
    };
    let Some(sk) = k[r - 2].unify(v[r - 2]) else {
        return mismatch(Mismatch::Keys, V, v, K, k, (v[r - 2], k[r - 2]));
    };
    Ok(AttentionDims {
        rank: r,
        b,
        hq,
        hkv,
        sq: q[r - 2],
        sk,
        d,
        dv: v[r - 1],
    })
}

/// Checks an attention mask of shape `mask` against `dims` under `rule`, and returns, for each
/// of the four target dims `[B, Hq, Sq, Sk]`, whether the mask has it (`true`) or broadcasts it
/// (`false`: a missing or size-1 dim). The mask's dims align to the right.
pub fn mask_dims<D: Extent>(
    mask: &[D],
    dims: &AttentionDims<D>,
    rule: MaskRule,
) -> Result<[bool; 4], AttentionShapeError<D>> {
    let target = dims.target();
    let err = |dim| AttentionShapeError::Mask {
        rule,
        shape: mask.to_vec(),
        target,
        q_rank: dims.rank,
        dim,
    };
    let rm = mask.len();
    let compiled = rule == MaskRule::Compiled;
    if rm > 4 || (compiled && rm != 2 && rm != dims.rank) {
        return Err(err(None));
    }
    let mut has = [false; 4];
    for (i, &m) in mask.iter().enumerate() {
        let t = 4 - rm + i;
        // Compiled kernels never broadcast Sq and Sk.
        if m.is_one() && !(compiled && t >= 2) {
            continue;
        }
        if m.unify(target[t]).is_none() {
            return Err(err(Some(i)));
        }
        has[t] = !m.is_one();
    }
    Ok(has)
}

#[cfg(test)]
mod tests {
    use super::super::Dim;
    use super::*;

    fn msg<T: core::fmt::Debug>(r: Result<T, AttentionShapeError<usize>>) -> String {
        Error::from(r.unwrap_err()).to_string()
    }

    #[test]
    fn attention_shapes() {
        let d = attention_dims(&[2, 6, 4, 16], &[2, 2, 5, 16], &[2, 2, 5, 8]).unwrap();
        assert_eq!(
            (d.b, d.hq, d.hkv, d.group(), d.sq, d.sk, d.d, d.dv),
            (2, 6, 2, 3, 4, 5, 16, 8)
        );
        assert_eq!(d.output(), vec![2, 6, 4, 8]);
        assert_eq!(d.target(), [2, 6, 4, 5]);
        let d = attention_dims(&[4, 16], &[5, 16], &[5, 8]).unwrap();
        assert_eq!((d.b, d.hq, d.hkv, d.rank), (1, 1, 1, 2));
        assert_eq!(d.output(), vec![4, 8]);
        assert_eq!(
            msg(attention_dims(&[4, 16], &[5, 8], &[5, 8])),
            "attention: k has shape [5, 8] but q has shape [4, 16]; the last dimensions (head dim D: 8 and 16) must match"
        );
        assert_eq!(
            msg(attention_dims(&[4, 16], &[5, 16], &[6, 8])),
            "attention: v has shape [6, 8] but k has shape [5, 16]; the sequence dimensions (Sk: 6 and 5) must match"
        );
        let m = msg(attention_dims(&[2, 4, 16], &[3, 5, 16], &[3, 5, 8]));
        assert!(
            m.contains("query heads (2) must be a multiple of the key/value heads (3)"),
            "{m}"
        );
        let m = msg(attention_dims(
            &[2, 6, 4, 16],
            &[3, 2, 5, 16],
            &[3, 2, 5, 8],
        ));
        assert!(
            m.contains("k has shape [3, 2, 5, 16] but q has shape [2, 6, 4, 16]")
                && m.contains("leading (batch) dimensions (B: 3 and 2)"),
            "{m}"
        );
        let m = msg(attention_dims(&[6, 4, 16], &[2, 5, 16], &[3, 5, 8]));
        assert!(m.contains("same number of heads (Hkv: 3 and 2)"), "{m}");
        let m = msg(attention_dims(&[2, 4, 16], &[5, 16], &[5, 8]));
        assert!(
            m.contains("k has shape [5, 16]") && m.contains("ranks (2 and 3)"),
            "{m}"
        );
        let m = msg(attention_dims(&[16], &[5, 16], &[5, 8]));
        assert!(m.starts_with("attention: q has shape [16] (rank 1)"), "{m}");
        let m = msg(attention_dims(&[1, 1, 1, 4, 16], &[5, 16], &[5, 8]));
        assert!(m.contains("2, 3 or 4"), "{m}");
        let e = attention_dims(&[2, 4, 16], &[0, 5, 16], &[0, 5, 8]).unwrap_err();
        assert_eq!(e.arg(), Operand::K);
    }

    #[test]
    fn dynamic_dims_match_anything() {
        let (s, x) = (Dim::Static, Dim::Dynamic);
        let d = attention_dims(
            &[x, s(6), x, s(16)],
            &[s(2), x, s(5), x],
            &[x, s(3), x, s(8)],
        )
        .unwrap();
        assert_eq!(d.b, s(2));
        assert_eq!(
            (d.hq, d.hkv, d.sq, d.sk, d.d, d.dv),
            (s(6), s(3), x, s(5), s(16), s(8))
        );
        assert_eq!(d.output(), vec![s(2), s(6), x, s(8)]);
        // Known sizes still have to agree, and known heads divide.
        let e = attention_dims(&[x, s(6), x, s(16)], &[x, s(4), x, x], &[x, x, x, x]).unwrap_err();
        assert!(
            e.to_string()
                .contains("query heads (6) must be a multiple of the key/value heads (4)"),
            "{e}"
        );
        // k and v agree with a dynamic q but not with each other.
        let e = attention_dims(&[x, x, s(4)], &[s(2), x, s(4)], &[s(3), x, s(4)]).unwrap_err();
        assert!(e.to_string().contains("Hkv: 3 and 2"), "{e}");
        let e =
            attention_dims(&[x, x, x, s(4)], &[s(2), x, x, s(4)], &[s(3), x, x, s(4)]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("v has shape [3, ?, ?, 4] but k has shape [2, ?, ?, 4]"),
            "{e}"
        );
    }

    #[test]
    fn masks_broadcast() {
        let dims = attention_dims(&[2, 6, 4, 16], &[2, 2, 5, 16], &[2, 2, 5, 8]).unwrap();
        let b = MaskRule::Broadcast;
        assert_eq!(
            mask_dims(&[4, 5], &dims, b).unwrap(),
            [false, false, true, true]
        );
        assert_eq!(
            mask_dims(&[2, 1, 1, 5], &dims, b).unwrap(),
            [true, false, false, true]
        );
        assert_eq!(
            mask_dims(&[6, 1, 5], &dims, b).unwrap(),
            [false, true, false, true]
        );
        assert_eq!(mask_dims::<usize>(&[], &dims, b).unwrap(), [false; 4]);
        assert_eq!(
            msg(mask_dims(&[3, 5], &dims, b)),
            "attention: mask has shape [3, 5], which does not broadcast to [B, Hq, Sq, Sk] = [2, 6, 4, 5]: its dim 0 (3) must be 1 or Sq = 4 (dims align to the right)"
        );
        let m = msg(mask_dims(&[1, 1, 1, 4, 5], &dims, b));
        assert!(m.contains("rank (5) must be at most 4"), "{m}");
    }

    #[test]
    fn compiled_masks_are_the_documented_subset() {
        let dims = attention_dims(&[2, 4, 16, 32], &[2, 2, 24, 32], &[2, 2, 24, 32]).unwrap();
        let c = MaskRule::Compiled;
        for ok in [
            [16, 24].as_slice(),
            &[1, 1, 16, 24],
            &[2, 1, 16, 24],
            &[2, 4, 16, 24],
        ] {
            assert_eq!(
                mask_dims(ok, &dims, c).unwrap(),
                mask_dims(ok, &dims, MaskRule::Broadcast).unwrap(),
                "{ok:?}"
            );
        }
        for bad in [
            [1, 24].as_slice(),
            &[16, 1],
            &[4, 16, 24],
            &[2, 2, 16, 24],
            &[24, 16],
        ] {
            assert!(mask_dims(bad, &dims, c).is_err(), "{bad:?}");
        }
        assert_eq!(
            msg(mask_dims(&[2, 2, 16, 24], &dims, c)),
            "attention: mask has shape [2, 2, 16, 24]; compiled kernels take a mask [Sq, Sk] = [16, 24], or of q's rank with each leading dim 1 or q's: [1|2, 1|4, 16, 24]; its dim 1 (2) must be 1 or Hq = 4"
        );
        let m = msg(mask_dims(&[4, 16, 24], &dims, c));
        assert!(m.ends_with("; its rank is 3"), "{m}");
        let m = msg(mask_dims(&[1, 24], &dims, c));
        assert!(m.ends_with("its dim 0 (1) must be Sq = 16"), "{m}");
        // Rank 2: no leading dims to describe.
        let d2 = attention_dims(&[16, 32], &[24, 32], &[24, 32]).unwrap();
        assert_eq!(
            msg(mask_dims(&[24, 16], &d2, c)),
            "attention: mask has shape [24, 16]; compiled kernels take a mask [Sq, Sk] = [16, 24]; its dim 0 (24) must be Sq = 16"
        );
        // Dynamic sizes: accepted, checked when the kernel runs.
        let x = Dim::Dynamic;
        let dd = attention_dims(&[x, x], &[x, x], &[x, x]).unwrap();
        assert!(mask_dims(&[x, x], &dd, c).is_ok());
        assert!(mask_dims(&[Dim::Static(1), x], &dd, c).is_ok());
        assert!(mask_dims(&[x, x, x], &dd, c).is_err());
    }
}
