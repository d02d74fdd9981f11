//! The 2-D fused kernel: its arguments, sizes and in-place views of K and V ([`Ctx`]), the
//! choice between the packed and the streaming path, and the packed path as a sequence of named
//! phases.

use super::ctx::Ctx;
use super::hook::{
    Keys, Mods, Rows, ScoreMod,
    band::Band as BandMod,
    bias::{Alibi, Sinks, Softcap},
    mask::AddMask,
    user::{self, User},
};
use super::{Band, UserMods, Variant, decode, pack, softmax, tiles};
use crate::emit::{self, Cmp, Emitter, Scalar, Ty, Val};
use attn_runtime::mods::ModKind;
use attn_runtime::{
    DType,
    tuning::{PANEL_CACHE_BYTES, Tiling},
};

/// The text of the 2-D kernel `@name` for `dt` and `var` (tiling `base` in f32 lanes), with
/// the user mods `mods` when `var.user` is set.
pub fn function(
    name: &str,
    base: &Tiling,
    dt: DType,
    var: Variant,
    mods: Option<&UserMods>,
) -> String {
    let (st, ct) = (Scalar::of(dt), Scalar::of(dt.compute()));
    let t = base.lanes_of(ct.bits());
    let t2 = Ty::dyn_tensor(2, st);
    let f1 = Ty::dyn_tensor(1, Scalar::F32);
    let mut args = vec![
        ("q", t2.clone()),
        ("k", t2.clone()),
        ("v", t2.clone()),
        ("scale", ct.into()),
    ];
    for (on, arg, ty) in [
        (var.mask, "mask", Ty::dyn_tensor(2, Scalar::F32)),
        (var.positions(), "pos", f1.clone()),
        (
            var.band == Band::Window,
            "window",
            Ty::Tensor(vec![Some(2)], Scalar::F32),
        ),
        (var.softcap, "softcap", Ty::dyn_tensor(0, Scalar::F32)),
        (var.sinks, "sinks", f1.clone()),
        (var.alibi, "slopes", f1.clone()),
    ] {
        if on {
            args.push((arg, ty));
        }
    }
    // User mods: the call's batch and head, then the mods' inputs.
    let mods = mods.filter(|_| var.user.is_some());
    let names: Vec<String> = (0..mods.map_or(0, |m| m.inputs.len()))
        .map(|n| format!("u{n}"))
        .collect();
    if let Some(m) = mods {
        args.push(("mb", Ty::INDEX));
        args.push(("mh", Ty::INDEX));
        for (n, (d, s)) in names.iter().zip(&m.inputs) {
            args.push((n, Ty::dyn_tensor(s.len(), Scalar::of(*d))));
        }
    }
    args.push(("init", t2.clone()));
    let mut results = vec![t2.clone()];
    if var.lse {
        results.push(Ty::dyn_tensor(1, ct));
    }
    emit::function_n(name, &args, &results, |e, a| {
        let arg = |n: &str| {
            let at = args.iter().position(|(x, _)| *x == n);
            at.map(|i| a[i].clone())
        };
        let (sq, d) = (e.dim(&a[0], 0), e.dim(&a[0], 1));
        let (sk, dv) = (e.dim(&a[1], 0), e.dim(&a[2], 1));
        let dvp = e.round_up(&dv, t.w);
        let log2e = e.float(std::f64::consts::LOG2_E, &ct.into());
        let scale2 = e.mul(&a[3], &log2e);
        let (ku, k_unit) = unit_rows(e, &a[1], &sk, &d);
        let (vu, v_unit) = unit_rows(e, &a[2], &sk, &dv);
        let lanes = (st == Scalar::BF16).then(|| e.alloc(Ty::memref(&[Some(t.w)], ct), &[]));
        let cx = Ctx {
            t,
            st,
            ct,
            vt: Ty::vector(t.w, ct),
            q: a[0].clone(),
            k: a[1].clone(),
            v: a[2].clone(),
            scale2,
            sq,
            d,
            sk,
            dv,
            dvp,
            ku,
            vu,
            k_unit,
            v_unit,
            lanes,
        };
        // The options in the order they act on a score: softcap, ALiBi, mask, then the keys'
        // removal, then the sinks in the softmax.
        let mut list: Vec<Box<dyn ScoreMod>> = Vec::new();
        if let Some(cap) = arg("softcap") {
            list.push(Box::new(Softcap::new(e, &cx, &cap)));
        }
        // The user's mods: the score mod after the softcap, the mask mod after every mask.
        let env = match (mods, arg("mb"), arg("mh")) {
            (Some(m), Some(b), Some(h)) => {
                let inputs: Vec<Val> = names.iter().filter_map(|n| arg(n)).collect();
                Some((m, user::env(e, &cx, m, &b, &h, &inputs)))
            }
            _ => None,
        };
        if let Some((m, env)) = &env
            && let Some(x) = &m.pair.score
        {
            list.push(Box::new(User::new(e, &cx, ModKind::Score, x, m, env)));
        }
        if let (Some(slopes), Some(pos)) = (arg("slopes"), arg("pos")) {
            list.push(Box::new(Alibi::new(slopes, pos)));
        }
        if let Some(mask) = arg("mask") {
            list.push(Box::new(AddMask::new(mask)));
        }
        if var.band != Band::All
            && let Some(pos) = arg("pos")
        {
            list.push(Box::new(BandMod::new(pos, arg("window"))));
        }
        if let Some((m, env)) = &env
            && let Some(x) = &m.pair.mask
        {
            list.push(Box::new(User::new(e, &cx, ModKind::Mask, x, m, env)));
        }
        if let Some(sinks) = arg("sinks") {
            list.push(Box::new(Sinks::new(sinks)));
        }
        let mut mods = Mods::new(list);
        let init = a[a.len() - 1].clone();
        body(e, &cx, &mut mods, init, var.lse)
    })
}

