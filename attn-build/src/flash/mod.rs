//! The fused ("flash") attention kernel: `softmax(q k^T * scale) v` in one pass over K and V with
//! an online softmax, generated as MLIR (`scf` + `vector` + `memref` + `arith` + `math`, reading
//! and writing tensors) with the typed emitter of [`crate::emit`]. `convert-transformer-to-linalg`
//! inserts these functions privately and calls them in place of each `transformer.attention`;
//! the `inline` pass then specializes every call site for its static shapes.
//!
//! # Algorithm (the packed path, [`prefill`])
//! For each *super-block* of `QS` query rows:
//! - [`pack::pack_q`]: the rows of Q into a scratch laid out `[QS / BR][D][BR]`, so that the
//!   `BR` values broadcast for one step of the score tile are adjacent;
//! - for each block of `BC` keys the rows may see ([`hook`]: block skipping),
//!   [`pack::pack_kv`]: K transposed and pre-scaled (`[D][BC]`), V (`[BC][Dv']`, `Dv'` = Dv
//!   rounded up to the vector width), both zero-padded, so the inner loops only ever do aligned
//!   full-width vector loads from L1, whatever the strides of the inputs and whatever Sk and Dv;
//! - for each *micro-block* of `BR` query rows: [`tiles::score_tile`] accumulates the
//!   `BR x BC` scores in vector registers with `vector.fma` (K vectors times broadcast Q
//!   values); [`hook::Mods::apply`] transforms and masks them (keys past Sk, causal, the
//!   additive mask); [`softmax::update`] updates the running row max `m` and sum `l` and gives
//!   `P = exp(S - m')` and `alpha = exp(m - m')`; [`tiles::pv_tile`] computes
//!   `O' = alpha O + P V` in register tiles of `BR x PV` vectors (O: a `QS x Dv'` scratch);
//! - [`softmax::normalize`]: `out = O / l` for the valid rows.
//!
//! No `Sq x Sk` buffer exists; the extra memory is `QS x (D + Dv')` plus two `BC`-key panels.
//! Query rows past Sq (the last micro-block) are computed on zero rows and never written.
//!
//! # Decode path ([`decode`])
//! A call with at most [`DECODE_ROWS`] query rows whose K and V have unit stride along D and Dv
//! (checked at run time on their buffers) streams K and V in place instead: packing would cost as
//! much as the work it saves. It shares the hook, the online-softmax update, the P.V tile and the
//! normalization with the packed path.
//!
//! # Numerics
//! Scores are kept in base-2 units (K or Q pre-scaled by `scale log2 e`), so the softmax's
//! exponentials are `2^x` by a polynomial ([`crate::emit::math::exp2`]). Row maxima and sums are
//! reduced elementwise across the vectors of a row first, then across rows and lanes together
//! ([`crate::emit::math::transpose_reduce`]). No flag assumes the absence of NaN or
//! infinities: a NaN score, or an infinite one (`inf - inf`), turns its row of the output into
//! NaN, as the naive composition does. In the dense kernel keys past Sk get -3e38 (the initial
//! max too); when a mod removes keys, removed keys get `-inf`, the exponentials flush it to 0, and
//! a row with no visible key gives zeros.

pub mod ctx;
mod decode;
pub mod hook;
mod kernel;
pub mod mods;
mod pack;
mod softmax;
mod tiles;
mod wrapper;

use crate::emit;
use attn_runtime::DType;
pub use attn_runtime::tuning::{DECODE_ROWS, Tiling};
pub use mods::UserMods;
use std::sync::Arc;

/// Which keys the rows of a 2-D kernel see, by their positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Band {
    /// Every key.
    #[default]
    All,
    /// Row `i` sees the keys `j <= positions[i]`.
    Causal,
    /// Row `i` sees the keys `positions[i] - L <= j <= positions[i] + R`, `(L, R)` the `window`
    /// input.
    Window,
}

