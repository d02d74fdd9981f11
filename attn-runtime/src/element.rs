//! Element types that tensors and kernels can hold.

use core::fmt::Debug;

/// The run-time tag of an [`Element`] type.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE 754 floating point.
    F32,
    /// 64-bit IEEE 754 floating point.
    F64,
    /// bfloat16 ([`half::bf16`]): a storage format; kernels compute in f32.
    BF16,
    /// IEEE 754 half precision ([`half::f16`]): a storage format; kernels compute in f32.
    F16,
    /// 32-bit signed integers: the integer tables a score or mask mod reads (`doc: [256] as
    /// i32` in `attention!`), never an element of attention's q, k or v.
    I32,
}

impl DType {
    /// The MLIR spelling of this type, e.g. `"f32"`.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::BF16 => "bf16",
            DType::F16 => "f16",
            DType::I32 => "i32",
        }
    }

    /// The type arithmetic runs in: f64 for f64, else f32 (16-bit types are storage formats,
    /// widened on load and rounded once on store). An attention scale given at run time has
    /// this type. (Integers compute as themselves.)
    pub const fn compute(self) -> DType {
        match self {
            DType::F64 => DType::F64,
            DType::I32 => DType::I32,
            _ => DType::F32,
        }
    }

    /// Whether this is a 16-bit storage type (bf16, f16).
    pub const fn is_half(self) -> bool {
        matches!(self, DType::BF16 | DType::F16)
    }

    /// Every floating-point element type (those of attention's q, k and v).
    pub const ALL: [DType; 4] = [DType::F32, DType::F64, DType::BF16, DType::F16];

    /// The size of one element in bytes.
    pub const fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::BF16 | DType::F16 => 2,
            DType::I32 => 4,
        }
    }
}

impl core::fmt::Display for DType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    /// Prevents implementations of [`super::Element`] outside this crate.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for half::bf16 {}
    impl Sealed for half::f16 {}
    impl Sealed for i32 {}
}

/// A scalar type that can be stored in a [`crate::Tensor`] and passed to kernels.
///
/// This trait is sealed: it is implemented for `f32`, `f64`, [`half::bf16`] and [`half::f16`],
/// and for `i32` (the integer tables of score and mask mods; attention itself takes floats
/// only, `attn::AttentionElement`).
pub trait Element:
    Copy + Default + Debug + PartialEq + PartialOrd + Send + Sync + 'static + sealed::Sealed
{
    /// The run-time tag of this type.
    const DTYPE: DType;
    /// Converts to `f64` (exact for every element type).
    fn to_f64(self) -> f64;
    /// Converts from `f64`, rounding to nearest.
    fn from_f64(v: f64) -> Self;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

impl Element for half::bf16 {
    const DTYPE: DType = DType::BF16;
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn from_f64(v: f64) -> Self {
        half::bf16::from_f64(v)
    }
}

impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn from_f64(v: f64) -> Self {
        half::f16::from_f64(v)
    }
}

impl Element for i32 {
    const DTYPE: DType = DType::I32;
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    /// Rounds to nearest, saturating at the bounds of `i32` (NaN gives 0).
    fn from_f64(v: f64) -> Self {
        v.round() as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_and_sizes() {
        assert_eq!(DType::F32.name(), "f32");
        assert_eq!(DType::F64.name(), "f64");
        assert_eq!(DType::F32.size_bytes(), core::mem::size_of::<f32>());
        assert_eq!(DType::F64.size_bytes(), core::mem::size_of::<f64>());
        assert_eq!(<f32 as Element>::DTYPE, DType::F32);
        assert_eq!(<f64 as Element>::DTYPE, DType::F64);
        assert_eq!(DType::F64.to_string(), "f64");
    }

    #[test]
    fn conversions() {
        assert_eq!(1.5f32.to_f64(), 1.5);
        assert_eq!(f32::from_f64(0.25), 0.25f32);
        assert_eq!(f64::from_f64(0.1), 0.1);
        assert_eq!(<half::bf16 as Element>::from_f64(1.5).to_f64(), 1.5);
        assert_eq!(<half::f16 as Element>::from_f64(-0.25).to_f64(), -0.25);
        // Rounded to nearest: bf16 keeps 8 significant bits.
        let x = <half::bf16 as Element>::from_f64(1.0 + 1.0 / 512.0);
        assert_eq!(Element::to_f64(x), 1.0);
        assert_eq!(DType::BF16.size_bytes(), 2);
        assert_eq!(DType::F16.name(), "f16");
        assert_eq!(DType::I32.name(), "i32");
        assert_eq!(<i32 as Element>::from_f64(2.6), 3);
        assert_eq!(<i32 as Element>::from_f64(1e12), i32::MAX);
        assert_eq!(DType::I32.size_bytes(), 4);
    }
}
