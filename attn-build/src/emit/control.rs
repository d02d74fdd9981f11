//! Structured control flow: `scf.for` with and without carried values, `scf.if` with and
//! without results.

use super::{Emitter, Ty, Val};

/// The body of [`Emitter::nest`]: induction variables and carried tensors to new tensors.
pub type NestBody<'a> = dyn FnMut(&mut Emitter, &[Val], Vec<Val>) -> Vec<Val> + 'a;

/// One step of [`Emitter::unrolled`]: induction variable and carried values to new values.
pub type Step<'a> = dyn Fn(&mut Emitter, &Val, &[Val]) -> Vec<Val> + 'a;

/// What LLVM may do with a loop the emitter writes (its `llvm.loop` metadata). LLVM never unrolls
/// them: the generators unroll their hot loops themselves ([`Emitter::unrolled`]), and what
/// LLVM's unroller and loop vectorizer would add are copies of cold loops (packing fallbacks,
/// zero fills, setup), which cost compile time and leave the hot loops' machine code unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopKind {
    /// Neither vectorized nor unrolled: the generator's own vector code, and cold loops.
    Final,
    /// A scalar loop over elements that runs on every call (the output's normalization, copies
    /// of Q): LLVM's loop vectorizer may vectorize it (versioned for unit strides), not unroll it.
    Vectorize,
}

impl LoopKind {
    /// The `loop_annotation` attribute, which `convert-scf-to-cf` moves to the loop's latch.
    fn annotation(self) -> &'static str {
        match self {
            LoopKind::Final => {
                "#llvm.loop_annotation<vectorize = <disable = true>, unroll = <disable = true>>"
            }
            LoopKind::Vectorize => "#llvm.loop_annotation<unroll = <disable = true>>",
        }
    }
}

