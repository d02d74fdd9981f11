#!/usr/bin/env python3
"""Machine record and Markdown table of the side-by-side peer run (side_by_side.sh).

    report.py machine [--peak JSON]     prints one {"kind": "machine", ...} JSON line
    report.py slug                       prints the machine's file-name tag: ISA and CPU family
                                         (e.g. avx512-emeraldrapids, avx2-zen3)
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


# (vendor, family, model) -> the microarchitecture: VMs often hide the model name
# ("Intel(R) Xeon(R) Processor"), not the family and model numbers.
MICROARCH = {
    ("GenuineIntel", 6, 85): "skylakex",
    ("GenuineIntel", 6, 106): "icelakex",
    ("GenuineIntel", 6, 143): "sapphirerapids",
    ("GenuineIntel", 6, 207): "emeraldrapids",
    ("GenuineIntel", 6, 173): "graniterapids",
    ("AuthenticAMD", 23, 49): "zen2",
    ("AuthenticAMD", 25, 1): "zen3",
    ("AuthenticAMD", 25, 33): "zen3",
    ("AuthenticAMD", 25, 17): "zen4",
    ("AuthenticAMD", 25, 160): "zen4",
    ("AuthenticAMD", 26, 2): "zen5",
}


def lscpu_fields():
    fields = {}
    for line in sh("lscpu").splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def slug(lscpu):
    """The machine's tag in file names: the widest x86 vector ISA, then the microarchitecture
    (from vendor, family and model; else the model name, lower case, alphanumeric)."""
    flags = lscpu.get("Flags", "").split()
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else platform.machine()
    try:
        key = (lscpu.get("Vendor ID", ""), int(lscpu.get("CPU family", "")), int(lscpu.get("Model", "")))
    except ValueError:
        key = None
    arch = MICROARCH.get(key) or "".join(
        c for c in lscpu.get("Model name", "unknown").lower() if c.isalnum()
    )[:24]
    return f"{isa}-{arch}"


def machine(argv):
    lscpu = lscpu_fields()
    rec = {
        "kind": "machine",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": lscpu.get("Model name", platform.processor() or "unknown"),
        "cpus": lscpu.get("CPU(s)", str(os.cpu_count())),
        "threads_per_core": lscpu.get("Thread(s) per core", "?"),
        "hypervisor": lscpu.get("Hypervisor vendor", ""),
        "avx512": "avx512f" in lscpu.get("Flags", ""),
        "cpu_family": lscpu.get("CPU family", "?"),
        "cpu_model": lscpu.get("Model", "?"),
        "tag": slug(lscpu),
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


def vs_machine(label, threads, by_peer, med, peak):
    """attn against the machine: % of the FMA peak for unmasked rows, K/V GB/s and % of the read
    bandwidth for decode rows (one query row), '-' otherwise."""
    if "attn" not in med:
        return "-"
    ms, gflops = med["attn"]
    shape = by_peer["attn"][0].get("shape") or {}
    if shape.get("sq") == 1 and peak.get("read_gbs_48mib"):
        kv = 2 * shape["b"] * shape["hkv"] * shape["sk"] * shape["d"] * 4
        gbs = kv / (ms * 1e6)
        return f"{gbs:.1f} GB/s = {100 * gbs / peak['read_gbs_48mib']:.0f}% of read"
    masked = shape.get("causal") or any(w in label for w in ("window", "ALiBi", "causal"))
    if peak.get("peak_gflops_1core") and not masked:
        return f"{100 * gflops / (peak['peak_gflops_1core'] * threads):.0f}% of peak"
    return "-"


def table(src, dst):
    rows = [json.loads(l) for l in Path(src).read_text().splitlines() if l.strip()]
    machines = [r for r in rows if r["kind"] == "machine"]
    bench = [r for r in rows if r["kind"] == "bench"]
    # (label, threads) in order of first appearance -> peer -> records
    groups = {}
    for r in bench:
        groups.setdefault((r["label"], r["threads"]), {}).setdefault(r["peer"], []).append(r)

    out = ["# attn and its peers, side by side on this machine", ""]
    peak = (machines[0].get("peak") or {}) if machines else {}
    if machines:
        m = machines[0]
        out += [
            f"- date: {m['date']}; attn commit {m.get('attn_commit') or '?'}",
            f"- CPU: {m['cpu']}"
            + (f" (family {m['cpu_family']} model {m['cpu_model']}: {m.get('tag', '?')})"
               if "cpu_family" in m else "")
            + f", {m['cpus']} CPUs ({m['threads_per_core']} thread(s) per core)"
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
        if peak.get("read_gbs_48mib"):
            out.append(
                f"- read bandwidth (tools' peak, 1 thread): {peak['read_gbs_48mib']:.1f} GB/s "
                f"over 48 MiB (the decode rows' K/V size), {peak.get('read_gbs_1gib', 0):.1f} "
                "GB/s over 1 GiB"
            )
        out.append(f"- load average (1, 5, 15 min) at the end: {' '.join(m['loadavg'])}")
        out.append("")
    out += [
        "Each cell: the median over rounds (fresh processes, peers interleaved attn, torch, numpy "
        "in every round) of each process's median time per call. GFLOP/s = 4·B·Hq·Sq·Sk·D / t "
        "(dense-equivalent for causal rows). **attn ÷ torch** is attn's speed over torch's "
        "(torch ms / attn ms; > 1: attn is faster). **attn vs machine**: attn's GFLOP/s over the "
        "FMA peak times the threads (rows without masking), or for decode rows the K/V bytes "
        "attn streams per second over the 1-thread read bandwidth (48 MiB). "
        "1-thread rows ran under `taskset -c 0`. "
        f"⚠ marks a row where some measurement saw more than {FOREIGN_LIMIT} cores of other load.",
        "",
        "| shape | threads | attn ms | attn GFLOP/s | torch SDPA ms | torch GFLOP/s | numpy naive ms "
        "| numpy GFLOP/s | attn ÷ torch | attn vs machine | torch backend |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
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
            f"{cell('numpy')} | {ratio} | {vs_machine(label, t, by_peer, med, peak)} | {backend} |"
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
    elif sys.argv[1:2] == ["slug"]:
        print(slug(lscpu_fields()))
    elif sys.argv[1:2] == ["table"] and len(sys.argv) == 4:
        table(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
