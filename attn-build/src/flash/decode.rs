//! The streaming ("decode") path of the fused kernel, taken at run time when a call has at most
//! [`DECODE_ROWS`] query rows and K and V have unit stride along their rows (`D`, `Dv`), as in
//! decoding with a KV cache (one row per head, or the few stacked query heads of a GQA group).
//! Packing K and V pays only when many query rows reuse the panels; here they are read in place.
//!
//! # Algorithm
//! - Q's rows are copied, pre-scaled, into a scratch zero-padded to `D' = ceil(D / w) * w`.
//! - For each block of `BK = 2w` keys and each query row, the scores of `w` keys at a time are
//!   `w` vector accumulators along D (one Q vector times the K vector of each key, straight from
//!   K; the last partial vector of a row with a masked load), reduced to one vector of `w`
//!   scores by a transposing tree of shuffles and adds (in-128-bit-lane pair sums first, then
//!   halving across 128-bit blocks). Keys past Sk read the last key (a clamped index) and, like
//!   keys past a row's causal position, are set to `-inf`; the mask variant adds the mask first.
//! - Online softmax per row over the block, as in the packed path (`m`, `l` in scratch); `P` is
//!   stored next to the scores, `alpha` per row.
//! - `O = alpha O + P V` in register tiles of up to `BR` rows x `PV` vectors of Dv, V vectors
//!   read in place (the last partial vector of a row with a masked load) for the block's keys
//!   only; `O` is a `DECODE_ROWS x Dv'` scratch. Every row count `1..=BR` and every Dv
//!   remainder has its own tile, so no padded row or column is computed.
//! - Finally `out = O / l` (zeros for a row whose keys are all masked, in the masked variants).
//!
//! The exponentials flush `-inf` to exactly 0 in every variant; NaN and infinite scores
//! propagate to their rows as in the packed path.

use super::{Dtype, E, Tiling, Variant};

/// The most query rows a call may have to take the streaming path.
pub const DECODE_ROWS: usize = 8;

/// Score vectors (of `w` keys each) per key block.
const BLOCK_VECS: usize = 2;

/// How many key blocks ahead K and V are prefetched.
const PREFETCH_BLOCKS: usize = 4;

/// The buffer type of K and V (any strides).
fn strided(dt: Dtype) -> String {
    format!("memref<?x?x{}, strided<[?, ?], offset: ?>>", dt.st)
}

/// The buffer type of K and V with unit stride along a row.
fn unit(dt: Dtype) -> String {
    format!("memref<?x?x{}, strided<[?, 1], offset: ?>>", dt.st)
}

/// Values the selection emits before the `scf.if`, shared with the decode branch.
pub(super) struct Shared {
    /// `i1`: take the decode path.
    pub cond: String,
    sq: String,
    sk: String,
    d: String,
    dv: String,
    dvp: String,
    c0: String,
    c1: String,
    cw: String,
    /// K and V as strided buffers, with their `extract_strided_metadata` results.
    kbuf: String,
    kmeta: String,
    vbuf: String,
    vmeta: String,
}

impl Shared {
    /// Emits the buffers of K and V, their strides and the condition of the decode path.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit(
        e: &mut E,
        dt: Dtype,
        sq: &str,
        sk: &str,
        d: &str,
        dv: &str,
        dvp: &str,
        c0: &str,
        c1: &str,
        cw: &str,
    ) -> Shared {
        let t2 = dt.tensor(2);
        let strided = strided(dt);
        let st = dt.st;
        let meta = |e: &mut E, buf: &str| {
            let m = e.fresh();
            e.line(&format!(
                "{m}:6 = memref.extract_strided_metadata {buf} : {strided} -> memref<{st}>, index, index, index, index, index"
            ));
            m
        };
        let kbuf = e.v(&format!(
            "bufferization.to_buffer %k read_only : {t2} to {strided}"
        ));
        let kmeta = meta(e, &kbuf);
        let vbuf = e.v(&format!(
            "bufferization.to_buffer %v read_only : {t2} to {strided}"
        ));
        let vmeta = meta(e, &vbuf);
        let rmax = e.idx(DECODE_ROWS);
        let few = e.v(&format!("arith.cmpi ule, {sq}, {rmax} : index"));
        let ku = e.v(&format!("arith.cmpi eq, {kmeta}#5, {c1} : index"));
        let vu = e.v(&format!("arith.cmpi eq, {vmeta}#5, {c1} : index"));
        let c = e.v(&format!("arith.andi {few}, {ku} : i1"));
        let cond = e.v(&format!("arith.andi {c}, {vu} : i1"));
        Shared {
            cond,
            sq: sq.into(),
            sk: sk.into(),
            d: d.into(),
            dv: dv.into(),
            dvp: dvp.into(),
            c0: c0.into(),
            c1: c1.into(),
            cw: cw.into(),
            kbuf,
            kmeta,
            vbuf,
            vmeta,
        }
    }
}

