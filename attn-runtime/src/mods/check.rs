//! Type and range inference of mod expressions: every node gets a [`Type`] and a [`Range`] (an
//! interval over the static ranges of the variables), which proves that indices stay in bounds,
//! divisors are nonzero and integers do not overflow `i64`, or reports the node where it cannot.

use super::{BinOp, Expr, Func, Kind, ModKind, Type, Var};
use std::fmt;

/// The static sizes the variables range over: `0 <= b < b`, `0 <= h < h`, `0 <= i < sq`,
/// `0 <= j < sk` (each at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    /// Batches (1 when q has no batch dim).
    pub b: usize,
    /// Query heads (1 when q has no head dim).
    pub h: usize,
    /// Query rows.
    pub sq: usize,
    /// Keys.
    pub sk: usize,
}

/// An input a mod may read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InputInfo {
    /// Its name, for messages.
    pub name: String,
    /// Its static shape.
    pub shape: Vec<usize>,
    /// Whether it holds `i32` integers (else `f32` floats).
    pub int: bool,
}

/// The values a node can take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// Integers in `[lo, hi]`.
    Int(i64, i64),
    /// Floats in `[lo, hi]` (infinities included) or NaN; `None`: no bound known.
    Float(Option<(f64, f64)>),
    /// A bool.
    Bool,
}

/// What the analysis knows about a node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Facts {
    /// Its type.
    pub ty: Type,
    /// Its values.
    pub range: Range,
}

/// A mod that is ill-typed or not provably safe: the message, at node `node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModError {
    /// The id of the offending node.
    pub node: u32,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ModError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ModError {}

/// Checks a whole mod of `kind`: [`analyze`], and that it returns what its kind returns.
pub fn check(
    e: &Expr,
    kind: ModKind,
    dims: &Dims,
    inputs: &[InputInfo],
) -> Result<Facts, ModError> {
    let f = analyze(e, kind, dims, inputs)?;
    if f.ty != kind.result() {
        let what = match kind {
            ModKind::Score => "the new score, a float",
            ModKind::Mask => "whether key `j` is visible to query `i`, a bool",
        };
        return Err(err(
            e,
            format!("a `{}` returns {what}; this is {}", kind.name(), f.ty),
        ));
    }
    Ok(f)
}

fn err(e: &Expr, message: String) -> ModError {
    ModError {
        node: e.id,
        message,
    }
}

/// The type and range of `e` in a mod of `kind` with variables over `dims` and inputs `inputs`;
/// an error at the first node that is ill-typed or not provably in range.
pub fn analyze(
    e: &Expr,
    kind: ModKind,
    dims: &Dims,
    inputs: &[InputInfo],
) -> Result<Facts, ModError> {
    Analyzer { kind, dims, inputs }.facts(e)
}

struct Analyzer<'a> {
    kind: ModKind,
    dims: &'a Dims,
    inputs: &'a [InputInfo],
}

fn int(lo: i64, hi: i64) -> Facts {
    Facts {
        ty: Type::Int,
        range: Range::Int(lo, hi),
    }
}

fn float(r: Option<(f64, f64)>) -> Facts {
    // NaN bounds carry no information.
    let r = r.filter(|(a, b)| !a.is_nan() && !b.is_nan() && a <= b);
    Facts {
        ty: Type::Float,
        range: Range::Float(r),
    }
}

const BOOL: Facts = Facts {
    ty: Type::Bool,
    range: Range::Bool,
};

/// `[lo, hi]` as an `i64` range, or an overflow error at `e`.
fn fit(e: &Expr, lo: i128, hi: i128) -> Result<Facts, ModError> {
    match (i64::try_from(lo), i64::try_from(hi)) {
        (Ok(a), Ok(b)) => Ok(int(a, b)),
        _ => Err(err(
            e,
            format!("this integer expression can overflow i64 (it ranges over [{lo}, {hi}])"),
        )),
    }
}

fn corners(a: (i64, i64), b: (i64, i64), f: impl Fn(i128, i128) -> i128) -> (i128, i128) {
    let v = [
        f(a.0.into(), b.0.into()),
        f(a.0.into(), b.1.into()),
        f(a.1.into(), b.0.into()),
        f(a.1.into(), b.1.into()),
    ];
    let lo = v.iter().copied().min().unwrap_or(0);
    let hi = v.iter().copied().max().unwrap_or(0);
    (lo, hi)
}

