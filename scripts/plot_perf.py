#!/usr/bin/env python3
"""Plots of the side-by-side runs: for every bench/side-by-side-<tag>.jsonl
(scripts/peers/side_by_side.sh), bench/side-by-side-<tag>.png with attn, torch SDPA and NumPy
naive per row (median over rounds, GFLOP/s) and the machine's FMA peak marked; also
bench/table.md from bench/results.jsonl (scripts/perf.sh: attn against its naive loop pipeline)
when that file exists.

    .venv-peers/bin/python scripts/plot_perf.py            every side-by-side file
    .venv-peers/bin/python scripts/plot_perf.py avx512-emeraldrapids

Needs matplotlib (scripts/peers/setup.sh installs it in the peers' venv).
"""
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
COLORS = {"attn": "tab:blue", "torch": "tab:orange", "numpy": "tab:purple"}
NAMES = {"attn": "attn", "torch": "torch SDPA", "numpy": "NumPy naive"}


def side_by_side(src):
    """(machine record, [(label, threads, {peer: median GFLOP/s})]) of one side-by-side run."""
    rows = [json.loads(l) for l in src.read_text().splitlines() if l.strip()]
    machine = next((r for r in rows if r["kind"] == "machine"), {})
    groups = {}
    for r in rows:
        if r["kind"] == "bench" and "gflops" in r.get("result", {}):
            peers = groups.setdefault((r["label"], r["threads"]), {})
            peers.setdefault(r["peer"], []).append(r["result"]["gflops"])
    return machine, [(l, t, {p: statistics.median(v) for p, v in d.items()})
                     for (l, t), d in groups.items()]


def plot(src, plt):
    machine, groups = side_by_side(src)
    peak = (machine.get("peak") or {}).get("peak_gflops_1core")
    fig, ax = plt.subplots(figsize=(15, 7))
    width = 0.27
    for gi, (_, _, peers) in enumerate(groups):
        for bi, peer in enumerate(p for p in COLORS if p in peers):
            x = gi + (bi - 1) * width
            g = peers[peer]
            ax.bar(x, g, width, color=COLORS[peer], label=NAMES[peer])
            if peer == "attn":
                ax.text(x, g + 2, f"{g:.0f}", ha="center", fontsize=7)
    if peak:
        ax.axhline(peak, color="red", linestyle="--", linewidth=1,
                   label=f"FMA peak, 1 core ({peak:.0f})")
        ax.axhline(2 * peak, color="red", linestyle=":", linewidth=1,
                   label=f"FMA peak, 2 cores ({2 * peak:.0f})")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{l}, {t} thr" for l, t, _ in groups], fontsize=7, rotation=35,
                       ha="right")
    ax.set_ylabel("GFLOP/s (4·B·Hq·Sq·Sk·D / t; dense-equivalent for masked rows)")
    isa = "AVX-512" if machine.get("avx512") else "no AVX-512"
    ax.set_title(f"attn, torch SDPA and NumPy side by side: {machine.get('cpu', '?')} "
                 f"({machine.get('tag', src.stem)}, {isa}), {machine.get('date', '')}")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="upper right")
    fig.tight_layout()
    out = src.with_suffix(".png")
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


def perf_table():
    """bench/table.md from scripts/perf.sh's results: attn against the naive loop pipeline."""
    src = BENCH / "results.jsonl"
    if not src.exists():
        return
    rows = [json.loads(l) for l in src.read_text().splitlines() if l.strip()]
    peak = next(r for r in rows if r["kind"] == "peak")
    peak1 = peak["result"]["peak_gflops_1core"]
    bench = [r for r in rows if r["kind"] == "bench"]
    lines = [
        f"Machine: {peak['cpu']}, measured FMA peak {peak1:.0f} GFLOP/s per core.",
        "",
        "| shape (B x H x S x D) | threads | attn GFLOP/s | % of peak | naive loop pipeline "
        "| attn / naive | max abs err |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    naive = {(r["label"], r["threads"]): r["result"] for r in bench if r["impl"] == "naive"}
    for r in (r for r in bench if r["impl"] == "attn"):
        res, t = r["result"], r["threads"]
        n = naive.get((r["label"], t))
        lines.append(
            f"| {r['label']} | {t} | {res['gflops']:.1f} | {100 * res['gflops'] / (peak1 * t):.0f}% | "
            + (f"{n['gflops']:.2f} | {res['gflops'] / n['gflops']:.0f}x" if n else "- | -")
            + f" | {res['max_abs_err']:.1e} |"
        )
    (BENCH / "table.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {BENCH / 'table.md'}")


def main():
    tags = sys.argv[1:]
    sources = [BENCH / f"side-by-side-{t}.jsonl" for t in tags] or sorted(
        BENCH.glob("side-by-side-*.jsonl"))
    perf_table()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("matplotlib is missing (scripts/peers/setup.sh installs it in .venv-peers)")
    for src in sources:
        plot(src, plt)


if __name__ == "__main__":
    main()
