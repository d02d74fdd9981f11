use super::*;

fn iota(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32).collect()
}

#[test]
fn from_vec_checks_length() {
    let t = Tensor::from_vec(&[2, 3], iota(6)).unwrap();
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.rank(), 2);
    assert_eq!(t.len(), 6);
    assert_eq!(t.strides(), vec![3, 1]);
    assert_eq!(t.get(&[1, 2]), Some(5.0));
    assert_eq!(t.get(&[2, 0]), None);
    assert_eq!(t.get(&[1]), None);
    let e = Tensor::from_vec(&[2, 3], iota(5)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Tensor::from_vec: shape [2, 3] needs 6 elements but data has 5"
    );
}

#[test]
fn scalar_and_empty_tensors() {
    let s = Tensor::from_vec(&[], vec![7.0f64]).unwrap();
    assert_eq!(s.rank(), 0);
    assert_eq!(s.get(&[]), Some(7.0));
    assert!(Tensor::<f32>::from_vec(&[], vec![]).is_err());
    let e = Tensor::<f32>::zeros(&[3, 0, 2]).unwrap();
    assert!(e.is_empty());
    assert_eq!(e.view().iter().count(), 0);
    assert!(e.view().is_contiguous());
    // Huge sizes next to a zero are fine; the count is 0.
    let big = Tensor::<f32>::zeros(&[0, usize::MAX, usize::MAX]).unwrap();
    assert_eq!(big.len(), 0);
}

#[test]
fn overflow_and_rank_limits() {
    let e = Tensor::<f32>::zeros(&[usize::MAX, 2]).unwrap_err();
    assert!(matches!(e, Error::Overflow { .. }), "{e}");
    let e = Tensor::<f32>::zeros(&[1; MAX_RANK + 1]).unwrap_err();
    assert!(matches!(e, Error::InvalidRank { .. }), "{e}");
    assert!(Tensor::<f32>::zeros(&[1; MAX_RANK]).is_ok());
}

#[test]
fn full_map_into_vec() {
    let t = Tensor::full(&[2, 2], 1.5f32).unwrap();
    assert_eq!(t.as_slice(), &[1.5; 4]);
    let d = t.map(|x| f64::from(x) * 2.0);
    assert_eq!(d.as_slice(), &[3.0; 4]);
    assert_eq!(t.to_f64().as_slice(), &[1.5; 4]);
    assert_eq!(t.into_vec(), vec![1.5; 4]);
}

