//! The wrapper of an attention that is not a 2-D kernel by itself (rank 3/4, or implicitly
//! positioned): loops over the leading dims, maps query head `h` to key/value head
//! `h / (Hq / Hkv)`, slices the mask (broadcast dims of size 1 read at index 0), generates the
//! bottom-right aligned positions, folds `causal` into a window, spreads per-head sinks and
//! slopes over the head's rows, passes the batch and head indices and the inputs of user mods,
//! calls the 2-D kernel on every slice and gathers its results.

use super::{Band, Spec};
use crate::emit::{self, Cmp, Emitter, Scalar, Ty, Val};

/// The text of the wrapper `@name` of `spec`, calling the 2-D kernel `@callee`.
pub fn function(name: &str, callee: &str, spec: &Spec) -> String {
    let (st, ct) = (Scalar::of(spec.dtype), Scalar::of(spec.dtype.compute()));
    let rank = spec.rank;
    let tn = Ty::dyn_tensor(rank, st);
    // Sinks and slopes: per query head (`[Hq]`) at rank 3/4, per row (`[Sq]`) at rank 2.
    let per_row = Ty::dyn_tensor(1, Scalar::F32);
    let mut args = vec![
        ("q", tn.clone()),
        ("k", tn.clone()),
        ("v", tn.clone()),
        ("scale", ct.into()),
    ];
    if let Some(mr) = spec.mask_rank {
        args.push(("mask", Ty::dyn_tensor(mr, Scalar::F32)));
    }
    for (on, arg, ty) in [
        (spec.positions, "pos", Ty::dyn_tensor(1, Scalar::F32)),
        (
            spec.window,
            "window",
            Ty::Tensor(vec![Some(2)], Scalar::F32),
        ),
        (spec.softcap, "softcap", Ty::dyn_tensor(0, Scalar::F32)),
        (spec.sinks, "sinks", per_row.clone()),
        (spec.alibi, "slopes", per_row.clone()),
    ] {
        if on {
            args.push((arg, ty));
        }
    }
    // The inputs of user mods.
    let names: Vec<String> = (0..spec.mods.as_ref().map_or(0, |m| m.inputs.len()))
        .map(|n| format!("u{n}"))
        .collect();
    if let Some(m) = &spec.mods {
        for (n, (d, s)) in names.iter().zip(&m.inputs) {
            args.push((n, Ty::dyn_tensor(s.len(), Scalar::of(*d))));
        }
    }
    args.push(("init", tn.clone()));
    let lse_ty = Ty::dyn_tensor(rank - 1, ct);
    let mut results = vec![tn.clone()];
    if spec.lse {
        results.push(lse_ty.clone());
    }
    let var = spec.variant();
    emit::function_n(name, &args, &results, |e, a| {
        let arg = |n: &str| args.iter().position(|(x, _)| *x == n).map(|i| a[i].clone());
        let lead = rank - 2;
        let (q, k, v, scale) = (&a[0], &a[1], &a[2], &a[3]);
        let mask = arg("mask");
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
        let positions = match arg("pos") {
            Some(p) => Some(p),
            None => var.positions().then(|| bottom_right_positions(e, &sq, &sk)),
        };
        let window = arg("window").map(|w| if spec.causal { causal_window(e, &w) } else { w });
        debug_assert!(var.band != Band::Window || window.is_some());
        let (softcap, sinks, slopes) = (arg("softcap"), arg("sinks"), arg("slopes"));
        let mod_inputs: Vec<Val> = names.iter().filter_map(|n| arg(n)).collect();
        let init = a[a.len() - 1].clone();
        let mut outs = vec![init];
        if spec.lse {
            let sizes: Vec<Val> = qd[..rank - 1].to_vec();
            let names = sizes.iter().map(Val::name).collect::<Vec<_>>().join(", ");
            outs.push(e.op(
                lse_ty.clone(),
                format_args!("tensor.empty({names}) : {lse_ty}"),
            ));
        }
        let slices = Slices {
            spec,
            callee,
            q,
            k,
            v,
            scale,
            mask: mask.as_ref(),
            ones: &ones,
            group: &group,
            dims: [&sq, &d, &sk, &dv],
            per_call: [&positions, &window, &softcap],
            per_head: [&sinks, &slopes],
            mod_inputs: &mod_inputs,
        };
        let mut call = |e: &mut Emitter, ivs: &[Val], outs: Vec<Val>| slices.call(e, ivs, outs);
        e.nest(&qd[..lead], outs, &mut call)
    })
}

