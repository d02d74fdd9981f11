//! The fused ("flash") attention kernel: `softmax(q k^T * scale) v` in one pass over K and V with
//! an online softmax, emitted as MLIR text (`scf` + `vector` + `memref` + `arith` + `math`, reading
//! and writing tensors), which `convert-transformer-to-linalg` inserts as private functions and
//! calls from the place of each `transformer.attention`; the `inline` pass then specializes every
//! call site for its static shapes.
//!
//! # Algorithm
//! For each *super-block* of `QS` query rows:
//! - the rows of Q are packed into a scratch laid out `[QS / BR][D][BR]`, so that the `BR` values
//!   broadcast for one step of the score tile are adjacent;
//! - for each block of `BC` keys, K is packed transposed and pre-scaled (`[D][BC]`) and V is
//!   packed (`[BC][Dv']`, `Dv'` = Dv rounded up to the vector width), both zero-padded, so the
//!   inner loops only ever do aligned full-width vector loads from L1, whatever the strides of the
//!   inputs and whatever Sk and Dv are;
//! - for each *micro-block* of `BR` query rows, the `BR x BC` score tile is accumulated in vector
//!   registers with `vector.fma` (K vectors times broadcast Q values); keys past Sk are masked to a
//!   large negative value; the running row max `m`, running row sum `l` and a rescaled output
//!   accumulator `O` (a `QS x Dv'` scratch) are updated:
//!   `m' = max(m, rowmax S)`, `alpha = exp(m - m')`, `P = exp(S - m')`, `l' = alpha l + rowsum P`,
//!   `O' = alpha O + P V` (the P.V product in register tiles of `BR x PV` vectors);
//! - finally `out = O / l` for the valid rows.
//!
//! No `Sq x Sk` buffer exists; the extra memory is `QS x (D + Dv')` plus two `BC`-key panels.
//! Query rows past Sq (the last micro-block) are computed on zero rows and never written.
//!
//! # Decode path
//! A call with at most `decode::DECODE_ROWS` (8) query rows whose K and V have unit stride along
//! D and Dv (checked at run time on their buffers) takes the streaming path of `flash/decode.rs`
//! instead: packing would cost as much as the work it saves, so K and V are read in place
//! (vectorized dot products along D, no padded query rows). Both paths leave the unnormalized
//! output rows and their sums in the same scratch; one loop writes `out = O / l`.
//!
//! `exp` is a Cephes-style polynomial (range reduction with `math.roundeven`, a degree-5
//! polynomial, the exponent built with a shift and a bitcast), accurate to about 1e-7 relative:
//! `math.exp` on vectors would become scalar `expf` calls. Row reductions are done elementwise
//! across the vectors of a row first, then horizontally: sums with one `vector.reduction`
//! carrying `fastmath<reassoc>` (a tree, not a serial chain), maxima with halving shuffles and
//! `cmpf`/`select` pairs (one `maxps` each). No flag assumes the absence of NaN or infinities: a
//! NaN score, or an infinite one (`inf - inf`), turns its row of the output into NaN, as the
//! naive composition does. The masked value and the initial max are -3e38, not -inf.

use std::fmt::Write as _;

mod decode;

/// Register tiling of the fused kernel for one vector ISA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    /// Vector width in f32 lanes (8 for AVX2, 16 for AVX-512).
    pub w: usize,
    /// Query rows per micro-block (rows of the score tile).
    pub br: usize,
    /// Vectors per row of the score tile (`BC = bc_vecs * w` keys per block).
    pub bc_vecs: usize,
    /// Vectors of Dv per P.V register tile.
    pub pv_vecs: usize,
    /// Query rows per super-block (the packed K/V panels are reused across them).
    pub qs: usize,
}

impl Tiling {
    /// 16 ymm registers: a 4 x 24 score tile (12 accumulators) and 4 x 24 P.V tiles.
    pub const AVX2: Tiling = Tiling {
        w: 8,
        br: 4,
        bc_vecs: 3,
        pv_vecs: 3,
        qs: 256,
    };

    /// 32 zmm registers: an 8 x 32 score tile (16 accumulators) and 8 x 48 P.V tiles.
    pub const AVX512: Tiling = Tiling {
        w: 16,
        br: 8,
        bc_vecs: 2,
        pv_vecs: 3,
        qs: 256,
    };

    /// The tiling for the CPU objects are generated for (the host).
    pub fn for_host() -> Tiling {
        Tiling::for_target(&crate::target::TargetSpec::host())
    }

    /// The tiling for a code-generation target: AVX-512 tiles when the target has AVX-512F,
    /// else the 16-register tiles (AVX2; also used for baseline x86-64 and AArch64, where LLVM
    /// splits the 8-lane vectors).
    pub fn for_target(target: &crate::target::TargetSpec) -> Tiling {
        let avx512_cpu = [
            "x86-64-v4",
            "skylake-avx512",
            "icelake-server",
            "sapphirerapids",
            "znver4",
            "znver5",
        ];
        let features_say = target.features.split(',').any(|f| f == "+avx512f");
        if target.arch() == "x86_64" && (features_say || avx512_cpu.contains(&target.cpu.as_str()))
        {
            Tiling::AVX512
        } else {
            Tiling::AVX2
        }
    }

    fn bc(&self) -> usize {
        self.bc_vecs * self.w
    }

    /// A short tag naming the tiling in symbol names.
    pub fn tag(&self) -> String {
        format!(
            "w{}r{}c{}p{}q{}",
            self.w, self.br, self.bc_vecs, self.pv_vecs, self.qs
        )
    }
}

/// Which optional inputs a fused kernel takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Variant {
    /// An additive `[Sq, Sk]` mask (`tensor<?x?xf32>`, any strides) added to the scaled scores.
    pub mask: bool,
    /// Causal masking by per-row positions (`tensor<?xf32>` of length Sq): row `i` sees the keys
    /// `j <= positions[i]` (f32 holding integers, exact below 2^24); key blocks past the largest
    /// position of a super-block (and micro-blocks past that of the micro-block) are skipped.
    pub causal: bool,
}

