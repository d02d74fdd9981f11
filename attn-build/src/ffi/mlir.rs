//! Raw MLIR handles: the pass and pattern callbacks of melior hand out raw operations, rewriters
//! and contexts; these functions turn them into borrowed handles that cannot outlive the call.

use melior::{
    Context, RewritePattern, RewriterBase, create_op_rewrite_pattern,
    dialect::DialectHandle,
    ir::{OperationRef, Value, ValueLike, operation::OperationLike, r#type::TypeId},
    pass::{
        Pass,
        external::{ExternalPass, create_external},
    },
};
use std::ffi::CString;

/// Erases the borrow lifetime of a value handle. MLIR values are owned by the IR, not by the
/// Rust handle; the lowering uses these handles only within the pattern invocation that created
/// them.
pub fn detach<'c, 'a, 'b>(v: Value<'c, 'b>) -> Value<'c, 'a> {
    // SAFETY: the raw handle stays valid as long as the defining op is in the IR, which holds for
    // the whole pattern invocation; the lifetime only tracked a Rust borrow of the builder.
    unsafe { Value::from_raw(v.to_raw()) }
}

/// The number of uses of `v` (operands of ops that read it).
pub fn use_count(v: Value) -> usize {
    let mut n = 0;
    // SAFETY: `v` is a live value of the IR; its use list is walked without modification and
    // each operand handle is only compared and advanced.
    unsafe {
        let mut u = mlir_sys::mlirValueGetFirstUse(v.to_raw());
        while !mlir_sys::mlirOpOperandIsNull(u) {
            n += 1;
            u = mlir_sys::mlirOpOperandGetNextUse(u);
        }
    }
    n
}

/// Emits an error diagnostic at `op`'s location (reported by the pipeline's handler).
pub fn emit_error(op: &OperationRef, message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: the location belongs to a live op; MLIR copies the message.
    unsafe { mlir_sys::mlirEmitError(op.location().to_raw(), text.as_ptr()) }
}

/// A rewrite pattern rooted at ops named `op_name`: `rewrite` gets the matched op, its context
/// and the rewriter (positioned nowhere in particular), valid for the call only, and returns
/// whether it rewrote the op.
pub fn op_pattern<F>(op_name: &str, context: &Context, mut rewrite: F) -> RewritePattern
where
    F: for<'c, 'a> FnMut(OperationRef<'c, 'a>, &'c Context, RewriterBase<'c, 'a>) -> bool + 'static,
{
    create_op_rewrite_pattern(
        op_name,
        1,
        context,
        move |_pattern, raw_op, raw_rewriter| {
            // SAFETY: the driver passes a live op and rewriter, valid for this call only; the
            // higher-ranked lifetimes of `rewrite` keep every handle inside the call.
            let op: OperationRef = unsafe { OperationRef::from_raw(raw_op) };
            // `to_ref` borrows the `ContextRef` it is called on: keep that one alive.
            let ctx_ref = op.context();
            // SAFETY: the context outlives the rewrite; see above for the lifetime.
            let ctx = unsafe { ctx_ref.to_ref() };
            // SAFETY: the base of a live pattern rewriter is live as long as it is.
            let base = unsafe {
                RewriterBase::from_raw(mlir_sys::mlirPatternRewriterAsBase(raw_rewriter))
            };
            rewrite(op, ctx, base)
        },
        &[],
    )
}

/// A pass on `builtin.module` written in Rust: `run` gets the module, its context and the pass
/// (to signal failure), valid for the call only.
pub fn module_pass<F>(
    run: F,
    id: TypeId,
    name: &str,
    argument: &str,
    description: &str,
    dialects: &[DialectHandle],
) -> Pass
where
    F: for<'c, 'a> FnMut(OperationRef<'c, 'a>, &'c Context, ExternalPass<'_>) + Clone + 'static,
{
    let mut run = run;
    create_external(
        move |module: OperationRef, pass: ExternalPass| {
            // `to_ref` borrows the `ContextRef` it is called on: keep that one alive.
            let ctx_ref = module.context();
            // SAFETY: the context outlives the pass run; the higher-ranked lifetimes of `run`
            // keep the reference inside the call.
            let ctx = unsafe { ctx_ref.to_ref() };
            run(module, ctx, pass)
        },
        id,
        name,
        argument,
        description,
        "builtin.module",
        dialects,
    )
}
