//! Owned tensors and borrowed, strided views.

use core::fmt;

use crate::element::Element;
use crate::error::Error;

/// The largest rank a view (and therefore a [`Tensor`]) can have.
pub const MAX_RANK: usize = 8;

/// Multiplies the sizes in `shape`, or `None` on overflow.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Shape, strides and offset of a view, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    shape: [usize; MAX_RANK],
    strides: [usize; MAX_RANK],
    rank: usize,
    offset: usize,
}

impl Layout {
    /// Row-major layout. The caller guarantees `shape.len() <= MAX_RANK` and
    /// that the element count fits `usize`; extra axes are ignored otherwise.
    fn row_major_unchecked(shape: &[usize]) -> Layout {
        let rank = shape.len().min(MAX_RANK);
        let mut l = Layout {
            shape: [0; MAX_RANK],
            strides: [0; MAX_RANK],
            rank,
            offset: 0,
        };
        let mut stride = 1usize;
        for ax in (0..rank).rev() {
            l.shape[ax] = shape[ax];
            l.strides[ax] = stride;
            // Saturation only happens when some size is zero (then nothing is
            // reachable and strides are irrelevant).
            stride = stride.saturating_mul(shape[ax]);
        }
        l
    }

    fn check_rank(op: &'static str, shape: &[usize]) -> Result<(), Error> {
        if shape.len() > MAX_RANK {
            return Err(Error::InvalidRank {
                op,
                arg: "shape",
                shape: shape.to_vec(),
                expected: format!("at most {MAX_RANK}"),
            });
        }
        Ok(())
    }

    /// Row-major layout over `data_len` elements; the count must match exactly.
    fn row_major(op: &'static str, shape: &[usize], data_len: usize) -> Result<Layout, Error> {
        Self::check_rank(op, shape)?;
        let n = checked_numel(shape).ok_or_else(|| Error::Overflow {
            op,
            arg: "shape",
            shape: shape.to_vec(),
        })?;
        if n != data_len {
            return Err(Error::DataLength {
                op,
                shape: shape.to_vec(),
                expected: n,
                actual: data_len,
            });
        }
        Ok(Self::row_major_unchecked(shape))
    }

    /// Strided layout; every reachable element must lie below `data_len`.
    fn strided(
        op: &'static str,
        shape: &[usize],
        strides: &[usize],
        offset: usize,
        data_len: usize,
    ) -> Result<Layout, Error> {
        Self::check_rank(op, shape)?;
        if strides.len() != shape.len() {
            return Err(Error::InvalidView {
                op,
                message: format!(
                    "shape {shape:?} has rank {} but strides {strides:?} has length {}",
                    shape.len(),
                    strides.len()
                ),
            });
        }
        let overflow = || Error::Overflow {
            op,
            arg: "view",
            shape: shape.to_vec(),
        };
        checked_numel(shape).ok_or_else(overflow)?;
        let mut l = Layout {
            shape: [0; MAX_RANK],
            strides: [0; MAX_RANK],
            rank: shape.len(),
            offset,
        };
        l.shape[..shape.len()].copy_from_slice(shape);
        l.strides[..shape.len()].copy_from_slice(strides);
        match l.max_index().map_err(|()| overflow())? {
            Some(last) if last >= data_len => Err(Error::InvalidView {
                op,
                message: format!(
                    "shape {shape:?} with strides {strides:?} and offset {offset} reaches element {last} but data has {data_len} elements"
                ),
            }),
            _ => Ok(l),
        }
    }

    /// The largest reachable element index, `None` if the view is empty,
    /// `Err` on overflow.
    fn max_index(&self) -> Result<Option<usize>, ()> {
        if self.shape().contains(&0) {
            return Ok(None);
        }
        let mut last = self.offset;
        for (&d, &s) in self.shape().iter().zip(self.strides()) {
            let step = (d - 1).checked_mul(s).ok_or(())?;
            last = last.checked_add(step).ok_or(())?;
        }
        Ok(Some(last))
    }

