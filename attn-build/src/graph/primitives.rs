//! The primitives other than attention: matmul, transpose, softmax, the elementwise ops and
//! scale.

use super::{Graph, MAX_RANK, Op, TensorType, Value};
use crate::error::GraphError;
use attn_runtime::shape::Extent;

impl Graph {
    /// `transformer.matmul`.
    pub fn matmul(&mut self, a: Value, b: Value) -> Result<Value, GraphError> {
        const OP: &str = "matmul";
        let (ta, tb) = (self.check(a, OP)?.clone(), self.check(b, OP)?.clone());
        self.same_element(OP, a, b)?;
        let rank = ta.rank();
        if !(rank == 2 || rank == 3) || tb.rank() != rank {
            return Err(Self::err(
                OP,
                format!(
                    "operands must both be 2-D or both 3-D (batched), got {} and {}",
                    self.describe(a),
                    self.describe(b)
                ),
            ));
        }
        let mut dims = Vec::new();
        if rank == 3 {
            let batch = ta.dims[0].unify(tb.dims[0]).ok_or_else(|| {
                Self::err(
                    OP,
                    format!(
                        "batch dimensions differ: {} and {}",
                        self.describe(a),
                        self.describe(b)
                    ),
                )
            })?;
            dims.push(batch);
        }
        let (ka, kb) = (ta.dims[rank - 1], tb.dims[rank - 2]);
        if ka.unify(kb).is_none() {
            return Err(Self::err(
                OP,
                format!(
                    "inner dimensions differ ({ka} and {kb}): {} and {}",
                    self.describe(a),
                    self.describe(b)
                ),
            ));
        }
        dims.push(ta.dims[rank - 2]);
        dims.push(tb.dims[rank - 1]);
        Ok(self.push(Op::Matmul(a, b), TensorType::new(ta.element, &dims)))
    }

    /// `transformer.transpose` (swaps the last two dims).
    pub fn transpose(&mut self, a: Value) -> Result<Value, GraphError> {
        let t = self.check(a, "transpose")?.clone();
        if t.rank() < 2 || t.rank() > MAX_RANK {
            return Err(Self::err(
                "transpose",
                format!(
                    "operand must have rank 2 to {MAX_RANK}, got {}",
                    self.describe(a)
                ),
            ));
        }
        let mut dims = t.dims.clone();
        let r = dims.len();
        dims.swap(r - 1, r - 2);
        Ok(self.push(Op::Transpose(a), TensorType::new(t.element, &dims)))
    }

    /// `transformer.softmax` over the last dim.
    pub fn softmax(&mut self, a: Value) -> Result<Value, GraphError> {
        let t = self.check(a, "softmax")?.clone();
        if t.rank() < 1 || t.rank() > MAX_RANK {
            return Err(Self::err(
                "softmax",
                format!(
                    "operand must have rank 1 to {MAX_RANK}, got {}",
                    self.describe(a)
                ),
            ));
        }
        Ok(self.push(Op::Softmax(a), t))
    }

    fn elementwise(
        &mut self,
        op: &'static str,
        a: Value,
        b: Value,
    ) -> Result<TensorType, GraphError> {
        let (ta, tb) = (self.check(a, op)?.clone(), self.check(b, op)?.clone());
        self.same_element(op, a, b)?;
        if tb.rank() == 0 {
            return Ok(ta);
        }
        if ta.rank() != tb.rank() {
            return Err(Self::err(
                op,
                format!(
                    "shapes differ: {} and {} (the right operand may also be a rank-0 scalar)",
                    self.describe(a),
                    self.describe(b)
                ),
            ));
        }
        let dims = ta
            .dims
            .iter()
            .zip(&tb.dims)
            .map(|(x, y)| x.unify(*y))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Self::err(
                    op,
                    format!(
                        "shapes differ: {} and {}",
                        self.describe(a),
                        self.describe(b)
                    ),
                )
            })?;
        Ok(TensorType::new(ta.element, &dims))
    }

    /// `transformer.add`.
    pub fn add(&mut self, a: Value, b: Value) -> Result<Value, GraphError> {
        let t = self.elementwise("add", a, b)?;
        Ok(self.push(Op::Add(a, b), t))
    }

    /// `transformer.mul`.
    pub fn mul(&mut self, a: Value, b: Value) -> Result<Value, GraphError> {
        let t = self.elementwise("mul", a, b)?;
        Ok(self.push(Op::Mul(a, b), t))
    }

    /// `transformer.scale` by a constant factor.
    pub fn scale(&mut self, a: Value, factor: f32) -> Result<Value, GraphError> {
        let t = self.check(a, "scale")?.clone();
        if !factor.is_finite() {
            return Err(Self::err(
                "scale",
                format!("factor must be finite, got {factor}"),
            ));
        }
        Ok(self.push(Op::Scale(a, factor), t))
    }
}
