//! The linalg lowering of the primitives: `matmul` (the register-tiled kernel for f32),
//! `transpose`, elementwise ops and `softmax` (the vectorized kernel for f32, else the
//! composition of reductions and maps).

use super::builder::{Builder, DimSource, LowerResult};
use super::types::{TensorTy, tensor_ty};
use crate::ffi::mlir::detach;
use melior::ir::{Block, Value, ValueLike, operation::OperationBuilder};

impl<'c, 'a> Builder<'c, 'a> {
    /// `C = A B` for 2-D or batched operands of any batch rank.
    pub(super) fn matmul(&self, a: Value<'c, 'a>, b: Value<'c, 'a>) -> LowerResult<'c, 'a> {
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
            let symbol = crate::primitives::matmul::symbol(r, &self.tiling);
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
    pub(super) fn transpose(&self, a: Value<'c, 'a>) -> LowerResult<'c, 'a> {
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

    pub(super) fn identity_map(rank: usize) -> String {
        let d = (0..rank)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("affine_map<({d}) -> ({d})>")
    }

    pub(super) fn empty_like(&self, a: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let ta = tensor_ty(a)?;
        let sources: Vec<DimSource> = (0..ta.rank())
            .map(|i| DimSource { of: a, index: i })
            .collect();
        self.empty(&ta, &sources)
    }

    /// Elementwise `a (op) b`, where `b` has `a`'s shape or is rank 0.
    pub(super) fn elementwise(
        &self,
        name: &str,
        a: Value<'c, 'a>,
        b: Value<'c, 'a>,
    ) -> LowerResult<'c, 'a> {
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
    pub(super) fn scale_by(&self, a: Value<'c, 'a>, factor: Value<'c, 'a>) -> LowerResult<'c, 'a> {
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
    pub(super) fn softmax(&self, x: Value<'c, 'a>) -> LowerResult<'c, 'a> {
        let tx = tensor_ty(x)?;
        let r = tx.rank();
        if r < 1 {
            return Err(format!("softmax needs rank >= 1, got {}", tx.show()));
        }
        if tx.elem == "f32" && self.fused {
            // The vectorized kernel of `primitives.rs`.
            let init = self.empty_like(x)?;
            let symbol = crate::primitives::softmax::symbol(r, &self.tiling);
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
}
