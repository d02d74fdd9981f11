//! Interop with [`ndarray`] (feature `ndarray`).
//!
//! - Any [`ArrayBase`] of an [`Element`] type implements [`AsTensorView`], so arrays, views,
//!   transposes (`.t()`, `.reversed_axes()`, `.permuted_axes(..)`) and slices go straight into
//!   every operation. The view borrows the array's memory and keeps its strides: nothing is
//!   copied.
//! - [`Tensor::into_ndarray`] (no copy), [`Tensor::to_ndarray`], [`Tensor::into_ndarray_dim`] and
//!   `ArrayD::from(tensor)` turn results into `ndarray::Array`s; [`TensorView::as_ndarray`] and
//!   [`Tensor::as_ndarray`] look at tensors as `ndarray` views; [`Tensor::from_ndarray`] copies.
//!
//! # Which layouts are borrowed
//!
//! A [`TensorView`] is a slice plus non-negative strides, and its slice covers everything from
//! the first to the last element, including any gaps between elements. So:
//!
//! | array | borrowed without a copy? |
//! |---|---|
//! | any layout without gaps (standard, Fortran order, any permutation of axes: `.t()`, `.reversed_axes()`) | yes |
//! | an owned `Array` / `ArcArray` with gaps (after `slice_move`, `slice_collapse`, `collapse_axis`) | yes |
//! | a borrowed view with gaps (`.slice(s![.., ..;2])`, a column block `.slice(s![.., 0..64])`) | no: [`ViewOrCopy`] copies it |
//! | negative strides (`.slice(s![..;-1, ..])`, `.invert_axis(..)`) | no: [`ViewOrCopy`] copies it |
//!
//! A borrowed view's gaps may belong to other, mutable views of the same array (after
//! `split_at`, `multi_slice_mut` or a parallel `Zip`), so a slice over them cannot be formed
//! soundly; an owned array's gaps are part of the allocation `&self` already shares.
//! [`AsTensorView::try_as_tensor_view`] reports the unsupported layouts as
//! [`Error::InvalidView`]; [`AsTensorView::as_tensor_view`] panics with that message.
//!
//! ```
//! use attn_runtime::ndarray::{Array2, s};
//! use attn_runtime::{AsTensorView, Tensor, reference, ndarray_interop::ViewOrCopy};
//!
//! let a = Array2::from_shape_fn((4, 6), |(i, j)| (i * 6 + j) as f32);
//! // A transposed view: borrowed, strides [1, 6].
//! let t = a.t();
//! let view = t.as_tensor_view();
//! assert_eq!((view.shape(), view.strides()), (&[6, 4][..], &[1, 6][..]));
//! assert_eq!(view.data().as_ptr(), a.as_ptr());
//!
//! // A view with gaps is an error for the borrowing API; `ViewOrCopy` copies it.
//! let every_other = a.slice(s![.., ..;2]);
//! assert!(every_other.try_as_tensor_view().is_err());
//! let arg = ViewOrCopy::new(&every_other)?;
//! assert!(arg.is_copy());
//!
//! // Results as `ndarray` arrays.
//! let prod = reference::matmul(&view, &a)?;        // [6, 4] x [4, 6]
//! let prod: Array2<f64> = prod.into_ndarray_dim()?;
//! assert_eq!(prod.dim(), (6, 6));
//! # Ok::<(), attn_runtime::Error>(())
//! ```

use crate::{AsTensorView, Element, Error, MAX_RANK, Tensor, TensorView};
use ndarray::{
    ArrayBase, ArrayD, ArrayView, ArrayViewD, CowRepr, Dimension, IxDyn, OwnedArcRepr, OwnedRepr,
    ShapeBuilder, ViewRepr,
};

mod sealed {
    pub trait Sealed {}
    impl<A> Sealed for ndarray::OwnedRepr<A> {}
    impl<A> Sealed for ndarray::OwnedArcRepr<A> {}
    impl<A> Sealed for ndarray::ViewRepr<&A> {}
    impl<A> Sealed for ndarray::ViewRepr<&mut A> {}
    impl<A> Sealed for ndarray::CowRepr<'_, A> {}
}

/// The storage of an `ndarray` array that can be read (`ndarray::Data`), and whether borrowing
/// the array borrows its whole allocation. Implemented for every storage type `ndarray` has;
/// sealed.
pub trait Storage: ndarray::Data + sealed::Sealed {
    /// `true` when `&ArrayBase<Self, _>` gives shared access to the whole allocation, gaps
    /// between elements included (owned storage); `false` for borrowed views, whose gaps may be
    /// mutably borrowed elsewhere.
    const OWNS_ALLOCATION: bool;
}

impl<A> Storage for OwnedRepr<A> {
    const OWNS_ALLOCATION: bool = true;
}

// Copy-on-write: another clone that mutates copies the data first, so `&self` keeps the whole
// buffer unchanged.
impl<A> Storage for OwnedArcRepr<A> {
    const OWNS_ALLOCATION: bool = true;
}

