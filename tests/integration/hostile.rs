//! Hostile values: huge logits, infinities and NaN give documented results, never a crash or a
//! hang.
//!
//! Documented behaviour (see the crate docs of `attn::attention`):
//! - logits up to +-1e30 are handled exactly like moderate ones (the row max is subtracted
//!   before `exp`), so a row whose largest logit dominates returns that key's value row;
//! - a NaN in q (or in a key that a row attends to) makes the affected output rows NaN, and
//!   only those rows;
//! - an infinite logit has no well-defined softmax (inf - inf): the affected rows are NaN.

use crate::common::{Rng, assert_close};
use attn::{Tensor, reference};

#[test]
fn logits_up_to_1e30_are_exact() {
    // q . k / sqrt(4) reaches +-1e30: softmax is one-hot on the largest logit.
    let q = Tensor::from_vec(&[2, 4], vec![1e15, 0., 0., 0., -1e15, 0., 0., 0.]).unwrap();
    let k = Tensor::from_vec(
        &[3, 4],
        vec![2e15, 0., 0., 0., 1e15, 0., 0., 0., -2e15, 0., 0., 0.],
    )
    .unwrap();
    let v = Tensor::from_vec(&[3, 2], vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let out = attn::attention(&q, &k, &v).unwrap();
    assert_eq!(out.as_slice(), &[1., 2., 5., 6.]);
    assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());
}

#[test]
fn large_but_finite_inputs_match_the_reference() {
    let mut rng = Rng::new(99);
    let q = rng.tensor(&[17, 8]).map(|x| x * 1e3);
    let k = rng.tensor(&[19, 8]).map(|x| x * 1e3);
    let v = rng.tensor(&[19, 5]);
    let out = attn::attention(&q, &k, &v).unwrap();
    assert!(out.as_slice().iter().all(|x| x.is_finite()));
    assert_close(&out, &reference::attention(&q, &k, &v, None).unwrap());
}

#[test]
fn nan_in_a_query_row_poisons_only_that_row() {
    let mut rng = Rng::new(5);
    let mut q = rng.tensor(&[6, 8]);
    q.as_mut_slice()[2 * 8 + 3] = f32::NAN;
    let (k, v) = (rng.tensor(&[9, 8]), rng.tensor(&[9, 4]));
    let out = attn::attention(&q, &k, &v).unwrap();
    for (r, row) in out.as_slice().chunks(4).enumerate() {
        if r == 2 {
            assert!(row.iter().all(|x| x.is_nan()), "row {r}: {row:?}");
        } else {
            assert!(row.iter().all(|x| x.is_finite()), "row {r}: {row:?}");
        }
    }
}

#[test]
fn infinities_give_nan_rows_not_crashes() {
    let mut rng = Rng::new(6);
    let mut q = rng.tensor(&[4, 8]);
    q.as_mut_slice()[8] = f32::INFINITY; // row 1
    let mut k = rng.tensor(&[5, 8]);
    k.as_mut_slice()[0] = f32::NEG_INFINITY;
    let v = rng.tensor(&[5, 3]);
    let out = attn::attention(&q, &k, &v).unwrap();
    assert!(out.as_slice()[3..6].iter().all(|x| x.is_nan()));
    // softmax over a row holding +inf: undefined, NaN, but the call returns.
    let x = Tensor::from_vec(&[2, 3], vec![1., f32::INFINITY, 2., 1., 2., 3.]).unwrap();
    let y = attn::softmax(&x).unwrap();
    assert!(y.as_slice()[..3].iter().any(|x| x.is_nan()));
    assert!(y.as_slice()[3..].iter().all(|x| x.is_finite()));
}

#[test]
fn zero_sized_and_overflowing_shapes() {
    // Primitives on empty operands give empty results; attention needs positive sizes.
    let e = Tensor::zeros(&[0, 4]).unwrap();
    assert_eq!(attn::softmax(&e).unwrap().shape(), &[0, 4]);
    assert_eq!(attn::transpose(&e).unwrap().shape(), &[4, 0]);
    assert!(attn::attention(&e, &e, &e).is_err());
    // Shape products that overflow usize are errors.
    assert!(Tensor::<f32>::zeros(&[usize::MAX / 2, 3]).is_err());
    assert!(Tensor::<f32>::zeros(&[1 << 40, 1 << 40]).is_err());
}