fn fcorners(a: (f64, f64), b: (f64, f64), f: impl Fn(f64, f64) -> f64) -> Option<(f64, f64)> {
    let v = [f(a.0, b.0), f(a.0, b.1), f(a.1, b.0), f(a.1, b.1)];
    if v.iter().any(|x| x.is_nan()) {
        return None;
    }
    Some((
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    ))
}

/// The integer a float in `x` converts to (`as i64`: truncation, saturation).
fn sat(x: f64) -> i64 {
    x as i64
}

impl Analyzer<'_> {
    fn var(&self, e: &Expr, v: Var) -> Result<Facts, ModError> {
        let last = |n: usize| i64::try_from(n.max(1) - 1).unwrap_or(i64::MAX);
        Ok(match v {
            Var::Score if self.kind == ModKind::Score => float(None),
            Var::Score => {
                return Err(err(
                    e,
                    "a `mask_mod` has no score: its parameters are `|b, h, i, j|`".into(),
                ));
            }
            Var::Batch => int(0, last(self.dims.b)),
            Var::Head => int(0, last(self.dims.h)),
            Var::Row => int(0, last(self.dims.sq)),
            Var::Col => int(0, last(self.dims.sk)),
        })
    }

    fn facts(&self, e: &Expr) -> Result<Facts, ModError> {
        match &e.kind {
            Kind::Var(v) => self.var(e, *v),
            Kind::Int(x) => Ok(int(*x, *x)),
            Kind::Float(x) => Ok(float(Some((*x, *x)))),
            Kind::Bool(_) => Ok(BOOL),
            Kind::Read { input, index } => self.read(e, *input, index),
            Kind::Neg(x) => {
                let f = self.facts(x)?;
                match f.range {
                    Range::Int(lo, hi) => fit(e, -i128::from(hi), -i128::from(lo)),
                    Range::Float(r) => Ok(float(r.map(|(lo, hi)| (-hi, -lo)))),
                    Range::Bool => Err(err(
                        e,
                        "`-` takes an integer or a float, not a bool (use `!`)".into(),
                    )),
                }
            }
            Kind::Not(x) => match self.facts(x)?.ty {
                Type::Bool => Ok(BOOL),
                t => Err(err(e, format!("`!` takes a bool, not {t}"))),
            },
            Kind::Binary(op, a, b) => self.binary(e, *op, a, b),
            Kind::If(c, a, b) => {
                let fc = self.facts(c)?;
                if fc.ty != Type::Bool {
                    return Err(err(
                        c,
                        format!("the condition of `if` must be a bool, not {}", fc.ty),
                    ));
                }
                let (fa, fb) = (self.facts(a)?, self.facts(b)?);
                if fa.ty != fb.ty {
                    return Err(err(
                        e,
                        format!(
                            "the branches of `if` have different types: {} and {}",
                            fa.ty, fb.ty
                        ),
                    ));
                }
                Ok(union(fa, fb))
            }
            Kind::Call(f, args) => self.call(e, *f, args),
            Kind::Cast(x, to) => self.cast(e, x, *to),
        }
    }

    fn read(&self, e: &Expr, input: usize, index: &[Expr]) -> Result<Facts, ModError> {
        let Some(info) = self.inputs.get(input) else {
            return Err(err(e, format!("the mods have no input #{input}")));
        };
        let shape = &info.shape;
        if index.len() != shape.len() {
            let example = vec!["[..]"; shape.len()].join("");
            return Err(err(
                e,
                format!(
                    "input `{}` has rank {} (shape {shape:?}): index it with {} indices, like `{}{example}`, got {}",
                    info.name,
                    shape.len(),
                    shape.len(),
                    info.name,
                    index.len()
                ),
            ));
        }
        for (d, (x, &size)) in index.iter().zip(shape).enumerate() {
            let f = self.facts(x)?;
            let Range::Int(lo, hi) = f.range else {
                return Err(err(
                    x,
                    format!(
                        "an index of `{}` must be an integer, not {} (convert with `as i64`)",
                        info.name, f.ty
                    ),
                ));
            };
            let top = i64::try_from(size).unwrap_or(i64::MAX) - 1;
            if lo < 0 || hi > top {
                return Err(err(
                    x,
                    format!(
                        "this index can leave the bounds of `{}`: dim {d} has size {size} \
                         (valid indices 0..={top}), but the index ranges over [{lo}, {hi}] for \
                         the (b, h, i, j) in range{}",
                        info.name,
                        if f_reads(x) {
                            " (values read from inputs have unknown ranges: bound them with \
                             `min` and `max`)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        Ok(if info.int {
            int(i32::MIN.into(), i32::MAX.into())
        } else {
            float(None)
        })
    }

    fn binary(&self, e: &Expr, op: BinOp, a: &Expr, b: &Expr) -> Result<Facts, ModError> {
        let (fa, fb) = (self.facts(a)?, self.facts(b)?);
        let sym = op.symbol();
        if matches!(op, BinOp::And | BinOp::Or) {
            if fa.ty == Type::Bool && fb.ty == Type::Bool {
                return Ok(BOOL);
            }
            let bad = if fa.ty != Type::Bool { fa.ty } else { fb.ty };
            return Err(err(e, format!("`{sym}` takes bools, not {bad}")));
        }
        if fa.ty != fb.ty {
            return Err(err(
                e,
                format!(
                    "`{sym}` of {} and {}: convert one side with `as f32` or `as i64`",
                    fa.ty, fb.ty
                ),
            ));
        }
        if op.is_comparison() {
            if fa.ty == Type::Bool && !matches!(op, BinOp::Eq | BinOp::Ne) {
                return Err(err(
                    e,
                    format!("`{sym}` compares integers or floats, not bools"),
                ));
            }
            return Ok(BOOL);
        }
        match (fa.range, fb.range) {
            (Range::Int(a0, a1), Range::Int(b0, b1)) => {
                let (x, y) = ((a0, a1), (b0, b1));
                match op {
                    BinOp::Add => fit(
                        e,
                        i128::from(a0) + i128::from(b0),
                        i128::from(a1) + i128::from(b1),
                    ),
                    BinOp::Sub => fit(
                        e,
                        i128::from(a0) - i128::from(b1),
                        i128::from(a1) - i128::from(b0),
                    ),
                    BinOp::Mul => {
                        let (lo, hi) = corners(x, y, |p, q| p * q);
                        fit(e, lo, hi)
                    }
                    BinOp::Div | BinOp::Rem => {
                        if b0 <= 0 && 0 <= b1 {
                            return Err(err(
                                b,
                                format!(
                                    "the divisor of `{sym}` can be zero: it ranges over [{b0}, {b1}]"
                                ),
                            ));
                        }
                        if op == BinOp::Div {
                            let (lo, hi) = corners(x, y, |p, q| p / q);
                            return fit(e, lo, hi);
                        }
                        let m = i128::from(b0).abs().max(i128::from(b1).abs()) - 1;
                        let (lo, hi) = (i128::from(a0).max(-m), i128::from(a1).min(m));
                        fit(e, lo.min(0), hi.max(0))
                    }
                    _ => unreachable!("comparisons and logic are handled above"),
                }
            }
            (Range::Float(ra), Range::Float(rb)) => {
                let both = ra.zip(rb);
                Ok(float(match op {
                    BinOp::Add => both.map(|(a, b)| (a.0 + b.0, a.1 + b.1)),
                    BinOp::Sub => both.map(|(a, b)| (a.0 - b.1, a.1 - b.0)),
                    BinOp::Mul => both.and_then(|(a, b)| fcorners(a, b, |p, q| p * q)),
                    BinOp::Div => both
                        .filter(|(_, b)| b.0 > 0.0 || b.1 < 0.0)
                        .and_then(|(a, b)| fcorners(a, b, |p, q| p / q)),
                    BinOp::Rem => {
                        return Err(err(e, "`%` takes integers, not floats".into()));
                    }
                    _ => unreachable!("comparisons and logic are handled above"),
                }))
            }
            _ => Err(err(
                e,
                format!("`{sym}` takes integers or floats, not bools"),
            )),
        }
    }

    fn call(&self, e: &Expr, f: Func, args: &[Expr]) -> Result<Facts, ModError> {
        if args.len() != f.arity() {
            return Err(err(
                e,
                format!(
                    "`{}` takes {} argument{}, got {}",
                    f.name(),
                    f.arity(),
                    if f.arity() == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        let fs: Vec<Facts> = args
            .iter()
            .map(|a| self.facts(a))
            .collect::<Result<_, _>>()?;
        let name = f.name();
        match f {
            Func::Min | Func::Max => {
                if fs[0].ty != fs[1].ty || fs[0].ty == Type::Bool {
                    return Err(err(
                        e,
                        format!(
                            "`{name}` takes two integers or two floats, got {} and {}",
                            fs[0].ty, fs[1].ty
                        ),
                    ));
                }
                let pick = |x: f64, y: f64| if f == Func::Min { x.min(y) } else { x.max(y) };
                Ok(match (fs[0].range, fs[1].range) {
                    (Range::Int(a0, a1), Range::Int(b0, b1)) => {
                        if f == Func::Min {
                            int(a0.min(b0), a1.min(b1))
                        } else {
                            int(a0.max(b0), a1.max(b1))
                        }
                    }
                    (Range::Float(a), Range::Float(b)) => {
                        float(a.zip(b).map(|(a, b)| (pick(a.0, b.0), pick(a.1, b.1))))
                    }
                    _ => unreachable!("the types are equal"),
                })
            }
            Func::Abs => match fs[0].range {
                Range::Int(lo, hi) => {
                    let (lo, hi) = (i128::from(lo), i128::from(hi));
                    if lo >= 0 {
                        fit(e, lo, hi)
                    } else if hi <= 0 {
                        fit(e, -hi, -lo)
                    } else {
                        fit(e, 0, hi.max(-lo))
                    }
                }
                Range::Float(r) => Ok(float(r.map(|(lo, hi)| {
                    if lo >= 0.0 {
                        (lo, hi)
                    } else if hi <= 0.0 {
                        (-hi, -lo)
                    } else {
                        (0.0, hi.max(-lo))
                    }
                }))),
                Range::Bool => Err(err(
                    e,
                    "`abs` takes an integer or a float, not a bool".into(),
                )),
            },
            Func::Exp | Func::Tanh | Func::Sqrt => {
                let Range::Float(r) = fs[0].range else {
                    return Err(err(
                        e,
                        format!(
                            "`{name}` takes a float, not {} (convert with `as f32`)",
                            fs[0].ty
                        ),
                    ));
                };
                Ok(float(match f {
                    Func::Exp => {
                        Some(r.map_or((0.0, f64::INFINITY), |(lo, hi)| (lo.exp(), hi.exp())))
                    }
                    Func::Tanh => Some(r.map_or((-1.0, 1.0), |(lo, hi)| (lo.tanh(), hi.tanh()))),
                    _ => r.map(|(lo, hi)| (lo.max(0.0).sqrt(), hi.max(0.0).sqrt())),
                }))
            }
        }
    }

    fn cast(&self, e: &Expr, x: &Expr, to: Type) -> Result<Facts, ModError> {
        let f = self.facts(x)?;
        match (f.range, to) {
            (Range::Int(..), Type::Int) | (Range::Float(_), Type::Float) => Ok(f),
            (Range::Bool, Type::Int) => Ok(int(0, 1)),
            (Range::Int(lo, hi), Type::Float) => Ok(float(Some((lo as f64, hi as f64)))),
            (Range::Float(r), Type::Int) => Ok(match r {
                // Truncation saturates; NaN gives 0.
                Some((lo, hi)) => int(sat(lo).min(0), sat(hi).max(0)),
                None => int(i64::MIN, i64::MAX),
            }),
            (Range::Bool, _) => Err(err(
                e,
                "a bool converts to an integer only (`as i64`); use `if c { 1.0 } else { 0.0 }`"
                    .into(),
            )),
            (_, Type::Bool) => Err(err(e, "no conversion to bool: compare instead".into())),
        }
    }
}

/// Whether `e` reads an input (for hints in messages).
fn f_reads(e: &Expr) -> bool {
    e.reads_inputs()
}

/// The facts of a value that is one of two (same type).
fn union(a: Facts, b: Facts) -> Facts {
    let range = match (a.range, b.range) {
        (Range::Int(a0, a1), Range::Int(b0, b1)) => Range::Int(a0.min(b0), a1.max(b1)),
        (Range::Float(x), Range::Float(y)) => {
            Range::Float(x.zip(y).map(|(x, y)| (x.0.min(y.0), x.1.max(y.1))))
        }
        _ => Range::Bool,
    };
    Facts { ty: a.ty, range }
}
