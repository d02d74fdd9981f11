//! What the attention shape rule reports: which argument, against which other, which dims and
//! which sizes ([`AttentionShapeError`]), and the sentence every layer shows for it.

use super::extent::{Extent, Show};
use super::rule::MaskRule;
use crate::error::Error;
use core::fmt;

/// An argument of attention, as shape errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// The queries, `[.., Hq, Sq, D]`.
    Q,
    /// The keys, `[.., Hkv, Sk, D]`.
    K,
    /// The values, `[.., Hkv, Sk, Dv]`.
    V,
    /// The additive mask, broadcast to `[B, Hq, Sq, Sk]`.
    Mask,
}

impl Operand {
    /// The argument's name: `q`, `k`, `v` or `mask`.
    pub const fn name(self) -> &'static str {
        match self {
            Operand::Q => "q",
            Operand::K => "k",
            Operand::V => "v",
            Operand::Mask => "mask",
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The rule that two arguments of attention break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mismatch {
    /// k or v has another rank than q.
    Rank,
    /// k or v has another batch size `B` (rank 4) than q.
    Batch,
    /// v has another number of heads `Hkv` than k.
    KvHeads,
    /// q's heads `Hq` are not a multiple of k's `Hkv` (grouped-query attention).
    GroupedHeads,
    /// k has another head dim `D` than q.
    HeadDim,
    /// v has another number of keys `Sk` than k.
    Keys,
}

/// What is wrong with the shapes of an attention: which argument, against which other, which
/// dims and which sizes. Plain data, generic over the dims ([`Extent`]); its `Display` is the
/// sentence every layer reports (after naming the operation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttentionShapeError<D> {
    /// q, k or v does not have rank 2, 3 or 4.
    Rank {
        /// The argument.
        arg: Operand,
        /// Its shape.
        shape: Vec<D>,
    },
    /// `arg` disagrees with `other` under `rule`.
    Mismatch {
        /// The rule broken.
        rule: Mismatch,
        /// The argument at fault.
        arg: Operand,
        /// Its shape.
        shape: Vec<D>,
        /// The argument it is checked against.
        other: Operand,
        /// That argument's shape.
        other_shape: Vec<D>,
        /// The two sizes that disagree: `arg`'s and `other`'s (ranks for [`Mismatch::Rank`]).
        sizes: (D, D),
    },
    /// The mask does not fit `rule`.
    Mask {
        /// The rule.
        rule: MaskRule,
        /// The mask's shape.
        shape: Vec<D>,
        /// `[B, Hq, Sq, Sk]` of the attention.
        target: [D; 4],
        /// The rank of q.
        q_rank: usize,
        /// The mask dim at fault (an index into `shape`); `None` when its rank is.
        dim: Option<usize>,
    },
}

impl<D> AttentionShapeError<D> {
    /// The argument at fault.
    pub fn arg(&self) -> Operand {
        match self {
            AttentionShapeError::Rank { arg, .. } | AttentionShapeError::Mismatch { arg, .. } => {
                *arg
            }
            AttentionShapeError::Mask { .. } => Operand::Mask,
        }
    }
}

const TARGET_NAMES: [&str; 4] = ["B", "Hq", "Sq", "Sk"];

impl<D: Extent> fmt::Display for AttentionShapeError<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttentionShapeError::Rank { arg, shape } => write!(
                f,
                "{arg} has shape {} (rank {}); expected rank 2, 3 or 4",
                Show(shape),
                shape.len()
            ),
            AttentionShapeError::Mismatch {
                rule,
                arg,
                shape,
                other,
                other_shape,
                sizes: (a, b),
            } => {
                write!(
                    f,
                    "{arg} has shape {} but {other} has shape {}; ",
                    Show(shape),
                    Show(other_shape)
                )?;
                match rule {
                    Mismatch::Rank => write!(f, "the ranks ({a} and {b}) must match"),
                    Mismatch::Batch => {
                        write!(
                            f,
                            "the leading (batch) dimensions (B: {a} and {b}) must match"
                        )
                    }
                    Mismatch::KvHeads => write!(
                        f,
                        "k and v must have the same number of heads (Hkv: {a} and {b})"
                    ),
                    Mismatch::GroupedHeads => write!(
                        f,
                        "the query heads ({b}) must be a multiple of the key/value heads ({a}) \
                         (grouped-query attention)"
                    ),
                    Mismatch::HeadDim => {
                        write!(
                            f,
                            "the last dimensions (head dim D: {a} and {b}) must match"
                        )
                    }
                    Mismatch::Keys => {
                        write!(f, "the sequence dimensions (Sk: {a} and {b}) must match")
                    }
                }
            }
            AttentionShapeError::Mask {
                rule,
                shape,
                target,
                q_rank,
                dim,
            } => {
                match rule {
                    MaskRule::Broadcast => write!(
                        f,
                        "mask has shape {}, which does not broadcast to [B, Hq, Sq, Sk] = {}",
                        Show(shape),
                        Show(target)
                    )?,
                    MaskRule::Compiled => {
                        write!(
                            f,
                            "mask has shape {}; compiled kernels take a mask [Sq, Sk] = [{}, {}]",
                            Show(shape),
                            target[2],
                            target[3]
                        )?;
                        if *q_rank > 2 {
                            let lead: Vec<String> = target[4 - q_rank..2]
                                .iter()
                                .map(|d| {
                                    if d.is_one() {
                                        "1".into()
                                    } else {
                                        format!("1|{d}")
                                    }
                                })
                                .collect();
                            write!(
                                f,
                                ", or of q's rank with each leading dim 1 or q's: [{}, {}, {}]",
                                lead.join(", "),
                                target[2],
                                target[3]
                            )?;
                        }
                    }
                }
                let strict = *rule == MaskRule::Compiled;
                match dim {
                    None if strict => write!(f, "; its rank is {}", shape.len()),
                    None => write!(f, ": its rank ({}) must be at most 4", shape.len()),
                    Some(i) => {
                        let t = (4 + i).saturating_sub(shape.len()).min(3);
                        let (m, name, want) = (shape[*i], TARGET_NAMES[t], target[t]);
                        if strict && t >= 2 {
                            write!(f, "; its dim {i} ({m}) must be {name} = {want}")
                        } else if strict {
                            write!(f, "; its dim {i} ({m}) must be 1 or {name} = {want}")
                        } else {
                            write!(
                                f,
                                ": its dim {i} ({m}) must be 1 or {name} = {want} (dims align to \
                                 the right)"
                            )
                        }
                    }
                }
            }
        }
    }
}

impl<D: Extent> std::error::Error for AttentionShapeError<D> {}

/// The run-time form: wrong ranks are [`Error::InvalidRank`], the rest [`Error::ShapeMismatch`].
impl From<AttentionShapeError<usize>> for Error {
    fn from(e: AttentionShapeError<usize>) -> Self {
        match e {
            AttentionShapeError::Rank { arg, shape } => Error::InvalidRank {
                op: "attention",
                arg: arg.name(),
                shape,
                expected: "2, 3 or 4".into(),
            },
            other => Error::ShapeMismatch {
                op: "attention",
                message: other.to_string(),
            },
        }
    }
}
