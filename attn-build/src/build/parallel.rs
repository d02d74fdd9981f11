//! Running a build's compilations on worker threads: a shared queue handed out in order, at most
//! `jobs` threads, results kept in input order whatever order they finish in.

use crate::Error;
use std::{
    env,
    num::NonZeroUsize,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
};

/// The number of worker threads when not given: Cargo's `NUM_JOBS` (set for build scripts, from
/// `-j`), else the parallelism the machine offers.
pub(super) fn default_jobs() -> usize {
    env::var("NUM_JOBS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            thread::available_parallelism()
                .map(NonZeroUsize::get)
                .unwrap_or(1)
        })
}

/// Runs `work` on every item with at most `jobs` threads (none when there is at most one item or
/// one job: then on this thread). Each thread gets its own state from `init` (created on the
/// thread: it need not be `Send`). `done` is called on the worker as each item finishes, with its
/// index and result.
///
/// Items are handed out in order. After a failure, items after it are not started, but those
/// before it all finish, so the error returned is the first in item order, as a sequential run
/// would report it.
pub(super) fn run_in_order<T, R, S>(
    items: &[T],
    jobs: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) -> Result<R, Error> + Sync,
    done: impl Fn(usize, &Result<R, Error>) + Sync,
) -> Result<Vec<R>, Error>
where
    T: Sync,
    R: Send,
{
    let workers = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let first_failure = AtomicUsize::new(usize::MAX);
    let slots: Vec<Mutex<Option<Result<R, Error>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    let worker = || {
        let mut state = init();
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= items.len() || i > first_failure.load(Ordering::SeqCst) {
                break;
            }
            let result = work(&mut state, &items[i]);
            if result.is_err() {
                first_failure.fetch_min(i, Ordering::SeqCst);
            }
            done(i, &result);
            *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        }
    };
    if workers == 1 {
        worker();
    } else {
        let panicked = thread::scope(|s| {
            let handles: Vec<_> = (0..workers).map(|_| s.spawn(worker)).collect();
            handles
                .into_iter()
                .map(|h| h.join().is_err())
                .fold(false, |a, b| a | b)
        });
        if panicked {
            return Err(Error::Toolchain(
                "a kernel compilation thread panicked".into(),
            ));
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for slot in slots {
        match slot.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => return Err(e),
            // Not started: an earlier item failed, and was returned above.
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn square(x: &u64) -> Result<u64, Error> {
        // Later items finish first, so completion order differs from item order.
        thread::sleep(Duration::from_millis(20u64.saturating_sub(*x)));
        if *x == 7 || *x == 12 {
            Err(Error::Config(format!("item {x} failed")))
        } else {
            Ok(x * x)
        }
    }

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..7).collect();
        for jobs in [1, 2, 3, 16] {
            let out = run_in_order(&items, jobs, || (), |_, x| square(x), |_, _| {}).unwrap();
            assert_eq!(out, vec![0, 1, 4, 9, 16, 25, 36], "{jobs} jobs");
        }
        let none: Vec<u64> = Vec::new();
        assert!(
            run_in_order(&none, 4, || (), |_, x| square(x), |_, _| {})
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_first_error_in_item_order_is_returned() {
        let items: Vec<u64> = (0..16).collect();
        for jobs in [1, 3, 8] {
            let finished = Mutex::new(Vec::new());
            let e = run_in_order(
                &items,
                jobs,
                || (),
                |_, x| square(x),
                |i, _| finished.lock().unwrap().push(i),
            )
            .unwrap_err();
            assert_eq!(e.to_string(), "item 7 failed", "{jobs} jobs");
            let finished = finished.into_inner().unwrap();
            for i in 0..=7 {
                assert!(finished.contains(&i), "{i} not finished with {jobs} jobs");
            }
        }
    }

    #[test]
    fn each_thread_has_its_own_state() {
        let items: Vec<u64> = (0..32).collect();
        let threads = AtomicUsize::new(0);
        let seen = run_in_order(
            &items,
            4,
            || (threads.fetch_add(1, Ordering::SeqCst), 0u64),
            |(thread, count), _| {
                *count += 1;
                thread::sleep(Duration::from_millis(2));
                Ok((*thread, *count))
            },
            |_, _| {},
        )
        .unwrap();
        let threads = threads.into_inner();
        assert!((1..=4).contains(&threads), "{threads} states for 4 jobs");
        // Each state counts the items of its thread only, which it takes in increasing order.
        for t in 0..threads {
            let counts: Vec<u64> = seen.iter().filter(|s| s.0 == t).map(|s| s.1).collect();
            assert_eq!(
                counts,
                (1..=counts.len() as u64).collect::<Vec<_>>(),
                "{seen:?}"
            );
        }
    }
}
