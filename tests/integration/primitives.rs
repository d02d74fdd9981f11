//! Every primitive alone, against the f64 reference, plus their error paths.

use crate::common::{Rng, assert_close, assert_close_tol};
use attn::{Error, Tensor, reference};

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

/// The register-tiled matmul kernel: every remainder of its tiles (rows of 4/8, columns of
/// 24/48, blocks of 192 packed columns), long inner dims, batches and transposed views.
#[test]
fn matmul_tile_remainders_and_strides() {
    let mut rng = Rng::new(26);
    for &(m, k, n) in &[
        (4, 8, 24),
        (5, 3, 25),
        (8, 1, 48),
        (193, 70, 200),
        (7, 300, 385),
        (64, 513, 191),
        (1, 9, 400),
    ] {
        let (a, b) = (rng.tensor(&[m, k]), rng.tensor(&[k, n]));
        let atol = (k as f64 * f64::from(f32::EPSILON)).max(1e-6);
        let expected = reference::matmul(&a, &b).unwrap();
        assert_close_tol(&attn::matmul(&a, &b).unwrap(), &expected, 1e-4, atol);
        // Both operands as transposed views (unit stride on the other dim).
        let (at, bt) = (rng.tensor(&[k, m]), rng.tensor(&[n, k]));
        let (av, bv) = (at.view().t().unwrap(), bt.view().t().unwrap());
        let expected = reference::matmul(&av, &bv).unwrap();
        assert_close_tol(&attn::matmul(&av, &bv).unwrap(), &expected, 1e-4, atol);
    }
    let (a, b) = (rng.tensor(&[3, 37, 29]), rng.tensor(&[3, 29, 50]));
    assert_close_tol(
        &attn::matmul(&a, &b).unwrap(),
        &reference::matmul(&a, &b).unwrap(),
        1e-4,
        1e-5,
    );
}

/// Softmax rows of every length around the vector widths, long rows, transposed views, and the
/// NaN / infinity rows (a NaN or +inf poisons its row only; -inf entries get probability 0).
#[test]
fn softmax_row_lengths_strides_and_special_values() {
    let mut rng = Rng::new(27);
    for n in [1usize, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000] {
        let x = rng.tensor(&[3, n]).map(|v| v * 20.0);
        assert_close(
            &attn::softmax(&x).unwrap(),
            &reference::softmax(&x).unwrap(),
        );
    }
    let xt = rng.tensor(&[45, 6]);
    let v = xt.view().t().unwrap();
    assert_close(
        &attn::softmax(&v).unwrap(),
        &reference::softmax(&v).unwrap(),
    );
    let x = Tensor::from_vec(
        &[4, 3],
        vec![
            1.,
            f32::NAN,
            2.,
            1.,
            f32::INFINITY,
            2.,
            f32::NEG_INFINITY,
            0.,
            f32::NEG_INFINITY,
            3.,
            2.,
            1.,
        ],
    )
    .unwrap();
    let y = attn::softmax(&x).unwrap();
    let y = y.as_slice();
    assert!(y[..6].iter().all(|v| v.is_nan()), "{y:?}");
    assert_eq!(&y[6..9], &[0.0, 1.0, 0.0]);
    assert!(y[9..].iter().all(|v| v.is_finite()));
}

/// Views whose rows are contiguous but not adjacent (padded leading strides, an offset, a
/// broadcast row), read in place by the kernel, and rows with a stride of 2, copied.
#[test]
fn softmax_strided_views() {
    let mut rng = Rng::new(29);
    let buf = rng.tensor(&[4000]);
    let data = buf.as_slice();
    for n in [5usize, 16, 37, 64] {
        for (shape, strides, offset) in [
            (vec![3, n], vec![n + 7, 1], 3),
            (vec![2, 3, n], vec![4 * (n + 5), n + 5, 1], 11),
            (vec![2, 2, 3, n], vec![0, 3 * n + 2, n, 1], 1),
            (vec![3, n], vec![2 * n + 1, 2], 0),
        ] {
            let v = attn::TensorView::from_strided(data, &shape, &strides, offset).unwrap();
            assert_close(
                &attn::softmax(&v).unwrap(),
                &reference::softmax(&v).unwrap(),
            );
        }
    }
}

/// Huge finite logits (where `m * log2(e)` is not exact in f32) still give the reference,
/// for rows shorter and longer than a vector step, in rows next to ordinary ones.
#[test]
fn softmax_huge_logits() {
    for n in [3usize, 40] {
        for big in [4.0e6f32, 1.0e7, 1.0e10, 1.0e30, -1.0e30, f32::MAX] {
            let mut rng = Rng::new(28);
            let mut x = rng.tensor(&[3, n]);
            let v = x.as_mut_slice();
            v[n] = big;
            v[n + 1] = big * 0.5;
            v[n + 2] = big - big.abs() * 1e-6;
            assert_close(
                &attn::softmax(&x).unwrap(),
                &reference::softmax(&x).unwrap(),
            );
        }
    }
    let x = Tensor::from_vec(&[1, 3], vec![1.0e30, 0.0, -1.0e30]).unwrap();
    assert_eq!(attn::softmax(&x).unwrap().as_slice(), &[1.0, 0.0, 0.0]);
}
