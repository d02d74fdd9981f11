//! Packing of the packed path: Q panels per super-block, K and V panels per key block, so the
//! register tiles only do aligned full-width loads from L1 whatever the strides of the inputs.

use super::ctx::Ctx;
use crate::emit::{Cmp, Emitter, LoopKind, Scalar, Ty, Val, math};

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
                    e.each_kind(LoopKind::Vectorize, &c0, &cx.d, &c1, |e, dd| {
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

/// The keys `kb..kb + BC` into the panels `kp` (K transposed and pre-scaled, `[d][j]`, at least
/// `D` rows) and `vp` (`[j][c]`, zero columns up to `Dv'`), zero past Sk. Rows with unit stride
/// (the usual case) are moved with vector loads, `w x w` in-register transposes for K and
/// vector copies for V; other layouts element by element.
pub fn pack_kv(e: &mut Emitter, cx: &Ctx, kb: &Val, kp: &Val, vp: &Val) {
    e.if_else(
        &cx.k_unit,
        |e| pack_k_transposed(e, cx, kb, kp),
        |e| pack_k_strided(e, cx, kb, kp),
    );
    e.if_else(
        &cx.v_unit,
        |e| pack_v_rows(e, cx, kb, vp),
        |e| pack_v_strided(e, cx, kb, vp),
    );
}

/// The first `tail` elements of `buf[row][col..]` (the rest zero), widened to the compute type:
/// a masked vector load; for bf16, whose masked vector loads LLVM legalizes through
/// `__truncsfbf2` calls on x86 without AVX512-BF16, a loop of `tail` scalar loads into the
/// zeroed scratch `cx.lanes`, then a vector load from it (compact code for a rare case: a row
/// length that is not a multiple of the vector width).
pub fn tail_load(
    e: &mut Emitter,
    cx: &Ctx,
    buf: &Val,
    row: &Val,
    col: &Val,
    tail: &Val,
    mask: &Val,
) -> Val {
    let w = cx.t.w;
    if cx.st != Scalar::BF16 {
        let pass = e.float(0.0, &Ty::vector(w, cx.st));
        let x = e.masked_load(buf, &[row, col], mask, &pass);
        return e.convert(&x, cx.ct);
    }
    let lanes = cx
        .lanes
        .as_ref()
        .expect("bf16 kernels have the lane scratch");
    let c0 = e.idx(0);
    let vzero = e.float(0.0, &cx.vt);
    e.vstore(&vzero, lanes, &[&c0]);
    e.range(tail, |e, l| {
        let c = e.add(col, l);
        let x = e.load(buf, &[row, &c]);
        let x = e.convert(&x, cx.ct);
        e.store(&x, lanes, &[l]);
    });
    e.vload(lanes, &[&c0], w)
}

/// K^T * scale2 by `w x w` blocks: `w` key rows loaded as vectors along D (a clamped key index
/// and a zero row past Sk; the last partial vector of D with a masked load), transposed in
/// registers, stored as `w` rows of the panel.
fn pack_k_transposed(e: &mut Emitter, cx: &Ctx, kb: &Val, kp: &Val) {
    let w = cx.t.w;
    let (c0, c1, cw) = (e.idx(0), e.idx(1), e.idx(w));
    let skm1 = e.sub(&cx.sk, &c1);
    let scale = e.splat(&cx.scale2, w);
    let vzero = e.float(0.0, &cx.vt);
    let dfull = e.round_down(&cx.d, w);
    let dtail = e.sub(&cx.d, &dfull);
    let dmask = e.create_mask(&dtail, w);
    let has_tail = e.cmp(Cmp::Ne, &dtail, &c0);
    let cbcv = e.idx(cx.t.bc_vecs);
    e.range(&cbcv, |e, jv| {
        let col = e.mul(jv, &cw);
        let base = e.add(kb, &col);
        let keys: Vec<(Val, Val)> = (0..w)
            .map(|i| {
                let off = e.idx(i);
                let key = e.add(&base, &off);
                let ok = e.cmp(Cmp::Ult, &key, &cx.sk);
                (e.min_s(&key, &skm1), ok)
            })
            .collect();
        let block = |e: &mut Emitter, dd: &Val, tail: bool| {
            let rows: Vec<Val> = keys
                .iter()
                .map(|(key, ok)| {
                    let x = if tail {
                        tail_load(e, cx, &cx.ku, key, dd, &dtail, &dmask)
                    } else {
                        let x = e.vload(&cx.ku, &[key, dd], w);
                        e.convert(&x, cx.ct)
                    };
                    let x = e.mul(&x, &scale);
                    e.select(ok, &x, &vzero)
                })
                .collect();
            for (i, row) in math::transpose(e, &rows).iter().enumerate() {
                let ci = e.idx(i);
                let r = e.add(dd, &ci);
                e.vstore(row, kp, &[&r, &col]);
            }
        };
        e.each(&c0, &dfull, &cw, |e, dd| block(e, dd, false));
        e.when(&has_tail, |e| block(e, &dfull, true));
    });
}

/// K^T * scale2 element by element (K rows with a stride).
fn pack_k_strided(e: &mut Emitter, cx: &Ctx, kb: &Val, kp: &Val) {
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
                    let y = e.mul(&x, &cx.scale2);
                    e.store(&y, kp, &[dd, j]);
                });
            },
            |e| e.each(&c0, &cx.d, &c1, |e, dd| e.store(&zero, kp, &[dd, j])),
        );
    });
}

