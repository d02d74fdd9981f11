//! The inline shape/strides/offset of a view, its checks (bounds, aliasing) and its
//! row-major element positions.

use super::{MAX_RANK, checked_numel};
use crate::error::Error;

/// Shape, strides and offset of a view, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(super) shape: [usize; MAX_RANK],
    pub(super) strides: [usize; MAX_RANK],
    pub(super) rank: usize,
    pub(super) offset: usize,
}

impl Layout {
    /// Row-major layout. The caller guarantees `shape.len() <= MAX_RANK` and
    /// that the element count fits `usize`; extra axes are ignored otherwise.
    pub(super) fn row_major_unchecked(shape: &[usize]) -> Layout {
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

    pub(super) fn check_rank(op: &'static str, shape: &[usize]) -> Result<(), Error> {
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
    pub(super) fn row_major(
        op: &'static str,
        shape: &[usize],
        data_len: usize,
    ) -> Result<Layout, Error> {
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
    pub(super) fn strided(
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
    pub(super) fn max_index(&self) -> Result<Option<usize>, ()> {
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
    pub(super) fn check_no_alias(&self, op: &'static str) -> Result<(), Error> {
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

    pub(super) fn len(&self) -> usize {
        // Validated at construction not to overflow.
        self.shape().iter().product()
    }

    pub(super) fn is_contiguous(&self) -> bool {
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

    pub(super) fn index_of(&self, index: &[usize]) -> Option<usize> {
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

    pub(super) fn transpose(&self, op: &'static str, a: usize, b: usize) -> Result<Layout, Error> {
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

    pub(super) fn offsets(&self) -> Offsets {
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
pub(super) struct Offsets {
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
