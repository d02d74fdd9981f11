//! The f32 softmax over the last dim (rank 1 and up).
//!
//! When the last dim has unit stride (checked at run time on the input's buffer, taken with
//! `bufferization.to_buffer .. read_only`), a row is read in place up to its last whole step of
//! `U` vectors, and only its rest is copied to a contiguous scratch padded with `-inf` to a
//! multiple of the step; a strided row is copied whole (plain copy loops, which LLVM
//! vectorizes behind a run-time unit-stride check). Then, in explicit vector loops:
//! - the row max, `U` accumulators of `a < b ? b : a` (one `maxps`; a NaN entry is skipped here
//!   and reaches the whole row through its exponential and the sum instead);
//! - `exp(x - max)` as `2^t`, `t = x log2e - max log2e` (the subtraction fused into one FMA;
//!   rows with `|max| >= 2^23` take `t = (x - max) log2e`), by
//!   [`math::exp2`] with the `U` vectors' evaluations interleaved, written to the
//!   scratch (which holds the whole row from then on) and summed into one vector accumulator
//!   (a tree of the step's vectors), reduced with `vector.reduction` and `fastmath<reassoc>`;
//! - and the row scaled by `1 / sum` on the copy out (again a plain loop).
//!
//! A NaN in a row makes the row NaN, a `+inf` gives `inf - inf = NaN`, as in the naive
//! composition (and a row of only `-inf` is NaN too); `-inf` entries get exactly 0.
//!
//! On AVX2 the exponential loop is bound by the FMA pipes (eight FMA/multiply operations per
//! vector); the copies overlap with it: the kernel runs within about 5% of that time with its
//! input and output rows resident in L1 instead of streamed from L3.

use crate::emit::{self, Cmp, Emitter, LoopKind, Scalar, Ty, Val, math};
use attn_runtime::tuning::{SOFTMAX_UNROLL as U, Tiling};

/// The symbol of the f32 softmax kernel of a given rank.
pub fn symbol(rank: usize, t: &Tiling) -> String {
    format!("__attn_softmax_f32_r{rank}_w{}", t.w)
}

/// What the per-row body shares.
struct Row {
    w: usize,
    n: Val,
    np: Val,
    nmain: Val,
    rb: Val,
    rbu: Val,
    unit: Val,
    meta: emit::Metadata,
}

/// `@{symbol(rank)}(x, init) -> tensor`.
pub fn function(rank: usize, t: &Tiling) -> String {
    let w = t.w;
    let tn = Ty::dyn_tensor(rank, Scalar::F32);
    let args = [("x", tn.clone()), ("init", tn.clone())];
    emit::function(&symbol(rank, t), &args, &tn, |e, a| {
        let lead = rank - 1;
        let x = &a[0];
        let c1 = e.idx(1);
        let bounds: Vec<Val> = (0..lead).map(|i| e.dim(x, i)).collect();
        let n = e.dim(x, lead);
        let np = e.round_up(&n, U * w);
        let rb = e.alloc(Ty::memref(&[None], Scalar::F32), &[&np]);
        // The input as a strided buffer (read only), its strides, and whether rows are
        // contiguous.
        let xb = e.to_buffer(x);
        let meta = e.strided_metadata(&xb);
        let unit = e.cmp(Cmp::Eq, &meta.strides[rank - 1], &c1);
        // Contiguous rows are read in place up to `nmain` (whole steps); the scratch holds the
        // rest of the row (all of it for strided rows), padded with -inf, and every
        // exponential.
        let nfull = e.round_down(&n, U * w);
        let c0 = e.idx(0);
        let nmain = e.select(&unit, &nfull, &c0);
        let uty = Ty::strided_memref(1, Scalar::F32, true);
        let rbu = e.memref_cast(&rb, uty);
        let row = Row {
            w,
            n,
            np,
            nmain,
            rb,
            rbu,
            unit,
            meta,
        };
        e.nest(&bounds, vec![a[1].clone()], &mut |e, p, out| {
            vec![row_softmax(e, x, &row, p, out[0].clone())]
        })
        .remove(0)
    })
}

/// The `U` vectors of `src` at `c`, and their indices.
fn load_step(e: &mut Emitter, src: &Val, c: &Val, w: usize) -> (Vec<Val>, Vec<Val>) {
    let is: Vec<Val> = (0..U)
        .map(|u| {
            let o = e.idx(u * w);
            e.add(c, &o)
        })
        .collect();
    let xs = is.iter().map(|i| e.vload(src, &[i], w)).collect();
    (is, xs)
}

