//! [`Build`]: compile kernels from a build script, archive them, link them, and generate the Rust
//! declarations of their C ABI.

use crate::{
    Error, cache,
    graph::{KernelDef, TensorType},
    pipeline::PIPELINE_VERSION,
    scan,
    target::TargetSpec,
};
#[cfg(feature = "codegen")]
use crate::{graph::Layout, pipeline::Compiler};
use attn_runtime::isa::Isa;
use attn_runtime::syntax::{
    MANIFEST_EXTENSION, Manifest, ManifestDuplicate, ManifestFile, ManifestKernel,
};
#[cfg(feature = "codegen")]
use std::time::Instant;
use std::{
    collections::{BTreeMap, HashSet},
    env,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

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
/// Objects are cached (see [`Build::cache_dir`] and [`Build::cache_max_bytes`]). With
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
}

/// One kernel of a build: its definition, symbol, and where it is declared (`file:line`).
struct Planned {
    def: KernelDef,
    symbol: String,
    #[cfg_attr(not(feature = "codegen"), allow(dead_code))]
    location: String,
}

/// The kernels of a build with their symbols, and the manifest for `attention!`.
struct Plan {
    kernels: Vec<Planned>,
    manifest: Manifest,
}

/// What the generated Rust declarations need of a kernel: no object, so that they can be
/// written without compiling anything.
struct Binding {
    name: String,
    args: Vec<(String, TensorType)>,
    /// ISA level and symbol of each variant, best first.
    variants: Vec<(Option<Isa>, String)>,
}

/// One compiled kernel.
#[derive(Clone, Debug)]
pub struct CompiledKernel {
    /// The kernel's name.
    pub name: String,
    /// The C symbol of its entry point (without the `_mlir_ciface_` prefix).
    pub symbol: String,
    /// The object file.
    pub object: PathBuf,
    /// True when the object came from the cache.
    pub cached: bool,
    /// Argument names and types, inputs then the output (named `out`).
    pub args: Vec<(String, TensorType)>,
    /// Every compiled variant (ISA level, symbol, object), best first; `symbol` and `object`
    /// above are those of the first.
    pub variants: Vec<CompiledVariant>,
}

/// One ISA variant of a compiled kernel.
#[derive(Clone, Debug)]
pub struct CompiledVariant {
    /// The x86-64 level it was compiled for (`None`: one variant for the target as given).
    pub isa: Option<Isa>,
    /// Its C symbol (without the `_mlir_ciface_` prefix).
    pub symbol: String,
    /// Its object file.
    pub object: PathBuf,
    /// The code-generation target.
    pub target: TargetSpec,
}

/// A code-generation target the build compiles kernels for.
#[derive(Clone, Debug, PartialEq)]
struct Variant {
    isa: Option<Isa>,
    target: TargetSpec,
}

