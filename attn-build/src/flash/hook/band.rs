//! Causal masking and sliding windows: every row `i` of a call has a position `p_i` (the
//! kernel's `positions` input, f32 holding integers, exact below 2^24: its bottom-right aligned
//! position among the call's keys) and sees the keys `p_i - L <= j <= p_i + R`: with a `window`
//! input `(L, R)` (f32; values of 2^30 and more, or infinite, are unbounded), else `j <= p_i`
//! (causal). Key blocks outside the union of a block of rows' bands are not computed,
//! micro-blocks that see none of a key block are skipped, and those that see all of it need no
//! lane masks.

use super::{Keys, Limits, Rows, ScoreMod, Span};
use crate::emit::{Cmp, Emitter, Scalar, Ty, Val};
use crate::flash::ctx::Ctx;

/// Beyond this, a bound is unbounded (keeps every sum of bounds and indices in `i32`).
const FAR: i64 = 1 << 30;

/// The band hook.
pub struct Band {
    positions: Val,
    window: Option<Val>,
    /// The first visible key of each row of the current block, and one past its last (`i32`;
    /// padding rows see nothing).
    lo: Option<Val>,
    hi: Option<Val>,
    /// The union of the rows' bands: smallest `lo`, largest `hi`.
    span: Option<(Val, Val)>,
}

impl Band {
    /// The band of `positions` (`tensor<?xf32>` `[Sq]`) and, if given, `window`
    /// (`tensor<2xf32>`); without a window, causal.
    pub fn new(positions: Val, window: Option<Val>) -> Band {
        Band {
            positions,
            window,
            lo: None,
            hi: None,
            span: None,
        }
    }
}

/// `x` (f32) as an `i32` clamped to `[-FAR, FAR]` (infinities included).
fn clamp_i32(e: &mut Emitter, x: &Val) -> Val {
    let f: Ty = Scalar::F32.into();
    let (lo, hi) = (e.float(-(FAR as f64), &f), e.float(FAR as f64, &f));
    let x = e.max(x, &lo);
    let c = e.cmp(Cmp::Lt, &x, &hi);
    let x = e.select(&c, &x, &hi);
    e.fp_to_si(&x, Scalar::I32)
}

impl ScoreMod for Band {
    fn removes_keys(&self) -> bool {
        true
    }

    fn has_limits(&self) -> bool {
        true
    }

    fn begin_rows(&mut self, e: &mut Emitter, _cx: &Ctx, rows: &Rows) {
        let ty = Ty::memref(&[Some(rows.cap)], Scalar::I32);
        let (lo, hi) = (e.alloc(ty.clone(), &[]), e.alloc(ty, &[]));
        let (far, near) = (e.int(FAR, &Ty::I32), e.int(-FAR, &Ty::I32));
        let one = e.int(1, &Ty::I32);
        let (c0, c1) = (e.idx(0), e.idx(1));
        // The window's sides as i32 (causal: unbounded before, 0 after).
        let (left, right) = match &self.window {
            Some(w) => {
                let l = e.extract(w, &[&c0]);
                let r = e.extract(w, &[&c1]);
                (clamp_i32(e, &l), clamp_i32(e, &r))
            }
            None => (far.clone(), e.int(0, &Ty::I32)),
        };
        let positions = self.positions.clone();
        let span = e.for_(
            &c0,
            &rows.n,
            &c1,
            &[far.clone(), near.clone()],
            |e, r, a| {
                let row = e.add(&rows.q0, r);
                let p = e.extract(&positions, &[&row]);
                let p = clamp_i32(e, &p);
                let first = e.sub(&p, &left);
                let last = e.add(&p, &right);
                let end = e.add(&last, &one);
                e.store(&first, &lo, &[r]);
                e.store(&end, &hi, &[r]);
                vec![e.min_s(&a[0], &first), e.max_s(&a[1], &end)]
            },
        );
        e.each(&rows.n, &rows.padded, &c1, |e, r| {
            e.store(&far, &lo, &[r]);
            e.store(&near, &hi, &[r]);
        });
        self.lo = Some(lo);
        self.hi = Some(hi);
        self.span = Some((span[0].clone(), span[1].clone()));
    }

    fn key_span(&self, e: &mut Emitter, cx: &Ctx, span: Span) -> Span {
        let Some((lo, hi)) = &self.span else {
            return span;
        };
        let c0 = e.idx(0);
        let clip = |e: &mut Emitter, x: &Val| {
            let x = e.index_cast(x, Scalar::Index);
            let x = e.max_s(&x, &c0);
            e.min_s(&x, &cx.sk)
        };
        let (lo, hi) = (clip(e, lo), clip(e, hi));
        let lo = e.max_s(&lo, &span.lo);
        let hi = e.min_s(&hi, &span.hi);
        // An empty band (every row before key 0 or past Sk) is an empty span.
        let hi = e.max_s(&hi, &lo);
        Span { lo, hi }
    }

    fn sees(&self, e: &mut Emitter, r0: &Val, n: usize, keys: &Keys) -> Option<Val> {
        let (lo, hi) = (self.lo.as_ref()?, self.hi.as_ref()?);
        let first = e.vload(lo, &[r0], n);
        let first = e.reduce_min_s(&first);
        let end = e.vload(hi, &[r0], n);
        let end = e.reduce_max_s(&end);
        let kb = e.index_cast(&keys.kb, Scalar::I32);
        let width = e.int(keys.width as i64, &Ty::I32);
        let kend = e.add(&kb, &width);
        let a = e.cmp(Cmp::Lt, &first, &kend);
        let b = e.cmp(Cmp::Lt, &kb, &end);
        Some(e.and(&a, &b))
    }

    fn covers(&self, e: &mut Emitter, r0: &Val, n: usize, keys: &Keys) -> Option<Val> {
        let (lo, hi) = (self.lo.as_ref()?, self.hi.as_ref()?);
        let first = e.vload(lo, &[r0], n);
        let first = e.reduce_max_s(&first);
        let end = e.vload(hi, &[r0], n);
        let end = e.reduce_min_s(&end);
        let kb = e.index_cast(&keys.kb, Scalar::I32);
        let width = e.int(keys.width as i64, &Ty::I32);
        let kend = e.add(&kb, &width);
        let a = e.cmp(Cmp::Le, &first, &kb);
        let b = e.cmp(Cmp::Le, &kend, &end);
        Some(e.and(&a, &b))
    }

    fn limits(&self, e: &mut Emitter, r: &Val, keys: &Keys, first: &Val) -> Limits {
        let (Some(lo), Some(hi)) = (&self.lo, &self.hi) else {
            return Limits::default();
        };
        // Lane l is key kb + first + l: visible when lo[r] <= it < hi[r].
        let kb = e.index_cast(&keys.kb, Scalar::I32);
        let f = e.index_cast(first, Scalar::I32);
        let base = e.add(&kb, &f);
        let lo = e.load(lo, &[r]);
        let hi = e.load(hi, &[r]);
        Limits {
            lo: Some(e.sub(&lo, &base)),
            hi: Some(e.sub(&hi, &base)),
        }
    }
}
