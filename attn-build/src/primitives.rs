//! Register-tiled f32 kernels for the primitives `transformer.matmul` and `transformer.softmax`,
//! emitted as MLIR text (`scf` + `vector` + `memref` + `arith` + `math`, reading and writing
//! tensors) like the fused attention kernel of `flash.rs`: `convert-transformer-to-linalg`
//! inserts them as private functions and calls them in place of each f32 op; the `inline` pass
//! then specializes every call for its static shapes. f64 keeps the naive `linalg` lowering.
//!
//! # Matmul `C = A B` (`[.., M, K] x [.., K, N]`, any leading batch dims)
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
//!
//! # Softmax over the last dim (rank 1 and up)
//! When the last dim has unit stride (checked at run time on the input's buffer, taken with
//! `bufferization.to_buffer .. read_only`), a row is read in place up to its last whole step of
//! `U` vectors, and only its rest is copied to a contiguous scratch padded with `-inf` to a
//! multiple of the step; a strided row is copied whole (plain copy loops, which LLVM
//! vectorizes behind a run-time unit-stride check). Then, in explicit vector loops:
//! - the row max, `U` accumulators of `a < b ? b : a` (one `maxps`; a NaN entry is skipped here
//!   and reaches the whole row through its exponential and the sum instead);
//! - `exp(x - max)` as `2^t`, `t = x log2e - max log2e` (the subtraction fused into one FMA;
//!   rows with `|max| >= 2^23` take `t = (x - max) log2e`, see the kernel), by
//!   [`exp2_nonpositive`] with the `U` vectors' evaluations interleaved, written to the
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

use crate::flash::{E, Tiling};
use melior::{
    Context,
    ir::{
        OperationRef, ValueLike,
        operation::{OperationLike, WalkOrder, WalkResult},
    },
};
use std::fmt::Write as _;

/// Register tiling of the matmul kernel for one vector ISA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulTiling {
    /// Vector width in f32 lanes.
    pub w: usize,
    /// Rows of a micro-tile (A values broadcast per k).
    pub mr: usize,
    /// Vectors per row of a micro-tile (`NR = nr_vecs * w` columns).
    pub nr_vecs: usize,
    /// Columns of B packed at once (a multiple of `NR`).
    pub nc: usize,
}

impl MatmulTiling {
    /// 16 ymm registers: 4 x 24 tiles (12 accumulators, 3 B vectors, 1 broadcast).
    pub const AVX2: MatmulTiling = MatmulTiling {
        w: 8,
        mr: 4,
        nr_vecs: 3,
        nc: 192,
    };

    /// 32 zmm registers: 8 x 48 tiles (24 accumulators, 3 B vectors, 1 broadcast).
    pub const AVX512: MatmulTiling = MatmulTiling {
        w: 16,
        mr: 8,
        nr_vecs: 3,
        nc: 192,
    };

    /// The matmul tiling matching the vector width of a fused-attention tiling (which
    /// `Tiling::for_target` picks per target).
    pub fn for_tiling(t: &Tiling) -> MatmulTiling {
        if t.w >= 16 {
            MatmulTiling::AVX512
        } else {
            MatmulTiling::AVX2
        }
    }

    fn nr(&self) -> usize {
        self.nr_vecs * self.w
    }

    /// A short tag naming the tiling in symbol names.
    pub fn tag(&self) -> String {
        format!("w{}m{}n{}c{}", self.w, self.mr, self.nr_vecs, self.nc)
    }
}

/// The symbol of the f32 matmul kernel of a given rank.
pub fn matmul_symbol(rank: usize, t: &Tiling) -> String {
    format!(
        "__attn_matmul_f32_r{rank}_{}",
        MatmulTiling::for_tiling(t).tag()
    )
}

/// The symbol of the f32 softmax kernel of a given rank.
pub fn softmax_symbol(rank: usize, t: &Tiling) -> String {
    format!("__attn_softmax_f32_r{rank}_w{}", t.w)
}

