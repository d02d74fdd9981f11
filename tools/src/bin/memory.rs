//! Peak memory of one long single-head attention call, above its inputs and output.
//!
//! ```text
//! cargo run --release -p attn-tools --bin memory                        # S = 32768, D = 128, 1 thread
//! cargo run --release -p attn-tools --bin memory -- --threads 2
//! cargo run --release -p attn-tools --bin memory -- --seq 4096 --dim 64 --json
//! ```
//!
//! Allocates q, k, v and out (`[S, D]` each, 16 MiB apiece at the default size) and touches
//! them; runs a small warm-up call (so that one-time costs such as the first page of the
//! kernel's scratch are not what is measured; `--cold` skips it); resets the process's peak
//! resident set (`VmHWM`, by writing 5 to `/proc/self/clear_refs`) so that the baseline is the
//! current resident set with the four tensors in it; runs
//! `Attention::new().run_into(&q, &k, &v, &mut out.view_mut())`; and reads `VmHWM` again. The
//! difference is the peak extra memory of the call: kernel scratch, worker threads' stacks and
//! allocator arenas, anything the call allocates. Then a few output rows are checked against the
//! f64 reference. Linux only (it reads `/proc/self/status`).
//!
//! `--control` runs `Attention::run` instead, which allocates a new output tensor: the figure
//! should then grow by the size of one output (16 MiB at the default size), which checks that the
//! measurement sees allocations made by the call.
//!
//! With `--json`, the last line is one JSON object.

use attn::{Attention, Tensor, TensorView, reference};
use std::time::Instant;

/// The issue's bound: peak memory above inputs and output.
const LIMIT_MIB: f64 = 16.0;

struct Args {
    seq: usize,
    dim: usize,
    threads: usize,
    cold: bool,
    control: bool,
    json: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seq: 32768,
        dim: 128,
        threads: 1,
        cold: false,
        control: false,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .ok_or(format!("{name} needs a value"))?
                .parse::<usize>()
                .map_err(|e| format!("{name}: {e}"))
                .and_then(|n| {
                    if n == 0 {
                        Err(format!("{name} must be positive"))
                    } else {
                        Ok(n)
                    }
                })
        };
        match flag.as_str() {
            "--seq" => a.seq = num("--seq")?,
            "--dim" => a.dim = num("--dim")?,
            "--threads" => a.threads = num("--threads")?,
            "--cold" => a.cold = true,
            "--control" => a.control = true,
            "--json" => a.json = true,
            "-h" | "--help" => {
                return Err(
                    "usage: memory [--seq S] [--dim D] [--threads T] [--cold] [--control] [--json]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(a)
}

/// `VmHWM` (peak resident set) and `VmRSS` (current) of this process, in KiB.
fn vm() -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status ({e}); this tool is Linux-only"))?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or(format!("no {name} line in /proc/self/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Resets `VmHWM` to the current resident set (Linux >= 4.0). Returns whether it worked.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&a) {
        eprintln!("memory: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> Result<(), String> {
    let err = |e: attn::Error| e.to_string();
    attn::set_num_threads(a.threads);
    let (s, d) = (a.seq, a.dim);
    // Tensor::random writes every element; out is touched by the fill.
    let q = Tensor::random(&[s, d], 1).map_err(err)?;
    let k = Tensor::random(&[s, d], 2).map_err(err)?;
    let v = Tensor::random(&[s, d], 3).map_err(err)?;
    let mut out = Tensor::zeros(&[s, d]).map_err(err)?;
    out.as_mut_slice().fill(1.0);
    let tensors_mib = 4.0 * (s * d * 4) as f64 / (1024.0 * 1024.0);

    let before_warm = vm()?.1;
    if !a.cold {
        // Warm-up on the first rows only: same kernel, same scratch shapes, little work.
        let rows = s.min(64);
        let (qs, ks, vs) = (
            TensorView::new(&q.as_slice()[..rows * d], &[rows, d]).map_err(err)?,
            TensorView::new(&k.as_slice()[..rows * d], &[rows, d]).map_err(err)?,
            TensorView::new(&v.as_slice()[..rows * d], &[rows, d]).map_err(err)?,
        );
        std::hint::black_box(Attention::new().run(&qs, &ks, &vs).map_err(err)?);
    }
    let reset = reset_peak();
    let (hwm0, rss0) = vm()?;
    // Without the reset, VmHWM may still hold an earlier, higher peak: the figure below would
    // then be a lower bound, and is reported as such.
    let base = if reset { hwm0 } else { rss0 };

    let t = Instant::now();
    if a.control {
        out = Attention::new().run(&q, &k, &v).map_err(err)?;
    } else {
        Attention::new()
            .run_into(&q, &k, &v, &mut out.view_mut())
            .map_err(err)?;
    }
    let secs = t.elapsed().as_secs_f64();
    let (hwm1, rss1) = vm()?;
    let peak_extra = mib(hwm1.saturating_sub(base));
    let after_extra = mib(rss1) - mib(rss0);

    // Sanity: a few rows (first, middle, last) against the f64 reference over all keys.
    let mut max_abs_err = 0.0f64;
    for r0 in [0, s / 2, s.saturating_sub(4)] {
        let n = 4.min(s - r0);
        let qr = TensorView::new(&q.as_slice()[r0 * d..(r0 + n) * d], &[n, d]).map_err(err)?;
        let expected = reference::attention(&qr, &k, &v, None).map_err(err)?;
        let got = TensorView::new(&out.as_slice()[r0 * d..(r0 + n) * d], &[n, d]).map_err(err)?;
        let c = reference::compare(&got, &expected, 1e-4, 1e-5).map_err(err)?;
        if !c.ok {
            return Err(format!(
                "rows {r0}..{}: output differs from the reference (max abs err {:.2e})",
                r0 + n,
                c.max_abs_err
            ));
        }
        max_abs_err = max_abs_err.max(c.max_abs_err);
    }

    let under = peak_extra < LIMIT_MIB;
    println!(
        "attention S={s} D={d} threads={}{}: {secs:.2} s, {:.1} GFLOP/s",
        a.threads,
        if a.control {
            " (control: Attention::run, a new output)"
        } else {
            ""
        },
        4.0 * (s * s * d) as f64 / secs / 1e9
    );
    println!(
        "q, k, v, out: {tensors_mib:.1} MiB; resident before the call {:.1} MiB{}",
        mib(rss0),
        if a.cold {
            String::new()
        } else {
            format!(" (warm-up call: {:+.2} MiB)", mib(rss0) - mib(before_warm))
        }
    );
    println!(
        "peak above inputs and output: {peak_extra:.2} MiB{} ({} the {LIMIT_MIB} MiB bound); \
         resident after the call {:+.2} MiB",
        if reset {
            ""
        } else {
            " (lower bound: VmHWM could not be reset)"
        },
        if under { "under" } else { "OVER" },
        after_extra
    );
    println!("output rows checked against the f64 reference: max abs err {max_abs_err:.2e}");
    if a.json {
        println!(
            "{{\"seq\": {s}, \"dim\": {d}, \"threads\": {}, \"control\": {}, \"seconds\": {secs:.3}, \
             \"peak_extra_mib\": {peak_extra:.3}, \"under_16_mib\": {under}, \
             \"hwm_reset\": {reset}, \"rss_after_extra_mib\": {after_extra:.3}, \
             \"max_abs_err\": {max_abs_err:e}}}",
            a.threads, a.control
        );
    }
    Ok(())
}
