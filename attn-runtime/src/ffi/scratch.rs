//! Scratch memory of the kernels.
//!
//! The pipeline lowers every `memref.alloc`/`memref.dealloc` of a kernel (packed panels, score
//! tiles, accumulators) to calls of `_mlir_memref_to_llvm_alloc`/`_mlir_memref_to_llvm_free`,
//! defined here. Blocks are served from a small per-thread cache of recently freed blocks, so
//! a kernel called again and again (the common case) makes no allocator call and no system
//! call: with plain `malloc`/`free`, freeing the ~100 KiB of a call let glibc trim the heap and
//! the next call fault the pages back in, which made small attention calls up to 3x slower.
//!
//! The cache holds at most [`MAX_CACHED_BLOCKS`] blocks and
//! [`MAX_CACHED_BYTES`] bytes per thread, released when the thread exits. Programs
//! that link kernel objects without this crate (C, say) must define the two functions
//! themselves, e.g. as `malloc` and `free`.

use core::cell::RefCell;
use std::alloc::{Layout, alloc, dealloc};

/// The most blocks one thread keeps for reuse.
pub const MAX_CACHED_BLOCKS: usize = 16;
/// The most bytes one thread keeps for reuse.
pub const MAX_CACHED_BYTES: usize = 64 << 20;
/// Bytes before each payload: the block's capacity (payloads stay 64-byte aligned).
const HEADER: usize = 64;
const ALIGN: usize = 64;

struct Cache {
    /// Free blocks: (capacity, payload pointer).
    blocks: Vec<(usize, *mut u8)>,
    bytes: usize,
}

impl Drop for Cache {
    fn drop(&mut self) {
        for &(cap, p) in &self.blocks {
            // SAFETY: every cached pointer is a payload of `raw_alloc(cap)`, not in use.
            unsafe { raw_free(p, cap) };
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache { blocks: Vec::new(), bytes: 0 })
    };
}

fn layout(cap: usize) -> Option<Layout> {
    Layout::from_size_align(cap.checked_add(HEADER)?, ALIGN).ok()
}

/// A new block of `cap` payload bytes (null when out of memory or `cap` is absurd).
fn raw_alloc(cap: usize) -> *mut u8 {
    let Some(l) = layout(cap) else {
        return core::ptr::null_mut();
    };
    // SAFETY: the layout has a non-zero size (HEADER > 0).
    let base = unsafe { alloc(l) };
    if base.is_null() {
        return base;
    }
    // SAFETY: the block is HEADER + cap bytes, so both the header write and the payload
    // pointer are in bounds; the header is ALIGN-aligned, enough for a usize.
    unsafe {
        base.cast::<usize>().write(cap);
        base.add(HEADER)
    }
}

/// Frees a payload of `raw_alloc(cap)`.
///
/// # Safety
/// `p` must come from `raw_alloc(cap)` and not be used afterwards.
unsafe fn raw_free(p: *mut u8, cap: usize) {
    if let Some(l) = layout(cap) {
        // SAFETY: (caller) `p - HEADER` is the start of a block allocated with this layout.
        unsafe { dealloc(p.sub(HEADER), l) };
    }
}

/// A block of at least `size` bytes, 64-byte aligned: a cached one when one fits.
pub fn allocate(size: usize) -> *mut u8 {
    // Round up so that calls with slightly different shapes reuse the same blocks.
    let Some(cap) = size.max(1).checked_next_multiple_of(4096) else {
        return core::ptr::null_mut();
    };
    let cached = CACHE
        .try_with(|c| {
            let mut c = c.borrow_mut();
            let best = c
                .blocks
                .iter()
                .enumerate()
                .filter(|(_, (bc, _))| *bc >= cap && *bc <= cap.saturating_mul(4))
                .min_by_key(|(_, (bc, _))| *bc)
                .map(|(i, _)| i)?;
            let (bc, p) = c.blocks.swap_remove(best);
            c.bytes -= bc;
            Some(p)
        })
        .ok()
        .flatten();
    cached.unwrap_or_else(|| raw_alloc(cap))
}

/// Returns a block of [`allocate`] (null is ignored): to the thread's cache, or to the
/// allocator when the cache is full.
///
/// # Safety
/// `p` must be null or come from [`allocate`], on any thread, and not be used afterwards.
pub unsafe fn release(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: (caller) `p` is a payload of `raw_alloc`, whose header holds the capacity.
    let cap = unsafe { p.sub(HEADER).cast::<usize>().read() };
    let kept = CACHE
        .try_with(|c| {
            let mut c = c.borrow_mut();
            if c.blocks.len() < MAX_CACHED_BLOCKS && c.bytes + cap <= MAX_CACHED_BYTES {
                c.blocks.push((cap, p));
                c.bytes += cap;
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: (caller) `p` came from `raw_alloc(cap)` and is no longer used.
        unsafe { raw_free(p, cap) };
    }
}

/// The allocation function the kernels call for `memref.alloc` (MLIR's generic allocation
/// interface): at least `size` bytes, or null.
#[unsafe(no_mangle)]
pub extern "C" fn _mlir_memref_to_llvm_alloc(size: u64) -> *mut u8 {
    match usize::try_from(size) {
        Ok(n) => allocate(n),
        Err(_) => core::ptr::null_mut(),
    }
}

/// The deallocation function the kernels call for `memref.dealloc`.
///
/// # Safety
/// `p` must be null or a pointer returned by [`_mlir_memref_to_llvm_alloc`] that is not used
/// afterwards (the kernels' deallocation pass guarantees this).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _mlir_memref_to_llvm_free(p: *mut u8) {
    // SAFETY: (caller) see above.
    unsafe { release(p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_aligned_and_bounded() {
        let a = allocate(100_000);
        assert!(!a.is_null() && (a as usize).is_multiple_of(64));
        // SAFETY: `a` has at least 100_000 bytes.
        unsafe { a.write_bytes(7, 100_000) };
        // SAFETY: from `allocate`, not used again.
        unsafe { release(a) };
        let b = allocate(99_000);
        assert_eq!(a, b, "a freed block of the same size class is reused");
        // A much smaller request does not take a huge block.
        let c = allocate(10);
        assert_ne!(c, b);
        let many: Vec<*mut u8> = (0..40).map(|_| allocate(8192)).collect();
        for p in many.into_iter().chain([b, c]) {
            // SAFETY: from `allocate`, not used again.
            unsafe { release(p) };
        }
        CACHE.with(|c| {
            let c = c.borrow();
            assert!(c.blocks.len() <= MAX_CACHED_BLOCKS && c.bytes <= MAX_CACHED_BYTES);
        });
        // SAFETY: null is ignored.
        unsafe { release(core::ptr::null_mut()) };
        assert!(_mlir_memref_to_llvm_alloc(u64::MAX).is_null());
    }

    #[test]
    fn blocks_may_be_freed_on_another_thread() {
        let p = allocate(5000) as usize;
        std::thread::spawn(move || {
            // SAFETY: from `allocate`, not used again.
            unsafe { release(p as *mut u8) }
        })
        .join()
        .unwrap();
    }
}
