//! MLIR types as Rust values: every [`Val`](super::Val) carries one, ops read their operands'
//! types to pick their spelling (`addf` or `addi`, the `: type` suffix, the `i1` shape of a
//! comparison), and [`Display`] writes the MLIR syntax.

use attn_runtime::DType;
use std::fmt::{self, Display};

/// A scalar (element) type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// `i1`, the type of conditions.
    I1,
    /// `i8` (the block classes of mask mods).
    I8,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `index`.
    Index,
    /// `f16`.
    F16,
    /// `bf16`.
    BF16,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl Scalar {
    /// The element type of tensors of `d` (`DType` is non-exhaustive: every variant it has
    /// today is mapped, see the test `every_dtype_has_its_scalar`).
    pub fn of(d: DType) -> Scalar {
        match d {
            DType::F64 => Scalar::F64,
            DType::BF16 => Scalar::BF16,
            DType::F16 => Scalar::F16,
            DType::I32 => Scalar::I32,
            _ => Scalar::F32,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, Scalar::F16 | Scalar::BF16 | Scalar::F32 | Scalar::F64)
    }

    /// The width in bits (`index` counts as 64).
    pub fn bits(self) -> u32 {
        match self {
            Scalar::I1 => 1,
            Scalar::I8 => 8,
            Scalar::F16 | Scalar::BF16 => 16,
            Scalar::I32 | Scalar::F32 => 32,
            Scalar::I64 | Scalar::Index | Scalar::F64 => 64,
        }
    }

    /// The signless integer type as wide as this float type (for its bit patterns).
    pub fn bits_int(self) -> Scalar {
        if self.bits() == 64 {
            Scalar::I64
        } else {
            Scalar::I32
        }
    }

    /// The MLIR spelling.
    pub fn name(self) -> &'static str {
        match self {
            Scalar::I1 => "i1",
            Scalar::I8 => "i8",
            Scalar::I32 => "i32",
            Scalar::I64 => "i64",
            Scalar::Index => "index",
            Scalar::F16 => "f16",
            Scalar::BF16 => "bf16",
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
        }
    }
}

impl Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A shape: `None` is a dynamic (`?`) dim.
pub type Shape = Vec<Option<usize>>;

/// The layout of a memref: the identity (row-major), or explicit strides and offset (`None`:
/// dynamic).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Row-major, offset 0.
    Identity,
    /// `strided<[..], offset: ..>`.
    Strided {
        /// One stride per dim.
        strides: Vec<Option<i64>>,
        /// The offset in elements.
        offset: Option<i64>,
    },
}

/// An MLIR type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// A scalar.
    Scalar(Scalar),
    /// `vector<N x elem>`.
    Vector(usize, Scalar),
    /// `tensor<shape x elem>`.
    Tensor(Shape, Scalar),
    /// `memref<shape x elem, layout>`.
    MemRef(Shape, Scalar, Layout),
}

impl Ty {
    /// `index`.
    pub const INDEX: Ty = Ty::Scalar(Scalar::Index);
    /// `i1`.
    pub const I1: Ty = Ty::Scalar(Scalar::I1);
    /// `i32`.
    pub const I32: Ty = Ty::Scalar(Scalar::I32);

    /// `vector<n x s>`.
    pub fn vector(n: usize, s: Scalar) -> Ty {
        Ty::Vector(n, s)
    }

    /// A tensor of rank `rank` with every dim dynamic.
    pub fn dyn_tensor(rank: usize, s: Scalar) -> Ty {
        Ty::Tensor(vec![None; rank], s)
    }

    /// A row-major memref.
    pub fn memref(shape: &[Option<usize>], s: Scalar) -> Ty {
        Ty::MemRef(shape.to_vec(), s, Layout::Identity)
    }

    /// A memref with dynamic strides and offset, except the unit strides listed in `unit`.
    pub fn strided_memref(rank: usize, s: Scalar, unit_last: bool) -> Ty {
        let mut strides = vec![None; rank];
        if unit_last && rank > 0 {
            strides[rank - 1] = Some(1);
        }
        Ty::MemRef(
            vec![None; rank],
            s,
            Layout::Strided {
                strides,
                offset: None,
            },
        )
    }

