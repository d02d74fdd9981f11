//! `ndarray` interop (feature `ndarray`): arrays of any layout as arguments, without copying where
//! a tensor view can express the layout, results as `ndarray::Array`, against the f64 reference.
//!
//! `cargo test --features ndarray --test ndarray`

mod common;

use attn::ndarray::{ArcArray, Array, Array2, Array3, Array4, ArrayD, CowArray, Ix2, Ix3, s};
use attn::ndarray_interop::ViewOrCopy;
use attn::{AsTensorView, Error, Tensor, reference};
use common::{Rng, assert_close};

fn array<Sh, D>(rng: &mut Rng, shape: Sh) -> Array<f32, D>
where
    Sh: attn::ndarray::ShapeBuilder<Dim = D>,
    D: attn::ndarray::Dimension,
{
    Array::from_shape_simple_fn(shape, || rng.uniform())
}

/// The view borrows `owner`'s memory: same base pointer, no copy.
#[track_caller]
fn assert_borrows<T>(x: &impl AsTensorView<f32>, owner: *const T) {
    let v = x.try_as_tensor_view().expect("borrowable layout");
    let first = v.data()[v.offset()..].as_ptr();
    assert_eq!(first.cast::<T>(), owner, "{v:?}");
}

#[test]
fn transposed_views_are_borrowed_and_correct() {
    let mut rng = Rng::new(1);
    let (s, d) = (37, 24);
    let q = array(&mut rng, (s, d));
    // K stored as [D, S]: `.t()` is a [S, D] view with strides [1, S].
    let k_store = array(&mut rng, (d, s));
    let v = array(&mut rng, (s, 16));
    let k = k_store.t();
    let kv = k.as_tensor_view();
    assert_eq!((kv.shape(), kv.strides()), (&[s, d][..], &[1, s][..]));
    assert_borrows(&k, k_store.as_ptr());

    let out = attn::attention(&q, &k, &v).unwrap();
    assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());
    // The same inputs copied into tensors give the same result.
    let k_copy = Tensor::from_ndarray(&k).unwrap();
    let again = attn::attention(&q, &k_copy, &v).unwrap();
    assert_eq!(out.as_slice(), again.as_slice());

    // matmul with both operands transposed.
    let a_store = array(&mut rng, (9, 13));
    let b_store = array(&mut rng, (21, 9));
    let (a, b) = (a_store.t(), b_store.t()); // [13, 9] x [9, 21]
    let m = attn::matmul(&a, &b).unwrap();
    assert_close(&m, &reference::matmul(&a, &b).unwrap());
    assert_eq!(m.shape(), &[13, 21]);
}

#[test]
fn reversed_axes_of_owned_arrays() {
    let mut rng = Rng::new(2);
    // [D, S, B] row-major, reversed to [B, S, D] with strides [1, B, S*B]: no copy, any strides.
    let (b, s, d) = (3, 19, 8);
    let q = array(&mut rng, (d, s, b)).reversed_axes();
    let k = array(&mut rng, (d, s, b)).reversed_axes();
    let v = array(&mut rng, (b, s, 5));
    assert_eq!(q.strides(), &[1, 3, 57]);
    assert_borrows(&q, q.as_ptr());
    let out = attn::attention(&q, &k, &v).unwrap();
    assert_eq!(out.shape(), &[b, s, 5]);
    assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());

    // Rank 4, axes permuted.
    let q4 = array(&mut rng, (2, 3, 11, 4)).permuted_axes([1, 0, 2, 3]);
    let k4 = array(&mut rng, (4, 2, 13, 3)).permuted_axes([3, 1, 2, 0]);
    let v4 = array(&mut rng, (3, 2, 13, 6));
    assert_borrows(&k4, k4.as_ptr());
    let out = attn::attention(&q4, &k4, &v4).unwrap();
    assert_close(&out, &reference::attention(&q4, &k4, &v4, None).unwrap());
}