    /// Checks that no two distinct indices reach the same element: sorting the
    /// axes of size > 1 by stride, each stride must exceed the span
    /// (`sum((dim - 1) * stride)`) of all axes with smaller strides.
    fn check_no_alias(&self, op: &'static str) -> Result<(), Error> {
        if self.shape().contains(&0) {
            return Ok(());
        }
        let mut axes = [(0usize, 0usize); MAX_RANK];
        let mut n = 0;
        for (&d, &s) in self.shape().iter().zip(self.strides()) {
            if d > 1 {
                axes[n] = (s, d);
                n += 1;
            }
        }
        let axes = &mut axes[..n];
        axes.sort_unstable();
        let mut span = 0usize; // largest offset reachable by the smaller axes
        for &(s, d) in axes.iter() {
            if s <= span {
                return Err(Error::InvalidView {
                    op,
                    message: format!(
                        "shape {:?} with strides {:?} makes distinct indices alias the same element",
                        self.shape(),
                        self.strides()
                    ),
                });
            }
            // Cannot overflow: max_index() already succeeded for this layout.
            span = span.saturating_add((d - 1).saturating_mul(s));
        }
        Ok(())
    }

    pub(crate) fn shape(&self) -> &[usize] {
        &self.shape[..self.rank]
    }

    pub(crate) fn strides(&self) -> &[usize] {
        &self.strides[..self.rank]
    }

    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    fn len(&self) -> usize {
        // Validated at construction not to overflow.
        self.shape().iter().product()
    }

    fn is_contiguous(&self) -> bool {
        if self.len() == 0 {
            return true;
        }
        let mut expected = 1usize;
        for (&d, &s) in self.shape().iter().zip(self.strides()).rev() {
            if d > 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    fn index_of(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.rank {
            return None;
        }
        let mut pos = self.offset;
        for ((&i, &d), &s) in index.iter().zip(self.shape()).zip(self.strides()) {
            if i >= d {
                return None;
            }
            pos += i * s; // bounded by max_index()
        }
        Some(pos)
    }

    fn transpose(&self, op: &'static str, a: usize, b: usize) -> Result<Layout, Error> {
        if a >= self.rank || b >= self.rank {
            return Err(Error::InvalidView {
                op,
                message: format!(
                    "cannot swap axes {a} and {b} of a view with shape {:?} (rank {})",
                    self.shape(),
                    self.rank
                ),
            });
        }
        let mut l = *self;
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        Ok(l)
    }

    fn offsets(&self) -> Offsets {
        Offsets {
            layout: *self,
            index: [0; MAX_RANK],
            pos: self.offset,
            remaining: self.len(),
        }
    }
}

/// Yields the element positions of a layout in logical row-major order.
#[derive(Clone)]
struct Offsets {
    layout: Layout,
    index: [usize; MAX_RANK],
    pos: usize,
    remaining: usize,
}

impl Iterator for Offsets {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        let cur = self.pos;
        self.remaining -= 1;
        for ax in (0..self.layout.rank).rev() {
            let s = self.layout.strides[ax];
            self.index[ax] += 1;
            self.pos = self.pos.wrapping_add(s);
            if self.index[ax] < self.layout.shape[ax] {
                break;
            }
            self.pos = self.pos.wrapping_sub(s.wrapping_mul(self.layout.shape[ax]));
            self.index[ax] = 0;
        }
        Some(cur)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

// ---------------------------------------------------------------------------

/// An owned, contiguous, row-major tensor.
///
/// The rank is at most [`MAX_RANK`]; zero-sized dimensions are allowed and a
/// rank-0 tensor is a scalar holding one element.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T: Element = f32> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: Element> Tensor<T> {
    /// Wraps `data` (row-major) as a tensor of the given shape.
    pub fn from_vec(shape: &[usize], data: Vec<T>) -> Result<Self, Error> {
        Layout::row_major("Tensor::from_vec", shape, data.len())?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A tensor of the given shape filled with `value`.
    pub fn full(shape: &[usize], value: T) -> Result<Self, Error> {
        const OP: &str = "Tensor::full";
        Layout::check_rank(OP, shape)?;
        let n = checked_numel(shape).ok_or_else(|| Error::Overflow {
            op: OP,
            arg: "shape",
            shape: shape.to_vec(),
        })?;
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| Error::Overflow {
            op: OP,
            arg: "shape",
            shape: shape.to_vec(),
        })?;
        data.resize(n, value);
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A tensor of deterministic pseudo-random values, uniform in `[-1, 1)`: the same `seed` gives
    /// the same values on every machine (xorshift64*). Meant for examples, tests and benchmarks.
    ///
    /// ```
    /// let a = attn_runtime::Tensor::<f32>::random(&[2, 3], 7)?;
    /// assert_eq!(a, attn_runtime::Tensor::random(&[2, 3], 7)?);
    /// assert!(a.as_slice().iter().all(|x| (-1.0..1.0).contains(x)));
    /// # Ok::<(), attn_runtime::Error>(())
    /// ```
    pub fn random(shape: &[usize], seed: u64) -> Result<Self, Error> {
        let mut t = Self::full(shape, T::default())?;
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for x in &mut t.data {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            *x = T::from_f64(bits as f64 / (1u64 << 53) as f64 * 2.0 - 1.0);
        }
        Ok(t)
    }

    /// A tensor of the given shape filled with zeros.
    pub fn zeros(shape: &[usize]) -> Result<Self, Error> {
        Self::full(shape, T::default())
    }

    /// The sizes of the dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements (some dimension is zero).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Returns the elements in row-major order.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Row-major element strides.
    pub fn strides(&self) -> Vec<usize> {
        Layout::row_major_unchecked(&self.shape).strides().to_vec()
    }

    /// A borrowed view of the whole tensor.
    pub fn view(&self) -> TensorView<'_, T> {
        TensorView {
            data: &self.data,
            layout: Layout::row_major_unchecked(&self.shape),
        }
    }

    /// A mutable borrowed view of the whole tensor.
    pub fn view_mut(&mut self) -> TensorViewMut<'_, T> {
        TensorViewMut {
            layout: Layout::row_major_unchecked(&self.shape),
            data: &mut self.data,
        }
    }

    /// The element at `index`, or `None` if the index has the wrong length or
    /// is out of bounds.
    pub fn get(&self, index: &[usize]) -> Option<T> {
        self.view().get(index)
    }

    /// Applies `f` to every element, producing a tensor of the same shape.
    pub fn map<U: Element>(&self, f: impl FnMut(T) -> U) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().copied().map(f).collect(),
        }
    }

    /// Converts every element to `f64`.
    pub fn to_f64(&self) -> Tensor<f64> {
        self.map(Element::to_f64)
    }
}

