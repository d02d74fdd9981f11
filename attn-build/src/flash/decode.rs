//! The streaming ("decode") path of the fused kernel, taken at run time when a call has at most
//! [`DECODE_ROWS`] query rows and K and V have unit stride along their rows (`D`, `Dv`), as in
//! decoding with a KV cache (one row per head, or the few stacked query heads of a GQA group).
//! Packing K and V pays only when many query rows reuse the panels; here they are read in place.
//!
//! # Algorithm
//! - Q's rows are copied, pre-scaled, into a scratch zero-padded to `D' = ceil(D / w) * w`.
//! - For each block of `BK = DECODE_BLOCK_VECS * w` keys in the rows' key span and each query
//!   row, [`row_scores`]: the scores of `w` keys at a time are `w` vector accumulators along D
//!   (one Q vector times the K vector of each key, straight from K; the last partial vector of a
//!   row with a masked load), reduced to one vector of `w` scores by a transposing tree of
//!   shuffles and adds. Keys past Sk read the last key (a clamped index); the hook
//!   ([`Mods::apply`]) transforms the scores and removes keys past Sk and those the options
//!   remove.
//! - The online softmax update per row over the block (shared with the packed path); `P` is
//!   stored in place of the scores, `alpha` per row.
//! - `O = alpha O + P V` with the shared P.V tile, row by row (the block of V stays in L1 for
//!   the rows of a GQA group), in tiles of `PV` vectors of Dv, then single vectors, then the
//!   last partial vector with a masked load: no padded row or column is computed.
//!
//! The exponentials flush `-inf` to exactly 0 in every variant; NaN and infinite scores
//! propagate to their rows as in the packed path.

use super::ctx::Ctx;
use super::hook::{Keys, Mods, Rows};
use super::pack::tail_load;
use super::{softmax, tiles};
use crate::emit::{Cmp, Emitter, LoopKind, Ty, Val, math};
use attn_runtime::tuning::{DECODE_BLOCK_VECS, DECODE_PV_VECS, DECODE_ROWS};

/// What the phases of the decode path share: the D and Dv splits (full vectors, masked tail),
/// Q pre-scaled, and the per-row scratch (`alpha`, scores and P of the current key block).
struct Stream {
    w: usize,
    bk: usize,
    skm1: Val,
    dfull: Val,
    dtail: Val,
    dmask: Val,
    has_dtail: Val,
    dvfull: Val,
    dvtail: Val,
    dvmask: Val,
    has_dvtail: Val,
    qb: Val,
    als: Val,
    sb: Val,
}

impl Stream {
    /// The splits and scratch, and Q * scale2 (zero-padded to `D'`) in `qb`.
    fn new(e: &mut Emitter, cx: &Ctx) -> Stream {
        let w = cx.t.w;
        let bk = DECODE_BLOCK_VECS * w;
        let (c0, c1) = (e.idx(0), e.idx(1));
        let dp = e.round_up(&cx.d, w);
        let dfull = e.round_down(&cx.d, w);
        let dtail = e.sub(&cx.d, &dfull);
        let dvfull = e.round_down(&cx.dv, w);
        let dvtail = e.sub(&cx.dv, &dvfull);
        let qb = e.alloc(Ty::memref(&[Some(DECODE_ROWS), None], cx.ct), &[&dp]);
        let zero = e.float(0.0, &cx.ct.into());
        e.range(&cx.sq, |e, r| {
            e.each_kind(LoopKind::Vectorize, &c0, &cx.d, &c1, |e, dd| {
                let x = e.extract(&cx.q, &[r, dd]);
                let x = e.convert(&x, cx.ct);
                let y = e.mul(&x, &cx.scale2);
                e.store(&y, &qb, &[r, dd]);
            });
            e.each(&cx.d, &dp, &c1, |e, dd| e.store(&zero, &qb, &[r, dd]));
        });
        Stream {
            w,
            bk,
            skm1: e.sub(&cx.sk, &c1),
            dmask: e.create_mask(&dtail, w),
            has_dtail: e.cmp(Cmp::Ne, &dtail, &c0),
            dfull,
            dtail,
            dvmask: e.create_mask(&dvtail, w),
            has_dvtail: e.cmp(Cmp::Ne, &dvtail, &c0),
            dvfull,
            dvtail,
            qb,
            als: e.alloc(Ty::memref(&[Some(DECODE_ROWS)], cx.ct), &[]),
            sb: e.alloc(Ty::memref(&[Some(DECODE_ROWS), Some(bk)], cx.ct), &[]),
        }
    }

