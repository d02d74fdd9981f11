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

/// The element types of a fused kernel: `st` in memory (q, k, v and the output), `ct` in
/// registers. The mask and causal positions are f32 in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dtype {
    /// The storage type (`f32`, `f64`, `bf16`, `f16`).
    pub st: &'static str,
    /// The compute type (`f32`, or `f64` for f64 storage).
    pub ct: &'static str,
}

impl Dtype {
    /// f32 in memory and in registers.
    pub const F32: Dtype = Dtype {
        st: "f32",
        ct: "f32",
    };
    /// f64 in memory and in registers.
    pub const F64: Dtype = Dtype {
        st: "f64",
        ct: "f64",
    };
    /// bf16 in memory, f32 in registers.
    pub const BF16: Dtype = Dtype {
        st: "bf16",
        ct: "f32",
    };
    /// f16 in memory, f32 in registers.
    pub const F16: Dtype = Dtype {
        st: "f16",
        ct: "f32",
    };

    /// The fused kernel's types for tensors of element type `elem` (MLIR spelling), if any.
    pub fn of(elem: &str) -> Option<Dtype> {
        [Self::F32, Self::F64, Self::BF16, Self::F16]
            .into_iter()
            .find(|d| d.st == elem)
    }

    /// The tiling in lanes of the compute type: `t` counts f32 lanes, so f64 has half as many
    /// per vector (the same registers).
    pub fn tiling(&self, t: &Tiling) -> Tiling {
        let mut t = *t;
        if self.ct == "f64" {
            t.w /= 2;
        }
        t
    }

    /// The integer type of the compute type's width (for the exponent bits of `exp`).
    fn int(&self) -> &'static str {
        if self.ct == "f64" { "i64" } else { "i32" }
    }

    /// `-inf` of the compute type as an MLIR hex literal.
    fn neg_inf_hex(&self) -> &'static str {
        if self.ct == "f64" {
            "0xFFF0000000000000"
        } else {
            "0xFF800000"
        }
    }

    /// `tensor<?x..x{st}>` of the given rank.
    fn tensor(&self, rank: usize) -> String {
        format!("tensor<{}{}>", "?x".repeat(rank), self.st)
    }
}

/// One fused attention function: what `convert-transformer-to-linalg` calls for a
/// `transformer.attention` op.
///
/// A rank-2 spec without `causal` is a 2-D kernel itself (`(q, k, v, scale, [mask [Sq, Sk]],
/// [positions], init)`); any other is a wrapper `(q, k, v, scale, [mask], init)` that loops over
/// the leading dims, maps query head `h` to key/value head `h / (Hq / Hkv)`, slices the mask
/// (broadcast dims of size 1 read at index 0) and, when `causal`, generates the bottom-right
/// aligned positions `i + Sk - Sq`, calling the 2-D kernel on every slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Spec {
    /// The rank of q, k, v and the output (2 to 4).
    pub rank: usize,
    /// Element types.
    pub dtype: Dtype,
    /// The rank of the additive f32 mask (2, or `rank`), if any.
    pub mask_rank: Option<usize>,
    /// Explicit causal positions `[Sq]` (rank 2 only).
    pub positions: bool,
    /// Bottom-right aligned causal masking.
    pub causal: bool,
}

impl Spec {
    /// The dense rank-2 f32 kernel.
    pub const F32_2D: Spec = Spec {
        rank: 2,
        dtype: Dtype::F32,
        mask_rank: None,
        positions: false,
        causal: false,
    };

    /// Whether this is a 2-D kernel (not a wrapper).
    fn is_kernel(&self) -> bool {
        self.rank == 2 && !self.causal
    }

    /// The 2-D kernel variant this spec is, or calls.
    fn variant(&self) -> Variant {
        Variant {
            mask: self.mask_rank.is_some(),
            causal: self.positions || self.causal,
        }
    }