/// The shuffles of [`transpose_sum`]: levels of pair steps; a step combines vectors `2i` and
/// `2i + 1` of the level into `shuffle(a, b, lo) + shuffle(a, b, hi)` (lane `l < w` of the
/// concatenation `[a, b]` is `a[l]`, lane `w + l` is `b[l]`).
type Step = (Vec<usize>, Vec<usize>);

/// The plan for `w` vectors of `w` lanes (`w` a power of two >= 4): two levels of pair sums
/// inside each 4-lane group (`shufps`-like even/odd shuffles, giving `[a(g), b(g), c(g), d(g)]`
/// in group `g`, `x(g)` the sum of group `g` of `x`), then halving across the 4-lane groups.
fn transpose_sum_plan(w: usize) -> Vec<Step> {
    assert!(w >= 4 && w.is_power_of_two());
    let groups = w / 4;
    let mut levels = Vec::new();
    for _ in 0..2 {
        let (mut even, mut odd) = (Vec::new(), Vec::new());
        for g in 0..groups {
            let b = 4 * g;
            even.extend([b, b + 2, w + b, w + b + 2]);
            odd.extend([b + 1, b + 3, w + b + 1, w + b + 3]);
        }
        levels.push((even, odd));
    }
    // Each vector now holds `nsg` source groups (4 sources each) of `c` 4-lane blocks of partial
    // sums; a step keeps the first half of every group's blocks in `lo`, the second in `hi`.
    let (mut c, mut nsg) = (groups, 1);
    while c > 1 {
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for side in 0..2 {
            for s in 0..nsg {
                for blk in 0..c {
                    let lanes = (0..4).map(|l| side * w + (s * c + blk) * 4 + l);
                    if blk < c / 2 {
                        lo.extend(lanes);
                    } else {
                        hi.extend(lanes);
                    }
                }
            }
        }
        levels.push((lo, hi));
        c /= 2;
        nsg *= 2;
    }
    levels
}