// ---------------------------------------------------------------------------

/// A borrowed, possibly strided, read-only view of tensor data.
///
/// Shape and strides (in elements) are stored inline, so creating, copying
/// and transposing views never allocates.
pub struct TensorView<'a, T: Element = f32> {
    data: &'a [T],
    layout: Layout,
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
    /// Fails if the rank exceeds [`MAX_RANK`], `strides` and `shape` differ in
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

// ---------------------------------------------------------------------------

/// A borrowed, possibly strided, mutable view of tensor data (used for
/// kernel outputs). Distinct indices never reach the same element.
pub struct TensorViewMut<'a, T: Element = f32> {
    data: &'a mut [T],
    layout: Layout,
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

// ---------------------------------------------------------------------------

/// Anything that can be looked at as a [`TensorView`].
pub trait AsTensorView<T: Element> {
    /// Borrows `self` as a read-only view.
    fn as_tensor_view(&self) -> TensorView<'_, T>;

    /// Borrows `self` as a read-only view, or says why its layout cannot be borrowed as one.
    ///
    /// [`Tensor`] and the views always succeed (this is [`Self::as_tensor_view`]); foreign
    /// arrays (the `ndarray` feature) fail for layouts a view cannot express, such as negative
    /// strides, where [`Self::as_tensor_view`] panics.
    fn try_as_tensor_view(&self) -> Result<TensorView<'_, T>, Error> {
        Ok(self.as_tensor_view())
    }
}

impl<T: Element> AsTensorView<T> for Tensor<T> {
    fn as_tensor_view(&self) -> TensorView<'_, T> {
        self.view()
    }
}

impl<T: Element> AsTensorView<T> for TensorView<'_, T> {
    fn as_tensor_view(&self) -> TensorView<'_, T> {
        *self
    }
}

impl<T: Element> AsTensorView<T> for TensorViewMut<'_, T> {
    fn as_tensor_view(&self) -> TensorView<'_, T> {
        self.as_view()
    }
}

