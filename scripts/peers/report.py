#!/usr/bin/env python3
"""Machine record and Markdown table of the side-by-side peer run (side_by_side.sh).

    report.py machine [--peak JSON]     prints one {"kind": "machine", ...} JSON line
    report.py table IN.jsonl OUT.md      the table: per (shape, threads) the median over rounds
                                         of each peer's median time, GFLOP/s, attn's speed over torch's

`machine` imports numpy and torch for their versions when it can (run it with the peers' venv).
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS = ["attn", "torch", "numpy"]
FOREIGN_LIMIT = 0.25


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine(argv):
    lscpu = {}
    for line in sh("lscpu").splitlines():
        key, _, value = line.partition(":")
        lscpu[key.strip()] = value.strip()
    rec = {
        "kind": "machine",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": lscpu.get("Model name", platform.processor() or "unknown"),
        "cpus": lscpu.get("CPU(s)", str(os.cpu_count())),
        "threads_per_core": lscpu.get("Thread(s) per core", "?"),
        "hypervisor": lscpu.get("Hypervisor vendor", ""),
        "avx512": "avx512f" in lscpu.get("Flags", ""),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "attn_commit": sh("git", "-C", str(ROOT), "describe", "--always", "--dirty"),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }
    try:
        import numpy

        rec["numpy"] = numpy.__version__
        try:
            blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
            rec["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
        except Exception:
            pass
    except ImportError:
        rec["numpy"] = None
    try:
        import torch

        rec["torch"] = torch.__version__
        rec["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:
        rec["torch"] = None
    if argv[:1] == ["--peak"] and len(argv) > 1:
        try:
            rec["peak"] = json.loads(argv[1])
        except ValueError:
            pass
    print(json.dumps(rec))


def fmt_ms(ms):
    return f"{ms:.3g}" if ms < 1 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def table(src, dst):
    rows = [json.loads(l) for l in Path(src).read_text().splitlines() if l.strip()]
    machines = [r for r in rows if r["kind"] == "machine"]
    ends = [r for r in rows if r["kind"] == "end"]
    bench = [r for r in rows if r["kind"] == "bench"]
    # (label, threads) in order of first appearance -> peer -> records
    groups = {}
    for r in bench:
        groups.setdefault((r["label"], r["threads"]), {}).setdefault(r["peer"], []).append(r)

    out = ["# attn and its peers, side by side on this machine", ""]
    if machines:
        m = machines[0]
        peak = m.get("peak") or {}
        out += [
            f"- date: {m['date']}; attn commit {m.get('attn_commit') or '?'}",
            f"- CPU: {m['cpu']}, {m['cpus']} CPUs ({m['threads_per_core']} thread(s) per core)"
            + (f", {m['hypervisor']} guest" if m.get("hypervisor") else "")
            + (", AVX-512" if m.get("avx512") else ", no AVX-512")
            + f"; Linux {m['kernel']}",
            f"- torch {m.get('torch')} (CPU capability {m.get('torch_cpu_capability')}), "
            f"numpy {m.get('numpy')} ({m.get('numpy_blas', 'BLAS ?')}), Python {m['python']}",
        ]
        if peak.get("peak_gflops_1core"):
            out.append(
                f"- FMA peak (tools' peak, {peak.get('isa', '?')}): "
                f"{peak['peak_gflops_1core']:.1f} GFLOP/s per core"
            )
        out.append(
            f"- load average at start {' '.join(m['loadavg'])}"
            + (f", at end {' '.join(ends[-1]['loadavg'])}" if ends else "")
        )
        out.append("")
    out += [
        "Each cell: the median over rounds (fresh processes, peers interleaved attn, torch, numpy "
        "in every round) of each process's median time per call. GFLOP/s = 4·B·Hq·Sq·Sk·D / t "
        "(dense-equivalent for causal rows). **attn ÷ torch** is attn's speed over torch's "
        "(torch ms / attn ms; > 1: attn is faster). 1-thread rows ran under `taskset -c 0`. "
        f"⚠ marks a row where some measurement saw more than {FOREIGN_LIMIT} cores of other load.",
        "",
        "| shape | threads | attn ms | attn GFLOP/s | torch SDPA ms | torch GFLOP/s | numpy naive ms "
        "| numpy GFLOP/s | attn ÷ torch | torch backend |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    details = [
        "",
        "Per peer: rounds, min / median / max of the per-process medians (ms), max abs error "
        "against the f64 reference, and the most foreign load seen (cores).",
        "",
        "| shape | threads | peer | rounds | min ms | median ms | max ms | max abs err | foreign |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    failures = []
    for (label, t), by_peer in groups.items():
        med = {}
        warn = False
        backend = ""
        for peer in PEERS:
            recs = by_peer.get(peer, [])
            ok = [r for r in recs if "result" in r]
            failures += [f"{label} T={t} {peer} round {r['round']}: {r['error']}" for r in recs
                         if "error" in r]
            if not ok:
                continue
            ms = sorted(r["result"]["median_ms"] for r in ok)
            gf = statistics.median(r["result"]["gflops"] * r["result"]["median_ms"] for r in ok)
            med[peer] = (statistics.median(ms), gf / statistics.median(ms))
            foreign = max(r["foreign_cores"] for r in ok)
            warn |= foreign > FOREIGN_LIMIT
            err = max(r["result"]["max_abs_err"] for r in ok)
            details.append(
                f"| {label} | {t} | {peer} | {len(ok)} | {fmt_ms(ms[0])} | "
                f"{fmt_ms(statistics.median(ms))} | {fmt_ms(ms[-1])} | {err:.1e} | {foreign:.2f} |"
            )
            if peer == "torch":
                b = ok[0]["result"].get("backend", "")
                backend = next((p.split(" ", 1)[1] for p in b.split(", ") if p.startswith("SDPA ")), b)

        def cell(peer):
            if peer not in med:
                return "- | -"
            ms, gf = med[peer]
            return f"{fmt_ms(ms)} | {gf:.1f}"

        ratio = (
            f"{med['torch'][0] / med['attn'][0]:.2f}x" if "attn" in med and "torch" in med else "-"
        )
        out.append(
            f"| {label}{' ⚠' if warn else ''} | {t} | {cell('attn')} | {cell('torch')} | "
            f"{cell('numpy')} | {ratio} | {backend} |"
        )
    out += details
    if failures:
        out += ["", "Failed measurements:", ""] + [f"- {f}" for f in failures]
    text = "\n".join(out) + "\n"
    Path(dst).write_text(text)
    print(text)


def main():
    if sys.argv[1:2] == ["machine"]:
        machine(sys.argv[2:])
    elif sys.argv[1:2] == ["table"] and len(sys.argv) == 4:
        table(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
