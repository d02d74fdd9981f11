//! Kernels are reentrant: many threads calling them on shared inputs get bit-identical results.

mod common;

use common::Rng;
use std::sync::Arc;

#[test]
fn eight_threads_thousand_calls_bit_identical() {
    let mut rng = Rng::new(77);
    let q = Arc::new(rng.tensor(&[19, 24]));
    let k = Arc::new(rng.tensor(&[23, 24]));
    let v = Arc::new(rng.tensor(&[23, 9]));
    let expected = attn::attention(&*q, &*k, &*v).unwrap();
    let expected_sm = attn::softmax(&*q).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (q, k, v) = (q.clone(), k.clone(), v.clone());
            let (expected, expected_sm) = (expected.clone(), expected_sm.clone());
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let out = attn::attention(&*q, &*k, &*v).unwrap();
                    assert_eq!(out.as_slice(), expected.as_slice(), "thread {t} call {i}");
                    if i % 10 == 0 {
                        assert_eq!(
                            attn::softmax(&*q).unwrap().as_slice(),
                            expected_sm.as_slice()
                        );
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
