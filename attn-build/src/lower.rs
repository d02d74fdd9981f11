//! Lowering `transformer` -> `linalg` on tensors, as rewrite patterns driven by MLIR's greedy
//! pattern driver inside an external pass (`convert-transformer-to-linalg`).
//!
//! - `matmul` -> `tensor.empty` + `linalg.fill` (zero) + `linalg.matmul` / `linalg.batch_matmul`;
//! - `transpose` -> `linalg.transpose` of the last two dims;
//! - `softmax` -> max reduction, `exp(x - max)`, sum reduction, division (all `linalg.generic`);
//! - `add` / `mul` / `scale` -> elementwise `linalg.generic` (rank-0 right operands broadcast);
//! - `attention` (f32, f64, bf16, f16; rank 2 to 4; GQA heads, masks, causal) -> a call to the
//!   fused flash-attention kernel of `flash.rs`, a private function the pass inserts into the
//!   module (the pipeline inlines it right after this pass); in `attn.codegen = "loops"` modules
//!   (the baseline), f32/f64 attention without options -> the composition: transpose, matmul,
//!   scale, softmax, matmul.
//! - bf16/f16 tensors are accepted by `attention` only (storage types, computed in f32).
//!
//! A pattern that meets an op it cannot lower (ill-shaped, unsupported element type) emits an
//! error diagnostic at the op; the pass then fails instead of leaving `transformer` ops behind.

use crate::flash::{Dtype, Spec, Tiling};
use melior::{
    Context, GreedyRewriteDriverConfig, RewritePatternSet, RewriterBase,
    apply_patterns_and_fold_greedily_with_op, create_op_rewrite_pattern,
    dialect::DialectHandle,
    ir::{
        Attribute, Block, BlockLike, Identifier, Location, Operation, OperationRef, Region,
        RegionLike, Type, Value, ValueLike,
        attribute::FloatAttribute,
        operation::{OperationBuilder, OperationLike, WalkOrder, WalkResult},
        r#type::TypeId,
    },
    pass::{
        Pass,
        external::{ExternalPass, create_external},
    },
};
use std::ffi::CString;

/// The parsed form of a ranked tensor type (`tensor<?x4xf32>`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct TensorTy {
    dims: Vec<Option<usize>>,
    elem: String,
}

