//! The score/mask hook: the one abstraction through which the kernel's phases ask what an
//! attention option changes.
//!
//! A [`ScoreMod`] answers, for the packed (prefill) path and the streaming (decode) path alike:
//! - **which keys a block of query rows needs** ([`ScoreMod::key_span`], [`ScoreMod::sees`]):
//!   key blocks outside the span are never packed or computed, micro-blocks that see none of a
//!   key block are skipped, and those that see all of it skip the lane masks
//!   ([`ScoreMod::covers`]);
//! - **which lanes are valid** ([`ScoreMod::limits`]): the keys a row sees, as bounds on the lanes
//!   of its score vectors;
//! - **how a score is transformed** ([`ScoreMod::modify`]): applied in registers to the scaled
//!   scores, before the online softmax;
//! - **how a row's softmax starts** ([`ScoreMod::row_init`]): an attention sink.
//!
//! [`Mods`] composes them in the documented order (transforms in list order, then the removal of
//! keys) and adds what every kernel needs: keys past Sk are removed (in the dense kernel by masks
//! computed once, in the last key block only). The options are implementations of the hook:
//! [`band::Band`] (causal masking and sliding windows, by per-row positions),
//! [`mask::AddMask`] (additive masks, through which the run-time API also passes key padding),
//! [`bias::Softcap`], [`bias::Alibi`], [`bias::Sinks`], and a user's score and mask mods
//! ([`user::User`], compiled from their expressions by [`user_eval`]).

pub mod band;
pub mod bias;
pub mod mask;
pub mod user;
pub mod user_eval;

use super::ctx::Ctx;
use crate::emit::{Cmp, Emitter, Scalar, Ty, Val};

/// A block of query rows being processed: rows `q0..q0 + n` of the call, held in scratch rows
/// `0..padded` (`padded >= n`; rows past `n` are padding), at most `cap` of them.
pub struct Rows {
    /// The first row of the block in the call.
    pub q0: Val,
    /// The rows of the block.
    pub n: Val,
    /// The rows computed (a multiple of the micro-block height in the packed path).
    pub padded: Val,
    /// The most rows a block can have (the scratch size).
    pub cap: usize,
    /// Keys per key block of the path.
    pub kw: usize,
    /// Whether this is the packed path (micro-blocks of `BR` rows, key blocks of `BC` keys),
    /// else the decode path.
    pub packed: bool,
}

/// The key block being processed: keys `kb..kb + width` (those past Sk are padding).
pub struct Keys {
    /// The first key.
    pub kb: Val,
    /// Keys per block.
    pub width: usize,
}

/// The keys `[lo, hi)` a block of rows needs (indices).
pub struct Span {
    /// The first key needed.
    pub lo: Val,
    /// One past the last key needed.
    pub hi: Val,
}

/// The lanes of a row's score vectors that are keys it sees: `lo <= l < hi` (`i32`, relative to
/// the first key of the vectors; `None`: unbounded on that side).
#[derive(Clone, Default)]
pub struct Limits {
    /// The first visible lane.
    pub lo: Option<Val>,
    /// One past the last visible lane.
    pub hi: Option<Val>,
}

/// One attention option, as the kernel's phases see it. Every method has a default that
/// changes nothing; an implementation overrides what its option affects. `r` is a row of the
/// current [`Rows`] block (an index into its scratch rows); score vector `i` of a call covers the
/// keys `kb + first + i w ..`. Scores are in base-2 units (`scale log2 e (q . k)`, see
/// [`Ctx::scale2`]): an additive term `x` in natural units is added as `x log2 e`.
pub trait ScoreMod {
    /// Whether the option removes keys: removed scores are `-inf` (their exponentials are 0)
    /// and a row left without keys gives zeros.
    fn removes_keys(&self) -> bool {
        false
    }

    /// Whether the option itself removes the keys past Sk (so no separate bound is applied).
    fn bounds_keys(&self) -> bool {
        false
    }

