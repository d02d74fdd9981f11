//! The math the kernels share: exponentials as polynomials (`math.exp` on vectors would become
//! scalar `expf` calls), horizontal maxima and sums, and the transposing reduction of the decode
//! path. No op assumes the absence of NaN or infinities.

use super::{Emitter, Val};

/// `n!` as an f64.
fn factorial(n: u32) -> f64 {
    (1..=n).map(f64::from).product()
}

/// `2^t` for every `t` of `ts` (f32 or f64 scalars or vectors, `t <= ~0`), exactly 0 for `t`
/// below the smallest normal exponent (so `-inf`, removed keys, give 0 without a select), NaN
/// for NaN: `n = max(t, lo)` rounded to an integer (by adding and subtracting
/// `1.5 * 2^m + bias`, `m` the mantissa bits), the fraction `r = t - n` in [-0.5, 0.5] by a
/// polynomial (f32: degree 6, fitted for relative error, about 1e-7 evaluated in f32; f64:
/// `e^(r ln 2)` by its degree-12 Taylor polynomial, below 2e-16), and `2^n` from the bits of
/// `n + 1.5 * 2^m + bias` applied as a multiplication. Each evaluation is
/// emitted whole, one after the other (interleaving them all would keep every temporary live at
/// once; the out-of-order core overlaps the independent chains anyway).
pub fn exp2(e: &mut Emitter, ts: &[Val]) -> Vec<Val> {
    ts.iter().map(|t| exp2_one(e, t)).collect()
}

fn exp2_one(e: &mut Emitter, t: &Val) -> Val {
    let ty = t.ty().clone();
    let elem = ty.elem();
    let wide = elem.bits() == 64;
    let ity = elem.bits_int();
    let (lo, magic, shift) = if wide {
        (-1023.0, 6_755_399_441_055_744.0 + 1023.0, 52)
    } else {
        (-127.0, 12_582_912.0 + 127.0, 23)
    };
    let lo = e.float(lo, &ty);
    let magic = e.float(magic, &ty);
    let sh = e.int(shift, &ty.with_elem(ity));
    let tc = e.max(t, &lo);
    // `tc + magic` rounds `tc` to an integer (the ulp of `magic` is 1), held in the low bits of
    // the mantissa with the bias added; subtracting `magic` again gives it as a float. Two adds
    // instead of `roundeven` (a libm call per lane on x86-64 without SSE4.1), exact in the
    // default rounding mode.
    let biased = e.add(&tc, &magic);
    let n = e.sub(&biased, &magic);
    let r = e.sub(&tc, &n);
    let coeffs: Vec<f64> = if wide {
        // e^(r ln 2) = sum (ln 2)^k r^k / k!
        (0..=12)
            .map(|k| std::f64::consts::LN_2.powi(k) / factorial(k as u32))
            .collect()
    } else {
        vec![
            1.000_000_000_581_106_7,
            0.693_147_205_640_68,
            0.240_226_466_900_970_52,
            0.055_503_289_327_136_35,
            0.009_618_510_702_310_882,
            0.001_339_988_118_539_755_1,
            0.000_153_399_563_326_140_07,
        ]
    };
    // Horner from the highest coefficient.
    let mut y = e.float(coeffs[coeffs.len() - 1], &ty);
    for &c in coeffs[..coeffs.len() - 1].iter().rev() {
        let c = e.float(c, &ty);
        y = e.fma(&y, &r, &c);
    }
    let bits = e.bitcast(&biased, ity);
    let bits = e.shl(&bits, &sh);
    let scale = e.bitcast(&bits, elem);
    e.mul(&y, &scale)
}

