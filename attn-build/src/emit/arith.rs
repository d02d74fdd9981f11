//! Arithmetic, comparisons, conversions and vector ops: each picks its spelling from its
//! operands' types.

use super::{Emitter, Scalar, Ty, Val};

/// A comparison predicate (the float form is ordered, the integer form signed or unsigned as
/// named).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `==` (`oeq` / `eq`).
    Eq,
    /// `!=` (`une` / `ne`).
    Ne,
    /// `<`, signed for integers (`olt` / `slt`).
    Lt,
    /// `<=`, signed for integers (`ole` / `sle`).
    Le,
    /// `>`, signed for integers (`ogt` / `sgt`).
    Gt,
    /// `>=`, signed for integers (`oge` / `sge`).
    Ge,
    /// `<` on unsigned integers or indices (`ult`).
    Ult,
    /// `<=` on unsigned integers or indices (`ule`).
    Ule,
}

impl Cmp {
    fn float(self) -> &'static str {
        match self {
            Cmp::Eq => "oeq",
            Cmp::Ne => "une",
            Cmp::Lt | Cmp::Ult => "olt",
            Cmp::Le | Cmp::Ule => "ole",
            Cmp::Gt => "ogt",
            Cmp::Ge => "oge",
        }
    }

    fn int(self) -> &'static str {
        match self {
            Cmp::Eq => "eq",
            Cmp::Ne => "ne",
            Cmp::Lt => "slt",
            Cmp::Le => "sle",
            Cmp::Gt => "sgt",
            Cmp::Ge => "sge",
            Cmp::Ult => "ult",
            Cmp::Ule => "ule",
        }
    }
}

impl Emitter {
    fn binary(&mut self, float: &str, int: &str, a: &Val, b: &Val) -> Val {
        debug_assert_eq!(a.ty(), b.ty(), "{float}/{int} of {a} and {b}");
        let ty = a.ty().clone();
        let op = if ty.elem().is_float() { float } else { int };
        self.op(ty.clone(), format_args!("arith.{op} {a}, {b} : {ty}"))
    }

    /// `a + b`.
    pub fn add(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("addf", "addi", a, b)
    }

    /// `a - b`.
    pub fn sub(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("subf", "subi", a, b)
    }

    /// `a * b`.
    pub fn mul(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("mulf", "muli", a, b)
    }

    /// `a / b` (unsigned for integers).
    pub fn div(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("divf", "divui", a, b)
    }

    /// `ceil(a / b) * b` for indices: `a` rounded up to a multiple of the constant `b`.
    pub fn round_up(&mut self, a: &Val, b: usize) -> Val {
        let (bm1, cb) = (self.idx(b - 1), self.idx(b));
        let x = self.add(a, &bm1);
        let q = self.div(&x, &cb);
        self.mul(&q, &cb)
    }

    /// `floor(a / b) * b` for indices.
    pub fn round_down(&mut self, a: &Val, b: usize) -> Val {
        let cb = self.idx(b);
        let q = self.div(a, &cb);
        self.mul(&q, &cb)
    }

    /// Signed minimum of integers.
    pub fn min_s(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("minsi", "minsi", a, b)
    }

    /// Signed maximum of integers.
    pub fn max_s(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("maxsi", "maxsi", a, b)
    }

    /// Unsigned minimum of integers.
    pub fn min_u(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("minui", "minui", a, b)
    }

    /// Unsigned maximum of integers.
    pub fn max_u(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("maxui", "maxui", a, b)
    }

    /// `a & b` (integers, `i1` included).
    pub fn and(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("andi", "andi", a, b)
    }

    /// `a | b`.
    pub fn or(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("ori", "ori", a, b)
    }

    /// `!c` for `i1` values.
    pub fn not(&mut self, c: &Val) -> Val {
        let t = self.constant("arith.constant true".to_string(), Ty::I1);
        let ty = c.ty().clone();
        self.op(ty.clone(), format_args!("arith.xori {c}, {t} : {ty}"))
    }

    /// `a << b`.
    pub fn shl(&mut self, a: &Val, b: &Val) -> Val {
        self.binary("shli", "shli", a, b)
    }