impl<A> Storage for ViewRepr<&A> {
    const OWNS_ALLOCATION: bool = false;
}

impl<A> Storage for ViewRepr<&mut A> {
    const OWNS_ALLOCATION: bool = false;
}

// Conservative: the borrowed variant is a view.
impl<A> Storage for CowRepr<'_, A> {
    const OWNS_ALLOCATION: bool = false;
}

const OP: &str = "ndarray view";

/// Borrows `a` as a [`TensorView`] without copying, or says why its layout cannot be.
fn borrow<T, S, D>(a: &ArrayBase<S, D>) -> Result<TensorView<'_, T>, Error>
where
    T: Element,
    S: Storage<Elem = T>,
    D: Dimension,
{
    let shape = a.shape();
    if shape.len() > MAX_RANK {
        return Err(Error::InvalidRank {
            op: OP,
            arg: "array",
            shape: shape.to_vec(),
            expected: format!("at most {MAX_RANK}"),
        });
    }
    let mut strides = [0usize; MAX_RANK];
    let mut span = 1usize; // elements from the first to the last, inclusive
    let empty = a.is_empty();
    for (axis, (&d, &s)) in shape.iter().zip(a.strides()).enumerate() {
        if d <= 1 || empty {
            continue; // the stride never moves: any value, 0 here
        }
        let Ok(s) = usize::try_from(s) else {
            return Err(Error::InvalidView {
                op: OP,
                message: format!(
                    "the array of shape {shape:?} has strides {:?}; axis {axis} runs backwards, \
                     which a tensor view cannot express. Copy it with \
                     `attn::ndarray_interop::ViewOrCopy::new(&array)` (or `.as_standard_layout()`)",
                    a.strides()
                ),
            });
        };
        strides[axis] = s;
        span = (d - 1)
            .checked_mul(s)
            .and_then(|x| x.checked_add(span))
            .ok_or_else(|| Error::Overflow {
                op: OP,
                arg: "array",
                shape: shape.to_vec(),
            })?;
    }
    let strides = &strides[..shape.len()];
    if empty {
        return TensorView::from_strided(&[], shape, strides, 0);
    }
    // No gaps: ndarray hands out the elements as one slice, which (all strides non-negative)
    // starts at element [0, .., 0].
    if let Some(data) = a.as_slice_memory_order()
        && core::ptr::eq(data.as_ptr(), a.as_ptr())
    {
        return TensorView::from_strided(data, shape, strides, 0);
    }
    if !S::OWNS_ALLOCATION {
        return Err(Error::InvalidView {
            op: OP,
            message: format!(
                "the borrowed array view of shape {shape:?} with strides {:?} has gaps between \
                 its elements, which may belong to other mutable views, so it cannot be borrowed \
                 as one slice. Copy it with `attn::ndarray_interop::ViewOrCopy::new(&view)` (or \
                 `.to_owned()`), or slice an owned array in place (`slice_move`)",
                a.strides()
            ),
        });
    }
    // SAFETY: the storage is owned (`Array` or `ArcArray`), so `&a` shares the whole allocation
    // for the returned lifetime, and nothing can write to it meanwhile (an `ArcArray` clone that
    // mutates copies first). Every stride is non-negative, so element [0, .., 0] at `as_ptr()`
    // is the lowest reachable address and `as_ptr() + span - 1` the highest; both, and
    // everything between them, lie inside that one allocation of initialized `T`s.
    let data = unsafe { core::slice::from_raw_parts(a.as_ptr(), span) };
    TensorView::from_strided(data, shape, strides, 0)
}

/// Any `ndarray` array of an [`Element`] type is a tensor view, borrowed without a copy (see the
/// [module docs](self) for the layouts this covers).
///
/// # Panics
///
/// [`AsTensorView::as_tensor_view`] panics for the layouts that cannot be borrowed (negative
/// strides, borrowed views with gaps, rank above [`MAX_RANK`]);
/// [`AsTensorView::try_as_tensor_view`] returns the error instead, and [`ViewOrCopy`] copies.
impl<T, S, D> AsTensorView<T> for ArrayBase<S, D>
where
    T: Element,
    S: Storage<Elem = T>,
    D: Dimension,
{
    fn as_tensor_view(&self) -> TensorView<'_, T> {
        match borrow(self) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    fn try_as_tensor_view(&self) -> Result<TensorView<'_, T>, Error> {
        borrow(self)
    }
}

