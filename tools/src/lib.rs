//! attn's workspace-internal tools (`publish = false`): the measurements behind the performance
//! tables and plot, and the memory-safety run of `./dev test`. Each is a binary of this crate:
//!
//! | binary | what it does |
//! |---|---|
//! | `bench` | attention throughput on one shape (`--json` for `scripts/perf.sh` and `scripts/peers/`) |
//! | `peak` | the machine's single-core FMA peak and read bandwidth |
//! | `memcheck` | every kernel of the default set once, checked; `./dev test` runs it under valgrind |
//! | `memory` | the peak memory of one long attention call above its inputs and output |
//! | `softmax_bench` | the softmax primitive against the loop pipeline |
//! | `variants_bench` | causal, grouped-query and decoding attention |
//!
//! ```text
//! cargo run --release -p attn-tools --bin bench -- --help
//! cargo bench -p attn-tools --features peers --bench peers   # candle's CPU path next to attn
//! ```
//!
//! The library itself is empty: it holds the doc tests of the guide's Rust examples
//! (`docs/guide/*.md`), so that `cargo test --workspace --doc` compiles and runs them.

#![deny(unsafe_code)]
#![warn(missing_docs)]

/// Includes a guide page as the documentation of an empty item, so that its Rust code blocks
/// are doc tests (blocks marked `ignore` need a build script listing them, see each page).
macro_rules! guide_pages {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            #[cfg(doctest)]
            #[doc = include_str!(concat!("../../docs/guide/", $file))]
            pub struct $name;
        )*
    };
}

guide_pages! {
    GuideReadme => "README.md",
    GuideApi => "api.md",
    GuideKernels => "kernels.md",
    GuideArchitecture => "architecture.md",
    GuidePipelineAndIr => "pipeline-and-ir.md",
    GuideAbi => "abi.md",
    GuideIsaDispatch => "isa-dispatch.md",
    GuideBuildErrors => "build-errors.md",
    GuideDocsRs => "docs-rs.md",
    GuidePerformance => "performance.md",
    GuideTuning => "tuning.md",
    GuideTesting => "testing.md",
    GuideLimitations => "limitations.md",
}
