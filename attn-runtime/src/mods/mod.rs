//! User score and mask mods: small pure expressions over a score's indices, fused into the
//! attention kernel ahead of time. Shared by the `attention!` grammar (which parses them from
//! closures, see [`crate::syntax`]), the compiler's graph and lowering (which check them again
//! and generate vector code from them) and tests.
//!
//! ```text
//! mask_mod  = |b, h, i, j| <bool expr>      // keep key j for query i of batch b, query head h
//! score_mod = |s, b, h, i, j| <float expr>  // the score after scaling (and softcap), before masks
//! ```
//!
//! - Index variables are integers with `i64` semantics; `i` and `j` are the row and column of
//!   the score (not bottom-right positions: write `i + Sk - Sq` when wanted); `b` and `h` are the
//!   batch and the query head (0 when q has no such dim). `s` is a float.
//! - Expressions: integer and float literals, `+ - * / %` (integer `/` and `%` truncate as in
//!   Rust; `%` is for integers only), `== != < <= > >=`, `&& || !`, `if c { a } else { b }`,
//!   `min`, `max`, `abs`, `exp`, `tanh`, `sqrt`, conversions `as f32` / `as f64` / `as i64`
//!   (float to integer saturates, NaN gives 0, as in Rust), and reads of inputs indexed by
//!   integer expressions (`doc[i]`, `bias[h][j - i + 63]`; f32 inputs give floats, i32 inputs
//!   integers). Mixing integers and floats without `as` is a type error.
//! - Everything is evaluated (both branches of an `if`, both sides of `&&`), so every index must
//!   stay in bounds and every divisor must be nonzero for every `(b, h, i, j)` in range: the
//!   checker ([`check`]) proves it by interval arithmetic over the static ranges, and rejects
//!   what it cannot prove. Values read from inputs have unknown ranges: bound them with `min` and
//!   `max` before using them as indices.
//! - Floats are computed in the kernel's compute type (f32, or f64 for f64 kernels).

mod check;
mod eval;

pub use check::{Dims, Facts, InputInfo, ModError, Range, analyze, check};
pub use eval::{Scalar, eval};

use std::fmt::{self, Write as _};

/// A variable of a mod: the score or one of its indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Var {
    /// `s`: the score (score mods only).
    Score,
    /// `b`: the batch.
    Batch,
    /// `h`: the query head.
    Head,
    /// `i`: the query row.
    Row,
    /// `j`: the key.
    Col,
}

impl Var {
    /// The canonical name (`s`, `b`, `h`, `i`, `j`).
    pub fn name(self) -> &'static str {
        match self {
            Var::Score => "s",
            Var::Batch => "b",
            Var::Head => "h",
            Var::Row => "i",
            Var::Col => "j",
        }
    }

    /// The parameters of a mod of `kind`, in order.
    pub fn params(kind: ModKind) -> &'static [Var] {
        match kind {
            ModKind::Score => &[Var::Score, Var::Batch, Var::Head, Var::Row, Var::Col],
            ModKind::Mask => &[Var::Batch, Var::Head, Var::Row, Var::Col],
        }
    }
}

/// Which mod an expression is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModKind {
    /// `score_mod = |s, b, h, i, j| <float>`.
    Score,
    /// `mask_mod = |b, h, i, j| <bool>`.
    Mask,
}

impl ModKind {
    /// `score_mod` or `mask_mod`.
    pub fn name(self) -> &'static str {
        match self {
            ModKind::Score => "score_mod",
            ModKind::Mask => "mask_mod",
        }
    }

    /// The type of the mod's result.
    pub fn result(self) -> Type {
        match self {
            ModKind::Score => Type::Float,
            ModKind::Mask => Type::Bool,
        }
    }
}

