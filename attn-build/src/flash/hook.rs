//! The score/mask hook: the one abstraction through which the kernel's phases ask what an
//! attention option changes.
//!
//! A [`ScoreMod`] answers three questions, for the packed (prefill) path and the streaming
//! (decode) path alike:
//! - **which keys a block of query rows needs** ([`ScoreMod::key_span`], [`ScoreMod::sees`]):
//!   key blocks outside the span are never packed or computed, micro-blocks that see none of a
//!   key block are skipped;
//! - **which lanes are valid** ([`ScoreMod::limit`]): the end of the keys a row sees, as a bound
//!   on the lanes of its score vectors;
//! - **how a score is transformed** ([`ScoreMod::modify`]): applied in registers to the scaled
//!   scores, before the online softmax.
//!
//! [`Mods`] composes them in the documented order (transforms in list order, then the removal of
//! keys) and adds what every kernel needs: keys past Sk are removed (in the dense kernel by
//! masks computed once per key block). Causal masking ([`Causal`]) and additive masks
//! ([`AddMask`], through which the run-time API also passes key padding, merged into the mask)
//! are implementations of the hook; a sliding window, a softcap, ALiBi or a user's score mod is
//! another implementation, not an edit across the kernel.

use super::kernel::Ctx;
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

/// One attention option, as the kernel's phases see it. Every method has a default that
/// changes nothing; an implementation overrides what its option affects. `r` is a row of the
/// current [`Rows`] block (an index into its scratch rows); score vector `i` of a call covers the
/// keys `kb + first + i w ..`. Scores are in base-2 units (`scale log2 e (q . k)`, see
/// [`Ctx::scale2`]): an additive term `x` in natural units is added as `x log2 e`.
pub trait ScoreMod {
    /// Whether the option removes keys: removed scores are `-inf`, exponentials flush them to
    /// 0 and a row left without keys gives zeros.
    fn removes_keys(&self) -> bool {
        false
    }

    /// Whether the option itself removes the keys past Sk (so no separate bound is applied).
    fn bounds_keys(&self) -> bool {
        false
    }

    /// Whether [`ScoreMod::limit`] gives per-row bounds.
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

    /// Called when a key block starts (e.g. to gather the block's mask values).
    fn begin_keys(&mut self, _e: &mut Emitter, _cx: &Ctx, _rows: &Rows, _keys: &Keys) {}

    /// The number of keys from `kb + first` on that row `r` sees, as an `i32` (lanes at or past
    /// it are removed), if the option bounds them.
    fn limit(
        &self,
        _e: &mut Emitter,
        _cx: &Ctx,
        _r: &Val,
        _keys: &Keys,
        _first: &Val,
    ) -> Option<Val> {
        None
    }