impl Variant {
    /// The dense kernel: no mask, no positions.
    pub const DENSE: Variant = Variant {
        mask: false,
        causal: false,
    };

    fn masked(&self) -> bool {
        self.mask || self.causal
    }

    fn tag(&self) -> &'static str {
        match (self.mask, self.causal) {
            (false, false) => "",
            (true, false) => "_m",
            (false, true) => "_c",
            (true, true) => "_mc",
        }
    }
}

/// The symbol of the dense fused kernel for a given rank.
pub fn symbol(rank: usize, t: &Tiling) -> String {
    symbol_for(rank, t, Variant::DENSE)
}

/// The symbol of the fused kernel for a given rank and variant.
pub fn symbol_for(rank: usize, t: &Tiling, var: Variant) -> String {
    format!("__attn_flash_f32_r{rank}{}_{}", var.tag(), t.tag())
}

/// The MLIR text of a module holding the private function `@{symbol(2)}` and `@{symbol(r)}` for
/// every `r > 2` in `ranks`, each `(q, k, v: tensor<?x..xf32>, scale: f32, init) -> tensor`,
/// computing `softmax(q k^T * scale) v` over the last two dims (leading dims are batch/heads) into
/// `init`.
pub fn module_text(ranks: &[usize], t: &Tiling) -> String {
    module_text_variants(ranks, &[], t)
}

/// [`module_text`] plus the rank-2 masked/causal variants `@{symbol_for(2, t, var)}`, each
/// `(q, k, v, scale: f32, [mask: tensor<?x?xf32>], [positions: tensor<?xf32>], init)`.
pub fn module_text_variants(ranks: &[usize], variants: &[Variant], t: &Tiling) -> String {
    let mut s = String::from("module {\n");
    if !ranks.is_empty() {
        s.push_str(&kernel_2d(t, Variant::DENSE));
    }
    for &rank in ranks {
        if rank > 2 {
            s.push_str(&batched(rank, t));
        }
    }
    for &var in variants {
        if var != Variant::DENSE || ranks.is_empty() {
            s.push_str(&kernel_2d(t, var));
        }
    }
    s.push_str("}\n");
    s
}

fn tensor_ty(rank: usize) -> String {
    format!("tensor<{}f32>", "?x".repeat(rank))
}

/// A tiny SSA text emitter.
pub(crate) struct E {
    pub(crate) s: String,
    n: usize,
    indent: usize,
}

impl E {
    pub(crate) fn new(indent: usize) -> Self {
        E {
            s: String::new(),
            n: 0,
            indent,
        }
    }

    pub(crate) fn line(&mut self, l: &str) {
        for _ in 0..self.indent {
            self.s.push_str("  ");
        }
        self.s.push_str(l);
        self.s.push('\n');
    }

    pub(crate) fn fresh(&mut self) -> String {
        self.n += 1;
        format!("%t{}", self.n)
    }

    /// Emits `%tN = rhs` and returns `%tN`.
    pub(crate) fn v(&mut self, rhs: &str) -> String {
        let name = self.fresh();
        self.line(&format!("{name} = {rhs}"));
        name
    }

    pub(crate) fn idx(&mut self, i: usize) -> String {
        self.v(&format!("arith.constant {i} : index"))
    }

    pub(crate) fn f32c(&mut self, x: f64) -> String {
        self.v(&format!("arith.constant {} : f32", flit(x)))
    }

    /// A constant of type `ty` (`f32` or `vector<..xf32>`) with every element `x`.
    pub(crate) fn splat(&mut self, x: f64, ty: &str) -> String {
        if ty == "f32" {
            self.f32c(x)
        } else {
            self.v(&format!("arith.constant dense<{}> : {ty}", flit(x)))
        }
    }

    fn splat_i(&mut self, x: i64, ty: &str) -> String {
        self.v(&format!("arith.constant dense<{x}> : {ty}"))
    }

