//! [`TensorView`]: a borrowed, strided, read-only view, and its element iterator.

use core::fmt;

use super::Tensor;
use super::layout::{Layout, Offsets};
use crate::element::Element;
use crate::error::Error;

/// A borrowed, possibly strided, read-only view of tensor data.
///
/// Shape and strides (in elements) are stored inline, so creating, copying
/// and transposing views never allocates.
pub struct TensorView<'a, T: Element = f32> {
    pub(super) data: &'a [T],
    pub(super) layout: Layout,
}

impl<T: Element> Clone for TensorView<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Element> Copy for TensorView<'_, T> {}

impl<T: Element> fmt::Debug for TensorView<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorView")
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape())
            .field("strides", &self.strides())
            .field("offset", &self.offset())
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl<'a, T: Element> TensorView<'a, T> {
    /// A row-major view of `data`, which must hold exactly the shape's element count.
    pub fn new(data: &'a [T], shape: &[usize]) -> Result<Self, Error> {
        let layout = Layout::row_major("TensorView::new", shape, data.len())?;
        Ok(TensorView { data, layout })
    }

    /// A strided view: element `[i0, i1, ..]` is `data[offset + i0*s0 + i1*s1 + ..]`.
    ///
    /// Fails if the rank exceeds [`MAX_RANK`](super::MAX_RANK), `strides` and `shape` differ in
    /// length, or any reachable element lies outside `data`. Strides may alias
    /// (e.g. a zero stride broadcasts) since the view is read-only.
    pub fn from_strided(
        data: &'a [T],
        shape: &[usize],
        strides: &[usize],
        offset: usize,
    ) -> Result<Self, Error> {
        let layout = Layout::strided(
            "TensorView::from_strided",
            shape,
            strides,
            offset,
            data.len(),
        )?;
        Ok(TensorView { data, layout })
    }

    /// The sizes of the dimensions.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// The element strides of the dimensions.
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// The position in [`Self::data`] of element `[0, 0, ..]`.
    pub fn offset(&self) -> usize {
        self.layout.offset
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.layout.rank
    }

    /// The number of (logical) elements.
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// Whether the view has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole underlying slice (not just the elements the view reaches).
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Whether the elements are dense and in row-major order.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The elements as one row-major slice, if the view is contiguous.
    pub fn as_contiguous_slice(&self) -> Option<&'a [T]> {
        if !self.is_contiguous() {
            return None;
        }
        let end = self.offset().checked_add(self.len())?;
        self.data.get(self.offset()..end)
    }

    /// The element at `index`, or `None` if the index has the wrong length or
    /// is out of bounds.
    pub fn get(&self, index: &[usize]) -> Option<T> {
        self.layout
            .index_of(index)
            .and_then(|p| self.data.get(p).copied())
    }

    /// Swaps axes `a` and `b` without copying.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Self, Error> {
        Ok(TensorView {
            data: self.data,
            layout: self.layout.transpose("TensorView::transpose", a, b)?,
        })
    }

    /// Swaps the last two axes without copying; the rank must be at least 2.
    pub fn t(&self) -> Result<Self, Error> {
        let r = self.rank();
        if r < 2 {
            return Err(Error::InvalidRank {
                op: "TensorView::t",
                arg: "x",
                shape: self.shape().to_vec(),
                expected: "at least 2".into(),
            });
        }
        self.transpose(r - 2, r - 1)
    }

    /// Iterates over the elements in logical row-major order.
    pub fn iter(&self) -> Iter<'a, T> {
        Iter {
            data: self.data,
            offsets: self.layout.offsets(),
        }
    }

    /// Copies the elements into a new contiguous tensor (logical row-major order).
    pub fn to_tensor(&self) -> Tensor<T> {
        Tensor {
            shape: self.shape().to_vec(),
            data: self.iter().collect(),
        }
    }
}

impl<'a, T: Element> IntoIterator for TensorView<'a, T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Iterator over a view's elements in logical row-major order.
#[derive(Clone)]
pub struct Iter<'a, T: Element> {
    data: &'a [T],
    offsets: Offsets,
}

impl<T: Element> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let p = self.offsets.next()?;
        self.data.get(p).copied()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.offsets.size_hint()
    }
}

impl<T: Element> ExactSizeIterator for Iter<'_, T> {}
