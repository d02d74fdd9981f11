//! The score/mask mods of `transformer.attention` ops, read back from the private functions
//! their `score_mod` / `mask_mod` attributes name (see `crate::graph` for their form) and
//! checked again (types, indices in bounds for the op's static shapes) before the fused kernel
//! is generated from them. This is the verifier of the mods: IRDL checks the op, this checks
//! the functions' signatures and bodies, and any op outside the mods' vocabulary is an error.
//!
//! The functions are read before any pattern runs (folding could rewrite their bodies), into a
//! table that the attention pattern looks the op's mods up in.

use super::types::{TensorTy, dtype_of, segments};
use crate::flash::UserMods;
use attn_runtime::DType;
use attn_runtime::mods::{
    self, BinOp, Dims, Expr, Func, InputInfo, Kind, ModKind, ModPair, Type, Var,
};
use melior::ir::{
    BlockLike, OperationRef, RegionLike, Value, ValueLike,
    attribute::{FloatAttribute, IntegerAttribute},
    operation::{OperationLike, WalkOrder, WalkResult},
};
use std::collections::HashMap;
use std::sync::Arc;

/// The mods of a module's attention ops, by [`key_of`] their op.
pub(super) type ModTable = HashMap<String, Arc<UserMods>>;

fn name_of(op: &OperationRef) -> String {
    op.name()
        .as_string_ref()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The symbol an attribute of `op` names (`@f` -> `f`).
fn symbol(op: &OperationRef, attr: &str) -> Option<String> {
    let a = op.attribute(attr).ok()?.to_string();
    Some(a.trim_start_matches('@').trim_matches('"').to_string())
}

/// The key of an attention op's mods (`score@mask` symbols), `None` without mods.
pub(super) fn key_of(op: &OperationRef) -> Option<String> {
    let (s, m) = (symbol(op, "score_mod"), symbol(op, "mask_mod"));
    if s.is_none() && m.is_none() {
        return None;
    }
    Some(format!(
        "{}@{}",
        s.unwrap_or_default(),
        m.unwrap_or_default()
    ))
}

/// What the table needs of one attention op with mods.
struct Wanted {
    key: String,
    score: Option<String>,
    mask: Option<String>,
    q: TensorTy,
    k: TensorTy,
    inputs: Vec<TensorTy>,
}

/// Reads and checks the mods of every attention op of `module`.
pub(super) fn collect(module: &OperationRef) -> Result<ModTable, String> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut error: Option<String> = None;
    module.walk(WalkOrder::PreOrder, |op| {
        if name_of(&op) != "transformer.attention" {
            return WalkResult::Advance;
        }
        let Some(key) = key_of(&op) else {
            return WalkResult::Advance;
        };
        let ty = |i: usize| op.operand(i).ok().and_then(|v| TensorTy::of(v));
        let n = op.operand_count();
        let count: usize = segments(&op, "operandSegmentSizes")
            .ok()
            .map(|s| s.iter().rev().take(crate::graph::MOD_INPUTS).sum())
            .unwrap_or(0);
        let inputs: Option<Vec<TensorTy>> = (n.saturating_sub(count)..n).map(ty).collect();
        match (ty(0), ty(1), inputs) {
            (Some(q), Some(k), Some(inputs)) => wanted.push(Wanted {
                key,
                score: symbol(&op, "score_mod"),
                mask: symbol(&op, "mask_mod"),
                q,
                k,
                inputs,
            }),
            _ => {
                error = Some("transformer.attention with mods: unsupported operand types".into());
                return WalkResult::Interrupt;
            }
        }
        WalkResult::Advance
    });
    if let Some(e) = error {
        return Err(e);
    }
    if wanted.is_empty() {
        return Ok(ModTable::new());
    }
    // Every function named, read once: (kind, ct, inputs) it is expected to have.
    let mut expected: HashMap<String, (ModKind, String, Vec<TensorTy>)> = HashMap::new();
    for w in &wanted {
        let ct = if w.q.elem == "f64" { "f64" } else { "f32" }.to_string();
        for (kind, sym) in [(ModKind::Score, &w.score), (ModKind::Mask, &w.mask)] {
            if let Some(sym) = sym {
                expected.insert(sym.clone(), (kind, ct.clone(), w.inputs.clone()));
            }
        }
    }
    let mut bodies: HashMap<String, Result<Expr, String>> = HashMap::new();
    module.walk(WalkOrder::PreOrder, |op| {
        if name_of(&op) == "func.func"
            && let Some(sym) = symbol(&op, "sym_name")
            && let Some((kind, ct, inputs)) = expected.get(&sym)
        {
            bodies.insert(sym.clone(), read(&op, *kind, ct, inputs));
        }
        WalkResult::Advance
    });
    let mut table = ModTable::new();
    for w in wanted {
        let mut pair = ModPair::default();
        for (kind, sym) in [(ModKind::Score, &w.score), (ModKind::Mask, &w.mask)] {
            let Some(sym) = sym else { continue };
            let e = bodies
                .remove(sym)
                .unwrap_or_else(|| Err(format!("no function `@{sym}` in the module")))
                .map_err(|e| format!("{} `@{sym}`: {e}", kind.name()))?;
            match kind {
                ModKind::Score => pair.score = Some(e),
                ModKind::Mask => pair.mask = Some(e),
            }
        }
        let r = w.q.rank();
        let size = |t: &TensorTy, i: usize| t.dims.get(i).copied().flatten();
        let dims = match (
            if r == 4 { size(&w.q, 0) } else { Some(1) },
            if r >= 3 { size(&w.q, r - 3) } else { Some(1) },
            size(&w.q, r.wrapping_sub(2)),
            size(&w.k, r.wrapping_sub(2)),
        ) {
            (Some(b), Some(h), Some(sq), Some(sk)) => Dims { b, h, sq, sk },
            _ => {
                return Err(format!(
                    "score/mask mods need static batch, head and sequence dims, got q {}",
                    w.q.show()
                ));
            }
        };
        let mut inputs = Vec::new();
        for t in &w.inputs {
            let shape: Option<Vec<usize>> = t.dims.iter().copied().collect();
            let d = dtype_of(&t.elem).filter(|d| matches!(d, DType::F32 | DType::I32));
            match (shape, d) {
                (Some(s), Some(d)) if !s.is_empty() => inputs.push((d, s)),
                _ => {
                    return Err(format!(
                        "the inputs of mods are f32 or i32 tensors of static shape, got {}",
                        t.show()
                    ));
                }
            }
        }
        let infos: Vec<InputInfo> = inputs
            .iter()
            .enumerate()
            .map(|(n, (d, s))| InputInfo {
                name: format!("mod input #{n}"),
                shape: s.clone(),
                int: *d == DType::I32,
            })
            .collect();
        for (kind, e) in pair.each() {
            mods::check(e, kind, &dims, &infos).map_err(|e| format!("{}: {e}", kind.name()))?;
        }
        table.insert(w.key, Arc::new(UserMods::new(pair, inputs, dims)));
    }
    Ok(table)
}

