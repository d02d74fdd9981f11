//! LLVM's C API (linked into `mlir-sys`) behind safe handles: target registration and host
//! queries, translation of an LLVM-dialect module to LLVM IR, the optimization pipeline (the new
//! pass manager) and code generation through a `TargetMachine`.
//!
//! Each handle owns what it created and disposes of it when dropped. Handles hold raw pointers,
//! so they are neither `Send` nor `Sync`: each thread creates its own.

use melior::ir::Module;
use mlir_sys::{LLVMContextRef, LLVMModuleRef};
use std::{
    ffi::{CStr, CString, c_char, c_void},
    path::Path,
    ptr::{self, NonNull},
    sync::Once,
};

type Ref = *mut c_void;

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
    fn LLVMSetModuleDataLayout(module: LLVMModuleRef, data: Ref);
    fn LLVMTargetMachineEmitToFile(
        tm: Ref,
        module: LLVMModuleRef,
        filename: *const c_char,
        kind: u32,
        error: *mut *mut c_char,
    ) -> i32;
    fn LLVMCreatePassBuilderOptions() -> Ref;
    fn LLVMDisposePassBuilderOptions(options: Ref);
    fn LLVMRunPasses(module: LLVMModuleRef, passes: *const c_char, tm: Ref, options: Ref) -> Ref;
    fn LLVMGetErrorMessage(error: Ref) -> *mut c_char;
    fn LLVMDisposeErrorMessage(message: *mut c_char);
}

/// `LLVMCodeGenLevelAggressive` (-O3 code generation).
const CODEGEN_AGGRESSIVE: u32 = 3;
/// `LLVMRelocPIC`: objects are linked into position-independent executables and libraries.
const RELOC_PIC: u32 = 2;
/// `LLVMCodeModelDefault`.
const CODE_MODEL_DEFAULT: u32 = 0;

static INIT: Once = Once::new();

/// Registers LLVM's x86-64 and AArch64 targets (once per process; later calls do nothing).
pub fn init_targets() {
    // SAFETY: LLVM's target registration functions take no arguments and only fill LLVM's target
    // registry; `Once` runs them exactly once, before any other thread can look a target up.
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

/// Takes ownership of an LLVM-allocated message (`LLVMDisposeMessage`) and copies it out; empty
/// for a null pointer.
fn take_message(raw: *mut c_char) -> String {
    if raw.is_null() {
        return String::new();
    }
    // SAFETY: `raw` is a non-null, NUL-terminated string allocated by LLVM's C API for the
    // caller, which passes it here exactly once; it is copied before being freed.
    unsafe {
        let s = CStr::from_ptr(raw).to_string_lossy().into_owned();
        mlir_sys::LLVMDisposeMessage(raw);
        s
    }
}

/// Takes ownership of a non-null `LLVMErrorRef` and returns its message.
fn take_error(error: Ref) -> String {
    // SAFETY: `error` is a non-null error returned by `LLVMRunPasses`, owned by the caller:
    // `LLVMGetErrorMessage` consumes it and hands back a message freed with
    // `LLVMDisposeErrorMessage`, after copying.
    unsafe {
        let raw = LLVMGetErrorMessage(error);
        if raw.is_null() {
            return String::new();
        }
        let s = CStr::from_ptr(raw).to_string_lossy().into_owned();
        LLVMDisposeErrorMessage(raw);
        s
    }
}

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("`{s}` contains a NUL byte"))
}

/// The machine running this code: LLVM's default triple, the host CPU's name and its features.
pub fn host() -> (String, String, String) {
    init_targets();
    // SAFETY: these functions take no arguments and return strings LLVM allocated for the
    // caller, each freed exactly once by `take_message`.
    let (triple, cpu, features) = unsafe {
        (
            LLVMGetDefaultTargetTriple(),
            LLVMGetHostCPUName(),
            LLVMGetHostCPUFeatures(),
        )
    };
    (
        take_message(triple),
        take_message(cpu),
        take_message(features),
    )
}