/// `tanh(x)` of f32 or f64 scalars or vectors. f32: `x P(x^2) / Q(x^2)` with `|x|` clamped to
/// 9, `P` and `Q` of degree 4, fitted for relative error (about 3e-7 evaluated in f32). f64:
/// `(1 - t) / (1 + t)` with `t = e^{-2|x|}` and the sign of `x`, and its Taylor polynomial below
/// `|x| = 0.02`, where the quotient would cancel (below 1e-15 relative). NaN gives NaN.
pub fn tanh(e: &mut Emitter, x: &Val) -> Val {
    let ty = x.ty().clone();
    if ty.elem().bits() == 64 {
        return tanh_wide(e, x);
    }
    let (lo, hi) = (e.float(-9.0, &ty), e.float(9.0, &ty));
    let xc = e.max(x, &lo);
    let below = e.cmp(super::Cmp::Lt, &xc, &hi);
    let xc = e.select(&below, &xc, &hi);
    let z = e.mul(&xc, &xc);
    let horner = |e: &mut Emitter, cs: &[f64]| {
        let mut y = e.float(cs[cs.len() - 1], &ty);
        for &c in cs[..cs.len() - 1].iter().rev() {
            let c = e.float(c, &ty);
            y = e.fma(&y, &z, &c);
        }
        y
    };
    let p = horner(
        e,
        &[
            0.999_999_996_577_984_1,
            0.134_110_056_541_880_43,
            0.003_531_055_765_178_944,
            2.118_678_267_047_028e-5,
            1.414_337_823_545_016_8e-8,
        ],
    );
    let q = horner(
        e,
        &[
            1.0,
            0.467_443_326_796_386_8,
            0.026_012_278_606_729_61,
            0.000_334_338_611_789_067_3,
            8.101_884_308_822_616e-7,
        ],
    );
    let num = e.mul(&xc, &p);
    e.div(&num, &q)
}

fn tanh_wide(e: &mut Emitter, x: &Val) -> Val {
    let ty = x.ty().clone();
    let y = e.abs(x);
    let m2log2e = e.float(-2.0 * std::f64::consts::LOG2_E, &ty);
    let t = e.mul(&y, &m2log2e);
    let t = exp2(e, &[t]).remove(0);
    let one = e.float(1.0, &ty);
    let num = e.sub(&one, &t);
    let den = e.add(&one, &t);
    let big = e.div(&num, &den);
    // y - y^3/3 + 2y^5/15 - 17y^7/315
    let y2 = e.mul(&y, &y);
    let mut s = e.float(-17.0 / 315.0, &ty);
    for c in [2.0 / 15.0, -1.0 / 3.0, 1.0] {
        let c = e.float(c, &ty);
        s = e.fma(&s, &y2, &c);
    }
    let small = e.mul(&s, &y);
    let cut = e.float(0.02, &ty);
    let tiny = e.cmp(super::Cmp::Lt, &y, &cut);
    let r = e.select(&tiny, &small, &big);
    let zero = e.float(0.0, &ty);
    let neg = e.cmp(super::Cmp::Lt, x, &zero);
    let nr = e.neg(&r);
    e.select(&neg, &nr, &r)
}

/// The shuffles of [`transpose`] for `w` vectors of `w` lanes: per stage `s` (1, 2, 4, ..), the
/// lanes of the concatenation `[a, b]` (a[l] is l, b[l] is w + l) giving the new rows `i` and
/// `i + s` for every `i` with bit `s` clear: the off-diagonal `s x s` blocks of every `2s x 2s`
/// block are swapped.
fn transpose_plan(w: usize) -> Vec<(usize, Vec<usize>, Vec<usize>)> {
    assert!(w.is_power_of_two());
    let mut stages = Vec::new();
    let mut s = 1;
    while s < w {
        let lo = (0..w)
            .map(|l| if l & s == 0 { l } else { w + l - s })
            .collect();
        let hi = (0..w)
            .map(|l| if l & s == 0 { l + s } else { w + l })
            .collect();
        stages.push((s, lo, hi));
        s *= 2;
    }
    stages
}

