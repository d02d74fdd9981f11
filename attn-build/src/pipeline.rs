//! The compilation pipeline of one kernel, stage by stage:
//! `transformer` -> `fused` (compositions of primitives that are attention fused into
//! `transformer.attention`) -> `linalg` (on tensors) -> `bufferized` (memrefs, out-param, deallocations)
//! -> `loops` (scf) -> `llvm` (LLVM dialect) -> LLVM IR -> object file.
//!
//! Each stage is a pass pipeline run on the module; after each one the module is verified and,
//! when asked, printed (see [`Stage`]). Diagnostics MLIR emits are collected and returned as an
//! [`Error::Mlir`](crate::Error::Mlir) naming the kernel and the stage; nothing reaches the object
//! emitter unless the module verifies and consists of LLVM-dialect operations only.
//!
//! [`Stage`] and [`PIPELINE_VERSION`] are always available; `Compiler` needs the `codegen`
//! feature.

#[cfg(feature = "codegen")]
use crate::{
    Error, dialect,
    flash::Tiling,
    lower,
    target::{self, EmitTimes, OutputKind, TargetSpec},
};
#[cfg(feature = "codegen")]
use melior::{
    Context,
    dialect::DialectRegistry,
    ir::{
        Module,
        operation::{OperationLike, WalkOrder, WalkResult},
    },
    pass::PassManager,
    utility::{
        parse_pass_pipeline, register_all_dialects, register_all_llvm_translations,
        register_all_passes,
    },
};
use std::path::PathBuf;
#[cfg(feature = "codegen")]
use std::{cell::RefCell, path::Path, rc::Rc, sync::Once};

/// Bumped whenever the lowering or the pass pipelines change, so cached objects are rebuilt.
pub const PIPELINE_VERSION: &str = "attn-pipeline-12";

/// A stage of the pipeline; the IR after each can be dumped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The kernel as built by the graph API, in the `transformer` dialect.
    Transformer,
    /// After `fuse-attention`: the tutorial's composition of primitives replaced by
    /// `transformer.attention` (see `lower::fuse_attention`).
    Fused,
    /// After `convert-transformer-to-linalg` (and inlining of the fused attention kernels): linalg,
    /// `scf`, `vector` and `memref` ops on tensors.
    Linalg,
    /// After one-shot bufferization, out-param materialization and deallocation.
    Bufferized,
    /// After linalg (and vector transfers) -> scf loops.
    Loops,
    /// The LLVM dialect.
    Llvm,
    /// LLVM IR, as handed to the code generator.
    LlvmIr,
}

impl Stage {
    /// All stages, in order.
    pub const ALL: [Stage; 7] = [
        Stage::Transformer,
        Stage::Fused,
        Stage::Linalg,
        Stage::Bufferized,
        Stage::Loops,
        Stage::Llvm,
        Stage::LlvmIr,
    ];

