//! The math the kernels share: exponentials as polynomials (`math.exp` on vectors would become
//! scalar `expf` calls), horizontal maxima and sums, and the transposing reduction of the decode
//! path. No op assumes the absence of NaN or infinities.

use super::{Emitter, Ty, Val};

/// `n!` as an f64.
fn factorial(n: u32) -> f64 {
    (1..=n).map(f64::from).product()
}

/// `exp(x)` for `x <= 0` (larger inputs are not clamped) of a float scalar or vector type: for
/// f32 a Cephes-style polynomial (range reduction with `math.roundeven`, a degree-5 polynomial,
/// the exponent built with a shift and a bitcast; about 1e-7 relative), for f64 `ln 2` split in
/// two parts and a degree-12 Taylor polynomial on `|r| <= ln(2)/2` (below 2e-16 relative).
///
/// With `flush`, inputs below the clamp (`-inf`: removed keys) give exactly 0. A NaN input gives
/// NaN either way.
pub fn exp(e: &mut Emitter, x: &Val, flush: bool) -> Val {
    let ty = x.ty().clone();
    let ity = ty.with_elem(ty.elem().bits_int());
    let wide = ty.elem().bits() == 64;
    let (lo_x, c1v, c2v, bias_v, shift) = if wide {
        (
            -708.39,
            -6.931_457_519_531_25e-1,
            -1.428_606_820_309_417_2e-6,
            1023,
            52,
        )
    } else {
        (-87.336_54, -0.693_359_375, 2.121_944_4e-4, 127, 23)
    };
    let lo = e.float(lo_x, &ty);
    let log2e = e.float(std::f64::consts::LOG2_E, &ty);
    let c1 = e.float(c1v, &ty);
    let c2 = e.float(c2v, &ty);
    let one = e.float(1.0, &ty);
    let bias = e.int(bias_v, &ity);
    let sh = e.int(shift, &ity);
    // `x < lo ? lo : x`: a NaN passes through (and makes the result NaN).
    let xc = e.max(x, &lo);
    let t = e.mul(&xc, &log2e);
    let fx = e.round_even(&t);
    let r1 = e.fma(&fx, &c1, &xc);
    let r = e.fma(&fx, &c2, &r1);
    let y = if wide {
        // 1 + r + r^2/2! + ... + r^12/12!, by Horner.
        let mut y = e.float(1.0 / factorial(12), &ty);
        for n in (0..12).rev() {
            let c = e.float(1.0 / factorial(n), &ty);
            y = e.fma(&y, &r, &c);
        }
        y
    } else {
        let p = [
            1.987_569_15e-4,
            1.398_199_950_7e-3,
            8.333_451_907_3e-3,
            4.166_579_589_4e-2,
            1.666_666_545_9e-1,
            5.000_000_120_1e-1,
        ];
        let pc: Vec<Val> = p.iter().map(|&c| e.float(c, &ty)).collect();
        let z = e.mul(&r, &r);
        let mut y = e.fma(&pc[0], &r, &pc[1]);
        for c in &pc[2..] {
            y = e.fma(&y, &r, c);
        }
        let y = e.fma(&y, &z, &r);
        e.add(&y, &one)
    };
    let n = e.fp_to_si(&fx, ity.elem());
    let n = e.add(&n, &bias);
    let n = e.shl(&n, &sh);
    let p2 = e.bitcast(&n, ty.elem());
    let res = e.mul(&y, &p2);
    if !flush {
        return res;
    }
    let zero = e.float(0.0, &ty);
    let under = e.cmp(super::Cmp::Lt, x, &lo);
    e.select(&under, &zero, &res)
}

/// The constants of [`exp2_nonpositive`] for vectors of type `ty` (f32).
pub struct Exp2 {
    lo: Val,
    magic: Val,
    cs: Vec<Val>,
    sh: Val,
}