/// The in-register transpose of `w` vectors of `w` lanes (`w` a power of two): lane `l` of
/// output `i` is lane `i` of input `l`. `log2 w` stages of `w` two-source shuffles
/// (`vpermt2ps` on AVX-512, unpacks and lane permutes on AVX2).
pub fn transpose(e: &mut Emitter, rows: &[Val]) -> Vec<Val> {
    let w = rows.len();
    assert!(rows.iter().all(|r| r.ty().lanes() == w));
    let mut cur = rows.to_vec();
    for (s, lo, hi) in transpose_plan(w) {
        let mut next = cur.clone();
        for i in (0..w).filter(|i| i & s == 0) {
            next[i] = e.shuffle(&cur[i], &cur[i + s], &lo);
            next[i + s] = e.shuffle(&cur[i], &cur[i + s], &hi);
        }
        cur = next;
    }
    cur
}

/// An associative, commutative lane operation of [`transpose_reduce`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// `a < b ? b : a` (see [`Emitter::max`]).
    Max,
    /// `a + b`.
    Add,
}

/// The plan of [`transpose_reduce`] for `n` vectors of `w` lanes: the pair levels (lanes of
/// `[a, b]` for the two operands of each combining op), the folds (lanes of `[v, v]` combined
/// with `v`), and the lane holding each input's result at the end.
type ReducePlan = (Vec<(Vec<usize>, Vec<usize>)>, Vec<Vec<usize>>, Vec<usize>);

fn reduce_plan(n: usize, w: usize) -> ReducePlan {
    assert!(n.is_power_of_two() && w.is_power_of_two() && n <= w);
    // After a level, each vector holds `c` inputs in groups of `g = w / c` lanes (input order);
    // a level keeps the first half of every group in `lo`, the second in `hi`.
    let (mut levels, mut c) = (Vec::new(), 1);
    while c < n {
        let g = w / c;
        let half = g / 2;
        let pick = |off: usize| -> Vec<usize> {
            let mut lanes = Vec::with_capacity(w);
            for side in 0..2 {
                for k in 0..c {
                    lanes.extend((0..half).map(|l| side * w + k * g + off + l));
                }
            }
            lanes
        };
        levels.push((pick(0), pick(half)));
        c *= 2;
    }
    // One vector of `n` groups of `g` lanes: fold each group onto its first lane.
    let (mut folds, mut g) = (Vec::new(), w / n);
    while g > 1 {
        let half = g / 2;
        folds.push(
            (0..w)
                .map(|l| if l % g < half { l + half } else { l })
                .collect(),
        );
        g = half;
    }
    let g = w / n;
    (levels, folds, (0..n).map(|i| i * g).collect())
}

/// Reduces each of `n` vectors of `w` lanes (`n` a power of two, at most `w`) to one value:
/// returns a vector of `n` lanes whose lane `i` is the reduction of `vs[i]`. Pairs of vectors
/// are combined by two shuffles and one op per level, then the lanes left per input are
/// folded: about `3n` ops for `n` rows instead of `n log2(w)` shuffles and ops plus `n` inserts
/// for row-by-row reductions.
pub fn transpose_reduce(e: &mut Emitter, vs: &[Val], op: Reduce) -> Val {
    let w = vs[0].ty().lanes();
    let (levels, folds, firsts) = reduce_plan(vs.len(), w);
    let apply = |e: &mut Emitter, a: &Val, b: &Val| match op {
        Reduce::Max => e.max(a, b),
        Reduce::Add => e.add(a, b),
    };
    let mut cur = vs.to_vec();
    for (lo, hi) in &levels {
        cur = cur
            .chunks(2)
            .map(|p| {
                let x = e.shuffle(&p[0], &p[1], lo);
                let y = e.shuffle(&p[0], &p[1], hi);
                apply(e, &x, &y)
            })
            .collect();
    }
    let mut v = cur.remove(0);
    for lanes in &folds {
        let sh = e.shuffle(&v, &v, lanes);
        v = apply(e, &v, &sh);
    }
    e.shuffle(&v, &v, &firsts)
}

