//! A user's score and mask mods as hooks of the fused kernel.
//!
//! - **Score mod**: each score vector, in base-2 units `s2 = s log2 e`, becomes
//!   `f(s2 ln 2, b, h, i, j) log2 e`, with the lanes' keys `j = kb + first + l` and the rows'
//!   `i` (clamped into `[0, Sq)` and `[0, Sk)`, so padding evaluates in range).
//! - **Mask mod**: lanes where the mask is false become `-inf` (removed keys).
//! - **Block sparsity** (packed path, mask mods): every micro-block of `BR` rows and key block of
//!   `BC` keys has a class (hidden, partial, full, see [`crate::flash::mods`]). Hidden blocks are
//!   skipped (`sees`), full blocks need no per-element work, and each super-block of rows only
//!   visits the key span its visible blocks cover (`key_span`). The classes are computed at build
//!   time and baked into the kernel for masks of indices and constants; for masks that read
//!   inputs (or compute on floats) the kernel computes them per super-block, evaluating the mask
//!   over its rows and all keys once, before the blocks that use them.
//! - The decode path evaluates the mods per element (its blocks have another geometry).

use super::user_eval::{Env, Evaluator, Input, Point, bool_const, int_lanes};
use super::{Keys, Rows, ScoreMod, Span, iota, select_if};
use crate::emit::{Cmp, Emitter, Scalar, Ty, Val};
use crate::flash::ctx::Ctx;
use crate::flash::mods::{BlockMap, FULL, HIDDEN, PARTIAL, UserMods, block_map};
use attn_runtime::DType;
use attn_runtime::mods::{Expr, InputInfo, ModKind};
use std::fmt::Write as _;

/// The environment of the mods of a kernel: the batch and head indices `b`, `h` (index
/// arguments) and the inputs (tensors of rank >= 1, f32 or i32).
pub fn env(e: &mut Emitter, cx: &Ctx, mods: &UserMods, b: &Val, h: &Val, inputs: &[Val]) -> Env {
    let infos = infos(mods);
    let exprs: Vec<(ModKind, &Expr)> = mods.pair.each().collect();
    let it = int_lanes(&exprs, &mods.dims, &infos);
    let c1 = e.idx(1);
    let flat = inputs
        .iter()
        .map(|t| {
            let buf = e.to_buffer(t);
            let meta = e.strided_metadata(&buf);
            // The extent of the elements: sum (size - 1) stride + 1.
            let mut extent = c1.clone();
            for (size, stride) in meta.sizes.iter().zip(&meta.strides) {
                let m = e.sub(size, &c1);
                let m = e.mul(&m, stride);
                extent = e.add(&extent, &m);
            }
            let ty = Ty::MemRef(
                vec![None],
                t.ty().elem(),
                crate::emit::Layout::Strided {
                    strides: vec![Some(1)],
                    offset: None,
                },
            );
            let flat = e.reinterpret(&meta.base, ty, &meta.offset, &[&extent], &["1"]);
            Input {
                flat,
                strides: meta.strides,
            }
        })
        .collect();
    Env {
        w: cx.t.w,
        it,
        ct: cx.ct,
        b: b.clone(),
        h: h.clone(),
        sq_last: e.sub(&cx.sq, &c1),
        sk_last: e.sub(&cx.sk, &c1),
        inputs: flat,
    }
}

/// The inputs of `mods` as the checker describes them.
pub fn infos(mods: &UserMods) -> Vec<InputInfo> {
    mods.inputs
        .iter()
        .enumerate()
        .map(|(n, (d, s))| InputInfo {
            name: format!("in{n}"),
            shape: s.clone(),
            int: *d == DType::I32,
        })
        .collect()
}

/// A build-time block map in the kernel: its classes and spans as constant tensors, and the
/// indices of the call's batch and head into them.
struct Baked {
    classes: Val,
    spans: Val,
    bi: Val,
    hi: Val,
}

/// One mod (score or mask) as a hook.
pub struct User {
    kind: ModKind,
    expr: Expr,
    ev: Evaluator,
    baked: Option<Baked>,
    /// Classify blocks at run time (mask mods without a build-time map).
    runtime: bool,
    /// Rows per micro-block and keys per key block of the packed path.
    br: usize,
    bc: usize,
    // The current block of rows and key block.
    q0: Option<Val>,
    packed: bool,
    rt: Option<Val>,
    span: Option<(Val, Val)>,
    keyed: Option<Evaluator>,
    jvals: Vec<Val>,
}