/// V rows with unit stride: vector copies (the last partial vector with a masked load), zero
/// rows past Sk.
fn pack_v_rows(e: &mut Emitter, cx: &Ctx, kb: &Val, vp: &Val) {
    let w = cx.t.w;
    let (c0, c1, cw, cbc) = (e.idx(0), e.idx(1), e.idx(w), e.idx(cx.t.bc()));
    let vzero = e.float(0.0, &cx.vt);
    let dvfull = e.round_down(&cx.dv, w);
    let dvtail = e.sub(&cx.dv, &dvfull);
    let dvmask = e.create_mask(&dvtail, w);
    let has_tail = e.cmp(Cmp::Ne, &dvtail, &c0);
    e.each(&c0, &cbc, &c1, |e, j| {
        let key = e.add(kb, j);
        let ok = e.cmp(Cmp::Ult, &key, &cx.sk);
        e.if_else(
            &ok,
            |e| {
                e.each(&c0, &dvfull, &cw, |e, c| {
                    let x = e.vload(&cx.vu, &[&key, c], w);
                    let x = e.convert(&x, cx.ct);
                    e.vstore(&x, vp, &[j, c]);
                });
                e.when(&has_tail, |e| {
                    let x = tail_load(e, cx, &cx.vu, &key, &dvfull, &dvtail, &dvmask);
                    e.vstore(&x, vp, &[j, &dvfull]);
                });
            },
            |e| e.each(&c0, &cx.dvp, &cw, |e, c| e.vstore(&vzero, vp, &[j, c])),
        );
    });
}

/// V element by element (V rows with a stride), zero columns up to `Dv'` and rows past Sk.
fn pack_v_strided(e: &mut Emitter, cx: &Ctx, kb: &Val, vp: &Val) {
    let (c0, c1, cbc) = (e.idx(0), e.idx(1), e.idx(cx.t.bc()));
    let zero = e.float(0.0, &cx.ct.into());
    e.each(&c0, &cbc, &c1, |e, j| {
        let key = e.add(kb, j);
        let ok = e.cmp(Cmp::Ult, &key, &cx.sk);
        e.if_else(
            &ok,
            |e| {
                e.each(&c0, &cx.dv, &c1, |e, c| {
                    let x = e.extract(&cx.v, &[&key, c]);
                    let x = e.convert(&x, cx.ct);
                    e.store(&x, vp, &[j, c]);
                });
                e.each(&cx.dv, &cx.dvp, &c1, |e, c| e.store(&zero, vp, &[j, c]));
            },
            |e| e.each(&c0, &cx.dvp, &c1, |e, c| e.store(&zero, vp, &[j, c])),
        );
    });
}