#[test]
fn slices_with_steps() {
    let mut rng = Rng::new(3);
    let big = array(&mut rng, (64, 48));
    let v = array(&mut rng, (16, 12));

    // An owned array sliced in place keeps its allocation: borrowed with strides [96, 3].
    let q = big.clone().slice_move(s![..;2, 1..;3]); // [32, 16]
    let k = big.slice(s![4..52;3, ..;3]).to_owned(); // a dense copy, [16, 16]
    assert_eq!(q.strides(), &[96, 3]);
    assert_borrows(&q, q.as_ptr());
    let out = attn::attention(&q, &k, &v).unwrap();
    assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());

    // A borrowed view with gaps cannot be borrowed as one slice (its gaps may be mutably
    // borrowed elsewhere): a clear error, and `ViewOrCopy` copies it.
    let view = big.slice(s![..;2, 1..;3]);
    let e = view.try_as_tensor_view().unwrap_err();
    assert!(matches!(e, Error::InvalidView { .. }), "{e}");
    assert!(e.to_string().contains("ViewOrCopy"), "{e}");
    let arg = ViewOrCopy::new(&view).unwrap();
    assert!(arg.is_copy());
    let out2 = attn::attention(&arg, &k, &v).unwrap();
    assert_eq!(out.as_slice(), out2.as_slice());

    // Without gaps a borrowed slice is borrowed: a block of whole rows.
    let rows = big.slice(s![8..24, ..]);
    assert_borrows(&rows, big.as_ptr().wrapping_add(8 * 48));
    assert!(!ViewOrCopy::new(&rows).unwrap().is_copy());
    let wt = array(&mut rng, (48, 7));
    let m = attn::matmul(&rows, &wt).unwrap();
    assert_close(&m, &reference::matmul(&rows, &wt).unwrap());
}

#[test]
fn heads_as_column_blocks() {
    // [S, H * D] projections, head h = columns h*D..(h+1)*D: strided [D-wide] blocks.
    let mut rng = Rng::new(4);
    let (s, h, d) = (29, 3, 8);
    let q = array(&mut rng, (s, h * d));
    let k = array(&mut rng, (s, h * d));
    let v = array(&mut rng, (s, h * d));
    for head in 0..h {
        let cols = s![.., head * d..(head + 1) * d];
        // Owned column blocks: borrowed, row stride H * D.
        let (qh, kh, vh) = (
            q.clone().slice_move(cols),
            k.clone().slice_move(cols),
            v.clone().slice_move(cols),
        );
        assert_eq!(qh.as_tensor_view().strides(), &[h * d, 1]);
        let out = attn::attention(&qh, &kh, &vh).unwrap();
        assert_close(&out, &reference::attention(&qh, &kh, &vh, None).unwrap());
        // Borrowed column blocks go through `ViewOrCopy`.
        let (qv, kv, vv) = (q.slice(cols), k.slice(cols), v.slice(cols));
        let args = [&qv, &kv, &vv].map(|x| ViewOrCopy::new(x).unwrap());
        let out2 = attn::attention(&args[0], &args[1], &args[2]).unwrap();
        assert_eq!(out.as_slice(), out2.as_slice());
    }
}

