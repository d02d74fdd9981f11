//! The declared signature of a kernel argument (name, role, element type, rank): plain data that
//! the memref descriptors ([`crate::DynMemRef`]) and the kernel call ([`crate::ffi`]) both use.
//! Re-exported as [`crate::ffi::ArgRole`] and [`crate::ffi::ArgSpec`].

use crate::element::DType;

/// Whether a kernel argument is read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgRole {
    /// Read only.
    Input,
    /// Written by the kernel.
    Output,
}

/// The declared name, role, element type and rank of one kernel argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgSpec {
    /// The argument's name, used in error messages.
    pub name: &'static str,
    /// Input or output.
    pub role: ArgRole,
    /// Element type.
    pub dtype: DType,
    /// Number of dimensions.
    pub rank: usize,
}

impl ArgSpec {
    /// An input argument.
    pub const fn input(name: &'static str, dtype: DType, rank: usize) -> Self {
        ArgSpec {
            name,
            role: ArgRole::Input,
            dtype,
            rank,
        }
    }

    /// An output argument.
    pub const fn output(name: &'static str, dtype: DType, rank: usize) -> Self {
        ArgSpec {
            name,
            role: ArgRole::Output,
            dtype,
            rank,
        }
    }
}