    /// The function's symbol for tiling `t` (f32 lanes).
    pub fn symbol(&self, t: &Tiling) -> String {
        if self.is_kernel() {
            return symbol_for(2, t, self.dtype, self.variant());
        }
        let mask = self.mask_rank.map(|r| format!("_m{r}")).unwrap_or_default();
        let causal = if self.causal { "_c" } else { "" };
        format!(
            "__attn_flash_{}_r{}{mask}{causal}_w_{}",
            self.dtype.st,
            self.rank,
            t.tag()
        )
    }
}

/// The symbol of a 2-D fused kernel.
pub fn symbol_for(rank: usize, t: &Tiling, dt: Dtype, var: Variant) -> String {
    format!("__attn_flash_{}_r{rank}{}_{}", dt.st, var.tag(), t.tag())
}

/// The MLIR text of a module holding the private functions of `specs` (and the 2-D kernels
/// their wrappers call), for tiling `t` (in f32 lanes).
pub fn module_text(specs: &[Spec], t: &Tiling) -> String {
    let mut s = String::from("module {\n");
    let mut kernels: Vec<(Dtype, Variant)> = Vec::new();
    for spec in specs {
        let k = (spec.dtype, spec.variant());
        if !kernels.contains(&k) {
            kernels.push(k);
            s.push_str(&kernel_2d(t, k.0, k.1));
        }
    }
    let mut wrappers = Vec::new();
    for spec in specs {
        if !spec.is_kernel() && !wrappers.contains(spec) {
            wrappers.push(*spec);
            s.push_str(&wrapper(spec, t));
        }
    }
    s.push_str("}\n");
    s
}

/// A tiny SSA text emitter.
pub(crate) struct E {
    pub(crate) s: String,
    n: usize,
    indent: usize,
    /// The scalar type arithmetic runs in (`f32` or `f64`); see [`E::fc`].
    ct: &'static str,
}

impl E {
    pub(crate) fn new(indent: usize) -> Self {
        Self::computing(indent, "f32")
    }

    /// An emitter whose [`E::fc`] constants have the compute type `ct` (`f32` or `f64`).
    pub(crate) fn computing(indent: usize, ct: &'static str) -> Self {
        E {
            s: String::new(),
            n: 0,
            indent,
            ct,
        }
    }

    /// A scalar constant of the compute type.
    pub(crate) fn fc(&mut self, x: f64) -> String {
        let ct = self.ct;
        self.v(&format!("arith.constant {} : {ct}", flit(x)))
    }

