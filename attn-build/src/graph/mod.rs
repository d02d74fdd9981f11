//! The build-time graph API: typed tensor values, the `transformer` primitives, shape inference,
//! and emission of a kernel as `transformer`-dialect IR.
//!
//! ```
//! use attn_build::graph::{Dim, Graph, TensorType};
//!
//! let mut g = Graph::new();
//! let q = g.input("q", TensorType::f32(&[Dim::Dynamic, Dim::Static(64)]));
//! let k = g.input("k", TensorType::f32(&[Dim::Dynamic, Dim::Static(64)]));
//! let kt = g.transpose(k).unwrap();
//! let s = g.matmul(q, kt).unwrap();
//! let p = g.softmax(s).unwrap();
//! assert_eq!(g.ty(p).to_string(), "tensor<?x?xf32>");
//! ```
//!
//! Files: [`types`](TensorType) (tensor types, dims, layouts), `primitives` (matmul, transpose,
//! softmax, elementwise ops, scale), `attention` ([`Graph::attention_with`] and its
//! [`AttentionOptions`], checked by `attn_runtime`'s shared shape rule), `kernel` ([`KernelDef`]
//! and its IR).

mod attention;
mod kernel;
mod mods;
mod primitives;
mod types;

pub use attention::{ATTENTION_OPTIONAL, AttentionOptions, MOD_INPUTS, Scale};
/// The plain-data attention options shared by every layer (`attn_runtime::options`): what
/// [`AttentionOptions::options`] holds.
pub use attn_runtime::options;
pub use kernel::{Codegen, KernelDef, float_literal, float_literal_f64};
pub use mods::{Mods, ModsRef};
pub use types::{Dim, ElementType, Layout, TensorType};

use crate::error::GraphError;

/// A value in a [`Graph`]: a graph input or the result of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Value(usize);

/// The `transformer` primitives.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A kernel argument.
    Input {
        /// Argument name (used in messages and the C ABI description).
        name: String,
    },
    /// `transformer.matmul`: `[M, K] x [K, N]` or batched `[B, M, K] x [B, K, N]`.
    Matmul(Value, Value),
    /// `transformer.transpose`: swaps the last two dims.
    Transpose(Value),
    /// `transformer.softmax`: numerically stable softmax over the last dim.
    Softmax(Value),
    /// `transformer.add`: elementwise sum (same shape, or a rank-0 right operand).
    Add(Value, Value),
    /// `transformer.mul`: elementwise product (same shape, or a rank-0 right operand).
    Mul(Value, Value),
    /// `transformer.scale`: multiplication by a constant.
    Scale(Value, f32),
    /// `transformer.attention`: `softmax(q k^T * scale + mask) v`; the scale is a rank-0 tensor.
    Attention {
        /// Queries `[.., Hq, Sq, D]`.
        q: Value,
        /// Keys `[.., Hkv, Sk, D]`.
        k: Value,
        /// Values `[.., Hkv, Sk, Dv]`.
        v: Value,
        /// The scale, resolved from the options (a constant, the default `1/sqrt(D)` filled in,
        /// or a run-time input).
        scale: Scale,
        /// The options as given.
        options: AttentionOptions,
    },
    /// The log-sum-exp of every query row of an attention (its second result, `[.., Hq, Sq]`
    /// in the compute type): `ln(sum_j e^{s_ij} (+ e^{sink}))`, `-inf` for a row without keys.
    Lse(Value),
}

#[derive(Clone, Debug)]
struct Node {
    op: Op,
    ty: TensorType,
}

/// A dataflow graph of `transformer` primitives with inferred types.
///
/// Every builder method checks shapes as far as they are static and returns a [`GraphError`] that
/// names the operation, the operands and their types.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    /// The score/mask mods of its attentions ([`Graph::mods`]).
    mods: Vec<Mods>,
}

const MAX_RANK: usize = 8;

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kernel argument. Arguments appear in the kernel's signature in the order added.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Value {
        self.push(
            Op::Input {
                name: name.to_string(),
            },
            ty,
        )
    }

    /// The inferred type of `v`.
    pub fn ty(&self, v: Value) -> &TensorType {
        &self.nodes[v.0].ty
    }

    /// The operation that defines `v`.
    pub fn op(&self, v: Value) -> &Op {
        &self.nodes[v.0].op
    }

    /// The graph inputs, in signature order.
    pub fn inputs(&self) -> Vec<Value> {
        (0..self.nodes.len())
            .filter(|&i| matches!(self.nodes[i].op, Op::Input { .. }))
            .map(Value)
            .collect()
    }

    /// The name of an input value (`None` for computed values).
    pub fn input_name(&self, v: Value) -> Option<&str> {
        match &self.nodes[v.0].op {
            Op::Input { name } => Some(name),
            _ => None,
        }
    }

    fn push(&mut self, op: Op, ty: TensorType) -> Value {
        self.nodes.push(Node { op, ty });
        Value(self.nodes.len() - 1)
    }

    fn check(&self, v: Value, op: &'static str) -> Result<&TensorType, GraphError> {
        self.nodes
            .get(v.0)
            .map(|n| &n.ty)
            .ok_or_else(|| GraphError {
                op,
                message: format!("value #{} does not belong to this graph", v.0),
            })
    }

    fn describe(&self, v: Value) -> String {
        match &self.nodes[v.0].op {
            Op::Input { name } => format!("{name}: {}", self.nodes[v.0].ty),
            _ => format!("{}", self.nodes[v.0].ty),
        }
    }

    fn err(op: &'static str, message: String) -> GraphError {
        GraphError { op, message }
    }

    fn same_element(&self, op: &'static str, a: Value, b: Value) -> Result<(), GraphError> {
        if self.ty(a).element != self.ty(b).element {
            return Err(Self::err(
                op,
                format!(
                    "element types differ: {} and {}",
                    self.describe(a),
                    self.describe(b)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
