//! MLIR memref descriptors built from tensor views.
//!
//! An MLIR kernel compiled with the C interface receives each memref argument
//! as a pointer to `{allocated, aligned, offset, sizes[rank], strides[rank]}`
//! (two pointers, then `i64`s). [`MemRefDescriptor`] is that struct for a
//! fixed rank; [`DynMemRef`] is a rank-erased version whose prefix has the
//! same layout for any rank up to [`MAX_RANK`].
//!
//! Building a descriptor needs no `unsafe`: raw pointers are plain values.
//! Input descriptors carry a `*mut` pointer only because that is MLIR's
//! layout; kernels must never write through an input descriptor.

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;

use crate::element::{DType, Element};
use crate::error::Error;
use crate::signature::ArgRole;
use crate::tensor::{MAX_RANK, TensorView, TensorViewMut};

/// Sizes, strides and offset converted to `i64`.
struct Encoded {
    offset: i64,
    sizes: [i64; MAX_RANK],
    strides: [i64; MAX_RANK],
}

fn encode(
    op: &'static str,
    shape: &[usize],
    strides: &[usize],
    offset: usize,
) -> Result<Encoded, Error> {
    let overflow = || Error::Overflow {
        op,
        arg: "view",
        shape: shape.to_vec(),
    };
    let mut e = Encoded {
        offset: i64::try_from(offset).map_err(|_| overflow())?,
        sizes: [0; MAX_RANK],
        strides: [0; MAX_RANK],
    };
    for (((&d, &s), ds), ss) in shape
        .iter()
        .zip(strides)
        .zip(e.sizes.iter_mut())
        .zip(e.strides.iter_mut())
    {
        *ds = i64::try_from(d).map_err(|_| overflow())?;
        *ss = i64::try_from(s).map_err(|_| overflow())?;
    }
    Ok(e)
}

/// MLIR's memref descriptor for element type `T` and rank `N`, laid out
/// exactly as MLIR's C interface expects (`N = 0` gives `{ptr, ptr, i64}`).
#[repr(C)]
pub struct MemRefDescriptor<T, const N: usize> {
    /// Start of the allocation (here: the start of the view's slice).
    pub allocated: *mut T,
    /// Aligned start of the data (here: the same as `allocated`).
    pub aligned: *mut T,
    /// Offset in elements from `aligned` to element `[0, .., 0]`.
    pub offset: i64,
    /// Sizes of the dimensions.
    pub sizes: [i64; N],
    /// Element strides of the dimensions.
    pub strides: [i64; N],
}

impl<T, const N: usize> Clone for MemRefDescriptor<T, N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, const N: usize> Copy for MemRefDescriptor<T, N> {}

impl<T, const N: usize> fmt::Debug for MemRefDescriptor<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemRefDescriptor")
            .field("allocated", &self.allocated)
            .field("aligned", &self.aligned)
            .field("offset", &self.offset)
            .field("sizes", &self.sizes)
            .field("strides", &self.strides)
            .finish()
    }
}

impl<T: Element, const N: usize> MemRefDescriptor<T, N> {
    fn build(
        op: &'static str,
        ptr: *mut T,
        shape: &[usize],
        strides: &[usize],
        offset: usize,
    ) -> Result<Self, Error> {
        if shape.len() != N {
            return Err(Error::InvalidRank {
                op,
                arg: "view",
                shape: shape.to_vec(),
                expected: N.to_string(),
            });
        }
        let e = encode(op, shape, strides, offset)?;
        let mut d = MemRefDescriptor {
            allocated: ptr,
            aligned: ptr,
            offset: e.offset,
            sizes: [0; N],
            strides: [0; N],
        };
        d.sizes.copy_from_slice(&e.sizes[..N]);
        d.strides.copy_from_slice(&e.strides[..N]);
        Ok(d)
    }

    /// Describes a read-only view. Kernels must not write through the result.
    ///
    /// Fails if the view's rank is not `N` or a size, stride or the offset
    /// does not fit `i64`.
    pub fn from_view(view: &TensorView<'_, T>) -> Result<Self, Error> {
        Self::build(
            "MemRefDescriptor::from_view",
            view.data().as_ptr().cast_mut(),
            view.shape(),
            view.strides(),
            view.offset(),
        )
    }

    /// Describes a mutable view, for a kernel output.
    ///
    /// Fails like [`Self::from_view`]. The descriptor does not borrow the
    /// view; using it after the view's data is gone is the user's concern.
    pub fn from_view_mut(view: &mut TensorViewMut<'_, T>) -> Result<Self, Error> {
        let layout = view.layout();
        Self::build(
            "MemRefDescriptor::from_view_mut",
            view.data_mut().as_mut_ptr(),
            layout.shape(),
            layout.strides(),
            layout.offset(),
        )
    }
}

