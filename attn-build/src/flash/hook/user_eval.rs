//! Vector code of a mod expression: each node becomes a scalar (when it is the same for every
//! lane: constants, `b`, `h`, values of the row `i`) or a vector of `w` lanes (values of the
//! keys `j`, of the score `s`), integers in `i32` lanes when every integer of the expression
//! provably fits (else `i64`), floats in the compute type. Nodes that depend on the keys only
//! are evaluated once per key vector and shared by the rows; reads of inputs are scalar loads
//! or vector gathers from flat views of the inputs.

use crate::emit::{Cmp, Emitter, Scalar, Ty, Val, math};
use attn_runtime::mods::{
    self, BinOp, Dims, Expr, Func, InputInfo, Kind, ModKind, Range, Type, Var,
};
use std::collections::HashMap;

/// An input of the mods as the kernel reads it.
#[derive(Clone)]
pub struct Input {
    /// A 1-D view of its buffer from its first element (`memref<?xT, strided<[1], offset: ?>>`).
    pub flat: Val,
    /// Its strides (index), one per dim.
    pub strides: Vec<Val>,
}

/// What every evaluation of the mods of a kernel shares.
#[derive(Clone)]
pub struct Env {
    /// Lanes per vector.
    pub w: usize,
    /// The integer lane type (`i32` or `i64`).
    pub it: Scalar,
    /// The float type (the compute type).
    pub ct: Scalar,
    /// The batch and query head of the call (index).
    pub b: Val,
    /// See `b`.
    pub h: Val,
    /// `Sq - 1` and `Sk - 1` (index): rows and keys are clamped to them, so that padding rows
    /// and keys past Sk evaluate (harmlessly) in range.
    pub sq_last: Val,
    /// See `sq_last`.
    pub sk_last: Val,
    /// The inputs.
    pub inputs: Vec<Input>,
}

/// The integer lane type for the mods `exprs` over `dims` and `inputs`: `i32` when every
/// integer node and every flat index of an input fits it.
pub fn int_lanes(exprs: &[(ModKind, &Expr)], dims: &Dims, inputs: &[InputInfo]) -> Scalar {
    let small = |lo: i64, hi: i64| lo >= i64::from(i32::MIN) && hi <= i64::from(i32::MAX);
    let elements: usize = inputs
        .iter()
        .map(|i| i.shape.iter().product::<usize>())
        .max()
        .unwrap_or(0);
    let mut fits = elements < (1 << 31) && dims.sq.max(dims.sk).max(dims.b).max(dims.h) < (1 << 31);
    for (kind, e) in exprs {
        fits &= !e.any(&|x| {
            matches!(
                mods::analyze(x, *kind, dims, inputs).map(|f| f.range),
                Ok(Range::Int(lo, hi)) if !small(lo, hi)
            )
        });
    }
    if fits { Scalar::I32 } else { Scalar::I64 }
}

/// A value of a node: the same for every lane, or one per lane.
#[derive(Clone, Debug)]
pub enum Lane {
    /// A scalar.
    S(Val),
    /// A vector.
    V(Val),
}

impl Lane {
    /// As a vector of `w` lanes.
    pub fn vector(&self, e: &mut Emitter, w: usize) -> Val {
        match self {
            Lane::S(x) => e.splat(x, w),
            Lane::V(x) => x.clone(),
        }
    }
}

/// Where an expression is evaluated: row `i` (a scalar of the lane type; `row` names it for
/// the cache), key vector `j` (`col` names it; `None` when evaluating row values only) and the
/// score vector `s` in natural units (score mods).
pub struct Point<'a> {
    /// `i`.
    pub i: Option<&'a Val>,
    /// Which row `i` is (cache key).
    pub row: usize,
    /// `j`.
    pub j: Option<&'a Val>,
    /// Which key vector `j` is (cache key).
    pub col: usize,
    /// `s`.
    pub s: Option<&'a Val>,
}

const DEP_I: u8 = 1;
const DEP_J: u8 = 2;
const DEP_S: u8 = 4;

/// Evaluates expressions, caching each node's value per row and key vector it depends on.
#[derive(Clone)]
pub struct Evaluator {
    env: Env,
    deps: HashMap<u32, u8>,
    cache: HashMap<(u32, usize, usize), Lane>,
}

fn deps(e: &Expr, out: &mut HashMap<u32, u8>) -> u8 {
    let mut d = match e.kind {
        Kind::Var(Var::Row) => DEP_I,
        Kind::Var(Var::Col) => DEP_J,
        Kind::Var(Var::Score) => DEP_S | DEP_I | DEP_J,
        _ => 0,
    };
    for c in e.children() {
        d |= deps(c, out);
    }
    out.insert(e.id, d);
    d
}