#[test]
fn negative_strides_are_errors_or_copies() {
    let mut rng = Rng::new(5);
    let a = array(&mut rng, (6, 4));
    let flipped = a.slice(s![..;-1, ..]);
    let e = flipped.try_as_tensor_view().unwrap_err();
    assert!(e.to_string().contains("backwards"), "{e}");
    let arg = ViewOrCopy::new(&flipped).unwrap();
    assert!(arg.is_copy());
    assert_eq!(arg.as_tensor_view().get(&[0, 0]), Some(a[[5, 0]]));
    let sm = attn::softmax(&arg).unwrap();
    assert_close(&sm, &reference::softmax(&arg).unwrap());
    // The infallible path panics with the same message (there is no view to return).
    let panic = std::panic::catch_unwind(|| flipped.as_tensor_view().shape().to_vec());
    assert!(panic.is_err());
    // The operations use the fallible path: an error, not a panic.
    let e = attn::softmax(&flipped).unwrap_err();
    assert!(e.to_string().contains("backwards"), "{e}");
    let e = attn::attention(&flipped, &a, &a).unwrap_err();
    assert!(e.to_string().contains("backwards"), "{e}");
    let e = attn::Attention::new()
        .mask(&flipped)
        .run(&a, &a, &a)
        .unwrap_err();
    assert!(e.to_string().contains("mask"), "{e}");
    // An owned array with an inverted axis: the same.
    let mut inv = a.clone();
    inv.invert_axis(attn::ndarray::Axis(1));
    assert!(inv.try_as_tensor_view().is_err());
    // A length-1 axis with a negative stride never moves: fine.
    let one = a.slice(s![2..3;-1, ..]);
    assert!(one.try_as_tensor_view().is_ok());
}

#[test]
fn results_as_ndarray() {
    let mut rng = Rng::new(6);
    let q = array(&mut rng, (10, 8));
    let k = array(&mut rng, (12, 8));
    let v = array(&mut rng, (12, 3));
    let out: Array2<f32> = attn::attention(&q, &k, &v)
        .unwrap()
        .into_ndarray_dim::<Ix2>()
        .unwrap();
    assert_eq!(out.dim(), (10, 3));
    let expected = reference::attention(&q, &k, &v, None).unwrap();
    assert_close(&out, &expected);
    let expected: ArrayD<f64> = expected.into();
    assert!((out[[9, 2]] as f64 - expected[[9, 2]]).abs() < 1e-5);

    // Batched matmul into an Array3; the wrong rank is an error, not a panic.
    let a = array(&mut rng, (2, 5, 7));
    let b = array(&mut rng, (2, 7, 4));
    let m = attn::matmul(&a, &b).unwrap();
    assert!(m.clone().into_ndarray_dim::<Ix2>().is_err());
    let m: Array3<f32> = m.into_ndarray_dim::<Ix3>().unwrap();
    let r = reference::matmul(&a, &b).unwrap();
    assert_close(&m, &r);

    // Elementwise primitives on arrays; the result converts without a copy.
    let x = array(&mut rng, (3, 4, 5, 6));
    let y: Array4<f32> = array(&mut rng, (6, 5, 4, 3)).reversed_axes();
    let sum = attn::add(&x, &y).unwrap();
    let ptr = sum.as_slice().as_ptr();
    let sum = sum.into_ndarray();
    assert_eq!(sum.as_ptr(), ptr);
    assert_eq!(sum.shape(), &[3, 4, 5, 6]);
    assert_eq!(sum[[1, 2, 3, 4]], x[[1, 2, 3, 4]] + y[[1, 2, 3, 4]]);
}