/// A tensor `[rows, cols]` as a buffer with unit stride along its rows (a view that is only
/// valid where the returned `i1` holds: the tensor's rows have unit stride).
fn unit_rows(e: &mut Emitter, t: &Val, rows: &Val, cols: &Val) -> (Val, Val) {
    let buf = e.to_buffer(t);
    let meta = e.strided_metadata(&buf);
    let c1 = e.idx(1);
    let unit = e.cmp(Cmp::Eq, &meta.strides[1], &c1);
    let ty = Ty::strided_memref(2, t.ty().elem(), true);
    let view = e.reinterpret(
        &buf,
        ty,
        &meta.offset,
        &[rows, cols],
        &[meta.strides[0].name(), "1"],
    );
    (view, unit)
}

/// The kernel body: super-blocks of `QS` rows, each by the decode or the packed path, then
/// normalized into the output (and, with `lse`, the rows' log-sum-exp).
fn body(e: &mut Emitter, cx: &Ctx, mods: &mut Mods, init: Val, lse: bool) -> Vec<Val> {
    let qs = cx.t.qs;
    // Few query rows with unit-stride K and V rows: the streaming decode path, which reads K
    // and V in place; else the packed path.
    let few = {
        let rmax = e.idx(attn_runtime::tuning::DECODE_ROWS);
        e.cmp(Cmp::Ule, &cx.sq, &rmax)
    };
    let both = e.and(&cx.k_unit, &cx.v_unit);
    let streaming = e.and(&few, &both);
    let ob = e.alloc(Ty::memref(&[Some(qs), None], cx.ct), &[&cx.dvp]);
    let (ms, ls) = (
        e.alloc(Ty::memref(&[Some(qs)], cx.ct), &[]),
        e.alloc(Ty::memref(&[Some(qs)], cx.ct), &[]),
    );
    let panels = Panels::alloc(e, cx);
    let (c0, cqs) = (e.idx(0), e.idx(qs));
    let mut carried = vec![init];
    if lse {
        let empty = Ty::dyn_tensor(1, cx.ct);
        carried.push(e.op(
            empty.clone(),
            format_args!("tensor.empty({}) : {empty}", cx.sq),
        ));
    }
    e.for_(&c0, &cx.sq, &cqs, &carried, |e, q0, out| {
        let left = e.sub(&cx.sq, q0);
        let rows = e.min_s(&left, &cqs);
        // O (unnormalized) and l of the rows into `ob` and `ls`, by either path. (The branches
        // are emitted one after the other; each borrows the mods in turn.)
        let shared = std::cell::RefCell::new(&mut *mods);
        e.if_else(
            &streaming,
            |e| decode::run(e, cx, &mut shared.borrow_mut(), &ob, &ms, &ls),
            |e| {
                prefill(
                    e,
                    cx,
                    &mut shared.borrow_mut(),
                    &panels,
                    q0,
                    &rows,
                    [&ob, &ms, &ls],
                )
            },
        );
        let flush = mods.removes_keys();
        softmax::normalize(e, cx, flush, q0, &rows, &ob, &ms, &ls, out)
    })
}