impl Evaluator {
    /// An evaluator of the expressions `exprs` (whose node ids are distinct) in `env`.
    pub fn new(env: Env, exprs: &[&Expr]) -> Evaluator {
        let mut d = HashMap::new();
        for e in exprs {
            deps(e, &mut d);
        }
        Evaluator {
            env,
            deps: d,
            cache: HashMap::new(),
        }
    }

    /// The shared environment.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Evaluates (and caches) every subexpression of `e` that depends on the keys only, at key
    /// vector `p.col`: what the rows then share.
    pub fn key_parts(&mut self, em: &mut Emitter, e: &Expr, p: &Point) {
        match self.deps.get(&e.id).copied().unwrap_or(DEP_I | DEP_J) {
            DEP_J => {
                self.eval(em, e, p);
            }
            d if d & DEP_J != 0 => {
                for c in e.children() {
                    self.key_parts(em, c, p);
                }
            }
            _ => {}
        }
    }

    /// The value of `e` at `p`.
    pub fn eval(&mut self, em: &mut Emitter, e: &Expr, p: &Point) -> Lane {
        let d = self
            .deps
            .get(&e.id)
            .copied()
            .unwrap_or(DEP_I | DEP_J | DEP_S);
        let key = (
            e.id,
            if d & DEP_I != 0 { p.row } else { usize::MAX },
            if d & DEP_J != 0 { p.col } else { usize::MAX },
        );
        if d & DEP_S == 0
            && let Some(v) = self.cache.get(&key)
        {
            return v.clone();
        }
        let v = self.compute(em, e, p);
        if d & DEP_S == 0 {
            self.cache.insert(key, v.clone());
        }
        v
    }

    fn it(&self) -> Ty {
        self.env.it.into()
    }

    fn ct(&self) -> Ty {
        self.env.ct.into()
    }

    /// Both operands as scalars, or both as vectors.
    fn pair(&self, em: &mut Emitter, a: Lane, b: Lane) -> (Val, Val, bool) {
        let w = self.env.w;
        match (a, b) {
            (Lane::S(x), Lane::S(y)) => (x, y, false),
            (a, b) => (a.vector(em, w), b.vector(em, w), true),
        }
    }

    fn wrap(v: Val, vector: bool) -> Lane {
        if vector { Lane::V(v) } else { Lane::S(v) }
    }

