//! [`Build`]: compile kernels from a build script, archive them, link them, and generate the Rust
//! declarations of their C ABI.
//!
//! The steps, one module each: `plan` (the kernels, their symbols, the `attention!` manifest),
//! `targets` (targets and ISA variants from Cargo's environment), `compile` (one object per
//! variant: `object` for the cache lookup and compilation of one, `parallel` for the worker
//! threads), `archive` (`lib<name>.a`), `bindings` and `outputs` (the generated Rust and the
//! manifest).

mod archive;
mod bindings;
#[cfg(feature = "codegen")]
mod compile;
#[cfg(feature = "codegen")]
mod object;
mod outputs;
#[cfg(feature = "codegen")]
mod parallel;
mod plan;
mod progress;
mod report;
mod targets;

pub use report::{CompiledKernel, CompiledVariant, Report};

use crate::{Error, cache, graph::KernelDef};
use bindings::Binding;
use plan::{Plan, check_identifier};
use progress::Progress;
use std::{
    env,
    path::{Path, PathBuf},
};
use targets::Targets;

/// Compiles a set of kernels into a static library linked into the current crate.
///
/// Used from `build.rs`, like `cc::Build`:
/// `Build::new().kernel(def).compile("name")` compiles every kernel (reusing cached objects whose
/// inputs did not change), archives them as `lib<name>.a` in `OUT_DIR`, tells Cargo to link it,
/// and writes `OUT_DIR/<name>.rs` with one `Kernel` static per kernel added with [`Build::kernel`]
/// for the crate to `include!`.
///
/// Kernels declared with `attn::attention!` are found with [`Build::file`]:
/// `Build::new().file("src/lib.rs").compile("kernels")` compiles every `attention!` kernel of the
/// file (inline modules included) with its static shapes, under the symbol the macro derives from
/// the same spec, and leaves `OUT_DIR/<name>.attn-manifest` listing them for the macro to check.
///
/// Objects are cached (see [`Build::cache_dir`] and [`Build::cache_max_bytes`]); those missing
/// are compiled concurrently (see [`Build::jobs`]). With
/// [`Build::skip_codegen`] (the default without the `codegen` feature) nothing is compiled or
/// linked: only the bindings and the manifest are written.
#[derive(Clone, Debug)]
pub struct Build {
    kernels: Vec<KernelDef>,
    /// `file:line` of the `Build::kernel` call of each kernel of `kernels`.
    kernel_locations: Vec<String>,
    files: Vec<PathBuf>,
    runtime_path: String,
    out_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    cache_max_bytes: Option<u64>,
    dump_dir: Option<PathBuf>,
    cargo_metadata: bool,
    skip_codegen: bool,
    verbose: bool,
    jobs: Option<usize>,
}

impl Default for Build {
    fn default() -> Self {
        Self::new()
    }
}