/// The packed K/V panels of a kernel call: one slot per key block of the call when they fit
/// [`PANEL_CACHE_BYTES`] (each block is packed once, by the first super-block that needs it, and
/// reused by the others), else one slot packed anew for every key block of every super-block.
struct Panels {
    /// `[slot][D'][BC]`: K^T * scale2.
    k: Val,
    /// `[slot][BC][Dv']`.
    v: Val,
    /// `[slot]`: 1 once packed.
    packed: Val,
    /// `i1`: one slot per key block.
    cached: Val,
}

impl Panels {
    fn alloc(e: &mut Emitter, cx: &Ctx) -> Panels {
        let (w, bc) = (cx.t.w, cx.t.bc());
        let c1 = e.idx(1);
        let dp = e.round_up(&cx.d, w);
        let nkb = {
            let r = e.round_up(&cx.sk, bc);
            let cbc = e.idx(bc);
            e.div(&r, &cbc)
        };
        let per_block = e.add(&dp, &cx.dvp);
        let bytes = e.idx(bc * (cx.ct.bits() as usize / 8));
        let block_bytes = e.mul(&per_block, &bytes);
        let total = e.mul(&nkb, &block_bytes);
        let budget = e.idx(PANEL_CACHE_BYTES);
        let cached = e.cmp(Cmp::Ule, &total, &budget);
        let slots = e.select(&cached, &nkb, &c1);
        let k = e.alloc(Ty::memref(&[None, None, Some(bc)], cx.ct), &[&slots, &dp]);
        let v = e.alloc(
            Ty::memref(&[None, Some(bc), None], cx.ct),
            &[&slots, &cx.dvp],
        );
        let packed = e.alloc(Ty::memref(&[None], Scalar::I32), &[&slots]);
        let zero = e.int(0, &Ty::I32);
        e.range(&slots, |e, i| e.store(&zero, &packed, &[i]));
        Panels {
            k,
            v,
            packed,
            cached,
        }
    }

    /// The panels of key block `kb` (2-D views), packed if they are not yet.
    fn get(&self, e: &mut Emitter, cx: &Ctx, kb: &Val) -> (Val, Val) {
        let bc = cx.t.bc();
        let (c0, cbc) = (e.idx(0), e.idx(bc));
        let block = e.div(kb, &cbc);
        let slot = e.select(&self.cached, &block, &c0);
        let kp = e.slot(&self.k, &slot);
        let vp = e.slot(&self.v, &slot);
        let flag = e.load(&self.packed, &[&slot]);
        let zero = e.int(0, &Ty::I32);
        let fresh = e.cmp(Cmp::Eq, &flag, &zero);
        let reused = e.not(&self.cached);
        let stale = e.or(&fresh, &reused);
        e.when(&stale, |e| {
            pack::pack_kv(e, cx, kb, &kp, &vp);
            let one = e.int(1, &Ty::I32);
            e.store(&one, &self.packed, &[&slot]);
        });
        (kp, vp)
    }
}