fn types(vals: &[Val]) -> String {
    vals.iter()
        .map(|v| v.ty().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(vals: &[Val]) -> String {
    vals.iter().map(Val::name).collect::<Vec<_>>().join(", ")
}

impl Emitter {
    fn nested<R>(&mut self, body: impl FnOnce(&mut Emitter) -> R) -> R {
        self.depth += 1;
        let r = body(self);
        self.depth -= 1;
        r
    }

    /// `scf.for iv = lo to hi step step` carrying `inits`: `body` gets the induction variable
    /// and the carried values and returns the values to carry on. Returns the final values.
    /// A [`LoopKind::Final`] loop.
    pub fn for_(
        &mut self,
        lo: &Val,
        hi: &Val,
        step: &Val,
        inits: &[Val],
        body: impl FnOnce(&mut Emitter, &Val, &[Val]) -> Vec<Val>,
    ) -> Vec<Val> {
        self.for_kind(LoopKind::Final, lo, hi, step, inits, body)
    }

    /// [`Emitter::for_`] with the loop's [`LoopKind`].
    pub fn for_kind(
        &mut self,
        kind: LoopKind,
        lo: &Val,
        hi: &Val,
        step: &Val,
        inits: &[Val],
        body: impl FnOnce(&mut Emitter, &Val, &[Val]) -> Vec<Val>,
    ) -> Vec<Val> {
        let iv = Val::new(self.fresh(), Ty::INDEX);
        let args: Vec<Val> = inits
            .iter()
            .map(|v| Val::new(self.fresh(), v.ty().clone()))
            .collect();
        let res = self.fresh();
        if inits.is_empty() {
            self.line(format_args!("scf.for {iv} = {lo} to {hi} step {step} {{"));
        } else {
            let binds = args
                .iter()
                .zip(inits)
                .map(|(a, v)| format!("{a} = {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let lhs = if inits.len() == 1 {
                res.clone()
            } else {
                format!("{res}:{}", inits.len())
            };
            self.line(format_args!(
                "{lhs} = scf.for {iv} = {lo} to {hi} step {step} iter_args({binds}) -> ({}) {{",
                types(inits)
            ));
        }
        let ys = self.nested(|e| {
            let ys = body(e, &iv, &args);
            if !ys.is_empty() {
                e.line(format_args!("scf.yield {} : {}", names(&ys), types(&ys)));
            }
            ys
        });
        debug_assert_eq!(ys.len(), inits.len());
        self.line(format_args!(
            "}} {{loop_annotation = {}}}",
            kind.annotation()
        ));
        match inits.len() {
            0 => Vec::new(),
            1 => vec![Val::new(res, inits[0].ty().clone())],
            _ => inits
                .iter()
                .enumerate()
                .map(|(i, v)| Val::new(format!("{res}#{i}"), v.ty().clone()))
                .collect(),
        }
    }

    /// `scf.for` without carried values.
    pub fn each(&mut self, lo: &Val, hi: &Val, step: &Val, body: impl FnOnce(&mut Emitter, &Val)) {
        self.each_kind(LoopKind::Final, lo, hi, step, body);
    }

    /// [`Emitter::each`] with the loop's [`LoopKind`].
    pub fn each_kind(
        &mut self,
        kind: LoopKind,
        lo: &Val,
        hi: &Val,
        step: &Val,
        body: impl FnOnce(&mut Emitter, &Val),
    ) {
        self.for_kind(kind, lo, hi, step, &[], |e, iv, _| {
            body(e, iv);
            Vec::new()
        });
    }

    /// `scf.for` from 0 to `hi` step 1, without carried values.
    pub fn range(&mut self, hi: &Val, body: impl FnOnce(&mut Emitter, &Val)) {
        let (c0, c1) = (self.idx(0), self.idx(1));
        self.each(&c0, hi, &c1, body);
    }

    /// `scf.if cond { then }` without results.
    pub fn when(&mut self, cond: &Val, then: impl FnOnce(&mut Emitter)) {
        self.line(format_args!("scf.if {cond} {{"));
        self.nested(then);
        self.line("}");
    }

    /// `scf.if cond { then } else { otherwise }` without results.
    pub fn if_else(
        &mut self,
        cond: &Val,
        then: impl FnOnce(&mut Emitter),
        otherwise: impl FnOnce(&mut Emitter),
    ) {
        self.line(format_args!("scf.if {cond} {{"));
        self.nested(then);
        self.line("} else {");
        self.nested(otherwise);
        self.line("}");
    }

    /// `scf.if` with results of types `tys`: each branch returns the values it yields.
    pub fn if_yield(
        &mut self,
        cond: &Val,
        tys: &[Ty],
        then: impl FnOnce(&mut Emitter) -> Vec<Val>,
        otherwise: impl FnOnce(&mut Emitter) -> Vec<Val>,
    ) -> Vec<Val> {
        let res = self.fresh();
        let tlist = tys.iter().map(Ty::to_string).collect::<Vec<_>>().join(", ");
        let lhs = if tys.len() == 1 {
            res.clone()
        } else {
            format!("{res}:{}", tys.len())
        };
        self.line(format_args!("{lhs} = scf.if {cond} -> ({tlist}) {{"));
        let yield_ = |e: &mut Emitter, ys: Vec<Val>| {
            debug_assert_eq!(ys.len(), tys.len());
            e.line(format_args!("scf.yield {} : {tlist}", names(&ys)));
        };
        self.nested(|e| {
            let ys = then(e);
            yield_(e, ys);
        });
        self.line("} else {");
        self.nested(|e| {
            let ys = otherwise(e);
            yield_(e, ys);
        });
        self.line("}");
        if tys.len() == 1 {
            vec![Val::new(res, tys[0].clone())]
        } else {
            tys.iter()
                .enumerate()
                .map(|(i, t)| Val::new(format!("{res}#{i}"), t.clone()))
                .collect()
        }
    }

    /// Loops over `bounds` (one `scf.for` from 0 step 1 per dim) carrying the tensors `outs`:
    /// `body` gets the induction variables and the carried tensors and returns the new ones.
    /// Returns the final tensors.
    pub fn nest(&mut self, bounds: &[Val], outs: Vec<Val>, body: &mut NestBody<'_>) -> Vec<Val> {
        fn level(
            e: &mut Emitter,
            bounds: &[Val],
            ivs: &mut Vec<Val>,
            outs: Vec<Val>,
            body: &mut NestBody<'_>,
        ) -> Vec<Val> {
            if ivs.len() == bounds.len() {
                let now = ivs.clone();
                return body(e, &now, outs);
            }
            let (c0, c1) = (e.idx(0), e.idx(1));
            let hi = bounds[ivs.len()].clone();
            e.for_(&c0, &hi, &c1, &outs, |e, iv, a| {
                ivs.push(iv.clone());
                let r = level(e, bounds, ivs, a.to_vec(), body);
                ivs.pop();
                r
            })
        }
        level(self, bounds, &mut Vec::new(), outs, body)
    }

    /// `for iv in lo..hi` carrying `inits`, unrolled `u` times: a main loop of step `u` whose
    /// body applies `step` to `iv, iv + 1, .., iv + u - 1`, then a loop over the rest. Halves (for
    /// `u = 2`) the loop overhead of short bodies such as the register tiles'.
    /// With `mca`, the main loop's body is an `LLVM-MCA` region of that name.
    #[allow(clippy::too_many_arguments)]
    pub fn unrolled(
        &mut self,
        lo: &Val,
        hi: &Val,
        u: usize,
        inits: &[Val],
        mca: Option<&str>,
        step: &Step<'_>,
    ) -> Vec<Val> {
        let c1 = self.idx(1);
        if u <= 1 {
            return self.for_(lo, hi, &c1, inits, |e, iv, a| {
                if let Some(region) = mca {
                    e.mca_marker(true, true, region);
                }
                let out = step(e, iv, a);
                if let Some(region) = mca {
                    e.mca_marker(true, false, region);
                }
                out
            });
        }
        let n = self.sub(hi, lo);
        let main = self.round_down(&n, u);
        let mid = self.add(lo, &main);
        let cu = self.idx(u);
        let acc = self.for_(lo, &mid, &cu, inits, |e, iv, a| {
            if let Some(region) = mca {
                e.mca_marker(true, true, region);
            }
            let mut cur = a.to_vec();
            for k in 0..u {
                let ck = e.idx(k);
                let i = e.add(iv, &ck);
                cur = step(e, &i, &cur);
            }
            if let Some(region) = mca {
                e.mca_marker(true, false, region);
            }
            cur
        });
        self.for_(&mid, hi, &c1, &acc, |e, iv, a| step(e, iv, a))
    }
}