/// `dense<"0x..">` of the bytes `data` as a constant tensor of `shape` and `elem`.
fn constant(e: &mut Emitter, data: &[u8], shape: &[usize], elem: Scalar) -> Val {
    let mut hex = String::with_capacity(2 * data.len());
    for b in data {
        let _ = write!(hex, "{b:02X}");
    }
    let ty = Ty::Tensor(shape.iter().map(|&d| Some(d)).collect(), elem);
    e.constant(format!("arith.constant dense<\"0x{hex}\"> : {ty}"), ty)
}

impl User {
    /// The hook of mod `kind` (its expression `expr`) of `mods`, evaluated in `env`.
    pub fn new(
        e: &mut Emitter,
        cx: &Ctx,
        kind: ModKind,
        expr: &Expr,
        mods: &UserMods,
        env: &Env,
    ) -> User {
        let ev = Evaluator::new(env.clone(), &[expr]);
        let mut baked = None;
        let mut runtime = false;
        if kind == ModKind::Mask {
            let t = cx.t;
            match block_map(expr, &mods.dims, t.br, t.bc(), t.qs) {
                Some(map) => baked = Some(Self::bake(e, &map, env, mods)),
                None => runtime = true,
            }
        }
        User {
            kind,
            expr: expr.clone(),
            ev,
            baked,
            runtime,
            br: cx.t.br,
            bc: cx.t.bc(),
            q0: None,
            packed: false,
            rt: None,
            span: None,
            keyed: None,
            jvals: Vec::new(),
        }
    }

    fn bake(e: &mut Emitter, map: &BlockMap, env: &Env, mods: &UserMods) -> Baked {
        let bs = if map.per_b { mods.dims.b } else { 1 };
        let hs = if map.per_h { mods.dims.h } else { 1 };
        let classes = constant(e, &map.classes, &[bs, hs, map.nmb, map.nkb], Scalar::I8);
        let spans: Vec<u8> = map
            .spans
            .iter()
            .flat_map(|(lo, hi)| lo.to_le_bytes().into_iter().chain(hi.to_le_bytes()))
            .collect();
        let spans = constant(e, &spans, &[bs, hs, map.nsb, 2], Scalar::I32);
        let c0 = e.idx(0);
        Baked {
            classes,
            spans,
            bi: if map.per_b { env.b.clone() } else { c0.clone() },
            hi: if map.per_h { env.h.clone() } else { c0 },
        }
    }

    /// The class of the block of rows `r0..r0 + BR` (of the current block of rows) and key
    /// block `keys` (packed path only), as an `i8`.
    fn class(&self, e: &mut Emitter, r0: &Val, keys: &Keys) -> Option<Val> {
        if !self.packed {
            return None;
        }
        let (cbr, cbc) = (e.idx(self.br), e.idx(self.bc));
        let kbi = e.div(&keys.kb, &cbc);
        if let Some(rt) = &self.rt {
            let mb = e.div(r0, &cbr);
            return Some(e.load(rt, &[&mb, &kbi]));
        }
        let b = self.baked.as_ref()?;
        let q0 = self.q0.as_ref()?;
        let row = e.add(q0, r0);
        let mb = e.div(&row, &cbr);
        Some(e.extract(&b.classes, &[&b.bi, &b.hi, &mb, &kbi]))
    }

    /// The key vectors of the block from `kb + first` (clamped), in integer lanes.
    fn keys(&self, e: &mut Emitter, keys: &Keys, first: &Val, n: usize) -> Vec<Val> {
        let env = self.ev.env();
        let (w, it) = (env.w, env.it);
        let base = e.add(&keys.kb, first);
        let base = e.index_cast(&base, it);
        let base = e.splat(&base, w);
        let last = e.index_cast(&env.sk_last.clone(), it);
        let last = e.splat(&last, w);
        (0..n)
            .map(|v| {
                let io = iota(e, w, v * w);
                let io = if it == Scalar::I32 {
                    io
                } else {
                    let (ft, tt) = (io.ty().clone(), io.ty().with_elem(it));
                    e.op(tt.clone(), format_args!("arith.extsi {io} : {ft} to {tt}"))
                };
                let j = e.add(&base, &io);
                e.min_s(&j, &last)
            })
            .collect()
    }

    /// Row `row` of the call (index), clamped, in integer lanes.
    fn row(&self, e: &mut Emitter, row: &Val) -> Val {
        let env = self.ev.env();
        let r = e.min_s(row, &env.sq_last.clone());
        e.index_cast(&r, env.it)
    }