/// A value of a mod function: an expression, or one of its input tensors.
#[derive(Clone)]
enum Sym {
    E(Expr),
    In(usize),
}

/// Reads the body of the mod function `func` of `kind` (compute type `ct`, inputs `inputs`).
fn read(func: &OperationRef, kind: ModKind, ct: &str, inputs: &[TensorTy]) -> Result<Expr, String> {
    let block = func
        .region(0)
        .ok()
        .and_then(|r| r.first_block())
        .ok_or("the function has no body")?;
    let vars = Var::params(kind);
    if block.argument_count() != vars.len() + inputs.len() {
        return Err(format!(
            "expected {} arguments ({} variables, then {} inputs), got {}",
            vars.len() + inputs.len(),
            vars.len(),
            inputs.len(),
            block.argument_count()
        ));
    }
    let key = |v: Value| v.to_raw().ptr as usize;
    let mut env: HashMap<usize, Sym> = HashMap::new();
    let mut next = 0u32;
    let mut node = |kind: Kind| {
        next += 1;
        Expr::new(next, kind)
    };
    for i in 0..block.argument_count() {
        let a: Value = block.argument(i).map_err(|e| e.to_string())?.into();
        let t = a.r#type().to_string();
        let sym = match vars.get(i) {
            Some(Var::Score) if t == ct => Sym::E(node(Kind::Var(Var::Score))),
            Some(v) if *v != Var::Score && t == "i64" => Sym::E(node(Kind::Var(*v))),
            Some(v) => return Err(format!("argument `{}` has type {t}", v.name())),
            None => {
                let n = i - vars.len();
                if TensorTy::parse(&t).as_ref() != inputs.get(n) {
                    return Err(format!(
                        "input argument #{n} has type {t}, the op's is {}",
                        inputs[n].show()
                    ));
                }
                Sym::In(n)
            }
        };
        env.insert(key(a), sym);
    }
    let mut op = block.first_operation();
    while let Some(o) = op {
        let name = name_of(&o);
        let args: Vec<Sym> = (0..o.operand_count())
            .map(|i| {
                let v = o.operand(i).map_err(|e| e.to_string())?;
                env.get(&key(v))
                    .cloned()
                    .ok_or_else(|| format!("`{name}` uses a value defined outside the function"))
            })
            .collect::<Result<_, _>>()?;
        let ex = |i: usize| -> Result<Box<Expr>, String> {
            match args.get(i) {
                Some(Sym::E(e)) => Ok(Box::new(e.clone())),
                _ => Err(format!("`{name}`: operand #{i} is not a scalar")),
            }
        };
        if name == "func.return" {
            return match args.as_slice() {
                [Sym::E(e)] => Ok(e.clone()),
                _ => Err("the function must return one scalar".into()),
            };
        }
        let result_ty = o
            .result(0)
            .map(|r| Value::from(r).r#type().to_string())
            .unwrap_or_default();
        let binary = |op: BinOp| -> Result<Kind, String> { Ok(Kind::Binary(op, ex(0)?, ex(1)?)) };
        let call = |f: Func| -> Result<Kind, String> {
            let a: Vec<Expr> = (0..f.arity())
                .map(|i| ex(i).map(|b| *b))
                .collect::<Result<_, _>>()?;
            Ok(Kind::Call(f, a))
        };
        let k: Option<Kind> = match name.as_str() {
            "arith.constant" => {
                let a = o.attribute("value").map_err(|e| e.to_string())?;
                Some(if result_ty == "i1" {
                    Kind::Bool(a.to_string().starts_with("true"))
                } else if let Ok(f) = FloatAttribute::try_from(a) {
                    Kind::Float(f.value())
                } else if let Ok(i) = IntegerAttribute::try_from(a) {
                    Kind::Int(i.value())
                } else {
                    return Err(format!("unsupported constant {a}"));
                })
            }
            "arith.addi" | "arith.addf" => Some(binary(BinOp::Add)?),
            "arith.subi" | "arith.subf" => Some(binary(BinOp::Sub)?),
            "arith.muli" | "arith.mulf" => Some(binary(BinOp::Mul)?),
            "arith.divsi" | "arith.divf" => Some(binary(BinOp::Div)?),
            "arith.remsi" | "arith.remf" => Some(binary(BinOp::Rem)?),
            "arith.andi" => Some(binary(BinOp::And)?),
            "arith.ori" => Some(binary(BinOp::Or)?),
            "arith.xori" => match (ex(0)?, ex(1)?) {
                (x, t) | (t, x) if t.kind == Kind::Bool(true) => Some(Kind::Not(x)),
                _ => return Err("`arith.xori` is supported as `!` (with `true`) only".into()),
            },
            "arith.negf" => Some(Kind::Neg(ex(0)?)),
            "arith.cmpi" | "arith.cmpf" => {
                let p = o
                    .attribute("predicate")
                    .ok()
                    .and_then(|a| IntegerAttribute::try_from(a).ok())
                    .map(|a| a.value())
                    .ok_or("a comparison without a predicate")?;
                let op = if name == "arith.cmpi" {
                    // eq, ne, slt, sle, sgt, sge
                    [
                        BinOp::Eq,
                        BinOp::Ne,
                        BinOp::Lt,
                        BinOp::Le,
                        BinOp::Gt,
                        BinOp::Ge,
                    ]
                    .get(p as usize)
                    .copied()
                } else {
                    // oeq (1), ogt, oge, olt, ole (5), une (13)
                    match p {
                        1 => Some(BinOp::Eq),
                        2 => Some(BinOp::Gt),
                        3 => Some(BinOp::Ge),
                        4 => Some(BinOp::Lt),
                        5 => Some(BinOp::Le),
                        13 => Some(BinOp::Ne),
                        _ => None,
                    }
                };
                let op = op.ok_or_else(|| format!("unsupported predicate {p} of `{name}`"))?;
                Some(binary(op)?)
            }
            "arith.select" => Some(Kind::If(ex(0)?, ex(1)?, ex(2)?)),
            "arith.minsi" | "arith.minnumf" => Some(call(Func::Min)?),
            "arith.maxsi" | "arith.maxnumf" => Some(call(Func::Max)?),
            "math.absi" | "math.absf" => Some(call(Func::Abs)?),
            "math.exp" => Some(call(Func::Exp)?),
            "math.tanh" => Some(call(Func::Tanh)?),
            "math.sqrt" => Some(call(Func::Sqrt)?),
            "arith.sitofp" => Some(Kind::Cast(ex(0)?, Type::Float)),
            "arith.fptosi" | "arith.extui" => Some(Kind::Cast(ex(0)?, Type::Int)),
            // Conversions between the index types of reads, and widenings of read elements,
            // are the identity in the mods' types.
            "arith.index_cast" | "arith.extsi" | "arith.extf" => None,
            "tensor.extract" => {
                let Some(Sym::In(n)) = args.first() else {
                    return Err("`tensor.extract` reads the function's input arguments only".into());
                };
                let index = (1..args.len())
                    .map(|i| ex(i).map(|b| *b))
                    .collect::<Result<_, _>>()?;
                Some(Kind::Read { input: *n, index })
            }
            other => return Err(format!("unsupported op `{other}` in a mod function")),
        };
        let value = match k {
            Some(k) => Sym::E(node(k)),
            None => args
                .first()
                .cloned()
                .ok_or_else(|| format!("`{name}` without operand"))?,
        };
        if let Ok(r) = o.result(0) {
            env.insert(key(r.into()), value);
        }
        op = o.next_in_block();
    }
    Err("the function does not return".into())
}
