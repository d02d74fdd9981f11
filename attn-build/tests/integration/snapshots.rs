//! Snapshots of the generated kernel text (`insta`): the fused attention kernel of every family
//! (dense, masked, causal wrapper, every option with the log-sum-exp; the decode path is part of
//! every 2-D kernel), each element type, both ISA tilings, and the matmul and softmax primitives.
//! Any change of the generated code shows up in review as a change of these files
//! (`tests/integration/snapshots/integration__snapshots__*.snap`); accept intended ones with
//! `INSTA_UPDATE=always cargo test -p attn-build --test integration snapshots::` (or `cargo insta
//! review`).

use attn_build::flash::{Spec, Tiling, module_text};
use attn_build::primitives;
use attn_runtime::DType;

fn spec(rank: usize, dtype: DType) -> Spec {
    Spec {
        rank,
        dtype,
        ..Spec::F32_2D
    }
}

#[test]
fn flash_dense_f32_avx2() {
    insta::assert_snapshot!(module_text(&[Spec::F32_2D], &Tiling::AVX2));
}

#[test]
fn flash_dense_f32_avx512() {
    insta::assert_snapshot!(module_text(&[Spec::F32_2D], &Tiling::AVX512));
}

#[test]
fn flash_mask_f32_avx2() {
    let s = Spec {
        mask_rank: Some(2),
        ..Spec::F32_2D
    };
    insta::assert_snapshot!(module_text(&[s], &Tiling::AVX2));
}

#[test]
fn flash_causal_rank4_wrapper_f32_avx2() {
    let s = Spec {
        causal: true,
        mask_rank: Some(4),
        ..spec(4, DType::F32)
    };
    insta::assert_snapshot!(module_text(&[s], &Tiling::AVX2));
}

#[test]
fn flash_every_option_lse_f32_avx2() {
    let s = Spec {
        positions: true,
        window: true,
        softcap: true,
        sinks: true,
        alibi: true,
        lse: true,
        ..Spec::F32_2D
    };
    insta::assert_snapshot!(module_text(&[s], &Tiling::AVX2));
}

#[test]
fn flash_dense_f64_avx2() {
    insta::assert_snapshot!(module_text(&[spec(2, DType::F64)], &Tiling::AVX2));
}

#[test]
fn flash_dense_bf16_avx2() {
    insta::assert_snapshot!(module_text(&[spec(2, DType::BF16)], &Tiling::AVX2));
}

#[test]
fn flash_dense_f16_avx512() {
    insta::assert_snapshot!(module_text(&[spec(2, DType::F16)], &Tiling::AVX512));
}

#[test]
fn primitives_avx2() {
    insta::assert_snapshot!(primitives::module_text(&[2], &[2], &Tiling::AVX2));
}

#[test]
fn primitives_avx512() {
    insta::assert_snapshot!(primitives::module_text(&[3], &[1], &Tiling::AVX512));
}