    /// Transforms the score vectors `s` of row `r` in place.
    fn modify(
        &self,
        _e: &mut Emitter,
        _cx: &Ctx,
        _r: &Val,
        _keys: &Keys,
        _first: &Val,
        _s: &mut [Val],
    ) {
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

    /// Whether rows `r0..r0 + n` see the key block (`None`: always).
    pub fn sees(&self, e: &mut Emitter, r0: &Val, n: usize, keys: &Keys) -> Option<Val> {
        let mut all: Option<Val> = None;
        for m in &self.list {
            if let Some(c) = m.sees(e, r0, n, keys) {
                all = Some(match all {
                    Some(a) => e.and(&a, &c),
                    None => c,
                });
            }
        }
        all
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
    /// (`flush`) or -3e38 (the dense kernel, whose exponentials do not flush).
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
            for (r, sr) in rows.iter().zip(s.iter_mut()) {
                m.modify(e, cx, r, keys, first, sr);
            }
        }
        let gone = if flush {
            e.float(f64::NEG_INFINITY, &cx.vt)
        } else {
            e.float(-3.0e38, &cx.vt)
        };
        if let (false, Some(partial)) = (self.has_limits(), &self.partial) {
            // Only the last key block has lanes past Sk: a branch around the selects.
            let flat: Vec<Val> = s.iter().flatten().cloned().collect();
            let tys: Vec<Ty> = flat.iter().map(|v| v.ty().clone()).collect();
            let masks = &self.block_masks;
            let per_row = masks.len();
            let out = e.if_yield(
                partial,
                &tys,
                |e| {
                    flat.iter()
                        .enumerate()
                        .map(|(i, x)| e.select(&masks[i % per_row], x, &gone))
                        .collect()
                },
                |_| flat.clone(),
            );
            for (sr, chunk) in s.iter_mut().zip(out.chunks(per_row)) {
                sr.clone_from_slice(chunk);
            }
            return;
        }
        if !self.has_limits() && self.bounded() {
            return;
        }
        // Per-row limits: the smallest of the options' and (unless bounded) Sk's.
        let bound = if self.bounded() {
            None
        } else {
            let kbi = e.index_cast(&keys.kb, Scalar::I32);
            let ski = e.index_cast(&cx.sk, Scalar::I32);
            let firsti = e.index_cast(first, Scalar::I32);
            let left = e.sub(&ski, &kbi);
            Some(e.sub(&left, &firsti))
        };
        for (r, sr) in rows.iter().zip(s.iter_mut()) {
            let mut lim = bound.clone();
            for m in &self.list {
                if let Some(l) = m.limit(e, cx, r, keys, first) {
                    lim = Some(match lim {
                        Some(a) => e.min_s(&l, &a),
                        None => l,
                    });
                }
            }
            let Some(lim) = lim else { continue };
            let limv = e.splat(&lim, cx.t.w);
            for (j, x) in sr.iter_mut().enumerate() {
                let io = iota(e, cx.t.w, j * cx.t.w);
                let ok = e.cmp(Cmp::Lt, &io, &limv);
                *x = e.select(&ok, x, &gone);
            }
        }
    }
}

/// The `i32` vector `[from, from + 1, .., from + w - 1]`.
pub fn iota(e: &mut Emitter, w: usize, from: usize) -> Val {
    let lanes: Vec<i64> = (from..from + w).map(|l| l as i64).collect();
    e.lanes(&lanes, &Ty::vector(w, Scalar::I32))
}

/// Causal masking by per-row positions (the kernel's `positions` input, f32 holding integers):
/// row `i` sees the keys `j <= positions[i]`. Key blocks past the largest position of a block of
/// rows are not computed, micro-blocks past theirs are skipped.
pub struct Causal {
    positions: Val,
    /// The rows' positions (i32; padding rows get -2^30).
    ps: Option<Val>,
    /// The largest position of the block's rows.
    last: Option<Val>,
}

impl Causal {
    /// Causal masking by the positions tensor `positions` (`tensor<?xf32>`).
    pub fn new(positions: Val) -> Causal {
        Causal {
            positions,
            ps: None,
            last: None,
        }
    }
}

impl ScoreMod for Causal {
    fn removes_keys(&self) -> bool {
        true
    }

    fn has_limits(&self) -> bool {
        true
    }

    fn begin_rows(&mut self, e: &mut Emitter, _cx: &Ctx, rows: &Rows) {
        let ps = e.alloc(Ty::memref(&[Some(rows.cap)], Scalar::I32), &[]);
        let lo = e.int(-1_073_741_824, &Ty::I32);
        let (c0, c1) = (e.idx(0), e.idx(1));
        let positions = self.positions.clone();
        let mx = e.for_(&c0, &rows.n, &c1, std::slice::from_ref(&lo), |e, r, a| {
            let row = e.add(&rows.q0, r);
            let p = e.extract(&positions, &[&row]);
            let pi = e.fp_to_si(&p, Scalar::I32);
            e.store(&pi, &ps, &[r]);
            vec![e.max_s(&a[0], &pi)]
        });
        e.each(&rows.n, &rows.padded, &c1, |e, r| e.store(&lo, &ps, &[r]));
        self.ps = Some(ps);
        self.last = Some(mx[0].clone());
    }

    fn key_span(&self, e: &mut Emitter, cx: &Ctx, span: Span) -> Span {
        let Some(last) = &self.last else { return span };
        let (c0, c1) = (e.idx(0), e.idx(1));
        let mx = e.index_cast(last, Scalar::Index);
        let end = e.add(&mx, &c1);
        let end = e.min_s(&end, &cx.sk);
        let end = e.max_s(&end, &c0);
        let hi = e.min_s(&end, &span.hi);
        Span { lo: span.lo, hi }
    }

