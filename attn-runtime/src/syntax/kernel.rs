//! Checked kernels: shapes and element types of every value, canonical specs and symbols.

use super::{ABI_VERSION, float_repr, fnv1a};
use crate::DType;
use crate::options::AttentionOptions;
use std::fmt::Write as _;

/// A checked kernel: static shapes and element types inferred for every value.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Its name.
    pub name: String,
    /// The declared element type (`#[attn(dtype = ..)]`, default f32): that of every input,
    /// computed value and the output, except attention masks, which are f32.
    pub dtype: DType,
    /// Its inputs, in signature order.
    pub inputs: Vec<Input>,
    /// The computed values, in evaluation order (operands come first).
    pub nodes: Vec<Node>,
    /// The value written to the output.
    pub output: Value,
}

/// A kernel input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type: the kernel's, or f32 for an attention mask.
    pub dtype: DType,
}

/// A value of a kernel: an input or a computed node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// `inputs[i]`.
    Input(usize),
    /// `nodes[i]`.
    Node(usize),
}

/// A computed value.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The primitive.
    pub op: Op,
    /// Its inferred shape.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: DType,
}

/// The primitives.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// `[M, K] x [K, N]`, or batched `[B, M, K] x [B, K, N]`.
    Matmul(Value, Value),
    /// Swaps the last two dims.
    Transpose(Value),
    /// Softmax over the last dim.
    Softmax(Value),
    /// Multiplication by a constant.
    Scale(Value, f32),
    /// Elementwise sum of same-shaped operands.
    Add(Value, Value),
    /// Elementwise product of same-shaped operands.
    Mul(Value, Value),
    /// `softmax(q k^T * scale + mask) v` with every option: causal, window, softcap, sinks,
    /// ALiBi.
    Attention {
        /// Queries `[.., Hq, Sq, D]`.
        q: Value,
        /// Keys `[.., Hkv, Sk, D]` (`Hq % Hkv == 0`: grouped-query attention).
        k: Value,
        /// Values `[.., Hkv, Sk, Dv]`.
        v: Value,
        /// An additive f32 mask: `[Sq, Sk]`, or of q's rank with each leading dim 1 or q's
        /// ([`MaskRule::Compiled`](crate::shape::MaskRule::Compiled)).
        mask: Option<Value>,
        /// Attention-sink logits, f32 `[Hq]` (one per query head; `[Sq]` at rank 2).
        sinks: Option<Value>,
        /// ALiBi slopes, f32 `[Hq]` (one per query head; `[Sq]` at rank 2).
        alibi: Option<Value>,
        /// The options, resolved: the call's named arguments over the kernel's `#[attn(..)]`.
        /// `scale` is always `Some`: the explicit scale, else `1/sqrt(D)` rounded to f32 (every
        /// scale of a kernel spec is an f32 value, see [`Kernel::canonical`]).
        options: AttentionOptions,
        /// The score and mask mods (`score_mod = |s, b, h, i, j| ..`, `mask_mod = ..`).
        mods: Option<Box<AttentionMods>>,
    },
}

/// The score and mask mods of an attention, checked (see [`crate::mods`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionMods {
    /// The kernel inputs the mods read, in order of first use: a read of input `n` in an
    /// expression reads `inputs[n]` (f32, or i32 when declared `as i32`).
    pub inputs: Vec<Value>,
    /// The expressions.
    pub mods: crate::mods::ModPair,
}

impl Kernel {
    /// The shape of `v`.
    pub fn shape(&self, v: Value) -> &[usize] {
        match v {
            Value::Input(i) => &self.inputs[i].shape,
            Value::Node(i) => &self.nodes[i].shape,
        }
    }

    /// The element type of `v`.
    pub fn dtype_of(&self, v: Value) -> DType {
        match v {
            Value::Input(i) => self.inputs[i].dtype,
            Value::Node(i) => self.nodes[i].dtype,
        }
    }

    /// The output shape.
    pub fn output_shape(&self) -> &[usize] {
        self.shape(self.output)
    }

    /// The output's element type (always the kernel's [`dtype`](Kernel::dtype)).
    pub fn output_dtype(&self) -> DType {
        self.dtype_of(self.output)
    }