    fn compute(&mut self, em: &mut Emitter, e: &Expr, p: &Point) -> Lane {
        let w = self.env.w;
        match &e.kind {
            Kind::Var(v) => match v {
                Var::Batch => Lane::S(em.index_cast(&self.env.b.clone(), self.env.it)),
                Var::Head => Lane::S(em.index_cast(&self.env.h.clone(), self.env.it)),
                Var::Row => Lane::S(p.i.cloned().unwrap_or_else(|| em.int(0, &self.it()))),
                Var::Col => Lane::V(p.j.cloned().unwrap_or_else(|| {
                    let t = Ty::vector(w, self.env.it);
                    em.int(0, &t)
                })),
                Var::Score => Lane::V(p.s.cloned().unwrap_or_else(|| {
                    let t = Ty::vector(w, self.env.ct);
                    em.float(0.0, &t)
                })),
            },
            Kind::Int(x) => Lane::S(em.int(*x, &self.it())),
            Kind::Float(x) => Lane::S(em.float(*x, &self.ct())),
            Kind::Bool(b) => Lane::S(bool_const(em, *b, None)),
            Kind::Read { input, index } => self.read(em, *input, index, p),
            Kind::Neg(x) => {
                let v = self.eval(em, x, p);
                let (x, vector) = match v {
                    Lane::S(x) => (x, false),
                    Lane::V(x) => (x, true),
                };
                let r = if x.ty().elem().is_float() {
                    em.neg(&x)
                } else {
                    let z = em.int(0, x.ty());
                    em.sub(&z, &x)
                };
                Self::wrap(r, vector)
            }
            Kind::Not(x) => {
                let v = self.eval(em, x, p);
                let (x, vector) = match v {
                    Lane::S(x) => (x, false),
                    Lane::V(x) => (x, true),
                };
                let t = bool_const(em, true, vector.then_some(w));
                let ty = x.ty().clone();
                Self::wrap(
                    em.op(ty.clone(), format_args!("arith.xori {x}, {t} : {ty}")),
                    vector,
                )
            }
            Kind::Binary(op, a, b) => {
                let (va, vb) = (self.eval(em, a, p), self.eval(em, b, p));
                let (x, y, vector) = self.pair(em, va, vb);
                let float = x.ty().elem().is_float();
                let r = match op {
                    BinOp::Add => em.add(&x, &y),
                    BinOp::Sub => em.sub(&x, &y),
                    BinOp::Mul => em.mul(&x, &y),
                    BinOp::Div if float => em.div(&x, &y),
                    BinOp::Div => arith(em, "divsi", &x, &y),
                    BinOp::Rem => arith(em, "remsi", &x, &y),
                    BinOp::And => em.and(&x, &y),
                    BinOp::Or => em.or(&x, &y),
                    BinOp::Eq => em.cmp(Cmp::Eq, &x, &y),
                    BinOp::Ne => em.cmp(Cmp::Ne, &x, &y),
                    BinOp::Lt => em.cmp(Cmp::Lt, &x, &y),
                    BinOp::Le => em.cmp(Cmp::Le, &x, &y),
                    BinOp::Gt => em.cmp(Cmp::Gt, &x, &y),
                    BinOp::Ge => em.cmp(Cmp::Ge, &x, &y),
                };
                Self::wrap(r, vector)
            }
            Kind::If(c, a, b) => {
                let vc = self.eval(em, c, p);
                let (va, vb) = (self.eval(em, a, p), self.eval(em, b, p));
                let (x, y, vector) = self.pair(em, va, vb);
                match (vc, vector) {
                    (Lane::S(c), v) => Self::wrap(em.select(&c, &x, &y), v),
                    (Lane::V(c), true) => Lane::V(em.select(&c, &x, &y)),
                    (Lane::V(c), false) => {
                        let (x, y) = (em.splat(&x, w), em.splat(&y, w));
                        Lane::V(em.select(&c, &x, &y))
                    }
                }
            }
            Kind::Call(f, args) => {
                let vals: Vec<Lane> = args.iter().map(|a| self.eval(em, a, p)).collect();
                let first = vals[0].clone();
                let (x, vector) = match &first {
                    Lane::S(x) => (x.clone(), false),
                    Lane::V(x) => (x.clone(), true),
                };
                let float = x.ty().elem().is_float();
                let r = match f {
                    Func::Min | Func::Max => {
                        let (x, y, vector) = self.pair(em, first, vals[1].clone());
                        let op = match (f, float) {
                            (Func::Min, true) => "minnumf",
                            (Func::Min, false) => "minsi",
                            (_, true) => "maxnumf",
                            _ => "maxsi",
                        };
                        return Self::wrap(arith(em, op, &x, &y), vector);
                    }
                    Func::Abs if float => em.abs(&x),
                    Func::Abs => em.abs_i(&x),
                    Func::Exp => exp(em, &x),
                    Func::Tanh => math::tanh(em, &x),
                    Func::Sqrt => {
                        let ty = x.ty().clone();
                        em.op(ty.clone(), format_args!("math.sqrt {x} : {ty}"))
                    }
                };
                Self::wrap(r, vector)
            }
            Kind::Cast(x, to) => {
                let v = self.eval(em, x, p);
                let (x, vector) = match v {
                    Lane::S(x) => (x, false),
                    Lane::V(x) => (x, true),
                };
                let from = x.ty().elem();
                let r = match (from, to) {
                    (Scalar::I1, Type::Int) => {
                        let (ft, tt) = (x.ty().clone(), x.ty().with_elem(self.env.it));
                        em.op(tt.clone(), format_args!("arith.extui {x} : {ft} to {tt}"))
                    }
                    (f, Type::Float) if !f.is_float() => em.si_to_fp(&x, self.env.ct),
                    (f, Type::Int) if f.is_float() => float_to_int(em, &x, self.env.it),
                    _ => x,
                };
                Self::wrap(r, vector)
            }
        }
    }

