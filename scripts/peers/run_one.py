#!/usr/bin/env python3
"""Runs one measurement (one peer, one shape, one thread count) in a fresh process and appends
one JSON record to a .jsonl file. Used by side_by_side.sh; standard library only.

    run_one.py --peer attn|torch|numpy --threads T --label L --round R --out FILE.jsonl \
        [--wait SECONDS] [--budget SECONDS] -- --batch 1 --heads 12 --seq 2048 --dim 128 [--causal] ...

attn is the tools' bench with --json ($ATTN_BENCH, else $CARGO_TARGET_DIR/release/bench, else
target/release/bench: `cargo build --release -p attn-tools --bin bench`); torch and numpy are
scripts/peers/peers.py run by .venv-peers/bin/python (or $PEERS_PYTHON). Every peer gets the same
thread settings: OMP/MKL/OPENBLAS_NUM_THREADS=T in its environment, its own --threads T, and, for
T = 1, `taskset -c 0` (attn included, so that all 1-thread rows run under the same pinning).

The machine may be shared: before starting, this waits up to --wait seconds for the other
processes to use less than 0.15 cores, and it records the other processes' CPU use during the run
("foreign_cores": the machine's busy time from /proc/stat minus the child's own CPU time, over
the child's wall time, or over 0.5 s from its start for a shorter child). The report marks rows measured under more than 0.25 cores of foreign load.
"""
import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUIET_CORES = 0.15
MIN_WINDOW = 0.5


def busy_seconds():
    """Seconds of non-idle CPU time of the whole machine (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def load_over(seconds):
    b0, t0 = busy_seconds(), time.monotonic()
    time.sleep(seconds)
    return (busy_seconds() - b0) / (time.monotonic() - t0)


def wait_quiet(limit):
    """Waits (up to `limit` s) for the machine to be quiet; returns (waited s, last load)."""
    start = time.monotonic()
    load = load_over(0.5)
    while load > QUIET_CORES and time.monotonic() - start < limit:
        load = load_over(0.5)
    return round(time.monotonic() - start, 2), round(load, 3)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def shape_of(flags):
    p = argparse.ArgumentParser(add_help=False)
    for name in ("--batch", "--heads", "--kv-heads", "--seq", "--kv-seq", "--dim"):
        p.add_argument(name, type=int)
    p.add_argument("--causal", action="store_true")
    s, rest = p.parse_known_args(flags)
    if rest:
        raise SystemExit(f"run_one.py: unknown shape flags {rest}")
    b, hq, sq, d = s.batch or 1, s.heads or 1, s.seq or 512, s.dim or 64
    return {
        "b": b,
        "hq": hq,
        "hkv": s.kv_heads or hq,
        "sq": sq,
        "sk": s.kv_seq or sq,
        "d": d,
        "causal": s.causal,
    }


def main():
    p = argparse.ArgumentParser(description="one measurement; see the module doc")
    p.add_argument("--peer", required=True, choices=["attn", "torch", "numpy"])
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--round", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--wait", type=float, default=10.0, help="max seconds to wait for quiet")
    p.add_argument("--budget", type=float, default=1.0, help="peers.py --budget")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="-- then the shape flags")
    a = p.parse_args()
    flags = a.flags[1:] if a.flags[:1] == ["--"] else a.flags
    shape = shape_of(flags)

    t = str(a.threads)
    if a.peer == "attn":
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        exe = os.environ.get("ATTN_BENCH", str(ROOT / target / "release" / "bench"))
        cmd = [exe, *flags, "--threads", t, "--json"]
    else:
        py = os.environ.get("PEERS_PYTHON", str(ROOT / ".venv-peers/bin/python"))
        script = str(ROOT / "scripts/peers/peers.py")
        cmd = [py, script, "--peer", a.peer, *flags, "--threads", t, "--budget", str(a.budget)]
    if a.threads == 1:
        cmd = ["taskset", "-c", "0", *cmd]
    env = dict(os.environ, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t)

    waited, load_before = wait_quiet(a.wait)
    cpu0, busy0, t0 = children_cpu(), busy_seconds(), time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    # /proc/stat counts in clock ticks (10 ms): measure the foreign load over >= 0.5 s.
    time.sleep(max(0.0, MIN_WINDOW - wall))
    window = time.monotonic() - t0
    foreign = ((busy_seconds() - busy0) - (children_cpu() - cpu0)) / window

    rec = {
        "kind": "bench",
        "label": a.label,
        "peer": a.peer,
        "threads": a.threads,
        "round": a.round,
        "shape": shape,
        "cmd": shlex.join(cmd),
        "wall_s": round(wall, 3),
        "waited_s": waited,
        "load_before": load_before,
        "foreign_cores": round(max(foreign, 0.0), 3),
    }
    lines = proc.stdout.strip().splitlines()
    try:
        if proc.returncode != 0:
            raise ValueError(f"exit status {proc.returncode}")
        rec["result"] = json.loads(lines[-1])
    except (ValueError, IndexError) as e:
        tail = (proc.stderr.strip().splitlines() or lines or [""])[-1]
        rec["error"] = f"{e}: {tail}"[:500]
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    if "error" in rec:
        print(f"  {a.label} T={a.threads} {a.peer}: FAILED ({rec['error']})", file=sys.stderr)
        sys.exit(1)
    r = rec["result"]
    print(
        f"  {a.label:<34} T={a.threads} round {a.round} {a.peer:<5} {r['median_ms']:10.4f} ms "
        f"{r['gflops']:7.1f} GFLOP/s  err {r['max_abs_err']:.1e}  foreign {rec['foreign_cores']:.2f}"
    )


if __name__ == "__main__":
    main()
