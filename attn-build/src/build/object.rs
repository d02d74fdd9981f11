//! One object of a build: its cache key and lookup, and its compilation (MLIR pipeline, then
//! LLVM) into the cache, timed phase by phase.

use super::outputs::unique_suffix;
use crate::{
    Error, cache,
    graph::Layout,
    pipeline::{Compiler, PIPELINE_VERSION},
    target::{EmitTimes, TargetSpec},
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

    /// Compiles the object into the cache with a compiler for the task's target (from
    /// `compilers`, created there on first use).
    pub fn compile(&self, compilers: &mut Compilers) -> Result<Timing, Error> {
        let start = Instant::now();
        let c = compilers.for_target(&self.target)?;
        let layout_map = match self.layout {
            Layout::Strided => "fully-dynamic-layout-map",
            Layout::Contiguous => "identity-layout-map",
        };
        if let Some(d) = &self.dump {
            fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let mut dump_error = None;
        let lowering = Instant::now();
        let module = c.lower(
            &self.kernel,
            &self.ir,
            layout_map,
            |stage, ir| {
                if let Some(d) = &self.dump {
                    let path = d.join(stage.file_name());
                    if let Err(e) = fs::write(&path, ir.text()) {
                        dump_error = Some(Error::io(format!("writing {}", path.display()), e));
                    }
                }
            },
            self.dump.is_some(),
        )?;
        let mlir = lowering.elapsed();
        if let Some(e) = dump_error {
            return Err(e);
        }
        // Write under a unique temporary name, then rename: concurrent builds sharing a cache
        // never see a partial object, and a failed compile leaves nothing behind.
        let tmp = self
            .object
            .with_extension(format!("o.tmp{}", unique_suffix()));
        let llvm = match c.emit_object(&self.kernel, &module, &tmp) {
            Ok(t) => t,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        fs::rename(&tmp, &self.object)
            .map_err(|e| Error::io(format!("moving {}", tmp.display()), e))?;
        Ok(Timing {
            total: start.elapsed(),
            mlir,
            llvm,
        })
    }
}

/// How long compiling one object took.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Timing {
    /// Everything, including creating the MLIR context on a worker's first use of a target.
    pub total: Duration,
    /// Parsing the transformer IR and the MLIR passes down to the LLVM dialect (with the IR
    /// dumps, when asked).
    pub mlir: Duration,
    /// Translation to LLVM IR, LLVM optimization and code generation.
    pub llvm: EmitTimes,
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