    /// Short name (`transformer`, `linalg`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Transformer => "transformer",
            Stage::Fused => "fused",
            Stage::Linalg => "linalg",
            Stage::Bufferized => "bufferized",
            Stage::Loops => "loops",
            Stage::Llvm => "llvm",
            Stage::LlvmIr => "llvm-ir",
        }
    }

    /// The dump file name, numbered so the progression reads in order (`fused`, a stage within
    /// the transformer dialect, is `01b`).
    pub fn file_name(self) -> String {
        let number = match self {
            Stage::Transformer => "01",
            Stage::Fused => "01b",
            Stage::Linalg => "02",
            Stage::Bufferized => "03",
            Stage::Loops => "04",
            Stage::Llvm => "05",
            Stage::LlvmIr => "06",
        };
        let ext = if self == Stage::LlvmIr { "ll" } else { "mlir" };
        format!("{number}-{}.{ext}", self.name())
    }

    /// Parses a stage name.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The textual pass pipeline that produces this stage from the previous one.
    #[cfg(feature = "codegen")]
    fn passes(self, layout_map: &str) -> Option<String> {
        let p = match self {
            Stage::Transformer | Stage::Fused | Stage::Linalg | Stage::LlvmIr => return None,
            // No `canonicalize,cse` around the bufferization: the `linalg` stage ends with them
            // and `buffer-deallocation-pipeline` with its own (more gave the same LLVM IR).
            Stage::Bufferized => format!(
                "builtin.module(eliminate-empty-tensors,\
                 one-shot-bufferize{{bufferize-function-boundaries function-boundary-type-conversion={layout_map}}},\
                 drop-equivalent-buffer-results,buffer-deallocation-pipeline)"
            ),
            Stage::Loops => {
                "builtin.module(func.func(convert-linalg-to-loops,convert-vector-to-scf))".to_string()
            }
            // `convert-vector-to-llvm` before the memref lowering (vector loads and stores take
            // memref operands); `convert-ub-to-llvm` for the `ub.poison` it leaves;
            // `lower-affine` for the `affine.apply` of `expand-strided-metadata`.
            // `arith-expand` with bf16: bf16 <-> f32 conversions as integer ops (LLVM would call
            // `__truncsfbf2`, which older libgcc lacks). No `canonicalize,cse` at the end: LLVM's
            // own cleanup gives the same machine code from the module without them.
            Stage::Llvm => "builtin.module(arith-expand{include-bf16=true},convert-scf-to-cf,convert-vector-to-llvm,\
                 expand-strided-metadata,lower-affine,finalize-memref-to-llvm{use-generic-functions=true},convert-math-to-llvm,\
                 convert-arith-to-llvm,convert-index-to-llvm,convert-cf-to-llvm,convert-func-to-llvm,\
                 convert-ub-to-llvm,reconcile-unrealized-casts)"
                .to_string(),
        };
        Some(p)
    }
}

/// What to do with the per-stage IR.
#[derive(Clone, Debug, Default)]
pub struct DumpOptions {
    /// Write each stage to `<dir>/<kernel>/NN-stage.mlir`.
    pub dir: Option<PathBuf>,
}

/// The IR after a stage, as [`Compiler::lower`] hands it to its observer: printed only when its
/// text is asked for (printing a kernel's module costs about as much as a pass over it).
#[cfg(feature = "codegen")]
pub enum StageIr<'a, 'c> {
    /// An MLIR stage: the module as it is now.
    Mlir(&'a Module<'c>),
    /// LLVM IR, already text.
    Text(&'a str),
}

#[cfg(feature = "codegen")]
impl StageIr<'_, '_> {
    /// The IR as text.
    pub fn text(&self) -> String {
        match self {
            StageIr::Mlir(m) => m.as_operation().to_string(),
            StageIr::Text(t) => t.to_string(),
        }
    }
}

/// An MLIR context with every upstream dialect, pass and translation, plus `transformer`.
#[cfg(feature = "codegen")]
pub struct Compiler {
    context: Context,
    diagnostics: Rc<RefCell<Vec<String>>>,
    target: TargetSpec,
    tiling: Tiling,
}

#[cfg(feature = "codegen")]
static REGISTER_PASSES: Once = Once::new();

/// The register tiling of the kernels a compiler for `target` generates: `ATTN_TILING` when set
/// (an error if it does not parse), else the target's (`Tiling::for_target`). The lowering
/// depends on the target through it only, so targets with the same tiling (x86-64-v3 and
/// baseline x86-64) lower a kernel to the same LLVM-dialect module.
#[cfg(feature = "codegen")]
pub fn tiling_for(target: &TargetSpec) -> Result<Tiling, Error> {
    match std::env::var("ATTN_TILING") {
        Ok(tag) if !tag.trim().is_empty() => {
            Tiling::parse(tag.trim()).map_err(|e| Error::Toolchain(format!("ATTN_TILING: {e}")))
        }
        _ => Ok(Tiling::for_target(
            target.arch(),
            &target.cpu,
            &target.features,
        )),
    }
}

#[cfg(feature = "codegen")]
impl Compiler {
    /// A compiler for the host CPU; fails if the `transformer` dialect cannot be registered.
    pub fn new() -> Result<Self, Error> {
        Self::for_target(TargetSpec::host())
    }