/// An LLVM `TargetMachine`: code generation for one triple, CPU and feature set, at -O3, for
/// position-independent code.
pub struct TargetMachine {
    raw: NonNull<c_void>,
    triple: CString,
}

impl TargetMachine {
    /// A target machine for `triple`, `cpu` and `features` (`+avx2,+fma`, may be empty); an
    /// error if LLVM does not know the triple (or was not set up for its architecture).
    pub fn new(triple: &str, cpu: &str, features: &str) -> Result<Self, String> {
        init_targets();
        let triple_c = cstring(triple)?;
        let cpu_c = cstring(cpu)?;
        let features_c = cstring(features)?;
        let mut target: Ref = ptr::null_mut();
        let mut error: *mut c_char = ptr::null_mut();
        // SAFETY: the triple is NUL-terminated and outlives the call; `target` and `error` are
        // valid out-pointers; on failure `error` is an LLVM message that `take_message` frees.
        let failed =
            unsafe { LLVMGetTargetFromTriple(triple_c.as_ptr(), &mut target, &mut error) } != 0;
        if failed || target.is_null() {
            return Err(format!(
                "unknown target `{triple}`: {}",
                take_message(error)
            ));
        }
        // SAFETY: `target` was just returned by LLVM's registry (targets live as long as the
        // process); the strings are NUL-terminated and LLVM copies them; the enum values are
        // those of LLVM's C API.
        let raw = unsafe {
            LLVMCreateTargetMachine(
                target,
                triple_c.as_ptr(),
                cpu_c.as_ptr(),
                features_c.as_ptr(),
                CODEGEN_AGGRESSIVE,
                RELOC_PIC,
                CODE_MODEL_DEFAULT,
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| {
            format!("cannot create a target machine for {triple} {cpu} `{features}`")
        })?;
        Ok(TargetMachine {
            raw,
            triple: triple_c,
        })
    }
}

impl Drop for TargetMachine {
    fn drop(&mut self) {
        // SAFETY: `raw` was created by `LLVMCreateTargetMachine` and is disposed exactly once,
        // here; modules it configured keep no reference to it.
        unsafe { LLVMDisposeTargetMachine(self.raw.as_ptr()) }
    }
}

/// What [`LlvmModule::emit_to_file`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// Textual assembly (`LLVMAssemblyFile`).
    Assembly,
    /// A relocatable object file (`LLVMObjectFile`).
    Object,
}

/// An LLVM IR module together with the LLVM context that owns it.
pub struct LlvmModule {
    context: LLVMContextRef,
    module: LLVMModuleRef,
}

impl LlvmModule {
    /// Translates an MLIR module in the LLVM dialect to LLVM IR, in a fresh LLVM context; `None`
    /// if translation fails (MLIR then reports diagnostics through the module's context).
    pub fn translate(module: &Module) -> Option<Self> {
        // SAFETY: the context is created here and owned by the result (or disposed below); the
        // MLIR operation is a live module borrowed for the call; MLIR builds a new LLVM module in
        // `context` and does not keep the operation.
        unsafe {
            let context = mlir_sys::LLVMContextCreate();
            let llvm =
                mlir_sys::mlirTranslateModuleToLLVMIR(module.as_operation().to_raw(), context);
            if llvm.is_null() {
                mlir_sys::LLVMContextDispose(context);
                None
            } else {
                Some(LlvmModule {
                    context,
                    module: llvm,
                })
            }
        }
    }

    /// The module as LLVM IR text.
    pub fn print(&self) -> String {
        // SAFETY: the module is live; LLVM returns a fresh string that `take_message` frees.
        take_message(unsafe { mlir_sys::LLVMPrintModuleToString(self.module) })
    }