    fn sees(&self, e: &mut Emitter, r0: &Val, n: usize, keys: &Keys) -> Option<Val> {
        let ps = self.ps.as_ref()?;
        let pv = e.vload(ps, &[r0], n);
        let mx = e.reduce_max_s(&pv);
        let kbi = e.index_cast(&keys.kb, Scalar::I32);
        Some(e.cmp(Cmp::Le, &kbi, &mx))
    }

    fn limit(&self, e: &mut Emitter, _cx: &Ctx, r: &Val, keys: &Keys, first: &Val) -> Option<Val> {
        let ps = self.ps.as_ref()?;
        // Key kb + first + l is visible when it is <= pos[r]: l < pos[r] + 1 - kb - first.
        let p = e.load(ps, &[r]);
        let one = e.int(1, &Ty::I32);
        let p1 = e.add(&p, &one);
        let kbi = e.index_cast(&keys.kb, Scalar::I32);
        let firsti = e.index_cast(first, Scalar::I32);
        let l = e.sub(&p1, &kbi);
        Some(e.sub(&l, &firsti))
    }
}

/// An additive f32 mask `[Sq, Sk]` (any strides): each key block's values are gathered into a
/// scratch (`-inf` past Sk, so this option also bounds the keys) and added to the scores.
pub struct AddMask {
    mask: Val,
    block: Option<Val>,
}

impl AddMask {
    /// The mask tensor `mask` (`tensor<?x?xf32>`).
    pub fn new(mask: Val) -> AddMask {
        AddMask { mask, block: None }
    }
}

impl ScoreMod for AddMask {
    fn removes_keys(&self) -> bool {
        true
    }

    fn bounds_keys(&self) -> bool {
        true
    }

    fn begin_rows(&mut self, e: &mut Emitter, cx: &Ctx, rows: &Rows) {
        let ty = Ty::memref(&[Some(rows.cap), Some(rows.kw)], cx.ct);
        self.block = Some(e.alloc(ty, &[]));
    }

    fn begin_keys(&mut self, e: &mut Emitter, cx: &Ctx, rows: &Rows, keys: &Keys) {
        let Some(mp) = self.block.clone() else { return };
        let (c0, c1) = (e.idx(0), e.idx(1));
        let cw = e.idx(cx.t.w);
        let width = e.idx(keys.width);
        let ninf = e.float(f64::NEG_INFINITY, &cx.ct.into());
        let vzero = e.float(0.0, &cx.vt);
        // The block [rows][width] (-inf past Sk; zero rows past the block's rows).
        let left = e.sub(&cx.sk, &keys.kb);
        let jn = e.min_s(&left, &width);
        let mask = self.mask.clone();
        e.range(&rows.n, |e, r| {
            let row = e.add(&rows.q0, r);
            e.range(&jn, |e, j| {
                let key = e.add(&keys.kb, j);
                let x = e.extract(&mask, &[&row, &key]);
                let x = e.convert(&x, cx.ct);
                e.store(&x, &mp, &[r, j]);
            });
            e.each(&jn, &width, &c1, |e, j| e.store(&ninf, &mp, &[r, j]));
        });
        e.each(&rows.n, &rows.padded, &c1, |e, r| {
            e.each(&c0, &width, &cw, |e, j| e.vstore(&vzero, &mp, &[r, j]));
        });
    }

    fn modify(&self, e: &mut Emitter, cx: &Ctx, r: &Val, _keys: &Keys, first: &Val, s: &mut [Val]) {
        let Some(mp) = &self.block else { return };
        // The scores are in base-2 units: s2 + mask log2 e.
        let log2e = cx.log2e(e, &cx.vt);
        for (j, x) in s.iter_mut().enumerate() {
            let off = e.idx(j * cx.t.w);
            let col = e.add(first, &off);
            let m = e.vload(mp, &[r, &col], cx.t.w);
            *x = e.fma(&m, &log2e, x);
        }
    }
}
