//! Tensor types of the graph: element types ([`ElementType`], `attn_runtime`'s [`DType`]), dims
//! ([`Dim`], the shape rules' static-or-dynamic size) and argument layouts.

use attn_runtime::DType;
pub use attn_runtime::shape::Dim;
use std::fmt::{self, Write};

/// Element types a kernel can compute in: `attn_runtime`'s [`DType`] (`F32`, `F64`, and the
/// storage types `BF16`, `F16`, attention only). [`DType::name`] is the MLIR spelling.
pub use attn_runtime::DType as ElementType;

/// A ranked tensor type: element type and dimensions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Element type.
    pub element: DType,
    /// Dimensions, outermost first.
    pub dims: Vec<Dim>,
}

impl TensorType {
    /// A tensor type with the given element type and dims.
    pub fn new(element: DType, dims: &[Dim]) -> Self {
        TensorType {
            element,
            dims: dims.to_vec(),
        }
    }

    /// An f32 tensor type.
    pub fn f32(dims: &[Dim]) -> Self {
        Self::new(DType::F32, dims)
    }

    /// An f32 tensor type whose every dim is dynamic.
    pub fn f32_dynamic(rank: usize) -> Self {
        Self::new(DType::F32, &vec![Dim::Dynamic; rank])
    }

    /// An f32 tensor type with static dims.
    pub fn f32_static(dims: &[usize]) -> Self {
        Self::new(
            DType::F32,
            &dims.iter().map(|&d| Dim::Static(d)).collect::<Vec<_>>(),
        )
    }

    /// Rank (number of dims).
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The memref type this tensor has at the kernel's C ABI.
    pub fn memref(&self, layout: Layout) -> String {
        let mut s = String::from("memref<");
        for d in &self.dims {
            let _ = write!(s, "{d}x");
        }
        s.push_str(self.element.name());
        match layout {
            Layout::Contiguous => {}
            Layout::Strided => {
                let strides = vec!["?"; self.rank()].join(", ");
                let _ = write!(s, ", strided<[{strides}], offset: ?>");
            }
        }
        s.push('>');
        s
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor<")?;
        for d in &self.dims {
            write!(f, "{d}x")?;
        }
        write!(f, "{}>", self.element.name())
    }
}

/// How a kernel's arguments are laid out in memory at its C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Any strides and offset, read from the descriptors (views need no copy).
    Strided,
    /// Dense row-major (identity layout): the fastest code for static kernels.
    Contiguous,
}