impl Exp2 {
    /// The constants for `ty`.
    pub fn new(e: &mut Emitter, ty: &Ty) -> Exp2 {
        let ity = ty.with_elem(ty.elem().bits_int());
        let lo = e.float(-127.0, ty);
        // 1.5 * 2^23 + 127: added to an integer n (|n| < 2^22), it leaves n + 127 in the low bits.
        let magic = e.float(12_583_039.0, ty);
        let c = [
            1.305_630_1e-3,
            9.678_750_1e-3,
            5.551_638_9e-2,
            2.402_209_2e-1,
            6.931_460_5e-1,
            1.0,
        ];
        let cs = c.iter().map(|&x| e.float(x, ty)).collect();
        let sh = e.int(23, &ity);
        Exp2 { lo, magic, cs, sh }
    }
}

/// `2^t` for every `t` of `ts` (`t <= ~0`, f32 vectors), exactly 0 below about -126.5 (the
/// clamp to -127 makes the exponent field 0, so `-inf` gives 0): `n = roundeven(t)`, the
/// fraction `r = t - n` by a degree-5 polynomial on [-0.5, 0.5] (relative error about 3e-7) in
/// Estrin's scheme (depth 3: shorter chains than Horner's for one more multiplication), and `2^n`
/// built from the bits of `n + 1.5 * 2^23 + 127` and applied as a multiplication. A NaN `t` gives
/// NaN; no `fptosi`, so no poison. The independent evaluations are emitted step by step,
/// interleaved.
pub fn exp2_nonpositive(e: &mut Emitter, k: &Exp2, ts: &[Val]) -> Vec<Val> {
    let ty = ts[0].ty().clone();
    let ity = ty.elem().bits_int();
    let tc: Vec<Val> = ts.iter().map(|t| e.max(t, &k.lo)).collect();
    // n = round(t), r = t - n in [-0.5, 0.5]; the bits of n + magic hold n + 127 (off the
    // critical path).
    let fx: Vec<Val> = tc.iter().map(|t| e.round_even(t)).collect();
    let r: Vec<Val> = tc.iter().zip(&fx).map(|(t, f)| e.sub(t, f)).collect();
    let kk: Vec<Val> = fx.iter().map(|x| e.add(x, &k.magic)).collect();
    // ((c0 r + c1) r^2 + (c2 r + c3)) r^2 + (c4 r + c5).
    let c = &k.cs;
    let r2: Vec<Val> = r.iter().map(|r| e.mul(r, r)).collect();
    let lin = |e: &mut Emitter, hi: &Val, lo: &Val| -> Vec<Val> {
        r.iter().map(|r| e.fma(hi, r, lo)).collect()
    };
    let p01 = lin(e, &c[0], &c[1]);
    let p23 = lin(e, &c[2], &c[3]);
    let p45 = lin(e, &c[4], &c[5]);
    let q: Vec<Val> = (0..ts.len())
        .map(|i| e.fma(&p01[i], &r2[i], &p23[i]))
        .collect();
    let y: Vec<Val> = (0..ts.len())
        .map(|i| e.fma(&q[i], &r2[i], &p45[i]))
        .collect();
    let kb: Vec<Val> = kk.iter().map(|x| e.bitcast(x, ity)).collect();
    let nb: Vec<Val> = kb.iter().map(|x| e.shl(x, &k.sh)).collect();
    let scale: Vec<Val> = nb.iter().map(|x| e.bitcast(x, ty.elem())).collect();
    y.iter().zip(&scale).map(|(y, s)| e.mul(y, s)).collect()
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

/// The elementwise maximum of vectors, then [`hmax`]: the maximum of every lane.
pub fn max_of(e: &mut Emitter, vs: &[Val]) -> Val {
    let mut m = vs[0].clone();
    for v in &vs[1..] {
        m = e.max(v, &m);
    }
    hmax(e, &m)
}

/// The elementwise sum of vectors (a chain, in order), then one tree reduction.
pub fn sum_of(e: &mut Emitter, vs: &[Val]) -> Val {
    let mut s = vs[0].clone();
    for v in &vs[1..] {
        s = e.add(&s, v);
    }
    e.reduce_add(&s)
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

    #[test]
    fn factorials() {
        assert_eq!(factorial(0), 1.0);
        assert_eq!(factorial(5), 120.0);
    }
}