/// The MLIR text of a module holding `@{matmul_symbol(r)}` for every `r` in `matmul_ranks`
/// (`(a, b, init: tensor<?x..xf32>) -> tensor`) and `@{softmax_symbol(r)}` for every `r` in
/// `softmax_ranks` (`(x, init) -> tensor`).
pub fn module_text(matmul_ranks: &[usize], softmax_ranks: &[usize], t: &Tiling) -> String {
    let mut s = String::from("module {\n");
    for &r in matmul_ranks {
        s.push_str(&matmul(r, t));
    }
    for &r in softmax_ranks {
        s.push_str(&softmax(r, t));
    }
    s.push_str("}\n");
    s
}

fn tensor_ty(rank: usize) -> String {
    format!("tensor<{}f32>", "?x".repeat(rank))
}

/// Loops over the leading dims `bounds` (carrying the tensor `out` of type `ty`), calling `body`
/// with the induction variables and the carried tensor; returns the final tensor.
#[allow(clippy::too_many_arguments)]
fn nest(
    e: &mut E,
    bounds: &[String],
    ivs: &mut Vec<String>,
    out: String,
    ty: &str,
    c0: &str,
    c1: &str,
    body: &mut dyn FnMut(&mut E, &[String], String) -> String,
) -> String {
    if ivs.len() == bounds.len() {
        let ivs_now = ivs.clone();
        return body(e, &ivs_now, out);
    }
    let hi = bounds[ivs.len()].clone();
    let res = e.for_loop(c0, &hi, c1, &[(out, ty.to_string())], |e, iv, a| {
        ivs.push(iv.to_string());
        let r = nest(e, bounds, ivs, a[0].clone(), ty, c0, c1, body);
        ivs.pop();
        vec![r]
    });
    res[0].clone()
}

