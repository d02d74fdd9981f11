//! One object of a build: its cache key and lookup, and its compilation (MLIR pipeline, then
//! LLVM) into the cache, timed phase by phase; the ISA variants of a kernel that lower to the
//! same module share one lowering.

use super::outputs::unique_suffix;
use crate::{
    Error, cache,
    graph::Layout,
    pipeline::{Compiler, PIPELINE_VERSION},
    target::{EmitTimes, OutputKind, TargetSpec},
};
use attn_runtime::hash::fnv1a;
use std::{
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The LLVM major version the pipeline is built against (part of every cache key).
const LLVM_VERSION: &str = "llvm-22";

/// A hash of every source file of this crate (collected by its build script, so a new file is
/// included without a list to keep): part of every cache key, so an edited generator never
/// reuses objects built by the previous one, even when `PIPELINE_VERSION` was not bumped.
fn codegen_source_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    const SOURCES: &str = include_str!(concat!(env!("OUT_DIR"), "/generator_sources.txt"));
    HASH.get_or_init(|| format!("{:016x}", fnv1a(&[SOURCES])))
}

/// Everything needed to compile one object, owned, so that it can move to a worker thread.
pub(super) struct Task {
    /// The kernel's name (for errors and dumps).
    pub kernel: String,
    /// The kernel's transformer IR, its function named after the variant's symbol.
    pub ir: String,
    /// The variant's symbol.
    pub symbol: String,
    pub layout: Layout,
    pub target: TargetSpec,
    /// The object's path in the cache.
    pub object: PathBuf,
    /// Where to dump the IR of every stage (`ATTN_DUMP_IR`), if this variant is dumped.
    pub dump: Option<PathBuf>,
}

impl Task {
    /// The task producing `symbol` (one variant of a kernel) for `target`, its object named
    /// in `cache` by a key over everything that determines it.
    pub fn new(
        kernel: &str,
        ir: String,
        layout: Layout,
        symbol: &str,
        target: &TargetSpec,
        cache: &Path,
        dump: Option<PathBuf>,
    ) -> Self {
        let key = fnv1a(&[
            &ir,
            PIPELINE_VERSION,
            codegen_source_hash(),
            LLVM_VERSION,
            &target.key(),
        ]);
        Task {
            kernel: kernel.to_string(),
            ir,
            symbol: symbol.to_string(),
            layout,
            target: target.clone(),
            object: cache.join(format!("{symbol}-{key:016x}.o")),
            dump,
        }
    }

    /// Whether the cache already holds a complete object (then marked as used now, for the
    /// size bound). A dumped variant is always recompiled: its IR is wanted.
    pub fn cached(&self) -> bool {
        if self.dump.is_none() && is_valid_object(&self.object) {
            // A read-only shared cache is still usable.
            let _ = cache::touch(&self.object);
            true
        } else {
            false
        }
    }

    /// Whether this task's kernel lowers to the same module as `other`'s but for the symbol:
    /// the same kernel IR up to the symbol, the same layout and (`same_tiling`) the same tiling,
    /// and no IR dump wanted for this one.
    pub fn shares_lowering(&self, other: &Task, same_tiling: bool) -> bool {
        same_tiling
            && self.dump.is_none()
            && self.kernel == other.kernel
            && self.layout == other.layout
            && self.ir.replace(&self.symbol, "") == other.ir.replace(&other.symbol, "")
    }
}