    /// Whether [`ScoreMod::limits`] gives per-row bounds.
    fn has_limits(&self) -> bool {
        false
    }

    /// Called when a block of query rows starts (e.g. to load per-row parameters).
    fn begin_rows(&mut self, _e: &mut Emitter, _cx: &Ctx, _rows: &Rows) {}

    /// Narrows the keys the block of rows needs.
    fn key_span(&self, _e: &mut Emitter, _cx: &Ctx, span: Span) -> Span {
        span
    }

    /// Whether rows `r0..r0 + n` of the block see any key of the key block (`None`: always).
    fn sees(&self, _e: &mut Emitter, _r0: &Val, _n: usize, _keys: &Keys) -> Option<Val> {
        None
    }

    /// Whether rows `r0..r0 + n` see every key of the key block (`None`: always), so that their
    /// lanes need no masking.
    fn covers(&self, _e: &mut Emitter, _r0: &Val, _n: usize, _keys: &Keys) -> Option<Val> {
        None
    }

    /// Called when a key block starts (e.g. to gather the block's mask values).
    fn begin_keys(&mut self, _e: &mut Emitter, _cx: &Ctx, _rows: &Rows, _keys: &Keys) {}

    /// The lanes of row `r`'s vectors from key `kb + first` on that it sees.
    fn limits(&self, _e: &mut Emitter, _r: &Val, _keys: &Keys, _first: &Val) -> Limits {
        Limits::default()
    }

    /// Transforms the score vectors of rows `rows` in place (`s[i]`: the vectors of `rows[i]`).
    fn modify(
        &self,
        _e: &mut Emitter,
        _cx: &Ctx,
        _rows: &[Val],
        _keys: &Keys,
        _first: &Val,
        _s: &mut [Vec<Val>],
    ) {
    }

    /// A score (base-2 units, compute type) that row `r`'s softmax starts with, contributing to
    /// its denominator but to no value (an attention sink); `-inf` for none.
    fn row_init(&self, _e: &mut Emitter, _cx: &Ctx, _r: &Val) -> Option<Val> {
        None
    }
}

/// The options of one kernel, composed.
pub struct Mods {
    list: Vec<Box<dyn ScoreMod>>,
    /// Lane masks of the key bound for the current key block (hoisted out of the row loops),
    /// and whether the block is partial (only then are they applied).
    block_masks: Vec<Val>,
    partial: Option<Val>,
}

impl Mods {
    /// The given options, in order.
    pub fn new(list: Vec<Box<dyn ScoreMod>>) -> Mods {
        Mods {
            list,
            block_masks: Vec::new(),
            partial: None,
        }
    }

    /// Whether some option removes keys (see [`ScoreMod::removes_keys`]).
    pub fn removes_keys(&self) -> bool {
        self.list.iter().any(|m| m.removes_keys())
    }

    fn bounded(&self) -> bool {
        self.list.iter().any(|m| m.bounds_keys())
    }

    fn has_limits(&self) -> bool {
        self.list.iter().any(|m| m.has_limits())
    }

    /// See [`ScoreMod::begin_rows`].
    pub fn begin_rows(&mut self, e: &mut Emitter, cx: &Ctx, rows: &Rows) {
        for m in &mut self.list {
            m.begin_rows(e, cx, rows);
        }
    }

    /// The keys the current block of rows needs: `[0, Sk)` narrowed by every option.
    pub fn key_span(&self, e: &mut Emitter, cx: &Ctx) -> Span {
        let mut span = Span {
            lo: e.idx(0),
            hi: cx.sk.clone(),
        };
        for m in &self.list {
            span = m.key_span(e, cx, span);
        }
        span
    }

    fn all(
        &self,
        e: &mut Emitter,
        f: impl Fn(&dyn ScoreMod, &mut Emitter) -> Option<Val>,
    ) -> Option<Val> {
        let mut all: Option<Val> = None;
        for m in &self.list {
            if let Some(c) = f(m.as_ref(), e) {
                all = Some(match all {
                    Some(a) => e.and(&a, &c),
                    None => c,
                });
            }
        }
        all
    }

