//! Calling ahead-of-time compiled kernels. This is the crate's only module
//! with `unsafe` code.
//!
//! A kernel is an `extern "C"` function whose every argument is a pointer to
//! a memref descriptor (inputs first, outputs last) and which returns nothing.

use core::ffi::c_void;

use crate::descriptor::DynMemRef;
use crate::error::Error;
use crate::isa::Isa;
pub use crate::signature::{ArgRole, ArgSpec};

pub mod scratch;

/// A kernel entry point taking one descriptor pointer.
pub type Kernel1 = unsafe extern "C" fn(*mut c_void);
/// A kernel entry point taking two descriptor pointers.
pub type Kernel2 = unsafe extern "C" fn(*mut c_void, *mut c_void);
/// A kernel entry point taking three descriptor pointers.
pub type Kernel3 = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void);
/// A kernel entry point taking four descriptor pointers.
pub type Kernel4 = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, *mut c_void);
/// A kernel entry point taking five descriptor pointers.
pub type Kernel5 =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, *mut c_void, *mut c_void);
/// A kernel entry point taking six descriptor pointers.
pub type Kernel6 = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
);

/// A kernel entry point taking seven descriptor pointers.
pub type Kernel7 = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
);
/// A kernel entry point taking eight descriptor pointers.
pub type Kernel8 = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
);
/// A kernel entry point taking nine descriptor pointers.
pub type Kernel9 = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
);
/// A kernel entry point taking ten descriptor pointers.
pub type Kernel10 = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
);
/// A kernel entry point taking eleven descriptor pointers.
pub type Kernel11 = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
);
/// A kernel entry point taking twelve descriptor pointers.
pub type Kernel12 = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
);

/// A kernel entry point of any supported arity.
#[derive(Debug, Clone, Copy)]
pub enum KernelFn {
    /// One argument.
    A1(Kernel1),
    /// Two arguments.
    A2(Kernel2),
    /// Three arguments.
    A3(Kernel3),
    /// Four arguments.
    A4(Kernel4),
    /// Five arguments.
    A5(Kernel5),
    /// Six arguments.
    A6(Kernel6),
    /// Seven arguments.
    A7(Kernel7),
    /// Eight arguments.
    A8(Kernel8),
    /// Nine arguments.
    A9(Kernel9),
    /// Ten arguments.
    A10(Kernel10),
    /// Eleven arguments.
    A11(Kernel11),
    /// Twelve arguments.
    A12(Kernel12),
}

impl KernelFn {
    /// The number of descriptor pointers the entry point takes.
    pub const fn arity(&self) -> usize {
        match self {
            KernelFn::A1(_) => 1,
            KernelFn::A2(_) => 2,
            KernelFn::A3(_) => 3,
            KernelFn::A4(_) => 4,
            KernelFn::A5(_) => 5,
            KernelFn::A6(_) => 6,
            KernelFn::A7(_) => 7,
            KernelFn::A8(_) => 8,
            KernelFn::A9(_) => 9,
            KernelFn::A10(_) => 10,
            KernelFn::A11(_) => 11,
            KernelFn::A12(_) => 12,
        }
    }
}

/// An ahead-of-time compiled kernel together with its signature.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    name: &'static str,
    entry: KernelFn,
    args: &'static [ArgSpec],
    /// Entry points compiled for several ISA levels, best first (empty: `entry` only).
    variants: &'static [(Isa, KernelFn)],
}

impl Kernel {
    /// Pairs an entry point with its signature.
    ///
    /// # Safety
    ///
    /// `entry` must be an AOT kernel whose C signature takes exactly
    /// `args.len()` pointers to memref descriptors with the listed element
    /// types and ranks, in that order; it must read only through its inputs,
    /// write only within the elements described by its outputs (and never
    /// keep the pointers after returning), and be safe to call from several
    /// threads at once.
    pub const unsafe fn new(
        name: &'static str,
        entry: KernelFn,
        args: &'static [ArgSpec],
    ) -> Kernel {
        Kernel {
            name,
            entry,
            args,
            variants: &[],
        }
    }

    /// Pairs several entry points of one kernel, compiled for different ISA levels and listed
    /// best first, with their common signature. [`Kernel::launch`] calls the best variant that
    /// [`isa::active`](crate::isa::active) allows.
    ///
    /// # Safety
    ///
    /// Every entry point must satisfy the contract of [`Kernel::new`] for `args`, and the one
    /// listed for an [`Isa`] must only use instructions of that level. `variants` must not be
    /// empty.
    pub const unsafe fn with_variants(
        name: &'static str,
        variants: &'static [(Isa, KernelFn)],
        args: &'static [ArgSpec],
    ) -> Kernel {
        Kernel {
            name,
            entry: variants[variants.len() - 1].1,
            args,
            variants,
        }
    }

