//! Counts heap allocations made through Rust's global allocator per call.
//!
//! `attention_into` allocates nothing; `attention` allocates exactly its output.
//! (Scratch memory inside the kernels is the kernels' own business: the loop pipeline's
//! intermediate buffers come from libc `malloc`/`free`, paired within each call.)
//!
//! The counting allocator is the global allocator of the whole integration binary; it counts
//! per thread, and the test runs alone in a child process (`common::alone`).

use attn::{Tensor, TensorViewMut};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls on the current thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = COUNT.with(Cell::get);
    f();
    COUNT.with(Cell::get) - before
}

#[test]
fn into_forms_allocate_nothing_and_plain_forms_only_the_output() {
    // Other tests change the thread count: a call may create a pool (allocations). Alone.
    if !crate::common::alone(
        module_path!(),
        "into_forms_allocate_nothing_and_plain_forms_only_the_output",
    ) {
        return;
    }
    let q = Tensor::full(&[33, 16], 0.5f32).unwrap();
    let k = Tensor::full(&[41, 16], 0.25f32).unwrap();
    let v = Tensor::full(&[41, 8], 1.0f32).unwrap();
    let mut buf = vec![0.0f32; 33 * 8];
    // Warm up (first calls may initialize lazily).
    attn::attention(&q, &k, &v).unwrap();
    let n = allocations(|| {
        let mut out = TensorViewMut::new(&mut buf, &[33, 8]).unwrap();
        attn::attention_into(&q, &k, &v, &mut out).unwrap();
    });
    assert_eq!(n, 0, "attention_into allocated {n} times");
    let n = allocations(|| {
        std::hint::black_box(attn::attention(&q, &k, &v).unwrap());
    });
    // The output tensor: its data buffer and its shape vector.
    assert_eq!(n, 2, "attention allocated {n} times");
    let n = allocations(|| {
        std::hint::black_box(attn::matmul(&q, &attn::transpose(&k).unwrap()).unwrap());
    });
    // Per primitive: the output's data and shape, plus the shape rule's result vector.
    assert!(n <= 6, "transpose + matmul allocated {n} times");
}
