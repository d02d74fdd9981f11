//! Score and mask mods in the graph ([`Graph::mods`], [`AttentionOptions::mods`]) and their IR:
//! each mod is a private function of the kernel's module in the `arith`/`math`/`tensor`
//! dialects, `(s, b, h, i, j, inputs..) -> f32` for a score mod and `(b, h, i, j, inputs..) ->
//! i1` for a mask mod, named by the attention op's `score_mod` / `mask_mod` symbol attributes
//! and taking the op's `mod_inputs` operands. The lowering reads these bodies back
//! (`lower::mods`), checks them again and fuses them into the attention kernel.
//!
//! [`AttentionOptions::mods`]: super::AttentionOptions::mods

use super::{Dim, Graph, TensorType, Value};
use crate::error::GraphError;
use attn_runtime::DType;
use attn_runtime::mods::{
    self, BinOp, Dims, Expr, Func, InputInfo, Kind, ModKind, ModPair, Type, Var,
};
use attn_runtime::shape::Extent;
use std::fmt::Write as _;

/// The score and mask mods of an attention: expressions (see [`attn_runtime::mods`]) and the
/// graph values they read.
#[derive(Clone, Debug, PartialEq)]
pub struct Mods {
    /// The expressions (at least one).
    pub pair: ModPair,
    /// The tensors the expressions read (static shapes, f32 or i32): a read of input `n` reads
    /// `inputs[n]`.
    pub inputs: Vec<Value>,
}

/// A handle on mods registered in a graph by [`Graph::mods`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModsRef(pub(super) usize);

impl Graph {
    /// Registers score/mask mods, for [`AttentionOptions::mods`](super::AttentionOptions::mods);
    /// they are checked against the attention that uses them.
    pub fn mods(&mut self, mods: Mods) -> ModsRef {
        self.mods.push(mods);
        ModsRef(self.mods.len() - 1)
    }

    /// The mods behind `r`.
    pub fn mods_of(&self, r: ModsRef) -> Option<&Mods> {
        self.mods.get(r.0)
    }

    /// Checks the mods `r` of an attention of `dims` (static batch, heads and sequences needed):
    /// types, and indices in bounds for every `(b, h, i, j)` in range.
    pub(super) fn check_mods(
        &self,
        r: ModsRef,
        dims: &attn_runtime::shape::AttentionDims<Dim>,
    ) -> Result<(), GraphError> {
        const OP: &str = "attention";
        let m = self
            .mods_of(r)
            .ok_or_else(|| Self::err(OP, "the mods do not belong to this graph".into()))?;
        if m.pair.score.is_none() && m.pair.mask.is_none() {
            return Err(Self::err(OP, "mods without a score_mod or mask_mod".into()));
        }
        if m.inputs.len() > super::MOD_INPUTS {
            return Err(Self::err(
                OP,
                format!(
                    "the mods read {} inputs; at most {} are supported",
                    m.inputs.len(),
                    super::MOD_INPUTS
                ),
            ));
        }
        let size = |d: Dim| d.size();
        let (Some(b), Some(h), Some(sq), Some(sk)) =
            (size(dims.b), size(dims.hq), size(dims.sq), size(dims.sk))
        else {
            return Err(Self::err(
                OP,
                "score/mask mods need static batch, head and sequence dims (their indices are \
                 checked against them)"
                    .into(),
            ));
        };
        let mut infos = Vec::new();
        for (n, v) in m.inputs.iter().enumerate() {
            let t = self.check(*v, OP)?;
            let shape: Option<Vec<usize>> = t.dims.iter().map(|d| d.size()).collect();
            let ok = matches!(t.element, DType::F32 | DType::I32) && t.rank() >= 1;
            let Some(shape) = shape.filter(|_| ok) else {
                return Err(Self::err(
                    OP,
                    format!(
                        "input #{n} of the mods must be an f32 or i32 tensor of static shape and \
                         rank 1 or more, got {}",
                        self.describe(*v)
                    ),
                ));
            };
            infos.push(InputInfo {
                name: self.input_name(*v).unwrap_or("input").to_string(),
                shape,
                int: t.element == DType::I32,
            });
        }
        let d = Dims { b, h, sq, sk };
        for (kind, e) in m.pair.each() {
            mods::check(e, kind, &d, &infos)
                .map_err(|e| Self::err(OP, format!("{}: {e}", kind.name())))?;
        }
        Ok(())
    }
}

