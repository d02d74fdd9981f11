//! [`Tensor`]: owned, contiguous, row-major data.

use super::layout::Layout;
use super::{TensorView, TensorViewMut, checked_numel};
use crate::element::Element;
use crate::error::Error;

/// An owned, contiguous, row-major tensor.
///
/// The rank is at most [`MAX_RANK`](super::MAX_RANK); zero-sized dimensions are allowed and a
/// rank-0 tensor is a scalar holding one element.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T: Element = f32> {
    pub(super) shape: Vec<usize>,
    pub(super) data: Vec<T>,
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