    /// Scores, masks and the online-softmax update of every row for the key block `keys`
    /// (P in `sb`, alpha in `als`).
    fn scores(&self, e: &mut Emitter, cx: &Ctx, mods: &Mods, keys: &Keys, ms: &Val, ls: &Val) {
        let (w, sb) = (self.w, &self.sb);
        let (cw, cbv) = (e.idx(w), e.idx(DECODE_BLOCK_VECS));
        e.range(&cx.sq, |e, r| {
            e.range(&cbv, |e, jv| {
                let jw = e.mul(jv, &cw);
                let k0 = e.add(&keys.kb, &jw);
                let sc = self.row_scores(e, cx, r, &k0);
                let mut sv = vec![vec![sc]];
                mods.apply(e, cx, keys, r, &jw, &mut sv, true);
                e.vstore(&sv[0][0], sb, &[r, &jw]);
            });
            let sv: Vec<Val> = (0..DECODE_BLOCK_VECS)
                .map(|j| {
                    let col = e.idx(j * w);
                    e.vload(sb, &[r, &col], w)
                })
                .collect();
            let alpha = softmax::update(e, cx.t.mca_markers, &[sv], ms, ls, r, |e, _, j, p| {
                let col = e.idx(j * w);
                e.vstore(p, sb, &[r, &col]);
            });
            e.vstore(&alpha, &self.als, &[r]);
        });
    }

    /// `O = alpha O + P V` over the block's `jn` keys from `kb`, row by row (the block of V stays
    /// in L1 for the rows of a GQA group). One row's tile is a chain of dependent FMAs per
    /// vector, so tiles are wide: [`DECODE_PV_VECS`] vectors of Dv, then at most one tile each of
    /// half, a quarter, .. of that for the full vectors left, then the masked last partial vector.
    fn pv(&self, e: &mut Emitter, cx: &Ctx, kb: &Val, jn: &Val, ob: &Val) {
        let w = self.w;
        let tile = |e: &mut Emitter, row: &Val, c: &Val, nv: usize, masked: bool| {
            let cols = tiles::columns(e, c, nv, w);
            let a = e.load(&self.als, &[row]);
            let alpha = [e.splat(&a, w)];
            let rows = [row.clone()];
            let t = tiles::PvTile {
                out: ob,
                rows: &rows,
                cols: &cols,
                alpha: &alpha,
                keys: jn,
            };
            tiles::pv_tile(
                e,
                cx.t.mca_markers,
                &t,
                |e, j, _, col| {
                    let key = e.add(kb, j);
                    if masked {
                        tail_load(e, cx, &cx.vu, &key, col, &self.dvtail, &self.dvmask)
                    } else {
                        let x = e.vload(&cx.vu, &[&key, col], w);
                        e.convert(&x, cx.ct)
                    }
                },
                |e, _, j| e.load(&self.sb, &[row, j]),
            );
        };
        let big = DECODE_PV_VECS;
        let (c0, cw, chunk) = (e.idx(0), e.idx(w), e.idx(big * w));
        let cend = e.round_down(&self.dvfull, big * w);
        let left = e.sub(&self.dvfull, &cend);
        let leftv = e.div(&left, &cw);
        // The pieces of `leftv` (< big) in binary, largest first: piece `n` is present when bit
        // `n` of `leftv` is set and starts after the larger pieces, at `round_down(leftv, 2n)`.
        let pieces: Vec<(usize, Val, Val)> = std::iter::successors(Some(big / 2), |n| Some(n / 2))
            .take_while(|&n| n > 0)
            .map(|n| {
                let before = e.round_down(&leftv, 2 * n);
                let bit = e.sub(&leftv, &before);
                let cn = e.idx(n);
                let has = e.cmp(Cmp::Ge, &bit, &cn);
                let off = e.mul(&before, &cw);
                (n, has, e.add(&cend, &off))
            })
            .collect();
        e.range(&cx.sq, |e, r| {
            e.each(&c0, &cend, &chunk, |e, c| tile(e, r, c, big, false));
            for (n, has, c) in &pieces {
                e.when(has, |e| tile(e, r, c, *n, false));
            }
            e.when(&self.has_dvtail, |e| tile(e, r, &self.dvfull, 1, true));
        });
    }

