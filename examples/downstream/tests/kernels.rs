//! The kernels of this crate against attn's f64 reference, on odd shapes; `_into` writes the same
//! values as the allocating form.

use attn::{Tensor, reference};
use attn_downstream_example::{heads, odd, odd_into, probs, probs_into, small};

/// Deterministic values in [-1, 1).
fn fill(xs: &mut [f32], seed: u64) {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for x in xs {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *x = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
    }
}

fn tensor(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_vec(shape, data.to_vec()).unwrap()
}

fn assert_close(shape: &[usize], actual: &[f32], expected: &Tensor<f64>) {
    let c = reference::compare(&tensor(shape, actual), expected, 1e-4, 1e-5).unwrap();
    assert!(c.ok, "{c:?}");
}

#[test]
fn odd_attention_matches_reference() {
    let mut q = Box::new([[0f32; 80]; 37]);
    let mut k = Box::new([[0f32; 80]; 53]);
    let mut v = Box::new([[0f32; 24]; 53]);
    fill(q.as_flattened_mut(), 1);
    fill(k.as_flattened_mut(), 2);
    fill(v.as_flattened_mut(), 3);
    let out = odd(&q, &k, &v);
    let expected = reference::attention(
        &tensor(&[37, 80], q.as_flattened()),
        &tensor(&[53, 80], k.as_flattened()),
        &tensor(&[53, 24], v.as_flattened()),
        None,
    )
    .unwrap();
    assert_close(&[37, 24], out.as_flattened(), &expected);

    let mut into = [[f32::NAN; 24]; 37];
    odd_into(&q, &k, &v, &mut into);
    assert_eq!(into, *out);
}

#[test]
fn composed_softmax_matches_reference() {
    let mut q = [[0f32; 16]; 19];
    let mut k = [[0f32; 16]; 23];
    fill(q.as_flattened_mut(), 4);
    fill(k.as_flattened_mut(), 5);
    let out = probs(&q, &k);
    let (qt, kt) = (
        tensor(&[19, 16], q.as_flattened()),
        tensor(&[23, 16], k.as_flattened()),
    );
    let scores = reference::matmul(&qt.to_f64(), &reference::transpose(&kt).unwrap()).unwrap();
    let expected = reference::softmax(&reference::scale(&scores, 0.3f32 as f64).unwrap()).unwrap();
    assert_close(&[19, 23], out.as_flattened(), &expected);
    for row in out.iter() {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    let mut into = [[0f32; 23]; 19];
    probs_into(&q, &k, &mut into);
    assert_eq!(into, *out);
}

#[test]
fn multi_head_with_explicit_scale() {
    let mut q = [[[[0f32; 16]; 9]; 3]; 2];
    let mut k = [[[[0f32; 16]; 11]; 3]; 2];
    let mut v = [[[[0f32; 5]; 11]; 3]; 2];
    fill(
        q.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        6,
    );
    fill(
        k.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        7,
    );
    fill(
        v.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        8,
    );
    let out = heads::multi_head(&q, &k, &v);
    let expected = reference::attention(
        &tensor(
            &[2, 3, 9, 16],
            q.as_flattened().as_flattened().as_flattened(),
        ),
        &tensor(
            &[2, 3, 11, 16],
            k.as_flattened().as_flattened().as_flattened(),
        ),
        &tensor(
            &[2, 3, 11, 5],
            v.as_flattened().as_flattened().as_flattened(),
        ),
        Some(0.2f32 as f64),
    )
    .unwrap();
    assert_close(
        &[2, 3, 9, 5],
        out.as_flattened().as_flattened().as_flattened(),
        &expected,
    );
    let mut into = [[[[0f32; 5]; 9]; 3]; 2];
    heads::multi_head_into(&q, &k, &v, &mut into);
    assert_eq!(into, *out);
}

#[test]
fn batched_matmul_vector_softmax_and_elementwise() {
    let mut a = [[[0f32; 7]; 5]; 3];
    let mut b = [[[0f32; 2]; 7]; 3];
    fill(a.as_flattened_mut().as_flattened_mut(), 9);
    fill(b.as_flattened_mut().as_flattened_mut(), 10);
    let out = heads::batched(&a, &b);
    let expected = reference::matmul(
        &tensor(&[3, 5, 7], a.as_flattened().as_flattened()),
        &tensor(&[3, 7, 2], b.as_flattened().as_flattened()),
    )
    .unwrap();
    assert_close(&[3, 5, 2], out.as_flattened().as_flattened(), &expected);

    let mut x = [0f32; 33];
    fill(&mut x, 11);
    let out = small::vector_softmax(&x);
    assert_close(
        &[33],
        &out[..],
        &reference::softmax(&tensor(&[33], &x)).unwrap(),
    );

    let mut p = [[0f32; 7]; 6];
    let mut r = [[0f32; 7]; 6];
    fill(p.as_flattened_mut(), 12);
    fill(r.as_flattened_mut(), 13);
    let out = small::mixed(&p, &r);
    let (pt, rt) = (
        tensor(&[6, 7], p.as_flattened()),
        tensor(&[6, 7], r.as_flattened()),
    );
    let expected = reference::mul(
        &reference::softmax(&reference::add(&pt, &rt).unwrap()).unwrap(),
        &pt.to_f64(),
    )
    .unwrap();
    assert_close(&[6, 7], out.as_flattened(), &expected);
    let mut into = [[0f32; 7]; 6];
    small::mixed_into(&p, &r, &mut into);
    assert_eq!(into, *out);

    let x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    assert_eq!(*small::copy(&x), x);
}

#[test]
fn kernels_run_concurrently() {
    let mut q = Box::new([[0f32; 80]; 37]);
    let mut k = Box::new([[0f32; 80]; 53]);
    let mut v = Box::new([[0f32; 24]; 53]);
    fill(q.as_flattened_mut(), 14);
    fill(k.as_flattened_mut(), 15);
    fill(v.as_flattened_mut(), 16);
    let first = odd(&q, &k, &v);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| odd(&q, &k, &v))).collect();
        for h in handles {
            assert_eq!(*h.join().unwrap(), *first);
        }
    });
}