/// Which optional inputs and results a 2-D fused kernel has. Inputs, in this order after
/// `(q, k, v, scale)`: `mask [Sq, Sk]` (f32, any strides), `positions [Sq]` (f32 holding
/// integers, exact below 2^24; with a band or ALiBi), `window [2]` (f32), `softcap []` (f32),
/// `sinks [Sq]` (f32), `slopes [Sq]` (f32 ALiBi slopes); results `out` and, with `lse`, the
/// rows' log-sum-exp `[Sq]` in the compute type. See [`hook`] for their semantics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Variant {
    /// An additive mask.
    pub mask: bool,
    /// The keys each row sees.
    pub band: Band,
    /// Logit softcapping by a run-time value (disabled when not positive).
    pub softcap: bool,
    /// Attention sinks per row.
    pub sinks: bool,
    /// ALiBi slopes per row.
    pub alibi: bool,
    /// Also return the rows' log-sum-exp.
    pub lse: bool,
    /// User score/mask mods, by the hash of their [`UserMods::key`]: the kernel then takes the
    /// call's batch and head indices and the mods' inputs after the options.
    pub user: Option<u64>,
}

impl Variant {
    /// The dense kernel: no option.
    pub const DENSE: Variant = Variant {
        mask: false,
        band: Band::All,
        softcap: false,
        sinks: false,
        alibi: false,
        lse: false,
        user: None,
    };

    /// Whether the kernel takes per-row positions.
    pub fn positions(&self) -> bool {
        self.band != Band::All || self.alibi
    }

    fn tag(&self) -> String {
        let mut t = String::new();
        for (on, c) in [
            (self.mask, "m"),
            (self.band == Band::Causal, "c"),
            (self.band == Band::Window, "w"),
            (self.softcap, "t"),
            (self.sinks, "s"),
            (self.alibi, "a"),
            (self.lse, "l"),
        ] {
            if on {
                t.push_str(c);
            }
        }
        if let Some(u) = self.user {
            t.push_str(&format!("u{u:016x}"));
        }
        if t.is_empty() { t } else { format!("_{t}") }
    }
}

/// One fused attention function: what `convert-transformer-to-linalg` calls for a
/// `transformer.attention` op, whose operands are `(q, k, v, scale, [mask], [positions],
/// [window], [softcap], [sinks], [slopes])` and results `out` and, with `lse`, the log-sum-exp
/// of every query row.
///
/// A rank-2 spec without `causal` whose per-row inputs are all given (positions whenever a
/// window or ALiBi needs them; sinks and slopes per row) is a 2-D kernel itself (see
/// [`Variant`]); any other is a wrapper that loops over the leading dims, maps query head `h` to
/// key/value head `h / (Hq / Hkv)`, slices the mask (broadcast dims of size 1 read at index 0),
/// generates the bottom-right aligned positions `i + Sk - Sq` when needed, folds `causal` into
/// the window (`R = min(R, 0)`), spreads the per-head sinks and slopes over the head's rows, and
/// calls the 2-D kernel on every slice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spec {
    /// The rank of q, k, v and the output (2 to 4).
    pub rank: usize,
    /// The element type of q, k, v and the output.
    pub dtype: DType,
    /// The rank of the additive f32 mask (2, or `rank`), if any.
    pub mask_rank: Option<usize>,
    /// Explicit positions `[Sq]` (rank 2 only): causal by them, or the window's centres.
    pub positions: bool,
    /// Bottom-right aligned causal masking.
    pub causal: bool,
    /// A window `(L, R)` operand (f32 `[2]`).
    pub window: bool,
    /// A softcap operand (f32 `[]`).
    pub softcap: bool,
    /// A sinks operand (f32 `[Hq]` at rank 3/4, `[Sq]` at rank 2).
    pub sinks: bool,
    /// An ALiBi slopes operand (f32 `[Hq]` at rank 3/4, `[Sq]` at rank 2).
    pub alibi: bool,
    /// A second result: the log-sum-exp of every row, `[.., Sq]` in the compute type.
    pub lse: bool,
    /// User score/mask mods; their inputs (f32 or i32 tensors) are the last operands.
    pub mods: Option<Arc<UserMods>>,
}

impl Spec {
    /// The dense rank-2 f32 kernel.
    pub const F32_2D: Spec = Spec {
        rank: 2,
        dtype: DType::F32,
        mask_rank: None,
        positions: false,
        causal: false,
        window: false,
        softcap: false,
        sinks: false,
        alibi: false,
        lse: false,
        mods: None,
    };

    /// Whether this is a 2-D kernel (not a wrapper).
    fn is_kernel(&self) -> bool {
        self.rank == 2
            && !self.causal
            && self.mods.is_none()
            && (self.positions || !(self.window || self.alibi))
    }

