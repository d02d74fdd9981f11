//! Packing of the packed path: Q panels per super-block, K and V panels per key block, so the
//! register tiles only do aligned full-width loads from L1 whatever the strides of the inputs.

use super::kernel::Ctx;
use crate::emit::{Cmp, Emitter, Val};

/// The super-block's Q rows `q0..` into `qp` laid out `[mb][d][r]` (`nmb` micro-blocks of `BR`
/// rows; zero rows past Sq), widened to the compute type.
pub fn pack_q(e: &mut Emitter, cx: &Ctx, q0: &Val, nmb: &Val, qp: &Val) {
    let br = cx.t.br;
    let (c0, c1, cbr) = (e.idx(0), e.idx(1), e.idx(br));
    let zero = e.float(0.0, &cx.ct.into());
    e.each(&c0, nmb, &c1, |e, mb| {
        e.each(&c0, &cbr, &c1, |e, r| {
            let mbr = e.mul(mb, &cbr);
            let lr = e.add(&mbr, r);
            let row = e.add(q0, &lr);
            let ok = e.cmp(Cmp::Ult, &row, &cx.sq);
            e.if_else(
                &ok,
                |e| {
                    e.each(&c0, &cx.d, &c1, |e, dd| {
                        let x = e.extract(&cx.q, &[&row, dd]);
                        let x = e.convert(&x, cx.ct);
                        e.store(&x, qp, &[mb, dd, r]);
                    });
                },
                |e| e.each(&c0, &cx.d, &c1, |e, dd| e.store(&zero, qp, &[mb, dd, r])),
            );
        });
    });
}

/// The keys `kb..kb + BC` into the panels `kp` (K transposed and pre-scaled, `[d][j]`) and `vp`
/// (`[j][c]`, zero columns up to `Dv'`), zero past Sk.
pub fn pack_kv(e: &mut Emitter, cx: &Ctx, kb: &Val, kp: &Val, vp: &Val) {
    let (c0, c1, cbc) = (e.idx(0), e.idx(1), e.idx(cx.t.bc()));
    let zero = e.float(0.0, &cx.ct.into());
    e.each(&c0, &cbc, &c1, |e, j| {
        let key = e.add(kb, j);
        let ok = e.cmp(Cmp::Ult, &key, &cx.sk);
        e.if_else(
            &ok,
            |e| {
                e.each(&c0, &cx.d, &c1, |e, dd| {
                    let x = e.extract(&cx.k, &[&key, dd]);
                    let x = e.convert(&x, cx.ct);
                    let y = e.mul(&x, &cx.scale);
                    e.store(&y, kp, &[dd, j]);
                });
                e.each(&c0, &cx.dv, &c1, |e, c| {
                    let x = e.extract(&cx.v, &[&key, c]);
                    let x = e.convert(&x, cx.ct);
                    e.store(&x, vp, &[j, c]);
                });
                e.each(&cx.dv, &cx.dvp, &c1, |e, c| e.store(&zero, vp, &[j, c]));
            },
            |e| {
                e.each(&c0, &cx.d, &c1, |e, dd| e.store(&zero, kp, &[dd, j]));
                e.each(&c0, &cx.dvp, &c1, |e, c| e.store(&zero, vp, &[j, c]));
            },
        );
    });
}