    /// `x` (of the scalar or vector type `from`) converted to `to`: widened, narrowed or as is.
    pub(crate) fn convert(&mut self, x: &str, from: &str, to: &str) -> String {
        if from == to {
            return x.to_string();
        }
        let bits = |t: &str| {
            let scalar = t.rsplit('x').next().unwrap_or(t).trim_end_matches('>');
            match scalar {
                "f64" => 64,
                "f32" => 32,
                _ => 16,
            }
        };
        let op = if bits(from) < bits(to) {
            "extf"
        } else {
            "truncf"
        };
        self.v(&format!("arith.{op} {x} : {from} to {to}"))
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

    /// A constant of type `ty` (a float scalar or vector type) with every element `x`.
    pub(crate) fn splat(&mut self, x: f64, ty: &str) -> String {
        if !ty.starts_with("vector") {
            self.v(&format!("arith.constant {} : {ty}", flit(x)))
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
        if !ty.starts_with("vector") {
            self.v(&format!("arith.select {c}, {b}, {a} : {ty}"))
        } else {
            let mask = bool_vector(ty);
            self.v(&format!("arith.select {c}, {b}, {a} : {mask}, {ty}"))
        }
    }

    /// The largest lane of a `vector<{w}x{ct}>` (NaN lanes are skipped), by halving shuffles.
    pub(crate) fn hmax(&mut self, v: &str, w: usize) -> String {
        let ct = self.ct;
        let ty = format!("vector<{w}x{ct}>");
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
        self.v(&format!("vector.extract {m}[0] : {ct} from {ty}"))
    }

    /// `exp(x)` for `x <= 0` (larger inputs are not clamped), of type `ty` (`f32`, `f64` or a
    /// vector of them), as a Cephes-style polynomial; `ity` is the matching integer type (i32
    /// for f32, i64 for f64).
    fn exp(&mut self, x: &str, ty: &str, ity: &str) -> String {
        self.exp_impl(x, ty, ity, false)
    }

    /// [`Self::exp`], but exactly 0 below the clamp (for `-inf`, masked scores); NaN stays NaN.
    fn exp_flush(&mut self, x: &str, ty: &str, ity: &str) -> String {
        self.exp_impl(x, ty, ity, true)
    }

    fn exp_impl(&mut self, x: &str, ty: &str, ity: &str, flush: bool) -> String {
        let wide = ty.ends_with("f64") || ty.ends_with("f64>");
        // f32: Cephes expf (|error| ~1e-7 relative); f64: ln 2 split in two parts and a
        // degree-12 Taylor polynomial on |r| <= ln(2)/2 (truncation below 2e-16 relative).
        let (lo_x, c1v, c2v, bias_v, shift) = if wide {
            (
                -708.39,
                -6.931_457_519_531_25e-1,
                -1.428_606_820_309_417_2e-6,
                1023,
                52,
            )
        } else {
            (-87.336_54, -0.693_359_375, 2.121_944_4e-4, 127, 23)
        };
        let lo = self.splat(lo_x, ty);
        let log2e = self.splat(std::f64::consts::LOG2_E, ty);
        let c1 = self.splat(c1v, ty);
        let c2 = self.splat(c2v, ty);
        let one = self.splat(1.0, ty);
        let int = |e: &mut E, v: i64| {
            if ty.starts_with("vector") {
                e.splat_i(v, ity)
            } else {
                e.v(&format!("arith.constant {v} : {ity}"))
            }
        };
        let bias = int(self, bias_v);
        let sh = int(self, shift);
        // `x < lo ? lo : x`: a NaN passes through (and makes the result NaN).
        let xc = self.max(x, &lo, ty);
        let t = self.v(&format!("arith.mulf {xc}, {log2e} : {ty}"));
        let fx = self.v(&format!("math.roundeven {t} : {ty}"));
        let r1 = self.v(&format!("math.fma {fx}, {c1}, {xc} : {ty}"));
        let r = self.v(&format!("math.fma {fx}, {c2}, {r1} : {ty}"));
        let y = if wide {
            // 1 + r + r^2/2! + ... + r^12/12!, by Horner.
            let mut y = self.splat(1.0 / factorial(12), ty);
            for n in (0..12).rev() {
                let c = self.splat(1.0 / factorial(n), ty);
                y = self.v(&format!("math.fma {y}, {r}, {c} : {ty}"));
            }
            y
        } else {
            let p = [
                1.987_569_15e-4,
                1.398_199_950_7e-3,
                8.333_451_907_3e-3,
                4.166_579_589_4e-2,
                1.666_666_545_9e-1,
                5.000_000_120_1e-1,
            ];
            let pc: Vec<String> = p.iter().map(|&c| self.splat(c, ty)).collect();
            let z = self.v(&format!("arith.mulf {r}, {r} : {ty}"));
            let mut y = self.v(&format!("math.fma {}, {r}, {} : {ty}", pc[0], pc[1]));
            for c in &pc[2..] {
                y = self.v(&format!("math.fma {y}, {r}, {c} : {ty}"));
            }
            let y = self.v(&format!("math.fma {y}, {z}, {r} : {ty}"));
            self.v(&format!("arith.addf {y}, {one} : {ty}"))
        };
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
        if !ty.starts_with("vector") {
            self.v(&format!("arith.select {under}, {zero}, {res} : {ty}"))
        } else {
            let mask = bool_vector(ty);
            self.v(&format!(
                "arith.select {under}, {zero}, {res} : {mask}, {ty}"
            ))
        }
    }
}

/// `n!` as an f64.
fn factorial(n: u32) -> f64 {
    (1..=n).map(f64::from).product()
}

/// The `i1` vector type of the shape of the vector type `ty` (`vector<8xf32>` -> `vector<8xi1>`).
fn bool_vector(ty: &str) -> String {
    let (shape, _) = ty.rsplit_once('x').unwrap_or((ty, ""));
    format!("{shape}xi1>")
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
fn kernel_2d(base: &Tiling, dt: Dtype, var: Variant) -> String {
    let t = &dt.tiling(base);
    let (ct, st) = (dt.ct, dt.st);
    let (w, br, bcv, pvv, qs) = (t.w, t.br, t.bc_vecs, t.pv_vecs, t.qs);
    let bc = t.bc();
    let nmb_max = qs / br;
    let vt = format!("vector<{w}x{ct}>");
    let vet = format!("vector<{w}x{}>", dt.int());
    let vit = format!("vector<{w}xi32>");
    let vmt = format!("vector<{w}xi1>");
    let rt = format!("vector<{br}x{ct}>");
    let rit = format!("vector<{br}xi32>");
    let ret = format!("vector<{br}x{}>", dt.int());
    let t2 = dt.tensor(2);
    let mt2 = Dtype::F32.tensor(2);
    let qp_ty = format!("memref<{nmb_max}x?x{br}x{ct}>");
    let kp_ty = format!("memref<?x{bc}x{ct}>");
    let vp_ty = format!("memref<{bc}x?x{ct}>");
    let ob_ty = format!("memref<{qs}x?x{ct}>");
    let st_ty = format!("memref<{qs}x{ct}>");
    let pt_ty = format!("memref<{br}x{bc}x{ct}>");

    let mut e = E::computing(2, ct);
    let c0 = e.idx(0);
    let c1 = e.idx(1);
    let cw = e.idx(w);
    let cbr = e.idx(br);
    let cbc = e.idx(bc);
    let cqs = e.idx(qs);
    let zero = e.fc(0.0);
    let vzero = e.splat(0.0, &vt);
    let neg = e.fc(-3.0e38);
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
    let dec = decode::Shared::emit(&mut e, dt, &sq, &sk, &d, &dv, &dvp, &c0, &c1, &cw);
    let ninf = e.v(&format!("arith.constant {} : {ct}", dt.neg_inf_hex()));
    let vninf = e.v(&format!("vector.broadcast {ninf} : {ct} to {vt}"));
    let ps_ty = format!("memref<{qs}xi32>");
    let mp_ty = format!("memref<{qs}x{bc}x{ct}>");
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
            decode::emit(e, t, dt, var, &dec, &ob, &ob_ty, &ls, &st_ty);
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
                                let x = e.convert(&x, st, ct);
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
                                let x = e.convert(&x, st, ct);
                                let y = e.v(&format!("arith.mulf {x}, %scale : {ct}"));
                                e.line(&format!("memref.store {y}, {kp}[{dd}, {j}] : {kp_ty}"));
                            });
                            e.for_each(&c0, &dv, &c1, |e, c| {
                                let x = e.v(&format!("tensor.extract %v[{key}, {c}] : {t2}"));
                                let x = e.convert(&x, st, ct);
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
                            let x = e.v(&format!("tensor.extract %mask[{row}, {key}] : {mt2}"));
                            let x = e.convert(&x, "f32", ct);
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
                                let qb = e.v(&format!("vector.broadcast {qv} : {ct} to {vt}"));
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
                            e.exp_flush(&dm, &rt, &ret)
                        } else {
                            e.exp(&dm, &rt, &ret)
                        };
                        e.line(&format!("vector.store {mnew}, {ms}[{mbr}] : {st_ty}, {rt}"));
                        // P = exp(S - m'), row sums, P to scratch.
                        let mut rsum = Vec::new();
                        for r in 0..br {
                            let ri = e.idx(r);
                            let mr = e.v(&format!("vector.extract {mnew}[{r}] : {ct} from {rt}"));
                            let mb_ = e.v(&format!("vector.broadcast {mr} : {ct} to {vt}"));
                            let mut sum = None;
                            for j in 0..bcv {
                                let x =
                                    e.v(&format!("arith.subf {}, {mb_} : {vt}", s[r * bcv + j]));
                                let p = if var.masked() {
                                    e.exp_flush(&x, &vt, &vet)
                                } else {
                                    e.exp(&x, &vt, &vet)
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
                                "vector.reduction <add>, {sum} fastmath<reassoc> : {vt} into {ct}"
                            )));
                        }
                        let lold = e.v(&format!("vector.load {ls}[{mbr}] : {st_ty}, {rt}"));
                        let lrow = e.v(&format!("vector.from_elements {} : {rt}", rsum.join(", ")));
                        let lnew = e.v(&format!("math.fma {lold}, {alpha}, {lrow} : {rt}"));
                        e.line(&format!("vector.store {lnew}, {ls}[{mbr}] : {st_ty}, {rt}"));
                        let al: Vec<String> = (0..br)
                            .map(|r| {
                                let a =
                                    e.v(&format!("vector.extract {alpha}[{r}] : {ct} from {rt}"));
                                e.v(&format!("vector.broadcast {a} : {ct} to {vt}"))
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
                                    let pb = e.v(&format!("vector.broadcast {p} : {ct} to {vt}"));
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
            let one = e.fc(1.0);
            let o2 = e.for_loop(&c0, &rows, &c1, &[(out, t2.clone())], |e, r, o| {
                let l = e.v(&format!("memref.load {ls}[{r}] : {st_ty}"));
                let inv = e.v(&format!("arith.divf {one}, {l} : {ct}"));
                // A fully masked row (l = 0) gives zeros, not 0/0.
                let inv = if var.masked() {
                    let z = e.v(&format!("arith.cmpf oeq, {l}, {zero} : {ct}"));
                    e.v(&format!("arith.select {z}, {zero}, {inv} : {ct}"))
                } else {
                    inv
                };
                let row = e.v(&format!("arith.addi {q0}, {r} : index"));
                let o3 = e.for_loop(&c0, &dv, &c1, &[(o[0].clone(), t2.clone())], |e, c, oo| {
                    let x = e.v(&format!("memref.load {ob}[{r}, {c}] : {ob_ty}"));
                    let y = e.v(&format!("arith.mulf {x}, {inv} : {ct}"));
                    let y = e.convert(&y, ct, st);
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
        extra.push_str(&format!("%mask: {mt2}, "));
    }
    if var.causal {
        extra.push_str("%pos: tensor<?xf32>, ");
    }
    let _ = writeln!(
        s,
        "  func.func private @{}(%q: {t2}, %k: {t2}, %v: {t2}, %scale: {ct}, {extra}%init: {t2}) -> {t2} {{",
        symbol_for(2, base, dt, var)
    );
    s.push_str(&e.s);
    let _ = writeln!(s, "    return {} : {t2}\n  }}", res[0]);
    s
}

/// The wrapper function of `spec` (see [`Spec`]).
fn wrapper(spec: &Spec, t: &Tiling) -> String {
    let dt = spec.dtype;
    let ct = dt.ct;
    let rank = spec.rank;
    let lead = rank - 2;
    let tn = dt.tensor(rank);
    let t2 = dt.tensor(2);
    let mrank = spec.mask_rank.unwrap_or(0);
    let mtn = Dtype::F32.tensor(mrank);
    let mt2 = Dtype::F32.tensor(2);
    let callee = symbol_for(2, t, dt, spec.variant());
    let mut e = E::computing(2, ct);
    let c0 = e.idx(0);
    let c1 = e.idx(1);
    let dim = |e: &mut E, x: &str, ty: &str, i: usize| {
        let ci = e.idx(i);
        e.v(&format!("tensor.dim {x}, {ci} : {ty}"))
    };
    let qd: Vec<String> = (0..rank).map(|i| dim(&mut e, "%q", &tn, i)).collect();
    let sq = qd[lead].clone();
    let d = qd[lead + 1].clone();
    let sk = dim(&mut e, "%k", &tn, lead);
    let dv = dim(&mut e, "%v", &tn, lead + 1);
    // Query heads per key/value head (at least 1, so that bad dynamic shapes stay in bounds;
    // callers check them).
    let group = if rank >= 3 {
        let hkv = dim(&mut e, "%k", &tn, rank - 3);
        let g = e.v(&format!("arith.divui {}, {hkv} : index", qd[rank - 3]));
        e.v(&format!("arith.maxui {g}, {c1} : index"))
    } else {
        c1.clone()
    };
    // The mask's leading dims: read at the loop index, or at 0 where the mask has size 1.
    let mdims: Vec<String> = (0..mrank.saturating_sub(2))
        .map(|i| {
            let m = dim(&mut e, "%mask", &mtn, i);
            e.v(&format!("arith.cmpi eq, {m}, {c1} : index"))
        })
        .collect();
    let positions = if spec.causal {
        // positions[i] = i + Sk - Sq (negative: the row sees no key).
        let p = e.fresh();
        e.line(&format!("{p} = tensor.generate {sq} {{"));
        e.line("^bb0(%i: index):");
        e.indent += 1;
        let x = e.v(&format!("arith.addi %i, {sk} : index"));
        let x = e.v(&format!("arith.subi {x}, {sq} : index"));
        let x = e.v(&format!("arith.index_cast {x} : index to i64"));
        let x = e.v(&format!("arith.sitofp {x} : i64 to f32"));
        e.line(&format!("tensor.yield {x} : f32"));
        e.indent -= 1;
        e.line("} : tensor<?xf32>");
        Some(p)
    } else {
        None
    };

    fn nest(e: &mut E, level: usize, ivs: &mut Vec<String>, out: String, x: &Nest) -> String {
        if level == x.lead {
            let ones = vec!["1"; x.lead].join(", ");
            let strides = vec!["1"; x.lead + 2].join(", ");
            let slice = |e: &mut E, v: &str, idx: &[String], a: &str, b: &str, from: &str| {
                if idx.is_empty() {
                    return v.to_string();
                }
                let offs = format!("{}, 0, 0", idx.join(", "));
                let to = if from == x.tn { &x.t2 } else { &x.mt2 };
                e.v(&format!(
                    "tensor.extract_slice {v}[{offs}] [{ones}, {a}, {b}] [{strides}] : {from} to {to}"
                ))
            };
            // k and v: the head index divided by the group size.
            let mut kv_idx = ivs.clone();
            if let Some(h) = kv_idx.last_mut()
                && x.rank >= 3
            {
                *h = e.v(&format!("arith.divui {h}, {} : index", x.group));
            }
            let qs = slice(e, "%q", ivs, &x.sq, &x.d, &x.tn);
            let ks = slice(e, "%k", &kv_idx, &x.sk, &x.d, &x.tn);
            let vs = slice(e, "%v", &kv_idx, &x.sk, &x.dv, &x.tn);
            let os = slice(e, &out, ivs, &x.sq, &x.dv, &x.tn);
            let mut args = vec![qs, ks, vs, "%scale".to_string()];
            let mut tys = vec![x.t2.clone(), x.t2.clone(), x.t2.clone(), x.ct.to_string()];
            if x.mask {
                let m = if x.mrank > 2 {
                    let idx: Vec<String> = ivs
                        .iter()
                        .zip(&x.mdims)
                        .map(|(iv, one)| {
                            e.v(&format!("arith.select {one}, {}, {iv} : index", x.c0))
                        })
                        .collect();
                    slice(e, "%mask", &idx, &x.sq, &x.sk, &x.mtn)
                } else {
                    "%mask".to_string()
                };
                args.push(m);
                tys.push(x.mt2.clone());
            }
            if let Some(p) = &x.positions {
                args.push(p.clone());
                tys.push("tensor<?xf32>".into());
            }
            args.push(os);
            tys.push(x.t2.clone());
            let r = e.v(&format!(
                "func.call @{}({}) : ({}) -> {}",
                x.callee,
                args.join(", "),
                tys.join(", "),
                x.t2
            ));
            if ivs.is_empty() {
                return r;
            }
            return e.v(&format!(
                "tensor.insert_slice {r} into {out}[{}, 0, 0] [{ones}, {}, {}] [{strides}] : {} into {}",
                ivs.join(", "),
                x.sq,
                x.dv,
                x.t2,
                x.tn
            ));
        }
        let res = e.for_loop(
            &x.c0,
            &x.bounds[level],
            &x.c1,
            &[(out, x.tn.clone())],
            |e, iv, a| {
                ivs.push(iv.to_string());
                let r = nest(e, level + 1, ivs, a[0].clone(), x);
                ivs.pop();
                vec![r]
            },
        );
        res[0].clone()
    }
    struct Nest {
        c0: String,
        c1: String,
        sq: String,
        d: String,
        sk: String,
        dv: String,
        tn: String,
        t2: String,
        mtn: String,
        mt2: String,
        ct: &'static str,
        callee: String,
        lead: usize,
        rank: usize,
        group: String,
        bounds: Vec<String>,
        mask: bool,
        mrank: usize,
        mdims: Vec<String>,
        positions: Option<String>,
    }
    let x = Nest {
        c0,
        c1,
        sq,
        d,
        sk,
        dv,
        tn: tn.clone(),
        t2,
        mtn: mtn.clone(),
        mt2,
        ct,
        callee,
        lead,
        rank,
        group,
        bounds: qd[..lead].to_vec(),
        mask: spec.mask_rank.is_some(),
        mrank,
        mdims,
        positions,
    };
    let res = nest(&mut e, 0, &mut Vec::new(), "%init".to_string(), &x);
    let mut s = String::new();
    let mask = if spec.mask_rank.is_some() {
        format!("%mask: {mtn}, ")
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "  func.func private @{}(%q: {tn}, %k: {tn}, %v: {tn}, %scale: {ct}, {mask}%init: {tn}) -> {tn} {{",
        spec.symbol(t)
    );
    s.push_str(&e.s);
    let _ = writeln!(s, "    return {res} : {tn}\n  }}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spec the lowering can ask for: ranks, dtypes, mask ranks, causal.
    fn all_specs() -> Vec<Spec> {
        let mut specs = Vec::new();
        for dtype in [Dtype::F32, Dtype::F64, Dtype::BF16, Dtype::F16] {
            for rank in 2..=4 {
                for mask_rank in [None, Some(2), Some(rank)] {
                    if rank == 2 && mask_rank == Some(rank) {
                        continue;
                    }
                    for causal in [false, true] {
                        specs.push(Spec {
                            rank,
                            dtype,
                            mask_rank,
                            positions: false,
                            causal,
                        });
                    }
                }
            }
            for mask_rank in [None, Some(2)] {
                specs.push(Spec {
                    rank: 2,
                    dtype,
                    mask_rank,
                    positions: true,
                    causal: false,
                });
            }
        }
        specs
    }

    #[test]
    fn kernel_text_parses_with_every_tiling_spec_and_dtype() {
        let c = crate::pipeline::Compiler::new().unwrap();
        for t in [Tiling::AVX2, Tiling::AVX512] {
            let specs = all_specs();
            for spec in &specs {
                let text = module_text(&[*spec], &t);
                assert!(
                    melior::ir::Module::parse(c.context(), &text).is_some(),
                    "{spec:?}, {t:?}:\n{text}"
                );
            }
            // One module with all of them: no symbol is defined twice.
            let text = module_text(&specs, &t);
            assert!(melior::ir::Module::parse(c.context(), &text).is_some());
        }
    }

    #[test]
    fn symbols_name_dtype_rank_and_options() {
        let t = Tiling::AVX2;
        let s = Spec::F32_2D;
        assert!(s.symbol(&t).starts_with("__attn_flash_f32_r2_w8"));
        let w = Spec {
            rank: 4,
            dtype: Dtype::BF16,
            mask_rank: Some(4),
            positions: false,
            causal: true,
        };
        assert!(w.symbol(&t).starts_with("__attn_flash_bf16_r4_m4_c_w_"));
        let mut seen = std::collections::HashSet::new();
        for spec in all_specs() {
            assert!(seen.insert(spec.symbol(&t)), "{spec:?}");
        }
    }

    #[test]
    fn f64_tiling_halves_the_lanes() {
        assert_eq!(Dtype::F64.tiling(&Tiling::AVX2).w, 4);
        assert_eq!(Dtype::BF16.tiling(&Tiling::AVX512).w, 16);
        assert_eq!(Dtype::of("f16"), Some(Dtype::F16));
        assert_eq!(Dtype::of("i8"), None);
    }
}
