//! Building linalg/tensor/arith IR at the rewriter's insertion point: the typed helpers the
//! lowering patterns share (constants, `tensor.empty`, `linalg.fill`, `linalg.generic`, casts,
//! calls of generated kernels).

use super::types::{TensorTy, tensor_ty};
use crate::ffi::mlir::detach;
use crate::flash::Tiling;
use melior::{
    Context, RewriterBase,
    ir::{
        Attribute, Block, BlockLike, Identifier, Location, Operation, Region, RegionLike, Type,
        Value, ValueLike, attribute::FloatAttribute, operation::OperationBuilder,
    },
};

/// Where a result dimension's size comes from at run time: dim `index` of tensor `of`.
#[derive(Clone, Copy)]
pub(super) struct DimSource<'c, 'a> {
    pub(super) of: Value<'c, 'a>,
    pub(super) index: usize,
}

/// Builds IR at the rewriter's insertion point.
pub(super) struct Builder<'c, 'a> {
    pub(super) ctx: &'c Context,
    pub(super) loc: Location<'c>,
    pub(super) rw: RewriterBase<'c, 'a>,
    pub(super) tiling: Tiling,
    /// False for `attn.codegen = "loops"` modules: linalg only, no generated kernels.
    pub(super) fused: bool,
    /// The user mods of the module's attention ops.
    pub(super) mods: std::rc::Rc<super::mods::ModTable>,
}

pub(super) type LowerResult<'c, 'a> = Result<Value<'c, 'a>, String>;

impl<'c, 'a> Builder<'c, 'a> {
    pub(super) fn ty(&self, s: &str) -> Result<Type<'c>, String> {
        Type::parse(self.ctx, s).ok_or_else(|| format!("internal: cannot parse type `{s}`"))
    }

    pub(super) fn attr(&self, s: &str) -> Result<Attribute<'c>, String> {
        Attribute::parse(self.ctx, s)
            .ok_or_else(|| format!("internal: cannot parse attribute `{s}`"))
    }

    pub(super) fn ident(&self, s: &str) -> Identifier<'c> {
        Identifier::new(self.ctx, s)
    }

    /// Inserts `op` and returns its first result.
    pub(super) fn insert(&self, op: Result<Operation<'c>, melior::Error>) -> LowerResult<'c, 'a> {
        let op = op.map_err(|e| format!("internal: building an op failed: {e}"))?;
        let op = self.rw.insert(op);
        let v: Value = op.result(0).map_err(|e| e.to_string())?.into();
        Ok(detach(v))
    }

    pub(super) fn index(&self, i: usize) -> LowerResult<'c, 'a> {
        self.insert(
            OperationBuilder::new("arith.constant", self.loc)
                .add_attributes(&[(self.ident("value"), self.attr(&format!("{i} : index"))?)])
                .add_results(&[Type::index(self.ctx)])
                .build(),
        )
    }

    pub(super) fn float(&self, x: f64, elem: &str) -> LowerResult<'c, 'a> {
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

    pub(super) fn neg_infinity(&self, elem: &str) -> LowerResult<'c, 'a> {
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
    pub(super) fn empty(
        &self,
        ty: &TensorTy,
        sources: &[DimSource<'c, 'a>],
    ) -> LowerResult<'c, 'a> {
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
    pub(super) fn region(
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
    pub(super) fn scalar(
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
    pub(super) fn fill(
        &self,
        value: Value<'c, 'a>,
        out: Value<'c, 'a>,
        elem: &str,
    ) -> LowerResult<'c, 'a> {
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
    pub(super) fn generic(
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

    /// `tensor.extract` of a rank-0 tensor.
    pub(super) fn extract_scalar(&self, t: Value<'c, 'a>) -> LowerResult<'c, 'a> {
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
}

impl<'c, 'a> Builder<'c, 'a> {
    /// `tensor.cast` of `a` to `ty` (nothing when it already has that type).
    pub(super) fn cast(&self, a: Value<'c, 'a>, ty: &str) -> LowerResult<'c, 'a> {
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
}

impl<'c, 'a> Builder<'c, 'a> {
    /// A call to the private kernel `symbol` of `primitives.rs` (inserted into the module by the
    /// pass, inlined later) on dynamic-shape casts of `operands` and of the destination `init`;
    /// the result is cast back to `out_ty`.
    pub(super) fn primitive_call(
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