    /// The element type (the type itself for scalars).
    pub fn elem(&self) -> Scalar {
        match self {
            Ty::Scalar(s) | Ty::Vector(_, s) | Ty::Tensor(_, s) | Ty::MemRef(_, s, _) => *s,
        }
    }

    /// The lanes of a vector type (1 for a scalar).
    pub fn lanes(&self) -> usize {
        match self {
            Ty::Vector(n, _) => *n,
            _ => 1,
        }
    }

    /// Whether this is a vector type.
    pub fn is_vector(&self) -> bool {
        matches!(self, Ty::Vector(..))
    }

    /// The rank of a shaped type (0 for scalars and vectors).
    pub fn rank(&self) -> usize {
        match self {
            Ty::Tensor(s, _) | Ty::MemRef(s, _, _) => s.len(),
            _ => 0,
        }
    }

    /// The same shape with element type `s` (scalars and vectors only: conversions, masks).
    pub fn with_elem(&self, s: Scalar) -> Ty {
        match self {
            Ty::Scalar(_) => Ty::Scalar(s),
            Ty::Vector(n, _) => Ty::Vector(*n, s),
            Ty::Tensor(sh, _) => Ty::Tensor(sh.clone(), s),
            Ty::MemRef(sh, _, l) => Ty::MemRef(sh.clone(), s, l.clone()),
        }
    }

    /// The `i1` type of a comparison of two values of this type.
    pub fn bool_like(&self) -> Ty {
        self.with_elem(Scalar::I1)
    }
}

impl From<Scalar> for Ty {
    fn from(s: Scalar) -> Ty {
        Ty::Scalar(s)
    }
}

fn dims(f: &mut fmt::Formatter<'_>, shape: &[Option<usize>]) -> fmt::Result {
    for d in shape {
        match d {
            Some(n) => write!(f, "{n}x")?,
            None => f.write_str("?x")?,
        }
    }
    Ok(())
}

fn opt(f: &mut fmt::Formatter<'_>, x: Option<i64>) -> fmt::Result {
    match x {
        Some(n) => write!(f, "{n}"),
        None => f.write_str("?"),
    }
}

impl Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Scalar(s) => write!(f, "{s}"),
            Ty::Vector(n, s) => write!(f, "vector<{n}x{s}>"),
            Ty::Tensor(shape, s) => {
                f.write_str("tensor<")?;
                dims(f, shape)?;
                write!(f, "{s}>")
            }
            Ty::MemRef(shape, s, layout) => {
                f.write_str("memref<")?;
                dims(f, shape)?;
                write!(f, "{s}")?;
                if let Layout::Strided { strides, offset } = layout {
                    f.write_str(", strided<[")?;
                    for (i, st) in strides.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        opt(f, *st)?;
                    }
                    f.write_str("], offset: ")?;
                    opt(f, *offset)?;
                    f.write_str(">")?;
                }
                f.write_str(">")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_print_as_mlir() {
        assert_eq!(Ty::vector(16, Scalar::F32).to_string(), "vector<16xf32>");
        assert_eq!(
            Ty::dyn_tensor(2, Scalar::BF16).to_string(),
            "tensor<?x?xbf16>"
        );
        assert_eq!(Ty::dyn_tensor(0, Scalar::F64).to_string(), "tensor<f64>");
        assert_eq!(
            Ty::memref(&[Some(8), None, Some(16)], Scalar::F32).to_string(),
            "memref<8x?x16xf32>"
        );
        assert_eq!(
            Ty::strided_memref(2, Scalar::F16, true).to_string(),
            "memref<?x?xf16, strided<[?, 1], offset: ?>>"
        );
        assert_eq!(
            Ty::vector(8, Scalar::F32).bool_like().to_string(),
            "vector<8xi1>"
        );
        assert_eq!(Scalar::F64.bits_int(), Scalar::I64);
    }

    #[test]
    fn every_dtype_has_its_scalar() {
        for d in DType::ALL {
            assert_eq!(Scalar::of(d).name(), d.name());
        }
    }
}