    /// `a * b + c`: on vectors `vector.fma` (LLVM's `fmuladd`: one fused multiply-add where the
    /// target has FMA, a multiply and an add where it has not, e.g. baseline x86-64, instead of
    /// a call of `fmaf` per lane), on scalars `math.fma`.
    pub fn fma(&mut self, a: &Val, b: &Val, c: &Val) -> Val {
        if c.ty().is_vector() {
            return self.vfma(a, b, c);
        }
        let ty = c.ty().clone();
        self.op(ty.clone(), format_args!("math.fma {a}, {b}, {c} : {ty}"))
    }

    /// `a * b + c` as `vector.fma` (the register tiles' accumulations).
    pub fn vfma(&mut self, a: &Val, b: &Val, c: &Val) -> Val {
        let ty = c.ty().clone();
        self.op(ty.clone(), format_args!("vector.fma {a}, {b}, {c} : {ty}"))
    }

    /// `-x`.
    pub fn neg(&mut self, x: &Val) -> Val {
        let ty = x.ty().clone();
        self.op(ty.clone(), format_args!("arith.negf {x} : {ty}"))
    }

    /// `|x|`.
    pub fn abs(&mut self, x: &Val) -> Val {
        let ty = x.ty().clone();
        self.op(ty.clone(), format_args!("math.absf {x} : {ty}"))
    }

    /// `|x|` of integers.
    pub fn abs_i(&mut self, x: &Val) -> Val {
        let ty = x.ty().clone();
        self.op(ty.clone(), format_args!("math.absi {x} : {ty}"))
    }

    /// Rounds to the nearest integer, ties to even (`roundps`).
    pub fn round_even(&mut self, x: &Val) -> Val {
        let ty = x.ty().clone();
        self.op(ty.clone(), format_args!("math.roundeven {x} : {ty}"))
    }

    /// `log2(x)` (a call of the C library's `log2` for scalars).
    pub fn log2(&mut self, x: &Val) -> Val {
        let ty = x.ty().clone();
        self.op(ty.clone(), format_args!("math.log2 {x} : {ty}"))
    }

    /// A comparison; the result is `i1` of the operands' shape.
    pub fn cmp(&mut self, pred: Cmp, a: &Val, b: &Val) -> Val {
        debug_assert_eq!(a.ty(), b.ty(), "cmp of {a} and {b}");
        let ty = a.ty().clone();
        let (op, p) = if ty.elem().is_float() {
            ("cmpf", pred.float())
        } else {
            ("cmpi", pred.int())
        };
        self.op(
            ty.bool_like(),
            format_args!("arith.{op} {p}, {a}, {b} : {ty}"),
        )
    }

    /// `c ? a : b` (a vector condition selects lanes).
    pub fn select(&mut self, c: &Val, a: &Val, b: &Val) -> Val {
        let ty = a.ty().clone();
        if c.ty().is_vector() {
            let ct = c.ty().clone();
            self.op(
                ty.clone(),
                format_args!("arith.select {c}, {a}, {b} : {ct}, {ty}"),
            )
        } else {
            self.op(
                ty.clone(),
                format_args!("arith.select {c}, {a}, {b} : {ty}"),
            )
        }
    }

    /// `a < b ? b : a` (one `maxps` on x86). Well defined for NaN, unlike fast-math maxima: a
    /// NaN `a` is returned, a NaN `b` dropped. The softmaxes rely on NaN reaching the output
    /// through the exponentials (`exp(NaN - m)` is NaN), not through the row max.
    pub fn max(&mut self, a: &Val, b: &Val) -> Val {
        let c = self.cmp(Cmp::Lt, a, b);
        self.select(&c, b, a)
    }

    /// `x` converted to the float type `to` (same shape): widened, narrowed, or as is.
    pub fn convert(&mut self, x: &Val, to: Scalar) -> Val {
        let from = x.ty().elem();
        if from == to {
            return x.clone();
        }
        let op = if from.bits() < to.bits() {
            "extf"
        } else {
            "truncf"
        };
        let (ft, tt) = (x.ty().clone(), x.ty().with_elem(to));
        self.op(tt.clone(), format_args!("arith.{op} {x} : {ft} to {tt}"))
    }