impl TensorTy {
    fn of(value: Value) -> Option<Self> {
        Self::parse(&value.r#type().to_string())
    }

    fn parse(s: &str) -> Option<Self> {
        let inner = s.strip_prefix("tensor<")?.strip_suffix('>')?;
        let mut parts: Vec<&str> = inner.split('x').collect();
        let elem = parts.pop()?.to_string();
        if !matches!(elem.as_str(), "f32" | "f64" | "bf16" | "f16") {
            return None;
        }
        let dims = parts
            .iter()
            .map(|p| {
                if *p == "?" {
                    Some(None)
                } else {
                    p.parse().ok().map(Some)
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(TensorTy { dims, elem })
    }

    fn rank(&self) -> usize {
        self.dims.len()
    }

    fn text(&self) -> String {
        let mut s = String::from("tensor<");
        for d in &self.dims {
            match d {
                Some(n) => s.push_str(&format!("{n}x")),
                None => s.push_str("?x"),
            }
        }
        s.push_str(&self.elem);
        s.push('>');
        s
    }

    fn show(&self) -> String {
        self.text()
    }
}

/// Where a result dimension's size comes from at run time: dim `index` of tensor `of`.
#[derive(Clone, Copy)]
struct DimSource<'c, 'a> {
    of: Value<'c, 'a>,
    index: usize,
}

/// Builds IR at the rewriter's insertion point.
struct Builder<'c, 'a> {
    ctx: &'c Context,
    loc: Location<'c>,
    rw: RewriterBase<'c, 'a>,
    tiling: Tiling,
    /// False for `attn.codegen = "loops"` modules: linalg only, no generated kernels.
    fused: bool,
}

type LowerResult<'c, 'a> = Result<Value<'c, 'a>, String>;

impl<'c, 'a> Builder<'c, 'a> {
    fn ty(&self, s: &str) -> Result<Type<'c>, String> {
        Type::parse(self.ctx, s).ok_or_else(|| format!("internal: cannot parse type `{s}`"))
    }

    fn attr(&self, s: &str) -> Result<Attribute<'c>, String> {
        Attribute::parse(self.ctx, s)
            .ok_or_else(|| format!("internal: cannot parse attribute `{s}`"))
    }

    fn ident(&self, s: &str) -> Identifier<'c> {
        Identifier::new(self.ctx, s)
    }

    /// Inserts `op` and returns its first result.
    fn insert(&self, op: Result<Operation<'c>, melior::Error>) -> LowerResult<'c, 'a> {
        let op = op.map_err(|e| format!("internal: building an op failed: {e}"))?;
        let op = self.rw.insert(op);
        let v: Value = op.result(0).map_err(|e| e.to_string())?.into();
        Ok(detach(v))
    }

    fn index(&self, i: usize) -> LowerResult<'c, 'a> {
        self.insert(
            OperationBuilder::new("arith.constant", self.loc)
                .add_attributes(&[(self.ident("value"), self.attr(&format!("{i} : index"))?)])
                .add_results(&[Type::index(self.ctx)])
                .build(),
        )
    }

    fn float(&self, x: f64, elem: &str) -> LowerResult<'c, 'a> {
        let t = self.ty(elem)?;
        self.insert(
            OperationBuilder::new("arith.constant", self.loc)
                .add_attributes(&[(
                    self.ident("value"),
                    FloatAttribute::new(self.ctx, t, x).into(),
                )])
                .add_results(&[t])
                .build(),
        )
    }

    fn neg_infinity(&self, elem: &str) -> LowerResult<'c, 'a> {
        let bits = if elem == "f32" {
            "0xFF800000"
        } else {
            "0xFFF0000000000000"
        };
        self.insert(
            OperationBuilder::new("arith.constant", self.loc)
                .add_attributes(&[(self.ident("value"), self.attr(&format!("{bits} : {elem}"))?)])
                .add_results(&[self.ty(elem)?])
                .build(),
        )
    }

    /// `tensor.empty` of type `ty`, taking each dynamic size from `sources`.
    fn empty(&self, ty: &TensorTy, sources: &[DimSource<'c, 'a>]) -> LowerResult<'c, 'a> {
        let mut sizes = Vec::new();
        for (d, src) in ty.dims.iter().zip(sources) {
            if d.is_none() {
                let idx = self.index(src.index)?;
                sizes.push(
                    self.insert(
                        OperationBuilder::new("tensor.dim", self.loc)
                            .add_operands(&[src.of, idx])
                            .add_results(&[Type::index(self.ctx)])
                            .build(),
                    )?,
                );
            }
        }
        self.insert(
            OperationBuilder::new("tensor.empty", self.loc)
                .add_operands(&sizes)
                .add_results(&[self.ty(&ty.text())?])
                .build(),
        )
    }

    /// A region with one block whose arguments are scalars of `elem`, filled by `body`, which
    /// returns the values to yield.
    fn region(
        &self,
        elem: &str,
        args: usize,
        body: impl FnOnce(&Block<'c>, &[Value<'c, '_>]) -> Result<Vec<Value<'c, 'a>>, String>,
    ) -> Result<Region<'c>, String> {
        let t = self.ty(elem)?;
        let block = Block::new(&vec![(t, self.loc); args]);
        let vals: Vec<Value> = (0..args)
            .map(|i| detach(block.argument(i).expect("block argument exists").into()))
            .collect();
        let yields = body(&block, &vals)?;
        block.append_operation(
            OperationBuilder::new("linalg.yield", self.loc)
                .add_operands(&yields)
                .build()
                .map_err(|e| e.to_string())?,
        );
        let region = Region::new();
        region.append_block(block);
        Ok(region)
    }

    /// A scalar `arith` op appended to `block`.
    fn scalar(
        &self,
        block: &Block<'c>,
        name: &str,
        operands: &[Value<'c, '_>],
    ) -> LowerResult<'c, 'a> {
        let t = operands[0].r#type();
        let op = block.append_operation(
            OperationBuilder::new(name, self.loc)
                .add_operands(operands)
                .add_results(&[t])
                .build()
                .map_err(|e| e.to_string())?,
        );
        Ok(detach(op.result(0).map_err(|e| e.to_string())?.into()))
    }

    /// `linalg.fill` of `out` with the scalar `value`.
    fn fill(&self, value: Value<'c, 'a>, out: Value<'c, 'a>, elem: &str) -> LowerResult<'c, 'a> {
        let region = self.region(elem, 2, |_, a| Ok(vec![detach(a[0])]))?;
        self.insert(
            OperationBuilder::new("linalg.fill", self.loc)
                .add_operands(&[value, out])
                .add_attributes(&[(
                    self.ident("operandSegmentSizes"),
                    self.attr("array<i32: 1, 1>")?,
                )])
                .add_results(&[out.r#type()])
                .add_regions([region])
                .build(),
        )
    }

    /// A `linalg.generic` with the given maps and iterator types.
    fn generic(
        &self,
        ins: &[Value<'c, 'a>],
        out: Value<'c, 'a>,
        maps: &[String],
        iterators: &[&str],
        elem: &str,
        body: impl FnOnce(&Block<'c>, &[Value<'c, '_>]) -> Result<Vec<Value<'c, 'a>>, String>,
    ) -> LowerResult<'c, 'a> {
        let region = self.region(elem, ins.len() + 1, body)?;
        let maps = format!("[{}]", maps.join(", "));
        let iters = iterators
            .iter()
            .map(|i| format!("#linalg.iterator_type<{i}>"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut operands = ins.to_vec();
        operands.push(out);
        self.insert(
            OperationBuilder::new("linalg.generic", self.loc)
                .add_operands(&operands)
                .add_attributes(&[
                    (self.ident("indexing_maps"), self.attr(&maps)?),
                    (
                        self.ident("iterator_types"),
                        self.attr(&format!("[{iters}]"))?,
                    ),
                    (
                        self.ident("operandSegmentSizes"),
                        self.attr(&format!("array<i32: {}, 1>", ins.len()))?,
                    ),
                ])
                .add_results(&[out.r#type()])
                .add_regions([region])
                .build(),
        )
    }

    /// `C = A B` for 2-D or batched operands of any batch rank.
    fn matmul(&self, a: Value<'c, 'a>, b: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let (ta, tb) = (tensor_ty(a)?, tensor_ty(b)?);
        let r = ta.rank();
        if r < 2 || tb.rank() != r {
            return Err(format!(
                "matmul operands must both be 2-D or both batched with the same rank, got {} and {}",
                ta.show(),
                tb.show()
            ));
        }
        if let (Some(x), Some(y)) = (ta.dims[r - 1], tb.dims[r - 2])
            && x != y
        {
            return Err(format!(
                "matmul inner dimensions differ ({x} and {y}): {} and {}",
                ta.show(),
                tb.show()
            ));
        }
        let mut dims: Vec<Option<usize>> = ta.dims[..r - 2].to_vec();
        let mut sources: Vec<DimSource> =
            (0..r - 2).map(|i| DimSource { of: a, index: i }).collect();
        dims.push(ta.dims[r - 2]);
        sources.push(DimSource {
            of: a,
            index: r - 2,
        });
        dims.push(tb.dims[r - 1]);
        sources.push(DimSource {
            of: b,
            index: r - 1,
        });
        let out_ty = TensorTy {
            dims,
            elem: ta.elem.clone(),
        };
        let empty = self.empty(&out_ty, &sources)?;
        if ta.elem == "f32" && self.fused {
            // The register-tiled kernel of `primitives.rs`.
            let symbol = crate::primitives::matmul_symbol(r, &self.tiling);
            return self.primitive_call(&symbol, &[a, b], empty, &out_ty);
        }
        let zero = self.float(0.0, &ta.elem)?;
        let init = self.fill(zero, empty, &ta.elem)?;
        let elem = ta.elem.clone();
        let body =
            |block: &Block<'c>, args: &[Value<'c, '_>]| -> Result<Vec<Value<'c, 'a>>, String> {
                let m = self.scalar(block, "arith.mulf", &[args[0], args[1]])?;
                let s = self.scalar(block, "arith.addf", &[args[2], m])?;
                Ok(vec![s])
            };
        if r <= 3 {
            let name = if r == 2 {
                "linalg.matmul"
            } else {
                "linalg.batch_matmul"
            };
            let region = self.region(&elem, 3, body)?;
            self.insert(
                OperationBuilder::new(name, self.loc)
                    .add_operands(&[a, b, init])
                    .add_attributes(&[(
                        self.ident("operandSegmentSizes"),
                        self.attr("array<i32: 2, 1>")?,
                    )])
                    .add_results(&[init.r#type()])
                    .add_regions([region])
                    .build(),
            )
        } else {
            // Batch dims b0..b(r-3), then i, j, and the reduction dim k.
            let n = r + 1;
            let dims = (0..n).map(|i| format!("d{i}")).collect::<Vec<_>>();
            let batch = dims[..r - 2].join(", ");
            let (i, j, k) = (&dims[r - 2], &dims[r - 1], &dims[r]);
            let all = dims.join(", ");
            let maps = vec![
                format!("affine_map<({all}) -> ({batch}, {i}, {k})>"),
                format!("affine_map<({all}) -> ({batch}, {k}, {j})>"),
                format!("affine_map<({all}) -> ({batch}, {i}, {j})>"),
            ];
            let mut iters = vec!["parallel"; r];
            iters.push("reduction");
            self.generic(&[a, b], init, &maps, &iters, &elem, body)
        }
    }

    /// Swaps the last two dims with `linalg.transpose`.
    fn transpose(&self, a: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let ta = tensor_ty(a)?;
        let r = ta.rank();
        if r < 2 {
            return Err(format!("transpose needs rank >= 2, got {}", ta.show()));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 1, r - 2);
        let dims: Vec<Option<usize>> = perm.iter().map(|&p| ta.dims[p]).collect();
        let sources: Vec<DimSource> = perm
            .iter()
            .map(|&p| DimSource { of: a, index: p })
            .collect();
        let out_ty = TensorTy {
            dims,
            elem: ta.elem.clone(),
        };
        let empty = self.empty(&out_ty, &sources)?;
        let region = self.region(&ta.elem, 2, |_, args| Ok(vec![detach(args[0])]))?;
        let perm_text = perm
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        self.insert(
            OperationBuilder::new("linalg.transpose", self.loc)
                .add_operands(&[a, empty])
                .add_attributes(&[(
                    self.ident("permutation"),
                    self.attr(&format!("array<i64: {perm_text}>"))?,
                )])
                .add_results(&[empty.r#type()])
                .add_regions([region])
                .build(),
        )
    }

    fn identity_map(rank: usize) -> String {
        let d = (0..rank)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("affine_map<({d}) -> ({d})>")
    }

    fn empty_like(&self, a: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let ta = tensor_ty(a)?;
        let sources: Vec<DimSource> = (0..ta.rank())
            .map(|i| DimSource { of: a, index: i })
            .collect();
        self.empty(&ta, &sources)
    }

    /// Elementwise `a (op) b`, where `b` has `a`'s shape or is rank 0.
    fn elementwise(&self, name: &str, a: Value<'c, 'a>, b: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let (ta, tb) = (tensor_ty(a)?, tensor_ty(b)?);
        let r = ta.rank();
        let compatible = tb.rank() == 0
            || (tb.rank() == r
                && ta
                    .dims
                    .iter()
                    .zip(&tb.dims)
                    .all(|(x, y)| x.is_none() || y.is_none() || x == y));
        if !compatible || ta.elem != tb.elem {
            return Err(format!(
                "elementwise operands must have the same shape (or a rank-0 right operand), got {} and {}",
                ta.show(),
                tb.show()
            ));
        }
        let id = Self::identity_map(r);
        let all = (0..r)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let bmap = if tb.rank() == 0 {
            format!("affine_map<({all}) -> ()>")
        } else {
            id.clone()
        };
        let out = self.empty_like(a)?;
        self.generic(
            &[a, b],
            out,
            &[id.clone(), bmap, id],
            &vec!["parallel"; r],
            &ta.elem,
            |block, args| Ok(vec![self.scalar(block, name, &[args[0], args[1]])?]),
        )
    }

    /// Multiplies every element of `a` by the scalar SSA value `factor`.
    fn scale_by(&self, a: Value<'c, 'a>, factor: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let ta = tensor_ty(a)?;
        let id = Self::identity_map(ta.rank());
        let out = self.empty_like(a)?;
        self.generic(
            &[a],
            out,
            &[id.clone(), id],
            &vec!["parallel"; ta.rank()],
            &ta.elem,
            |block, args| {
                Ok(vec![self.scalar(
                    block,
                    "arith.mulf",
                    &[args[0], factor],
                )?])
            },
        )
    }

    /// Numerically stable softmax over the last dim.
    fn softmax(&self, x: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let tx = tensor_ty(x)?;
        let r = tx.rank();
        if r < 1 {
            return Err(format!("softmax needs rank >= 1, got {}", tx.show()));
        }
        if tx.elem == "f32" && self.fused {
            // The vectorized kernel of `primitives.rs`.
            let init = self.empty_like(x)?;
            let symbol = crate::primitives::softmax_symbol(r, &self.tiling);
            return self.primitive_call(&symbol, &[x], init, &tx);
        }
        let elem = tx.elem.clone();
        let all = (0..r)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = (0..r - 1)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let id = format!("affine_map<({all}) -> ({all})>");
        let row = format!("affine_map<({all}) -> ({rows})>");
        let mut reduce_iters = vec!["parallel"; r - 1];
        reduce_iters.push("reduction");
        let parallel = vec!["parallel"; r];
        let row_ty = TensorTy {
            dims: tx.dims[..r - 1].to_vec(),
            elem: elem.clone(),
        };
        let row_sources: Vec<DimSource> =
            (0..r - 1).map(|i| DimSource { of: x, index: i }).collect();

        // max over the row
        let e1 = self.empty(&row_ty, &row_sources)?;
        let ninf = self.neg_infinity(&elem)?;
        let m0 = self.fill(ninf, e1, &elem)?;
        let max = self.generic(
            &[x],
            m0,
            &[id.clone(), row.clone()],
            &reduce_iters,
            &elem,
            |b, a| Ok(vec![self.scalar(b, "arith.maximumf", &[a[0], a[1]])?]),
        )?;
        // exp(x - max)
        let e2 = self.empty_like(x)?;
        let ex = self.generic(
            &[x, max],
            e2,
            &[id.clone(), row.clone(), id.clone()],
            &parallel,
            &elem,
            |b, a| {
                let d = self.scalar(b, "arith.subf", &[a[0], a[1]])?;
                Ok(vec![self.scalar(b, "math.exp", &[d])?])
            },
        )?;
        // sum over the row
        let e3 = self.empty(&row_ty, &row_sources)?;
        let zero = self.float(0.0, &elem)?;
        let s0 = self.fill(zero, e3, &elem)?;
        let sum = self.generic(
            &[ex],
            s0,
            &[id.clone(), row.clone()],
            &reduce_iters,
            &elem,
            |b, a| Ok(vec![self.scalar(b, "arith.addf", &[a[0], a[1]])?]),
        )?;
        // divide
        let e4 = self.empty_like(x)?;
        self.generic(
            &[ex, sum],
            e4,
            &[id.clone(), row, id],
            &parallel,
            &elem,
            |b, a| Ok(vec![self.scalar(b, "arith.divf", &[a[0], a[1]])?]),
        )
    }

    /// `tensor.extract` of a rank-0 tensor.
    fn extract_scalar(&self, t: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let tt = tensor_ty(t)?;
        if tt.rank() != 0 {
            return Err(format!("expected a rank-0 tensor, got {}", tt.show()));
        }
        self.insert(
            OperationBuilder::new("tensor.extract", self.loc)
                .add_operands(&[t])
                .add_results(&[self.ty(&tt.elem)?])
                .build(),
        )
    }

    /// `softmax(q k^T * scale + mask) v` (causal by `positions` or `causal`): the fused
    /// kernel, or, in the baseline's `loops` modules, the composition of the primitives'
    /// lowerings.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: Value<'c, 'a>,
        k: Value<'c, 'a>,
        v: Value<'c, 'a>,
        scale: Value<'c, 'a>,
        mask: Option<Value<'c, 'a>>,
        positions: Option<Value<'c, 'a>>,
        causal: bool,
    ) -> LowerResult<'c, 'a> {
        let (tq, tk, tv) = (tensor_ty(q)?, tensor_ty(k)?, tensor_ty(v)?);
        let r = tq.rank();
        if !(2..=4).contains(&r) || tk.rank() != r || tv.rank() != r {
            return Err(format!(
                "attention operands must have equal rank, 2 to 4, got {}, {} and {}",
                tq.show(),
                tk.show(),
                tv.show()
            ));
        }
        if tk.elem != tq.elem || tv.elem != tq.elem {
            return Err(format!(
                "q, k and v must have the same element type, got {}, {} and {}",
                tq.show(),
                tk.show(),
                tv.show()
            ));
        }
        let mask_rank = match mask {
            Some(m) => {
                let tm = tensor_ty(m)?;
                if tm.elem != "f32" || (tm.rank() != 2 && tm.rank() != r) {
                    return Err(format!(
                        "the mask must be an f32 tensor of rank 2 or {r}, got {}",
                        tm.show()
                    ));
                }
                Some(tm.rank())
            }
            None => None,
        };
        if positions.is_some() && (r != 2 || causal) {
            return Err(format!(
                "explicit causal positions need rank-2 operands and no `causal`, got {}",
                tq.show()
            ));
        }
        let spec = Spec {
            rank: r,
            dtype: Dtype::of(&tq.elem).ok_or_else(|| format!("unsupported {}", tq.show()))?,
            mask_rank,
            positions: positions.is_some(),
            causal,
        };
        if self.fused {
            return self.flash_attention(q, k, v, scale, &spec, &tq, &tv, mask, positions);
        }
        if mask.is_some()
            || positions.is_some()
            || causal
            || !matches!(tq.elem.as_str(), "f32" | "f64")
        {
            return Err(format!(
                "the loop pipeline (the baseline) composes plain f32/f64 attention only, got {} with options",
                tq.show()
            ));
        }
        let kt = self.transpose(k)?;
        let scores = self.matmul(q, kt)?;
        let s = self.extract_scalar(scale)?;
        let scaled = self.scale_by(scores, s)?;
        let p = self.softmax(scaled)?;
        self.matmul(p, v)
    }
}

impl<'c, 'a> Builder<'c, 'a> {
    /// `tensor.cast` of `a` to `ty` (nothing when it already has that type).
    fn cast(&self, a: Value<'c, 'a>, ty: &str) -> LowerResult<'c, 'a> {
        if a.r#type().to_string() == ty {
            return Ok(a);
        }
        self.insert(
            OperationBuilder::new("tensor.cast", self.loc)
                .add_operands(&[a])
                .add_results(&[self.ty(ty)?])
                .build(),
        )
    }

    /// Attention as a call to the fused function of `spec` (`flash.rs`, inserted into the
    /// module by the pass, inlined later): dynamic-shape operands, the scale as a scalar, and
    /// a `tensor.empty` destination.
    #[allow(clippy::too_many_arguments)]
    fn flash_attention(
        &self,
        q: Value<'c, 'a>,
        k: Value<'c, 'a>,
        v: Value<'c, 'a>,
        scale: Value<'c, 'a>,
        spec: &Spec,
        tq: &TensorTy,
        tv: &TensorTy,
        mask: Option<Value<'c, 'a>>,
        positions: Option<Value<'c, 'a>>,
    ) -> LowerResult<'c, 'a> {
        let r = tq.rank();
        let dynamic = |rank: usize, elem: &str| TensorTy {
            dims: vec![None; rank],
            elem: elem.to_string(),
        };
        let dyn_text = dynamic(r, &tq.elem).text();
        let s = self.extract_scalar(scale)?;
        let mut sources: Vec<DimSource> =
            (0..r - 1).map(|i| DimSource { of: q, index: i }).collect();
        sources.push(DimSource {
            of: v,
            index: r - 1,
        });
        let init = self.empty(&dynamic(r, &tq.elem), &sources)?;
        let mut operands = vec![
            self.cast(q, &dyn_text)?,
            self.cast(k, &dyn_text)?,
            self.cast(v, &dyn_text)?,
            s,
        ];
        if let (Some(m), Some(mr)) = (mask, spec.mask_rank) {
            operands.push(self.cast(m, &dynamic(mr, "f32").text())?);
        }
        if let Some(p) = positions {
            operands.push(self.cast(p, "tensor<?xf32>")?);
        }
        operands.push(init);
        let symbol = spec.symbol(&self.tiling);
        let call = self.insert(
            OperationBuilder::new("func.call", self.loc)
                .add_operands(&operands)
                .add_attributes(&[(self.ident("callee"), self.attr(&format!("@{symbol}"))?)])
                .add_results(&[self.ty(&dyn_text)?])
                .build(),
        )?;
        let mut out_ty = tq.clone();
        out_ty.dims[r - 1] = tv.dims[r - 1];
        self.cast(call, &out_ty.text())
    }
}

impl<'c, 'a> Builder<'c, 'a> {
    /// A call to the private kernel `symbol` of `primitives.rs` (inserted into the module by the
    /// pass, inlined later) on dynamic-shape casts of `operands` and of the destination `init`;
    /// the result is cast back to `out_ty`.
    fn primitive_call(
        &self,
        symbol: &str,
        operands: &[Value<'c, 'a>],
        init: Value<'c, 'a>,
        out_ty: &TensorTy,
    ) -> LowerResult<'c, 'a> {
        let dynamic = TensorTy {
            dims: vec![None; out_ty.rank()],
            elem: out_ty.elem.clone(),
        };
        let dyn_text = dynamic.text();
        let mut args = Vec::new();
        for &x in operands.iter().chain([&init]) {
            args.push(self.cast(x, &dyn_text)?);
        }
        let call = self.insert(
            OperationBuilder::new("func.call", self.loc)
                .add_operands(&args)
                .add_attributes(&[(self.ident("callee"), self.attr(&format!("@{symbol}"))?)])
                .add_results(&[self.ty(&dyn_text)?])
                .build(),
        )?;
        self.cast(call, &out_ty.text())
    }
}

/// Inserts into `module` the private fused-attention functions that its f32
/// `transformer.attention` ops of rank 2 to 4 will call (see `flash.rs`).
fn insert_flash_kernels(
    ctx: &Context,
    module: &OperationRef,
    tiling: &Tiling,
) -> Result<(), String> {
    let mut specs = Vec::new();
    let mut existing = Vec::new();
    module.walk(WalkOrder::PreOrder, |op| {
        let name = op
            .name()
            .as_string_ref()
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name == "transformer.attention"
            && let Some(spec) = attention_spec(&op)
            && (2..=4).contains(&spec.rank)
            && !specs.contains(&spec)
        {
            specs.push(spec);
        }
        if name == "func.func"
            && let Ok(a) = op.attribute("sym_name")
        {
            existing.push(a.to_string());
        }
        WalkResult::Advance
    });
    if specs.is_empty() {
        return Ok(());
    }
    let text = crate::flash::module_text(&specs, tiling);
    append_functions(ctx, module, &text, &existing, "the fused attention kernel")
}

/// Parses `text` (a module of private kernel functions generated as MLIR text) and appends to
/// `module` every function whose symbol is not in `existing`.
pub(crate) fn append_functions(
    ctx: &Context,
    module: &OperationRef,
    text: &str,
    existing: &[String],
    what: &str,
) -> Result<(), String> {
    let kernels = melior::ir::Module::parse(ctx, text)
        .ok_or_else(|| format!("internal: {what} does not parse"))?;
    let body = module
        .region(0)
        .ok()
        .and_then(|r| r.first_block())
        .ok_or("internal: the module has no body")?;
    let mut next = kernels.body().first_operation();
    while let Some(op) = next {
        let taken = op
            .attribute("sym_name")
            .map(|a| existing.contains(&a.to_string()))
            .unwrap_or(false);
        if !taken {
            body.append_operation((*op).clone());
        }
        next = op.next_in_block();
    }
    Ok(())
}

/// The optional operands of a `transformer.attention` op: the mask has the rank of q (>= 2),
/// the positions rank 1.
fn attention_optional<'c, 'a>(
    op: &OperationRef<'c, 'a>,
) -> (Option<Value<'c, 'a>>, Option<Value<'c, 'a>>) {
    let (mut mask, mut positions) = (None, None);
    for i in 4..op.operand_count() {
        if let Ok(x) = op.operand(i) {
            match TensorTy::of(x).map(|t| t.rank()) {
                Some(1) => positions = Some(detach(x)),
                _ => mask = Some(detach(x)),
            }
        }
    }
    (mask, positions)
}

/// The fused function a `transformer.attention` op calls, if its types have one.
fn attention_spec(op: &OperationRef) -> Option<Spec> {
    let tq = TensorTy::of(op.operand(0).ok()?)?;
    let (mask, positions) = attention_optional(op);
    Some(Spec {
        rank: tq.rank(),
        dtype: Dtype::of(&tq.elem)?,
        mask_rank: mask.and_then(TensorTy::of).map(|t| t.rank()),
        positions: positions.is_some(),
        causal: attention_causal(op),
    })
}

/// The `causal` attribute of a `transformer.attention` op.
fn attention_causal(op: &OperationRef) -> bool {
    op.attribute("causal")
        .is_ok_and(|a| a.to_string() == "true")
}

fn tensor_ty(v: Value) -> Result<TensorTy, String> {
    TensorTy::of(v).ok_or_else(|| {
        format!(
            "expected a ranked f32/f64/bf16/f16 tensor, got {}",
            v.r#type()
        )
    })
}

/// Erases the borrow lifetime of a value handle. MLIR values are owned by the IR, not by the Rust
/// handle; the handles used here never outlive the pattern invocation that created them.
fn detach<'c, 'a, 'b>(v: Value<'c, 'b>) -> Value<'c, 'a> {
    // SAFETY: the raw handle stays valid as long as the defining op is in the IR, which holds for
    // the whole pattern invocation; the lifetime only tracked a Rust borrow of the builder.
    unsafe { Value::from_raw(v.to_raw()) }
}

fn emit_error(op: &OperationRef, message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: the location belongs to a live op; MLIR copies the message.
    unsafe { mlir_sys::mlirEmitError(op.location().to_raw(), text.as_ptr()) }
}

/// Lowers one matched op; returns the replacement value.
fn lower_op<'c, 'a>(op: OperationRef<'c, 'a>, b: &Builder<'c, 'a>) -> LowerResult<'c, 'a> {
    let name = op
        .name()
        .as_string_ref()
        .as_str()
        .unwrap_or_default()
        .to_string();
    let operand = |i: usize| -> Result<Value<'c, 'a>, String> {
        op.operand(i)
            .map(detach)
            .map_err(|_| format!("{name}: missing operand #{i}"))
    };
    if name != "transformer.attention" {
        for i in 0..op.operand_count() {
            if let Some(t) = TensorTy::of(operand(i)?)
                && matches!(t.elem.as_str(), "bf16" | "f16")
            {
                return Err(format!(
                    "{} tensors are supported by `attention` only (the other primitives compute in f32 or f64), got {}",
                    t.elem,
                    t.show()
                ));
            }
        }
    }
    match name.as_str() {
        "transformer.matmul" => b.matmul(operand(0)?, operand(1)?),
        "transformer.transpose" => b.transpose(operand(0)?),
        "transformer.softmax" => b.softmax(operand(0)?),
        "transformer.add" => b.elementwise("arith.addf", operand(0)?, operand(1)?),
        "transformer.mul" => b.elementwise("arith.mulf", operand(0)?, operand(1)?),
        "transformer.scale" => {
            let x = operand(0)?;
            let tx = tensor_ty(x)?;
            let factor = op
                .attribute("factor")
                .ok()
                .and_then(|a| FloatAttribute::try_from(a).ok())
                .ok_or("transformer.scale needs a float `factor` attribute")?;
            let c = b.float(factor.value(), &tx.elem)?;
            b.scale_by(x, c)
        }
        "transformer.attention" => {
            let (mask, positions) = attention_optional(&op);
            b.attention(
                operand(0)?,
                operand(1)?,
                operand(2)?,
                operand(3)?,
                mask,
                positions,
                attention_causal(&op),
            )
        }
        other => Err(format!("no lowering for `{other}`")),
    }
}

fn add_pattern(
    set: &RewritePatternSet,
    context: &Context,
    op_name: &'static str,
    tiling: Tiling,
    fused: bool,
) {
    let pattern = create_op_rewrite_pattern(
        op_name,
        1,
        context,
        move |_pattern, raw_op, raw_rewriter| {
            // SAFETY: the driver passes a live op and rewriter, valid for this call only, and
            // nothing created here escapes the call.
            let op: OperationRef = unsafe { OperationRef::from_raw(raw_op) };
            // `to_ref` borrows the `ContextRef` it is called on: keep that one alive.
            let ctx_ref = op.context();
            let ctx = unsafe { ctx_ref.to_ref() };
            // SAFETY: see above; the base of a live pattern rewriter is live as long as it is.
            let base: RewriterBase = unsafe {
                RewriterBase::from_raw(mlir_sys::mlirPatternRewriterAsBase(raw_rewriter))
            };
            base.set_insertion_point_before(op);
            let builder = Builder {
                ctx,
                loc: op.location(),
                rw: base,
                tiling,
                fused,
            };
            match lower_op(op, &builder) {
                Ok(value) => {
                    base.replace_op_with_values(op, &[value]);
                    true
                }
                Err(message) => {
                    emit_error(&op, &format!("cannot lower `{op_name}`: {message}"));
                    false
                }
            }
        },
        &[],
    );
    set.add(pattern);
}

#[repr(align(8))]
struct PassId;
static CONVERT_TRANSFORMER_TO_LINALG: PassId = PassId;

/// The `convert-transformer-to-linalg` pass (runs on `builtin.module`); fused attention kernels
/// use `tiling`.
pub fn convert_transformer_to_linalg(tiling: Tiling) -> Pass {
    create_external(
        move |module: OperationRef, pass: ExternalPass| {
            // SAFETY: the context outlives the pass run; `to_ref` borrows the `ContextRef` it is
            // called on (a temporary would leave `ctx` dangling), so keep that one alive.
            let ctx_ref = module.context();
            let ctx = unsafe { ctx_ref.to_ref() };
            // `module attributes {attn.codegen = "loops"}`: the tutorial's route, the baseline.
            let fused = !module
                .attribute("attn.codegen")
                .is_ok_and(|a| a.to_string() == "\"loops\"");
            let inserted = if fused {
                insert_flash_kernels(ctx, &module, &tiling)
                    .and_then(|()| crate::primitives::insert_kernels(ctx, &module, &tiling))
            } else {
                Ok(())
            };
            if let Err(message) = inserted {
                emit_error(&module, &message);
                pass.signal_failure();
                return;
            }
            let set = RewritePatternSet::new(ctx);
            for op in crate::dialect::OPS {
                let name: &'static str = match op {
                    "matmul" => "transformer.matmul",
                    "transpose" => "transformer.transpose",
                    "softmax" => "transformer.softmax",
                    "add" => "transformer.add",
                    "mul" => "transformer.mul",
                    "scale" => "transformer.scale",
                    _ => "transformer.attention",
                };
                add_pattern(&set, ctx, name, tiling, fused);
            }
            let config = GreedyRewriteDriverConfig::new();
            let applied = apply_patterns_and_fold_greedily_with_op(module, set.freeze(), &config);
            let mut leftover = None;
            module.walk(WalkOrder::PreOrder, |op| {
                let name = op
                    .name()
                    .as_string_ref()
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if name.starts_with("transformer.") {
                    leftover = Some(name);
                    WalkResult::Interrupt
                } else {
                    WalkResult::Advance
                }
            });
            if applied.is_err() || leftover.is_some() {
                if let Some(name) = leftover {
                    emit_error(&module, &format!("`{name}` was not lowered to linalg"));
                }
                pass.signal_failure();
            }
        },
        TypeId::create(&CONVERT_TRANSFORMER_TO_LINALG),
        "ConvertTransformerToLinalg",
        "convert-transformer-to-linalg",
        "Lower transformer-dialect ops to linalg on tensors",
        "builtin.module",
        &[DialectHandle::func()],
    )
}

#[cfg(test)]
mod tests {
    use super::TensorTy;

    #[test]
    fn parses_tensor_types() {
        let t = TensorTy::parse("tensor<?x4xf32>").unwrap();
        assert_eq!(t.dims, vec![None, Some(4)]);
        assert_eq!(t.text(), "tensor<?x4xf32>");
        assert_eq!(TensorTy::parse("tensor<f32>").unwrap().rank(), 0);
        assert!(TensorTy::parse("tensor<4xi32>").is_none());
        assert!(TensorTy::parse("memref<4xf32>").is_none());
    }
}