    /// Whether rows `r0..r0 + n` see the key block (`None`: always).
    pub fn sees(&self, e: &mut Emitter, r0: &Val, n: usize, keys: &Keys) -> Option<Val> {
        self.all(e, |m, e| m.sees(e, r0, n, keys))
    }

    /// The sink score of row `r` (base-2 units), if an option gives one.
    pub fn row_init(&self, e: &mut Emitter, cx: &Ctx, r: &Val) -> Option<Val> {
        self.list.iter().find_map(|m| m.row_init(e, cx, r))
    }

    /// Called when a key block starts; with `hoist`, the key bound's lane masks of a kernel
    /// without per-row limits are computed here once (for vectors from `kb` on).
    pub fn begin_keys(&mut self, e: &mut Emitter, cx: &Ctx, rows: &Rows, keys: &Keys, hoist: bool) {
        for m in &mut self.list {
            m.begin_keys(e, cx, rows, keys);
        }
        self.block_masks.clear();
        self.partial = None;
        if hoist && !self.has_limits() && !self.bounded() {
            // Lane j w + l is a key when kb + j w + l < Sk; only the last block is partial.
            let left = e.sub(&cx.sk, &keys.kb);
            let width = e.idx(keys.width);
            self.partial = Some(e.cmp(Cmp::Lt, &left, &width));
            let lim = e.index_cast(&left, Scalar::I32);
            let limv = e.splat(&lim, cx.t.w);
            for j in 0..keys.width / cx.t.w {
                let io = iota(e, cx.t.w, j * cx.t.w);
                self.block_masks.push(e.cmp(Cmp::Lt, &io, &limv));
            }
        }
    }

