//! Nested fixed-size arrays (`[[f32; 64]; 128]`) as kernel arguments: the typed signatures that
//! `attention!` generates spell each shape as such an array.
//!
//! Borrowed arrays are flattened with the safe `as_flattened` of the standard library; the one thing
//! that needs `unsafe` is allocating a large output directly on the heap, zeroed, without building
//! it on the stack first ([`zeroed_box`]).

use alloc_api::{Layout, alloc_zeroed, handle_alloc_error};
use core::ptr::NonNull;
use std::alloc as alloc_api;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for half::bf16 {}
    impl Sealed for half::f16 {}
    impl Sealed for i32 {}
    impl<A: Sealed, const N: usize> Sealed for [A; N] {}
}

/// An element type (`f32`, `f64`, [`half::bf16`], [`half::f16`], `i32`) or a nested fixed-size array of
/// one.
///
/// # Safety
///
/// Implementors are laid out as `LEN` contiguous elements of type `Elem`, without padding, and the
/// all-zero bit pattern is a valid value. The trait is sealed: it is implemented for `f32`, `f64`,
/// `bf16`, `f16`, `i32` and `[A; N]` where `A: FixedArray` only.
pub unsafe trait FixedArray: Sized + sealed::Sealed + 'static {
    /// The scalar element type.
    type Elem: crate::Element;
    /// The number of scalar elements.
    const LEN: usize;
    /// The number of array levels (0 for a scalar).
    const RANK: usize;
}

// SAFETY: a scalar is one element of itself; 0.0 is all zero bits.
unsafe impl FixedArray for f32 {
    type Elem = f32;
    const LEN: usize = 1;
    const RANK: usize = 0;
}

// SAFETY: as for f32.
unsafe impl FixedArray for f64 {
    type Elem = f64;
    const LEN: usize = 1;
    const RANK: usize = 0;
}

// SAFETY: `bf16` is a `repr(transparent)` `u16`: one element of itself; all zero bits are +0.0.
unsafe impl FixedArray for half::bf16 {
    type Elem = half::bf16;
    const LEN: usize = 1;
    const RANK: usize = 0;
}

// SAFETY: as for bf16 (`f16` is a `repr(transparent)` `u16` too).
unsafe impl FixedArray for half::f16 {
    type Elem = half::f16;
    const LEN: usize = 1;
    const RANK: usize = 0;
}

// SAFETY: as for f32 (0 is all zero bits).
unsafe impl FixedArray for i32 {
    type Elem = i32;
    const LEN: usize = 1;
    const RANK: usize = 0;
}

// SAFETY: `[A; N]` is `N` values of `A` back to back with no padding (an array's size is
// `N * size_of::<A>()`), each of which is `A::LEN` elements by induction; all-zero `A`s are valid.
unsafe impl<A: FixedArray, const N: usize> FixedArray for [A; N] {
    type Elem = A::Elem;
    const LEN: usize = A::LEN * N;
    const RANK: usize = A::RANK + 1;
}

/// A zero-filled `A` allocated directly on the heap: no copy of it ever lives on the stack, so
/// outputs of any size can be returned as `Box<[[f32; N]; M]>`.
pub fn zeroed_box<A: FixedArray>() -> Box<A> {
    let layout = Layout::new::<A>();
    if layout.size() == 0 {
        // SAFETY: for a zero-sized type, a dangling, well-aligned pointer is a valid `Box`, and the
        // (empty) value is valid.
        return unsafe { Box::from_raw(NonNull::<A>::dangling().as_ptr()) };
    }
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe { alloc_zeroed(layout) };
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `ptr` was allocated by the global allocator with `Layout::new::<A>()`, as `Box`
    // requires, and holds all zero bits, a valid `A` by the trait's contract.
    unsafe { Box::from_raw(ptr.cast::<A>()) }
}

/// `A`'s elements as one slice, in row-major order.
pub fn flat<A: FixedArray>(a: &A) -> &[A::Elem] {
    // SAFETY: by the trait's contract `A` is exactly `A::LEN` contiguous, initialised `Elem`s, and
    // the returned slice borrows `a`.
    unsafe { core::slice::from_raw_parts(core::ptr::from_ref(a).cast::<A::Elem>(), A::LEN) }
}

/// `A`'s elements as one mutable slice, in row-major order.
pub fn flat_mut<A: FixedArray>(a: &mut A) -> &mut [A::Elem] {
    // SAFETY: as in `flat`; the slice borrows `a` exclusively, and any bit pattern written through
    // it is made of valid `Elem`s, hence a valid `A`.
    unsafe { core::slice::from_raw_parts_mut(core::ptr::from_mut(a).cast::<A::Elem>(), A::LEN) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_arrays() {
        assert_eq!(<[[[f32; 3]; 4]; 5] as FixedArray>::LEN, 60);
        assert_eq!(<[[[f32; 3]; 4]; 5] as FixedArray>::RANK, 3);
        let mut b = zeroed_box::<[[f32; 3]; 2]>();
        assert_eq!(*b, [[0.0; 3]; 2]);
        flat_mut(&mut *b).copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(*b, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(flat(&*b), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let big = zeroed_box::<[[f64; 1024]; 4096]>();
        assert!(flat(&*big).iter().all(|&x| x == 0.0));
        let mut h = zeroed_box::<[[half::bf16; 3]; 2]>();
        assert!(flat(&*h).iter().all(|x| x.to_f32() == 0.0));
        flat_mut(&mut *h)[4] = half::bf16::from_f32(1.5);
        assert_eq!(h[1][1].to_f32(), 1.5);
        let f = zeroed_box::<[[[[half::f16; 2]; 3]; 4]; 5]>();
        assert_eq!(<[[[[half::f16; 2]; 3]; 4]; 5] as FixedArray>::RANK, 4);
        assert_eq!(flat(&*f).len(), 120);
        let empty = zeroed_box::<[[f32; 0]; 3]>();
        assert!(flat(&*empty).is_empty());
    }
}