/// Compiles the objects of `tasks` into the cache: the first task's kernel is lowered once (with
/// a compiler for its target, from `compilers`, created there on first use) and emitted for
/// every task's target under its symbol. The tasks after the first must share its lowering
/// ([`Task::shares_lowering`]).
pub(super) fn compile_group(
    tasks: &[&Task],
    compilers: &mut Compilers,
) -> Result<Vec<Timing>, Error> {
    let Some(first) = tasks.first() else {
        return Ok(Vec::new());
    };
    let (start, cpu_start) = (Instant::now(), thread_cpu());
    let c = compilers.for_target(&first.target)?;
    let layout_map = match first.layout {
        Layout::Strided => "fully-dynamic-layout-map",
        Layout::Contiguous => "identity-layout-map",
    };
    if let Some(d) = &first.dump {
        fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    }
    let mut dump_error = None;
    let lowering = Instant::now();
    let module = c.lower(
        &first.kernel,
        &first.ir,
        layout_map,
        |stage, ir| {
            if let Some(d) = &first.dump {
                let path = d.join(stage.file_name());
                if let Err(e) = fs::write(&path, ir.text()) {
                    dump_error = Some(Error::io(format!("writing {}", path.display()), e));
                }
            }
        },
        first.dump.is_some(),
    )?;
    let mlir = lowering.elapsed();
    if let Some(e) = dump_error {
        return Err(e);
    }
    let mut timings = Vec::with_capacity(tasks.len());
    let mut cpu_before = cpu_start;
    for (i, task) in tasks.iter().enumerate() {
        let emitting = Instant::now();
        // Write under a unique temporary name, then rename: concurrent builds sharing a cache
        // never see a partial object, and a failed compile leaves nothing behind.
        let tmp = task
            .object
            .with_extension(format!("o.tmp{}", unique_suffix()));
        let rename =
            (task.symbol != first.symbol).then_some((first.symbol.as_str(), task.symbol.as_str()));
        let emitted = c.emit_as(
            &task.kernel,
            &module,
            rename,
            &task.target,
            &tmp,
            OutputKind::Object,
        );
        let llvm = match emitted {
            Ok(t) => t,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        fs::rename(&tmp, &task.object)
            .map_err(|e| Error::io(format!("moving {}", tmp.display()), e))?;
        let first_one = i == 0;
        let cpu_now = thread_cpu();
        let cpu = cpu_before.zip(cpu_now).map(|(a, b)| b.saturating_sub(a));
        cpu_before = cpu_now;
        timings.push(Timing {
            cpu,
            total: if first_one {
                start.elapsed()
            } else {
                emitting.elapsed()
            },
            mlir: if first_one { mlir } else { Duration::ZERO },
            llvm,
            shared: !first_one,
        });
    }
    Ok(timings)
}

/// How long compiling one object took.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Timing {
    /// Everything, including creating the MLIR context on a worker's first use of a target.
    pub total: Duration,
    /// The time the worker thread spent on a CPU for it (Linux), which other load on the machine
    /// does not inflate, unlike the other (wall-clock) times.
    pub cpu: Option<Duration>,
    /// Parsing the transformer IR and the MLIR passes down to the LLVM dialect (with the IR
    /// dumps, when asked).
    pub mlir: Duration,
    /// Translation to LLVM IR, LLVM optimization and code generation.
    pub llvm: EmitTimes,
    /// Whether the MLIR lowering was another object's (an ISA variant lowering to the same
    /// module): `mlir` is then zero.
    pub shared: bool,
}

/// The time the calling thread has spent on a CPU (Linux: `/proc/thread-self/schedstat`).
pub(super) fn thread_cpu() -> Option<Duration> {
    let text = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The compilers of one worker thread, one per target (an MLIR context is not `Send`).
#[derive(Default)]
pub(super) struct Compilers(Vec<(TargetSpec, Compiler)>);

impl Compilers {
    /// The compiler for `target`, created on first use.
    fn for_target(&mut self, target: &TargetSpec) -> Result<&Compiler, Error> {
        let i = match self.0.iter().position(|(t, _)| t == target) {
            Some(i) => i,
            None => {
                self.0
                    .push((target.clone(), Compiler::for_target(target.clone())?));
                self.0.len() - 1
            }
        };
        Ok(&self.0[i].1)
    }
}

/// An object file is reused only if it is a complete ELF file (a truncated entry is rebuilt).
fn is_valid_object(path: &Path) -> bool {
    match fs::read(path) {
        Ok(bytes) => {
            bytes.len() > 64 && bytes.starts_with(b"\x7fELF") && elf_size_consistent(&bytes)
        }
        Err(_) => false,
    }
}

/// The section header table of a 64-bit ELF file must lie inside the file.
fn elf_size_consistent(bytes: &[u8]) -> bool {
    if bytes.len() < 64 || bytes[4] != 2 {
        return false;
    }
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap_or([0; 2]));
    let shoff = u64_at(0x28);
    let shentsize = u64::from(u16_at(0x3a));
    let shnum = u64::from(u16_at(0x3c));
    shoff
        .checked_add(shentsize * shnum)
        .is_some_and(|end| end <= bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_objects_are_rejected() {
        let dir = std::env::temp_dir().join(format!("attn-elf-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.o");
        fs::write(&p, b"\x7fELF\x02short").unwrap();
        assert!(!is_valid_object(&p));
        assert!(!is_valid_object(&dir.join("missing.o")));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_key_depends_on_the_target_and_the_ir() {
        let cache = Path::new("/cache");
        let v3 = TargetSpec::new("x86_64-unknown-linux-gnu", "x86-64-v3");
        let v4 = TargetSpec::new("x86_64-unknown-linux-gnu", "x86-64-v4");
        let t = |ir: &str, target| {
            Task::new("k", ir.into(), Layout::Contiguous, "s", target, cache, None).object
        };
        assert_eq!(t("a", &v3), t("a", &v3));
        assert_ne!(t("a", &v3), t("a", &v4));
        assert_ne!(t("a", &v3), t("b", &v3));
        assert!(t("a", &v3).starts_with(cache));
    }
}
