//! The online softmax, shared by the packed and the streaming path: the running row maximum
//! `m` and row sum `l` in scratch, the update per key block, and the final normalization.

use super::ctx::Ctx;
use super::hook::Mods;
use crate::emit::{Cmp, Emitter, LoopKind, Ty, Val, math, math::Reduce};

/// Rows `0..n` of the scratch: `O = 0`, `m = -3e38`, `l = 0`; with a sink `s` (base-2 units)
/// in row `r`'s options, `m = max(s, -3e38)` and `l = 2^(s - m)` (1 for a finite sink, 0 for
/// `-inf`): the sink is in the denominator from the start.
#[allow(clippy::too_many_arguments)]
pub fn init_rows(e: &mut Emitter, cx: &Ctx, mods: &Mods, n: &Val, ob: &Val, ms: &Val, ls: &Val) {
    let (c0, c1, cw) = (e.idx(0), e.idx(1), e.idx(cx.t.w));
    let vzero = e.float(0.0, &cx.vt);
    let st: Ty = cx.ct.into();
    let (m0, zero) = (e.float(-3.0e38, &st), e.float(0.0, &st));
    e.each(&c0, n, &c1, |e, i| {
        e.each(&c0, &cx.dvp, &cw, |e, c| e.vstore(&vzero, ob, &[i, c]));
        match mods.row_init(e, cx, i) {
            Some(sink) => {
                let m = e.max(&sink, &m0);
                let d = e.sub(&sink, &m);
                let l = math::exp2(e, &[d]).remove(0);
                e.store(&m, ms, &[i]);
                e.store(&l, ls, &[i]);
            }
            None => {
                e.store(&m0, ms, &[i]);
                e.store(&zero, ls, &[i]);
            }
        }
    });
}

/// The online-softmax update of the rows `r0..r0 + n` (`n = s.len()`) for one key block, from
/// their (modified) score vectors `s[r]`, in base-2 units (`s2 = s log2 e`):
/// `m' = max(m, rowmax S)`, `alpha = 2^(m - m')`, `P = 2^(S - m')`, `l' = alpha l + rowsum P`.
/// `m` and `l` are updated in `ms` and `ls`; `keep_p(e, r, j, p)` receives vector `j` of row
/// `r` of `P`. Returns `alpha` of the rows (a vector of `n` lanes). `-inf` and -3e38 scores
/// (removed keys) give exactly 0. The row maxima and sums of all rows are reduced together
/// ([`math::transpose_reduce`]).
pub fn update(
    e: &mut Emitter,
    mca: bool,
    s: &[Vec<Val>],
    ms: &Val,
    ls: &Val,
    r0: &Val,
    mut keep_p: impl FnMut(&mut Emitter, usize, usize, &Val),
) -> Val {
    let n = s.len();
    let w = s[0][0].ty().lanes();
    let region = format!("softmax_{n}x{}", s[0].len());
    e.mca_marker(mca, true, &region);
    // Row maxima: elementwise across the vectors of a row, then across rows and lanes.
    let rowmax: Vec<Val> = s
        .iter()
        .map(|row| {
            let mut m = row[0].clone();
            for v in &row[1..] {
                m = e.max(v, &m);
            }
            m
        })
        .collect();
    let mrow = math::transpose_reduce(e, &rowmax, Reduce::Max);
    let mold = e.vload(ms, &[r0], n);
    let mnew = e.max(&mrow, &mold);
    e.vstore(&mnew, ms, &[r0]);
    let dm = e.sub(&mold, &mnew);
    let alpha = math::exp2(e, &[dm]).remove(0);
    // P = 2^(S - m') and its row sums.
    let mut xs = Vec::new();
    for (r, row) in s.iter().enumerate() {
        let mb = math::spread(e, &mnew, r, w);
        xs.extend(row.iter().map(|x| e.sub(x, &mb)));
    }
    let ps = math::exp2(e, &xs);
    let mut rowsum = Vec::with_capacity(n);
    for (r, row) in ps.chunks(s[0].len()).enumerate() {
        for (j, p) in row.iter().enumerate() {
            keep_p(e, r, j, p);
        }
        let mut sum = row[0].clone();
        for p in &row[1..] {
            sum = e.add(&sum, p);
        }
        rowsum.push(sum);
    }
    let lrow = math::transpose_reduce(e, &rowsum, Reduce::Add);
    let lold = e.vload(ls, &[r0], n);
    let lnew = e.fma(&lold, &alpha, &lrow);
    e.vstore(&lnew, ls, &[r0]);
    e.mca_marker(mca, false, &region);
    alpha
}

/// `out[q0 + r][c] = O[r][c] / l[r]` for rows `0..rows`, rounded to the storage type; with
/// `flush`, a row without keys (`l = 0`) gives zeros, not `0/0`. With a second tensor in `out`,
/// also `lse[q0 + r] = ln 2 (m[r] + log2 l[r])` (natural units; `-inf` for `l = 0`). Returns
/// the new tensors.
#[allow(clippy::too_many_arguments)]
pub fn normalize(
    e: &mut Emitter,
    cx: &Ctx,
    flush: bool,
    q0: &Val,
    rows: &Val,
    ob: &Val,
    ms: &Val,
    ls: &Val,
    out: &[Val],
) -> Vec<Val> {
    let (c0, c1) = (e.idx(0), e.idx(1));
    let st: Ty = cx.ct.into();
    let (one, zero) = (e.float(1.0, &st), e.float(0.0, &st));
    let ln2 = e.float(std::f64::consts::LN_2, &st);
    e.for_(&c0, rows, &c1, out, |e, r, o| {
        let l = e.load(ls, &[r]);
        let inv = e.div(&one, &l);
        let inv = if flush {
            let z = e.cmp(Cmp::Eq, &l, &zero);
            e.select(&z, &zero, &inv)
        } else {
            inv
        };
        let row = e.add(q0, r);
        let mut next = e.for_kind(
            LoopKind::Vectorize,
            &c0,
            &cx.dv,
            &c1,
            &o[..1],
            |e, c, oo| {
                let x = e.load(ob, &[r, c]);
                let y = e.mul(&x, &inv);
                let y = e.convert(&y, cx.st);
                vec![e.insert(&y, &oo[0], &[&row, c])]
            },
        );
        if let Some(lse) = o.get(1) {
            let m = e.load(ms, &[r]);
            let lg = e.log2(&l);
            let x = e.add(&m, &lg);
            let x = e.mul(&x, &ln2);
            next.push(e.insert(&x, lse, &[&row]));
        }
        next
    })
}