/// `prefix` indices followed by `rest`, comma separated.
fn at(prefix: &[String], rest: &[&str]) -> String {
    prefix
        .iter()
        .map(String::as_str)
        .chain(rest.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `@{matmul_symbol(rank)}`.
fn matmul(rank: usize, t: &Tiling) -> String {
    let mt = MatmulTiling::for_tiling(t);
    let (w, mr, nrv, nc) = (mt.w, mt.mr, mt.nr_vecs, mt.nc);
    let nr = mt.nr();
    let lead = rank - 2;
    let tn = tensor_ty(rank);
    let vt = format!("vector<{w}xf32>");
    let bp_ty = format!("memref<?x{nc}xf32>");
    let ct_ty = format!("memref<{mr}x{nr}xf32>");

    let mut e = E::new(2);
    let c0 = e.idx(0);
    let c1 = e.idx(1);
    let cnc = e.idx(nc);
    let cnr = e.idx(nr);
    let cmr = e.idx(mr);
    let zero = e.f32c(0.0);
    let vzero = e.splat(0.0, &vt);
    let bounds: Vec<String> = (0..lead)
        .map(|i| {
            let ci = e.idx(i);
            e.v(&format!("tensor.dim %a, {ci} : {tn}"))
        })
        .collect();
    let (cm, ck) = (e.idx(lead), e.idx(lead + 1));
    let m = e.v(&format!("tensor.dim %a, {cm} : {tn}"));
    let k = e.v(&format!("tensor.dim %a, {ck} : {tn}"));
    let n = e.v(&format!("tensor.dim %b, {ck} : {tn}"));
    let mlast = e.v(&format!("arith.subi {m}, {c1} : index"));
    let bp = e.v(&format!(
        "memref.alloc({k}) {{alignment = 64 : i64}} : {bp_ty}"
    ));
    let ct = e.v(&format!(
        "memref.alloca() {{alignment = 64 : i64}} : {ct_ty}"
    ));

    let mut body = |e: &mut E, p: &[String], out: String| -> String {
        let res = e.for_loop(&c0, &n, &cnc, &[(out, tn.clone())], |e, jc, o| {
            let left = e.v(&format!("arith.subi {n}, {jc} : index"));
            let ncb = e.v(&format!("arith.minsi {left}, {cnc} : index"));
            let nrm1 = e.idx(nr - 1);
            let r1 = e.v(&format!("arith.addi {ncb}, {nrm1} : index"));
            let r2 = e.v(&format!("arith.divui {r1}, {cnr} : index"));
            let ncp = e.v(&format!("arith.muli {r2}, {cnr} : index"));
            // Pack B[:, jc..jc + nc] as [k][c], zero columns up to a multiple of NR.
            e.for_each(&c0, &k, &c1, |e, kk| {
                e.for_each(&c0, &ncb, &c1, |e, c| {
                    let col = e.v(&format!("arith.addi {jc}, {c} : index"));
                    let x = e.v(&format!("tensor.extract %b[{}] : {tn}", at(p, &[kk, &col])));
                    e.line(&format!("memref.store {x}, {bp}[{kk}, {c}] : {bp_ty}"));
                });
                e.for_each(&ncb, &ncp, &c1, |e, c| {
                    e.line(&format!("memref.store {zero}, {bp}[{kk}, {c}] : {bp_ty}"));
                });
            });
            let o = o[0].clone();
            let res = e.for_loop(&c0, &m, &cmr, &[(o, tn.clone())], |e, i0, o| {
                let mleft = e.v(&format!("arith.subi {m}, {i0} : index"));
                let rows = e.v(&format!("arith.minsi {mleft}, {cmr} : index"));
                // Rows past M read the last row (never written).
                let ridx: Vec<String> = (0..mr)
                    .map(|r| {
                        let cr = e.idx(r);
                        let i = e.v(&format!("arith.addi {i0}, {cr} : index"));
                        e.v(&format!("arith.minsi {i}, {mlast} : index"))
                    })
                    .collect();
                let o = o[0].clone();
                let res = e.for_loop(&c0, &ncp, &cnr, &[(o, tn.clone())], |e, jr, o| {
                    let inits: Vec<(String, String)> =
                        (0..mr * nrv).map(|_| (vzero.clone(), vt.clone())).collect();
                    let acc = e.for_loop(&c0, &k, &c1, &inits, |e, kk, a| {
                        let bv: Vec<String> = (0..nrv)
                            .map(|v| {
                                let off = e.idx(v * w);
                                let col = e.v(&format!("arith.addi {jr}, {off} : index"));
                                e.v(&format!("vector.load {bp}[{kk}, {col}] : {bp_ty}, {vt}"))
                            })
                            .collect();
                        let mut out = Vec::new();
                        for (r, ri) in ridx.iter().enumerate() {
                            let x = e.v(&format!("tensor.extract %a[{}] : {tn}", at(p, &[ri, kk])));
                            let xb = e.v(&format!("vector.broadcast {x} : f32 to {vt}"));
                            for v in 0..nrv {
                                out.push(e.v(&format!(
                                    "vector.fma {xb}, {}, {} : {vt}",
                                    bv[v],
                                    a[r * nrv + v]
                                )));
                            }
                        }
                        out
                    });
                    let j0 = e.v(&format!("arith.addi {jc}, {jr} : index"));
                    let nleft = e.v(&format!("arith.subi {n}, {j0} : index"));
                    let cols = e.v(&format!("arith.minsi {nleft}, {cnr} : index"));
                    // Through a small scratch (an `scf.if` yielding the tensor for full tiles
                    // made bufferization copy static-shape outputs); the copy loops are plain
                    // loops that LLVM vectorizes for unit strides.
                    for r in 0..mr {
                        let cr = e.idx(r);
                        for v in 0..nrv {
                            let off = e.idx(v * w);
                            e.line(&format!(
                                "vector.store {}, {ct}[{cr}, {off}] : {ct_ty}, {vt}",
                                acc[r * nrv + v]
                            ));
                        }
                    }
                    let o2 = o[0].clone();
                    let res = e.for_loop(&c0, &rows, &c1, &[(o2, tn.clone())], |e, r, o| {
                        let row = e.v(&format!("arith.addi {i0}, {r} : index"));
                        let o = o[0].clone();
                        let res = e.for_loop(&c0, &cols, &c1, &[(o, tn.clone())], |e, c, o| {
                            let col = e.v(&format!("arith.addi {j0}, {c} : index"));
                            let x = e.v(&format!("memref.load {ct}[{r}, {c}] : {ct_ty}"));
                            vec![e.v(&format!(
                                "tensor.insert {x} into {}[{}] : {tn}",
                                o[0],
                                at(p, &[&row, &col])
                            ))]
                        });
                        vec![res[0].clone()]
                    });
                    let res = res[0].clone();
                    vec![res]
                });
                vec![res[0].clone()]
            });
            vec![res[0].clone()]
        });
        res[0].clone()
    };
    let res = nest(
        &mut e,
        &bounds,
        &mut Vec::new(),
        "%init".to_string(),
        &tn,
        &c0,
        &c1,
        &mut body,
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  func.func private @{}(%a: {tn}, %b: {tn}, %init: {tn}) -> {tn} {{",
        matmul_symbol(rank, t)
    );
    s.push_str(&e.s);
    let _ = writeln!(s, "    return {res} : {tn}\n  }}");
    s
}

/// The constants of [`exp2_nonpositive`] for vectors of type `ty` / `ity`, emitted once
/// (outside the loops).
struct Exp2Consts {
    lo: String,
    magic: String,
    cs: Vec<String>,
    sh: String,
}

impl Exp2Consts {
    fn new(e: &mut E, ty: &str, ity: &str) -> Self {
        let lo = e.splat(-127.0, ty);
        // 1.5 * 2^23 + 127: added to an integer n (|n| < 2^22), it leaves n + 127 in the low bits.
        let magic = e.splat(12_583_039.0, ty);
        let c = [
            1.305_630_1e-3,
            9.678_750_1e-3,
            5.551_638_9e-2,
            2.402_209_2e-1,
            6.931_460_5e-1,
            1.0,
        ];
        let cs = c.iter().map(|&x| e.splat(x, ty)).collect();
        let sh = e.v(&format!("arith.constant dense<23> : {ity}"));
        Exp2Consts { lo, magic, cs, sh }
    }
}

/// `2^t` for every `t` of `ts` (`t <= ~0`, of type `ty`, a vector of f32), exactly 0 below
/// about -126.5 (the clamp to -127 makes the exponent field 0, so `-inf` gives 0): `n` =
/// `roundeven(t)` (`roundps`), the fraction `r = t - n` by a degree-5 polynomial on
/// [-0.5, 0.5] (coefficients fitted for this kernel, relative error about 3e-7) in Estrin's
/// scheme (depth 3: shorter chains than Horner's for one more multiplication), and `2^n` built
/// from the bits of `n + 1.5 * 2^23 + 127` and applied as a multiplication. A NaN `t` gives NaN
/// (it reaches the product); no `fptosi`, so no poison. The independent evaluations are
/// emitted step by step, interleaved.
fn exp2_nonpositive(e: &mut E, k: &Exp2Consts, ts: &[String], ty: &str, ity: &str) -> Vec<String> {
    let each = |e: &mut E, xs: &[String], f: &dyn Fn(&str) -> String| -> Vec<String> {
        xs.iter().map(|x| e.v(&f(x))).collect()
    };
    let tc: Vec<String> = ts.iter().map(|t| e.max(t, &k.lo, ty)).collect();
    // n = round(t) (`roundps`), r = t - n in [-0.5, 0.5]; the bits of n + magic hold n + 127
    // (off the critical path).
    let fx = each(e, &tc, &|t| format!("math.roundeven {t} : {ty}"));
    let r: Vec<String> = tc
        .iter()
        .zip(&fx)
        .map(|(t, f)| e.v(&format!("arith.subf {t}, {f} : {ty}")))
        .collect();
    let kk = each(e, &fx, &|x| format!("arith.addf {x}, {} : {ty}", k.magic));
    // Estrin's scheme (depth 3 instead of Horner's 5):
    // ((c0 r + c1) r^2 + (c2 r + c3)) r^2 + (c4 r + c5).
    let c = &k.cs;
    let r2 = each(e, &r, &|r| format!("arith.mulf {r}, {r} : {ty}"));
    let lin = |e: &mut E, hi: &str, lo: &str| -> Vec<String> {
        r.iter()
            .map(|r| e.v(&format!("math.fma {hi}, {r}, {lo} : {ty}")))
            .collect()
    };
    let p01 = lin(e, &c[0], &c[1]);
    let p23 = lin(e, &c[2], &c[3]);
    let p45 = lin(e, &c[4], &c[5]);
    let q: Vec<String> = (0..ts.len())
        .map(|i| {
            e.v(&format!(
                "math.fma {}, {}, {} : {ty}",
                p01[i], r2[i], p23[i]
            ))
        })
        .collect();
    let y: Vec<String> = (0..ts.len())
        .map(|i| e.v(&format!("math.fma {}, {}, {} : {ty}", q[i], r2[i], p45[i])))
        .collect();
    let kb = each(e, &kk, &|x| format!("arith.bitcast {x} : {ty} to {ity}"));
    let nb = each(e, &kb, &|x| format!("arith.shli {x}, {} : {ity}", k.sh));
    let scale = each(e, &nb, &|x| format!("arith.bitcast {x} : {ity} to {ty}"));
    y.iter()
        .zip(&scale)
        .map(|(y, s)| e.v(&format!("arith.mulf {y}, {s} : {ty}")))
        .collect()
}

/// `@{softmax_symbol(rank)}`.
fn softmax(rank: usize, t: &Tiling) -> String {
    let w = t.w;
    // Vectors per step of the max and exp loops (independent accumulators and exp chains).
    const U: usize = 2;
    let lead = rank - 1;
    let tn = tensor_ty(rank);
    let vt = format!("vector<{w}xf32>");
    let vit = format!("vector<{w}xi32>");
    let rb_ty = "memref<?xf32>".to_string();

    let mut e = E::new(2);
    let c0 = e.idx(0);
    let c1 = e.idx(1);
    let cstep = e.idx(U * w);
    let ninf = e.v("arith.constant 0xFF800000 : f32");
    let vninf = e.v(&format!("vector.broadcast {ninf} : f32 to {vt}"));
    let vzero = e.splat(0.0, &vt);
    let one = e.f32c(1.0);
    let log2e = e.f32c(std::f64::consts::LOG2_E);
    let vlog2e = e.splat(std::f64::consts::LOG2_E, &vt);
    // 2^23: below it, |m log2e| < 2^24 and the rounding of `m log2e` is at most 0.5.
    let big = e.f32c(8_388_608.0);
    let kexp = Exp2Consts::new(&mut e, &vt, &vit);
    let bounds: Vec<String> = (0..lead)
        .map(|i| {
            let ci = e.idx(i);
            e.v(&format!("tensor.dim %x, {ci} : {tn}"))
        })
        .collect();
    let cl = e.idx(lead);
    let n = e.v(&format!("tensor.dim %x, {cl} : {tn}"));
    let sm1 = e.idx(U * w - 1);
    let n1 = e.v(&format!("arith.addi {n}, {sm1} : index"));
    let n2 = e.v(&format!("arith.divui {n1}, {cstep} : index"));
    let np = e.v(&format!("arith.muli {n2}, {cstep} : index"));
    let rb = e.v(&format!(
        "memref.alloc({np}) {{alignment = 64 : i64}} : {rb_ty}"
    ));
    let offs: Vec<String> = (0..U).map(|u| e.idx(u * w)).collect();
    // The input as a strided buffer (read only), its strides, and whether rows are contiguous.
    let sty = format!(
        "memref<{}f32, strided<[{}], offset: ?>>",
        "?x".repeat(rank),
        vec!["?"; rank].join(", ")
    );
    let uty = "memref<?xf32, strided<[1], offset: ?>>".to_string();
    let xb = e.v(&format!(
        "bufferization.to_buffer %x read_only : {tn} to {sty}"
    ));
    let xm = e.fresh();
    e.line(&format!(
        "{xm}:{} = memref.extract_strided_metadata {xb} : {sty} -> memref<f32>, index{}",
        2 + 2 * rank,
        ", index".repeat(2 * rank)
    ));
    let stride = |d: usize| format!("{xm}#{}", 2 + rank + d);
    let unit = e.v(&format!(
        "arith.cmpi eq, {}, {c1} : index",
        stride(rank - 1)
    ));
    // Contiguous rows are read in place up to `nmain` (whole steps); the scratch holds the rest
    // of the row (all of it for strided rows), padded with -inf, and every exponential.
    let nq = e.v(&format!("arith.divui {n}, {cstep} : index"));
    let nfull = e.v(&format!("arith.muli {nq}, {cstep} : index"));
    let nmain = e.v(&format!("arith.select {unit}, {nfull}, {c0} : index"));
    let rbu = e.v(&format!("memref.cast {rb} : {rb_ty} to {uty}"));
    // The U vectors of `src` (of type `ty`) at `c`.
    let load_step = |e: &mut E, src: &str, ty: &str, c: &str| -> (Vec<String>, Vec<String>) {
        let is: Vec<String> = offs
            .iter()
            .map(|o| e.v(&format!("arith.addi {c}, {o} : index")))
            .collect();
        let xs = is
            .iter()
            .map(|i| e.v(&format!("vector.load {src}[{i}] : {ty}, {vt}")))
            .collect();
        (is, xs)
    };

    let mut body = |e: &mut E, p: &[String], out: String| -> String {
        // The row in place (a unit-stride view; the scratch when the row is strided).
        let mut off = format!("{xm}#1");
        for (d, i) in p.iter().enumerate() {
            let o = e.v(&format!("arith.muli {i}, {} : index", stride(d)));
            off = e.v(&format!("arith.addi {off}, {o} : index"));
        }
        let xrow = e.v(&format!(
            "memref.reinterpret_cast {xm}#0 to offset: [{off}], sizes: [{n}], strides: [1] : memref<f32> to {uty}"
        ));
        let src = e.v(&format!("arith.select {unit}, {xrow}, {rbu} : {uty}"));
        // The rest of the row into the scratch, padded with -inf: a plain copy loop, which LLVM
        // vectorizes (behind a unit-stride check).
        e.for_each(&nmain, &n, &c1, |e, c| {
            let x = e.v(&format!("tensor.extract %x[{}] : {tn}", at(p, &[c])));
            e.line(&format!("memref.store {x}, {rb}[{c}] : {rb_ty}"));
        });
        e.for_each(&n, &np, &c1, |e, c| {
            e.line(&format!("memref.store {ninf}, {rb}[{c}] : {rb_ty}"));
        });
        // The row max over vectors (`a < b ? b : a`, one `maxps`): a NaN entry is skipped
        // here and reaches the whole row through its exponential and the sum instead.
        let inits: Vec<(String, String)> = (0..U).map(|_| (vninf.clone(), vt.clone())).collect();
        let vmax = e.for_loop(&c0, &nmain, &cstep, &inits, |e, c, a| {
            let (_, xs) = load_step(e, &src, &uty, c);
            a.iter().zip(&xs).map(|(m, x)| e.max(m, x, &vt)).collect()
        });
        let inits: Vec<(String, String)> = vmax.iter().map(|m| (m.clone(), vt.clone())).collect();
        let vmax = e.for_loop(&nmain, &np, &cstep, &inits, |e, c, a| {
            let (_, xs) = load_step(e, &rb, &rb_ty, c);
            a.iter().zip(&xs).map(|(m, x)| e.max(m, x, &vt)).collect()
        });
        let mut m = vmax[0].clone();
        for v in &vmax[1..] {
            m = e.max(&m, v, &vt);
        }
        let mx = e.hmax(&m, w);
        // exp(x - m) = 2^t, t = x log2e - m log2e with the subtraction fused into one FMA; the
        // rounding of `m log2e` shifts every t of the row alike (it cancels in the
        // normalization) and leaves the largest entry's t within 0.5 of 0 while |m| < 2^23.
        // Rows with a larger |m| (or an infinite one) take t = (x - m) log2e: one more op per
        // vector, and that entry's t exactly 0.
        let am = e.v(&format!("math.absf {mx} : f32"));
        let small = e.v(&format!("arith.cmpf olt, {am}, {big} : f32"));
        let ml = e.v(&format!("arith.mulf {mx}, {log2e} : f32"));
        let nml = e.v(&format!("arith.negf {ml} : f32"));
        let vnml = e.v(&format!("vector.broadcast {nml} : f32 to {vt}"));
        let vm = e.v(&format!("vector.broadcast {mx} : f32 to {vt}"));
        // One sum accumulator fed by a tree of the step's vectors: few live registers (no
        // spilled accumulator on the loop-carried chain) and one add of latency per step.
        let exp_loop = |e: &mut E,
                        fused: bool,
                        lo: &str,
                        hi: &str,
                        from: &str,
                        ty: &str,
                        acc: &str|
         -> String {
            let inits = [(acc.to_string(), vt.clone())];
            let vsum = e.for_loop(lo, hi, &cstep, &inits, |e, c, a| {
                let (is, xs) = load_step(e, from, ty, c);
                let ts: Vec<String> = xs
                    .iter()
                    .map(|x| {
                        if fused {
                            e.v(&format!("math.fma {x}, {vlog2e}, {vnml} : {vt}"))
                        } else {
                            let d = e.v(&format!("arith.subf {x}, {vm} : {vt}"));
                            e.v(&format!("arith.mulf {d}, {vlog2e} : {vt}"))
                        }
                    })
                    .collect();
                let ys = exp2_nonpositive(e, &kexp, &ts, &vt, &vit);
                for (y, i) in ys.iter().zip(&is) {
                    e.line(&format!("vector.store {y}, {rb}[{i}] : {rb_ty}, {vt}"));
                }
                let mut level = ys;
                while level.len() > 1 {
                    level = level
                        .chunks(2)
                        .map(|p| match p {
                            [a, b] => e.v(&format!("arith.addf {a}, {b} : {vt}")),
                            [a] => a.clone(),
                            _ => unreachable!(),
                        })
                        .collect();
                }
                vec![e.v(&format!("arith.addf {}, {} : {vt}", a[0], level[0]))]
            });
            vsum[0].clone()
        };
        let exp_pass = |e: &mut E, fused: bool| -> String {
            let mut acc = vzero.clone();
            for (lo, hi, from, ty) in [(&c0, &nmain, &src, &uty), (&nmain, &np, &rb, &rb_ty)] {
                acc = exp_loop(e, fused, lo, hi, from, ty, &acc);
            }
            acc
        };
        let vsum = e.fresh();
        e.line(&format!("{vsum} = scf.if {small} -> ({vt}) {{"));
        let s = exp_pass(e, true);
        e.line(&format!("scf.yield {s} : {vt}"));
        e.line("} else {");
        let s = exp_pass(e, false);
        e.line(&format!("scf.yield {s} : {vt}"));
        e.line("}");
        let sum = e.v(&format!(
            "vector.reduction <add>, {vsum} fastmath<reassoc> : {vt} into f32"
        ));
        let inv = e.v(&format!("arith.divf {one}, {sum} : f32"));
        // The row scaled by 1 / sum on the copy out (again a plain loop).
        let res = e.for_loop(&c0, &n, &c1, &[(out, tn.clone())], |e, c, o| {
            let x = e.v(&format!("memref.load {rb}[{c}] : {rb_ty}"));
            let y = e.v(&format!("arith.mulf {x}, {inv} : f32"));
            vec![e.v(&format!(
                "tensor.insert {y} into {}[{}] : {tn}",
                o[0],
                at(p, &[c])
            ))]
        });
        res[0].clone()
    };
    let res = nest(
        &mut e,
        &bounds,
        &mut Vec::new(),
        "%init".to_string(),
        &tn,
        &c0,
        &c1,
        &mut body,
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  func.func private @{}(%x: {tn}, %init: {tn}) -> {tn} {{",
        softmax_symbol(rank, t)
    );
    s.push_str(&e.s);
    let _ = writeln!(s, "    return {res} : {tn}\n  }}");
    s
}

/// The rank of an f32 ranked tensor type (`tensor<?x4xf32>` -> 2), `None` for anything else.
fn f32_rank(ty: &str) -> Option<usize> {
    let inner = ty.strip_prefix("tensor<")?.strip_suffix('>')?;
    let mut parts: Vec<&str> = inner.split('x').collect();
    if parts.pop()? != "f32" {
        return None;
    }
    Some(parts.len())
}

/// Inserts into `module` the private kernels that its f32 `transformer.matmul` and
/// `transformer.softmax` ops will call (also those of the composition an f32 attention of rank
/// above 4 lowers to).
pub(crate) fn insert_kernels(
    ctx: &Context,
    module: &OperationRef,
    tiling: &Tiling,
) -> Result<(), String> {
    let (mut mm, mut sm, mut existing) = (Vec::new(), Vec::new(), Vec::new());
    let add = |v: &mut Vec<usize>, r: usize| {
        if !v.contains(&r) {
            v.push(r);
        }
    };
    module.walk(WalkOrder::PreOrder, |op| {
        let name = op
            .name()
            .as_string_ref()
            .as_str()
            .unwrap_or_default()
            .to_string();
        let rank = op
            .operand(0)
            .ok()
            .and_then(|x| f32_rank(&x.r#type().to_string()));
        match (name.as_str(), rank) {
            ("transformer.matmul", Some(r)) if r >= 2 => add(&mut mm, r),
            ("transformer.softmax", Some(r)) if r >= 1 => add(&mut sm, r),
            ("transformer.attention", Some(r)) if r > 4 => {
                add(&mut mm, r);
                add(&mut sm, r);
            }
            ("func.func", _) => {
                if let Ok(a) = op.attribute("sym_name") {
                    existing.push(a.to_string());
                }
            }
            _ => {}
        }
        WalkResult::Advance
    });
    if mm.is_empty() && sm.is_empty() {
        return Ok(());
    }
    let text = module_text(&mm, &sm, tiling);
    crate::lower::append_functions(ctx, module, &text, &existing, "the primitive kernels")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_text_parses_with_every_tiling_and_rank() {
        let c = crate::pipeline::Compiler::new().unwrap();
        for t in [Tiling::AVX2, Tiling::AVX512] {
            let text = module_text(&[2, 3, 4], &[1, 2, 3, 4], &t);
            assert!(
                melior::ir::Module::parse(c.context(), &text).is_some(),
                "{t:?}:\n{text}"
            );
        }
    }
}
