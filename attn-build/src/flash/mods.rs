//! User score and mask mods as the generator sees them ([`UserMods`]), and the block map of a
//! mask ([`BlockMap`]): for each micro-block of `BR` query rows and block of `BC` keys of the
//! tiling a kernel is generated for, whether the mask hides every key (the block is skipped),
//! shows every key (no per-element mask work) or is partial, computed at build time for masks
//! that read only indices and constants, and baked into the kernel.

use attn_runtime::DType;
use attn_runtime::mods::{Dims, Expr, Kind, ModPair, Scalar as Value, Type, eval};
use std::hash::{Hash, Hasher};

/// The most `(b, h, i, j)` evaluations a build-time block map may take; larger masks are
/// classified at run time instead.
pub const MAP_EVALUATIONS: usize = 1 << 26;

/// The mods of one attention, checked (by the lowering), with what the generator needs: the
/// static ranges of their variables and the types of the inputs they read.
#[derive(Clone, Debug)]
pub struct UserMods {
    /// The expressions.
    pub pair: ModPair,
    /// The element type (f32 or i32) and static shape of each input the expressions read.
    pub inputs: Vec<(DType, Vec<usize>)>,
    /// The static ranges of `b`, `h`, `i`, `j`.
    pub dims: Dims,
    key: String,
}

impl UserMods {
    /// The mods `pair` reading `inputs`, for an attention of `dims`.
    pub fn new(pair: ModPair, inputs: Vec<(DType, Vec<usize>)>, dims: Dims) -> UserMods {
        let mut key = pair.canonical(&|n| format!("in{n}"));
        for (d, s) in &inputs {
            key.push_str(&format!(";{d}{s:?}"));
        }
        key.push_str(&format!(";{}x{}x{}x{}", dims.b, dims.h, dims.sq, dims.sk));
        UserMods {
            pair,
            inputs,
            dims,
            key,
        }
    }

    /// A canonical text of everything the generated code depends on.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A short hex tag of [`UserMods::key`] for symbol names.
    pub fn tag(&self) -> String {
        format!("{:016x}", attn_runtime::hash::fnv1a(&[&self.key]))
    }
}

