//! The IR facts the lowering patterns read: ranked tensor types parsed from their text, element
//! types, and the segment sizes of ops with variadic operands.

use attn_runtime::DType;
use melior::ir::{OperationRef, Value, ValueLike, operation::OperationLike};

/// The parsed form of a ranked tensor type (`tensor<?x4xf32>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TensorTy {
    pub(super) dims: Vec<Option<usize>>,
    pub(super) elem: String,
}

impl TensorTy {
    pub(super) fn of(value: Value) -> Option<Self> {
        Self::parse(&value.r#type().to_string())
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        let inner = s.strip_prefix("tensor<")?.strip_suffix('>')?;
        let mut parts: Vec<&str> = inner.split('x').collect();
        let elem = parts.pop()?.to_string();
        if !matches!(elem.as_str(), "f32" | "f64" | "bf16" | "f16" | "i32") {
            return None;
        }
        let dims = parts
            .iter()
            .map(|p| {
                if *p == "?" {
                    Some(None)
                } else {
                    p.parse().ok().map(Some)
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(TensorTy { dims, elem })
    }

    pub(super) fn rank(&self) -> usize {
        self.dims.len()
    }

    pub(super) fn text(&self) -> String {
        let mut s = String::from("tensor<");
        for d in &self.dims {
            match d {
                Some(n) => s.push_str(&format!("{n}x")),
                None => s.push_str("?x"),
            }
        }
        s.push_str(&self.elem);
        s.push('>');
        s
    }

    pub(super) fn show(&self) -> String {
        self.text()
    }
}

/// The parsed type of `v`, or an error naming it.
pub(super) fn tensor_ty(v: Value) -> Result<TensorTy, String> {
    TensorTy::of(v).ok_or_else(|| {
        format!(
            "expected a ranked f32/f64/bf16/f16 tensor, got {}",
            v.r#type()
        )
    })
}

/// The element type spelled `elem` in MLIR.
pub(super) fn dtype_of(elem: &str) -> Option<DType> {
    DType::ALL
        .into_iter()
        .chain([DType::I32])
        .find(|d| d.name() == elem)
}

/// The counts of a `*SegmentSizes` attribute (`array<i32: 1, 1, 0>`).
pub(super) fn segments(op: &OperationRef, name: &str) -> Result<Vec<usize>, String> {
    let text = op
        .attribute(name)
        .map_err(|_| format!("transformer.attention has no `{name}`"))?
        .to_string();
    let inner = text
        .strip_prefix("array<i32:")
        .and_then(|t| t.strip_suffix('>'))
        .ok_or_else(|| format!("`{name}` is not an i32 array: {text}"))?;
    inner
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad `{name}`: {text}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::TensorTy;

    #[test]
    fn parses_tensor_types() {
        let t = TensorTy::parse("tensor<?x4xf32>").unwrap();
        assert_eq!(t.dims, vec![None, Some(4)]);
        assert_eq!(t.text(), "tensor<?x4xf32>");
        assert_eq!(TensorTy::parse("tensor<f32>").unwrap().rank(), 0);
        // i32: the integer tables of mods.
        assert_eq!(TensorTy::parse("tensor<4xi32>").unwrap().elem, "i32");
        assert!(TensorTy::parse("tensor<4xi64>").is_none());
        assert!(TensorTy::parse("memref<4xf32>").is_none());
    }
}
