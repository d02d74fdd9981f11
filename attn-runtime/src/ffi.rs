//! Calling ahead-of-time compiled kernels. This is the crate's only module
//! with `unsafe` code.
//!
//! A kernel is an `extern "C"` function whose every argument is a pointer to
//! a memref descriptor (inputs first, outputs last) and which returns nothing.

use core::ffi::c_void;

use crate::descriptor::DynMemRef;
use crate::element::DType;
use crate::error::Error;
use crate::isa::Isa;

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
        }
    }
}

/// Whether a kernel argument is read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgRole {
    /// Read only.
    Input,
    /// Written by the kernel.
    Output,
}

/// The declared name, role, element type and rank of one kernel argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgSpec {
    /// The argument's name, used in error messages.
    pub name: &'static str,
    /// Input or output.
    pub role: ArgRole,
    /// Element type.
    pub dtype: DType,
    /// Number of dimensions.
    pub rank: usize,
}

impl ArgSpec {
    /// An input argument.
    pub const fn input(name: &'static str, dtype: DType, rank: usize) -> Self {
        ArgSpec {
            name,
            role: ArgRole::Input,
            dtype,
            rank,
        }
    }

    /// An output argument.
    pub const fn output(name: &'static str, dtype: DType, rank: usize) -> Self {
        ArgSpec {
            name,
            role: ArgRole::Output,
            dtype,
            rank,
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
        let mut p = [core::ptr::null_mut::<c_void>(); 6];
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
            }
        }
        Ok(())
    }
}

/// Scratch memory of the kernels.
///
/// The pipeline lowers every `memref.alloc`/`memref.dealloc` of a kernel (packed panels, score
/// tiles, accumulators) to calls of `_mlir_memref_to_llvm_alloc`/`_mlir_memref_to_llvm_free`,
/// defined here. Blocks are served from a small per-thread cache of recently freed blocks, so
/// a kernel called again and again (the common case) makes no allocator call and no system
/// call: with plain `malloc`/`free`, freeing the ~100 KiB of a call let glibc trim the heap and
/// the next call fault the pages back in, which made small attention calls up to 3x slower.
///
/// The cache holds at most [`scratch::MAX_CACHED_BLOCKS`] blocks and
/// [`scratch::MAX_CACHED_BYTES`] bytes per thread, released when the thread exits. Programs
/// that link kernel objects without this crate (C, say) must define the two functions
/// themselves, e.g. as `malloc` and `free`.
pub mod scratch {
    use core::cell::RefCell;
    use std::alloc::{Layout, alloc, dealloc};

    /// The most blocks one thread keeps for reuse.
    pub const MAX_CACHED_BLOCKS: usize = 16;
    /// The most bytes one thread keeps for reuse.
    pub const MAX_CACHED_BYTES: usize = 64 << 20;
    /// Bytes before each payload: the block's capacity (payloads stay 64-byte aligned).
    const HEADER: usize = 64;
    const ALIGN: usize = 64;