/// What [`Build::compile`] produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every kernel (none when code generation was skipped, see [`Build::skip_codegen`]).
    pub kernels: Vec<CompiledKernel>,
    /// The Rust declarations to `include!`.
    pub bindings: PathBuf,
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

    fn progress(&self, line: &str) {
        if !self.verbose {
            return;
        }
        if self.cargo_metadata {
            println!("cargo:warning=attn-build: {line}");
        } else {
            eprintln!("attn-build: {line}");
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
        let mut names = HashSet::new();
        for k in &self.kernels {
            check_identifier(&k.name)?;
            if !names.insert(k.name.clone()) {
                return Err(Error::Config(format!("two kernels are named `{}`", k.name)));
            }
        }
        let mut kernels: Vec<Planned> = self
            .kernels
            .iter()
            .zip(&self.kernel_locations)
            .map(|(k, at)| Planned {
                def: k.clone(),
                symbol: symbol_name(k),
                location: at.clone(),
            })
            .collect();
        let mut manifest = Manifest::default();
        let mut found = Vec::new();
        let mut seen_files = HashSet::new();
        let base = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
        for file in &self.files {
            let path = match &base {
                Some(b) if file.is_relative() => b.join(file),
                _ => file.clone(),
            };
            let canonical = path.canonicalize().map_err(|e| {
                Error::io(
                    format!("reading {} (given to Build::file)", path.display()),
                    e,
                )
            })?;
            if !seen_files.insert(canonical.clone()) {
                continue;
            }
            let display = file.display().to_string();
            let scanned = scan::scan_file(&path, &display)?;
            if let Some(why) = scanned.unparsable
                && self.cargo_metadata
            {
                println!(
                    "cargo:warning=attn-build: no kernels taken from {display}, which does not parse: {why}"
                );
            }
            manifest.files.push(ManifestFile {
                path: canonical.display().to_string(),
                display,
            });
            found.extend(scanned.kernels);
        }
        let mut by_name: BTreeMap<&str, Vec<&scan::Found>> = BTreeMap::new();
        for f in &found {
            by_name.entry(f.kernel.name.as_str()).or_default().push(f);
        }
        for f in &found {
            let group = &by_name[f.kernel.name.as_str()];
            if group.len() > 1 || names.contains(&f.kernel.name) {
                if std::ptr::eq(group[0], f) {
                    let mut locations: Vec<String> =
                        group.iter().map(|g| g.location.clone()).collect();
                    if names.contains(&f.kernel.name) {
                        locations.push("build.rs (Build::kernel)".to_string());
                    }
                    manifest.duplicates.push(ManifestDuplicate {
                        name: f.kernel.name.clone(),
                        locations,
                    });
                }
                continue;
            }
            let symbol = f.kernel.symbol();
            let def = scan::kernel_def(&f.kernel).map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("{m} (declared at {})", f.location)),
                e => e,
            })?;
            kernels.push(Planned {
                def,
                symbol: symbol.clone(),
                location: f.location.clone(),
            });
            manifest
                .kernels
                .push(ManifestKernel::new(&f.kernel, &f.location));
        }
        Ok(Plan { kernels, manifest })
    }

    /// Compiles every kernel to an object file (cached), without archiving. Fails without the
    /// `codegen` feature.
    pub fn compile_objects(&self) -> Result<Vec<CompiledKernel>, Error> {
        self.compile_planned(&self.plan()?)
    }

    /// The variants of the `i`-th planned kernel: kernels added with `Build::kernel` get one per
    /// ISA level (their bindings dispatch at run time); kernels of `attention!` one, for the
    /// primary target.
    fn kernel_targets(&self, i: usize, variants: &[Variant], primary: &TargetSpec) -> Vec<Variant> {
        if i < self.kernels.len() {
            variants.to_vec()
        } else {
            vec![Variant {
                isa: None,
                target: primary.clone(),
            }]
        }
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
        fs::create_dir_all(&cache)
            .map_err(|e| Error::io(format!("creating {}", cache.display()), e))?;
        let (variants, primary) = resolve_targets();
        let mut compilers: Vec<(TargetSpec, Compiler)> = Vec::new();
        let mut out = Vec::new();
        let (mut built, mut reused) = (0usize, 0usize);
        for (i, planned) in plan.kernels.iter().enumerate() {
            let (k, symbol) = (&planned.def, &planned.symbol);
            let targets = self.kernel_targets(i, &variants, &primary);
            let mut compiled: Vec<CompiledVariant> = Vec::new();
            let mut all_cached = true;
            for (vi, v) in targets.iter().enumerate() {
                let sym = variant_symbol(symbol, v.isa);
                // Dump the IR of the variant this machine runs (the first it supports).
                let dump_this = match v.isa {
                    Some(isa) => {
                        targets
                            .iter()
                            .position(|t| t.isa.is_none_or(|i| i.supported()))
                            == Some(vi)
                            && isa.supported()
                    }
                    None => true,
                };
                let start = Instant::now();
                let (object, cached) = self
                    .compile_one(k, &sym, &v.target, &cache, &mut compilers, dump_this)
                    .map_err(|e| e.declared_at(&planned.location))?;
                if cached {
                    reused += 1;
                } else {
                    built += 1;
                    self.progress(&format!(
                        "compiled kernel `{}`{} ({}) for {} {} in {:.2} s",
                        k.name,
                        v.isa.map(|i| format!(" [{}]", i.tag())).unwrap_or_default(),
                        planned.location,
                        v.target.triple,
                        v.target.cpu,
                        start.elapsed().as_secs_f64()
                    ));
                }
                all_cached &= cached;
                compiled.push(CompiledVariant {
                    isa: v.isa,
                    symbol: sym,
                    object,
                    target: v.target.clone(),
                });
            }
            let args = kernel_args(k);
            out.push(CompiledKernel {
                name: k.name.clone(),
                symbol: compiled[0].symbol.clone(),
                object: compiled[0].object.clone(),
                cached: all_cached,
                args,
                variants: compiled,
            });
        }
        self.progress(&format!(
            "done: {built} objects compiled, {reused} reused from the cache {}",
            cache.display()
        ));
        Ok(out)
    }

    /// Compiles one kernel for one target into the cache; returns the object and whether it was
    /// already there.
    #[cfg(feature = "codegen")]
    fn compile_one(
        &self,
        k: &KernelDef,
        symbol: &str,
        target: &TargetSpec,
        cache: &Path,
        compilers: &mut Vec<(TargetSpec, Compiler)>,
        dump_this: bool,
    ) -> Result<(PathBuf, bool), Error> {
        let ir = k.to_transformer_ir(symbol);
        let key = fnv1a(&[
            &ir,
            PIPELINE_VERSION,
            &codegen_source_hash(),
            LLVM_VERSION,
            &target.key(),
        ]);
        let object = cache.join(format!("{symbol}-{key:016x}.o"));
        let dump = if dump_this {
            self.dump_dir.as_ref().map(|d| d.join(&k.name))
        } else {
            None
        };
        if is_valid_object(&object) && dump.is_none() {
            // Recency for the size bound; a read-only shared cache is still usable.
            let _ = cache::touch(&object);
            return Ok((object, true));
        }
        let c = match compilers.iter().position(|(t, _)| t == target) {
            Some(i) => &compilers[i].1,
            None => {
                compilers.push((target.clone(), Compiler::for_target(target.clone())?));
                &compilers[compilers.len() - 1].1
            }
        };
        let layout_map = match k.layout {
            Layout::Strided => "fully-dynamic-layout-map",
            Layout::Contiguous => "identity-layout-map",
        };
        if let Some(d) = &dump {
            fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let mut dump_error = None;
        let module = c.lower(
            &k.name,
            &ir,
            layout_map,
            |stage, text| {
                if let Some(d) = &dump {
                    let path = d.join(stage.file_name());
                    if let Err(e) = fs::write(&path, text) {
                        dump_error = Some(Error::io(format!("writing {}", path.display()), e));
                    }
                }
            },
            dump.is_some(),
        )?;
        if let Some(e) = dump_error {
            return Err(e);
        }
        // Write under a unique temporary name, then rename: concurrent builds sharing a cache
        // never see a partial object, and a failed compile leaves nothing behind.
        let tmp = object.with_extension(format!("o.tmp{}", unique_suffix()));
        if let Err(e) = c.emit_object(&k.name, &module, &tmp) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &object).map_err(|e| Error::io(format!("moving {}", tmp.display()), e))?;
        Ok((object, false))
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
        let mut cc = cc::Build::new();
        cc.cargo_metadata(self.cargo_metadata)
            .cargo_warnings(false)
            .out_dir(&out_dir);
        if env::var_os("TARGET").is_none() {
            // Outside a build script (tests, the CLI): describe the host ourselves.
            let host = host_triple();
            cc.target(&host).host(&host).opt_level(3);
        }
        for v in kernels.iter().flat_map(|k| &k.variants) {
            // Used again now: a concurrent build evicting keeps what this one is archiving.
            let _ = cache::touch(&v.object);
            cc.object(&v.object);
        }
        if !kernels.is_empty() {
            cc.try_compile(lib_name)
                .map_err(|e| Error::Archive(e.to_string()))?;
        }
        // Kernels of `attention!` get their declarations from the macro: bind the explicit ones.
        let bindings: Vec<Binding> = kernels[..self.kernels.len()]
            .iter()
            .map(|k| Binding {
                name: k.name.clone(),
                args: k.args.clone(),
                variants: k
                    .variants
                    .iter()
                    .map(|v| (v.isa, v.symbol.clone()))
                    .collect(),
            })
            .collect();
        let bindings = self.write_outputs(lib_name, &out_dir, &plan, &bindings)?;
        // The size bound, once this build's objects are in the library.
        let cache_dir = self.resolve_cache_dir(&out_dir);
        let keep = kernels
            .iter()
            .flat_map(|k| &k.variants)
            .map(|v| v.object.clone())
            .collect();
        match cache::evict(&cache_dir, max_bytes, &keep) {
            Ok(e) if e.removed > 0 => self.progress(&format!(
                "cache {}: evicted {} objects ({} KiB), {} KiB left",
                cache_dir.display(),
                e.removed,
                e.freed >> 10,
                e.left >> 10
            )),
            Ok(_) => {}
            // A cache that cannot be trimmed is not worth failing a build over.
            Err(e) => self.progress(&format!(
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
        let (variants, primary) = resolve_targets();
        let bindings: Vec<Binding> = plan.kernels[..self.kernels.len()]
            .iter()
            .enumerate()
            .map(|(i, p)| Binding {
                name: p.def.name.clone(),
                args: kernel_args(&p.def),
                variants: self
                    .kernel_targets(i, &variants, &primary)
                    .iter()
                    .map(|v| (v.isa, variant_symbol(&p.symbol, v.isa)))
                    .collect(),
            })
            .collect();
        let bindings = self.write_outputs(lib_name, out_dir, plan, &bindings)?;
        self.progress(&format!(
            "code generation skipped: bindings of {} kernels in {}, nothing compiled or linked",
            plan.kernels.len(),
            bindings.display()
        ));
        Ok(Report {
            kernels: Vec::new(),
            bindings,
        })
    }

    /// Writes `OUT_DIR/<lib>.rs` (the declarations of `bindings`) and the `attention!` manifest;
    /// returns the path of the former.
    fn write_outputs(
        &self,
        lib_name: &str,
        out_dir: &Path,
        plan: &Plan,
        bindings: &[Binding],
    ) -> Result<PathBuf, Error> {
        let path = out_dir.join(format!("{lib_name}.rs"));
        write_atomic(&path, self.bindings(bindings).as_bytes())?;
        let manifest = out_dir.join(format!("{lib_name}.{MANIFEST_EXTENSION}"));
        write_atomic(&manifest, plan.manifest.render().as_bytes())?;
        Ok(path)
    }

    /// Rust declarations for `kernels`: an `extern "C"` entry per kernel variant and a
    /// `Kernel` static named after the kernel in upper case, dispatching among the variants.
    fn bindings(&self, kernels: &[Binding]) -> String {
        let rt = &self.runtime_path;
        let mut s = String::from("// Generated by attn-build. Do not edit.\n");
        for k in kernels {
            let n = k.args.len();
            let params = (0..n)
                .map(|i| format!("a{i}: *mut ::core::ffi::c_void"))
                .collect::<Vec<_>>()
                .join(", ");
            let entry_name = |v: &(Option<Isa>, String)| match v.0 {
                Some(isa) => format!("__attn_entry_{}_{}", k.name, isa.tag()),
                None => format!("__attn_entry_{}", k.name),
            };
            let _ = writeln!(s, "unsafe extern \"C\" {{");
            for v in &k.variants {
                let _ = writeln!(
                    s,
                    "    #[link_name = \"_mlir_ciface_{}\"]\n    fn {}({params});",
                    v.1,
                    entry_name(v)
                );
            }
            let _ = writeln!(s, "}}");
            let specs = k
                .args
                .iter()
                .enumerate()
                .map(|(i, (name, ty))| {
                    let role = if i + 1 == n { "Output" } else { "Input" };
                    // The name of the `attn_runtime::DType` variant.
                    let dtype = format!("{:?}", ty.element);
                    format!(
                        "{rt}::ffi::ArgSpec {{ name: {name:?}, role: {rt}::ffi::ArgRole::{role}, dtype: {rt}::DType::{dtype}, rank: {} }}",
                        ty.rank()
                    )
                })
                .collect::<Vec<_>>()
                .join(",\n        ");
            let sig = k
                .args
                .iter()
                .map(|(n, t)| format!("{n}: {t}"))
                .collect::<Vec<_>>()
                .join(", ");
            let safety = "    // SAFETY: each entry is the C interface of the MLIR function of the same symbol, compiled\n    \
                 // by attn-build from the kernel definition that produced this argument list, for the ISA\n    \
                 // level it is listed with: it takes one memref descriptor pointer per argument (inputs,\n    \
                 // then the output) with these ranks and element types, reads only the inputs, writes\n    \
                 // only the output, and keeps no state.";
            let constructor = if k.variants.iter().all(|v| v.0.is_some()) && k.variants.len() > 1 {
                let list = k
                    .variants
                    .iter()
                    .map(|v| {
                        let isa = match v.0 {
                            Some(Isa::X86_64V4) => "X86_64V4",
                            Some(Isa::X86_64V3) => "X86_64V3",
                            _ => "X86_64",
                        };
                        format!(
                            "({rt}::isa::Isa::{isa}, {rt}::ffi::KernelFn::A{n}({}))",
                            entry_name(v)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",\n        ");
                format!(
                    "{rt}::ffi::Kernel::with_variants({:?}, &[\n        {list}\n    ], &[\n        {specs}\n    ])",
                    k.name
                )
            } else {
                format!(
                    "{rt}::ffi::Kernel::new({:?}, {rt}::ffi::KernelFn::A{n}({}), &[\n        {specs}\n    ])",
                    k.name,
                    entry_name(&k.variants[0])
                )
            };
            let _ = writeln!(
                s,
                "/// AOT kernel `{name}` ({sig}).\npub static {upper}: {rt}::ffi::Kernel =\n{safety}\n    unsafe {{ {constructor} }};",
                name = k.name,
                upper = k.name.to_uppercase(),
            );
        }
        s
    }
}

/// The targets kernels are compiled for, from Cargo's environment: every x86-64 ISA level for a
/// x86-64 target (dispatched at run time), or one target when the CPU is explicit
/// (`ATTN_TARGET_CPU`, `-C target-cpu`) or the target is not x86-64 (cross-compiling to
/// AArch64, say). The second value is the primary target, used for `attention!` kernels: the
/// explicit CPU, the host when building for the host, else the target's baseline.
fn resolve_targets() -> (Vec<Variant>, TargetSpec) {
    let host = TargetSpec::host();
    let triple = env::var("TARGET").unwrap_or_else(|_| host.triple.clone());
    // Building for the machine we run on: Cargo says so with TARGET == HOST (LLVM spells the host
    // triple its own way, e.g. `x86_64-pc-linux-gnu` for Cargo's `x86_64-unknown-linux-gnu`).
    let native = match (env::var("TARGET"), env::var("HOST")) {
        (Ok(t), Ok(h)) => t == h,
        (Err(_), _) => true,
        (Ok(_), Err(_)) => false,
    };
    let explicit_cpu = env::var("ATTN_TARGET_CPU")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(rustflags_target_cpu);
    let features = env::var("CARGO_CFG_TARGET_FEATURE")
        .map(|f| {
            f.split(',')
                .filter(|x| !x.is_empty())
                .map(|x| format!("+{x}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let arch = triple.split('-').next().unwrap_or("");
    if let Some(cpu) = explicit_cpu {
        let spec = if cpu == "native" && native {
            host
        } else {
            TargetSpec {
                triple,
                cpu,
                features,
            }
        };
        return (
            vec![Variant {
                isa: None,
                target: spec.clone(),
            }],
            spec,
        );
    }
    if arch == "x86_64" {
        let variants = Isa::ALL
            .iter()
            .map(|isa| Variant {
                isa: Some(*isa),
                target: TargetSpec::new(&triple, isa.cpu()),
            })
            .collect();
        let primary = if native {
            host
        } else {
            TargetSpec::new(&triple, "x86-64")
        };
        return (variants, primary);
    }
    let spec = TargetSpec {
        triple,
        cpu: "generic".to_string(),
        features,
    };
    (
        vec![Variant {
            isa: None,
            target: spec.clone(),
        }],
        spec,
    )
}

/// `-C target-cpu=X` from the flags Cargo passes to rustc for the target.
fn rustflags_target_cpu() -> Option<String> {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").ok()?;
    let parts: Vec<&str> = flags.split('\x1f').collect();
    parts.iter().enumerate().find_map(|(i, p)| {
        let opt = if let Some(rest) = p.strip_prefix("-C") {
            if rest.is_empty() {
                parts.get(i + 1).copied()?
            } else {
                rest
            }
        } else {
            p.strip_prefix("--codegen=")?
        };
        opt.strip_prefix("target-cpu=").map(str::to_string)
    })
}

/// The symbol of one ISA variant of a kernel.
fn variant_symbol(symbol: &str, isa: Option<Isa>) -> String {
    match isa {
        Some(isa) => format!("{symbol}_{}", isa.tag()),
        None => symbol.to_string(),
    }
}

/// Argument names and types of a kernel: the inputs, then the output, named `out`.
fn kernel_args(k: &KernelDef) -> Vec<(String, TensorType)> {
    let mut args: Vec<(String, TensorType)> = k
        .graph
        .inputs()
        .iter()
        .map(|v| {
            (
                k.graph.input_name(*v).unwrap_or("arg").to_string(),
                k.graph.ty(*v).clone(),
            )
        })
        .collect();
    args.push(("out".to_string(), k.output_type().clone()));
    args
}

/// The LLVM major version the pipeline is built against (part of every cache key).
#[cfg(feature = "codegen")]
pub const LLVM_VERSION: &str = "llvm-22";

fn check_identifier(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "`{name}` is not a valid kernel or library name"
        )))
    }
}

/// `attn_<name>_<hash>`: the hash covers the kernel's IR and the crate version, so a caller
/// compiled against another definition fails to link instead of calling the wrong code.
fn symbol_name(k: &KernelDef) -> String {
    let ir = k.to_transformer_ir("kernel");
    let h = fnv1a(&[&ir, env!("CARGO_PKG_VERSION"), PIPELINE_VERSION]);
    format!("attn_{}_{:012x}", k.name, h & 0xffff_ffff_ffff)
}

/// A hash of every source file of this crate (collected by its build script, so a new file is
/// included without a list to keep): part of every cache key, so an edited generator never
/// reuses objects built by the previous one, even when `PIPELINE_VERSION` was not bumped.
fn codegen_source_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    const SOURCES: &str = include_str!(concat!(env!("OUT_DIR"), "/generator_sources.txt"));
    HASH.get_or_init(|| format!("{:016x}", fnv1a(&[SOURCES])))
        .clone()
}

pub(crate) use attn_runtime::hash::fnv1a;

fn host_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// An object file is reused only if it is a complete ELF file (a truncated entry is rebuilt).
#[cfg(feature = "codegen")]
fn is_valid_object(path: &Path) -> bool {
    match fs::read(path) {
        Ok(bytes) => {
            bytes.len() > 64 && bytes.starts_with(b"\x7fELF") && elf_size_consistent(&bytes)
        }
        Err(_) => false,
    }
}

/// The section header table of a 64-bit ELF file must lie inside the file.
#[cfg(feature = "codegen")]
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

/// A suffix no other temporary file of this process or another one has: builds in several
/// threads of one process (tests, tools) may share a cache too.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp{}", unique_suffix()));
    fs::write(&tmp, bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("moving {}", tmp.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(&["a"]), fnv1a(&["a"]));
        assert_ne!(fnv1a(&["ab", "c"]), fnv1a(&["a", "bc"]));
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("matmul_r2").is_ok());
        assert!(check_identifier("2x").is_err());
        assert!(check_identifier("a-b").is_err());
        assert!(check_identifier("").is_err());
    }

    #[test]
    #[cfg(feature = "codegen")]
    fn truncated_objects_are_rejected() {
        let dir = std::env::temp_dir().join(format!("attn-elf-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.o");
        fs::write(&p, b"\x7fELF\x02short").unwrap();
        assert!(!is_valid_object(&p));
        assert!(!is_valid_object(&dir.join("missing.o")));
        let _ = fs::remove_dir_all(&dir);
    }
}
