//! The thread count used by the kernels' Rust-side work splitting.
//!
//! Attention is split over batch x heads x query blocks; each piece runs the same AOT kernel on
//! sub-views (strided descriptors, no copies) from a scoped thread. No threading runtime (OpenMP,
//! MLIR async) is linked.

use std::sync::{
    OnceLock,
    atomic::{AtomicUsize, Ordering},
};

static OVERRIDE: AtomicUsize = AtomicUsize::new(0);

fn default_threads() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        std::env::var("ATTN_NUM_THREADS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Sets the number of threads attention uses; `0` restores the default (`ATTN_NUM_THREADS`, else
/// the number of available cores). Safe to call while other threads run kernels: a call that
/// already started keeps the count it read.
///
/// ```
/// attn::set_num_threads(1);
/// assert_eq!(attn::num_threads(), 1);
/// attn::set_num_threads(0);
/// assert!(attn::num_threads() >= 1);
/// ```
pub fn set_num_threads(n: usize) {
    OVERRIDE.store(n, Ordering::Relaxed);
}

/// The number of threads attention uses.
pub fn num_threads() -> usize {
    match OVERRIDE.load(Ordering::Relaxed) {
        0 => default_threads(),
        n => n,
    }
}
