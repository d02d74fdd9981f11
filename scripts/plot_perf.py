#!/usr/bin/env python3
"""Turns docs/perf/results.jsonl (scripts/perf.sh) into docs/perf/perf.png and docs/perf/table.md.

Needs matplotlib (`pip install matplotlib`). Peer bars (PyTorch SDPA, NumPy naive) come from
docs/perf/peers-here.jsonl, the side-by-side run of scripts/peers/side_by_side.sh on this machine
(median over its rounds), when that file exists.
"""
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT / "docs" / "perf"


def peers_here():
    """{(label, threads): {peer: median GFLOP/s}} from the side-by-side run, if any."""
    src = PERF / "peers-here.jsonl"
    if not src.exists():
        return {}
    runs = {}
    for line in src.read_text().splitlines():
        r = json.loads(line) if line.strip() else {}
        if r.get("kind") != "bench" or "gflops" not in r.get("result", {}):
            continue
        runs.setdefault((r["label"], r["threads"]), {}).setdefault(r["peer"], []).append(r["result"]["gflops"])
    return {k: {p: statistics.median(v) for p, v in d.items()} for k, d in runs.items()}


def main():
    src = PERF / "results.jsonl"
    rows = [json.loads(l) for l in src.read_text().splitlines() if l.strip()]
    peak = next(r for r in rows if r["kind"] == "peak")
    peak1 = peak["result"]["peak_gflops_1core"]
    bench = [r for r in rows if r["kind"] == "bench"]

    lines = [
        f"Machine: {peak['cpu']}, measured FMA peak {peak1:.0f} GFLOP/s per core "
        f"({2 * peak1:.0f} on 2 cores).",
        "",
        "| shape (B x H x S x D) | threads | attn GFLOP/s | % of peak | naive loop pipeline | attn / naive | max abs err |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    peers = peers_here()
    naive = {(r["label"], r["threads"]): r["result"] for r in bench if r["impl"] == "naive"}
    for r in bench:
        if r["impl"] != "attn":
            continue
        res, t = r["result"], r["threads"]
        n = naive.get((r["label"], t))
        lines.append(
            f"| {r['label']} | {t} | {res['gflops']:.1f} | {100 * res['gflops'] / (peak1 * t):.0f}% | "
            + (f"{n['gflops']:.2f} | {res['gflops'] / n['gflops']:.0f}x" if n else "- | -")
            + f" | {res['max_abs_err']:.1e} |"
        )
    table = "\n".join(lines) + "\n"
    (PERF / "table.md").write_text(table)
    print(table)

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing (pip install matplotlib): table only", file=sys.stderr)
        return
    groups = []
    for r in bench:
        key = (r["label"], r["threads"])
        if r["impl"] == "attn" and key not in groups:
            groups.append(key)
    fig, ax = plt.subplots(figsize=(15, 7))
    width = 0.13
    for gi, (label, t) in enumerate(groups):
        here = peers.get((label, t), {})
        if "attn" in here:
            bars = [("attn (side-by-side run)", here["attn"], "tab:blue", "")]
        else:
            bars = [("attn (perf.sh run)", next(x["result"]["gflops"] for x in bench if x["impl"] == "attn" and (x["label"], x["threads"]) == (label, t)), "tab:cyan", "")]
        if (label, t) in naive:
            bars.append(("naive loop pipeline (perf.sh run)", naive[(label, t)]["gflops"], "tab:gray", ""))
        for name, g in here.items():
            if name in ("torch", "numpy"):
                bars.append(({"torch": "torch SDPA (same machine)", "numpy": "numpy naive (same machine)"}[name], g, {"torch": "tab:orange", "numpy": "tab:purple"}[name], ""))
        for bi, (name, g, color, hatch) in enumerate(bars):
            x = gi + (bi - (len(bars) - 1) / 2) * width
            ax.bar(x, g, width, color=color, hatch=hatch, edgecolor="white" if not hatch else "black", label=name)
            if name.startswith("attn"):
                ax.text(x, g + 3, f"{g:.0f}", ha="center", fontsize=7)
    ax.axhline(peak1, color="red", linestyle="--", linewidth=1, label=f"FMA peak, 1 core ({peak1:.0f})")
    ax.axhline(2 * peak1, color="red", linestyle=":", linewidth=1, label=f"FMA peak, 2 cores ({2 * peak1:.0f})")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{l}, {t} thr" for l, t in groups], fontsize=7, rotation=35, ha="right")
    ax.set_ylabel("GFLOP/s (4·B·H·Sq·Sk·D / t)")
    ax.set_title(f"attn fused attention (f32 unless labelled) — {peak['cpu']}")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    out = PERF / "perf.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