    /// The mask (`i1` vectors, one per row and key vector) or the new scores of rows `rows`
    /// (indices of the call) against key vectors `js`, with `ev` (whose key parts may be
    /// cached), given the scores `s` (base-2 units; score mods).
    fn evaluate(
        &self,
        e: &mut Emitter,
        ev: &mut Evaluator,
        rows: &[Val],
        js: &[Val],
        s: &[Val],
    ) -> Vec<Val> {
        let w = ev.env().w;
        let mut out = Vec::with_capacity(rows.len() * js.len());
        let ln2 = e.float(std::f64::consts::LN_2, &Ty::vector(w, ev.env().ct));
        let log2e = e.float(std::f64::consts::LOG2_E, &Ty::vector(w, ev.env().ct));
        for (k, row) in rows.iter().enumerate() {
            let i = self.row(e, row);
            for (v, j) in js.iter().enumerate() {
                let sn = s.get(k * js.len() + v).map(|x| e.mul(x, &ln2));
                let p = Point {
                    i: Some(&i),
                    row: k,
                    j: Some(j),
                    col: v,
                    s: sn.as_ref(),
                };
                let r = ev.eval(e, &self.expr, &p).vector(e, w);
                out.push(match self.kind {
                    ModKind::Score => e.mul(&r, &log2e),
                    ModKind::Mask => r,
                });
            }
        }
        out
    }

    /// The classes of the blocks of the current rows (packed path), evaluated: `rt[mb][kb]`
    /// and the key span of the visible blocks.
    fn classify(&mut self, e: &mut Emitter, cx: &Ctx, rows: &Rows) {
        let t = cx.t;
        let (br, bc) = (t.br, t.bc());
        let (c0, c1, cbr, cbc) = (e.idx(0), e.idx(1), e.idx(br), e.idx(bc));
        let nkb = {
            let r = e.round_up(&cx.sk, bc);
            e.div(&r, &cbc)
        };
        let rt = e.alloc(
            Ty::memref(&[Some(rows.cap / br), None], Scalar::I8),
            &[&nkb],
        );
        let nmb = e.div(&rows.padded, &cbr);
        let q0 = rows.q0.clone();
        let (hidden, partial, full) = (
            e.int(i64::from(HIDDEN), &Scalar::I8.into()),
            e.int(i64::from(PARTIAL), &Scalar::I8.into()),
            e.int(i64::from(FULL), &Scalar::I8.into()),
        );
        let f = bool_const(e, false, None);
        let span = e.for_(&c0, &nkb, &c1, &[cx.sk.clone(), c0.clone()], |e, kbi, a| {
            let kb = e.mul(kbi, &cbc);
            let keys = Keys {
                kb: kb.clone(),
                width: bc,
            };
            let js = self.keys(e, &keys, &c0, t.bc_vecs);
            let mut keyed = self.ev.clone();
            for (v, j) in js.iter().enumerate() {
                let p = Point {
                    i: None,
                    row: usize::MAX,
                    j: Some(j),
                    col: v,
                    s: None,
                };
                keyed.key_parts(e, &self.expr, &p);
            }
            let any = e.for_(&c0, &nmb, &c1, std::slice::from_ref(&f), |e, mb, seen| {
                let r0 = e.mul(mb, &cbr);
                let rows: Vec<Val> = (0..br)
                    .map(|r| {
                        let cr = e.idx(r);
                        let x = e.add(&r0, &cr);
                        e.add(&q0, &x)
                    })
                    .collect();
                let mut ev = keyed.clone();
                let keep = self.evaluate(e, &mut ev, &rows, &js, &[]);
                let (mut or, mut and) = (keep[0].clone(), keep[0].clone());
                for k in &keep[1..] {
                    or = e.or(&or, k);
                    and = e.and(&and, k);
                }
                let vt = or.ty().clone();
                let some = e.op(
                    Ty::I1,
                    format_args!("vector.reduction <or>, {or} : {vt} into i1"),
                );
                let all = e.op(
                    Ty::I1,
                    format_args!("vector.reduction <and>, {and} : {vt} into i1"),
                );
                let c = e.select(&all, &full, &partial);
                let c = e.select(&some, &c, &hidden);
                e.store(&c, &rt, &[mb, kbi]);
                vec![e.or(&seen[0], &some)]
            });
            let end = e.add(&kb, &cbc);
            let end = e.min_s(&end, &cx.sk);
            let lo = e.min_s(&a[0], &kb);
            let hi = e.max_s(&a[1], &end);
            vec![e.select(&any[0], &lo, &a[0]), e.select(&any[0], &hi, &a[1])]
        });
        self.rt = Some(rt);
        self.span = Some((span[0].clone(), span[1].clone()));
    }
}