impl PartialEq for UserMods {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for UserMods {}

impl Hash for UserMods {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

/// Whether a mask can be classified at build time: it reads no input and computes on integers
/// and bools only (so that the evaluation here is exactly the kernel's).
pub fn static_mask(mask: &Expr) -> bool {
    !mask.any(&|e| {
        matches!(
            e.kind,
            Kind::Read { .. } | Kind::Float(_) | Kind::Cast(_, Type::Float)
        )
    })
}

/// Block classes.
pub const HIDDEN: u8 = 0;
/// Some keys of the block are visible to some rows.
pub const PARTIAL: u8 = 1;
/// Every key of the block is visible to every row.
pub const FULL: u8 = 2;

/// The classes of the blocks of a mask, for one tiling.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockMap {
    /// Whether the classes depend on the batch (else one map serves every batch).
    pub per_b: bool,
    /// Whether they depend on the query head.
    pub per_h: bool,
    /// Micro-blocks of rows: `ceil(Sq / BR)`.
    pub nmb: usize,
    /// Key blocks: `ceil(Sk / BC)`.
    pub nkb: usize,
    /// Super-blocks of rows: `ceil(Sq / QS)`.
    pub nsb: usize,
    /// `[B'][H'][nmb][nkb]` classes ([`HIDDEN`], [`PARTIAL`], [`FULL`]); `B'` is `B` when
    /// `per_b`, else 1 (`H'` likewise).
    pub classes: Vec<u8>,
    /// `[B'][H'][nsb]` the keys `[lo, hi)` a super-block needs (`lo == hi` when none).
    pub spans: Vec<(i32, i32)>,
    /// The fraction of (row, key) pairs in visible blocks (partial or full), over all blocks.
    pub visible: f64,
}

/// The block map of `mask` over `dims` for micro-blocks of `br` rows, key blocks of `bc` keys and
/// super-blocks of `qs` rows; `None` when the mask is not [`static_mask`] or too large to
/// evaluate ([`MAP_EVALUATIONS`]).
pub fn block_map(mask: &Expr, dims: &Dims, br: usize, bc: usize, qs: usize) -> Option<BlockMap> {
    use attn_runtime::mods::Var;
    if !static_mask(mask) || br == 0 || bc == 0 || qs == 0 {
        return None;
    }
    let per_b = mask.uses(Var::Batch) && dims.b > 1;
    let per_h = mask.uses(Var::Head) && dims.h > 1;
    let (nb, nh) = (
        if per_b { dims.b } else { 1 },
        if per_h { dims.h } else { 1 },
    );
    let (sq, sk) = (dims.sq, dims.sk);
    if nb * nh * sq * sk > MAP_EVALUATIONS {
        return None;
    }
    let nmb = sq.div_ceil(br);
    let nkb = sk.div_ceil(bc);
    let nsb = sq.div_ceil(qs);
    let mut classes = Vec::with_capacity(nb * nh * nmb * nkb);
    let mut spans = Vec::with_capacity(nb * nh * nsb);
    let mut seen = 0usize;
    let no_read = |_: usize, _: &[i64]| Value::Int(0);
    for b in 0..nb {
        for h in 0..nh {
            // Visible keys per (micro-block, key block).
            let mut counts = vec![0usize; nmb * nkb];
            for i in 0..sq {
                for j in 0..sk {
                    let at = [b as i64, h as i64, i as i64, j as i64];
                    if eval(mask, 0.0, at, &no_read) == Value::Bool(true) {
                        counts[(i / br) * nkb + j / bc] += 1;
                    }
                }
            }
            for mb in 0..nmb {
                let rows = br.min(sq - mb * br);
                for kb in 0..nkb {
                    let keys = bc.min(sk - kb * bc);
                    let c = counts[mb * nkb + kb];
                    classes.push(if c == 0 {
                        HIDDEN
                    } else if c == rows * keys {
                        FULL
                    } else {
                        PARTIAL
                    });
                    if c > 0 {
                        seen += rows * keys;
                    }
                }
            }
            let base = classes.len() - nmb * nkb;
            for sb in 0..nsb {
                let mbs = (sb * qs / br)..((sb + 1) * qs / br).min(nmb);
                let visible = |kb: usize| {
                    mbs.clone()
                        .any(|mb| classes[base + mb * nkb + kb] != HIDDEN)
                };
                let lo = (0..nkb).find(|&kb| visible(kb));
                let hi = (0..nkb).rev().find(|&kb| visible(kb));
                spans.push(match (lo, hi) {
                    (Some(lo), Some(hi)) => {
                        let lo = (lo * bc) as i32;
                        let hi = ((hi + 1) * bc).min(sk) as i32;
                        (lo, hi)
                    }
                    _ => (0, 0),
                });
            }
        }
    }
    let visible = seen as f64 / (nb * nh * sq * sk) as f64;
    Some(BlockMap {
        per_b,
        per_h,
        nmb,
        nkb,
        nsb,
        classes,
        spans,
        visible,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use attn_runtime::mods::{BinOp, Var};

    fn n(kind: Kind) -> Expr {
        Expr::new(0, kind)
    }

    fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        n(Kind::Binary(op, Box::new(a), Box::new(b)))
    }

    #[test]
    fn prefix_lm_blocks() {
        // j <= i || j < 8 over 32 x 32, blocks of 4 rows x 8 keys, super-blocks of 16 rows.
        let m = bin(
            BinOp::Or,
            bin(BinOp::Le, n(Kind::Var(Var::Col)), n(Kind::Var(Var::Row))),
            bin(BinOp::Lt, n(Kind::Var(Var::Col)), n(Kind::Int(8))),
        );
        let dims = Dims {
            b: 1,
            h: 2,
            sq: 32,
            sk: 32,
        };
        let map = block_map(&m, &dims, 4, 8, 16).unwrap();
        assert!(!map.per_b && !map.per_h);
        assert_eq!((map.nmb, map.nkb, map.nsb), (8, 4, 2));
        // Rows 0..4: keys 0..8 full (prefix), the rest hidden.
        assert_eq!(&map.classes[0..4], &[FULL, HIDDEN, HIDDEN, HIDDEN]);
        // Rows 8..12: keys 0..8 full, 8..16 partial (the diagonal), rest hidden.
        assert_eq!(&map.classes[8..12], &[FULL, PARTIAL, HIDDEN, HIDDEN]);
        // Rows 28..32: 0..24 full, 24..32 partial.
        assert_eq!(&map.classes[28..32], &[FULL, FULL, FULL, PARTIAL]);
        assert_eq!(map.spans, vec![(0, 16), (0, 32)]);
        assert!(map.visible > 0.5 && map.visible < 0.8, "{}", map.visible);
        // Heads: a mask of h is per head.
        let mh = bin(BinOp::Lt, n(Kind::Var(Var::Col)), n(Kind::Var(Var::Head)));
        let map = block_map(&mh, &dims, 4, 8, 16).unwrap();
        assert!(map.per_h);
        assert_eq!(map.spans, vec![(0, 0), (0, 0), (0, 8), (0, 8)]);
        // Reads and floats are classified at run time.
        let f = bin(
            BinOp::Lt,
            n(Kind::Cast(Box::new(n(Kind::Var(Var::Col))), Type::Float)),
            n(Kind::Float(2.5)),
        );
        assert!(block_map(&f, &dims, 4, 8, 16).is_none());
    }
}