    fn value_name(&self, v: Value) -> String {
        match v {
            Value::Input(i) => format!("%{i}"),
            Value::Node(i) => format!("%{}", i + self.inputs.len()),
        }
    }

    /// The canonical spec: every input and the output with its element type and shape, and every
    /// node with its operands and constants (attention: the scale, the window, the softcap, the
    /// mask, sinks and ALiBi operands, `causal`),
    /// independent of formatting, comments, docs, visibility and `let` names. `kv_heads` is an
    /// assertion about k's shape, which the spec already holds.
    /// Example: `scores(q:f32[64,32],k:f32[64,32])->f32[64,64]{%2=transpose(%1);%3=matmul(%0,%2);return %3}`,
    /// `gqa(q:bf16[1,4,8,16],k:bf16[1,2,8,16],v:bf16[1,2,8,16],mask:f32[8,8])->bf16[1,4,8,16]{%4=attention(%0,%1,%2,scale=2.5e-1,mask=%3,causal);return %4}`.
    pub fn canonical(&self) -> String {
        let dims = |s: &[usize]| s.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let mut s = format!("{}(", self.name);
        for (i, input) in self.inputs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{}:{}[{}]",
                input.name,
                input.dtype.name(),
                dims(&input.shape)
            );
        }
        let _ = write!(
            s,
            ")->{}[{}]{{",
            self.output_dtype().name(),
            dims(self.output_shape())
        );
        for (i, node) in self.nodes.iter().enumerate() {
            let n = |v: Value| self.value_name(v);
            let op = match &node.op {
                Op::Matmul(a, b) => format!("matmul({},{})", n(*a), n(*b)),
                Op::Transpose(a) => format!("transpose({})", n(*a)),
                Op::Softmax(a) => format!("softmax({})", n(*a)),
                Op::Scale(a, f) => format!("scale({},{})", n(*a), float_repr(*f)),
                Op::Add(a, b) => format!("add({},{})", n(*a), n(*b)),
                Op::Mul(a, b) => format!("mul({},{})", n(*a), n(*b)),
                Op::Attention {
                    q,
                    k,
                    v,
                    mask,
                    sinks,
                    alibi,
                    options,
                    mods,
                } => {
                    let AttentionOptions {
                        causal,
                        scale,
                        window,
                        softcap,
                    } = options;
                    let mut a = format!("attention({},{},{}", n(*q), n(*k), n(*v));
                    if let Some(scale) = scale {
                        let _ = write!(a, ",scale={}", float_repr(*scale as f32));
                    }
                    if let Some((l, r)) = window {
                        let _ = write!(a, ",window=({l},{r})");
                    }
                    if let Some(c) = softcap {
                        let _ = write!(a, ",softcap={}", float_repr(*c));
                    }
                    if let Some(m) = mask {
                        let _ = write!(a, ",mask={}", n(*m));
                    }
                    if let Some(x) = sinks {
                        let _ = write!(a, ",sinks={}", n(*x));
                    }
                    if let Some(x) = alibi {
                        let _ = write!(a, ",alibi={}", n(*x));
                    }
                    if *causal {
                        a.push_str(",causal");
                    }
                    if let Some(m) = mods {
                        let input = |k: usize| m.inputs.get(k).map_or("?".into(), |v| n(*v));
                        let _ = write!(a, ",{}", m.mods.canonical(&input));
                    }
                    a.push(')');
                    a
                }
            };
            let _ = write!(s, "{}={op};", self.value_name(Value::Node(i)));
        }
        let _ = write!(s, "return {}}}", self.value_name(self.output));
        s
    }

    /// The C symbol of the kernel's entry point (without MLIR's `_mlir_ciface_` prefix):
    /// `attn_<name>_<hash>`, the hash covering the canonical spec, the ABI version and the version
    /// of this crate, so a caller and a build that disagree on any of them fail to link.
    pub fn symbol(&self) -> String {
        let h = fnv1a(&[&self.canonical(), ABI_VERSION, env!("CARGO_PKG_VERSION")]);
        format!("attn_{}_{h:016x}", self.name)
    }
}
