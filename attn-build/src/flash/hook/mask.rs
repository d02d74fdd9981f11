//! An additive f32 mask `[Sq, Sk]` (any strides): each key block's values are gathered into a
//! scratch (`-inf` past Sk, so this option also bounds the keys) and added to the scores.
//! Key padding reaches the kernels merged into it.

use super::{Keys, Rows, ScoreMod};
use crate::emit::{Emitter, LoopKind, Ty, Val};
use crate::flash::ctx::Ctx;

/// The mask hook.
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
            e.each_kind(LoopKind::Vectorize, &c0, &jn, &c1, |e, j| {
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

    fn modify(
        &self,
        e: &mut Emitter,
        cx: &Ctx,
        rows: &[Val],
        _keys: &Keys,
        first: &Val,
        s: &mut [Vec<Val>],
    ) {
        let Some(mp) = &self.block else { return };
        // The scores are in base-2 units: s2 + mask log2 e.
        let log2e = cx.log2e(e, &cx.vt);
        for (r, sr) in rows.iter().zip(s.iter_mut()) {
            for (j, x) in sr.iter_mut().enumerate() {
                let off = e.idx(j * cx.t.w);
                let col = e.add(first, &off);
                let m = e.vload(mp, &[r, &col], cx.t.w);
                *x = e.fma(&m, &log2e, x);
            }
        }
    }
}
