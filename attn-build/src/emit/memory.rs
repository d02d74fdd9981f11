//! Tensors, buffers and calls: scratch allocation, scalar and vector loads and stores,
//! tensor element access, buffer views of tensors, slices.

use super::{Emitter, Layout, Scalar, Ty, Val};

fn list(xs: &[&Val]) -> String {
    xs.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ")
}

impl Emitter {
    /// A 64-byte aligned scratch of type `ty` (`memref.alloc`; `dynamic` gives its `?` dims).
    pub fn alloc(&mut self, ty: Ty, dynamic: &[&Val]) -> Val {
        let d = list(dynamic);
        self.op(
            ty.clone(),
            format_args!("memref.alloc({d}) {{alignment = 64 : i64}} : {ty}"),
        )
    }

    /// A 64-byte aligned scratch on the stack (static shapes only).
    pub fn alloca(&mut self, ty: Ty) -> Val {
        self.op(
            ty.clone(),
            format_args!("memref.alloca() {{alignment = 64 : i64}} : {ty}"),
        )
    }

    /// `m[idx]`.
    pub fn load(&mut self, m: &Val, idx: &[&Val]) -> Val {
        let ty = m.ty().clone();
        let i = list(idx);
        self.op(
            ty.elem().into(),
            format_args!("memref.load {m}[{i}] : {ty}"),
        )
    }

    /// `m[idx] = x`.
    pub fn store(&mut self, x: &Val, m: &Val, idx: &[&Val]) {
        let (ty, i) = (m.ty().clone(), list(idx));
        self.stmt(format_args!("memref.store {x}, {m}[{i}] : {ty}"));
    }

    /// `lanes` consecutive elements of `m` from `idx`.
    pub fn vload(&mut self, m: &Val, idx: &[&Val], lanes: usize) -> Val {
        let (ty, i) = (m.ty().clone(), list(idx));
        let vt = Ty::vector(lanes, ty.elem());
        self.op(
            vt.clone(),
            format_args!("vector.load {m}[{i}] : {ty}, {vt}"),
        )
    }

    /// Stores the vector `x` at `m[idx..]`.
    pub fn vstore(&mut self, x: &Val, m: &Val, idx: &[&Val]) {
        let (ty, i, vt) = (m.ty().clone(), list(idx), x.ty().clone());
        self.stmt(format_args!("vector.store {x}, {m}[{i}] : {ty}, {vt}"));
    }

    /// The lanes of `m[idx..]` where `mask` is set, `pass` elsewhere.
    pub fn masked_load(&mut self, m: &Val, idx: &[&Val], mask: &Val, pass: &Val) -> Val {
        let (ty, i) = (m.ty().clone(), list(idx));
        let (mt, vt) = (mask.ty().clone(), pass.ty().clone());
        self.op(
            vt.clone(),
            format_args!("vector.maskedload {m}[{i}], {mask}, {pass} : {ty}, {mt}, {vt} into {vt}"),
        )
    }

    /// A read prefetch of `m[idx]` (locality 1: `prefetcht2` on x86).
    pub fn prefetch(&mut self, m: &Val, idx: &[&Val]) {
        let (ty, i) = (m.ty().clone(), list(idx));
        self.stmt(format_args!(
            "memref.prefetch {m}[{i}], read, locality<1>, data : {ty}"
        ));
    }

    /// Dim `i` of a tensor or memref (an index).
    pub fn dim(&mut self, t: &Val, i: usize) -> Val {
        let ci = self.idx(i);
        let ty = t.ty().clone();
        let op = if matches!(ty, Ty::MemRef(..)) {
            "memref"
        } else {
            "tensor"
        };
        self.op(Ty::INDEX, format_args!("{op}.dim {t}, {ci} : {ty}"))
    }

