//! The thread count used by the kernels' Rust-side work splitting.
//!
//! Attention is split over batch x heads x query blocks; each piece runs the same AOT kernel on
//! sub-views (strided descriptors, no copies) as a job of a persistent worker pool (rayon; one
//! pool per thread count in use, created on first use). No threading runtime is linked into the
//! kernels (no OpenMP, no MLIR async runtime).

use std::sync::{
    Arc, Mutex, OnceLock,
    atomic::{AtomicUsize, Ordering},
};

/// The worker pool with `n` threads, created on first use and kept (`None` if the threads
/// cannot be created: callers then run on scoped threads).
pub(crate) fn pool(n: usize) -> Option<Arc<rayon::ThreadPool>> {
    static POOLS: Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = pools.iter().find(|(k, _)| *k == n) {
        return Some(Arc::clone(p));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("attn-worker-{i}"))
        .build()
        .ok()?;
    let p = Arc::new(p);
    pools.push((n, Arc::clone(&p)));
    Some(p)
}

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