impl ScoreMod for User {
    fn removes_keys(&self) -> bool {
        self.kind == ModKind::Mask
    }

    fn begin_rows(&mut self, e: &mut Emitter, cx: &Ctx, rows: &Rows) {
        self.q0 = Some(rows.q0.clone());
        self.packed = rows.packed;
        self.rt = None;
        self.span = None;
        self.keyed = None;
        self.jvals.clear();
        if let Some(b) = &self.baked {
            // The span of the super-block (the decode path's rows 0..Sq <= DECODE_ROWS lie in
            // super-block 0, whose span covers them).
            let cqs = e.idx(cx.t.qs);
            let sb = e.div(&rows.q0, &cqs);
            let (c0, c1) = (e.idx(0), e.idx(1));
            let lo = e.extract(&b.spans, &[&b.bi, &b.hi, &sb, &c0]);
            let hi = e.extract(&b.spans, &[&b.bi, &b.hi, &sb, &c1]);
            let lo = e.index_cast(&lo, Scalar::Index);
            let hi = e.index_cast(&hi, Scalar::Index);
            self.span = Some((lo, hi));
        } else if self.runtime && rows.packed {
            self.classify(e, cx, rows);
        }
    }

    fn key_span(&self, e: &mut Emitter, _cx: &Ctx, span: Span) -> Span {
        let Some((lo, hi)) = &self.span else {
            return span;
        };
        let lo = e.max_s(&span.lo, lo);
        let hi = e.min_s(&span.hi, hi);
        let hi = e.max_s(&hi, &lo);
        Span { lo, hi }
    }

    fn sees(&self, e: &mut Emitter, r0: &Val, _n: usize, keys: &Keys) -> Option<Val> {
        let c = self.class(e, r0, keys)?;
        let hidden = e.int(i64::from(HIDDEN), &Scalar::I8.into());
        Some(e.cmp(Cmp::Ne, &c, &hidden))
    }

    fn begin_keys(&mut self, e: &mut Emitter, _cx: &Ctx, _rows: &Rows, keys: &Keys) {
        if !self.packed {
            return;
        }
        let w = self.ev.env().w;
        let c0 = e.idx(0);
        let js = self.keys(e, keys, &c0, keys.width / w);
        let mut keyed = self.ev.clone();
        for (v, j) in js.iter().enumerate() {
            let p = Point {
                i: None,
                row: usize::MAX,
                j: Some(j),
                col: v,
                s: None,
            };
            keyed.key_parts(e, &self.expr, &p);
        }
        self.keyed = Some(keyed);
        self.jvals = js;
    }

    fn modify(
        &self,
        e: &mut Emitter,
        cx: &Ctx,
        rows: &[Val],
        keys: &Keys,
        first: &Val,
        s: &mut [Vec<Val>],
    ) {
        let Some(q0) = self.q0.clone() else { return };
        let per_row = s.first().map_or(0, Vec::len);
        let calls: Vec<Val> = rows.iter().map(|r| e.add(&q0, r)).collect();
        let run = |e: &mut Emitter, flat: &[Val]| -> Vec<Val> {
            let (mut ev, js) = match (&self.keyed, self.packed) {
                (Some(k), true) => (k.clone(), self.jvals.clone()),
                _ => (self.ev.clone(), self.keys(e, keys, first, per_row)),
            };
            match self.kind {
                ModKind::Score => self.evaluate(e, &mut ev, &calls, &js, flat),
                ModKind::Mask => {
                    let keep = self.evaluate(e, &mut ev, &calls, &js, &[]);
                    let gone = e.float(f64::NEG_INFINITY, &cx.vt);
                    keep.iter()
                        .zip(flat)
                        .map(|(k, x)| e.select(k, x, &gone))
                        .collect()
                }
            }
        };
        let partial = match (self.kind, rows.first()) {
            (ModKind::Mask, Some(r0)) => self.class(e, r0, keys).map(|c| {
                let p = e.int(i64::from(PARTIAL), &Scalar::I8.into());
                e.cmp(Cmp::Eq, &c, &p)
            }),
            _ => None,
        };
        match partial {
            Some(p) => select_if(e, &p, s, run),
            None => {
                let flat: Vec<Val> = s.iter().flatten().cloned().collect();
                let out = run(e, &flat);
                for (sr, chunk) in s.iter_mut().zip(out.chunks(per_row.max(1))) {
                    sr.clone_from_slice(chunk);
                }
            }
        }
    }
}