    struct Cache {
        /// Free blocks: (capacity, payload pointer).
        blocks: Vec<(usize, *mut u8)>,
        bytes: usize,
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            for &(cap, p) in &self.blocks {
                // SAFETY: every cached pointer is a payload of `raw_alloc(cap)`, not in use.
                unsafe { raw_free(p, cap) };
            }
        }
    }

    thread_local! {
        static CACHE: RefCell<Cache> = const {
            RefCell::new(Cache { blocks: Vec::new(), bytes: 0 })
        };
    }

    fn layout(cap: usize) -> Option<Layout> {
        Layout::from_size_align(cap.checked_add(HEADER)?, ALIGN).ok()
    }

    /// A new block of `cap` payload bytes (null when out of memory or `cap` is absurd).
    fn raw_alloc(cap: usize) -> *mut u8 {
        let Some(l) = layout(cap) else {
            return core::ptr::null_mut();
        };
        // SAFETY: the layout has a non-zero size (HEADER > 0).
        let base = unsafe { alloc(l) };
        if base.is_null() {
            return base;
        }
        // SAFETY: the block is HEADER + cap bytes, so both the header write and the payload
        // pointer are in bounds; the header is ALIGN-aligned, enough for a usize.
        unsafe {
            base.cast::<usize>().write(cap);
            base.add(HEADER)
        }
    }

    /// Frees a payload of `raw_alloc(cap)`.
    ///
    /// # Safety
    /// `p` must come from `raw_alloc(cap)` and not be used afterwards.
    unsafe fn raw_free(p: *mut u8, cap: usize) {
        if let Some(l) = layout(cap) {
            // SAFETY: (caller) `p - HEADER` is the start of a block allocated with this layout.
            unsafe { dealloc(p.sub(HEADER), l) };
        }
    }

    /// A block of at least `size` bytes, 64-byte aligned: a cached one when one fits.
    pub fn allocate(size: usize) -> *mut u8 {
        // Round up so that calls with slightly different shapes reuse the same blocks.
        let Some(cap) = size.max(1).checked_next_multiple_of(4096) else {
            return core::ptr::null_mut();
        };
        let cached = CACHE
            .try_with(|c| {
                let mut c = c.borrow_mut();
                let best = c
                    .blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, (bc, _))| *bc >= cap && *bc <= cap.saturating_mul(4))
                    .min_by_key(|(_, (bc, _))| *bc)
                    .map(|(i, _)| i)?;
                let (bc, p) = c.blocks.swap_remove(best);
                c.bytes -= bc;
                Some(p)
            })
            .ok()
            .flatten();
        cached.unwrap_or_else(|| raw_alloc(cap))
    }

    /// Returns a block of [`allocate`] (null is ignored): to the thread's cache, or to the
    /// allocator when the cache is full.
    ///
    /// # Safety
    /// `p` must be null or come from [`allocate`], on any thread, and not be used afterwards.
    pub unsafe fn release(p: *mut u8) {
        if p.is_null() {
            return;
        }
        // SAFETY: (caller) `p` is a payload of `raw_alloc`, whose header holds the capacity.
        let cap = unsafe { p.sub(HEADER).cast::<usize>().read() };
        let kept = CACHE
            .try_with(|c| {
                let mut c = c.borrow_mut();
                if c.blocks.len() < MAX_CACHED_BLOCKS && c.bytes + cap <= MAX_CACHED_BYTES {
                    c.blocks.push((cap, p));
                    c.bytes += cap;
                    true
                } else {
                    false
                }
            })
            .unwrap_or(false);
        if !kept {
            // SAFETY: (caller) `p` came from `raw_alloc(cap)` and is no longer used.
            unsafe { raw_free(p, cap) };
        }
    }

    /// The allocation function the kernels call for `memref.alloc` (MLIR's generic allocation
    /// interface): at least `size` bytes, or null.
    #[unsafe(no_mangle)]
    pub extern "C" fn _mlir_memref_to_llvm_alloc(size: u64) -> *mut u8 {
        match usize::try_from(size) {
            Ok(n) => allocate(n),
            Err(_) => core::ptr::null_mut(),
        }
    }

    /// The deallocation function the kernels call for `memref.dealloc`.
    ///
    /// # Safety
    /// `p` must be null or a pointer returned by [`_mlir_memref_to_llvm_alloc`] that is not used
    /// afterwards (the kernels' deallocation pass guarantees this).
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn _mlir_memref_to_llvm_free(p: *mut u8) {
        // SAFETY: (caller) see above.
        unsafe { release(p) }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn blocks_are_reused_aligned_and_bounded() {
            let a = allocate(100_000);
            assert!(!a.is_null() && (a as usize).is_multiple_of(64));
            // SAFETY: `a` has at least 100_000 bytes.
            unsafe { a.write_bytes(7, 100_000) };
            // SAFETY: from `allocate`, not used again.
            unsafe { release(a) };
            let b = allocate(99_000);
            assert_eq!(a, b, "a freed block of the same size class is reused");
            // A much smaller request does not take a huge block.
            let c = allocate(10);
            assert_ne!(c, b);
            let many: Vec<*mut u8> = (0..40).map(|_| allocate(8192)).collect();
            for p in many.into_iter().chain([b, c]) {
                // SAFETY: from `allocate`, not used again.
                unsafe { release(p) };
            }
            CACHE.with(|c| {
                let c = c.borrow();
                assert!(c.blocks.len() <= MAX_CACHED_BLOCKS && c.bytes <= MAX_CACHED_BYTES);
            });
            // SAFETY: null is ignored.
            unsafe { release(core::ptr::null_mut()) };
            assert!(_mlir_memref_to_llvm_alloc(u64::MAX).is_null());
        }

        #[test]
        fn blocks_may_be_freed_on_another_thread() {
            let p = allocate(5000) as usize;
            std::thread::spawn(move || {
                // SAFETY: from `allocate`, not used again.
                unsafe { release(p as *mut u8) }
            })
            .join()
            .unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::MemRefDescriptor;
    use crate::tensor::{Tensor, TensorView};

    /// Copies a rank-2 f32 memref into another of the same shape.
    unsafe extern "C" fn copy2(input: *mut c_void, output: *mut c_void) {
        // SAFETY: the caller (`Kernel::launch`, per COPY2's signature) passes
        // pointers to live descriptors with a rank-2 f32 prefix layout.
        let (i, o) = unsafe {
            (
                *input.cast::<MemRefDescriptor<f32, 2>>(),
                *output.cast::<MemRefDescriptor<f32, 2>>(),
            )
        };
        for r in 0..o.sizes[0] {
            for c in 0..o.sizes[1] {
                let src = i.offset + r * i.strides[0] + c * i.strides[1];
                let dst = o.offset + r * o.strides[0] + c * o.strides[1];
                // SAFETY: both indices address elements described by the
                // descriptors, which lie inside their borrowed slices; the
                // output is exclusively borrowed and does not overlap the input.
                unsafe {
                    *o.aligned.offset(dst as isize) = *i.aligned.offset(src as isize);
                }
            }
        }
    }

    /// Writes 42 into a rank-0 f64 memref.
    unsafe extern "C" fn set42(out: *mut c_void) {
        // SAFETY: the caller passes a live rank-0 f64 output descriptor whose
        // element (at `offset`) lies inside its borrowed slice.
        unsafe {
            let d = *out.cast::<MemRefDescriptor<f64, 0>>();
            *d.aligned.offset(d.offset as isize) = 42.0;
        }
    }

    static COPY2_ARGS: [ArgSpec; 2] = [
        ArgSpec::input("x", DType::F32, 2),
        ArgSpec::output("out", DType::F32, 2),
    ];
    // SAFETY: `copy2` takes two rank-2 f32 descriptors (input, output), reads
    // only the input, writes only the output's elements, and has no state.
    static COPY2: Kernel = unsafe { Kernel::new("copy2", KernelFn::A2(copy2), &COPY2_ARGS) };

    static SET42_ARGS: [ArgSpec; 1] = [ArgSpec::output("out", DType::F64, 0)];
    // SAFETY: `set42` takes one rank-0 f64 output descriptor and writes only
    // its element.
    static SET42: Kernel = unsafe { Kernel::new("set42", KernelFn::A1(set42), &SET42_ARGS) };

    #[test]
    fn launch_copies_strided_input() {
        let src = Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let mut dst = Tensor::<f32>::zeros(&[3, 2]).unwrap();
        let mut dv = dst.view_mut();
        let tv = src.view().t().unwrap();
        let mut args = [
            DynMemRef::input(&tv).unwrap(),
            DynMemRef::output(&mut dv).unwrap(),
        ];
        COPY2.launch(&mut args).unwrap();
        assert_eq!(dst.as_slice(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(COPY2.name(), "copy2");
        assert_eq!(COPY2.args().len(), 2);
        assert_eq!(COPY2.entry().arity(), 2);
    }

    #[test]
    fn launch_into_strided_output_and_scalar() {
        let src = Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let mut buf = vec![0.0f32; 8];
        // Column 1 and 3 of a [2, 4] buffer.
        let mut out = crate::TensorViewMut::from_strided(&mut buf, &[2, 2], &[4, 2], 1).unwrap();
        let mut args = [
            DynMemRef::input(&src.view()).unwrap(),
            DynMemRef::output(&mut out).unwrap(),
        ];
        COPY2.launch(&mut args).unwrap();
        assert_eq!(buf, vec![0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0]);

        let mut s = Tensor::from_vec(&[], vec![0.0f64]).unwrap();
        let mut sv = s.view_mut();
        SET42
            .launch(&mut [DynMemRef::output(&mut sv).unwrap()])
            .unwrap();
        assert_eq!(s.as_slice(), &[42.0]);
    }

    #[test]
    fn launch_rejects_bad_arguments() {
        let a = Tensor::<f32>::zeros(&[2, 2]).unwrap();
        let a1 = Tensor::<f32>::zeros(&[4]).unwrap();
        let a64 = Tensor::<f64>::zeros(&[2, 2]).unwrap();
        let mut o = Tensor::<f32>::zeros(&[2, 2]).unwrap();
        let mut ov = o.view_mut();

        // Arity.
        let e = COPY2
            .launch(&mut [DynMemRef::input(&a.view()).unwrap()])
            .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("copy2") && m.contains("expected 2 arguments (x, out) but got 1"),
            "{m}"
        );

        // Rank.
        let e = COPY2
            .launch(&mut [
                DynMemRef::input(&a1.view()).unwrap(),
                DynMemRef::output(&mut ov).unwrap(),
            ])
            .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("`x`") && m.contains("rank 2") && m.contains("[4]"),
            "{m}"
        );

        // Dtype.
        let e = COPY2
            .launch(&mut [
                DynMemRef::input(&a64.view()).unwrap(),
                DynMemRef::output(&mut ov).unwrap(),
            ])
            .unwrap_err();
        assert!(
            e.to_string().contains("f32") && e.to_string().contains("f64"),
            "{e}"
        );

        // Role: an input where the output should be.
        let e = COPY2
            .launch(&mut [
                DynMemRef::input(&a.view()).unwrap(),
                DynMemRef::input(&a.view()).unwrap(),
            ])
            .unwrap_err();
        assert!(e.to_string().contains("`out`"), "{e}");

        // Overlap (not constructible in safe code; faked via the test hook).
        let inp = DynMemRef::input(&a.view()).unwrap();
        let (start, _) = inp.byte_range();
        let out = DynMemRef::output(&mut ov)
            .unwrap()
            .with_fake_range(start + 4, 16);
        let e = COPY2.launch(&mut [inp, out]).unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
        assert_eq!(o.as_slice(), &[0.0; 4]);
    }

    #[test]
    fn arity_mismatch_between_entry_and_spec() {
        // SAFETY: never launched successfully: the arity check fails first.
        let k = unsafe { Kernel::new("bad", KernelFn::A1(set42), &COPY2_ARGS) };
        let a = Tensor::<f32>::zeros(&[2, 2]).unwrap();
        let mut o = Tensor::<f32>::zeros(&[2, 2]).unwrap();
        let mut ov = o.view_mut();
        let mut args = [
            DynMemRef::input(&a.view()).unwrap(),
            DynMemRef::output(&mut ov).unwrap(),
        ];
        let e = k.launch(&mut args).unwrap_err();
        assert!(e.to_string().contains("entry point takes 1"), "{e}");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn dyn_prefix_bytes_equal_typed_descriptor() {
        let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let v = TensorView::from_strided(&data, &[2, 3, 2], &[12, 1, 3], 0).unwrap();
        let typed = MemRefDescriptor::<f32, 3>::from_view(&v).unwrap();
        let dynd = DynMemRef::input(&v).unwrap();
        let n = core::mem::size_of::<MemRefDescriptor<f32, 3>>();
        // SAFETY: both structs are at least `n` bytes, fully initialised and
        // padding-free in their first `n` bytes (pointers and i64s only).
        let (a, b) = unsafe {
            (
                core::slice::from_raw_parts(core::ptr::from_ref(&typed).cast::<u8>(), n),
                core::slice::from_raw_parts(core::ptr::from_ref(&dynd).cast::<u8>(), n),
            )
        };
        assert_eq!(a, b);
    }
}
