//! The `transformer` dialect, defined in IRDL and registered in an MLIR context.
//!
//! Every op takes and returns ranked tensors; the IRDL definition makes the verifier reject
//! anything else (a wrong operand count, a non-tensor operand, a missing or non-float `factor`).
//! Shape rules that IRDL cannot express (matmul inner dims, equal elementwise shapes) are checked
//! by the [graph API](crate::graph) when IR is built and again by the lowering patterns, which
//! report a diagnostic at the op instead of lowering ill-shaped IR.
//!
//! `attention` has optional operands after the scale: an additive `mask`, the query `positions`
//! (`[Sq]`), a `window` (`[2]`: left, right), a `softcap` (`[]`), per-head `sinks` and ALiBi
//! `slopes` (`[Hq]`, or `[Sq]` per row at rank 2); and an optional second result, the rows'
//! log-sum-exp. Its last operands, `mod_input0` to `mod_input5` (optional, filled in order), are
//! the tensors that its user score and mask mods read: the mods are private functions of the
//! module named by the op's `score_mod` / `mask_mod` symbol attributes (see `crate::graph` for
//! their form; the lowering checks them). (One optional operand each rather than one variadic
//! group: IRDL binds a group to a single type.) Its generic form therefore always carries
//! `operandSegmentSizes = array<i32: 1, 1, 1, 1, m, p, w, c, s, a, u0, .., u5>` and
//! `resultSegmentSizes = array<i32: 1, l>`; see `crate::flash::Spec` for the semantics.

use melior::{
    Context,
    ir::{Location, Module},
    utility::load_irdl_dialects,
};

/// The IRDL source of the `transformer` dialect.
pub const IRDL: &str = r##"
irdl.dialect @transformer {
  irdl.operation @matmul {
    %lhs = irdl.base "!builtin.tensor"
    %rhs = irdl.base "!builtin.tensor"
    %result = irdl.base "!builtin.tensor"
    irdl.operands(lhs: %lhs, rhs: %rhs)
    irdl.results(result: %result)
  }
  irdl.operation @transpose {
    %input = irdl.base "!builtin.tensor"
    %result = irdl.base "!builtin.tensor"
    irdl.operands(input: %input)
    irdl.results(result: %result)
  }
  irdl.operation @softmax {
    %input = irdl.base "!builtin.tensor"
    %result = irdl.base "!builtin.tensor"
    irdl.operands(input: %input)
    irdl.results(result: %result)
  }
  irdl.operation @add {
    %lhs = irdl.base "!builtin.tensor"
    %rhs = irdl.base "!builtin.tensor"
    %result = irdl.base "!builtin.tensor"
    irdl.operands(lhs: %lhs, rhs: %rhs)
    irdl.results(result: %result)
  }
  irdl.operation @mul {
    %lhs = irdl.base "!builtin.tensor"
    %rhs = irdl.base "!builtin.tensor"
    %result = irdl.base "!builtin.tensor"
    irdl.operands(lhs: %lhs, rhs: %rhs)
    irdl.results(result: %result)
  }
  irdl.operation @scale {
    %input = irdl.base "!builtin.tensor"
    %result = irdl.base "!builtin.tensor"
    %factor = irdl.base "#builtin.float"
    irdl.operands(input: %input)
    irdl.attributes { "factor" = %factor }
    irdl.results(result: %result)
  }
  irdl.operation @attention {
    %query = irdl.base "!builtin.tensor"
    %key = irdl.base "!builtin.tensor"
    %value = irdl.base "!builtin.tensor"
    %scale = irdl.base "!builtin.tensor"
    %mask = irdl.base "!builtin.tensor"
    %positions = irdl.base "!builtin.tensor"
    %window = irdl.base "!builtin.tensor"
    %softcap = irdl.base "!builtin.tensor"
    %sinks = irdl.base "!builtin.tensor"
    %slopes = irdl.base "!builtin.tensor"
    %u0 = irdl.base "!builtin.tensor"
    %u1 = irdl.base "!builtin.tensor"
    %u2 = irdl.base "!builtin.tensor"
    %u3 = irdl.base "!builtin.tensor"
    %u4 = irdl.base "!builtin.tensor"
    %u5 = irdl.base "!builtin.tensor"
    %true = irdl.is true
    %false = irdl.is false
    %causal = irdl.any_of(%true, %false)
    %result = irdl.base "!builtin.tensor"
    %lse = irdl.base "!builtin.tensor"
    irdl.operands(query: %query, key: %key, value: %value, scale: %scale, mask: optional %mask, positions: optional %positions, window: optional %window, softcap: optional %softcap, sinks: optional %sinks, slopes: optional %slopes, mod_input0: optional %u0, mod_input1: optional %u1, mod_input2: optional %u2, mod_input3: optional %u3, mod_input4: optional %u4, mod_input5: optional %u5)
    irdl.attributes { "causal" = %causal }
    irdl.results(result: %result, lse: optional %lse)
  }
}
"##;

/// The op names of the dialect, without the `transformer.` prefix.
pub const OPS: [&str; 7] = [
    "matmul",
    "transpose",
    "softmax",
    "add",
    "mul",
    "scale",
    "attention",
];

/// Registers the `transformer` dialect in `context`. Returns false if MLIR rejected the IRDL.
pub fn register(context: &Context) -> bool {
    let Some(module) = Module::parse(context, IRDL) else {
        return false;
    };
    let _ = Location::unknown(context);
    load_irdl_dialects(&module)
}
