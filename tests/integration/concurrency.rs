//! Kernels are reentrant: many threads calling them on shared inputs get bit-identical results.

use crate::common::Rng;
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

#[test]
fn thread_counts_give_identical_results_and_can_change_while_calls_run() {
    let mut rng = Rng::new(78);
    // Big enough to be split: 2 x 3 heads x 200 queries.
    let q = Arc::new(rng.tensor(&[2, 3, 200, 32]));
    let k = Arc::new(rng.tensor(&[2, 3, 150, 32]));
    let v = Arc::new(rng.tensor(&[2, 3, 150, 16]));
    attn::set_num_threads(1);
    let one = attn::attention(&*q, &*k, &*v).unwrap();
    let expected = attn::reference::attention(&*q, &*k, &*v, None).unwrap();
    crate::common::assert_close(&one, &expected);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                attn::set_num_threads(n);
                n = n % 4 + 1;
                std::thread::yield_now();
            }
        })
    };
    for _ in 0..20 {
        let out = attn::attention(&*q, &*k, &*v).unwrap();
        assert_eq!(out.as_slice(), one.as_slice());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    attn::set_num_threads(0);
}