    fn read(&mut self, em: &mut Emitter, input: usize, index: &[Expr], p: &Point) -> Lane {
        let w = self.env.w;
        let it = self.env.it;
        let Some(inp) = self.env.inputs.get(input).cloned() else {
            return Lane::S(em.int(0, &self.it()));
        };
        let idx: Vec<Lane> = index.iter().map(|x| self.eval(em, x, p)).collect();
        let vector = idx.iter().any(|l| matches!(l, Lane::V(_)));
        // The flat index: sum of index x stride.
        let mut lin: Option<Val> = None;
        for (l, stride) in idx.iter().zip(&inp.strides) {
            let s = em.index_cast(stride, it);
            let term = if vector {
                let x = l.vector(em, w);
                let sv = em.splat(&s, w);
                em.mul(&x, &sv)
            } else {
                let Lane::S(x) = l else {
                    unreachable!("scalar indices")
                };
                em.mul(x, &s)
            };
            lin = Some(match lin {
                Some(a) => em.add(&a, &term),
                None => term,
            });
        }
        let lin = lin.unwrap_or_else(|| em.int(0, &self.it()));
        let elem = inp.flat.ty().elem();
        let x = if vector {
            let c0 = em.idx(0);
            let vt = Ty::vector(w, elem);
            let pass = if elem.is_float() {
                em.float(0.0, &vt)
            } else {
                em.int(0, &vt)
            };
            let all = bool_const(em, true, Some(w));
            let (mt, lt, ft) = (all.ty().clone(), lin.ty().clone(), inp.flat.ty().clone());
            let flat = &inp.flat;
            em.op(
                vt.clone(),
                format_args!(
                    "vector.gather {flat}[{c0}] [{lin}], {all}, {pass} : {ft}, {lt}, {mt}, {vt} into {vt}"
                ),
            )
        } else {
            let li = em.index_cast(&lin, Scalar::Index);
            em.load(&inp.flat, &[&li])
        };
        let x = if elem.is_float() {
            em.convert(&x, self.env.ct)
        } else if it != elem {
            let (ft, tt) = (x.ty().clone(), x.ty().with_elem(it));
            em.op(tt.clone(), format_args!("arith.extsi {x} : {ft} to {tt}"))
        } else {
            x
        };
        Self::wrap(x, vector)
    }
}

/// `arith.<op> a, b` of two values of one type.
fn arith(e: &mut Emitter, op: &str, a: &Val, b: &Val) -> Val {
    let ty = a.ty().clone();
    e.op(ty.clone(), format_args!("arith.{op} {a}, {b} : {ty}"))
}

/// The `i1` constant `b`, scalar or splat over `lanes`.
pub fn bool_const(e: &mut Emitter, b: bool, lanes: Option<usize>) -> Val {
    match lanes {
        None => e.constant(format!("arith.constant {b}"), Ty::I1),
        Some(n) => {
            let ty = Ty::vector(n, Scalar::I1);
            e.constant(format!("arith.constant dense<{b}> : {ty}"), ty)
        }
    }
}

/// `e^x` as `2^(x log2 e)` by the kernels' polynomial, with the exponent clamped above so that
/// large arguments give infinity (NaN stays NaN).
fn exp(e: &mut Emitter, x: &Val) -> Val {
    let ty = x.ty().clone();
    let log2e = e.float(std::f64::consts::LOG2_E, &ty);
    let t = e.mul(x, &log2e);
    let hi = e.float(
        if ty.elem().bits() == 64 {
            1024.0
        } else {
            128.0
        },
        &ty,
    );
    let above = e.cmp(Cmp::Gt, &t, &hi);
    let t = e.select(&above, &hi, &t);
    math::exp2(e, &[t]).remove(0)
}

/// Rust's `as` from a float to the integer type `it`: truncation, saturation, NaN to 0.
fn float_to_int(e: &mut Emitter, x: &Val, it: Scalar) -> Val {
    let ty = x.ty().clone();
    let wide = ty.elem().bits() == 64;
    // The extremes of the integer type that the float type holds (2^31 - 2^7 and 2^63 - 2^39
    // in f32, 2^31 - 1 and 2^63 - 2^10 in f64).
    let (lo, hi) = match (it, wide) {
        (Scalar::I32, true) => (-(2f64.powi(31)), 2f64.powi(31) - 1.0),
        (Scalar::I32, false) => (-(2f64.powi(31)), 2f64.powi(31) - 2f64.powi(7)),
        (_, true) => (-(2f64.powi(63)), 2f64.powi(63) - 2f64.powi(10)),
        _ => (-(2f64.powi(63)), 2f64.powi(63) - 2f64.powi(39)),
    };
    let (lo, hi, zero) = (e.float(lo, &ty), e.float(hi, &ty), e.float(0.0, &ty));
    let ok = e.cmp(Cmp::Eq, x, x);
    let x = e.select(&ok, x, &zero);
    let x = e.max(&x, &lo);
    let above = e.cmp(Cmp::Gt, &x, &hi);
    let x = e.select(&above, &hi, &x);
    e.fp_to_si(&x, it)
}