/// A rank-erased memref descriptor borrowing a view's data for `'a`.
///
/// Its prefix is laid out exactly like [`MemRefDescriptor<T, R>`] for the
/// view's rank `R`: `allocated`, `aligned`, `offset`, then `R` sizes followed
/// directly by `R` strides (packed at the start of one `2 * MAX_RANK` array).
/// Bookkeeping fields (rank, dtype, role, borrowed address range) come after
/// and are never read by kernels. Building one never allocates.
///
/// An input descriptor borrows its data shared; an output descriptor borrows
/// its [`TensorViewMut`] mutably, so the data cannot be touched elsewhere
/// while the descriptor is alive.
#[repr(C, align(8))]
pub struct DynMemRef<'a> {
    allocated: *mut c_void,
    aligned: *mut c_void,
    offset: i64,
    sizes_and_strides: [i64; 2 * MAX_RANK],
    rank: usize,
    dtype: DType,
    role: ArgRole,
    addr: usize,
    bytes: usize,
    _borrow: PhantomData<&'a [u8]>,
}

impl fmt::Debug for DynMemRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynMemRef")
            .field("role", &self.role)
            .field("dtype", &self.dtype)
            .field("aligned", &self.aligned)
            .field("offset", &self.offset)
            .field("sizes", &self.sizes())
            .field("strides", &self.strides())
            .finish()
    }
}

impl<'a> DynMemRef<'a> {
    #[allow(clippy::too_many_arguments)]
    fn build(
        op: &'static str,
        ptr: *mut c_void,
        data_len: usize,
        dtype: DType,
        role: ArgRole,
        shape: &[usize],
        strides: &[usize],
        offset: usize,
    ) -> Result<Self, Error> {
        let e = encode(op, shape, strides, offset)?;
        let rank = shape.len();
        let mut sizes_and_strides = [0i64; 2 * MAX_RANK];
        sizes_and_strides[..rank].copy_from_slice(&e.sizes[..rank]);
        sizes_and_strides[rank..2 * rank].copy_from_slice(&e.strides[..rank]);
        Ok(DynMemRef {
            allocated: ptr,
            aligned: ptr,
            offset: e.offset,
            sizes_and_strides,
            rank,
            dtype,
            role,
            addr: ptr.addr(),
            // A slice never spans more than isize::MAX bytes.
            bytes: data_len.saturating_mul(dtype.size_bytes()),
            _borrow: PhantomData,
        })
    }

    /// Describes a read-only kernel input. Fails if a size, stride or the
    /// offset does not fit `i64`.
    pub fn input<T: Element>(view: &TensorView<'a, T>) -> Result<Self, Error> {
        let data = view.data();
        Self::build(
            "DynMemRef::input",
            data.as_ptr().cast_mut().cast(),
            data.len(),
            T::DTYPE,
            ArgRole::Input,
            view.shape(),
            view.strides(),
            view.offset(),
        )
    }

