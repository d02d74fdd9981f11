//! The wrapper of a rank-3/4 (or implicitly causal) attention: loops over the leading dims,
//! maps query head `h` to key/value head `h / (Hq / Hkv)`, slices the mask (broadcast dims of
//! size 1 read at index 0), generates the bottom-right aligned causal positions, and calls the
//! 2-D kernel on every slice.

use super::Spec;
use crate::emit::{self, Cmp, Emitter, Scalar, Ty, Val};

/// The text of the wrapper `@name` of `spec`, calling the 2-D kernel `@callee`.
pub fn function(name: &str, callee: &str, spec: &Spec) -> String {
    let (st, ct) = (Scalar::of(spec.dtype), Scalar::of(spec.dtype.compute()));
    let rank = spec.rank;
    let tn = Ty::dyn_tensor(rank, st);
    let mut args = vec![
        ("q", tn.clone()),
        ("k", tn.clone()),
        ("v", tn.clone()),
        ("scale", ct.into()),
    ];
    if let Some(mr) = spec.mask_rank {
        args.push(("mask", Ty::dyn_tensor(mr, Scalar::F32)));
    }
    args.push(("init", tn.clone()));
    emit::function(name, &args, &tn, |e, a| {
        let lead = rank - 2;
        let (q, k, v, scale) = (&a[0], &a[1], &a[2], &a[3]);
        let mask = spec.mask_rank.map(|_| a[4].clone());
        let c1 = e.idx(1);
        let qd: Vec<Val> = (0..rank).map(|i| e.dim(q, i)).collect();
        let (sq, d) = (qd[lead].clone(), qd[lead + 1].clone());
        let (sk, dv) = (e.dim(k, lead), e.dim(v, lead + 1));
        // Query heads per key/value head (at least 1, so that bad dynamic shapes stay in
        // bounds; callers check them).
        let group = if rank >= 3 {
            let hkv = e.dim(k, rank - 3);
            let g = e.div(&qd[rank - 3], &hkv);
            e.max_u(&g, &c1)
        } else {
            c1.clone()
        };
        // The mask's leading dims: read at the loop index, or at 0 where the mask has size 1.
        let mrank = spec.mask_rank.unwrap_or(0);
        let ones: Vec<Val> = (0..mrank.saturating_sub(2))
            .map(|i| {
                let m = e.dim(mask.as_ref().unwrap_or(q), i);
                e.cmp(Cmp::Eq, &m, &c1)
            })
            .collect();
        let positions = spec.causal.then(|| bottom_right_positions(e, &sq, &sk));
        let mut call = |e: &mut Emitter, ivs: &[Val], out: Val| -> Val {
            // k and v: the head index divided by the group size.
            let mut kv_idx = ivs.to_vec();
            if rank >= 3
                && let Some(h) = kv_idx.last_mut()
            {
                *h = e.div(h, &group);
            }
            let mut args = vec![
                e.slice2(q, ivs, &sq, &d),
                e.slice2(k, &kv_idx, &sk, &d),
                e.slice2(v, &kv_idx, &sk, &dv),
                scale.clone(),
            ];
            if let Some(m) = &mask {
                let ms = if mrank > 2 {
                    let c0 = e.idx(0);
                    let idx: Vec<Val> = ivs
                        .iter()
                        .zip(&ones)
                        .map(|(iv, one)| e.select(one, &c0, iv))
                        .collect();
                    e.slice2(m, &idx, &sq, &sk)
                } else {
                    m.clone()
                };
                args.push(ms);
            }
            if let Some(p) = &positions {
                args.push(p.clone());
            }
            args.push(e.slice2(&out, ivs, &sq, &dv));
            let r = e.call(callee, &args, &Ty::dyn_tensor(2, st));
            e.insert_slice2(&r, &out, ivs, &sq, &dv)
        };
        e.nest(&qd[..lead], a[a.len() - 1].clone(), &mut call)
    })
}

/// `positions[i] = i + Sk - Sq` (f32; negative: the row sees no key): the bottom-right aligned
/// last visible key of each query row.
fn bottom_right_positions(e: &mut Emitter, sq: &Val, sk: &Val) -> Val {
    e.generate1(sq, Scalar::F32, |e, i| {
        let x = e.add(i, sk);
        let x = e.sub(&x, sq);
        let x = e.index_cast(&x, Scalar::I64);
        e.si_to_fp(&x, Scalar::F32)
    })
}
