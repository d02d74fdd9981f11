//! Code generation for an explicit target: triple, CPU and features, through LLVM's
//! `TargetMachine` (the LLVM C API, linked into `mlir-sys`).
//!
//! This is what lets `attn-build` emit objects for Cargo's `TARGET` when cross-compiling (e.g.
//! `aarch64-unknown-linux-gnu` on an x86-64 host), honor `-C target-cpu` / `ATTN_TARGET_CPU`, and
//! build several ISA levels of one kernel for run-time dispatch.
//!
//! `emit` and the exact host CPU need the `codegen` feature.

#[cfg(feature = "codegen")]
use melior::ir::Module;
#[cfg(feature = "codegen")]
use std::{
    ffi::{CStr, CString, c_char, c_void},
    path::Path,
    sync::Once,
};

/// A code-generation target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetSpec {
    /// LLVM target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub triple: String,
    /// CPU name (`x86-64-v3`, `znver3`, `generic`, ...).
    pub cpu: String,
    /// Feature string (`+avx2,+fma`), may be empty.
    pub features: String,
}

/// What `emit` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// A relocatable object file.
    Object,
    /// Textual assembly.
    Assembly,
}

#[cfg(feature = "codegen")]
type Ref = *mut c_void;

#[cfg(feature = "codegen")]
#[allow(non_snake_case)]
unsafe extern "C" {
    fn LLVMInitializeX86TargetInfo();
    fn LLVMInitializeX86Target();
    fn LLVMInitializeX86TargetMC();
    fn LLVMInitializeX86AsmPrinter();
    fn LLVMInitializeX86AsmParser();
    fn LLVMInitializeAArch64TargetInfo();
    fn LLVMInitializeAArch64Target();
    fn LLVMInitializeAArch64TargetMC();
    fn LLVMInitializeAArch64AsmPrinter();
    fn LLVMInitializeAArch64AsmParser();
    fn LLVMGetDefaultTargetTriple() -> *mut c_char;
    fn LLVMGetHostCPUName() -> *mut c_char;
    fn LLVMGetHostCPUFeatures() -> *mut c_char;
    fn LLVMGetTargetFromTriple(
        triple: *const c_char,
        target: *mut Ref,
        error: *mut *mut c_char,
    ) -> i32;
    fn LLVMCreateTargetMachine(
        target: Ref,
        triple: *const c_char,
        cpu: *const c_char,
        features: *const c_char,
        level: u32,
        reloc: u32,
        code_model: u32,
    ) -> Ref;
    fn LLVMDisposeTargetMachine(tm: Ref);
    fn LLVMCreateTargetDataLayout(tm: Ref) -> Ref;
    fn LLVMDisposeTargetData(data: Ref);
    fn LLVMSetModuleDataLayout(module: mlir_sys::LLVMModuleRef, data: Ref);
    fn LLVMTargetMachineEmitToFile(
        tm: Ref,
        module: mlir_sys::LLVMModuleRef,
        filename: *const c_char,
        kind: u32,
        error: *mut *mut c_char,
    ) -> i32;
    fn LLVMCreatePassBuilderOptions() -> Ref;
    fn LLVMDisposePassBuilderOptions(options: Ref);
    fn LLVMRunPasses(
        module: mlir_sys::LLVMModuleRef,
        passes: *const c_char,
        tm: Ref,
        options: Ref,
    ) -> Ref;
    fn LLVMGetErrorMessage(error: Ref) -> *mut c_char;
    fn LLVMDisposeErrorMessage(message: *mut c_char);
}

#[cfg(feature = "codegen")]
const CODEGEN_AGGRESSIVE: u32 = 3;
#[cfg(feature = "codegen")]
const RELOC_PIC: u32 = 2;
#[cfg(feature = "codegen")]
const CODE_MODEL_DEFAULT: u32 = 0;

#[cfg(feature = "codegen")]
static INIT: Once = Once::new();

#[cfg(feature = "codegen")]
fn init() {
    // SAFETY: LLVM's target registration functions take no arguments and are idempotent; `Once`
    // keeps them from racing.
    INIT.call_once(|| unsafe {
        LLVMInitializeX86TargetInfo();
        LLVMInitializeX86Target();
        LLVMInitializeX86TargetMC();
        LLVMInitializeX86AsmPrinter();
        // Inline assembly (the LLVM-MCA markers of `attnc --mca`) needs the parsers.
        LLVMInitializeX86AsmParser();
        LLVMInitializeAArch64TargetInfo();
        LLVMInitializeAArch64Target();
        LLVMInitializeAArch64TargetMC();
        LLVMInitializeAArch64AsmPrinter();
        LLVMInitializeAArch64AsmParser();
    });
}

/// Takes ownership of an LLVM-allocated message and copies it out.
#[cfg(feature = "codegen")]
fn take_message(raw: *mut c_char) -> String {
    if raw.is_null() {
        return String::new();
    }
    // SAFETY: `raw` is a NUL-terminated string allocated by LLVM, freed exactly once here.
    unsafe {
        let s = CStr::from_ptr(raw).to_string_lossy().into_owned();
        mlir_sys::LLVMDisposeMessage(raw);
        s
    }
}

#[cfg(feature = "codegen")]
fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("`{s}` contains a NUL byte"))
}

