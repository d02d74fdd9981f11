//! Evaluation of mod expressions, integers in `i64` and floats in `f64`: what the compiler uses
//! to classify blocks of a mask, and a reference for tests.

use super::{BinOp, Expr, Func, Kind, Type, Var};

/// A value of a mod expression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A bool.
    Bool(bool),
}

impl Scalar {
    fn int(self) -> i64 {
        match self {
            Scalar::Int(x) => x,
            Scalar::Float(x) => x as i64,
            Scalar::Bool(b) => i64::from(b),
        }
    }

    fn float(self) -> f64 {
        match self {
            Scalar::Int(x) => x as f64,
            Scalar::Float(x) => x,
            Scalar::Bool(b) => f64::from(u8::from(b)),
        }
    }

    fn bool(self) -> bool {
        match self {
            Scalar::Bool(b) => b,
            Scalar::Int(x) => x != 0,
            Scalar::Float(x) => x != 0.0,
        }
    }
}

/// Evaluates `e` at score `s` and indices `[b, h, i, j]`; `read(input, index)` gives an
/// input's element (an [`Scalar::Int`] for i32 inputs, a [`Scalar::Float`] for f32 ones).
/// Integers wrap on overflow and a division by zero gives 0 (neither occurs in a checked mod).
pub fn eval(
    e: &Expr,
    s: f64,
    [b, h, i, j]: [i64; 4],
    read: &dyn Fn(usize, &[i64]) -> Scalar,
) -> Scalar {
    let ev = |x: &Expr| eval(x, s, [b, h, i, j], read);
    match &e.kind {
        Kind::Var(v) => match v {
            Var::Score => Scalar::Float(s),
            Var::Batch => Scalar::Int(b),
            Var::Head => Scalar::Int(h),
            Var::Row => Scalar::Int(i),
            Var::Col => Scalar::Int(j),
        },
        Kind::Int(x) => Scalar::Int(*x),
        Kind::Float(x) => Scalar::Float(*x),
        Kind::Bool(x) => Scalar::Bool(*x),
        Kind::Read { input, index } => {
            let idx: Vec<i64> = index.iter().map(|x| ev(x).int()).collect();
            read(*input, &idx)
        }
        Kind::Neg(x) => match ev(x) {
            Scalar::Int(v) => Scalar::Int(v.wrapping_neg()),
            v => Scalar::Float(-v.float()),
        },
        Kind::Not(x) => Scalar::Bool(!ev(x).bool()),
        Kind::Binary(op, a, c) => binary(*op, ev(a), ev(c)),
        Kind::If(c, a, d) => {
            if ev(c).bool() {
                ev(a)
            } else {
                ev(d)
            }
        }
        Kind::Call(f, args) => {
            let v: Vec<Scalar> = args.iter().map(ev).collect();
            let x = v.first().copied().unwrap_or(Scalar::Int(0));
            let y = v.get(1).copied().unwrap_or(x);
            match (f, x, y) {
                (Func::Min, Scalar::Int(p), Scalar::Int(q)) => Scalar::Int(p.min(q)),
                (Func::Max, Scalar::Int(p), Scalar::Int(q)) => Scalar::Int(p.max(q)),
                (Func::Min, p, q) => Scalar::Float(p.float().min(q.float())),
                (Func::Max, p, q) => Scalar::Float(p.float().max(q.float())),
                (Func::Abs, Scalar::Int(p), _) => Scalar::Int(p.wrapping_abs()),
                (Func::Abs, p, _) => Scalar::Float(p.float().abs()),
                (Func::Exp, p, _) => Scalar::Float(p.float().exp()),
                (Func::Tanh, p, _) => Scalar::Float(p.float().tanh()),
                (Func::Sqrt, p, _) => Scalar::Float(p.float().sqrt()),
            }
        }
        Kind::Cast(x, t) => {
            let v = ev(x);
            match t {
                Type::Int => Scalar::Int(v.int()),
                Type::Float => Scalar::Float(v.float()),
                Type::Bool => Scalar::Bool(v.bool()),
            }
        }
    }
}

fn binary(op: BinOp, a: Scalar, b: Scalar) -> Scalar {
    if let (Scalar::Int(x), Scalar::Int(y)) = (a, b) {
        return match op {
            BinOp::Add => Scalar::Int(x.wrapping_add(y)),
            BinOp::Sub => Scalar::Int(x.wrapping_sub(y)),
            BinOp::Mul => Scalar::Int(x.wrapping_mul(y)),
            BinOp::Div => Scalar::Int(x.checked_div(y).unwrap_or(0)),
            BinOp::Rem => Scalar::Int(x.checked_rem(y).unwrap_or(0)),
            BinOp::Eq => Scalar::Bool(x == y),
            BinOp::Ne => Scalar::Bool(x != y),
            BinOp::Lt => Scalar::Bool(x < y),
            BinOp::Le => Scalar::Bool(x <= y),
            BinOp::Gt => Scalar::Bool(x > y),
            BinOp::Ge => Scalar::Bool(x >= y),
            BinOp::And => Scalar::Bool(x != 0 && y != 0),
            BinOp::Or => Scalar::Bool(x != 0 || y != 0),
        };
    }
    if let (Scalar::Bool(x), Scalar::Bool(y)) = (a, b) {
        match op {
            BinOp::And => return Scalar::Bool(x && y),
            BinOp::Or => return Scalar::Bool(x || y),
            BinOp::Eq => return Scalar::Bool(x == y),
            BinOp::Ne => return Scalar::Bool(x != y),
            _ => {}
        }
    }
    let (x, y) = (a.float(), b.float());
    match op {
        BinOp::Add => Scalar::Float(x + y),
        BinOp::Sub => Scalar::Float(x - y),
        BinOp::Mul => Scalar::Float(x * y),
        BinOp::Div => Scalar::Float(x / y),
        BinOp::Rem => Scalar::Float(x % y),
        BinOp::Eq => Scalar::Bool(x == y),
        BinOp::Ne => Scalar::Bool(x != y),
        BinOp::Lt => Scalar::Bool(x < y),
        BinOp::Le => Scalar::Bool(x <= y),
        BinOp::Gt => Scalar::Bool(x > y),
        BinOp::Ge => Scalar::Bool(x >= y),
        BinOp::And => Scalar::Bool(a.bool() && b.bool()),
        BinOp::Or => Scalar::Bool(a.bool() || b.bool()),
    }
}