/// One row (leading indices `p`): max, exponentials and sum, scaled copy out.
fn row_softmax(e: &mut Emitter, x: &Val, row: &Row, p: &[Val], out: Val) -> Val {
    let w = row.w;
    let vt = Ty::vector(w, Scalar::F32);
    let f32t: Ty = Scalar::F32.into();
    let (c0, c1, cstep) = (e.idx(0), e.idx(1), e.idx(U * w));
    let ninf = e.float(f64::NEG_INFINITY, &f32t);
    let vninf = e.float(f64::NEG_INFINITY, &vt);
    let rank = p.len() + 1;
    // The row in place (a unit-stride view; the scratch when the row is strided).
    let mut off = row.meta.offset.clone();
    for (d, i) in p.iter().enumerate() {
        let o = e.mul(i, &row.meta.strides[d]);
        off = e.add(&off, &o);
    }
    let uty = row.rbu.ty().clone();
    let xrow = e.reinterpret(&row.meta.base, uty, &off, &[&row.n], &["1"]);
    let src = e.select(&row.unit, &xrow, &row.rbu);
    // The rest of the row into the scratch, padded with -inf: a plain copy loop, which LLVM
    // vectorizes (behind a unit-stride check).
    e.each_kind(LoopKind::Vectorize, &row.nmain, &row.n, &c1, |e, c| {
        let idx: Vec<&Val> = p.iter().chain([c]).collect();
        let v = e.extract(x, &idx);
        e.store(&v, &row.rb, &[c]);
    });
    e.each(&row.n, &row.np, &c1, |e, c| e.store(&ninf, &row.rb, &[c]));
    debug_assert_eq!(rank, p.len() + 1);
    // The row max over vectors (`a < b ? b : a`, one `maxps`).
    let inits = vec![vninf.clone(); U];
    let vmax = e.for_(&c0, &row.nmain, &cstep, &inits, |e, c, a| {
        let (_, xs) = load_step(e, &src, c, w);
        a.iter().zip(&xs).map(|(m, x)| e.max(m, x)).collect()
    });
    let vmax = e.for_(&row.nmain, &row.np, &cstep, &vmax, |e, c, a| {
        let (_, xs) = load_step(e, &row.rb, c, w);
        a.iter().zip(&xs).map(|(m, x)| e.max(m, x)).collect()
    });
    let mut m = vmax[0].clone();
    for v in &vmax[1..] {
        m = e.max(&m, v);
    }
    let mx = math::hmax(e, &m);
    // exp(x - m) = 2^t, t = x log2e - m log2e with the subtraction fused into one FMA; the
    // rounding of `m log2e` shifts every t of the row alike (it cancels in the normalization)
    // and leaves the largest entry's t within 0.5 of 0 while |m| < 2^23. Rows with a larger
    // |m| (or an infinite one) take t = (x - m) log2e: one more op per vector, and that
    // entry's t exactly 0.
    let big = e.float(8_388_608.0, &f32t);
    let log2e = e.float(std::f64::consts::LOG2_E, &f32t);
    let vlog2e = e.float(std::f64::consts::LOG2_E, &vt);
    let am = e.abs(&mx);
    let small = e.cmp(Cmp::Lt, &am, &big);
    let ml = e.mul(&mx, &log2e);
    let nml = e.neg(&ml);
    let vnml = e.splat(&nml, w);
    let vm = e.splat(&mx, w);
    // One sum accumulator fed by a tree of the step's vectors: few live registers and one add
    // of latency per step.
    let exp_loop = |e: &mut Emitter, fused: bool, lo: &Val, hi: &Val, from: &Val, acc: Val| {
        let vsum = e.for_(lo, hi, &cstep, &[acc], |e, c, a| {
            let (is, xs) = load_step(e, from, c, w);
            let ts: Vec<Val> = xs
                .iter()
                .map(|x| {
                    if fused {
                        e.fma(x, &vlog2e, &vnml)
                    } else {
                        let d = e.sub(x, &vm);
                        e.mul(&d, &vlog2e)
                    }
                })
                .collect();
            let ys = math::exp2(e, &ts);
            for (y, i) in ys.iter().zip(&is) {
                e.vstore(y, &row.rb, &[i]);
            }
            let t = math::tree_sum(e, ys);
            vec![e.add(&a[0], &t)]
        });
        vsum[0].clone()
    };
    let exp_pass = |e: &mut Emitter, fused: bool| -> Vec<Val> {
        let vzero = e.float(0.0, &vt);
        let acc = exp_loop(e, fused, &c0, &row.nmain, &src, vzero);
        vec![exp_loop(e, fused, &row.nmain, &row.np, &row.rb, acc)]
    };
    let vsum = e.if_yield(
        &small,
        std::slice::from_ref(&vt),
        |e| exp_pass(e, true),
        |e| exp_pass(e, false),
    );
    let sum = e.reduce_add(&vsum[0]);
    let one = e.float(1.0, &f32t);
    let inv = e.div(&one, &sum);
    // The row scaled by 1 / sum on the copy out (again a plain loop).
    let res = e.for_kind(LoopKind::Vectorize, &c0, &row.n, &c1, &[out], |e, c, o| {
        let v = e.load(&row.rb, &[c]);
        let y = e.mul(&v, &inv);
        let idx: Vec<&Val> = p.iter().chain([c]).collect();
        vec![e.insert(&y, &o[0], &idx)]
    });
    res[0].clone()
}