/// `w` vectors `acc[i]` of `w` lanes -> one vector whose lane `i` is the sum of `acc[i]`
/// (see [`transpose_sum_plan`]).
fn transpose_sum(e: &mut E, acc: &[String], w: usize, ct: &str) -> String {
    assert_eq!(acc.len(), w);
    let vt = format!("vector<{w}x{ct}>");
    let join = |v: &[usize]| {
        v.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut cur = acc.to_vec();
    for (lo, hi) in transpose_sum_plan(w) {
        let mut next = Vec::new();
        for p in cur.chunks(2) {
            let (a, b) = (&p[0], &p[1]);
            let x = e.v(&format!(
                "vector.shuffle {a}, {b} [{}] : {vt}, {vt}",
                join(&lo)
            ));
            let y = e.v(&format!(
                "vector.shuffle {a}, {b} [{}] : {vt}, {vt}",
                join(&hi)
            ));
            next.push(e.v(&format!("arith.addf {x}, {y} : {vt}")));
        }
        cur = next;
    }
    assert_eq!(cur.len(), 1);
    cur.remove(0)
}

/// Emits the decode branch (inside the `scf.if`): leaves the unnormalized output rows in `ob`
/// (of type `ob_ty`, at least `DECODE_ROWS x Dv'`) and the row sums in `ls` (of type `ls_ty`);
/// the caller divides.
#[allow(clippy::too_many_arguments)]
pub(super) fn emit(
    e: &mut E,
    t: &Tiling,
    dt: Dtype,
    var: Variant,
    s: &Shared,
    ob: &str,
    ob_ty: &str,
    ls: &str,
    ls_ty: &str,
) {
    let (w, br, pvv) = (t.w, t.br, t.pv_vecs);
    let rmax = DECODE_ROWS;
    let bk = BLOCK_VECS * w;
    let (st, ct) = (dt.st, dt.ct);
    let vt = format!("vector<{w}x{ct}>");
    let vst = format!("vector<{w}x{st}>");
    let vit = format!("vector<{w}xi32>");
    let vet = format!("vector<{w}x{}>", dt.int());
    let vmt = format!("vector<{w}xi1>");
    let t2 = dt.tensor(2);
    let mt2 = Dtype::F32.tensor(2);
    let (strided_ty, unit_ty) = (strided(dt), unit(dt));
    let (strided_ty, unit_ty) = (strided_ty.as_str(), unit_ty.as_str());
    let rows_ty = format!("memref<{rmax}x?x{ct}>");
    let st_ty = format!("memref<{rmax}x{ct}>");
    let lim_ty = format!("memref<{rmax}xi32>");
    let sb_ty = format!("memref<{rmax}x{bk}x{ct}>");
    let (sq, sk, d, dv, dvp) = (&s.sq, &s.sk, &s.d, &s.dv, &s.dvp);
    let (c0, c1, cw) = (&s.c0, &s.c1, &s.cw);

    let unit = |e: &mut E, buf: &str, meta: &str, cols: &str| {
        e.v(&format!(
            "memref.reinterpret_cast {buf} to offset: [{meta}#1], sizes: [{sk}, {cols}], strides: [{meta}#4, 1] : {strided_ty} to {unit_ty}"
        ))
    };
    let ku = unit(e, &s.kbuf, &s.kmeta, d);
    let vu = unit(e, &s.vbuf, &s.vmeta, dv);
    let zero = e.fc(0.0);
    let vzero = e.splat(0.0, &vt);
    let vzero_st = e.splat(0.0, &vst);
    let neg = e.fc(-3.0e38);
    let ninf = e.v(&format!("arith.constant {} : {ct}", dt.neg_inf_hex()));
    let vninf = e.v(&format!("vector.broadcast {ninf} : {ct} to {vt}"));
    let iota = e.v(&format!(
        "arith.constant dense<[{}]> : {vit}",
        (0..w).map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
    ));
    let cbk = e.idx(bk);
    let cbr = e.idx(br);
    let ski = e.v(&format!("arith.index_cast {sk} : index to i32"));
    let skm1 = e.v(&format!("arith.subi {sk}, {c1} : index"));
    // D' = ceil(D / w) * w; the full part of D and of Dv, and masks for the rest.
    let wm1 = e.idx(w - 1);
    let dr = e.v(&format!("arith.addi {d}, {wm1} : index"));
    let dq = e.v(&format!("arith.divui {dr}, {cw} : index"));
    let dp = e.v(&format!("arith.muli {dq}, {cw} : index"));
    let dfq = e.v(&format!("arith.divui {d}, {cw} : index"));
    let dfull = e.v(&format!("arith.muli {dfq}, {cw} : index"));
    let dtail = e.v(&format!("arith.subi {d}, {dfull} : index"));
    let dmask = e.v(&format!("vector.create_mask {dtail} : {vmt}"));
    let has_dtail = e.v(&format!("arith.cmpi ne, {dtail}, {c0} : index"));
    let nfv = e.v(&format!("arith.divui {dv}, {cw} : index"));
    let dvfull = e.v(&format!("arith.muli {nfv}, {cw} : index"));
    let dvtail = e.v(&format!("arith.subi {dv}, {dvfull} : index"));
    let dvmask = e.v(&format!("vector.create_mask {dvtail} : {vmt}"));
    let has_dvtail = e.v(&format!("arith.cmpi ne, {dvtail}, {c0} : index"));

    // The first `tail` elements of row `row` from column `col` (the rest zero), widened to the
    // compute type: a masked vector load; for bf16, whose masked vector loads LLVM legalizes
    // through `__truncsfbf2` calls on x86 without AVX512-BF16, `w` scalar loads at clamped
    // (in-bounds) columns and a select.
    let lanes: Vec<String> = (0..w).map(|l| e.idx(l)).collect();
    let lane_ids = iota.clone();
    let tail_load = |e: &mut E,
                     buf: &str,
                     row: &str,
                     col: &str,
                     tail: &str,
                     cols: &str,
                     mask: &str|
     -> String {
        if st != "bf16" {
            let x = e.v(&format!(
                "vector.maskedload {buf}[{row}, {col}], {mask}, {vzero_st} : {unit_ty}, {vmt}, {vst} into {vst}"
            ));
            return e.convert(&x, &vst, &vt);
        }
        let last = e.v(&format!("arith.subi {cols}, {c1} : index"));
        let mut v = vzero.clone();
        for (l, cl) in lanes.iter().enumerate() {
            let c = e.v(&format!("arith.addi {col}, {cl} : index"));
            let c = e.v(&format!("arith.minui {c}, {last} : index"));
            let x = e.v(&format!("memref.load {buf}[{row}, {c}] : {unit_ty}"));
            let x = e.convert(&x, st, ct);
            v = e.v(&format!("vector.insert {x}, {v} [{l}] : {ct} into {vt}"));
        }
        let t = e.v(&format!("arith.index_cast {tail} : index to i32"));
        let tv = e.v(&format!("vector.broadcast {t} : i32 to {vit}"));
        let ok = e.v(&format!("arith.cmpi slt, {lane_ids}, {tv} : {vit}"));
        e.v(&format!("arith.select {ok}, {v}, {vzero} : {vmt}, {vt}"))
    };
    let alloc = |e: &mut E, ty: &str, dynamic: &str| {
        e.v(&format!(
            "memref.alloc({dynamic}) {{alignment = 64 : i64}} : {ty}"
        ))
    };
    let qb = alloc(e, &rows_ty, &dp);
    let ms = alloc(e, &st_ty, "");
    let als = alloc(e, &st_ty, "");
    let sb = alloc(e, &sb_ty, "");
    let lims = alloc(e, &lim_ty, "");

    // Per row: Q * scale (zero-padded), O = 0, m = -3e38, l = 0, and the end of its keys
    // (Sk, or min(pos + 1, Sk) clamped at 0 when causal); the end of the call's keys.
    let c0i = e.v("arith.constant 0 : i32");
    let kend = e.for_loop(c0, sq, c1, &[(c0i.clone(), "i32".into())], |e, r, a| {
        e.for_each(c0, d, c1, |e, dd| {
            let x = e.v(&format!("tensor.extract %q[{r}, {dd}] : {t2}"));
            let x = e.convert(&x, st, ct);
            let y = e.v(&format!("arith.mulf {x}, %scale : {ct}"));
            e.line(&format!("memref.store {y}, {qb}[{r}, {dd}] : {rows_ty}"));
        });
        e.for_each(d, &dp, c1, |e, dd| {
            e.line(&format!("memref.store {zero}, {qb}[{r}, {dd}] : {rows_ty}"));
        });
        e.for_each(c0, dvp, cw, |e, c| {
            e.line(&format!(
                "vector.store {vzero}, {ob}[{r}, {c}] : {ob_ty}, {vt}"
            ));
        });
        e.line(&format!("memref.store {neg}, {ms}[{r}] : {st_ty}"));
        e.line(&format!("memref.store {zero}, {ls}[{r}] : {ls_ty}"));
        let lim = if var.causal {
            let p = e.v(&format!("tensor.extract %pos[{r}] : tensor<?xf32>"));
            let pi = e.v(&format!("arith.fptosi {p} : f32 to i32"));
            let one = e.v("arith.constant 1 : i32");
            let p1 = e.v(&format!("arith.addi {pi}, {one} : i32"));
            let l = e.v(&format!("arith.minsi {p1}, {ski} : i32"));
            e.v(&format!("arith.maxsi {l}, {c0i} : i32"))
        } else {
            ski.clone()
        };
        e.line(&format!("memref.store {lim}, {lims}[{r}] : {lim_ty}"));
        vec![e.v(&format!("arith.maxsi {}, {lim} : i32", a[0]))]
    });
    let kend = e.v(&format!("arith.index_cast {} : i32 to index", kend[0]));

    e.for_each(c0, &kend, &cbk, |e, kb| {
        let left = e.v(&format!("arith.subi {kend}, {kb} : index"));
        let jn = e.v(&format!("arith.minsi {left}, {cbk} : index"));
        // Prefetch the K and V rows of the block PREFETCH_BLOCKS ahead, row by row (one touch per
        // 64-byte line; locality 1: `prefetcht2` on x86), so that DRAM streams them in order
        // while the interleaved reads below hit the cache.
        let cdist = e.idx(bk * PREFETCH_BLOCKS);
        let nxt = e.v(&format!("arith.addi {kb}, {cdist} : index"));
        let c16 = e.idx(16);
        e.for_each(c0, &cbk, c1, |e, j| {
            let k = e.v(&format!("arith.addi {nxt}, {j} : index"));
            let k = e.v(&format!("arith.minsi {k}, {skm1} : index"));
            e.for_each(c0, d, &c16, |e, c| {
                e.line(&format!(
                    "memref.prefetch {ku}[{k}, {c}], read, locality<1>, data : {unit_ty}"
                ));
            });
            e.for_each(c0, dv, &c16, |e, c| {
                e.line(&format!(
                    "memref.prefetch {vu}[{k}, {c}], read, locality<1>, data : {unit_ty}"
                ));
            });
        });
        // Scores and softmax, row by row.
        e.for_each(c0, sq, c1, |e, r| {
            let lim = e.v(&format!("memref.load {lims}[{r}] : {lim_ty}"));
            let limv = e.v(&format!("vector.broadcast {lim} : i32 to {vit}"));
            let cbv = e.idx(BLOCK_VECS);
            e.for_each(c0, &cbv, c1, |e, jv| {
                let jw = e.v(&format!("arith.muli {jv}, {cw} : index"));
                let k0 = e.v(&format!("arith.addi {kb}, {jw} : index"));
                let keys: Vec<String> = (0..w)
                    .map(|i| {
                        let ci = e.idx(i);
                        let k = e.v(&format!("arith.addi {k0}, {ci} : index"));
                        e.v(&format!("arith.minsi {k}, {skm1} : index"))
                    })
                    .collect();
                let inits: Vec<(String, String)> =
                    (0..w).map(|_| (vzero.clone(), vt.clone())).collect();
                let acc = e.for_loop(c0, &dfull, cw, &inits, |e, dd, a| {
                    let qv = e.v(&format!("vector.load {qb}[{r}, {dd}] : {rows_ty}, {vt}"));
                    (0..w)
                        .map(|i| {
                            let kv = e.v(&format!(
                                "vector.load {ku}[{}, {dd}] : {unit_ty}, {vst}",
                                keys[i]
                            ));
                            let kv = e.convert(&kv, &vst, &vt);
                            e.v(&format!("vector.fma {qv}, {kv}, {} : {vt}", a[i]))
                        })
                        .collect()
                });
                // The last partial vector of D.
                let tys = vec![vt.as_str(); w].join(", ");
                let acc2 = e.fresh();
                e.line(&format!("{acc2}:{w} = scf.if {has_dtail} -> ({tys}) {{"));
                e.indent += 1;
                let qv = e.v(&format!("vector.load {qb}[{r}, {dfull}] : {rows_ty}, {vt}"));
                let upd: Vec<String> = (0..w)
                    .map(|i| {
                        let kv = tail_load(e, &ku, &keys[i], &dfull, &dtail, d, &dmask);
                        e.v(&format!("vector.fma {qv}, {kv}, {} : {vt}", acc[i]))
                    })
                    .collect();
                e.line(&format!("scf.yield {} : {tys}", upd.join(", ")));
                e.indent -= 1;
                e.line("} else {");
                e.indent += 1;
                e.line(&format!("scf.yield {} : {tys}", acc.join(", ")));
                e.indent -= 1;
                e.line("}");
                let acc: Vec<String> = (0..w).map(|i| format!("{acc2}#{i}")).collect();
                let mut sc = transpose_sum(e, &acc, w, ct);
                if var.mask {
                    let m: Vec<String> = keys
                        .iter()
                        .map(|k| e.v(&format!("tensor.extract %mask[{r}, {k}] : {mt2}")))
                        .collect();
                    let mvt = format!("vector<{w}xf32>");
                    let mv = e.v(&format!("vector.from_elements {} : {mvt}", m.join(", ")));
                    let mv = e.convert(&mv, &mvt, &vt);
                    sc = e.v(&format!("arith.addf {sc}, {mv} : {vt}"));
                }
                // Lane l is key k0 + l: visible when below the row's end.
                let k0i = e.v(&format!("arith.index_cast {k0} : index to i32"));
                let k0v = e.v(&format!("vector.broadcast {k0i} : i32 to {vit}"));
                let kv = e.v(&format!("arith.addi {k0v}, {iota} : {vit}"));
                let ok = e.v(&format!("arith.cmpi slt, {kv}, {limv} : {vit}"));
                let sc = e.v(&format!("arith.select {ok}, {sc}, {vninf} : {vmt}, {vt}"));
                e.line(&format!(
                    "vector.store {sc}, {sb}[{r}, {jw}] : {sb_ty}, {vt}"
                ));
            });
            // Online softmax over the block: m' = max(m, rowmax S), alpha = exp(m - m'),
            // P = exp(S - m') (in place of S), l' = alpha l + rowsum P.
            let sv: Vec<String> = (0..BLOCK_VECS)
                .map(|j| {
                    let col = e.idx(j * w);
                    e.v(&format!("vector.load {sb}[{r}, {col}] : {sb_ty}, {vt}"))
                })
                .collect();
            let mut mx = sv[0].clone();
            for x in &sv[1..] {
                mx = e.max(x, &mx, &vt);
            }
            let mx = e.hmax(&mx, w);
            let mold = e.v(&format!("memref.load {ms}[{r}] : {st_ty}"));
            let mnew = e.max(&mx, &mold, ct);
            let dm = e.v(&format!("arith.subf {mold}, {mnew} : {ct}"));
            let alpha = e.exp_flush(&dm, ct, dt.int());
            let mb = e.v(&format!("vector.broadcast {mnew} : {ct} to {vt}"));
            let mut sum: Option<String> = None;
            for (j, x) in sv.iter().enumerate() {
                let y = e.v(&format!("arith.subf {x}, {mb} : {vt}"));
                let p = e.exp_flush(&y, &vt, &vet);
                let col = e.idx(j * w);
                e.line(&format!(
                    "vector.store {p}, {sb}[{r}, {col}] : {sb_ty}, {vt}"
                ));
                sum = Some(match sum {
                    None => p,
                    Some(a) => e.v(&format!("arith.addf {a}, {p} : {vt}")),
                });
            }
            let rs = e.v(&format!(
                "vector.reduction <add>, {} fastmath<reassoc> : {vt} into {ct}",
                sum.unwrap_or_default()
            ));
            let lold = e.v(&format!("memref.load {ls}[{r}] : {ls_ty}"));
            let lnew = e.v(&format!("math.fma {lold}, {alpha}, {rs} : {ct}"));
            e.line(&format!("memref.store {lnew}, {ls}[{r}] : {ls_ty}"));
            e.line(&format!("memref.store {mnew}, {ms}[{r}] : {st_ty}"));
            e.line(&format!("memref.store {alpha}, {als}[{r}] : {st_ty}"));
        });
        // O = alpha O + P V over the block's keys, in tiles of nr rows x (nf full vectors,
        // plus one masked vector when `masked`).
        let tile = |e: &mut E, rows: &[String], c: &str, nf: usize, masked: bool| {
            let nv = nf + usize::from(masked);
            let cols: Vec<String> = (0..nv)
                .map(|i| {
                    let off = e.idx(i * w);
                    e.v(&format!("arith.addi {c}, {off} : index"))
                })
                .collect();
            let mut inits = Vec::new();
            for row in rows {
                let a = e.v(&format!("memref.load {als}[{row}] : {st_ty}"));
                let ab = e.v(&format!("vector.broadcast {a} : {ct} to {vt}"));
                for col in &cols {
                    let o = e.v(&format!("vector.load {ob}[{row}, {col}] : {ob_ty}, {vt}"));
                    inits.push((e.v(&format!("arith.mulf {o}, {ab} : {vt}")), vt.clone()));
                }
            }
            let acc = e.for_loop(c0, &jn, c1, &inits, |e, j, a| {
                let key = e.v(&format!("arith.addi {kb}, {j} : index"));
                let vv: Vec<String> = cols
                    .iter()
                    .enumerate()
                    .map(|(i, col)| {
                        if i < nf {
                            let x = e.v(&format!(
                                "vector.load {vu}[{key}, {col}] : {unit_ty}, {vst}"
                            ));
                            e.convert(&x, &vst, &vt)
                        } else {
                            tail_load(e, &vu, &key, col, &dvtail, dv, &dvmask)
                        }
                    })
                    .collect();
                let mut out = Vec::new();
                for (ri, row) in rows.iter().enumerate() {
                    let p = e.v(&format!("memref.load {sb}[{row}, {j}] : {sb_ty}"));
                    let pb = e.v(&format!("vector.broadcast {p} : {ct} to {vt}"));
                    for i in 0..nv {
                        out.push(e.v(&format!(
                            "vector.fma {pb}, {}, {} : {vt}",
                            vv[i],
                            a[ri * nv + i]
                        )));
                    }
                }
                out
            });
            for (ri, row) in rows.iter().enumerate() {
                for (i, col) in cols.iter().enumerate() {
                    e.line(&format!(
                        "vector.store {}, {ob}[{row}, {col}] : {ob_ty}, {vt}",
                        acc[ri * nv + i]
                    ));
                }
            }
        };
        let pv_rows = |e: &mut E, rg: &str, nr: usize| {
            let rows: Vec<String> = (0..nr)
                .map(|i| {
                    let ci = e.idx(i);
                    e.v(&format!("arith.addi {rg}, {ci} : index"))
                })
                .collect();
            let cpv = e.idx(pvv);
            let chunk = e.idx(pvv * w);
            let ntile = e.v(&format!("arith.divui {nfv}, {cpv} : index"));
            let tiled = e.v(&format!("arith.muli {ntile}, {cpv} : index"));
            let cend = e.v(&format!("arith.muli {ntile}, {chunk} : index"));
            e.for_each(c0, &cend, &chunk, |e, c| tile(e, &rows, c, pvv, false));
            // The full vectors past the last full tile (0..pvv), then the partial vector.
            let rem = e.v(&format!("arith.subi {nfv}, {tiled} : index"));
            for rf in 0..pvv {
                let crf = e.idx(rf);
                let is = e.v(&format!("arith.cmpi eq, {rem}, {crf} : index"));
                e.if_then(
                    &is,
                    |e| {
                        if rf == 0 {
                            e.if_then(&has_dvtail, |e| tile(e, &rows, &cend, 0, true), None);
                        } else {
                            e.if_then(
                                &has_dvtail,
                                |e| tile(e, &rows, &cend, rf, true),
                                Some(&mut |e: &mut E| tile(e, &rows, &cend, rf, false)),
                            );
                        }
                    },
                    None,
                );
            }
        };
        e.for_each(c0, sq, &cbr, |e, rg| {
            let left = e.v(&format!("arith.subi {sq}, {rg} : index"));
            let nr = e.v(&format!("arith.minsi {left}, {cbr} : index"));
            for k in 1..=br {
                let ck = e.idx(k);
                let is = e.v(&format!("arith.cmpi eq, {nr}, {ck} : index"));
                e.if_then(&is, |e| pv_rows(e, rg, k), None);
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan, evaluated on numbers, sums each input vector into its lane (every width a
    /// tiling uses, AVX-512's included, which this machine may not run).
    #[test]
    fn transpose_sum_plan_sums_each_vector_into_its_lane() {
        for w in [4, 8, 16, 32] {
            let acc: Vec<Vec<f64>> = (0..w)
                .map(|i| (0..w).map(|l| ((i * 37 + l * 11) % 101) as f64).collect())
                .collect();
            let mut cur = acc.clone();
            for (lo, hi) in transpose_sum_plan(w) {
                assert_eq!((lo.len(), hi.len()), (w, w));
                cur = cur
                    .chunks(2)
                    .map(|p| {
                        let at = |i: usize| if i < w { p[0][i] } else { p[1][i - w] };
                        (0..w).map(|l| at(lo[l]) + at(hi[l])).collect()
                    })
                    .collect();
            }
            assert_eq!(cur.len(), 1, "w = {w}");
            for (i, row) in acc.iter().enumerate() {
                assert_eq!(cur[0][i], row.iter().sum::<f64>(), "w = {w}, lane {i}");
            }
        }
    }
}
