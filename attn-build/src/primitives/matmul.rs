//! The register-tiled f32 matmul `C = A B` (`[.., M, K] x [.., K, N]`, any leading batch dims).
//!
//! For each block of `NC` columns of B:
//! - the block `B[:, jc..jc + NC]` is packed into a contiguous, zero-padded `K x NC` scratch
//!   (a plain copy loop, so LLVM vectorizes it behind a run-time unit-stride check whatever the
//!   strides of B);
//! - for each micro-tile of `MR` rows x `NR = NRV * w` columns, `MR x NRV` vector accumulators are
//!   updated once per k with `vector.fma` (B vectors from the panel, A values broadcast straight
//!   from A, which needs no packing); rows past M read the last row (clamped index) and are never
//!   written;
//! - tiles are written through a small scratch by plain copy loops (vectorized by LLVM for unit
//!   strides), only their rows and columns inside C.
//!
//! The accumulation order over k is the plain sequential one; no flag assumes the absence of
//! NaN or infinities (a NaN or infinite input propagates exactly as in the naive loops).

use crate::emit::{self, Emitter, LoopKind, Scalar, Ty, Val};
use attn_runtime::tuning::{MatmulTiling, Tiling};

/// The symbol of the f32 matmul kernel of a given rank.
pub fn symbol(rank: usize, t: &Tiling) -> String {
    format!(
        "__attn_matmul_f32_r{rank}_{}",
        MatmulTiling::for_tiling(t).tag()
    )
}

/// `@{symbol(rank)}(a, b, init) -> tensor`.
pub fn function(rank: usize, t: &Tiling) -> String {
    let mt = MatmulTiling::for_tiling(t);
    let tn = Ty::dyn_tensor(rank, Scalar::F32);
    let args = [("a", tn.clone()), ("b", tn.clone()), ("init", tn.clone())];
    emit::function(&symbol(rank, t), &args, &tn, |e, a| {
        let lead = rank - 2;
        let (ta, tb) = (&a[0], &a[1]);
        let bounds: Vec<Val> = (0..lead).map(|i| e.dim(ta, i)).collect();
        let (m, k, n) = (e.dim(ta, lead), e.dim(ta, lead + 1), e.dim(tb, lead + 1));
        let bp = e.alloc(Ty::memref(&[None, Some(mt.nc)], Scalar::F32), &[&k]);
        let ct = e.alloca(Ty::memref(&[Some(mt.mr), Some(mt.nr())], Scalar::F32));
        let sizes = Sizes { m, k, n };
        e.nest(&bounds, vec![a[2].clone()], &mut |e, p, out| {
            vec![column_blocks(
                e,
                &mt,
                ta,
                tb,
                p,
                &sizes,
                &bp,
                &ct,
                out[0].clone(),
            )]
        })
        .remove(0)
    })
}

struct Sizes {
    m: Val,
    k: Val,
    n: Val,
}

/// `prefix` indices followed by `rest`.
fn at<'a>(prefix: &'a [Val], rest: &[&'a Val]) -> Vec<&'a Val> {
    prefix.iter().chain(rest.iter().copied()).collect()
}

/// One matrix of the batch (leading indices `p`): blocks of `NC` columns, micro-tiles.
#[allow(clippy::too_many_arguments)]
fn column_blocks(
    e: &mut Emitter,
    mt: &MatmulTiling,
    ta: &Val,
    tb: &Val,
    p: &[Val],
    sz: &Sizes,
    bp: &Val,
    ct: &Val,
    out: Val,
) -> Val {
    let (w, mr, nrv, nr) = (mt.w, mt.mr, mt.nr_vecs, mt.nr());
    let (c0, c1, cnc, cnr, cmr) = (e.idx(0), e.idx(1), e.idx(mt.nc), e.idx(nr), e.idx(mt.mr));
    let zero = e.float(0.0, &Scalar::F32.into());
    let vzero = e.float(0.0, &Ty::vector(w, Scalar::F32));
    let mlast = e.sub(&sz.m, &c1);
    let res = e.for_(&c0, &sz.n, &cnc, &[out], |e, jc, o| {
        let left = e.sub(&sz.n, jc);
        let ncb = e.min_s(&left, &cnc);
        let ncp = e.round_up(&ncb, nr);
        // Pack B[:, jc..jc + nc] as [k][c], zero columns up to a multiple of NR.
        e.range(&sz.k, |e, kk| {
            e.each_kind(LoopKind::Vectorize, &c0, &ncb, &c1, |e, c| {
                let col = e.add(jc, c);
                let x = e.extract(tb, &at(p, &[kk, &col]));
                e.store(&x, bp, &[kk, c]);
            });
            e.each(&ncb, &ncp, &c1, |e, c| e.store(&zero, bp, &[kk, c]));
        });
        e.for_(&c0, &sz.m, &cmr, o, |e, i0, o| {
            let mleft = e.sub(&sz.m, i0);
            let rows = e.min_s(&mleft, &cmr);
            // Rows past M read the last row (never written).
            let ridx: Vec<Val> = (0..mr)
                .map(|r| {
                    let cr = e.idx(r);
                    let i = e.add(i0, &cr);
                    e.min_s(&i, &mlast)
                })
                .collect();
            e.for_(&c0, &ncp, &cnr, o, |e, jr, o| {
                let inits = vec![vzero.clone(); mr * nrv];
                let acc = e.for_(&c0, &sz.k, &c1, &inits, |e, kk, a| {
                    let bv: Vec<Val> = (0..nrv)
                        .map(|v| {
                            let off = e.idx(v * w);
                            let col = e.add(jr, &off);
                            e.vload(bp, &[kk, &col], w)
                        })
                        .collect();
                    let mut out = Vec::with_capacity(a.len());
                    for (r, ri) in ridx.iter().enumerate() {
                        let x = e.extract(ta, &at(p, &[ri, kk]));
                        let xb = e.splat(&x, w);
                        for v in 0..nrv {
                            out.push(e.vfma(&xb, &bv[v], &a[r * nrv + v]));
                        }
                    }
                    out
                });
                let j0 = e.add(jc, jr);
                let nleft = e.sub(&sz.n, &j0);
                let cols = e.min_s(&nleft, &cnr);
                // Through a small scratch (an `scf.if` yielding the tensor for full tiles made
                // bufferization copy static-shape outputs); the copy loops are plain loops that
                // LLVM vectorizes for unit strides.
                for r in 0..mr {
                    let cr = e.idx(r);
                    for v in 0..nrv {
                        let off = e.idx(v * w);
                        e.vstore(&acc[r * nrv + v], ct, &[&cr, &off]);
                    }
                }
                e.for_(&c0, &rows, &c1, o, |e, r, o| {
                    let row = e.add(i0, r);
                    e.for_kind(LoopKind::Vectorize, &c0, &cols, &c1, o, |e, c, o| {
                        let col = e.add(&j0, c);
                        let x = e.load(ct, &[r, c]);
                        vec![e.insert(&x, &o[0], &at(p, &[&row, &col]))]
                    })
                })
            })
        })
    });
    res[0].clone()
}
