//! The register tiles: the score tile `S = Q K^T` of the packed path and the `O = alpha O + P V`
//! tile shared by both paths.

use super::ctx::Ctx;
use crate::emit::{Cmp, Emitter, Val};

/// The score tile of micro-block `mb`: `S[r][j] = sum_d Qp[mb][d][r] * Kp[d][j]` for `BR` rows
/// and `BC` keys, in `BR x BC/w` vector accumulators (K vectors times broadcast Q values).
/// Returns the accumulators row by row.
pub fn score_tile(e: &mut Emitter, cx: &Ctx, qp: &Val, kp: &Val, mb: &Val) -> Vec<Val> {
    let (w, br, bcv) = (cx.t.w, cx.t.br, cx.t.bc_vecs);
    let c0 = e.idx(0);
    let vzero = e.float(0.0, &cx.vt);
    let inits = vec![vzero; br * bcv];
    let mca = cx.t.mca_markers;
    let step = |e: &mut Emitter, dd: &Val, a: &[Val]| -> Vec<Val> {
        let kv: Vec<Val> = (0..bcv)
            .map(|j| {
                let col = e.idx(j * w);
                e.vload(kp, &[dd, &col], w)
            })
            .collect();
        let mut out = Vec::with_capacity(br * bcv);
        for r in 0..br {
            let ri = e.idx(r);
            let qv = e.load(qp, &[mb, dd, &ri]);
            let qb = e.splat(&qv, w);
            for j in 0..bcv {
                out.push(e.vfma(&qb, &kv[j], &a[r * bcv + j]));
            }
        }
        out
    };
    let region = mca.then_some("score_tile");
    e.unrolled(&c0, &cx.d, UNROLL, &inits, region, &step)
}

/// Steps per iteration of the tiles' loops (see [`Emitter::unrolled`]).
const UNROLL: usize = 2;

/// One `O = alpha O + P V` register tile: rows `rows` of the output scratch `out`, the vectors
/// of Dv starting at `cols`, over the keys `0..keys` of the current block.
pub struct PvTile<'a> {
    /// The unnormalized output rows (scratch `[rows][Dv']`).
    pub out: &'a Val,
    /// The rows of `out` (one per row of the tile).
    pub rows: &'a [Val],
    /// The first column of each vector of the tile.
    pub cols: &'a [Val],
    /// `alpha` of each row, broadcast to a vector.
    pub alpha: &'a [Val],
    /// The number of keys of the block (the reduction length).
    pub keys: &'a Val,
}

/// Emits the tile: `load_v(e, j, i, col)` is vector `i` (at `col`) of the value row of key `j`
/// of the block, `load_p(e, r, j)` the probability of row `r` of the tile and key `j`.
pub fn pv_tile(
    e: &mut Emitter,
    mca: bool,
    tile: &PvTile<'_>,
    load_v: impl Fn(&mut Emitter, &Val, usize, &Val) -> Val,
    load_p: impl Fn(&mut Emitter, usize, &Val) -> Val,
) {
    let nv = tile.cols.len();
    let w = tile.alpha[0].ty().lanes();
    let c0 = e.idx(0);
    // The block's products are summed from zero and added to the rescaled O once (two-level
    // accumulation: about 4x less rounding error than accumulating into O key by key).
    let vzero = e.float(0.0, tile.alpha[0].ty());
    let inits = vec![vzero; tile.rows.len() * nv];
    let region = format!("pv_tile_{}x{nv}", tile.rows.len());
    let step = |e: &mut Emitter, j: &Val, a: &[Val]| -> Vec<Val> {
        let vv: Vec<Val> = tile
            .cols
            .iter()
            .enumerate()
            .map(|(i, col)| load_v(e, j, i, col))
            .collect();
        let mut out = Vec::with_capacity(a.len());
        for r in 0..tile.rows.len() {
            let p = load_p(e, r, j);
            let pb = e.splat(&p, w);
            for i in 0..nv {
                out.push(e.vfma(&pb, &vv[i], &a[r * nv + i]));
            }
        }
        out
    };
    let region = mca.then_some(region.as_str());
    let acc = e.unrolled(&c0, tile.keys, UNROLL, &inits, region, &step);
    for (r, (row, alpha)) in tile.rows.iter().zip(tile.alpha).enumerate() {
        for (i, col) in tile.cols.iter().enumerate() {
            let o = e.vload(tile.out, &[row, col], w);
            let o = e.fma(&o, alpha, &acc[r * nv + i]);
            e.vstore(&o, tile.out, &[row, col]);
        }
    }
}

/// The column starts `c, c + w, .., c + (n - 1) w`.
pub fn columns(e: &mut Emitter, c: &Val, n: usize, w: usize) -> Vec<Val> {
    (0..n)
        .map(|i| {
            let off = e.idx(i * w);
            e.add(c, &off)
        })
        .collect()
}

/// Covers `dvp` (a multiple of the vector width) with tiles of `pvv` vectors, then one tile of
/// the 1..pvv vectors left: `tile(e, c, n)` emits a tile of `n` vectors from column `c`.
pub fn pv_chunks(
    e: &mut Emitter,
    cx: &Ctx,
    dvp: &Val,
    pvv: usize,
    mut tile: impl FnMut(&mut Emitter, &Val, usize),
) {
    let w = cx.t.w;
    let (c0, chunk, cw) = (e.idx(0), e.idx(pvv * w), e.idx(w));
    let full_end = e.round_down(dvp, pvv * w);
    e.each(&c0, &full_end, &chunk, |e, c| tile(e, c, pvv));
    if pvv > 1 {
        let rem = e.sub(dvp, &full_end);
        let remv = e.div(&rem, &cw);
        for nv in 1..pvv {
            let cn = e.idx(nv);
            let is = e.cmp(Cmp::Eq, &remv, &cn);
            e.when(&is, |e| tile(e, &full_end, nv));
        }
    }
}