/// An `ndarray` array as a tensor argument: borrowed when its layout allows, copied into a
/// contiguous [`Tensor`] when not (negative strides, borrowed views with gaps).
///
/// ```
/// use attn_runtime::ndarray::{Array2, s};
/// use attn_runtime::{AsTensorView, ndarray_interop::ViewOrCopy};
///
/// let a = Array2::from_shape_fn((3, 3), |(i, j)| (3 * i + j) as f32);
/// let rows_reversed = a.slice(s![..;-1, ..]);
/// let flipped = ViewOrCopy::new(&rows_reversed)?;
/// assert!(flipped.is_copy());
/// assert_eq!(flipped.as_tensor_view().get(&[0, 0]), Some(6.0));
/// assert!(!ViewOrCopy::new(&a.t())?.is_copy());
/// # Ok::<(), attn_runtime::Error>(())
/// ```
#[derive(Clone, Debug)]
pub enum ViewOrCopy<'a, T: Element> {
    /// The array's own memory.
    Borrowed(TensorView<'a, T>),
    /// A contiguous copy.
    Copied(Tensor<T>),
}

impl<'a, T: Element> ViewOrCopy<'a, T> {
    /// Borrows `a` if possible, copies it otherwise. Fails only if the rank exceeds
    /// [`MAX_RANK`] or the size overflows.
    pub fn new<S, D>(a: &'a ArrayBase<S, D>) -> Result<Self, Error>
    where
        S: Storage<Elem = T>,
        D: Dimension,
    {
        match borrow(a) {
            Ok(v) => Ok(ViewOrCopy::Borrowed(v)),
            Err(Error::InvalidView { .. }) => Tensor::from_ndarray(a).map(ViewOrCopy::Copied),
            Err(e) => Err(e),
        }
    }

    /// Whether the elements were copied.
    pub fn is_copy(&self) -> bool {
        matches!(self, ViewOrCopy::Copied(_))
    }
}

impl<T: Element> AsTensorView<T> for ViewOrCopy<'_, T> {
    fn as_tensor_view(&self) -> TensorView<'_, T> {
        match self {
            ViewOrCopy::Borrowed(v) => *v,
            ViewOrCopy::Copied(t) => t.view(),
        }
    }
}

fn shape_error(op: &'static str, shape: &[usize], e: ndarray::ShapeError) -> Error {
    Error::InvalidView {
        op,
        message: format!("shape {shape:?}: {e}"),
    }
}

impl<T: Element> Tensor<T> {
    /// The tensor as an `ndarray` array of dynamic rank, without copying (feature `ndarray`).
    pub fn into_ndarray(self) -> ArrayD<T> {
        let shape = self.shape().to_vec();
        ArrayD::from_shape_vec(IxDyn(&shape), self.into_vec())
            .expect("a tensor's data holds exactly its shape's elements, row-major")
    }

    /// The tensor as an `ndarray` array of a fixed rank (`Ix2`, ...), without copying; fails if
    /// the ranks differ (feature `ndarray`).
    ///
    /// ```
    /// let t = attn_runtime::Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
    /// let a: attn_runtime::ndarray::Array2<f32> = t.into_ndarray_dim()?;
    /// assert_eq!(a[[1, 0]], 3.0);
    /// # Ok::<(), attn_runtime::Error>(())
    /// ```
    pub fn into_ndarray_dim<D: Dimension>(self) -> Result<ndarray::Array<T, D>, Error> {
        let shape = self.shape().to_vec();
        self.into_ndarray()
            .into_dimensionality::<D>()
            .map_err(|e| shape_error("Tensor::into_ndarray_dim", &shape, e))
    }

    /// A copy of the tensor as an `ndarray` array (feature `ndarray`).
    pub fn to_ndarray(&self) -> ArrayD<T> {
        self.clone().into_ndarray()
    }

    /// The tensor as a borrowed `ndarray` view (feature `ndarray`).
    pub fn as_ndarray(&self) -> ArrayViewD<'_, T> {
        self.view().as_ndarray()
    }

    /// Copies any `ndarray` array (any layout, including negative strides) into a new
    /// contiguous tensor, in logical row-major order (feature `ndarray`).
    pub fn from_ndarray<S, D>(a: &ArrayBase<S, D>) -> Result<Self, Error>
    where
        S: ndarray::Data<Elem = T>,
        D: Dimension,
    {
        Tensor::from_vec(a.shape(), a.iter().copied().collect())
    }
}

impl<T: Element> From<Tensor<T>> for ArrayD<T> {
    fn from(t: Tensor<T>) -> Self {
        t.into_ndarray()
    }
}

impl<'a, T: Element> TensorView<'a, T> {
    /// The view as an `ndarray` view of the same elements, strides and lifetime, without copying
    /// (feature `ndarray`).
    pub fn as_ndarray(&self) -> ArrayViewD<'a, T> {
        let data: &'a [T] = self.data();
        let shape = IxDyn(self.shape()).strides(IxDyn(self.strides()));
        if self.is_empty() {
            return ArrayView::from_shape(shape, &[]).expect("an empty view has no elements");
        }
        // A tensor view's elements all lie in `data[offset..]` at non-negative strides, which is
        // what ndarray checks here; zero strides (broadcasts) are accepted for views.
        ArrayView::from_shape(shape, &data[self.offset()..])
            .expect("a valid tensor view is a valid ndarray view")
    }
}
