//! A typed emitter of MLIR text for the generated kernels (flash attention, the decode path,
//! matmul, softmax).
//!
//! Values are [`Val`]s, which carry their [`Ty`]; ops infer their spelling from their operands
//! (`e.add(&a, &b)` is `arith.addf` on floats and `arith.addi` on integers, with the right
//! `: type` suffix), so a generator reads like the algorithm it emits. A function is built with
//! [`function`]: its header, body and return are written once; constants are emitted once each,
//! at the top of the function (so they dominate every use and need no care about scopes).
//! Loops and conditionals are structured helpers ([`control`]); the math the kernels share
//! (exponentials, row maxima and sums, transposing reductions) is in [`math`].
//!
//! The text is parsed and verified by MLIR (`Module::parse`), so a type error in a generator
//! shows up as a parse error naming the line, and the snapshot tests (`tests/snapshots.rs`)
//! show every change of the generated code in review.

mod arith;
mod control;
pub mod math;
mod memory;
mod ty;

pub use arith::Cmp;
pub use control::LoopKind;
pub use memory::Metadata;
pub use ty::{Layout, Scalar, Shape, Ty};

use std::collections::HashMap;
use std::fmt::{self, Display, Write as _};

/// An SSA value and its type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Val {
    name: String,
    ty: Ty,
}

impl Val {
    /// A value named `name` (with its `%`) of type `ty`: a function argument or a result.
    pub fn new(name: impl Into<String>, ty: Ty) -> Val {
        Val {
            name: name.into(),
            ty,
        }
    }

    /// The value's type.
    pub fn ty(&self) -> &Ty {
        &self.ty
    }

    /// The SSA name (`%t12`, `%q`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Builds the body of one function: ops are appended at the current nesting level; constants
/// go to the top of the function.
pub struct Emitter {
    body: String,
    consts: String,
    known: HashMap<(String, Ty), Val>,
    next: usize,
    depth: usize,
}

impl Emitter {
    fn new() -> Emitter {
        Emitter {
            body: String::new(),
            consts: String::new(),
            known: HashMap::new(),
            next: 0,
            depth: 2,
        }
    }

    /// A fresh SSA name.
    pub(crate) fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%t{}", self.next)
    }

    /// Appends one line of text at the current nesting level.
    pub(crate) fn line(&mut self, text: impl Display) {
        for _ in 0..self.depth {
            self.body.push_str("  ");
        }
        let _ = writeln!(self.body, "{text}");
    }

    /// Emits `%tN = rhs` and returns `%tN` of type `ty`.
    pub fn op(&mut self, ty: Ty, rhs: impl Display) -> Val {
        let name = self.fresh();
        self.line(format_args!("{name} = {rhs}"));
        Val::new(name, ty)
    }

    /// Emits an op with `n` results (`%tN:n = rhs`), returning them (`%tN#i`) with `tys`.
    pub fn ops(&mut self, tys: &[Ty], rhs: impl Display) -> Vec<Val> {
        let name = self.fresh();
        match tys.len() {
            0 => {
                self.line(rhs);
                Vec::new()
            }
            1 => {
                self.line(format_args!("{name} = {rhs}"));
                vec![Val::new(name, tys[0].clone())]
            }
            n => {
                self.line(format_args!("{name}:{n} = {rhs}"));
                tys.iter()
                    .enumerate()
                    .map(|(i, t)| Val::new(format!("{name}#{i}"), t.clone()))
                    .collect()
            }
        }
    }

    /// An op without results.
    pub fn stmt(&mut self, text: impl Display) {
        self.line(text);
    }

    /// An `LLVM-MCA-BEGIN`/`END` region marker (an assembly comment with side effects, so that it
    /// stays in place) for `llvm-mca`'s per-region analysis, when `on`.
    pub fn mca_marker(&mut self, on: bool, begin: bool, region: &str) {
        if on {
            let what = if begin { "BEGIN" } else { "END" };
            self.stmt(format_args!(
                "llvm.inline_asm has_side_effects \"# LLVM-MCA-{what} {region}\", \"\" : () -> ()"
            ));
        }
    }