    /// Renames every function whose name contains `from` (the kernel's symbol: the function and
    /// its `_mlir_ciface_` wrapper) by replacing it with `to`; calls follow, LLVM referring to
    /// functions by value. Returns how many were renamed.
    pub fn rename_functions(&mut self, from: &str, to: &str) -> usize {
        let mut renamed = 0;
        // SAFETY: the module is live; the function handles LLVM returns while iterating belong
        // to it and stay valid (renaming does not remove or reorder functions); the name LLVM
        // returns is valid until the function is renamed and is copied before that; the new name
        // is passed with its length (no NUL needed).
        unsafe {
            let mut f = mlir_sys::LLVMGetFirstFunction(self.module);
            while !f.is_null() {
                let mut len = 0usize;
                let raw = mlir_sys::LLVMGetValueName2(f, &mut len);
                let name = if raw.is_null() {
                    String::new()
                } else {
                    let bytes = std::slice::from_raw_parts(raw.cast::<u8>(), len);
                    String::from_utf8_lossy(bytes).into_owned()
                };
                if !from.is_empty() && name.contains(from) {
                    let new = name.replace(from, to);
                    mlir_sys::LLVMSetValueName2(f, new.as_ptr().cast::<c_char>(), new.len());
                    renamed += 1;
                }
                f = mlir_sys::LLVMGetNextFunction(f);
            }
        }
        renamed
    }

    /// Sets the module's triple and data layout to those of `tm`, as optimization and code
    /// generation expect.
    pub fn configure_for(&mut self, tm: &TargetMachine) {
        // SAFETY: the module and the target machine are live; LLVM copies the triple string and
        // the data layout, whose handle is disposed right after.
        unsafe {
            mlir_sys::LLVMSetTarget(self.module, tm.triple.as_ptr());
            let layout = LLVMCreateTargetDataLayout(tm.raw.as_ptr());
            LLVMSetModuleDataLayout(self.module, layout);
            LLVMDisposeTargetData(layout);
        }
    }

    /// Runs an optimization pipeline of the new pass manager (`default<O3>`, or any textual
    /// pipeline `opt -passes=` accepts) for `tm`.
    pub fn optimize(&mut self, tm: &TargetMachine, passes: &str) -> Result<(), String> {
        let passes = cstring(passes)?;
        // SAFETY: the module and the target machine are live; the pipeline text is
        // NUL-terminated and outlives the call; the options are created and disposed here; a
        // non-null result is an error that `take_error` consumes.
        let error = unsafe {
            let options = LLVMCreatePassBuilderOptions();
            let error = LLVMRunPasses(self.module, passes.as_ptr(), tm.raw.as_ptr(), options);
            LLVMDisposePassBuilderOptions(options);
            error
        };
        if error.is_null() {
            Ok(())
        } else {
            Err(take_error(error))
        }
    }

    /// Generates code for `tm` and writes it to `path`.
    pub fn emit_to_file(
        &mut self,
        tm: &TargetMachine,
        path: &Path,
        kind: FileType,
    ) -> Result<(), String> {
        let path_c = cstring(path.to_str().ok_or("the output path is not UTF-8")?)?;
        let file_type = match kind {
            FileType::Assembly => 0,
            FileType::Object => 1,
        };
        let mut error: *mut c_char = ptr::null_mut();
        // SAFETY: the module and the target machine are live; the path is NUL-terminated and
        // outlives the call; on failure `error` is an LLVM message that `take_message` frees.
        let failed = unsafe {
            LLVMTargetMachineEmitToFile(
                tm.raw.as_ptr(),
                self.module,
                path_c.as_ptr(),
                file_type,
                &mut error,
            )
        } != 0;
        if failed {
            Err(take_message(error))
        } else {
            Ok(())
        }
    }
}

impl Drop for LlvmModule {
    fn drop(&mut self) {
        // SAFETY: the module belongs to the context; both were created for this handle and are
        // disposed exactly once, the module first.
        unsafe {
            mlir_sys::LLVMDisposeModule(self.module);
            mlir_sys::LLVMContextDispose(self.context);
        }
    }
}