impl<T: Element, X: AsTensorView<T> + ?Sized> AsTensorView<T> for &X {
    fn as_tensor_view(&self) -> TensorView<'_, T> {
        (**self).as_tensor_view()
    }

    fn try_as_tensor_view(&self) -> Result<TensorView<'_, T>, Error> {
        (**self).try_as_tensor_view()
    }
}

impl<T: Element, X: AsTensorView<T> + ?Sized> AsTensorView<T> for &mut X {
    fn as_tensor_view(&self) -> TensorView<'_, T> {
        (**self).as_tensor_view()
    }

    fn try_as_tensor_view(&self) -> Result<TensorView<'_, T>, Error> {
        (**self).try_as_tensor_view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32).collect()
    }

    #[test]
    fn from_vec_checks_length() {
        let t = Tensor::from_vec(&[2, 3], iota(6)).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.rank(), 2);
        assert_eq!(t.len(), 6);
        assert_eq!(t.strides(), vec![3, 1]);
        assert_eq!(t.get(&[1, 2]), Some(5.0));
        assert_eq!(t.get(&[2, 0]), None);
        assert_eq!(t.get(&[1]), None);
        let e = Tensor::from_vec(&[2, 3], iota(5)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Tensor::from_vec: shape [2, 3] needs 6 elements but data has 5"
        );
    }

    #[test]
    fn scalar_and_empty_tensors() {
        let s = Tensor::from_vec(&[], vec![7.0f64]).unwrap();
        assert_eq!(s.rank(), 0);
        assert_eq!(s.get(&[]), Some(7.0));
        assert!(Tensor::<f32>::from_vec(&[], vec![]).is_err());
        let e = Tensor::<f32>::zeros(&[3, 0, 2]).unwrap();
        assert!(e.is_empty());
        assert_eq!(e.view().iter().count(), 0);
        assert!(e.view().is_contiguous());
        // Huge sizes next to a zero are fine; the count is 0.
        let big = Tensor::<f32>::zeros(&[0, usize::MAX, usize::MAX]).unwrap();
        assert_eq!(big.len(), 0);
    }

    #[test]
    fn overflow_and_rank_limits() {
        let e = Tensor::<f32>::zeros(&[usize::MAX, 2]).unwrap_err();
        assert!(matches!(e, Error::Overflow { .. }), "{e}");
        let e = Tensor::<f32>::zeros(&[1; MAX_RANK + 1]).unwrap_err();
        assert!(matches!(e, Error::InvalidRank { .. }), "{e}");
        assert!(Tensor::<f32>::zeros(&[1; MAX_RANK]).is_ok());
    }

    #[test]
    fn full_map_into_vec() {
        let t = Tensor::full(&[2, 2], 1.5f32).unwrap();
        assert_eq!(t.as_slice(), &[1.5; 4]);
        let d = t.map(|x| f64::from(x) * 2.0);
        assert_eq!(d.as_slice(), &[3.0; 4]);
        assert_eq!(t.to_f64().as_slice(), &[1.5; 4]);
        assert_eq!(t.into_vec(), vec![1.5; 4]);
    }

    #[test]
    fn view_transpose_and_copy() {
        let t = Tensor::from_vec(&[2, 3], iota(6)).unwrap();
        let v = t.view();
        assert!(v.is_contiguous());
        assert_eq!(v.as_contiguous_slice(), Some(t.as_slice()));
        let tt = v.t().unwrap();
        assert_eq!(tt.shape(), &[3, 2]);
        assert_eq!(tt.strides(), &[1, 3]);
        assert!(!tt.is_contiguous());
        assert_eq!(tt.as_contiguous_slice(), None);
        assert_eq!(tt.get(&[2, 1]), Some(5.0));
        assert_eq!(tt.to_tensor().as_slice(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(tt.iter().len(), 6);
        assert!(v.transpose(0, 2).is_err());
        let s = Tensor::from_vec(&[3], iota(3)).unwrap();
        let e = s.view().t().unwrap_err();
        assert!(e.to_string().contains("[3]"), "{e}");
    }

    #[test]
    fn strided_views() {
        let data = iota(12);
        // Every other column of a [3, 4] matrix, starting at column 1.
        let v = TensorView::from_strided(&data, &[3, 2], &[4, 2], 1).unwrap();
        assert_eq!(v.to_tensor().as_slice(), &[1.0, 3.0, 5.0, 7.0, 9.0, 11.0]);
        assert_eq!(v.offset(), 1);
        assert_eq!(v.data().len(), 12);
        // Reaches element 12: out of bounds.
        let e = TensorView::from_strided(&data, &[3, 2], &[4, 2], 2).unwrap_err();
        assert!(matches!(e, Error::InvalidView { .. }));
        assert!(e.to_string().contains("[3, 2]"), "{e}");
        // Overflowing strides.
        let e = TensorView::from_strided(&data, &[2, 2], &[usize::MAX, 1], 0).unwrap_err();
        assert!(matches!(e, Error::Overflow { .. }), "{e}");
        // Mismatched lengths.
        assert!(TensorView::from_strided(&data, &[2, 2], &[1], 0).is_err());
        // Zero-sized dims: nothing reachable, any offset fine.
        let z = TensorView::from_strided(&data, &[0, 5], &[100, 100], 1000).unwrap();
        assert_eq!(z.len(), 0);
        // Broadcast (zero stride) is fine for read-only views.
        let b = TensorView::from_strided(&data, &[3, 2], &[0, 1], 0).unwrap();
        assert_eq!(b.to_tensor().as_slice(), &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        // Scalar view at an offset.
        let s = TensorView::from_strided(&data, &[], &[], 11).unwrap();
        assert_eq!(s.get(&[]), Some(11.0));
        assert!(TensorView::from_strided(&data, &[], &[], 12).is_err());
        assert!(TensorView::new(&data, &[5, 2]).is_err());
    }

    #[test]
    fn mutable_views_reject_aliasing() {
        let mut data = vec![0.0f32; 12];
        assert!(TensorViewMut::from_strided(&mut data, &[3, 2], &[0, 1], 0).is_err());
        assert!(TensorViewMut::from_strided(&mut data, &[3, 3], &[2, 1], 0).is_err());
        assert!(TensorViewMut::from_strided(&mut data, &[3, 2], &[1, 3], 0).is_ok());
        assert!(TensorViewMut::from_strided(&mut data, &[1, 4], &[0, 3], 0).is_ok());
        let e = TensorViewMut::from_strided(&mut data, &[3, 2], &[4, 2], 2).unwrap_err();
        assert!(matches!(e, Error::InvalidView { .. }));
        let mut v = TensorViewMut::from_strided(&mut data, &[2, 3], &[1, 4], 0).unwrap();
        v.fill(1.0);
        *v.get_mut(&[1, 2]).unwrap() = 9.0;
        assert_eq!(v.get(&[1, 2]), Some(9.0));
        assert!(v.get_mut(&[2, 0]).is_none());
        assert_eq!(
            v.as_view().to_tensor().as_slice(),
            &[1.0, 1.0, 1.0, 1.0, 1.0, 9.0]
        );
        assert_eq!(
            data,
            vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 9.0, 0.0, 0.0]
        );
    }

    #[test]
    fn copy_from_transposed() {
        let src = Tensor::from_vec(&[2, 3], iota(6)).unwrap();
        let mut dst = Tensor::<f32>::zeros(&[3, 2]).unwrap();
        let mut dv = dst.view_mut();
        assert!(dv.is_contiguous());
        dv.copy_from(&src.view().t().unwrap()).unwrap();
        let e = dv.copy_from(&src).unwrap_err();
        assert!(e.to_string().contains("[2, 3]") && e.to_string().contains("[3, 2]"));
        assert_eq!(dv.as_contiguous_slice_mut().map(|s| s.len()), Some(6));
        assert_eq!(dst.as_slice(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn as_tensor_view_impls() {
        fn shape_of<X: AsTensorView<f32>>(x: &X) -> Vec<usize> {
            x.as_tensor_view().shape().to_vec()
        }
        let t = Tensor::from_vec(&[2, 3], iota(6)).unwrap();
        assert_eq!(shape_of(&t), vec![2, 3]);
        assert_eq!(shape_of(&&t), vec![2, 3]);
        assert_eq!(shape_of(&t.view().t().unwrap()), vec![3, 2]);
        let mut m = t.clone();
        assert_eq!(shape_of(&m.view_mut()), vec![2, 3]);
    }
}