    /// The 2-D kernel variant this spec is, or calls.
    fn variant(&self) -> Variant {
        let band = if self.window {
            Band::Window
        } else if self.causal || self.positions {
            Band::Causal
        } else {
            Band::All
        };
        Variant {
            mask: self.mask_rank.is_some(),
            band,
            softcap: self.softcap,
            sinks: self.sinks,
            alibi: self.alibi,
            lse: self.lse,
            user: self.mods.as_ref().map(|m| mods_hash(m)),
        }
    }

    /// The function's symbol for tiling `t` (f32 lanes).
    pub fn symbol(&self, t: &Tiling) -> String {
        if self.is_kernel() {
            return kernel_symbol(t, self.dtype, self.variant());
        }
        let mask = self.mask_rank.map(|r| format!("_m{r}")).unwrap_or_default();
        let mut opts = String::new();
        for (on, c) in [
            (self.positions, "p"),
            (self.causal, "c"),
            (self.window, "w"),
            (self.softcap, "t"),
            (self.sinks, "s"),
            (self.alibi, "a"),
            (self.lse, "l"),
        ] {
            if on {
                opts.push_str(c);
            }
        }
        if let Some(m) = &self.mods {
            opts.push_str(&format!("u{:016x}", mods_hash(m)));
        }
        format!(
            "__attn_flash_{}_r{}{mask}_{opts}_w_{}",
            self.dtype,
            self.rank,
            t.tag()
        )
    }
}

/// The hash of mods that names their kernels.
fn mods_hash(m: &UserMods) -> u64 {
    attn_runtime::hash::fnv1a(&[m.key()])
}

/// The symbol of a 2-D fused kernel.
fn kernel_symbol(t: &Tiling, dt: DType, var: Variant) -> String {
    format!("__attn_flash_{dt}_r2{}_{}", var.tag(), t.tag())
}

