//! Compiling the kernels of a plan: one object per kernel variant, cached ones reused, the rest
//! compiled concurrently (see `parallel`), with one progress line per object. The variants of a
//! kernel that lower to the same module (x86-64-v3 and baseline x86-64 share a tiling) are
//! compiled together: lowered once, then optimized and emitted for each target.

use super::{
    object::{Compilers, Task, Timing, compile_group},
    parallel::run_in_order,
    plan::{Plan, kernel_args},
    progress::Progress,
    report::{CompiledKernel, CompiledVariant},
    targets::{Targets, Variant, dumped_variant, variant_symbol},
};
use crate::{Error, pipeline::tiling_for, target::EmitTimes};
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
    let groups = shared_lowerings(&to_compile)?;
    let timings = run_in_order(
        &groups,
        opts.jobs,
        Compilers::default,
        |compilers, group| {
            let tasks: Vec<&Task> = group.iter().map(|&i| &to_compile[i].task).collect();
            let kernel = to_compile[group[0]].kernel;
            compile_group(&tasks, compilers)
                .map_err(|err| err.declared_at(&plan.kernels[kernel].location))
        },
        |g, result| {
            if let Ok(ts) = result {
                for (&i, t) in groups[g].iter().zip(ts) {
                    opts.progress.line(&format!(
                        "compiled kernel {} in {}",
                        describe(plan, to_compile[i]),
                        phases(t)
                    ));
                }
            }
        },
    )?;
    let timings: Vec<Timing> = timings.into_iter().flatten().collect();
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
            cpu: t.cpu.map(|c| a.cpu.unwrap_or_default() + c),
            mlir: a.mlir + t.mlir,
            llvm: EmitTimes {
                translate: a.llvm.translate + t.llvm.translate,
                optimize: a.llvm.optimize + t.llvm.optimize,
                codegen: a.llvm.codegen + t.llvm.codegen,
            },
            shared: false,
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

/// The objects to compile (indices into `entries`) in groups that share one lowering: each
/// entry joins the first group of the same kernel whose first task lowers to the same module
/// ([`Task::shares_lowering`]), in order.
fn shared_lowerings(entries: &[&Entry]) -> Result<Vec<Vec<usize>>, Error> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut tilings = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        tilings.push(tiling_for(&e.task.target)?);
        let joined = groups.iter_mut().find(|g| {
            let first = entries[g[0]];
            first.kernel == e.kernel
                && e.task
                    .shares_lowering(&first.task, tilings[g[0]] == tilings[i])
        });
        match joined {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    Ok(groups)
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

/// `5.51 s (cpu 2.80 s; mlir 1.20 s, translate 0.05 s, opt 3.10 s, codegen 1.16 s)`: wall-clock
/// times, and the worker's CPU time where known (less than the total when other work shares
/// the machine); `mlir shared` for an object whose lowering was the previous variant's.
fn phases(t: &Timing) -> String {
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    format!(
        "{} ({}mlir {}, translate {}, opt {}, codegen {})",
        s(t.total),
        t.cpu.map(|c| format!("cpu {}; ", s(c))).unwrap_or_default(),
        if t.shared {
            "shared".to_string()
        } else {
            s(t.mlir)
        },
        s(t.llvm.translate),
        s(t.llvm.optimize),
        s(t.llvm.codegen)
    )
}
