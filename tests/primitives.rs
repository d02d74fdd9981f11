//! Every primitive alone, against the f64 reference, plus their error paths.

mod common;

use attn::{Error, Tensor, reference};
use common::{Rng, assert_close};

#[test]
fn matmul_2d_and_batched() {
    let mut rng = Rng::new(21);
    for &(m, k, n) in &[
        (1, 1, 1),
        (3, 5, 7),
        (17, 1, 9),
        (64, 64, 64),
        (129, 31, 67),
    ] {
        let (a, b) = (rng.tensor(&[m, k]), rng.tensor(&[k, n]));
        assert_close(
            &attn::matmul(&a, &b).unwrap(),
            &reference::matmul(&a, &b).unwrap(),
        );
    }
    let (a, b) = (rng.tensor(&[4, 6, 5]), rng.tensor(&[4, 5, 3]));
    assert_close(
        &attn::matmul(&a, &b).unwrap(),
        &reference::matmul(&a, &b).unwrap(),
    );
    // A transposed view as the right operand.
    let bt = rng.tensor(&[3, 5]);
    let a = rng.tensor(&[6, 5]);
    let view = bt.view().t().unwrap();
    assert_close(
        &attn::matmul(&a, &view).unwrap(),
        &reference::matmul(&a, &view).unwrap(),
    );
}

#[test]
fn matmul_with_empty_inner_dim_is_zeros() {
    let a = Tensor::zeros(&[3, 0]).unwrap();
    let b = Tensor::zeros(&[0, 2]).unwrap();
    let c = attn::matmul(&a, &b).unwrap();
    assert_eq!(c.shape(), &[3, 2]);
    assert!(c.as_slice().iter().all(|&x| x == 0.0));
}

#[test]
fn transpose_ranks_2_to_4() {
    let mut rng = Rng::new(22);
    for shape in [&[5usize, 3][..], &[2, 7, 4], &[2, 3, 5, 6]] {
        let x = rng.tensor(shape);
        let t = attn::transpose(&x).unwrap();
        assert_close(&t, &reference::transpose(&x).unwrap());
        // Exact: transposition moves values.
        assert_eq!(attn::transpose(&t).unwrap().as_slice(), x.as_slice());
    }
}

#[test]
fn softmax_ranks_1_to_4() {
    let mut rng = Rng::new(23);
    for shape in [
        &[7usize][..],
        &[5, 33],
        &[2, 3, 9],
        &[2, 2, 3, 17],
        &[1, 512],
    ] {
        let x = rng.tensor(shape);
        let y = attn::softmax(&x).unwrap();
        assert_close(&y, &reference::softmax(&x).unwrap());
        let last = *shape.last().unwrap();
        for row in y.as_slice().chunks(last) {
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn softmax_is_numerically_stable() {
    let x = Tensor::from_vec(
        &[2, 3],
        vec![1000.0, 1001.0, 1002.0, -1000.0, -1001.0, -1002.0],
    )
    .unwrap();
    let y = attn::softmax(&x).unwrap();
    assert!(y.as_slice().iter().all(|v| v.is_finite()));
    assert_close(&y, &reference::softmax(&x).unwrap());
}

#[test]
fn elementwise_add_mul_scale() {
    let mut rng = Rng::new(24);
    for shape in [&[9usize][..], &[4, 5], &[2, 3, 4], &[2, 2, 3, 5]] {
        let (a, b) = (rng.tensor(shape), rng.tensor(shape));
        assert_close(
            &attn::add(&a, &b).unwrap(),
            &reference::add(&a, &b).unwrap(),
        );
        assert_close(
            &attn::mul(&a, &b).unwrap(),
            &reference::mul(&a, &b).unwrap(),
        );
        assert_close(
            &attn::scale(&a, -0.375).unwrap(),
            &reference::scale(&a, -0.375).unwrap(),
        );
    }
    // Strided operand.
    let a = rng.tensor(&[4, 6]);
    let bt = rng.tensor(&[6, 4]);
    let b = bt.view().t().unwrap();
    assert_close(
        &attn::add(&a, &b).unwrap(),
        &reference::add(&a, &b).unwrap(),
    );
}

#[test]
fn error_paths() {
    let mut rng = Rng::new(25);
    let a = rng.tensor(&[2, 3]);
    let b = rng.tensor(&[4, 5]);
    let e = attn::matmul(&a, &b).unwrap_err().to_string();
    assert!(
        e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 5]"),
        "{e}"
    );

    let v = rng.tensor(&[3]);
    assert!(matches!(
        attn::matmul(&v, &v),
        Err(Error::InvalidRank { .. }) | Err(Error::ShapeMismatch { .. })
    ));
    let r4 = rng.tensor(&[1, 2, 3, 3]);
    assert!(attn::matmul(&r4, &r4).is_err());

    let e = attn::add(&a, &b).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("[2, 3]") && e.contains("[4, 5]"),
        "{e}"
    );
    let e = attn::mul(&a, &b).unwrap_err().to_string();
    assert!(e.contains("mul"), "{e}");

    let e = attn::transpose(&v).unwrap_err().to_string();
    assert!(e.contains("transpose") && e.contains("[3]"), "{e}");
    let r5 = rng.tensor(&[1, 1, 1, 1, 2]);
    assert!(attn::transpose(&r5).is_err());
    assert!(attn::softmax(&r5).is_err());
    assert!(attn::scale(&r5, 2.0).is_err());
    let scalar = Tensor::from_vec(&[], vec![1.0]).unwrap();
    assert!(attn::softmax(&scalar).is_err());

    let e = Tensor::from_vec(&[2, 3], vec![0.0; 5])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[2, 3]") && e.contains('6') && e.contains('5'),
        "{e}"
    );
    assert!(Tensor::<f32>::zeros(&[usize::MAX, 2]).is_err());
}
