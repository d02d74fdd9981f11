//! What the phases of one 2-D kernel share ([`Ctx`]): its types, arguments, sizes and in-place
//! views of K and V.

use crate::emit::{Emitter, Scalar, Ty, Val};
use attn_runtime::tuning::Tiling;

/// What the phases of one 2-D kernel share: types, arguments, sizes and views.
pub struct Ctx {
    /// The tiling, in lanes of the compute type.
    pub t: Tiling,
    /// The storage type of q, k, v and the output.
    pub st: Scalar,
    /// The compute type (f32, or f64 for f64 storage).
    pub ct: Scalar,
    /// `vector<w x ct>`.
    pub vt: Ty,
    /// Queries `[Sq, D]`.
    pub q: Val,
    /// Keys `[Sk, D]`.
    pub k: Val,
    /// Values `[Sk, Dv]`.
    pub v: Val,
    /// The scale of the scores times `log2 e`: scores are kept in base-2 units, so that
    /// `exp(s - m)` is `2^(s2 - m2)` (no multiplication per score).
    pub scale2: Val,
    /// Query rows.
    pub sq: Val,
    /// Head dim of q and k.
    pub d: Val,
    /// Keys.
    pub sk: Val,
    /// Head dim of v.
    pub dv: Val,
    /// `Dv` rounded up to the vector width.
    pub dvp: Val,
    /// K and V as buffers with unit stride along their rows (valid where `k_unit` / `v_unit`).
    pub ku: Val,
    /// See `ku`.
    pub vu: Val,
    /// `i1`: K's rows have unit stride.
    pub k_unit: Val,
    /// `i1`: V's rows have unit stride.
    pub v_unit: Val,
    /// bf16 kernels: a `memref<w x ct>` scratch that [`super::pack::tail_load`] assembles the
    /// last partial vector of a row in.
    pub lanes: Option<Val>,
}

impl Ctx {
    /// `log2 e` as a scalar or vector of the compute type `ty`.
    pub fn log2e(&self, e: &mut Emitter, ty: &Ty) -> Val {
        e.float(std::f64::consts::LOG2_E, ty)
    }
}
