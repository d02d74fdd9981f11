//! [`TensorViewMut`]: a borrowed, strided, mutable view (kernel outputs).

use core::fmt;

use super::layout::Layout;
use super::{AsTensorView, Tensor, TensorView};
use crate::element::Element;
use crate::error::Error;

/// A borrowed, possibly strided, mutable view of tensor data (used for
/// kernel outputs). Distinct indices never reach the same element.
pub struct TensorViewMut<'a, T: Element = f32> {
    pub(super) data: &'a mut [T],
    pub(super) layout: Layout,
}

impl<T: Element> fmt::Debug for TensorViewMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorViewMut")
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape())
            .field("strides", &self.strides())
            .field("offset", &self.offset())
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl<'a, T: Element> TensorViewMut<'a, T> {
    /// A row-major view of `data`, which must hold exactly the shape's element count.
    pub fn new(data: &'a mut [T], shape: &[usize]) -> Result<Self, Error> {
        let layout = Layout::row_major("TensorViewMut::new", shape, data.len())?;
        Ok(TensorViewMut { data, layout })
    }

    /// A strided mutable view, with the same checks as
    /// [`TensorView::from_strided`] plus a no-aliasing rule: sorting the axes
    /// of size > 1 by stride, each stride must be greater than
    /// `sum((dim - 1) * stride)` over the axes with smaller strides. This is
    /// sufficient for distinct indices to reach distinct elements.
    pub fn from_strided(
        data: &'a mut [T],
        shape: &[usize],
        strides: &[usize],
        offset: usize,
    ) -> Result<Self, Error> {
        const OP: &str = "TensorViewMut::from_strided";
        let layout = Layout::strided(OP, shape, strides, offset, data.len())?;
        layout.check_no_alias(OP)?;
        Ok(TensorViewMut { data, layout })
    }

    /// The sizes of the dimensions.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// The element strides of the dimensions.
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// The position in the underlying slice of element `[0, 0, ..]`.
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

    /// Whether the elements are dense and in row-major order.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// A read-only view of the same elements.
    pub fn as_view(&self) -> TensorView<'_, T> {
        TensorView {
            data: self.data,
            layout: self.layout,
        }
    }

    /// A shorter-lived mutable view of the same elements.
    pub fn reborrow(&mut self) -> TensorViewMut<'_, T> {
        TensorViewMut {
            data: self.data,
            layout: self.layout,
        }
    }

    /// The whole underlying slice, read-only.
    pub fn data(&self) -> &[T] {
        self.data
    }

    /// A copy of the shape, strides and offset.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// The whole underlying slice, mutably (used to build kernel descriptors).
    pub fn data_mut(&mut self) -> &mut [T] {
        self.data
    }

    /// The elements as one mutable row-major slice, if the view is contiguous.
    pub fn as_contiguous_slice_mut(&mut self) -> Option<&mut [T]> {
        if !self.is_contiguous() {
            return None;
        }
        let start = self.offset();
        let end = start.checked_add(self.len())?;
        self.data.get_mut(start..end)
    }

    /// The element at `index`, or `None` if out of bounds.
    pub fn get(&self, index: &[usize]) -> Option<T> {
        self.as_view().get(index)
    }

    /// A mutable reference to the element at `index`, or `None` if out of bounds.
    pub fn get_mut(&mut self, index: &[usize]) -> Option<&mut T> {
        let p = self.layout.index_of(index)?;
        self.data.get_mut(p)
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: T) {
        for p in self.layout.offsets() {
            if let Some(x) = self.data.get_mut(p) {
                *x = value;
            }
        }
    }

    /// Copies `src` element-wise into this view; the shapes must be equal.
    pub fn copy_from(&mut self, src: &impl AsTensorView<T>) -> Result<(), Error> {
        let src = src.as_tensor_view();
        if src.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "TensorViewMut::copy_from",
                message: format!(
                    "src has shape {:?} but the destination has shape {:?}; they must be equal",
                    src.shape(),
                    self.shape()
                ),
            });
        }
        for (p, v) in self.layout.offsets().zip(src.iter()) {
            if let Some(x) = self.data.get_mut(p) {
                *x = v;
            }
        }
        Ok(())
    }

    /// Copies the elements into a new contiguous tensor.
    pub fn to_tensor(&self) -> Tensor<T> {
        self.as_view().to_tensor()
    }
}