    /// `scf.for` with iter_args; `body` gets the induction variable and the region arguments and
    /// returns the values to yield. Returns the loop's results.
    pub(crate) fn for_loop(
        &mut self,
        lo: &str,
        hi: &str,
        step: &str,
        inits: &[(String, String)],
        body: impl FnOnce(&mut E, &str, &[String]) -> Vec<String>,
    ) -> Vec<String> {
        let iv = self.fresh();
        let args: Vec<String> = inits.iter().map(|_| self.fresh()).collect();
        let res = self.fresh();
        let head = if inits.is_empty() {
            format!("scf.for {iv} = {lo} to {hi} step {step} {{")
        } else {
            let ia = args
                .iter()
                .zip(inits)
                .map(|(a, (v, _))| format!("{a} = {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let tys = inits
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let lhs = if inits.len() == 1 {
                format!("{res} = ")
            } else {
                format!("{res}:{} = ", inits.len())
            };
            format!("{lhs}scf.for {iv} = {lo} to {hi} step {step} iter_args({ia}) -> ({tys}) {{")
        };
        self.line(&head);
        self.indent += 1;
        let ys = body(self, &iv, &args);
        if !ys.is_empty() {
            let tys = inits
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            self.line(&format!("scf.yield {} : {tys}", ys.join(", ")));
        }
        self.indent -= 1;
        self.line("}");
        match inits.len() {
            0 => vec![],
            1 => vec![res],
            n => (0..n).map(|i| format!("{res}#{i}")).collect(),
        }
    }

    /// `scf.for` without results.
    pub(crate) fn for_each(
        &mut self,
        lo: &str,
        hi: &str,
        step: &str,
        body: impl FnOnce(&mut E, &str),
    ) {
        self.for_loop(lo, hi, step, &[], |e, iv, _| {
            body(e, iv);
            vec![]
        });
    }

    /// `scf.if` without results, with an optional else branch.
    fn if_then(
        &mut self,
        cond: &str,
        then: impl FnOnce(&mut E),
        els: Option<&mut dyn FnMut(&mut E)>,
    ) {
        self.line(&format!("scf.if {cond} {{"));
        self.indent += 1;
        then(self);
        self.indent -= 1;
        if let Some(els) = els {
            self.line("} else {");
            self.indent += 1;
            els(self);
            self.indent -= 1;
        }
        self.line("}");
    }

    /// `a < b ? b : a` (one `maxps` on x86). Well defined for NaN, unlike fast-math maxima: a NaN
    /// `a` is returned, a NaN `b` is dropped. The softmax relies on NaN reaching the output
    /// through the exponentials (`exp(NaN - m)` is NaN), not through the row max.
    pub(crate) fn max(&mut self, a: &str, b: &str, ty: &str) -> String {
        let c = self.v(&format!("arith.cmpf olt, {a}, {b} : {ty}"));
        if ty == "f32" {
            self.v(&format!("arith.select {c}, {b}, {a} : {ty}"))
        } else {
            let mask = ty.replace("f32>", "i1>");
            self.v(&format!("arith.select {c}, {b}, {a} : {mask}, {ty}"))
        }
    }

    /// The largest lane of a `vector<{w}xf32>` (NaN lanes are skipped), by halving shuffles.
    pub(crate) fn hmax(&mut self, v: &str, w: usize) -> String {
        let ty = format!("vector<{w}xf32>");
        let mut m = v.to_string();
        let mut half = w / 2;
        while half >= 1 {
            let lanes = (0..w)
                .map(|i| (i ^ half).to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let sh = self.v(&format!("vector.shuffle {m}, {m} [{lanes}] : {ty}, {ty}"));
            m = self.max(&m, &sh, &ty);
            half /= 2;
        }
        self.v(&format!("vector.extract {m}[0] : f32 from {ty}"))
    }

    /// `exp(x)` for `x <= 0` (larger inputs are not clamped), of type `ty` (`f32` or a vector of
    /// f32), as a Cephes-style polynomial; `ity` is the matching i32 type.
    fn exp(&mut self, x: &str, ty: &str, ity: &str) -> String {
        self.exp_impl(x, ty, ity, false)
    }

    /// [`Self::exp`], but exactly 0 below the clamp (for `-inf`, masked scores); NaN stays NaN.
    fn exp_flush(&mut self, x: &str, ty: &str, ity: &str) -> String {
        self.exp_impl(x, ty, ity, true)
    }

    fn exp_impl(&mut self, x: &str, ty: &str, ity: &str, flush: bool) -> String {
        let lo = self.splat(-87.336_54, ty);
        let log2e = self.splat(std::f64::consts::LOG2_E, ty);
        let c1 = self.splat(-0.693_359_375, ty);
        let c2 = self.splat(2.121_944_4e-4, ty);
        let p = [
            1.987_569_15e-4,
            1.398_199_950_7e-3,
            8.333_451_907_3e-3,
            4.166_579_589_4e-2,
            1.666_666_545_9e-1,
            5.000_000_120_1e-1,
        ];
        let pc: Vec<String> = p.iter().map(|&c| self.splat(c, ty)).collect();
        let one = self.splat(1.0, ty);
        let bias = if ty == "f32" {
            self.v("arith.constant 127 : i32")
        } else {
            self.splat_i(127, ity)
        };
        let sh = if ty == "f32" {
            self.v("arith.constant 23 : i32")
        } else {
            self.splat_i(23, ity)
        };
        // `x < lo ? lo : x`: a NaN passes through (and makes the result NaN).
        let xc = self.max(x, &lo, ty);
        let t = self.v(&format!("arith.mulf {xc}, {log2e} : {ty}"));
        let fx = self.v(&format!("math.roundeven {t} : {ty}"));
        let r1 = self.v(&format!("math.fma {fx}, {c1}, {xc} : {ty}"));
        let r = self.v(&format!("math.fma {fx}, {c2}, {r1} : {ty}"));
        let z = self.v(&format!("arith.mulf {r}, {r} : {ty}"));
        let mut y = self.v(&format!("math.fma {}, {r}, {} : {ty}", pc[0], pc[1]));
        for c in &pc[2..] {
            y = self.v(&format!("math.fma {y}, {r}, {c} : {ty}"));
        }
        let y = self.v(&format!("math.fma {y}, {z}, {r} : {ty}"));
        let y = self.v(&format!("arith.addf {y}, {one} : {ty}"));
        let n = self.v(&format!("arith.fptosi {fx} : {ty} to {ity}"));
        let n = self.v(&format!("arith.addi {n}, {bias} : {ity}"));
        let n = self.v(&format!("arith.shli {n}, {sh} : {ity}"));
        let p2 = self.v(&format!("arith.bitcast {n} : {ity} to {ty}"));
        let res = self.v(&format!("arith.mulf {y}, {p2} : {ty}"));
        if !flush {
            return res;
        }
        let zero = self.splat(0.0, ty);
        let under = self.v(&format!("arith.cmpf olt, {x}, {lo} : {ty}"));
        if ty == "f32" {
            self.v(&format!("arith.select {under}, {zero}, {res} : {ty}"))
        } else {
            let mask = ty.replace("f32>", "i1>");
            self.v(&format!(
                "arith.select {under}, {zero}, {res} : {mask}, {ty}"
            ))
        }
    }
}

/// An f64 printed so that MLIR parses it as a float literal.
fn flit(x: f64) -> String {
    let s = format!("{x:e}");
    match s.split_once('e') {
        Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
        _ => s,
    }
}

/// The 2-D kernel `@{symbol(2)}`.
fn kernel_2d(t: &Tiling, var: Variant) -> String {
    let (w, br, bcv, pvv, qs) = (t.w, t.br, t.bc_vecs, t.pv_vecs, t.qs);
    let bc = t.bc();
    let nmb_max = qs / br;
    let vt = format!("vector<{w}xf32>");
    let vit = format!("vector<{w}xi32>");
    let vmt = format!("vector<{w}xi1>");
    let rt = format!("vector<{br}xf32>");
    let rit = format!("vector<{br}xi32>");
    let t2 = tensor_ty(2);
    let qp_ty = format!("memref<{nmb_max}x?x{br}xf32>");
    let kp_ty = format!("memref<?x{bc}xf32>");
    let vp_ty = format!("memref<{bc}x?xf32>");
    let ob_ty = format!("memref<{qs}x?xf32>");
    let st_ty = format!("memref<{qs}xf32>");
    let pt_ty = format!("memref<{br}x{bc}xf32>");

    let mut e = E::new(2);
    let c0 = e.idx(0);
    let c1 = e.idx(1);
    let cw = e.idx(w);
    let cbr = e.idx(br);
    let cbc = e.idx(bc);
    let cqs = e.idx(qs);
    let zero = e.f32c(0.0);
    let vzero = e.splat(0.0, &vt);
    let neg = e.f32c(-3.0e38);
    let vneg = e.splat(-3.0e38, &vt);
    let sq = e.v(&format!("tensor.dim %q, {c0} : {t2}"));
    let d = e.v(&format!("tensor.dim %q, {c1} : {t2}"));
    let sk = e.v(&format!("tensor.dim %k, {c0} : {t2}"));
    let dv = e.v(&format!("tensor.dim %v, {c1} : {t2}"));
    // Dv' = ceil(Dv / w) * w
    let wm1 = e.idx(w - 1);
    let dvr = e.v(&format!("arith.addi {dv}, {wm1} : index"));
    let dvq = e.v(&format!("arith.divui {dvr}, {cw} : index"));
    let dvp = e.v(&format!("arith.muli {dvq}, {cw} : index"));
    // Few query rows with unit-stride K and V rows: the streaming decode path of `decode.rs`,
    // which reads K and V in place; else the packed path below.
    let dec = decode::Shared::emit(&mut e, &sq, &sk, &d, &dv, &dvp, &c0, &c1, &cw);
    let ninf = e.v("arith.constant 0xFF800000 : f32");
    let vninf = e.v(&format!("vector.broadcast {ninf} : f32 to {vt}"));
    let ps_ty = format!("memref<{qs}xi32>");
    let mp_ty = format!("memref<{qs}x{bc}xf32>");
    // iota vectors for the key masks, one per vector of a score row
    let iotas: Vec<String> = (0..bcv)
        .map(|j| {
            let lanes = (0..w)
                .map(|l| (j * w + l).to_string())
                .collect::<Vec<_>>()
                .join(", ");
            e.v(&format!("arith.constant dense<[{lanes}]> : {vit}"))
        })
        .collect();

    let ob = e.v(&format!(
        "memref.alloc({dvp}) {{alignment = 64 : i64}} : {ob_ty}"
    ));
    let ls = e.v(&format!(
        "memref.alloc() {{alignment = 64 : i64}} : {st_ty}"
    ));
    let res = e.for_loop(
        &c0,
        &sq,
        &cqs,
        &[("%init".into(), t2.clone())],
        |e, q0, out| {
            let out = out[0].clone();
            let left = e.v(&format!("arith.subi {sq}, {q0} : index"));
            let rows = e.v(&format!("arith.minsi {left}, {cqs} : index"));
            // O (unnormalized) and l of the rows into `ob` and `ls`, by either path.
            e.line(&format!("scf.if {} {{", dec.cond));
            e.indent += 1;
            decode::emit(e, t, var, &dec, &ob, &ob_ty, &ls, &st_ty);
            e.indent -= 1;
            e.line("} else {");
            e.indent += 1;
            let qp = e.v(&format!(
                "memref.alloc({d}) {{alignment = 64 : i64}} : {qp_ty}"
            ));
            let kp = e.v(&format!(
                "memref.alloc({d}) {{alignment = 64 : i64}} : {kp_ty}"
            ));
            let vp = e.v(&format!(
                "memref.alloc({dvp}) {{alignment = 64 : i64}} : {vp_ty}"
            ));
            let ms = e.v(&format!(
                "memref.alloc() {{alignment = 64 : i64}} : {st_ty}"
            ));
            let pt = e.v(&format!(
                "memref.alloc() {{alignment = 64 : i64}} : {pt_ty}"
            ));
            // Causal: the positions of the super-block's rows (i32); mask: its block of the mask.
            let ps = if var.causal {
                e.v(&format!(
                    "memref.alloc() {{alignment = 64 : i64}} : {ps_ty}"
                ))
            } else {
                String::new()
            };
            let mp = if var.mask {
                e.v(&format!(
                    "memref.alloc() {{alignment = 64 : i64}} : {mp_ty}"
                ))
            } else {
                String::new()
            };
            let brm1 = e.idx(br - 1);
            let rr = e.v(&format!("arith.addi {rows}, {brm1} : index"));
            let nmb = e.v(&format!("arith.divui {rr}, {cbr} : index"));
            let nrows = e.v(&format!("arith.muli {nmb}, {cbr} : index"));
            // Pack the super-block's Q rows as [mb][d][r] (zero rows past Sq).
            e.for_each(&c0, &nmb, &c1, |e, mb| {
                e.for_each(&c0, &cbr, &c1, |e, r| {
                    let mbr = e.v(&format!("arith.muli {mb}, {cbr} : index"));
                    let lr = e.v(&format!("arith.addi {mbr}, {r} : index"));
                    let row = e.v(&format!("arith.addi {q0}, {lr} : index"));
                    let ok = e.v(&format!("arith.cmpi ult, {row}, {sq} : index"));
                    e.if_then(
                        &ok,
                        |e| {
                            e.for_each(&c0, &d, &c1, |e, dd| {
                                let x = e.v(&format!("tensor.extract %q[{row}, {dd}] : {t2}"));
                                e.line(&format!(
                                    "memref.store {x}, {qp}[{mb}, {dd}, {r}] : {qp_ty}"
                                ));
                            });
                        },
                        Some(&mut |e: &mut E| {
                            e.for_each(&c0, &d, &c1, |e, dd| {
                                e.line(&format!(
                                    "memref.store {zero}, {qp}[{mb}, {dd}, {r}] : {qp_ty}"
                                ));
                            });
                        }),
                    );
                });
            });
            // Causal: row positions to scratch, and the end of the visible keys of the block.
            let kend = if var.causal {
                let lo = e.v("arith.constant -1073741824 : i32");
                let mx = e.for_loop(&c0, &rows, &c1, &[(lo.clone(), "i32".into())], |e, r, a| {
                    let row = e.v(&format!("arith.addi {q0}, {r} : index"));
                    let p = e.v(&format!("tensor.extract %pos[{row}] : tensor<?xf32>"));
                    let pi = e.v(&format!("arith.fptosi {p} : f32 to i32"));
                    e.line(&format!("memref.store {pi}, {ps}[{r}] : {ps_ty}"));
                    vec![e.v(&format!("arith.maxsi {}, {pi} : i32", a[0]))]
                });
                e.for_each(&rows, &nrows, &c1, |e, r| {
                    e.line(&format!("memref.store {lo}, {ps}[{r}] : {ps_ty}"));
                });
                let mx = e.v(&format!("arith.index_cast {} : i32 to index", mx[0]));
                let end = e.v(&format!("arith.addi {mx}, {c1} : index"));
                let end = e.v(&format!("arith.minsi {end}, {sk} : index"));
                e.v(&format!("arith.maxsi {end}, {c0} : index"))
            } else {
                sk.clone()
            };
            // O = 0, m = -3e38, l = 0
            e.for_each(&c0, &nrows, &c1, |e, i| {
                e.for_each(&c0, &dvp, &cw, |e, c| {
                    e.line(&format!(
                        "vector.store {vzero}, {ob}[{i}, {c}] : {ob_ty}, {vt}"
                    ));
                });
                e.line(&format!("memref.store {neg}, {ms}[{i}] : {st_ty}"));
                e.line(&format!("memref.store {zero}, {ls}[{i}] : {st_ty}"));
            });
            e.for_each(&c0, &kend, &cbc, |e, kb| {
                // Pack K^T * scale as [d][j] and V as [j][c], zero-padded.
                e.for_each(&c0, &cbc, &c1, |e, j| {
                    let key = e.v(&format!("arith.addi {kb}, {j} : index"));
                    let ok = e.v(&format!("arith.cmpi ult, {key}, {sk} : index"));
                    e.if_then(
                        &ok,
                        |e| {
                            e.for_each(&c0, &d, &c1, |e, dd| {
                                let x = e.v(&format!("tensor.extract %k[{key}, {dd}] : {t2}"));
                                let y = e.v(&format!("arith.mulf {x}, %scale : f32"));
                                e.line(&format!("memref.store {y}, {kp}[{dd}, {j}] : {kp_ty}"));
                            });
                            e.for_each(&c0, &dv, &c1, |e, c| {
                                let x = e.v(&format!("tensor.extract %v[{key}, {c}] : {t2}"));
                                e.line(&format!("memref.store {x}, {vp}[{j}, {c}] : {vp_ty}"));
                            });
                            e.for_each(&dv, &dvp, &c1, |e, c| {
                                e.line(&format!("memref.store {zero}, {vp}[{j}, {c}] : {vp_ty}"));
                            });
                        },
                        Some(&mut |e: &mut E| {
                            e.for_each(&c0, &d, &c1, |e, dd| {
                                e.line(&format!("memref.store {zero}, {kp}[{dd}, {j}] : {kp_ty}"));
                            });
                            e.for_each(&c0, &dvp, &c1, |e, c| {
                                e.line(&format!("memref.store {zero}, {vp}[{j}, {c}] : {vp_ty}"));
                            });
                        }),
                    );
                });
                if var.mask {
                    // The mask block [rows][BC] (-inf past Sk; zero rows past Sq).
                    let left = e.v(&format!("arith.subi {sk}, {kb} : index"));
                    let jn = e.v(&format!("arith.minsi {left}, {cbc} : index"));
                    e.for_each(&c0, &rows, &c1, |e, r| {
                        let row = e.v(&format!("arith.addi {q0}, {r} : index"));
                        e.for_each(&c0, &jn, &c1, |e, j| {
                            let key = e.v(&format!("arith.addi {kb}, {j} : index"));
                            let x = e.v(&format!("tensor.extract %mask[{row}, {key}] : {t2}"));
                            e.line(&format!("memref.store {x}, {mp}[{r}, {j}] : {mp_ty}"));
                        });
                        e.for_each(&jn, &cbc, &c1, |e, j| {
                            e.line(&format!("memref.store {ninf}, {mp}[{r}, {j}] : {mp_ty}"));
                        });
                    });
                    e.for_each(&rows, &nrows, &c1, |e, r| {
                        e.for_each(&c0, &cbc, &cw, |e, j| {
                            e.line(&format!(
                                "vector.store {vzero}, {mp}[{r}, {j}] : {mp_ty}, {vt}"
                            ));
                        });
                    });
                }
                // Key masks: lane j*w + l is valid when kb + j*w + l < Sk.
                let lim = e.v(&format!("arith.subi {sk}, {kb} : index"));
                let lim = e.v(&format!("arith.index_cast {lim} : index to i32"));
                let limv = e.v(&format!("vector.broadcast {lim} : i32 to {vit}"));
                let masks: Vec<String> = iotas
                    .iter()
                    .map(|io| e.v(&format!("arith.cmpi slt, {io}, {limv} : {vit}")))
                    .collect();
                e.for_each(&c0, &nmb, &c1, |e, mb| {
                    let micro = |e: &mut E| {
                        // Score tile S[r][j] = sum_d Qp[mb][d][r] * Kp[d][j]
                        let inits: Vec<(String, String)> =
                            (0..br * bcv).map(|_| (vzero.clone(), vt.clone())).collect();
                        let acc = e.for_loop(&c0, &d, &c1, &inits, |e, dd, a| {
                            let kv: Vec<String> = (0..bcv)
                                .map(|j| {
                                    let col = e.idx(j * w);
                                    e.v(&format!("vector.load {kp}[{dd}, {col}] : {kp_ty}, {vt}"))
                                })
                                .collect();
                            let mut out = Vec::new();
                            for r in 0..br {
                                let ri = e.idx(r);
                                let qv =
                                    e.v(&format!("memref.load {qp}[{mb}, {dd}, {ri}] : {qp_ty}"));
                                let qb = e.v(&format!("vector.broadcast {qv} : f32 to {vt}"));
                                for j in 0..bcv {
                                    out.push(e.v(&format!(
                                        "vector.fma {qb}, {}, {} : {vt}",
                                        kv[j],
                                        a[r * bcv + j]
                                    )));
                                }
                            }
                            out
                        });
                        let s: Vec<String> = if !var.masked() {
                            // Mask keys past Sk.
                            (0..br * bcv)
                                .map(|i| {
                                    e.v(&format!(
                                        "arith.select {}, {}, {vneg} : {vmt}, {vt}",
                                        masks[i % bcv],
                                        acc[i]
                                    ))
                                })
                                .collect()
                        } else {
                            let mbr = e.v(&format!("arith.muli {mb}, {cbr} : index"));
                            let mut s = acc.clone();
                            if var.mask {
                                // Add the mask block (-inf past Sk).
                                for r in 0..br {
                                    let ri = e.idx(r);
                                    let row = e.v(&format!("arith.addi {mbr}, {ri} : index"));
                                    for j in 0..bcv {
                                        let col = e.idx(j * w);
                                        let m = e.v(&format!(
                                            "vector.load {mp}[{row}, {col}] : {mp_ty}, {vt}"
                                        ));
                                        s[r * bcv + j] = e.v(&format!(
                                            "arith.addf {}, {m} : {vt}",
                                            s[r * bcv + j]
                                        ));
                                    }
                                }
                            }
                            // Causal: lane j*w + l of row r is visible when
                            // kb + j*w + l <= pos[r] (and < Sk).
                            let kbi = e.v(&format!("arith.index_cast {kb} : index to i32"));
                            let ski = e.v(&format!("arith.index_cast {sk} : index to i32"));
                            let left = e.v(&format!("arith.subi {ski}, {kbi} : i32"));
                            for r in 0..br {
                                let lim = if var.causal {
                                    let ri = e.idx(r);
                                    let row = e.v(&format!("arith.addi {mbr}, {ri} : index"));
                                    let p = e.v(&format!("memref.load {ps}[{row}] : {ps_ty}"));
                                    let one = e.v("arith.constant 1 : i32");
                                    let p1 = e.v(&format!("arith.addi {p}, {one} : i32"));
                                    let l = e.v(&format!("arith.subi {p1}, {kbi} : i32"));
                                    e.v(&format!("arith.minsi {l}, {left} : i32"))
                                } else if var.mask {
                                    continue;
                                } else {
                                    left.clone()
                                };
                                let limv = e.v(&format!("vector.broadcast {lim} : i32 to {vit}"));
                                for j in 0..bcv {
                                    let ok = e.v(&format!(
                                        "arith.cmpi slt, {}, {limv} : {vit}",
                                        iotas[j]
                                    ));
                                    s[r * bcv + j] = e.v(&format!(
                                        "arith.select {ok}, {}, {vninf} : {vmt}, {vt}",
                                        s[r * bcv + j]
                                    ));
                                }
                            }
                            s
                        };
                        // Row maxima.
                        let mut rmax = Vec::new();
                        for r in 0..br {
                            let mut m = s[r * bcv].clone();
                            for j in 1..bcv {
                                m = e.max(&s[r * bcv + j], &m, &vt);
                            }
                            rmax.push(e.hmax(&m, w));
                        }
                        let mbr = e.v(&format!("arith.muli {mb}, {cbr} : index"));
                        let mold = e.v(&format!("vector.load {ms}[{mbr}] : {st_ty}, {rt}"));
                        let mrow = e.v(&format!("vector.from_elements {} : {rt}", rmax.join(", ")));
                        let mnew = e.max(&mrow, &mold, &rt);
                        let dm = e.v(&format!("arith.subf {mold}, {mnew} : {rt}"));
                        let alpha = if var.masked() {
                            e.exp_flush(&dm, &rt, &rit)
                        } else {
                            e.exp(&dm, &rt, &rit)
                        };
                        e.line(&format!("vector.store {mnew}, {ms}[{mbr}] : {st_ty}, {rt}"));
                        // P = exp(S - m'), row sums, P to scratch.
                        let mut rsum = Vec::new();
                        for r in 0..br {
                            let ri = e.idx(r);
                            let mr = e.v(&format!("vector.extract {mnew}[{r}] : f32 from {rt}"));
                            let mb_ = e.v(&format!("vector.broadcast {mr} : f32 to {vt}"));
                            let mut sum = None;
                            for j in 0..bcv {
                                let x =
                                    e.v(&format!("arith.subf {}, {mb_} : {vt}", s[r * bcv + j]));
                                let p = if var.masked() {
                                    e.exp_flush(&x, &vt, &vit)
                                } else {
                                    e.exp(&x, &vt, &vit)
                                };
                                let col = e.idx(j * w);
                                e.line(&format!(
                                    "vector.store {p}, {pt}[{ri}, {col}] : {pt_ty}, {vt}"
                                ));
                                sum = Some(match sum {
                                    None => p,
                                    Some(acc) => e.v(&format!("arith.addf {acc}, {p} : {vt}")),
                                });
                            }
                            let sum = sum.unwrap_or_default();
                            rsum.push(e.v(&format!(
                                "vector.reduction <add>, {sum} fastmath<reassoc> : {vt} into f32"
                            )));
                        }
                        let lold = e.v(&format!("vector.load {ls}[{mbr}] : {st_ty}, {rt}"));
                        let lrow = e.v(&format!("vector.from_elements {} : {rt}", rsum.join(", ")));
                        let lnew = e.v(&format!("math.fma {lold}, {alpha}, {lrow} : {rt}"));
                        e.line(&format!("vector.store {lnew}, {ls}[{mbr}] : {st_ty}, {rt}"));
                        let al: Vec<String> = (0..br)
                            .map(|r| {
                                let a =
                                    e.v(&format!("vector.extract {alpha}[{r}] : f32 from {rt}"));
                                e.v(&format!("vector.broadcast {a} : f32 to {vt}"))
                            })
                            .collect();
                        // O = alpha O + P V, in tiles of br rows x nv vectors.
                        let pv_tile = |e: &mut E, c: &str, nv: usize| {
                            let mut inits = Vec::new();
                            for (r, alpha_r) in al.iter().enumerate() {
                                let ri = e.idx(r);
                                let orow = e.v(&format!("arith.addi {mbr}, {ri} : index"));
                                for i in 0..nv {
                                    let off = e.idx(i * w);
                                    let col = e.v(&format!("arith.addi {c}, {off} : index"));
                                    let o = e.v(&format!(
                                        "vector.load {ob}[{orow}, {col}] : {ob_ty}, {vt}"
                                    ));
                                    let o = e.v(&format!("arith.mulf {o}, {alpha_r} : {vt}"));
                                    inits.push((o, vt.clone()));
                                }
                            }
                            let acc = e.for_loop(&c0, &cbc, &c1, &inits, |e, j, a| {
                                let vv: Vec<String> = (0..nv)
                                    .map(|i| {
                                        let off = e.idx(i * w);
                                        let col = e.v(&format!("arith.addi {c}, {off} : index"));
                                        e.v(&format!(
                                            "vector.load {vp}[{j}, {col}] : {vp_ty}, {vt}"
                                        ))
                                    })
                                    .collect();
                                let mut out = Vec::new();
                                for r in 0..br {
                                    let ri = e.idx(r);
                                    let p = e.v(&format!("memref.load {pt}[{ri}, {j}] : {pt_ty}"));
                                    let pb = e.v(&format!("vector.broadcast {p} : f32 to {vt}"));
                                    for i in 0..nv {
                                        out.push(e.v(&format!(
                                            "vector.fma {pb}, {}, {} : {vt}",
                                            vv[i],
                                            a[r * nv + i]
                                        )));
                                    }
                                }
                                out
                            });
                            for r in 0..br {
                                let ri = e.idx(r);
                                let orow = e.v(&format!("arith.addi {mbr}, {ri} : index"));
                                for i in 0..nv {
                                    let off = e.idx(i * w);
                                    let col = e.v(&format!("arith.addi {c}, {off} : index"));
                                    e.line(&format!(
                                        "vector.store {}, {ob}[{orow}, {col}] : {ob_ty}, {vt}",
                                        acc[r * nv + i]
                                    ));
                                }
                            }
                        };
                        let chunk = e.idx(pvv * w);
                        let nfull = e.v(&format!("arith.divui {dvp}, {chunk} : index"));
                        let full_end = e.v(&format!("arith.muli {nfull}, {chunk} : index"));
                        e.for_each(&c0, &full_end, &chunk, |e, c| pv_tile(e, c, pvv));
                        if pvv > 1 {
                            let rem = e.v(&format!("arith.subi {dvp}, {full_end} : index"));
                            let remv = e.v(&format!("arith.divui {rem}, {cw} : index"));
                            for nv in 1..pvv {
                                let cn = e.idx(nv);
                                let is = e.v(&format!("arith.cmpi eq, {remv}, {cn} : index"));
                                e.if_then(&is, |e| pv_tile(e, &full_end, nv), None);
                            }
                        }
                    };
                    if var.causal {
                        // Skip a micro-block none of whose rows sees a key of this block.
                        let mbr = e.v(&format!("arith.muli {mb}, {cbr} : index"));
                        let pv = e.v(&format!("vector.load {ps}[{mbr}] : {ps_ty}, {rit}"));
                        let mx = e.v(&format!("vector.reduction <maxsi>, {pv} : {rit} into i32"));
                        let kbi = e.v(&format!("arith.index_cast {kb} : index to i32"));
                        let go = e.v(&format!("arith.cmpi sle, {kbi}, {mx} : i32"));
                        e.if_then(&go, |e| micro(e), None);
                    } else {
                        micro(e);
                    }
                });
            });
            e.indent -= 1;
            e.line("}");
            // out[q0 + r][c] = O[r][c] / l[r] for the valid rows.
            let one = e.f32c(1.0);
            let o2 = e.for_loop(&c0, &rows, &c1, &[(out, t2.clone())], |e, r, o| {
                let l = e.v(&format!("memref.load {ls}[{r}] : {st_ty}"));
                let inv = e.v(&format!("arith.divf {one}, {l} : f32"));
                // A fully masked row (l = 0) gives zeros, not 0/0.
                let inv = if var.masked() {
                    let z = e.v(&format!("arith.cmpf oeq, {l}, {zero} : f32"));
                    e.v(&format!("arith.select {z}, {zero}, {inv} : f32"))
                } else {
                    inv
                };
                let row = e.v(&format!("arith.addi {q0}, {r} : index"));
                let o3 = e.for_loop(&c0, &dv, &c1, &[(o[0].clone(), t2.clone())], |e, c, oo| {
                    let x = e.v(&format!("memref.load {ob}[{r}, {c}] : {ob_ty}"));
                    let y = e.v(&format!("arith.mulf {x}, {inv} : f32"));
                    let t = e.v(&format!(
                        "tensor.insert {y} into {}[{row}, {c}] : {t2}",
                        oo[0]
                    ));
                    vec![t]
                });
                vec![o3[0].clone()]
            });
            vec![o2[0].clone()]
        },
    );
    let mut s = String::new();
    let mut extra = String::new();
    if var.mask {
        extra.push_str(&format!("%mask: {t2}, "));
    }
    if var.causal {
        extra.push_str("%pos: tensor<?xf32>, ");
    }
    let _ = writeln!(
        s,
        "  func.func private @{}(%q: {t2}, %k: {t2}, %v: {t2}, %scale: f32, {extra}%init: {t2}) -> {t2} {{",
        symbol_for(2, t, var)
    );
    s.push_str(&e.s);
    let _ = writeln!(s, "    return {} : {t2}\n  }}", res[0]);
    s
}

/// `@{symbol(rank)}` for rank 3 or 4: loops over the leading dims and calls the 2-D kernel on
/// rank-reduced slices (the `inline` pass then inlines it).
fn batched(rank: usize, t: &Tiling) -> String {
    struct Ctx {
        c0: String,
        c1: String,
        sq: String,
        d: String,
        sk: String,
        dv: String,
        tn: String,
        t2: String,
        sym: String,
        lead: usize,
        bounds: Vec<String>,
    }
    fn nest(e: &mut E, level: usize, ivs: &mut Vec<String>, o: String, x: &Ctx) -> String {
        let (tn, t2) = (&x.tn, &x.t2);
        if level == x.lead {
            let offs = format!("{}, 0, 0", ivs.join(", "));
            let ones = vec!["1"; x.lead].join(", ");
            let strides = vec!["1"; x.lead + 2].join(", ");
            let slice = |e: &mut E, v: &str, a: &str, b: &str| {
                e.v(&format!(
                    "tensor.extract_slice {v}[{offs}] [{ones}, {a}, {b}] [{strides}] : {tn} to {t2}"
                ))
            };
            let qs = slice(e, "%q", &x.sq, &x.d);
            let ks = slice(e, "%k", &x.sk, &x.d);
            let vs = slice(e, "%v", &x.sk, &x.dv);
            let os = slice(e, &o, &x.sq, &x.dv);
            let r = e.v(&format!(
                "func.call @{}({qs}, {ks}, {vs}, %scale, {os}) : ({t2}, {t2}, {t2}, f32, {t2}) -> {t2}",
                x.sym
            ));
            return e.v(&format!(
                "tensor.insert_slice {r} into {o}[{offs}] [{ones}, {}, {}] [{strides}] : {t2} into {tn}",
                x.sq, x.dv
            ));
        }
        let res = e.for_loop(
            &x.c0,
            &x.bounds[level],
            &x.c1,
            &[(o, tn.clone())],
            |e, iv, a| {
                ivs.push(iv.to_string());
                let r = nest(e, level + 1, ivs, a[0].clone(), x);
                ivs.pop();
                vec![r]
            },
        );
        res[0].clone()
    }
    let tn = tensor_ty(rank);
    let t2 = tensor_ty(2);
    let lead = rank - 2;
    let mut e = E::new(2);
    let c0 = e.idx(0);
    let c1 = e.idx(1);
    let dims: Vec<String> = (0..rank)
        .map(|i| {
            let ci = e.idx(i);
            e.v(&format!("tensor.dim %q, {ci} : {tn}"))
        })
        .collect();
    let cl = e.idx(lead);
    let cl1 = e.idx(lead + 1);
    let sk = e.v(&format!("tensor.dim %k, {cl} : {tn}"));
    let dv = e.v(&format!("tensor.dim %v, {cl1} : {tn}"));
    let ctx = Ctx {
        c0,
        c1,
        sq: dims[lead].clone(),
        d: dims[lead + 1].clone(),
        sk,
        dv,
        tn: tn.clone(),
        t2,
        sym: symbol(2, t),
        lead,
        bounds: dims[..lead].to_vec(),
    };
    let res = nest(&mut e, 0, &mut Vec::new(), "%init".to_string(), &ctx);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  func.func private @{}(%q: {tn}, %k: {tn}, %v: {tn}, %scale: f32, %init: {tn}) -> {tn} {{",
        symbol(rank, t)
    );
    s.push_str(&e.s);
    let _ = writeln!(s, "    return {res} : {tn}\n  }}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_text_parses_with_every_tiling_and_rank() {
        let c = crate::pipeline::Compiler::new().unwrap();
        for t in [Tiling::AVX2, Tiling::AVX512] {
            for ranks in [&[2][..], &[3], &[2, 3, 4]] {
                let text = module_text(ranks, &t);
                assert!(
                    melior::ir::Module::parse(c.context(), &text).is_some(),
                    "ranks {ranks:?}, {t:?}:\n{text}"
                );
            }
            for (mask, causal) in [(true, false), (false, true), (true, true)] {
                let var = Variant { mask, causal };
                let text = module_text_variants(&[], &[var], &t);
                assert!(
                    melior::ir::Module::parse(c.context(), &text).is_some(),
                    "{var:?}, {t:?}:\n{text}"
                );
            }
        }
    }
}