impl TargetSpec {
    /// The machine running this code, with its exact CPU and features.
    #[cfg(feature = "codegen")]
    pub fn host() -> Self {
        init();
        // SAFETY: these return LLVM-allocated strings that `take_message` frees.
        let (triple, cpu, features) = unsafe {
            (
                LLVMGetDefaultTargetTriple(),
                LLVMGetHostCPUName(),
                LLVMGetHostCPUFeatures(),
            )
        };
        TargetSpec {
            triple: take_message(triple),
            cpu: take_message(cpu),
            features: take_message(features),
        }
    }

    /// The machine running this code, without LLVM (no `codegen` feature): Cargo's `HOST` triple
    /// (or the architecture this was compiled for, on Linux), CPU `generic`, no features.
    #[cfg(not(feature = "codegen"))]
    pub fn host() -> Self {
        let triple = std::env::var("HOST")
            .unwrap_or_else(|_| format!("{}-unknown-linux-gnu", std::env::consts::ARCH));
        TargetSpec::new(&triple, "generic")
    }

    /// A target for `triple` with a CPU name and no extra features.
    pub fn new(triple: &str, cpu: &str) -> Self {
        TargetSpec {
            triple: triple.to_string(),
            cpu: cpu.to_string(),
            features: String::new(),
        }
    }

    /// The short architecture name of the triple (`x86_64`, `aarch64`, ...).
    pub fn arch(&self) -> &str {
        self.triple.split('-').next().unwrap_or("")
    }

    /// A stable text for cache keys.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.triple, self.cpu, self.features)
    }
}

/// Translates `module` (LLVM dialect) to LLVM IR, optimizes it at O3 for `target` and writes an
/// object or assembly file to `path`.
#[cfg(feature = "codegen")]
pub fn emit(
    module: &Module,
    target: &TargetSpec,
    kind: OutputKind,
    path: &Path,
) -> Result<(), String> {
    init();
    let triple = cstring(&target.triple)?;
    let cpu = cstring(&target.cpu)?;
    let features = cstring(&target.features)?;
    let path_c = cstring(path.to_str().ok_or("the output path is not UTF-8")?)?;
    let passes = cstring("default<O3>")?;
    // SAFETY: every LLVM object created here is disposed before returning, in reverse order of
    // creation; the LLVM module is owned by the LLVM context created here; strings passed in are
    // NUL-terminated and outlive the calls; error strings are freed by `take_message`.
    unsafe {
        let mut llvm_target: Ref = std::ptr::null_mut();
        let mut error: *mut c_char = std::ptr::null_mut();
        if LLVMGetTargetFromTriple(triple.as_ptr(), &mut llvm_target, &mut error) != 0 {
            return Err(format!(
                "unknown target `{}`: {}",
                target.triple,
                take_message(error)
            ));
        }
        let tm = LLVMCreateTargetMachine(
            llvm_target,
            triple.as_ptr(),
            cpu.as_ptr(),
            features.as_ptr(),
            CODEGEN_AGGRESSIVE,
            RELOC_PIC,
            CODE_MODEL_DEFAULT,
        );
        if tm.is_null() {
            return Err(format!(
                "cannot create a target machine for {}",
                target.key()
            ));
        }
        let ctx = mlir_sys::LLVMContextCreate();
        let llvm_module =
            mlir_sys::mlirTranslateModuleToLLVMIR(module.as_operation().to_raw(), ctx);
        let result = if llvm_module.is_null() {
            Err("translation to LLVM IR failed".to_string())
        } else {
            mlir_sys::LLVMSetTarget(llvm_module, triple.as_ptr());
            let layout = LLVMCreateTargetDataLayout(tm);
            LLVMSetModuleDataLayout(llvm_module, layout);
            LLVMDisposeTargetData(layout);
            let options = LLVMCreatePassBuilderOptions();
            let err = LLVMRunPasses(llvm_module, passes.as_ptr(), tm, options);
            LLVMDisposePassBuilderOptions(options);
            let result = if !err.is_null() {
                let raw = LLVMGetErrorMessage(err);
                let msg = CStr::from_ptr(raw).to_string_lossy().into_owned();
                LLVMDisposeErrorMessage(raw);
                Err(format!("LLVM optimization failed: {msg}"))
            } else {
                let file_kind = match kind {
                    OutputKind::Object => 1,
                    OutputKind::Assembly => 0,
                };
                let mut error: *mut c_char = std::ptr::null_mut();
                if LLVMTargetMachineEmitToFile(
                    tm,
                    llvm_module,
                    path_c.as_ptr(),
                    file_kind,
                    &mut error,
                ) != 0
                {
                    Err(format!("code generation failed: {}", take_message(error)))
                } else {
                    Ok(())
                }
            };
            mlir_sys::LLVMDisposeModule(llvm_module);
            result
        };
        mlir_sys::LLVMContextDispose(ctx);
        LLVMDisposeTargetMachine(tm);
        result
    }
}

/// The ELF machine number of an object file (`62` x86-64, `183` AArch64), if it is ELF.
pub fn elf_machine(bytes: &[u8]) -> Option<u16> {
    if bytes.len() < 20 || !bytes.starts_with(b"\x7fELF") {
        return None;
    }
    Some(u16::from_le_bytes([bytes[18], bytes[19]]))
}