/// The packed path for the super-block of rows `q0..q0 + rows`: leaves the unnormalized output
/// rows in `ob` and their sums in `ls`.
#[allow(clippy::too_many_arguments)]
fn prefill(
    e: &mut Emitter,
    cx: &Ctx,
    mods: &mut Mods,
    panels: &Panels,
    q0: &Val,
    rows: &Val,
    [ob, ms, ls]: [&Val; 3],
) {
    let t = cx.t;
    let (w, br, bc, qs) = (t.w, t.br, t.bc(), t.qs);
    let qp = e.alloc(
        Ty::memref(&[Some(qs / br), None, Some(br)], cx.ct),
        &[&cx.d],
    );
    // P of every micro-block of a key block, and alpha of every row: the score and softmax
    // phase runs over all micro-blocks before the P.V phase, so that the latency of one
    // micro-block's softmax overlaps the next one's score tile.
    let pt = e.alloc(Ty::memref(&[Some(qs / br), Some(br), Some(bc)], cx.ct), &[]);
    let at = e.alloc(Ty::memref(&[Some(qs)], cx.ct), &[]);
    let cbr = e.idx(br);
    let nmb = {
        let r = e.round_up(rows, br);
        e.div(&r, &cbr)
    };
    let nrows = e.mul(&nmb, &cbr);
    pack::pack_q(e, cx, q0, &nmb, &qp);
    let block = Rows {
        q0: q0.clone(),
        n: rows.clone(),
        padded: nrows.clone(),
        cap: qs,
        kw: bc,
        packed: true,
    };
    mods.begin_rows(e, cx, &block);
    let span = mods.key_span(e, cx);
    softmax::init_rows(e, cx, mods, &nrows, ob, ms, ls);
    let flush = mods.removes_keys();
    let (c0, c1, cbc) = (e.idx(0), e.idx(1), e.idx(bc));
    let lo = e.round_down(&span.lo, bc);
    e.each(&lo, &span.hi, &cbc, |e, kb| {
        let (kp, vp) = panels.get(e, cx, kb);
        let keys = Keys {
            kb: kb.clone(),
            width: bc,
        };
        mods.begin_keys(e, cx, &block, &keys, true);
        // Scores, masks and the online softmax of every micro-block.
        e.each(&c0, &nmb, &c1, |e, mb| {
            let mbr = e.mul(mb, &cbr);
            let scores = |e: &mut Emitter| {
                let acc = tiles::score_tile(e, cx, &qp, &kp, mb);
                let mut s: Vec<Vec<Val>> = acc.chunks(t.bc_vecs).map(<[Val]>::to_vec).collect();
                mods.apply(e, cx, &keys, &mbr, &c0, &mut s, flush);
                let alpha = softmax::update(e, t.mca_markers, &s, ms, ls, &mbr, |e, r, j, p| {
                    let (ri, col) = (e.idx(r), e.idx(j * w));
                    e.vstore(p, &pt, &[mb, &ri, &col]);
                });
                e.vstore(&alpha, &at, &[&mbr]);
            };
            match mods.sees(e, &mbr, br, &keys) {
                Some(go) => e.when(&go, scores),
                None => scores(e),
            }
        });
        // O = alpha O + P V of every micro-block.
        e.each(&c0, &nmb, &c1, |e, mb| {
            let mbr = e.mul(mb, &cbr);
            let pv = |e: &mut Emitter| {
                let alpha = e.vload(&at, &[&mbr], br);
                let al: Vec<Val> = (0..br)
                    .map(|r| emit::math::spread(e, &alpha, r, w))
                    .collect();
                let orows = tiles::columns(e, &mbr, br, 1);
                tiles::pv_chunks(e, cx, &cx.dvp, t.pv_vecs, |e, c, nv| {
                    let cols = tiles::columns(e, c, nv, w);
                    let tile = tiles::PvTile {
                        out: ob,
                        rows: &orows,
                        cols: &cols,
                        alpha: &al,
                        keys: &cbc,
                    };
                    tiles::pv_tile(
                        e,
                        t.mca_markers,
                        &tile,
                        |e, j, _, col| e.vload(&vp, &[j, col], w),
                        |e, r, j| {
                            let ri = e.idx(r);
                            e.load(&pt, &[mb, &ri, j])
                        },
                    );
                });
            };
            match mods.sees(e, &mbr, br, &keys) {
                Some(go) => e.when(&go, pv),
                None => pv(e),
            }
        });
    });
}