impl Build {
    /// A build with no kernels; the output directory is `OUT_DIR`, the cache `ATTN_CACHE_DIR` or
    /// `attn-cache` in Cargo's target directory (see [`cache::default_dir`](crate::cache::default_dir)),
    /// bounded by `ATTN_CACHE_MAX_MB`; IR dumps go to `ATTN_DUMP_IR` when set, and `ATTN_VERBOSE=1`
    /// prints one progress line per kernel. Code generation is skipped without the `codegen`
    /// feature.
    pub fn new() -> Self {
        Build {
            kernels: Vec::new(),
            kernel_locations: Vec::new(),
            files: Vec::new(),
            runtime_path: "::attn_runtime".to_string(),
            out_dir: None,
            cache_dir: env::var_os("ATTN_CACHE_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            cache_max_bytes: None,
            dump_dir: env::var_os("ATTN_DUMP_IR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            cargo_metadata: true,
            skip_codegen: !cfg!(feature = "codegen"),
            verbose: env::var("ATTN_VERBOSE").is_ok_and(|v| v == "1"),
            jobs: None,
        }
    }

    /// Adds a kernel. Errors about it name the line of this call (`build.rs:42`).
    #[track_caller]
    pub fn kernel(&mut self, kernel: KernelDef) -> &mut Self {
        let at = std::panic::Location::caller();
        self.kernel_locations
            .push(format!("{}:{}", at.file(), at.line()));
        self.kernels.push(kernel);
        self
    }

    /// Adds the `attention!` kernels of a source file (relative paths are relative to the package
    /// root, `CARGO_MANIFEST_DIR`). Only invocations written out in the file at module level (or in
    /// inline modules) are found, spelled `attention!`, `attn::attention!` or `::attn::attention!`;
    /// `mod other;` files must be added too. Kernels the grammar rejects are skipped (the macro
    /// reports them with spans); so are kernel names defined more than once (the manifest tells
    /// the macro, which reports them). [`Build::compile`] prints `cargo:rerun-if-changed` for the
    /// file: the build script then reruns only when a listed file (or the script) changes.
    pub fn file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.files.push(path.as_ref().to_path_buf());
        self
    }

    /// The path under which generated code finds `attn-runtime` (default `::attn_runtime`).
    pub fn runtime_path(&mut self, path: &str) -> &mut Self {
        self.runtime_path = path.to_string();
        self
    }

    /// Overrides the output directory (default `OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Overrides the object cache directory (default: `ATTN_CACHE_DIR`, else `attn-cache` in
    /// Cargo's target directory).
    pub fn cache_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Bounds the cache (default: `ATTN_CACHE_MAX_MB` MiB, else 512 MiB). After
    /// [`Build::compile`], least recently used objects are removed until the cache fits, except
    /// those of this build and those used in the last hour (concurrent builds may be using them).
    pub fn cache_max_bytes(&mut self, bytes: u64) -> &mut Self {
        self.cache_max_bytes = Some(bytes);
        self
    }

    /// Writes the bindings and the `attention!` manifest without compiling or linking any kernel
    /// (default: true without the `codegen` feature, false with it). The crate then documents
    /// and type-checks (docs.rs, `cargo doc`, `cargo check` with no LLVM installed), but a binary
    /// calling a kernel fails to link. Without the `codegen` feature, `false` makes
    /// [`Build::compile`] fail.
    pub fn skip_codegen(&mut self, skip: bool) -> &mut Self {
        self.skip_codegen = skip;
        self
    }

    /// Prints one progress line per kernel compiled (default: `ATTN_VERBOSE=1`), as
    /// `cargo:warning` lines (on stderr with [`Build::cargo_metadata`] off).
    pub fn verbose(&mut self, on: bool) -> &mut Self {
        self.verbose = on;
        self
    }

    /// Compiles at most `jobs` kernel objects at a time, each on a worker thread of its own
    /// (default: Cargo's `NUM_JOBS`, the `-j` of the build, else the machine's available
    /// parallelism; 0 counts as 1). The objects, the library and the bindings are the same
    /// whatever the number.
    pub fn jobs(&mut self, jobs: usize) -> &mut Self {
        self.jobs = Some(jobs.max(1));
        self
    }

    /// Writes per-stage IR of every kernel under `dir` (default: `ATTN_DUMP_IR`).
    pub fn dump_ir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.dump_dir = Some(dir.into());
        self
    }

    /// Whether to print `cargo:` directives (default true).
    pub fn cargo_metadata(&mut self, on: bool) -> &mut Self {
        self.cargo_metadata = on;
        self
    }

    fn progress(&self) -> Progress {
        Progress {
            verbose: self.verbose,
            cargo_metadata: self.cargo_metadata,
        }
    }

