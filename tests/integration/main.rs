//! attn's integration tests, as one test binary (each test binary links every kernel of the
//! crate: one per file cost a link and tens of MB each). Each file is a module; a test's name
//! is `file::test` (`cargo test --test integration isa::` runs those of `isa.rs`).
//!
//! The tests run on parallel threads of one process. Process-wide settings: changing the thread
//! count (`attn::set_num_threads`) changes no result (bit for bit), so tests do it in place; a
//! test that forces an ISA level, or counts allocations, runs alone in a child process
//! ([`common::alone`]). `tests/ndarray.rs` is a binary of its own: it needs the `ndarray`
//! feature.

#[path = "../common/mod.rs"]
mod common;

mod allocations;
mod attention;
mod concurrency;
mod decode;
mod dtypes;
mod hostile;
mod isa;
mod options;
mod primitives;
mod properties;
mod variants;