    /// A compiler generating code for `target` (triple, CPU, features).
    pub fn for_target(target: TargetSpec) -> Result<Self, Error> {
        // Registering all passes twice double-frees inside MLIR: once per process.
        REGISTER_PASSES.call_once(register_all_passes);
        let registry = DialectRegistry::new();
        register_all_dialects(&registry);
        let context = Context::new();
        context.append_dialect_registry(&registry);
        context.load_all_available_dialects();
        register_all_llvm_translations(&context);
        context.enable_multi_threading(false);
        let diagnostics = Rc::new(RefCell::new(Vec::new()));
        let sink = diagnostics.clone();
        context.attach_diagnostic_handler(move |d| {
            sink.borrow_mut().push(format!("{}: {}", d.location(), d));
            true
        });
        if !dialect::register(&context) {
            return Err(Error::Toolchain(
                "MLIR rejected the IRDL definition of the transformer dialect".into(),
            ));
        }
        let tiling = tiling_for(&target)?;
        Ok(Compiler {
            context,
            diagnostics,
            target,
            tiling,
        })
    }

    /// The register tiling of the generated kernels: the target's (see
    /// `attn_runtime::tuning::Tiling::for_target`), or `ATTN_TILING` when set (a tag such as
    /// `w16r8c2p3q256`, for `scripts/tune.sh`).
    pub fn tiling(&self) -> Tiling {
        self.tiling
    }

    /// Replaces the register tiling (e.g. to add `LLVM-MCA` markers for `scripts/mca.sh`).
    pub fn set_tiling(&mut self, tiling: Tiling) {
        self.tiling = tiling;
    }

    /// The code-generation target.
    pub fn target(&self) -> &TargetSpec {
        &self.target
    }

    /// The MLIR context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    fn take_diagnostics(&self) -> String {
        let d = std::mem::take(&mut *self.diagnostics.borrow_mut());
        if d.is_empty() {
            "(no diagnostic emitted)".to_string()
        } else {
            d.join("\n")
        }
    }

    fn fail(&self, kernel: &str, stage: Stage, extra: &str) -> Error {
        let emitted = !self.diagnostics.borrow().is_empty();
        let mut diagnostics = self.take_diagnostics();
        if !extra.is_empty() {
            diagnostics = if emitted {
                format!("{extra}\n{diagnostics}")
            } else {
                extra.to_string()
            };
        }
        Error::Mlir {
            kernel: kernel.to_string(),
            location: None,
            stage: stage.name(),
            diagnostics,
        }
    }