    /// The mask/modify phase: transforms the score vectors of rows `r0 + i` (`s[i]`, vectors
    /// from key `kb + first` on) by every option in order, then replaces removed keys by `-inf`
    /// (`flush`) or -3e38 (the dense kernel).
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        e: &mut Emitter,
        cx: &Ctx,
        keys: &Keys,
        r0: &Val,
        first: &Val,
        s: &mut [Vec<Val>],
        flush: bool,
    ) {
        let rows: Vec<Val> = (0..s.len())
            .map(|i| {
                let ci = e.idx(i);
                e.add(r0, &ci)
            })
            .collect();
        for m in &self.list {
            m.modify(e, cx, &rows, keys, first, s);
        }
        let gone = if flush {
            e.float(f64::NEG_INFINITY, &cx.vt)
        } else {
            e.float(-3.0e38, &cx.vt)
        };
        if !self.has_limits() {
            if let Some(partial) = &self.partial {
                // Only the last key block has lanes past Sk (masks hoisted by `begin_keys`).
                let masks = self.block_masks.clone();
                let per_row = masks.len();
                select_if(e, partial, s, |e, flat| {
                    flat.iter()
                        .enumerate()
                        .map(|(i, x)| e.select(&masks[i % per_row], x, &gone))
                        .collect()
                });
                return;
            }
            if self.bounded() {
                // An option (the mask) removes the keys past Sk itself.
                return;
            }
            // Else the key bound alone, by the per-row path below (the decode path, whose
            // vectors start at a run-time offset).
        }
        // Per-row limits, skipped where every row sees the whole block (and the block is not
        // past Sk, unless an option bounds the keys).
        let mut full = self.all(e, |m, e| m.covers(e, r0, s.len(), keys));
        if !self.bounded() {
            let left = e.sub(&cx.sk, &keys.kb);
            let width = e.idx(keys.width);
            let inside = e.cmp(Cmp::Ule, &width, &left);
            full = Some(match full {
                Some(f) => e.and(&f, &inside),
                None => inside,
            });
        }
        let masked = |e: &mut Emitter, flat: &[Val]| -> Vec<Val> {
            let per_row = flat.len() / rows.len();
            let mut out = Vec::with_capacity(flat.len());
            for (r, sr) in rows.iter().zip(flat.chunks(per_row)) {
                let lim = self.row_limits(e, cx, r, keys, first);
                for (j, x) in sr.iter().enumerate() {
                    let io = iota(e, cx.t.w, j * cx.t.w);
                    let mut ok: Option<Val> = None;
                    if let Some(lo) = &lim.lo {
                        let lov = e.splat(lo, cx.t.w);
                        ok = Some(e.cmp(Cmp::Ge, &io, &lov));
                    }
                    if let Some(hi) = &lim.hi {
                        let hiv = e.splat(hi, cx.t.w);
                        let c = e.cmp(Cmp::Lt, &io, &hiv);
                        ok = Some(match ok {
                            Some(a) => e.and(&a, &c),
                            None => c,
                        });
                    }
                    out.push(match ok {
                        Some(ok) => e.select(&ok, x, &gone),
                        None => x.clone(),
                    });
                }
            }
            out
        };
        match full {
            Some(full) => {
                let part = e.not(&full);
                select_if(e, &part, s, masked);
            }
            None => {
                let flat: Vec<Val> = s.iter().flatten().cloned().collect();
                let out = masked(e, &flat);
                let per_row = flat.len() / s.len();
                for (sr, chunk) in s.iter_mut().zip(out.chunks(per_row)) {
                    sr.clone_from_slice(chunk);
                }
            }
        }
    }

    /// The lanes row `r` sees: the intersection of every option's and (unless an option bounds
    /// the keys) `[0, Sk - kb - first)`.
    fn row_limits(&self, e: &mut Emitter, cx: &Ctx, r: &Val, keys: &Keys, first: &Val) -> Limits {
        let mut lim = Limits::default();
        if !self.bounded() {
            let kbi = e.index_cast(&keys.kb, Scalar::I32);
            let ski = e.index_cast(&cx.sk, Scalar::I32);
            let firsti = e.index_cast(first, Scalar::I32);
            let left = e.sub(&ski, &kbi);
            lim.hi = Some(e.sub(&left, &firsti));
        }
        for m in &self.list {
            let l = m.limits(e, r, keys, first);
            lim.lo = match (lim.lo, l.lo) {
                (Some(a), Some(b)) => Some(e.max_s(&a, &b)),
                (a, b) => a.or(b),
            };
            lim.hi = match (lim.hi, l.hi) {
                (Some(a), Some(b)) => Some(e.min_s(&a, &b)),
                (a, b) => a.or(b),
            };
        }
        lim
    }
}

/// Replaces the vectors of `s` (row by row) by `f(e, all of them)` where `cond` holds, by an
/// `scf.if` yielding them: the work of `f` is skipped where `cond` is false.
pub fn select_if(
    e: &mut Emitter,
    cond: &Val,
    s: &mut [Vec<Val>],
    f: impl FnOnce(&mut Emitter, &[Val]) -> Vec<Val>,
) {
    let flat: Vec<Val> = s.iter().flatten().cloned().collect();
    let tys: Vec<Ty> = flat.iter().map(|v| v.ty().clone()).collect();
    let out = e.if_yield(cond, &tys, |e| f(e, &flat), |_| flat.clone());
    let per_row = flat.len() / s.len().max(1);
    for (sr, chunk) in s.iter_mut().zip(out.chunks(per_row)) {
        sr.clone_from_slice(chunk);
    }
}

/// The `i32` vector `[from, from + 1, .., from + w - 1]`.
pub fn iota(e: &mut Emitter, w: usize, from: usize) -> Val {
    let lanes: Vec<i64> = (from..from + w).map(|l| l as i64).collect();
    e.lanes(&lanes, &Ty::vector(w, Scalar::I32))
}
