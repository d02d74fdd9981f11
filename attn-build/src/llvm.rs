//! Translation of an LLVM-dialect module to textual LLVM IR (the LLVM C API, through `mlir-sys`).

use melior::ir::Module;
use std::ffi::CStr;

/// Translates `module` to LLVM IR text; `None` if translation fails.
pub fn module_to_llvm_ir(module: &Module) -> Option<String> {
    // SAFETY: the LLVM context is created and disposed here; the translated module belongs to it
    // and is disposed before it; the printed string is copied, then freed with LLVM's allocator.
    unsafe {
        let ctx = mlir_sys::LLVMContextCreate();
        let llvm_module =
            mlir_sys::mlirTranslateModuleToLLVMIR(module.as_operation().to_raw(), ctx);
        let text = if llvm_module.is_null() {
            None
        } else {
            let raw = mlir_sys::LLVMPrintModuleToString(llvm_module);
            let s = CStr::from_ptr(raw).to_string_lossy().into_owned();
            mlir_sys::LLVMDisposeMessage(raw);
            mlir_sys::LLVMDisposeModule(llvm_module);
            Some(s)
        };
        mlir_sys::LLVMContextDispose(ctx);
        text
    }
}