/// Lane `i` of `v` in every lane of a vector of `w` lanes (one shuffle: `vpermps` or a
/// broadcast).
pub fn spread(e: &mut Emitter, v: &Val, i: usize, w: usize) -> Val {
    e.shuffle(v, v, &vec![i; w])
}

/// The largest lane of a vector (NaN lanes skipped), by halving shuffles.
pub fn hmax(e: &mut Emitter, v: &Val) -> Val {
    let w = v.ty().lanes();
    let mut m = v.clone();
    let mut half = w / 2;
    while half >= 1 {
        let lanes: Vec<usize> = (0..w).map(|i| i ^ half).collect();
        let sh = e.shuffle(&m, &m, &lanes);
        m = e.max(&m, &sh);
        half /= 2;
    }
    e.lane(&m, 0)
}

/// The elementwise sum of vectors as a balanced tree (for independent vectors of one step).
pub fn tree_sum(e: &mut Emitter, vs: Vec<Val>) -> Val {
    let mut level = vs;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| match p {
                [a, b] => e.add(a, b),
                [a] => a.clone(),
                _ => unreachable!(),
            })
            .collect();
    }
    level.remove(0)
}

/// The shuffles of [`transpose_sum`]: levels of pair steps; a step combines vectors `2i` and
/// `2i + 1` of the level into `shuffle(a, b, lo) + shuffle(a, b, hi)` (lane `l < w` of the
/// concatenation `[a, b]` is `a[l]`, lane `w + l` is `b[l]`).
type Step = (Vec<usize>, Vec<usize>);

/// The plan for `w` vectors of `w` lanes (`w` a power of two >= 4): two levels of pair sums
/// inside each 4-lane group (`shufps`-like even/odd shuffles, giving `[a(g), b(g), c(g), d(g)]`
/// in group `g`, `x(g)` the sum of group `g` of `x`), then halving across the 4-lane groups.
fn transpose_sum_plan(w: usize) -> Vec<Step> {
    assert!(w >= 4 && w.is_power_of_two());
    let groups = w / 4;
    let mut levels = Vec::new();
    for _ in 0..2 {
        let (mut even, mut odd) = (Vec::new(), Vec::new());
        for g in 0..groups {
            let b = 4 * g;
            even.extend([b, b + 2, w + b, w + b + 2]);
            odd.extend([b + 1, b + 3, w + b + 1, w + b + 3]);
        }
        levels.push((even, odd));
    }
    // Each vector now holds `nsg` source groups (4 sources each) of `c` 4-lane blocks of partial
    // sums; a step keeps the first half of every group's blocks in `lo`, the second in `hi`.
    let (mut c, mut nsg) = (groups, 1);
    while c > 1 {
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for side in 0..2 {
            for s in 0..nsg {
                for blk in 0..c {
                    let lanes = (0..4).map(|l| side * w + (s * c + blk) * 4 + l);
                    if blk < c / 2 {
                        lo.extend(lanes);
                    } else {
                        hi.extend(lanes);
                    }
                }
            }
        }
        levels.push((lo, hi));
        c /= 2;
        nsg *= 2;
    }
    levels
}