    /// The scores of query row `r` against the `w` keys from `k0` (keys past Sk clamped to the
    /// last): `w` accumulators along D, then one transposing reduction to a vector of `w` scores.
    /// The keys are taken [`KEY_GROUP`] at a time over D (one row address per key stays in a
    /// general register), the loop over D's vectors unrolled twice.
    fn row_scores(&self, e: &mut Emitter, cx: &Ctx, r: &Val, k0: &Val) -> Val {
        let (ku, qb, skm1) = (&cx.ku, &self.qb, &self.skm1);
        let (dfull, dtail, dmask, has_dtail) =
            (&self.dfull, &self.dtail, &self.dmask, &self.has_dtail);
        let w = cx.t.w;
        let (c0, cw) = (e.idx(0), e.idx(w));
        let nvd = e.div(dfull, &cw);
        let vzero = e.float(0.0, &cx.vt);
        let mut acc = Vec::with_capacity(w);
        for g in (0..w).step_by(KEY_GROUP) {
            let keys: Vec<Val> = (g..w.min(g + KEY_GROUP))
                .map(|i| {
                    let ci = e.idx(i);
                    let k = e.add(k0, &ci);
                    e.min_s(&k, skm1)
                })
                .collect();
            let inits = vec![vzero.clone(); keys.len()];
            let step = |e: &mut Emitter, jd: &Val, a: &[Val]| -> Vec<Val> {
                let dd = e.mul(jd, &cw);
                let qv = e.vload(qb, &[r, &dd], w);
                keys.iter()
                    .zip(a)
                    .map(|(k, a)| {
                        let kv = e.vload(ku, &[k, &dd], w);
                        let kv = e.convert(&kv, cx.ct);
                        e.vfma(&qv, &kv, a)
                    })
                    .collect()
            };
            let part = e.unrolled(&c0, &nvd, 2, &inits, None, &step);
            // The last partial vector of D.
            let tys = vec![cx.vt.clone(); keys.len()];
            let part = e.if_yield(
                has_dtail,
                &tys,
                |e| {
                    let qv = e.vload(qb, &[r, dfull], w);
                    keys.iter()
                        .zip(&part)
                        .map(|(k, a)| {
                            let kv = tail_load(e, cx, ku, k, dfull, dtail, dmask);
                            e.vfma(&qv, &kv, a)
                        })
                        .collect()
                },
                |_| part.clone(),
            );
            acc.extend(part);
        }
        math::transpose_sum(e, &acc)
    }
}

/// Keys per pass over D in the decode path's scores (their row addresses and accumulators are
/// live together: 16 keys' addresses spill on x86-64's 15 usable general registers).
const KEY_GROUP: usize = 8;

/// The decode branch: leaves the unnormalized output rows in `ob` (at least `DECODE_ROWS x Dv'`)
/// and the row maxima and sums in `ms`, `ls`; the caller normalizes.
pub fn run(e: &mut Emitter, cx: &Ctx, mods: &mut Mods, ob: &Val, ms: &Val, ls: &Val) {
    let st = Stream::new(e, cx);
    let c0 = e.idx(0);
    let block = Rows {
        q0: c0.clone(),
        n: cx.sq.clone(),
        padded: cx.sq.clone(),
        cap: DECODE_ROWS,
        kw: st.bk,
        packed: false,
    };
    mods.begin_rows(e, cx, &block);
    softmax::init_rows(e, cx, mods, &cx.sq, ob, ms, ls);
    let span = mods.key_span(e, cx);
    let cbk = e.idx(st.bk);
    let lo = e.round_down(&span.lo, st.bk);
    e.each(&lo, &span.hi, &cbk, |e, kb| {
        let left = e.sub(&span.hi, kb);
        let jn = e.min_s(&left, &cbk);
        let keys = Keys {
            kb: kb.clone(),
            width: st.bk,
        };
        mods.begin_keys(e, cx, &block, &keys, false);
        st.scores(e, cx, mods, &keys, ms, ls);
        st.pv(e, cx, kb, &jn, ob);
    });
}