/// The IR of one mod: a private function `@name` of the variables of `kind` (`i64`, the score
/// in `ct`) and the inputs `inputs` (tensor types), returning `i1` or `ct`.
pub(super) fn function_text(
    name: &str,
    kind: ModKind,
    e: &Expr,
    inputs: &[TensorType],
    ct: DType,
) -> String {
    let ct = ct.name();
    let mut params: Vec<String> = Var::params(kind)
        .iter()
        .map(|v| match v {
            Var::Score => format!("%{}: {ct}", v.name()),
            _ => format!("%{}: i64", v.name()),
        })
        .collect();
    for (n, t) in inputs.iter().enumerate() {
        params.push(format!("%in{n}: {t}"));
    }
    let mut w = Writer {
        body: String::new(),
        next: 0,
        ct,
        inputs,
    };
    let (r, _) = w.expr(e);
    let ret = match kind {
        ModKind::Score => ct,
        ModKind::Mask => "i1",
    };
    format!(
        "  func.func private @{name}({}) -> {ret} {{\n{}    return {r} : {ret}\n  }}\n",
        params.join(", "),
        w.body
    )
}

/// Writes the ops of an expression, one SSA value per node.
struct Writer<'a> {
    body: String,
    next: usize,
    ct: &'a str,
    inputs: &'a [TensorType],
}

