//! Compiling the kernels of a plan: one object per kernel variant, cached ones reused, the rest
//! compiled concurrently (see `parallel`), with one progress line per object.

use super::{
    object::{Compilers, Task, Timing},
    parallel::run_in_order,
    plan::{Plan, kernel_args},
    progress::Progress,
    report::{CompiledKernel, CompiledVariant},
    targets::{Targets, Variant, dumped_variant, variant_symbol},
};
use crate::{Error, target::EmitTimes};
use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

/// How to compile: where the cache is, where IR dumps go, how many worker threads.
pub(super) struct Options<'a> {
    pub cache: &'a Path,
    pub dump_dir: Option<&'a Path>,
    pub jobs: usize,
    pub progress: Progress,
}

/// One object of the build: a variant of a planned kernel.
struct Entry {
    /// Index of the kernel in the plan.
    kernel: usize,
    variant: Variant,
    symbol: String,
    task: Task,
    cached: bool,
}

/// Compiles every kernel of `plan` for its targets (reusing cached objects), in parallel; the
/// result does not depend on the number of jobs or on the order compilations finish in. The
/// error of the first failing kernel (in plan order) is returned, with where it is declared.
pub(super) fn compile_planned(plan: &Plan, opts: &Options) -> Result<Vec<CompiledKernel>, Error> {
    let started = Instant::now();
    fs::create_dir_all(opts.cache)
        .map_err(|e| Error::io(format!("creating {}", opts.cache.display()), e))?;
    let targets = Targets::resolve();
    let mut entries = Vec::new();
    for (i, planned) in plan.kernels.iter().enumerate() {
        let def = &planned.def;
        let variants = targets.for_kernel(i, plan.explicit);
        let dumped = dumped_variant(&variants);
        for (vi, variant) in variants.into_iter().enumerate() {
            let symbol = variant_symbol(&planned.symbol, variant.isa);
            let dump = match opts.dump_dir {
                Some(d) if dumped == Some(vi) => Some(d.join(&def.name)),
                _ => None,
            };
            let ir = def.to_transformer_ir(&symbol);
            let task = Task::new(
                &def.name,
                ir,
                def.layout,
                &symbol,
                &variant.target,
                opts.cache,
                dump,
            );
            let cached = task.cached();
            let entry = Entry {
                kernel: i,
                variant,
                symbol,
                task,
                cached,
            };
            if cached {
                opts.progress.line(&format!(
                    "reused kernel {} from the cache",
                    describe(plan, &entry)
                ));
            }
            entries.push(entry);
        }
    }
    let to_compile: Vec<&Entry> = entries.iter().filter(|e| !e.cached).collect();
    let timings = run_in_order(
        &to_compile,
        opts.jobs,
        Compilers::default,
        |compilers, e| {
            e.task
                .compile(compilers)
                .map_err(|err| err.declared_at(&plan.kernels[e.kernel].location))
        },
        |i, result| {
            if let Ok(t) = result {
                opts.progress.line(&format!(
                    "compiled kernel {} in {}",
                    describe(plan, to_compile[i]),
                    phases(t)
                ));
            }
        },
    )?;
    let built = to_compile.len();
    let mut summary = format!(
        "done: {built} objects compiled, {} reused from the cache {} in {:.2} s",
        entries.len() - built,
        opts.cache.display(),
        started.elapsed().as_secs_f64()
    );
    if built > 0 {
        let sum = timings.iter().fold(Timing::default(), |a, t| Timing {
            total: a.total + t.total,
            mlir: a.mlir + t.mlir,
            llvm: EmitTimes {
                translate: a.llvm.translate + t.llvm.translate,
                optimize: a.llvm.optimize + t.llvm.optimize,
                codegen: a.llvm.codegen + t.llvm.codegen,
            },
        });
        let workers = opts.jobs.clamp(1, built);
        summary.push_str(&format!(
            " with {workers} jobs; summed over objects: {}",
            phases(&sum)
        ));
    }
    let mut out: Vec<CompiledKernel> = Vec::with_capacity(plan.kernels.len());
    for e in entries {
        let variant = CompiledVariant {
            isa: e.variant.isa,
            symbol: e.symbol,
            object: e.task.object,
            target: e.variant.target,
        };
        let same_kernel = out.len() == e.kernel + 1;
        match out.last_mut() {
            Some(k) if same_kernel => {
                k.cached &= e.cached;
                k.variants.push(variant);
            }
            _ => {
                let def = &plan.kernels[e.kernel].def;
                out.push(CompiledKernel {
                    name: def.name.clone(),
                    symbol: variant.symbol.clone(),
                    object: variant.object.clone(),
                    cached: e.cached,
                    args: kernel_args(def),
                    outputs: def.outputs().len(),
                    variants: vec![variant],
                });
            }
        }
    }
    opts.progress.line(&summary);
    Ok(out)
}

/// ``kernel `name` [v4] (src/lib.rs:12) for x86_64-unknown-linux-gnu x86-64-v4``.
fn describe(plan: &Plan, e: &Entry) -> String {
    let planned = &plan.kernels[e.kernel];
    format!(
        "`{}`{} ({}) for {} {}",
        planned.def.name,
        e.variant
            .isa
            .map(|i| format!(" [{}]", i.tag()))
            .unwrap_or_default(),
        planned.location,
        e.variant.target.triple,
        e.variant.target.cpu
    )
}

/// `5.51 s (mlir 1.20 s, translate 0.05 s, opt 3.10 s, codegen 1.16 s)`.
fn phases(t: &Timing) -> String {
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    format!(
        "{} (mlir {}, translate {}, opt {}, codegen {})",
        s(t.total),
        s(t.mlir),
        s(t.llvm.translate),
        s(t.llvm.optimize),
        s(t.llvm.codegen)
    )
}