    /// The slice `buf[slot]` of a row-major memref, without its first dim (a view).
    pub fn slot(&mut self, buf: &Val, slot: &Val) -> Val {
        let Ty::MemRef(shape, elem, _) = buf.ty().clone() else {
            unreachable!("slot of a non-memref {buf}");
        };
        let rest = shape[1..].to_vec();
        let sizes: Vec<String> = rest
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Some(n) => n.to_string(),
                None => self.dim(buf, i + 1).name().to_string(),
            })
            .collect();
        // Row-major strides of the remaining dims: static while every inner dim is.
        let mut strides = vec![Some(1i64); rest.len()];
        for k in (0..rest.len().saturating_sub(1)).rev() {
            strides[k] = match (strides[k + 1], rest[k + 1]) {
                (Some(a), Some(b)) => Some(a * b as i64),
                _ => None,
            };
        }
        let rt = Ty::MemRef(
            rest.clone(),
            elem,
            Layout::Strided {
                strides,
                offset: None,
            },
        );
        let zeros = vec!["0"; rest.len()].join(", ");
        let ones = vec!["1"; rest.len() + 1].join(", ");
        let bt = buf.ty().clone();
        self.op(
            rt.clone(),
            format_args!(
                "memref.subview {buf}[{slot}, {zeros}] [1, {}] [{ones}] : {bt} to {rt}",
                sizes.join(", ")
            ),
        )
    }

    /// `t[idx]` of a tensor.
    pub fn extract(&mut self, t: &Val, idx: &[&Val]) -> Val {
        let (ty, i) = (t.ty().clone(), list(idx));
        self.op(
            ty.elem().into(),
            format_args!("tensor.extract {t}[{i}] : {ty}"),
        )
    }

    /// The tensor `t` with `t[idx] = x`.
    pub fn insert(&mut self, x: &Val, t: &Val, idx: &[&Val]) -> Val {
        let (ty, i) = (t.ty().clone(), list(idx));
        self.op(
            ty.clone(),
            format_args!("tensor.insert {x} into {t}[{i}] : {ty}"),
        )
    }

    /// A read-only buffer of a tensor, with dynamic strides and offset.
    pub fn to_buffer(&mut self, t: &Val) -> Val {
        let ty = t.ty().clone();
        let bt = Ty::strided_memref(ty.rank(), ty.elem(), false);
        self.op(
            bt.clone(),
            format_args!("bufferization.to_buffer {t} read_only : {ty} to {bt}"),
        )
    }

    /// `memref.extract_strided_metadata`: (base, offset, sizes, strides).
    pub fn strided_metadata(&mut self, m: &Val) -> Metadata {
        let ty = m.ty().clone();
        let r = ty.rank();
        let base = Ty::memref(&[], ty.elem());
        let mut tys = vec![base.clone(), Ty::INDEX];
        tys.extend(std::iter::repeat_n(Ty::INDEX, 2 * r));
        let tlist = tys.iter().map(Ty::to_string).collect::<Vec<_>>().join(", ");
        let mut vals = self.ops(
            &tys,
            format_args!("memref.extract_strided_metadata {m} : {ty} -> {tlist}"),
        );
        let strides = vals.split_off(2 + r);
        let sizes = vals.split_off(2);
        let offset = vals.pop().unwrap_or_else(|| unreachable!());
        let base = vals.pop().unwrap_or_else(|| unreachable!());
        Metadata {
            base,
            offset,
            sizes,
            strides,
        }
    }

    /// A view of `buf` (a memref) as `ty` with the given offset, sizes and strides.
    pub fn reinterpret(
        &mut self,
        buf: &Val,
        ty: Ty,
        offset: &Val,
        sizes: &[&Val],
        strides: &[&str],
    ) -> Val {
        let from = buf.ty().clone();
        let s = list(sizes);
        let st = strides.join(", ");
        self.op(
            ty.clone(),
            format_args!(
                "memref.reinterpret_cast {buf} to offset: [{offset}], sizes: [{s}], strides: [{st}] : {from} to {ty}"
            ),
        )
    }

    /// `memref.cast` to a compatible type.
    pub fn memref_cast(&mut self, m: &Val, ty: Ty) -> Val {
        let from = m.ty().clone();
        self.op(ty.clone(), format_args!("memref.cast {m} : {from} to {ty}"))
    }

    /// The 2-D slice `[.., a, b]` of the rank-`n` tensor `t` at leading indices `lead`
    /// (sizes 1), as a rank-2 tensor of dynamic shape.
    pub fn slice2(&mut self, t: &Val, lead: &[Val], a: &Val, b: &Val) -> Val {
        if lead.is_empty() {
            return t.clone();
        }
        let ty = t.ty().clone();
        let to = Ty::dyn_tensor(2, ty.elem());
        let (ones, strides) = (
            vec!["1"; lead.len()].join(", "),
            vec!["1"; ty.rank()].join(", "),
        );
        let offs = lead.iter().map(Val::name).collect::<Vec<_>>().join(", ");
        self.op(
            to.clone(),
            format_args!(
                "tensor.extract_slice {t}[{offs}, 0, 0] [{ones}, {a}, {b}] [{strides}] : {ty} to {to}"
            ),
        )
    }

    /// `dest` with the rank-2 tensor `x` inserted at leading indices `lead`.
    pub fn insert_slice2(&mut self, x: &Val, dest: &Val, lead: &[Val], a: &Val, b: &Val) -> Val {
        if lead.is_empty() {
            return x.clone();
        }
        let (ty, xt) = (dest.ty().clone(), x.ty().clone());
        let (ones, strides) = (
            vec!["1"; lead.len()].join(", "),
            vec!["1"; ty.rank()].join(", "),
        );
        let offs = lead.iter().map(Val::name).collect::<Vec<_>>().join(", ");
        self.op(
            ty.clone(),
            format_args!(
                "tensor.insert_slice {x} into {dest}[{offs}, 0, 0] [{ones}, {a}, {b}] [{strides}] : {xt} into {ty}"
            ),
        )
    }

    /// `dest` with the 1-D tensor `x` inserted at leading indices `lead` (sizes 1, then `n`).
    pub fn insert_slice1(&mut self, x: &Val, dest: &Val, lead: &[Val], n: &Val) -> Val {
        if lead.is_empty() {
            return x.clone();
        }
        let (ty, xt) = (dest.ty().clone(), x.ty().clone());
        let (ones, strides) = (
            vec!["1"; lead.len()].join(", "),
            vec!["1"; ty.rank()].join(", "),
        );
        let offs = lead.iter().map(Val::name).collect::<Vec<_>>().join(", ");
        self.op(
            ty.clone(),
            format_args!(
                "tensor.insert_slice {x} into {dest}[{offs}, 0] [{ones}, {n}] [{strides}] : {xt} into {ty}"
            ),
        )
    }

    /// `func.call @callee(args)` with several results.
    pub fn call_n(&mut self, callee: &str, args: &[Val], results: &[Ty]) -> Vec<Val> {
        let names = args.iter().map(Val::name).collect::<Vec<_>>().join(", ");
        let tys = args
            .iter()
            .map(|a| a.ty().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let rt = results
            .iter()
            .map(Ty::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        self.ops(
            results,
            format_args!("func.call @{callee}({names}) : ({tys}) -> ({rt})"),
        )
    }

    /// `func.call @callee(args) -> result`.
    pub fn call(&mut self, callee: &str, args: &[Val], result: &Ty) -> Val {
        let names = args.iter().map(Val::name).collect::<Vec<_>>().join(", ");
        let tys = args
            .iter()
            .map(|a| a.ty().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        self.op(
            result.clone(),
            format_args!("func.call @{callee}({names}) : ({tys}) -> {result}"),
        )
    }

    /// `tensor.generate` of a rank-1 tensor of `n` elements of type `s`; `body` maps the index
    /// to the element.
    pub fn generate1(
        &mut self,
        n: &Val,
        s: Scalar,
        body: impl FnOnce(&mut Emitter, &Val) -> Val,
    ) -> Val {
        let name = self.fresh();
        let ty = Ty::dyn_tensor(1, s);
        self.line(format_args!("{name} = tensor.generate {n} {{"));
        let i = Val::new(self.fresh(), Ty::INDEX);
        self.line(format_args!("^bb0({i}: index):"));
        self.depth += 1;
        let x = body(self, &i);
        self.line(format_args!("tensor.yield {x} : {s}"));
        self.depth -= 1;
        self.line(format_args!("}} : {ty}"));
        Val::new(name, ty)
    }
}

/// The results of [`Emitter::strided_metadata`].
pub struct Metadata {
    /// The base buffer (rank 0).
    pub base: Val,
    /// The offset in elements.
    pub offset: Val,
    /// The sizes.
    pub sizes: Vec<Val>,
    /// The strides in elements.
    pub strides: Vec<Val>,
}