    /// A constant, emitted once per function at its top: `arith.constant {literal} : {ty}`
    /// (or `rhs` verbatim when `literal` starts with an op name).
    pub(crate) fn constant(&mut self, rhs: String, ty: Ty) -> Val {
        let key = (rhs, ty);
        if let Some(v) = self.known.get(&key) {
            return v.clone();
        }
        let name = self.fresh();
        let _ = writeln!(self.consts, "    {name} = {}", key.0);
        let v = Val::new(name, key.1.clone());
        self.known.insert(key, v.clone());
        v
    }

    /// The `index` constant `i`.
    pub fn idx(&mut self, i: usize) -> Val {
        self.constant(format!("arith.constant {i} : index"), Ty::INDEX)
    }

    /// An integer constant (scalar or splat vector) of type `ty`.
    pub fn int(&mut self, x: i64, ty: &Ty) -> Val {
        let rhs = if ty.is_vector() {
            format!("arith.constant dense<{x}> : {ty}")
        } else {
            format!("arith.constant {x} : {ty}")
        };
        self.constant(rhs, ty.clone())
    }

    /// A vector constant with the given lanes (`vector<n x i32>`, ...).
    pub fn lanes(&mut self, xs: &[i64], ty: &Ty) -> Val {
        let list = xs.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        self.constant(format!("arith.constant dense<[{list}]> : {ty}"), ty.clone())
    }

    /// A float constant (scalar or splat vector) of type `ty`; infinities included.
    pub fn float(&mut self, x: f64, ty: &Ty) -> Val {
        let elem = ty.elem();
        if x.is_infinite() {
            let bits = match (elem, x > 0.0) {
                (Scalar::F64, true) => "0x7FF0000000000000",
                (Scalar::F64, false) => "0xFFF0000000000000",
                (_, true) => "0x7F800000",
                (_, false) => "0xFF800000",
            };
            let s = self.constant(format!("arith.constant {bits} : {elem}"), elem.into());
            if !ty.is_vector() {
                return s;
            }
            return self.constant(format!("vector.broadcast {s} : {elem} to {ty}"), ty.clone());
        }
        let rhs = if ty.is_vector() {
            format!("arith.constant dense<{}> : {ty}", float_literal(x))
        } else {
            format!("arith.constant {} : {ty}", float_literal(x))
        };
        self.constant(rhs, ty.clone())
    }
}

/// An f64 printed so that MLIR parses it back as the same float literal.
pub fn float_literal(x: f64) -> String {
    let s = format!("{x:e}");
    match s.split_once('e') {
        Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
        _ => s,
    }
}

/// The text of a private function `@name(args) -> result`: `body` gets the arguments (named
/// `%{name}` as given) and returns the value to return.
pub fn function(
    name: &str,
    args: &[(&str, Ty)],
    result: &Ty,
    body: impl FnOnce(&mut Emitter, &[Val]) -> Val,
) -> String {
    function_n(name, args, std::slice::from_ref(result), |e, a| {
        vec![body(e, a)]
    })
}

/// [`function`] with any number of results.
pub fn function_n(
    name: &str,
    args: &[(&str, Ty)],
    results: &[Ty],
    body: impl FnOnce(&mut Emitter, &[Val]) -> Vec<Val>,
) -> String {
    let mut e = Emitter::new();
    let vals: Vec<Val> = args
        .iter()
        .map(|(n, t)| Val::new(format!("%{n}"), t.clone()))
        .collect();
    let rets = body(&mut e, &vals);
    debug_assert_eq!(rets.len(), results.len());
    let params = vals
        .iter()
        .map(|v| format!("{v}: {}", v.ty()))
        .collect::<Vec<_>>()
        .join(", ");
    let tys = results
        .iter()
        .map(Ty::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let names = rets
        .iter()
        .map(|v| v.name().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = String::new();
    let _ = writeln!(s, "  func.func private @{name}({params}) -> ({tys}) {{");
    s.push_str(&e.consts);
    s.push_str(&e.body);
    let _ = writeln!(s, "    return {names} : {tys}\n  }}");
    s
}

/// A module of function texts.
pub fn module(functions: impl IntoIterator<Item = String>) -> String {
    let mut s = String::from("module {\n");
    for f in functions {
        s.push_str(&f);
    }
    s.push_str("}\n");
    s
}