    fn resolve_cache_dir(&self, out_dir: &Path) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| cache::default_dir(out_dir))
    }

    fn resolve_cache_max_bytes(&self) -> Result<u64, Error> {
        if let Some(b) = self.cache_max_bytes {
            return Ok(b);
        }
        match env::var("ATTN_CACHE_MAX_MB") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<u64>()
                .map(|mb| mb.saturating_mul(1 << 20))
                .map_err(|_| {
                    Error::Config(format!(
                        "ATTN_CACHE_MAX_MB=`{v}` is not a whole number of MiB"
                    ))
                }),
            _ => Ok(cache::DEFAULT_MAX_MB << 20),
        }
    }

    fn resolve_out_dir(&self) -> Result<PathBuf, Error> {
        match &self.out_dir {
            Some(d) => Ok(d.clone()),
            None => env::var_os("OUT_DIR").map(PathBuf::from).ok_or_else(|| {
                Error::Config(
                    "OUT_DIR is not set: call Build from a build script or set out_dir".into(),
                )
            }),
        }
    }

    /// Every kernel to compile with its symbol: the explicit ones, then those of the files.
    fn plan(&self) -> Result<Plan, Error> {
        plan::plan(
            &self.kernels,
            &self.kernel_locations,
            &self.files,
            self.cargo_metadata,
        )
    }

    /// Compiles every kernel to an object file (cached), without archiving. Fails without the
    /// `codegen` feature.
    pub fn compile_objects(&self) -> Result<Vec<CompiledKernel>, Error> {
        self.compile_planned(&self.plan()?)
    }

    #[cfg(not(feature = "codegen"))]
    fn compile_planned(&self, _plan: &Plan) -> Result<Vec<CompiledKernel>, Error> {
        Err(Error::Toolchain(
            "attn-build was built without its `codegen` feature (LLVM/MLIR 22): it can generate \
             bindings (Build::skip_codegen) but not compile kernels; enable the feature"
                .into(),
        ))
    }

    #[cfg(feature = "codegen")]
    fn compile_planned(&self, plan: &Plan) -> Result<Vec<CompiledKernel>, Error> {
        let out_dir = self.resolve_out_dir()?;
        let cache = self.resolve_cache_dir(&out_dir);
        compile::compile_planned(
            plan,
            &compile::Options {
                cache: &cache,
                dump_dir: self.dump_dir.as_deref(),
                jobs: self.jobs.unwrap_or_else(parallel::default_jobs),
                progress: self.progress(),
            },
        )
    }

    /// Compiles, archives `lib<lib_name>.a`, links it (cargo directives) and writes the bindings.
    pub fn compile(&self, lib_name: &str) -> Result<Report, Error> {
        check_identifier(lib_name)?;
        let out_dir = self.resolve_out_dir()?;
        let plan = self.plan()?;
        if self.cargo_metadata {
            for var in [
                "ATTN_DUMP_IR",
                "ATTN_CACHE_DIR",
                "ATTN_CACHE_MAX_MB",
                "ATTN_TARGET_CPU",
                "ATTN_TILING",
                "ATTN_VERBOSE",
            ] {
                println!("cargo:rerun-if-env-changed={var}");
            }
            for f in &plan.manifest.files {
                println!("cargo:rerun-if-changed={}", f.path);
            }
        }
        if self.skip_codegen {
            return self.write_outputs_without_codegen(lib_name, &out_dir, &plan);
        }
        let max_bytes = self.resolve_cache_max_bytes()?;
        let kernels = self.compile_planned(&plan)?;
        archive::archive(lib_name, &out_dir, &kernels, self.cargo_metadata)?;
        // Kernels of `attention!` get their declarations from the macro: bind the explicit ones.
        let bindings: Vec<Binding> = kernels[..plan.explicit]
            .iter()
            .map(Binding::compiled)
            .collect();
        let bindings = outputs::write_outputs(
            lib_name,
            &out_dir,
            &plan.manifest,
            &bindings::render(&self.runtime_path, &bindings),
        )?;
        // The size bound, once this build's objects are in the library.
        let cache_dir = self.resolve_cache_dir(&out_dir);
        let keep = kernels
            .iter()
            .flat_map(|k| &k.variants)
            .map(|v| v.object.clone())
            .collect();
        let progress = self.progress();
        match cache::evict(&cache_dir, max_bytes, &keep) {
            Ok(e) if e.removed > 0 => progress.line(&format!(
                "cache {}: evicted {} objects ({} KiB), {} KiB left",
                cache_dir.display(),
                e.removed,
                e.freed >> 10,
                e.left >> 10
            )),
            Ok(_) => {}
            // A cache that cannot be trimmed is not worth failing a build over.
            Err(e) => progress.line(&format!(
                "cache {}: eviction failed: {e}",
                cache_dir.display()
            )),
        }
        Ok(Report { kernels, bindings })
    }

    /// The bindings and the manifest of `plan`, without compiling or linking anything
    /// ([`Build::skip_codegen`]): symbols and ISA variants are derived as a real build derives
    /// them, so the crate type-checks exactly as it would with its kernels.
    fn write_outputs_without_codegen(
        &self,
        lib_name: &str,
        out_dir: &Path,
        plan: &Plan,
    ) -> Result<Report, Error> {
        let bindings = Binding::planned(plan, &Targets::resolve());
        let bindings = outputs::write_outputs(
            lib_name,
            out_dir,
            &plan.manifest,
            &bindings::render(&self.runtime_path, &bindings),
        )?;
        self.progress().line(&format!(
            "code generation skipped: bindings of {} kernels in {}, nothing compiled or linked",
            plan.kernels.len(),
            bindings.display()
        ));
        Ok(Report {
            kernels: Vec::new(),
            bindings,
        })
    }
}