/// `w` vectors `acc[i]` of `w` lanes -> one vector whose lane `i` is the sum of `acc[i]`.
pub fn transpose_sum(e: &mut Emitter, acc: &[Val]) -> Val {
    let w = acc[0].ty().lanes();
    assert_eq!(acc.len(), w);
    let mut cur = acc.to_vec();
    for (lo, hi) in transpose_sum_plan(w) {
        let mut next = Vec::new();
        for p in cur.chunks(2) {
            let x = e.shuffle(&p[0], &p[1], &lo);
            let y = e.shuffle(&p[0], &p[1], &hi);
            next.push(e.add(&x, &y));
        }
        cur = next;
    }
    assert_eq!(cur.len(), 1);
    cur.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan, evaluated on numbers, sums each input vector into its lane (every width a
    /// tiling uses, AVX-512's included, which the machine running the tests may not have).
    #[test]
    fn transpose_sum_plan_sums_each_vector_into_its_lane() {
        for w in [4, 8, 16, 32] {
            let acc: Vec<Vec<f64>> = (0..w)
                .map(|i| (0..w).map(|l| ((i * 37 + l * 11) % 101) as f64).collect())
                .collect();
            let mut cur = acc.clone();
            for (lo, hi) in transpose_sum_plan(w) {
                assert_eq!((lo.len(), hi.len()), (w, w));
                cur = cur
                    .chunks(2)
                    .map(|p| {
                        let at = |i: usize| if i < w { p[0][i] } else { p[1][i - w] };
                        (0..w).map(|l| at(lo[l]) + at(hi[l])).collect()
                    })
                    .collect();
            }
            assert_eq!(cur.len(), 1, "w = {w}");
            for (i, row) in acc.iter().enumerate() {
                assert_eq!(cur[0][i], row.iter().sum::<f64>(), "w = {w}, lane {i}");
            }
        }
    }

    fn shuffle(a: &[f64], b: &[f64], lanes: &[usize]) -> Vec<f64> {
        let w = a.len();
        lanes
            .iter()
            .map(|&l| if l < w { a[l] } else { b[l - w] })
            .collect()
    }

    /// The transpose plan, evaluated on numbers, transposes (every width a tiling uses).
    #[test]
    fn transpose_plan_transposes() {
        for w in [2usize, 4, 8, 16] {
            let m: Vec<Vec<f64>> = (0..w)
                .map(|i| (0..w).map(|l| (i * w + l) as f64).collect())
                .collect();
            let mut cur = m.clone();
            for (s, lo, hi) in transpose_plan(w) {
                let mut next = cur.clone();
                for i in (0..w).filter(|i| i & s == 0) {
                    next[i] = shuffle(&cur[i], &cur[i + s], &lo);
                    next[i + s] = shuffle(&cur[i], &cur[i + s], &hi);
                }
                cur = next;
            }
            for i in 0..w {
                for l in 0..w {
                    assert_eq!(cur[i][l], m[l][i], "w {w}");
                }
            }
        }
    }

    /// The reduce plan, evaluated on numbers, sums each input into its result lane (every
    /// row count and width a tiling uses).
    #[test]
    fn reduce_plan_reduces_each_input() {
        for w in [4usize, 8, 16] {
            for n in (0..=w.trailing_zeros()).map(|k| 1usize << k) {
                let vs: Vec<Vec<f64>> = (0..n)
                    .map(|i| (0..w).map(|l| ((i * 31 + l * 7) % 23) as f64).collect())
                    .collect();
                let (levels, folds, firsts) = reduce_plan(n, w);
                let mut cur = vs.clone();
                for (lo, hi) in &levels {
                    cur = cur
                        .chunks(2)
                        .map(|p| {
                            let (x, y) = (shuffle(&p[0], &p[1], lo), shuffle(&p[0], &p[1], hi));
                            x.iter().zip(&y).map(|(a, b)| a + b).collect()
                        })
                        .collect();
                }
                let mut v = cur.remove(0);
                for lanes in &folds {
                    let sh = shuffle(&v, &v, lanes);
                    v = v.iter().zip(&sh).map(|(a, b)| a + b).collect();
                }
                for (i, &lane) in firsts.iter().enumerate() {
                    assert_eq!(v[lane], vs[i].iter().sum::<f64>(), "w {w} n {n} input {i}");
                }
            }
        }
    }

    #[test]
    fn factorials() {
        assert_eq!(factorial(0), 1.0);
        assert_eq!(factorial(5), 120.0);
    }
}