#[test]
fn tensors_as_ndarray_views() {
    let t = Tensor::from_vec(&[2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
    let tt = t.view().t().unwrap();
    let a = tt.as_ndarray();
    assert_eq!(a.shape(), &[3, 2]);
    assert_eq!(a.strides(), &[1, 3]);
    assert_eq!(a[[2, 1]], 5.0);
    assert_eq!(a.as_ptr(), t.as_slice().as_ptr());
    assert_eq!(t.as_ndarray()[[1, 0]], 3.0);
    assert_eq!(t.to_ndarray().into_raw_vec_and_offset().0, t.as_slice());
    // Round trip through ndarray and back, borrowed.
    assert_eq!(a.as_tensor_view().to_tensor(), tt.to_tensor());
    // Strided views with an offset and a broadcast (zero) stride.
    let data: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let v = attn::TensorView::from_strided(&data, &[3, 2], &[4, 0], 1).unwrap();
    assert_eq!(
        v.as_ndarray().iter().copied().collect::<Vec<_>>(),
        [1.0, 1.0, 5.0, 5.0, 9.0, 9.0]
    );
}

#[test]
fn other_storages_and_f64() {
    let mut rng = Rng::new(7);
    let q = array(&mut rng, (8, 4));
    let shared: ArcArray<f32, Ix2> = q.clone().into_shared();
    assert_borrows(&shared, shared.as_ptr());
    let cow = CowArray::from(q.view());
    assert_borrows(&cow, q.as_ptr());
    let out = attn::softmax(&shared).unwrap();
    assert_eq!(out, attn::softmax(&cow).unwrap());
    assert_close(&out, &reference::softmax(&q).unwrap());
    // An ArcArray sliced in place keeps its (shared) allocation: borrowed.
    let gappy = shared.clone().slice_move(s![.., ..;2]);
    assert!(gappy.try_as_tensor_view().is_ok());
    // f64 arrays work with the f64 reference (the kernels are f32).
    let x = q.mapv(f64::from);
    let r = reference::softmax(&x.t()).unwrap();
    assert_eq!(r.shape(), &[4, 8]);
    // Empty arrays are empty views.
    let empty = Array2::<f32>::zeros((0, 5));
    assert_eq!(empty.as_tensor_view().len(), 0);
    assert_eq!(attn::softmax(&empty).unwrap().shape(), &[0, 5]);
    // A wrong shape is the usual error naming the arguments.
    let e = attn::attention(&q, &array(&mut rng, (8, 5)), &q).unwrap_err();
    assert!(e.to_string().contains("[8, 5]"), "{e}");
}

/// The example of the guide's "ndarray interop" section (docs/guide/api.md), verbatim.
#[test]
fn readme_example() {
    fn main() -> Result<(), attn::Error> {
        let q = Array2::<f32>::from_shape_fn((128, 64), |(i, j)| ((i * 64 + j) % 7) as f32 * 0.1);
        let k_t = Array2::<f32>::from_shape_fn((64, 128), |(i, j)| ((i + j) % 5) as f32 * 0.1);
        let v = Array2::<f32>::from_elem((128, 32), 0.5);

        // `k_t.t()` is a transposed view: passed as strides [1, 128], nothing is copied.
        let out: Array2<f32> = attn::attention(&q, &k_t.t(), &v)?.into_ndarray_dim::<Ix2>()?;
        assert_eq!(out.dim(), (128, 32));

        // A borrowed view with gaps (every other row) or negative strides: `ViewOrCopy` copies it.
        let every_other = q.slice(s![..;2, ..]);
        let out = attn::attention(&ViewOrCopy::new(&every_other)?, &k_t.t(), &v)?;
        assert_eq!(out.shape(), &[64, 32]);
        Ok(())
    }
    main().unwrap();
}

#[test]
fn half_precision_arrays_and_transposed_views() {
    use attn::half::{bf16, f16};
    let mut rng = Rng::new(77);
    let q = array(&mut rng, (9, 16)).mapv(bf16::from_f32);
    let kt = array(&mut rng, (16, 21)).mapv(bf16::from_f32); // K stored transposed
    let v = array(&mut rng, (21, 5)).mapv(bf16::from_f32);
    let k = kt.t();
    let out = attn::attention(&q, &k, &v).unwrap();
    let wide = |a: attn::ndarray::ArrayView2<'_, bf16>| a.mapv(|x| f64::from(f32::from(x)));
    let expected = reference::attention(&wide(q.view()), &wide(k), &wide(v.view()), None).unwrap();
    let c = reference::compare(&out, &expected, 2.0f64.powi(-8), 1e-5).unwrap();
    assert!(c.ok, "bf16 ndarray: {c:?}");
    let qh = q.mapv(|x| f16::from_f32(f32::from(x)));
    let kh = kt.mapv(|x| f16::from_f32(f32::from(x)));
    let vh = v.mapv(|x| f16::from_f32(f32::from(x)));
    let out: Array2<f16> = attn::attention(&qh, &kh.t(), &vh)
        .unwrap()
        .into_ndarray_dim::<Ix2>()
        .unwrap();
    assert_eq!(out.dim(), (9, 5));
}