    /// Describes a kernel output, borrowing `view` mutably while the
    /// descriptor lives. Fails like [`Self::input`].
    pub fn output<T: Element>(view: &'a mut TensorViewMut<'_, T>) -> Result<Self, Error> {
        let layout = view.layout();
        let data = view.data_mut();
        Self::build(
            "DynMemRef::output",
            data.as_mut_ptr().cast(),
            data.len(),
            T::DTYPE,
            ArgRole::Output,
            layout.shape(),
            layout.strides(),
            layout.offset(),
        )
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Whether this describes an input or an output.
    pub fn role(&self) -> ArgRole {
        self.role
    }

    /// The offset in elements, as passed to the kernel.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The sizes, as passed to the kernel.
    pub fn sizes(&self) -> &[i64] {
        self.sizes_and_strides.get(..self.rank).unwrap_or(&[])
    }

    /// The element strides, as passed to the kernel.
    pub fn strides(&self) -> &[i64] {
        self.sizes_and_strides
            .get(self.rank..2 * self.rank)
            .unwrap_or(&[])
    }

    /// The aligned data pointer, as passed to the kernel.
    pub fn data_ptr(&self) -> *const c_void {
        self.aligned
    }

    /// The borrowed byte range `[start, end)` of the underlying slice.
    pub(crate) fn byte_range(&self) -> (usize, usize) {
        (self.addr, self.addr.saturating_add(self.bytes))
    }

    /// Whether the borrowed data ranges of `self` and `other` share a byte.
    pub(crate) fn overlaps(&self, other: &DynMemRef<'_>) -> bool {
        let (a0, a1) = self.byte_range();
        let (b0, b1) = other.byte_range();
        a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1
    }

    /// The pointer a kernel receives for this argument.
    pub(crate) fn as_kernel_arg(&mut self) -> *mut c_void {
        core::ptr::from_mut(self).cast()
    }

    /// Test hook: pretends the borrowed range is `[addr, addr + bytes)`.
    #[cfg(test)]
    pub(crate) fn with_fake_range(mut self, addr: usize, bytes: usize) -> Self {
        self.addr = addr;
        self.bytes = bytes;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn typed_layout_matches_mlir() {
        assert_eq!(size_of::<MemRefDescriptor<f32, 2>>(), 56);
        assert_eq!(size_of::<MemRefDescriptor<f32, 0>>(), 24);
        assert_eq!(size_of::<MemRefDescriptor<f64, 4>>(), 24 + 64);
        assert_eq!(offset_of!(MemRefDescriptor<f32, 2>, allocated), 0);
        assert_eq!(offset_of!(MemRefDescriptor<f32, 2>, aligned), 8);
        assert_eq!(offset_of!(MemRefDescriptor<f32, 2>, offset), 16);
        assert_eq!(offset_of!(MemRefDescriptor<f32, 2>, sizes), 24);
        assert_eq!(offset_of!(MemRefDescriptor<f32, 2>, strides), 40);
        assert_eq!(align_of::<MemRefDescriptor<f32, 2>>(), 8);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn dyn_prefix_layout_matches_typed() {
        assert_eq!(offset_of!(DynMemRef<'static>, allocated), 0);
        assert_eq!(offset_of!(DynMemRef<'static>, aligned), 8);
        assert_eq!(offset_of!(DynMemRef<'static>, offset), 16);
        assert_eq!(offset_of!(DynMemRef<'static>, sizes_and_strides), 24);
        assert_eq!(align_of::<DynMemRef<'static>>(), 8);
        assert!(size_of::<DynMemRef<'static>>() >= size_of::<MemRefDescriptor<f32, MAX_RANK>>());
    }

    #[test]
    fn dyn_fields_equal_typed_fields() {
        let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let v = TensorView::from_strided(&data, &[3, 2], &[1, 6], 4).unwrap();
        let typed = MemRefDescriptor::<f32, 2>::from_view(&v).unwrap();
        let dynd = DynMemRef::input(&v).unwrap();
        assert_eq!(typed.sizes, [3, 2]);
        assert_eq!(typed.strides, [1, 6]);
        assert_eq!(typed.offset, 4);
        assert_eq!(typed.aligned.cast_const(), data.as_ptr());
        assert_eq!(dynd.aligned, typed.aligned.cast());
        assert_eq!(dynd.allocated, typed.allocated.cast());
        assert_eq!(dynd.offset, typed.offset);
        assert_eq!(dynd.sizes(), &typed.sizes);
        assert_eq!(dynd.strides(), &typed.strides);
        assert_eq!(&dynd.sizes_and_strides[..4], &[3, 2, 1, 6]);
        assert_eq!(dynd.rank(), 2);
        assert_eq!(dynd.dtype(), DType::F32);
        assert_eq!(dynd.role(), ArgRole::Input);
    }

    #[test]
    fn rank_and_output_descriptors() {
        let t = Tensor::from_vec(&[2, 3], vec![0.0f64; 6]).unwrap();
        let e = MemRefDescriptor::<f64, 3>::from_view(&t.view()).unwrap_err();
        assert!(matches!(e, Error::InvalidRank { .. }), "{e}");
        assert!(e.to_string().contains("[2, 3]"));
        let s = Tensor::from_vec(&[], vec![1.0f64]).unwrap();
        let d0 = MemRefDescriptor::<f64, 0>::from_view(&s.view()).unwrap();
        assert_eq!(d0.offset, 0);

        let mut out = Tensor::<f64>::zeros(&[4, 5]).unwrap();
        let mut ov = out.view_mut();
        let typed = MemRefDescriptor::<f64, 2>::from_view_mut(&mut ov).unwrap();
        assert_eq!(typed.sizes, [4, 5]);
        assert_eq!(typed.strides, [5, 1]);
        let d = DynMemRef::output(&mut ov).unwrap();
        assert_eq!(d.role(), ArgRole::Output);
        assert_eq!(d.dtype(), DType::F64);
        assert_eq!(d.sizes(), &[4, 5]);
        assert_eq!(d.strides(), &[5, 1]);
        assert_eq!(d.byte_range().1 - d.byte_range().0, 20 * 8);
    }

    #[test]
    fn offsets_that_do_not_fit_i64_are_rejected() {
        let e = encode("t", &[2], &[usize::MAX], 0);
        assert!(matches!(e, Err(Error::Overflow { .. })));
        let e = encode("t", &[2], &[1], usize::MAX);
        assert!(matches!(e, Err(Error::Overflow { .. })));
    }
}