/// What the call of the 2-D kernel on one slice needs.
struct Slices<'a> {
    spec: &'a Spec,
    callee: &'a str,
    q: &'a Val,
    k: &'a Val,
    v: &'a Val,
    scale: &'a Val,
    mask: Option<&'a Val>,
    /// Per leading dim of the mask: whether it has size 1 (broadcast).
    ones: &'a [Val],
    group: &'a Val,
    /// Sq, D, Sk, Dv.
    dims: [&'a Val; 4],
    /// Positions, window, softcap: the same for every slice.
    per_call: [&'a Option<Val>; 3],
    /// Sinks, slopes: per query head (the last leading index) at rank 3/4.
    per_head: [&'a Option<Val>; 2],
    /// The inputs of user mods (passed whole, after the slice's batch and head indices).
    mod_inputs: &'a [Val],
}

impl Slices<'_> {
    /// The kernel on the slice at leading indices `ivs`, its results inserted into `outs`.
    fn call(&self, e: &mut Emitter, ivs: &[Val], outs: Vec<Val>) -> Vec<Val> {
        let (rank, spec) = (self.spec.rank, self.spec);
        let [sq, d, sk, dv] = self.dims;
        // k and v: the head index divided by the group size.
        let mut kv_idx = ivs.to_vec();
        if rank >= 3
            && let Some(h) = kv_idx.last_mut()
        {
            *h = e.div(h, self.group);
        }
        let mut args = vec![
            e.slice2(self.q, ivs, sq, d),
            e.slice2(self.k, &kv_idx, sk, d),
            e.slice2(self.v, &kv_idx, sk, dv),
            self.scale.clone(),
        ];
        if let Some(m) = self.mask {
            let ms = if spec.mask_rank.unwrap_or(0) > 2 {
                let c0 = e.idx(0);
                let idx: Vec<Val> = ivs
                    .iter()
                    .zip(self.ones)
                    .map(|(iv, one)| e.select(one, &c0, iv))
                    .collect();
                e.slice2(m, &idx, sq, sk)
            } else {
                m.clone()
            };
            args.push(ms);
        }
        args.extend(self.per_call.iter().filter_map(|x| (*x).clone()));
        for per_head in self.per_head.iter().filter_map(|x| x.as_ref()) {
            args.push(if rank == 2 {
                per_head.clone()
            } else {
                spread_head(e, per_head, &ivs[ivs.len() - 1], sq)
            });
        }
        if spec.mods.is_some() {
            // The batch and query head of the slice (0 where q has no such dim).
            let c0 = e.idx(0);
            let (b, h) = match ivs {
                [b, h] => (b.clone(), h.clone()),
                [h] => (c0.clone(), h.clone()),
                _ => (c0.clone(), c0),
            };
            args.push(b);
            args.push(h);
            args.extend(self.mod_inputs.iter().cloned());
        }
        args.push(e.slice2(&outs[0], ivs, sq, dv));
        let (st, ct) = (Scalar::of(spec.dtype), Scalar::of(spec.dtype.compute()));
        let mut rtys = vec![Ty::dyn_tensor(2, st)];
        if spec.lse {
            rtys.push(Ty::dyn_tensor(1, ct));
        }
        let r = e.call_n(self.callee, &args, &rtys);
        let mut next = vec![e.insert_slice2(&r[0], &outs[0], ivs, sq, dv)];
        if spec.lse {
            next.push(e.insert_slice1(&r[1], &outs[1], ivs, sq));
        }
        next
    }
}

/// `positions[i] = i + Sk - Sq` (f32; negative: before the first key): the bottom-right aligned
/// position of each query row.
fn bottom_right_positions(e: &mut Emitter, sq: &Val, sk: &Val) -> Val {
    e.generate1(sq, Scalar::F32, |e, i| {
        let x = e.add(i, sk);
        let x = e.sub(&x, sq);
        let x = e.index_cast(&x, Scalar::I64);
        e.si_to_fp(&x, Scalar::F32)
    })
}

/// The window `(L, min(R, 0))`: causal within the window.
fn causal_window(e: &mut Emitter, w: &Val) -> Val {
    let (c0, c1) = (e.idx(0), e.idx(1));
    let l = e.extract(w, &[&c0]);
    let r = e.extract(w, &[&c1]);
    let zero = e.float(0.0, &Scalar::F32.into());
    let after = e.cmp(Cmp::Lt, &zero, &r);
    let r = e.select(&after, &zero, &r);
    let ty = w.ty().clone();
    e.op(
        ty.clone(),
        format_args!("tensor.from_elements {l}, {r} : {ty}"),
    )
}

/// The per-head value `values[h]` spread over the head's `sq` rows (`tensor<?xf32>`).
fn spread_head(e: &mut Emitter, values: &Val, h: &Val, sq: &Val) -> Val {
    let x = e.extract(values, &[h]);
    e.generate1(sq, Scalar::F32, |_, _| x.clone())
}
