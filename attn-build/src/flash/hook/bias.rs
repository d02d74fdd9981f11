//! Score transforms given at run time, each free when disabled (a branch around its work):
//! logit softcapping, ALiBi biases and attention sinks.

use super::{Keys, Rows, ScoreMod, select_if};
use crate::emit::{Cmp, Emitter, Scalar, Ty, Val, math};
use crate::flash::ctx::Ctx;

/// Logit softcapping `s <- c tanh(s / c)` by the kernel's `softcap` input (`tensor<f32>`);
/// `c <= 0` (or NaN) disables it. In base-2 units: `s2 <- (c log2 e) tanh(s2 ln 2 / c)`.
pub struct Softcap {
    on: Val,
    inner: Val,
    outer: Val,
}

impl Softcap {
    /// The softcap of the rank-0 tensor `cap`.
    pub fn new(e: &mut Emitter, cx: &Ctx, cap: &Val) -> Softcap {
        let c = e.extract(cap, &[]);
        let c = e.convert(&c, cx.ct);
        let st: Ty = cx.ct.into();
        let zero = e.float(0.0, &st);
        let on = e.cmp(Cmp::Gt, &c, &zero);
        let ln2 = e.float(std::f64::consts::LN_2, &st);
        let log2e = e.float(std::f64::consts::LOG2_E, &st);
        let inner = e.div(&ln2, &c);
        let outer = e.mul(&c, &log2e);
        Softcap {
            on,
            inner: e.splat(&inner, cx.t.w),
            outer: e.splat(&outer, cx.t.w),
        }
    }
}

impl ScoreMod for Softcap {
    fn modify(
        &self,
        e: &mut Emitter,
        _cx: &Ctx,
        _rows: &[Val],
        _keys: &Keys,
        _first: &Val,
        s: &mut [Vec<Val>],
    ) {
        select_if(e, &self.on, s, |e, flat| {
            flat.iter()
                .map(|x| {
                    let y = e.mul(x, &self.inner);
                    let t = math::tanh(e, &y);
                    e.mul(&t, &self.outer)
                })
                .collect()
        });
    }
}

/// ALiBi: `s -= slope_i |p_i - j|` with the kernel's per-row `slopes` and `positions` inputs
/// (`tensor<?xf32>` `[Sq]`); a block of rows whose slopes are all 0 skips it.
pub struct Alibi {
    slopes: Val,
    positions: Val,
    /// Per row of the current block: `-slope log2 e` (compute type) and the position (`i32`).
    neg: Option<Val>,
    pos: Option<Val>,
    on: Option<Val>,
}

impl Alibi {
    /// ALiBi by `slopes` and `positions`.
    pub fn new(slopes: Val, positions: Val) -> Alibi {
        Alibi {
            slopes,
            positions,
            neg: None,
            pos: None,
            on: None,
        }
    }
}

impl ScoreMod for Alibi {
    fn begin_rows(&mut self, e: &mut Emitter, cx: &Ctx, rows: &Rows) {
        let neg = e.alloc(Ty::memref(&[Some(rows.cap)], cx.ct), &[]);
        let pos = e.alloc(Ty::memref(&[Some(rows.cap)], Scalar::I32), &[]);
        let st: Ty = cx.ct.into();
        let (c0, c1) = (e.idx(0), e.idx(1));
        let (zero, mlog2e) = (e.float(0.0, &st), e.float(-std::f64::consts::LOG2_E, &st));
        let zi = e.int(0, &Ty::I32);
        let f = false_i1(e);
        let (slopes, positions) = (self.slopes.clone(), self.positions.clone());
        let any = e.for_(&c0, &rows.n, &c1, &[f], |e, r, a| {
            let row = e.add(&rows.q0, r);
            let s = e.extract(&slopes, &[&row]);
            let s = e.convert(&s, cx.ct);
            let n = e.mul(&s, &mlog2e);
            e.store(&n, &neg, &[r]);
            let p = e.extract(&positions, &[&row]);
            let p = e.fp_to_si(&p, Scalar::I32);
            e.store(&p, &pos, &[r]);
            let nz = e.cmp(Cmp::Ne, &s, &zero);
            vec![e.or(&a[0], &nz)]
        });
        e.each(&rows.n, &rows.padded, &c1, |e, r| {
            e.store(&zero, &neg, &[r]);
            e.store(&zi, &pos, &[r]);
        });
        self.neg = Some(neg);
        self.pos = Some(pos);
        self.on = Some(any[0].clone());
    }

    fn modify(
        &self,
        e: &mut Emitter,
        cx: &Ctx,
        rows: &[Val],
        keys: &Keys,
        first: &Val,
        s: &mut [Vec<Val>],
    ) {
        let (Some(neg), Some(pos), Some(on)) = (&self.neg, &self.pos, &self.on) else {
            return;
        };
        let w = cx.t.w;
        select_if(e, on, s, |e, flat| {
            let per_row = flat.len() / rows.len();
            let kb = e.index_cast(&keys.kb, Scalar::I32);
            let f = e.index_cast(first, Scalar::I32);
            let base = e.add(&kb, &f);
            let mut out = Vec::with_capacity(flat.len());
            for (r, sr) in rows.iter().zip(flat.chunks(per_row)) {
                let slope = e.load(neg, &[r]);
                let slope = e.splat(&slope, w);
                let p = e.load(pos, &[r]);
                // |p - (base + j w + l)| = |(p - base) - (j w + l)|
                let d0 = e.sub(&p, &base);
                let d0 = e.splat(&d0, w);
                for (j, x) in sr.iter().enumerate() {
                    let io = super::iota(e, w, j * w);
                    let d = e.sub(&d0, &io);
                    let d = e.abs_i(&d);
                    let d = e.si_to_fp(&d, cx.ct);
                    out.push(e.fma(&slope, &d, x));
                }
            }
            out
        });
    }
}

fn false_i1(e: &mut Emitter) -> Val {
    e.constant("arith.constant false".to_string(), Ty::I1)
}

/// Attention sinks: row `i`'s softmax denominator also holds `e^{sinks[i]}` (the kernel's
/// `sinks` input, `tensor<?xf32>` `[Sq]`; `-inf`: none); no value vector goes with it.
pub struct Sinks {
    sinks: Val,
    q0: Option<Val>,
}

impl Sinks {
    /// Sinks by `sinks`.
    pub fn new(sinks: Val) -> Sinks {
        Sinks { sinks, q0: None }
    }
}

impl ScoreMod for Sinks {
    fn begin_rows(&mut self, _e: &mut Emitter, _cx: &Ctx, rows: &Rows) {
        self.q0 = Some(rows.q0.clone());
    }

    fn row_init(&self, e: &mut Emitter, cx: &Ctx, r: &Val) -> Option<Val> {
        let q0 = self.q0.as_ref()?;
        let row = e.add(q0, r);
        let s = e.extract(&self.sinks, &[&row]);
        let s = e.convert(&s, cx.ct);
        let log2e = cx.log2e(e, &cx.ct.into());
        Some(e.mul(&s, &log2e))
    }
}
