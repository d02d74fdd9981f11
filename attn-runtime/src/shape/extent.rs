//! Dimension sizes that are known, or known only at run time: what the shape rules are generic
//! over.

use core::fmt;

/// The size of one dimension as a shape rule sees it: `usize` (always known: run-time shapes,
/// kernel specs) or [`Dim`] (known when a kernel is compiled, or only when it runs).
///
/// Rules compare sizes with [`Extent::unify`]: two known sizes must be equal, and an unknown
/// size matches anything (it is checked when the kernel is called).
pub trait Extent: Copy + PartialEq + fmt::Debug + fmt::Display {
    /// A known size.
    fn known(n: usize) -> Self;

    /// The size, if known.
    fn size(self) -> Option<usize>;

    /// The size both `self` and `other` can have: the known one, or `None` when both are known
    /// and differ.
    fn unify(self, other: Self) -> Option<Self> {
        match (self.size(), other.size()) {
            (Some(a), Some(b)) => (a == b).then_some(self),
            (Some(_), None) => Some(self),
            (None, _) => Some(other),
        }
    }

    /// Whether this is known to be 1 (a broadcast dim).
    fn is_one(self) -> bool {
        self.size() == Some(1)
    }
}

impl Extent for usize {
    fn known(n: usize) -> Self {
        n
    }

    fn size(self) -> Option<usize> {
        Some(self)
    }
}

/// One dimension of a tensor type: known when the kernel is compiled, or given at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A size fixed when the kernel is compiled.
    Static(usize),
    /// A size read from the memref descriptor at run time.
    Dynamic,
}

impl Extent for Dim {
    fn known(n: usize) -> Self {
        Dim::Static(n)
    }

    fn size(self) -> Option<usize> {
        match self {
            Dim::Static(n) => Some(n),
            Dim::Dynamic => None,
        }
    }
}

impl From<Option<usize>> for Dim {
    /// `Some(n)` is static, `None` dynamic.
    fn from(d: Option<usize>) -> Self {
        d.map_or(Dim::Dynamic, Dim::Static)
    }
}

impl fmt::Display for Dim {
    /// The size, or `?` (MLIR's spelling of a dynamic dim).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Static(n) => write!(f, "{n}"),
            Dim::Dynamic => f.write_str("?"),
        }
    }
}

/// A shape written `[a, b, c]` (`?` for unknown dims).
pub(crate) struct Show<'a, D>(pub &'a [D]);

impl<D: fmt::Display> fmt::Display for Show<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unify_known_and_unknown() {
        assert_eq!(3usize.unify(3), Some(3));
        assert_eq!(3usize.unify(4), None);
        assert_eq!(Dim::Static(3).unify(Dim::Dynamic), Some(Dim::Static(3)));
        assert_eq!(Dim::Dynamic.unify(Dim::Static(5)), Some(Dim::Static(5)));
        assert_eq!(Dim::Dynamic.unify(Dim::Dynamic), Some(Dim::Dynamic));
        assert_eq!(Dim::Static(2).unify(Dim::Static(5)), None);
        assert!(Dim::Static(1).is_one() && !Dim::Dynamic.is_one() && 1usize.is_one());
        assert_eq!(Dim::from(Some(4)), Dim::Static(4));
        assert_eq!(Dim::from(None), Dim::Dynamic);
        assert_eq!(
            Show(&[Dim::Dynamic, Dim::Static(64)]).to_string(),
            "[?, 64]"
        );
        assert_eq!(Show(&[2usize, 3]).to_string(), format!("{:?}", [2, 3]));
    }
}