    fn cast(&mut self, op: &str, x: &Val, to: Scalar) -> Val {
        let (ft, tt) = (x.ty().clone(), x.ty().with_elem(to));
        self.op(tt.clone(), format_args!("arith.{op} {x} : {ft} to {tt}"))
    }

    /// `index` <-> integer.
    pub fn index_cast(&mut self, x: &Val, to: Scalar) -> Val {
        self.cast("index_cast", x, to)
    }

    /// Signed integer -> float.
    pub fn si_to_fp(&mut self, x: &Val, to: Scalar) -> Val {
        self.cast("sitofp", x, to)
    }

    /// Float -> signed integer (towards zero).
    pub fn fp_to_si(&mut self, x: &Val, to: Scalar) -> Val {
        self.cast("fptosi", x, to)
    }

    /// Reinterprets the bits (same width).
    pub fn bitcast(&mut self, x: &Val, to: Scalar) -> Val {
        self.cast("bitcast", x, to)
    }

    /// A vector of `lanes` copies of the scalar `x`.
    pub fn splat(&mut self, x: &Val, lanes: usize) -> Val {
        let s = x.ty().elem();
        let ty = Ty::vector(lanes, s);
        self.op(
            ty.clone(),
            format_args!("vector.broadcast {x} : {s} to {ty}"),
        )
    }

    /// Lane `i` of the vector `v`.
    pub fn lane(&mut self, v: &Val, i: usize) -> Val {
        let (vt, s) = (v.ty().clone(), v.ty().elem());
        self.op(
            s.into(),
            format_args!("vector.extract {v}[{i}] : {s} from {vt}"),
        )
    }

    /// `v` with lane `i` replaced by the scalar `x`.
    pub fn insert_lane(&mut self, x: &Val, v: &Val, i: usize) -> Val {
        let (vt, s) = (v.ty().clone(), v.ty().elem());
        self.op(
            vt.clone(),
            format_args!("vector.insert {x}, {v} [{i}] : {s} into {vt}"),
        )
    }

    /// The vector of the scalars `xs`.
    pub fn from_elements(&mut self, xs: &[Val]) -> Val {
        let ty = Ty::vector(xs.len(), xs[0].ty().elem());
        let list = xs.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ");
        self.op(
            ty.clone(),
            format_args!("vector.from_elements {list} : {ty}"),
        )
    }

    /// `vector.shuffle` of two vectors of the same type: lane `i` of the result is lane
    /// `lanes[i]` of the concatenation `[a, b]`.
    pub fn shuffle(&mut self, a: &Val, b: &Val, lanes: &[usize]) -> Val {
        let t = a.ty().clone();
        let ty = Ty::vector(lanes.len(), t.elem());
        let list = lanes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        self.op(
            ty,
            format_args!("vector.shuffle {a}, {b} [{list}] : {t}, {t}"),
        )
    }

    /// The sum of the lanes of `v`, as a tree (`fastmath<reassoc>`; not a serial chain).
    pub fn reduce_add(&mut self, v: &Val) -> Val {
        let (vt, s) = (v.ty().clone(), v.ty().elem());
        self.op(
            s.into(),
            format_args!("vector.reduction <add>, {v} fastmath<reassoc> : {vt} into {s}"),
        )
    }

    /// The signed maximum of the lanes of an integer vector.
    pub fn reduce_max_s(&mut self, v: &Val) -> Val {
        let (vt, s) = (v.ty().clone(), v.ty().elem());
        self.op(
            s.into(),
            format_args!("vector.reduction <maxsi>, {v} : {vt} into {s}"),
        )
    }

    /// The signed minimum of the lanes of an integer vector.
    pub fn reduce_min_s(&mut self, v: &Val) -> Val {
        let (vt, s) = (v.ty().clone(), v.ty().elem());
        self.op(
            s.into(),
            format_args!("vector.reduction <minsi>, {v} : {vt} into {s}"),
        )
    }

    /// An `i1` vector of `lanes` lanes whose first `n` (an index) are set.
    pub fn create_mask(&mut self, n: &Val, lanes: usize) -> Val {
        let ty = Ty::vector(lanes, Scalar::I1);
        self.op(ty.clone(), format_args!("vector.create_mask {n} : {ty}"))
    }
}
