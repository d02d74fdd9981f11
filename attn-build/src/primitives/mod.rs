//! Register-tiled f32 kernels for the primitives `transformer.matmul` ([`matmul`]) and
//! `transformer.softmax` ([`softmax`]), generated with the typed emitter like the fused
//! attention kernel (pure text; `crate::lower` inserts them as private functions and calls
//! them in place of each f32 op); the `inline` pass then specializes every call for its static
//! shapes. f64 keeps the naive `linalg` lowering.

pub mod matmul;
pub mod softmax;

use crate::emit;
use attn_runtime::tuning::Tiling;

/// The MLIR text of a module holding the matmul kernel of every rank in `matmul_ranks`
/// (`(a, b, init: tensor<?x..xf32>) -> tensor`) and the softmax kernel of every rank in
/// `softmax_ranks` (`(x, init) -> tensor`).
pub fn module_text(matmul_ranks: &[usize], softmax_ranks: &[usize], t: &Tiling) -> String {
    let funcs = matmul_ranks
        .iter()
        .map(|&r| matmul::function(r, t))
        .chain(softmax_ranks.iter().map(|&r| softmax::function(r, t)));
    emit::module(funcs)
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