impl Writer<'_> {
    fn op(&mut self, rhs: String) -> String {
        self.next += 1;
        let name = format!("%x{}", self.next);
        let _ = writeln!(self.body, "    {name} = {rhs}");
        name
    }

    fn ty(&self, t: Type) -> &str {
        match t {
            Type::Int => "i64",
            Type::Float => self.ct,
            Type::Bool => "i1",
        }
    }

    /// The value of `e` and its type.
    fn expr(&mut self, e: &Expr) -> (String, Type) {
        match &e.kind {
            Kind::Var(v) => (
                format!("%{}", v.name()),
                if *v == Var::Score {
                    Type::Float
                } else {
                    Type::Int
                },
            ),
            Kind::Int(x) => (self.op(format!("arith.constant {x} : i64")), Type::Int),
            Kind::Float(x) => {
                let lit = super::float_literal_f64(*x);
                (
                    self.op(format!("arith.constant {lit} : {}", self.ct)),
                    Type::Float,
                )
            }
            Kind::Bool(b) => (self.op(format!("arith.constant {b}")), Type::Bool),
            Kind::Read { input, index } => {
                let idx: Vec<String> = index
                    .iter()
                    .map(|x| {
                        let (v, _) = self.expr(x);
                        self.op(format!("arith.index_cast {v} : i64 to index"))
                    })
                    .collect();
                let t = self.inputs.get(*input).cloned().unwrap_or_else(|| {
                    TensorType::new(DType::F32, &vec![Dim::Static(1); index.len()])
                });
                let x = self.op(format!(
                    "tensor.extract %in{input}[{}] : {t}",
                    idx.join(", ")
                ));
                if t.element == DType::I32 {
                    (self.op(format!("arith.extsi {x} : i32 to i64")), Type::Int)
                } else if self.ct != "f32" {
                    let ct = self.ct;
                    (
                        self.op(format!("arith.extf {x} : f32 to {ct}")),
                        Type::Float,
                    )
                } else {
                    (x, Type::Float)
                }
            }
            Kind::Neg(x) => {
                let (v, t) = self.expr(x);
                let ty = self.ty(t).to_string();
                if t == Type::Int {
                    let z = self.op("arith.constant 0 : i64".into());
                    (self.op(format!("arith.subi {z}, {v} : i64")), t)
                } else {
                    (self.op(format!("arith.negf {v} : {ty}")), t)
                }
            }
            Kind::Not(x) => {
                let (v, _) = self.expr(x);
                let t = self.op("arith.constant true".into());
                (self.op(format!("arith.xori {v}, {t} : i1")), Type::Bool)
            }
            Kind::Binary(op, a, b) => {
                let (va, ta) = self.expr(a);
                let (vb, _) = self.expr(b);
                let ty = self.ty(ta).to_string();
                let float = ta == Type::Float;
                let (name, out) = match op {
                    BinOp::Add => (if float { "addf" } else { "addi" }, ta),
                    BinOp::Sub => (if float { "subf" } else { "subi" }, ta),
                    BinOp::Mul => (if float { "mulf" } else { "muli" }, ta),
                    BinOp::Div => (if float { "divf" } else { "divsi" }, ta),
                    BinOp::Rem => (if float { "remf" } else { "remsi" }, ta),
                    BinOp::And => ("andi", Type::Bool),
                    BinOp::Or => ("ori", Type::Bool),
                    cmp => {
                        let (p, op) = predicate(*cmp, float);
                        return (
                            self.op(format!("arith.{op} {p}, {va}, {vb} : {ty}")),
                            Type::Bool,
                        );
                    }
                };
                (self.op(format!("arith.{name} {va}, {vb} : {ty}")), out)
            }
            Kind::If(c, a, b) => {
                let (vc, _) = self.expr(c);
                let (va, t) = self.expr(a);
                let (vb, _) = self.expr(b);
                let ty = self.ty(t).to_string();
                (self.op(format!("arith.select {vc}, {va}, {vb} : {ty}")), t)
            }
            Kind::Call(f, args) => {
                let vals: Vec<(String, Type)> = args.iter().map(|a| self.expr(a)).collect();
                let t = vals.first().map_or(Type::Float, |v| v.1);
                let ty = self.ty(t).to_string();
                let float = t == Type::Float;
                let name = match f {
                    Func::Min if float => "arith.minnumf",
                    Func::Min => "arith.minsi",
                    Func::Max if float => "arith.maxnumf",
                    Func::Max => "arith.maxsi",
                    Func::Abs if float => "math.absf",
                    Func::Abs => "math.absi",
                    Func::Exp => "math.exp",
                    Func::Tanh => "math.tanh",
                    Func::Sqrt => "math.sqrt",
                };
                let list = vals
                    .iter()
                    .map(|v| v.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                (self.op(format!("{name} {list} : {ty}")), t)
            }
            Kind::Cast(x, to) => {
                let (v, from) = self.expr(x);
                let ct = self.ct;
                match (from, to) {
                    (Type::Int, Type::Float) => (
                        self.op(format!("arith.sitofp {v} : i64 to {ct}")),
                        Type::Float,
                    ),
                    (Type::Float, Type::Int) => (
                        self.op(format!("arith.fptosi {v} : {ct} to i64")),
                        Type::Int,
                    ),
                    (Type::Bool, Type::Int) => {
                        (self.op(format!("arith.extui {v} : i1 to i64")), Type::Int)
                    }
                    _ => (v, from),
                }
            }
        }
    }
}

/// The `arith.cmpi` / `arith.cmpf` predicate and op of a comparison.
fn predicate(op: BinOp, float: bool) -> (&'static str, &'static str) {
    let (i, f) = match op {
        BinOp::Eq => ("eq", "oeq"),
        BinOp::Ne => ("ne", "une"),
        BinOp::Lt => ("slt", "olt"),
        BinOp::Le => ("sle", "ole"),
        BinOp::Gt => ("sgt", "ogt"),
        _ => ("sge", "oge"),
    };
    if float { (f, "cmpf") } else { (i, "cmpi") }
}