/// The MLIR text of a module holding the private functions of `specs` (and the 2-D kernels
/// their wrappers call), for tiling `t` (in f32 lanes).
pub fn module_text(specs: &[Spec], t: &Tiling) -> String {
    let mut kernels: Vec<(DType, Variant, Option<Arc<UserMods>>)> = Vec::new();
    let mut wrappers: Vec<Spec> = Vec::new();
    for spec in specs {
        let k = (spec.dtype, spec.variant());
        if !kernels.iter().any(|(d, v, _)| (*d, *v) == k) {
            kernels.push((k.0, k.1, spec.mods.clone()));
        }
        if !spec.is_kernel() && !wrappers.contains(spec) {
            wrappers.push(spec.clone());
        }
    }
    let funcs = kernels
        .iter()
        .map(|(dt, var, m)| {
            kernel::function(&kernel_symbol(t, *dt, *var), t, *dt, *var, m.as_deref())
        })
        .chain(wrappers.iter().map(|spec| {
            let callee = kernel_symbol(t, spec.dtype, spec.variant());
            wrapper::function(&spec.symbol(t), &callee, spec)
        }));
    emit::module(funcs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spec the lowering can ask for: ranks, dtypes, mask ranks, causal; and the
    /// options (window, softcap, sinks, ALiBi, lse) alone and together, with and without masks
    /// and causal, at ranks 2 and 4.
    pub(crate) fn all_specs() -> Vec<Spec> {
        let base = |rank, dtype, mask_rank, causal| Spec {
            rank,
            dtype,
            mask_rank,
            causal,
            ..Spec::F32_2D
        };
        let mut specs = Vec::new();
        for dtype in DType::ALL {
            for rank in 2..=4 {
                for mask_rank in [None, Some(2), Some(rank)] {
                    if rank == 2 && mask_rank == Some(rank) {
                        continue;
                    }
                    for causal in [false, true] {
                        specs.push(base(rank, dtype, mask_rank, causal));
                    }
                }
            }
            for mask_rank in [None, Some(2)] {
                specs.push(Spec {
                    positions: true,
                    ..base(2, dtype, mask_rank, false)
                });
            }
        }
        let sets: [fn(&mut Spec); 5] = [
            |s| s.window = true,
            |s| s.softcap = true,
            |s| (s.sinks, s.alibi) = (true, true),
            |s| s.lse = true,
            |s| (s.window, s.softcap, s.sinks, s.alibi, s.lse) = (true, true, true, true, true),
        ];
        for dtype in [DType::F32, DType::F64, DType::BF16] {
            for rank in [2, 4] {
                for mask_rank in [None, Some(2)] {
                    for causal in [false, true] {
                        for positions in [false, rank == 2] {
                            for set in sets {
                                let mut s = base(rank, dtype, mask_rank, causal && !positions);
                                s.positions = positions;
                                set(&mut s);
                                if !specs.contains(&s) {
                                    specs.push(s);
                                }
                            }
                        }
                    }
                }
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
                let text = module_text(std::slice::from_ref(spec), &t);
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

    /// Specs with user mods: a mask of indices (a build-time block map, per head), a mask
    /// reading an i32 table (run-time blocks), a score mod reading an f32 table, and both.
    pub(crate) fn mods_specs() -> Vec<Spec> {
        use attn_runtime::mods::Dims;
        use attn_runtime::syntax::{Invocation, Op};
        let src = "fn a(q: [2, 3, 40, 16], k: [2, 3, 50, 16], v: [2, 3, 50, 8], t: [50] as i32, \
                   w: [3, 99]) -> [2, 3, 40, 8] { attention(q, k, v, \
                   mask_mod = |b, h, i, j| (j + h) % 3 != 0 || j <= i, \
                   score_mod = |s, b, h, i, j| s + w[h][j - i + 49] * exp(-(s * s)) + (t[j] as f32)) }
                   fn b(q: [40, 16], k: [50, 16], v: [50, 8], t: [50] as i32) -> [40, 8] {
                   attention(q, k, v, mask_mod = |b, h, i, j| t[j] <= t[min(i + 10, 49)]) }";
        let kernels = syn::parse_str::<Invocation>(src).unwrap().check().unwrap();
        let mut specs = Vec::new();
        for k in &kernels {
            let Op::Attention { mods: Some(m), .. } = &k.nodes[0].op else {
                unreachable!("the kernels are attentions with mods")
            };
            let inputs: Vec<_> = m
                .inputs
                .iter()
                .map(|v| (k.dtype_of(*v), k.shape(*v).to_vec()))
                .collect();
            let rank = k.shape(attn_runtime::syntax::Value::Input(0)).len();
            let (b, h) = if rank == 4 { (2, 3) } else { (1, 1) };
            let dims = Dims {
                b,
                h,
                sq: 40,
                sk: 50,
            };
            let pairs = [
                m.mods.clone(),
                attn_runtime::mods::ModPair {
                    score: None,
                    ..m.mods.clone()
                },
                attn_runtime::mods::ModPair {
                    mask: None,
                    ..m.mods.clone()
                },
            ];
            for pair in pairs {
                if pair.score.is_none() && pair.mask.is_none() {
                    continue;
                }
                let mods = std::sync::Arc::new(UserMods::new(pair, inputs.clone(), dims));
                for dtype in [DType::F32, DType::F64, DType::BF16] {
                    let s = Spec {
                        rank,
                        dtype,
                        causal: rank == 4,
                        mods: Some(mods.clone()),
                        ..Spec::F32_2D
                    };
                    if !specs.contains(&s) {
                        specs.push(s);
                    }
                }
            }
        }
        specs
    }

    #[test]
    fn kernel_text_with_mods_parses() {
        let c = crate::pipeline::Compiler::new().unwrap();
        for t in [Tiling::AVX2, Tiling::AVX512] {
            let specs = mods_specs();
            assert!(specs.len() >= 12);
            for spec in &specs {
                let text = module_text(std::slice::from_ref(spec), &t);
                assert!(
                    melior::ir::Module::parse(c.context(), &text).is_some(),
                    "{spec:?}, {t:?}:\n{text}"
                );
            }
            let text = module_text(&specs, &t);
            assert!(melior::ir::Module::parse(c.context(), &text).is_some());
            // Index-only masks carry their block classes; masks that read tables classify at
            // run time.
            assert!(text.contains("dense<\"0x"), "no baked block map");
            assert!(
                text.contains("vector.reduction <or>"),
                "no run-time classes"
            );
        }
    }

    #[test]
    fn symbols_name_dtype_rank_and_options() {
        let t = Tiling::AVX2;
        let s = Spec::F32_2D;
        assert!(s.symbol(&t).starts_with("__attn_flash_f32_r2_w8"));
        let w = Spec {
            rank: 4,
            dtype: DType::BF16,
            mask_rank: Some(4),
            causal: true,
            ..Spec::F32_2D
        };
        assert!(w.symbol(&t).starts_with("__attn_flash_bf16_r4_m4_c_w_"));
        let mut seen = std::collections::HashSet::new();
        for spec in all_specs().into_iter().chain(mods_specs()) {
            assert!(seen.insert(spec.symbol(&t)), "{spec:?}");
        }
    }
}