/// The types of mod expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// Integers (`i64` semantics).
    Int,
    /// Floats (the kernel's compute type).
    Float,
    /// Booleans.
    Bool,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Int => "an integer",
            Type::Float => "a float",
            Type::Bool => "a bool",
        })
    }
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/` (integers: truncating).
    Div,
    /// `%` (integers only: the sign of the dividend).
    Rem,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `&&`.
    And,
    /// `||`.
    Or,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }

    /// Whether this is a comparison (`== != < <= > >=`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }
}

/// A built-in function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    /// `min(a, b)` (integers or floats).
    Min,
    /// `max(a, b)`.
    Max,
    /// `abs(x)`.
    Abs,
    /// `exp(x)` (floats).
    Exp,
    /// `tanh(x)` (floats).
    Tanh,
    /// `sqrt(x)` (floats).
    Sqrt,
}

impl Func {
    /// Every function, as written.
    pub const ALL: [(&'static str, Func); 6] = [
        ("min", Func::Min),
        ("max", Func::Max),
        ("abs", Func::Abs),
        ("exp", Func::Exp),
        ("tanh", Func::Tanh),
        ("sqrt", Func::Sqrt),
    ];

    /// The function's name.
    pub fn name(self) -> &'static str {
        Func::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// The number of arguments.
    pub fn arity(self) -> usize {
        match self {
            Func::Min | Func::Max => 2,
            _ => 1,
        }
    }
}

/// A node of a mod expression. `id` identifies it for error messages (the parser keeps the
/// source span of each id).
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// The node's id.
    pub id: u32,
    /// What it computes.
    pub kind: Kind,
}

/// What a node computes.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A variable.
    Var(Var),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A bool literal.
    Bool(bool),
    /// `input[index]..`: input number `input` of the mods' inputs (which each layer holds next
    /// to the expressions), one index per dim.
    Read {
        /// The input.
        input: usize,
        /// One integer index per dim.
        index: Vec<Expr>,
    },
    /// `-x`.
    Neg(Box<Expr>),
    /// `!x`.
    Not(Box<Expr>),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `if c { a } else { b }`.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `f(args)`.
    Call(Func, Vec<Expr>),
    /// `x as <ty>` (to [`Type::Int`] or [`Type::Float`]).
    Cast(Box<Expr>, Type),
}

impl Expr {
    /// A node.
    pub fn new(id: u32, kind: Kind) -> Expr {
        Expr { id, kind }
    }

    /// The direct operands.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            Kind::Var(_) | Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => Vec::new(),
            Kind::Read { index, .. } => index.iter().collect(),
            Kind::Neg(x) | Kind::Not(x) | Kind::Cast(x, _) => vec![x],
            Kind::Binary(_, a, b) => vec![a, b],
            Kind::If(c, a, b) => vec![c, a, b],
            Kind::Call(_, args) => args.iter().collect(),
        }
    }

    /// Whether `f` holds for this node or any node below it.
    pub fn any(&self, f: &dyn Fn(&Expr) -> bool) -> bool {
        f(self) || self.children().into_iter().any(|c| c.any(f))
    }

    /// Whether the expression reads variable `v`.
    pub fn uses(&self, v: Var) -> bool {
        self.any(&|e| e.kind == Kind::Var(v))
    }

    /// Whether the expression reads an input.
    pub fn reads_inputs(&self) -> bool {
        self.any(&|e| matches!(e.kind, Kind::Read { .. }))
    }

    /// The canonical text: fully parenthesized, variables by their canonical names, input `n`
    /// written as `input(n)`; equal for equal expressions whatever their ids.
    pub fn canonical(&self, input: &dyn Fn(usize) -> String) -> String {
        let mut s = String::new();
        self.write(&mut s, input);
        s
    }

    fn write(&self, s: &mut String, input: &dyn Fn(usize) -> String) {
        match &self.kind {
            Kind::Var(v) => s.push_str(v.name()),
            Kind::Int(x) => {
                let _ = write!(s, "{x}");
            }
            Kind::Float(x) => {
                let _ = write!(s, "{x:e}f");
            }
            Kind::Bool(b) => {
                let _ = write!(s, "{b}");
            }
            Kind::Read { input: n, index } => {
                s.push_str(&input(*n));
                for x in index {
                    s.push('[');
                    x.write(s, input);
                    s.push(']');
                }
            }
            Kind::Neg(x) => {
                s.push_str("(-");
                x.write(s, input);
                s.push(')');
            }
            Kind::Not(x) => {
                s.push_str("(!");
                x.write(s, input);
                s.push(')');
            }
            Kind::Binary(op, a, b) => {
                s.push('(');
                a.write(s, input);
                let _ = write!(s, "{}", op.symbol());
                b.write(s, input);
                s.push(')');
            }
            Kind::If(c, a, b) => {
                s.push_str("(if ");
                c.write(s, input);
                s.push('{');
                a.write(s, input);
                s.push_str("}else{");
                b.write(s, input);
                s.push_str("})");
            }
            Kind::Call(f, args) => {
                s.push_str(f.name());
                s.push('(');
                for (k, a) in args.iter().enumerate() {
                    if k > 0 {
                        s.push(',');
                    }
                    a.write(s, input);
                }
                s.push(')');
            }
            Kind::Cast(x, t) => {
                s.push('(');
                x.write(s, input);
                s.push_str(match t {
                    Type::Int => " as i64",
                    _ => " as f32",
                });
                s.push(')');
            }
        }
    }
}

/// The mods of one attention: a score mod, a mask mod, or both, over the same inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModPair {
    /// `|s, b, h, i, j| <float>`.
    pub score: Option<Expr>,
    /// `|b, h, i, j| <bool>`.
    pub mask: Option<Expr>,
}

impl ModPair {
    /// The mods present, with their kinds.
    pub fn each(&self) -> impl Iterator<Item = (ModKind, &Expr)> {
        [
            (ModKind::Score, self.score.as_ref()),
            (ModKind::Mask, self.mask.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, e)| e.map(|e| (k, e)))
    }

    /// `score_mod=..,mask_mod=..` for the mods present (canonical texts, inputs named by
    /// `input`).
    pub fn canonical(&self, input: &dyn Fn(usize) -> String) -> String {
        self.each()
            .map(|(k, e)| format!("{}={}", k.name(), e.canonical(input)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests;