#[test]
fn view_transpose_and_copy() {
    let t = Tensor::from_vec(&[2, 3], iota(6)).unwrap();
    let v = t.view();
    assert!(v.is_contiguous());
    assert_eq!(v.as_contiguous_slice(), Some(t.as_slice()));
    let tt = v.t().unwrap();
    assert_eq!(tt.shape(), &[3, 2]);
    assert_eq!(tt.strides(), &[1, 3]);
    assert!(!tt.is_contiguous());
    assert_eq!(tt.as_contiguous_slice(), None);
    assert_eq!(tt.get(&[2, 1]), Some(5.0));
    assert_eq!(tt.to_tensor().as_slice(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(tt.iter().len(), 6);
    assert!(v.transpose(0, 2).is_err());
    let s = Tensor::from_vec(&[3], iota(3)).unwrap();
    let e = s.view().t().unwrap_err();
    assert!(e.to_string().contains("[3]"), "{e}");
}

#[test]
fn strided_views() {
    let data = iota(12);
    // Every other column of a [3, 4] matrix, starting at column 1.
    let v = TensorView::from_strided(&data, &[3, 2], &[4, 2], 1).unwrap();
    assert_eq!(v.to_tensor().as_slice(), &[1.0, 3.0, 5.0, 7.0, 9.0, 11.0]);
    assert_eq!(v.offset(), 1);
    assert_eq!(v.data().len(), 12);
    // Reaches element 12: out of bounds.
    let e = TensorView::from_strided(&data, &[3, 2], &[4, 2], 2).unwrap_err();
    assert!(matches!(e, Error::InvalidView { .. }));
    assert!(e.to_string().contains("[3, 2]"), "{e}");
    // Overflowing strides.
    let e = TensorView::from_strided(&data, &[2, 2], &[usize::MAX, 1], 0).unwrap_err();
    assert!(matches!(e, Error::Overflow { .. }), "{e}");
    // Mismatched lengths.
    assert!(TensorView::from_strided(&data, &[2, 2], &[1], 0).is_err());
    // Zero-sized dims: nothing reachable, any offset fine.
    let z = TensorView::from_strided(&data, &[0, 5], &[100, 100], 1000).unwrap();
    assert_eq!(z.len(), 0);
    // Broadcast (zero stride) is fine for read-only views.
    let b = TensorView::from_strided(&data, &[3, 2], &[0, 1], 0).unwrap();
    assert_eq!(b.to_tensor().as_slice(), &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    // Scalar view at an offset.
    let s = TensorView::from_strided(&data, &[], &[], 11).unwrap();
    assert_eq!(s.get(&[]), Some(11.0));
    assert!(TensorView::from_strided(&data, &[], &[], 12).is_err());
    assert!(TensorView::new(&data, &[5, 2]).is_err());
}

#[test]
fn mutable_views_reject_aliasing() {
    let mut data = vec![0.0f32; 12];
    assert!(TensorViewMut::from_strided(&mut data, &[3, 2], &[0, 1], 0).is_err());
    assert!(TensorViewMut::from_strided(&mut data, &[3, 3], &[2, 1], 0).is_err());
    assert!(TensorViewMut::from_strided(&mut data, &[3, 2], &[1, 3], 0).is_ok());
    assert!(TensorViewMut::from_strided(&mut data, &[1, 4], &[0, 3], 0).is_ok());
    let e = TensorViewMut::from_strided(&mut data, &[3, 2], &[4, 2], 2).unwrap_err();
    assert!(matches!(e, Error::InvalidView { .. }));
    let mut v = TensorViewMut::from_strided(&mut data, &[2, 3], &[1, 4], 0).unwrap();
    v.fill(1.0);
    *v.get_mut(&[1, 2]).unwrap() = 9.0;
    assert_eq!(v.get(&[1, 2]), Some(9.0));
    assert!(v.get_mut(&[2, 0]).is_none());
    assert_eq!(
        v.as_view().to_tensor().as_slice(),
        &[1.0, 1.0, 1.0, 1.0, 1.0, 9.0]
    );
    assert_eq!(
        data,
        vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 9.0, 0.0, 0.0]
    );
}

#[test]
fn copy_from_transposed() {
    let src = Tensor::from_vec(&[2, 3], iota(6)).unwrap();
    let mut dst = Tensor::<f32>::zeros(&[3, 2]).unwrap();
    let mut dv = dst.view_mut();
    assert!(dv.is_contiguous());
    dv.copy_from(&src.view().t().unwrap()).unwrap();
    let e = dv.copy_from(&src).unwrap_err();
    assert!(e.to_string().contains("[2, 3]") && e.to_string().contains("[3, 2]"));
    assert_eq!(dv.as_contiguous_slice_mut().map(|s| s.len()), Some(6));
    assert_eq!(dst.as_slice(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
}

#[test]
fn as_tensor_view_impls() {
    fn shape_of<X: AsTensorView<f32>>(x: &X) -> Vec<usize> {
        x.as_tensor_view().shape().to_vec()
    }
    let t = Tensor::from_vec(&[2, 3], iota(6)).unwrap();
    assert_eq!(shape_of(&t), vec![2, 3]);
    assert_eq!(shape_of(&&t), vec![2, 3]);
    assert_eq!(shape_of(&t.view().t().unwrap()), vec![3, 2]);
    let mut m = t.clone();
    assert_eq!(shape_of(&m.view_mut()), vec![2, 3]);
}