    /// Runs the pipeline on `transformer_ir` up to and including the LLVM dialect, calling
    /// `observe` after every stage (and after the translation to LLVM IR when `want_llvm_ir`)
    /// with the IR, which it prints only if it asks for its text ([`StageIr::text`]).
    pub fn lower<'c>(
        &'c self,
        kernel: &str,
        transformer_ir: &str,
        layout_map: &str,
        mut observe: impl FnMut(Stage, &StageIr),
        want_llvm_ir: bool,
    ) -> Result<Module<'c>, Error> {
        self.diagnostics.borrow_mut().clear();
        let mut module = Module::parse(&self.context, transformer_ir).ok_or_else(|| {
            self.fail(
                kernel,
                Stage::Transformer,
                "the transformer IR does not parse",
            )
        })?;
        if !module.as_operation().verify() {
            return Err(self.fail(
                kernel,
                Stage::Transformer,
                "the transformer IR does not verify",
            ));
        }
        observe(Stage::Transformer, &StageIr::Mlir(&module));
        for stage in [
            Stage::Fused,
            Stage::Linalg,
            Stage::Bufferized,
            Stage::Loops,
            Stage::Llvm,
        ] {
            let pm = PassManager::new(&self.context);
            // The module is verified after each stage (below), not after each of its passes.
            pm.enable_verifier(false);
            match stage.passes(layout_map) {
                None if stage == Stage::Fused => pm.add_pass(lower::fuse_attention()),
                None => {
                    pm.add_pass(lower::convert_transformer_to_linalg(self.tiling));
                    // The fused attention kernels are private functions called by the lowered
                    // ops: inline them (specializing them for static shapes), then drop them.
                    pm.add_pass(melior::pass::transform::create_inliner());
                    pm.add_pass(melior::pass::transform::create_symbol_dce());
                    pm.add_pass(melior::pass::transform::create_canonicalizer());
                    pm.add_pass(melior::pass::transform::create_cse());
                }
                Some(p) => parse_pass_pipeline(pm.as_operation_pass_manager(), &p)
                    .map_err(|e| self.fail(kernel, stage, &format!("bad pass pipeline: {e}")))?,
            }
            pm.run(&mut module)
                .map_err(|_| self.fail(kernel, stage, "a pass failed"))?;
            if !module.as_operation().verify() {
                return Err(self.fail(kernel, stage, "the module does not verify"));
            }
            observe(stage, &StageIr::Mlir(&module));
        }
        if let Some(op) = first_non_llvm_op(&module) {
            return Err(self.fail(
                kernel,
                Stage::Llvm,
                &format!("the module is not fully lowered to the LLVM dialect: `{op}` remains"),
            ));
        }
        if want_llvm_ir {
            let ir = target::llvm_ir(&module)
                .ok_or_else(|| self.fail(kernel, Stage::LlvmIr, "translation to LLVM IR failed"))?;
            observe(Stage::LlvmIr, &StageIr::Text(&ir));
        }
        Ok(module)
    }

    /// Writes an object file of a fully lowered module, optimized with
    /// [`LLVM_PASSES`](target::LLVM_PASSES) for the compiler's target (see
    /// [`Compiler::for_target`]); returns the time of translation, optimization and code
    /// generation.
    pub fn emit_object(
        &self,
        kernel: &str,
        module: &Module,
        path: &Path,
    ) -> Result<EmitTimes, Error> {
        self.emit(kernel, module, path, OutputKind::Object)
    }

    /// Writes an object or assembly file of a fully lowered module for the compiler's target;
    /// returns the time of each LLVM step.
    pub fn emit(
        &self,
        kernel: &str,
        module: &Module,
        path: &Path,
        kind: OutputKind,
    ) -> Result<EmitTimes, Error> {
        self.emit_as(kernel, module, None, &self.target, path, kind)
    }

    /// Writes an object or assembly file of a module this compiler lowered for `target`, which
    /// must have the compiler's tiling ([`tiling_for`]), with the functions named after the
    /// symbol `from` renamed after `to` when `rename` is `Some((from, to))` (see
    /// [`target::emit_renamed`]): one lowering for several ISA variants of a kernel.
    pub fn emit_as(
        &self,
        kernel: &str,
        module: &Module,
        rename: Option<(&str, &str)>,
        target: &TargetSpec,
        path: &Path,
        kind: OutputKind,
    ) -> Result<EmitTimes, Error> {
        let times = target::emit_renamed(module, rename, target, kind, path)
            .map_err(|e| self.fail(kernel, Stage::LlvmIr, &e))?;
        match std::fs::metadata(path) {
            Ok(m) if m.len() > 0 => Ok(times),
            _ => Err(self.fail(kernel, Stage::LlvmIr, "the code generator wrote no output")),
        }
    }
}

#[cfg(feature = "codegen")]
fn first_non_llvm_op(module: &Module) -> Option<String> {
    let mut found = None;
    module.as_operation().walk(WalkOrder::PreOrder, |op| {
        let name = op
            .name()
            .as_string_ref()
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name == "builtin.module" || name.starts_with("llvm.") {
            WalkResult::Advance
        } else {
            found = Some(name);
            WalkResult::Interrupt
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn stage_files_sort_in_pipeline_order() {
        let names: Vec<String> = Stage::ALL.iter().map(|s| s.file_name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names[0], "01-transformer.mlir");
        assert_eq!(names[1], "01b-fused.mlir");
        assert_eq!(names[6], "06-llvm-ir.ll");
    }
}