    /// The ISA levels this kernel was compiled for, best first (empty for a single variant).
    pub fn variants(&self) -> impl Iterator<Item = Isa> + '_ {
        self.variants.iter().map(|(isa, _)| *isa)
    }

    /// The entry point to call now: the best variant the active ISA level allows.
    fn select(&self) -> Result<KernelFn, Error> {
        if self.variants.is_empty() {
            return Ok(self.entry);
        }
        let active = crate::isa::active();
        self.variants
            .iter()
            .find(|(isa, _)| *isa <= active)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                self.sig_err(format!(
                    "no variant runs at ISA level {} (compiled for {:?})",
                    active.cpu(),
                    self.variants().map(Isa::cpu).collect::<Vec<_>>()
                ))
            })
    }

    /// The kernel's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The declared arguments, in call order.
    pub fn args(&self) -> &'static [ArgSpec] {
        self.args
    }

    /// The entry point.
    pub fn entry(&self) -> KernelFn {
        self.entry
    }

    fn sig_err(&self, message: String) -> Error {
        Error::KernelSignature {
            kernel: self.name,
            message,
        }
    }

    /// Checks `args` against the signature and rejects outputs whose data
    /// overlaps any other argument's data.
    pub fn check(&self, args: &[DynMemRef<'_>]) -> Result<(), Error> {
        let n = self.args.len();
        if let Some(bad) = std::iter::once(self.entry)
            .chain(self.variants.iter().map(|(_, f)| *f))
            .find(|f| f.arity() != n)
        {
            return Err(self.sig_err(format!(
                "declares {n} arguments but its entry point takes {}",
                bad.arity()
            )));
        }
        if args.len() != n {
            let names: Vec<&str> = self.args.iter().map(|a| a.name).collect();
            return Err(self.sig_err(format!(
                "expected {n} arguments ({}) but got {}",
                names.join(", "),
                args.len()
            )));
        }
        for (i, (spec, d)) in self.args.iter().zip(args).enumerate() {
            let name = spec.name;
            if d.role() != spec.role {
                return Err(self.sig_err(format!(
                    "argument {i} (`{name}`) must be an {:?} descriptor but got an {:?} descriptor",
                    spec.role,
                    d.role()
                )));
            }
            if d.dtype() != spec.dtype {
                return Err(self.sig_err(format!(
                    "argument {i} (`{name}`) must have element type {} but has {}",
                    spec.dtype,
                    d.dtype()
                )));
            }
            if d.rank() != spec.rank {
                return Err(self.sig_err(format!(
                    "argument {i} (`{name}`) must have rank {} but has shape {:?} (rank {})",
                    spec.rank,
                    d.sizes(),
                    d.rank()
                )));
            }
        }
        for (i, (spec, d)) in self.args.iter().zip(args).enumerate() {
            if spec.role != ArgRole::Output {
                continue;
            }
            for (j, (other_spec, other)) in self.args.iter().zip(args).enumerate() {
                if i != j && d.overlaps(other) {
                    return Err(self.sig_err(format!(
                        "output `{}` (shape {:?}) overlaps the memory of argument `{}` (shape {:?}); outputs must not alias other arguments",
                        spec.name,
                        d.sizes(),
                        other_spec.name,
                        other.sizes()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks arity, roles, dtypes and ranks of `args` against the signature
    /// (see [`Self::check`]; `Err` names the kernel and the argument), then
    /// calls the entry point.
    ///
    /// This is safe: [`Kernel::new`] carries the kernel's contract, and every
    /// [`DynMemRef`] was built from a valid view whose data stays borrowed
    /// (shared for inputs, exclusively for outputs) for as long as the
    /// descriptor lives, hence throughout the call.
    pub fn launch(&self, args: &mut [DynMemRef<'_>]) -> Result<(), Error> {
        self.check(args)?;
        let entry = self.select()?;
        let mut p = [core::ptr::null_mut::<c_void>(); 12];
        for (slot, d) in p.iter_mut().zip(args.iter_mut()) {
            *slot = d.as_kernel_arg();
        }
        // SAFETY: `Kernel::new`'s contract says `entry` takes exactly
        // `self.args.len()` descriptor pointers of the listed dtypes and ranks,
        // and `check` verified that the variant's arity, and each descriptor's
        // role, dtype and rank, match that list. Each pointer points at a live
        // `DynMemRef` whose prefix has MLIR's layout for its rank, describing
        // elements that lie inside a slice borrowed for the descriptor's
        // lifetime (validated when the view was built). Outputs are borrowed
        // exclusively and do not overlap any other argument, and the kernel
        // writes only within outputs per the contract.
        // With several variants, `with_variants`' contract makes each one satisfy the same
        // signature, `check` verified every variant's arity, and `select` picked one whose ISA
        // level the running CPU supports.
        unsafe {
            match entry {
                KernelFn::A1(f) => f(p[0]),
                KernelFn::A2(f) => f(p[0], p[1]),
                KernelFn::A3(f) => f(p[0], p[1], p[2]),
                KernelFn::A4(f) => f(p[0], p[1], p[2], p[3]),
                KernelFn::A5(f) => f(p[0], p[1], p[2], p[3], p[4]),
                KernelFn::A6(f) => f(p[0], p[1], p[2], p[3], p[4], p[5]),
                KernelFn::A7(f) => f(p[0], p[1], p[2], p[3], p[4], p[5], p[6]),
                KernelFn::A8(f) => f(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]),
                KernelFn::A9(f) => f(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]),
                KernelFn::A10(f) => f(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]),
                KernelFn::A11(f) => f(
                    p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10],
                ),
                KernelFn::A12(f) => f(
                    p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11],
                ),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
