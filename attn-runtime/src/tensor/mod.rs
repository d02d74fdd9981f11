//! Owned tensors and borrowed, strided views: [`Tensor`] (`owned`), [`TensorView`] and its
//! iterator (`view`), [`TensorViewMut`] (`view_mut`), over the inline [`layout`] they share, and
//! [`AsTensorView`], what every operation takes.

use crate::element::Element;
use crate::error::Error;

mod layout;
mod owned;
mod view;
mod view_mut;

pub use owned::Tensor;
pub use view::{Iter, TensorView};
pub use view_mut::TensorViewMut;

/// The largest rank a view (and therefore a [`Tensor`]) can have.
pub const MAX_RANK: usize = 8;

/// Multiplies the sizes in `shape`, or `None` on overflow.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

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
mod tests;
