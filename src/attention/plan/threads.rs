//! Running a plan's items on threads: contiguous ranges of items of about equal cost.

use attn_runtime::Error;
use std::ops::Range;

/// Runs `f` over `n` jobs on up to `threads` threads (the calling thread and the pool's
/// workers), each thread taking a contiguous range of jobs of about equal total `cost(i)` and the
/// matching consecutive parts of `a` and `b` (`sizes(i)`: job `i`'s lengths in `a` and in `b`).
/// The first error is returned. Which thread runs a job does not change its result.
pub(super) fn parallel<A: Send, B: Send>(
    threads: usize,
    n: usize,
    sizes: impl Fn(usize) -> (usize, usize),
    cost: impl Fn(usize) -> u64,
    a: &mut [A],
    b: &mut [B],
    f: impl Fn(Range<usize>, &mut [A], &mut [B]) -> Result<(), Error> + Sync,
) -> Result<(), Error> {
    if threads <= 1 || n <= 1 {
        return f(0..n, a, b);
    }
    let ends = balanced_ends(&(0..n).map(cost).collect::<Vec<_>>(), threads);
    let mut chunks = Vec::with_capacity(threads);
    let (mut rest_a, mut rest_b) = (a, b);
    let mut start = 0;
    for end in ends {
        let (la, lb) = (start..end)
            .map(&sizes)
            .fold((0, 0), |(x, y), (p, q)| (x + p, y + q));
        let (ha, ta) = rest_a.split_at_mut(la);
        let (hb, tb) = rest_b.split_at_mut(lb);
        chunks.push((start..end, ha, hb));
        (rest_a, rest_b) = (ta, tb);
        start = end;
    }
    let f = &f;
    // The calling thread runs the first chunk; the pool's `threads - 1` workers the others.
    if let Some(pool) = crate::threads::pool(threads - 1) {
        let mut results: Vec<Result<(), Error>> = (0..chunks.len()).map(|_| Ok(())).collect();
        let mut jobs = chunks.into_iter().zip(results.iter_mut());
        let first = jobs.next();
        pool.in_place_scope(|s| {
            for ((range, ca, cb), slot) in jobs {
                s.spawn(move |_| *slot = f(range, ca, cb));
            }
            if let Some(((range, ca, cb), slot)) = first {
                *slot = f(range, ca, cb);
            }
        });
        return results.into_iter().collect();
    }
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(chunks.len());
        let mut chunks = chunks.into_iter();
        let first = chunks.next();
        for (range, ca, cb) in chunks {
            handles.push(s.spawn(move || f(range, ca, cb)));
        }
        let mut result = match first {
            Some((range, ca, cb)) => f(range, ca, cb),
            None => Ok(()),
        };
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(Error::Unsupported {
                    op: "attention",
                    message: "a worker thread panicked".into(),
                })
            });
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

/// The ends of at most `parts` contiguous, non-empty ranges covering `costs`, of about equal
/// total cost: range `k` ends where the cumulative cost comes nearest to `(k + 1) / parts` of
/// the total, so no range is more than one job's cost off its share.
fn balanced_ends(costs: &[u64], parts: usize) -> Vec<usize> {
    let n = costs.len();
    let total: u128 = costs.iter().map(|&c| u128::from(c)).sum();
    let mut ends = Vec::with_capacity(parts);
    let (mut acc, mut i) = (0u128, 0usize);
    for k in 1..parts {
        let goal = total * k as u128 / parts as u128;
        let start = i;
        // Take the next job while the range is empty or it brings the boundary nearer the goal.
        while i < n {
            let next = acc + u128::from(costs[i]);
            if i > start && next.abs_diff(goal) > acc.abs_diff(goal) {
                break;
            }
            (acc, i) = (next, i + 1);
        }
        if i == n {
            break;
        }
        ends.push(i);
    }
    ends.push(n);
    ends
}

#[cfg(test)]
mod tests {
    use super::balanced_ends;

    #[test]
    fn balanced_ends_split_by_cost() {
        assert_eq!(balanced_ends(&[1; 8], 2), [4, 8]);
        assert_eq!(balanced_ends(&[1, 2, 3, 4, 5, 6, 7, 8], 2), [6, 8]);
        assert_eq!(balanced_ends(&[5], 4), [1]);
        assert_eq!(balanced_ends(&[0, 0, 9, 0], 2), [2, 4]);
        assert_eq!(balanced_ends(&[1; 3], 3), [1, 2, 3]);
        let costs: Vec<u64> = (1..=16).collect();
        let ends = balanced_ends(&costs, 2);
        let first: u64 = costs[..ends[0]].iter().sum();
        assert!((first as f64 / 136.0 - 0.5).abs() < 0.05, "{ends:?}");
    }
}
