use super::*;
use crate::descriptor::MemRefDescriptor;
use crate::element::DType;
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
