#!/usr/bin/env python3
"""Turns bench/results.jsonl (scripts/perf.sh) into docs/perf.png and bench/table.md.

Needs matplotlib (`pip install matplotlib`). Peer figures are quoted from the project's shared
peer measurements (PyTorch SDPA flash, ONNX Runtime, JAX/XLA, IREE, NumPy), which were taken on
a different machine (2 vCPU Intel Xeon with AVX-512, FMA peak 174 GFLOP/s per core); they are
drawn hatched and labelled as such.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# GFLOP/s, median of 3 rounds, from the shared peer measurements (Intel AVX-512 machine).
PEERS = {
    ("1x12x2048x128", 1): {"torch SDPA": 99.3, "ORT": 81.3, "numpy": 52.9, "JAX/XLA": 30.4},
    ("1x12x2048x128", 2): {"torch SDPA": 207.0, "ORT": 167.1, "numpy": 66.8, "JAX/XLA": 55.2},
    ("1x12x2048x64", 1): {"torch SDPA": 90.6, "ORT": 77.4, "numpy": 35.8, "JAX/XLA": 18.8},
    ("1x12x2048x64", 2): {"torch SDPA": 173.6, "ORT": 152.2, "numpy": 45.0, "JAX/XLA": 34.0},
    ("4x12x512x64", 1): {"torch SDPA": 86.0, "ORT": 84.3, "numpy": 35.4, "JAX/XLA": 16.6},
    ("4x12x512x64", 2): {"torch SDPA": 128.7, "ORT": 170.1, "numpy": 42.0, "JAX/XLA": 30.8},
    ("causal 1x12x2048x128", 1): {"torch SDPA": 152.5, "ORT": 54.8},
    ("causal 1x12x2048x128", 2): {"torch SDPA": 308.2, "ORT": 105.4},
}
PEER_PEAK_1CORE = 174.2


def main():
    src = ROOT / "bench" / "results.jsonl"
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
    (ROOT / "bench" / "table.md").write_text(table)
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
        bars = [("attn", next(x["result"]["gflops"] for x in bench if x["impl"] == "attn" and (x["label"], x["threads"]) == (label, t)), "tab:blue", "")]
        if (label, t) in naive:
            bars.append(("naive loop pipeline", naive[(label, t)]["gflops"], "tab:gray", ""))
        for name, g in PEERS.get((label, t), {}).items():
            bars.append((f"{name} (other machine)", g, {"torch SDPA": "tab:orange", "ORT": "tab:green", "numpy": "tab:purple", "JAX/XLA": "tab:brown"}[name], "//"))
        for bi, (name, g, color, hatch) in enumerate(bars):
            x = gi + (bi - (len(bars) - 1) / 2) * width
            ax.bar(x, g, width, color=color, hatch=hatch, edgecolor="white" if not hatch else "black", label=name)
            if name == "attn":
                ax.text(x, g + 3, f"{g:.0f}", ha="center", fontsize=7)
    ax.axhline(peak1, color="red", linestyle="--", linewidth=1, label=f"FMA peak, 1 core ({peak1:.0f})")
    ax.axhline(2 * peak1, color="red", linestyle=":", linewidth=1, label=f"FMA peak, 2 cores ({2 * peak1:.0f})")
    ax.axhline(PEER_PEAK_1CORE, color="black", linestyle="--", linewidth=0.6, label=f"peer machine's peak, 1 core ({PEER_PEAK_1CORE:.0f})")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{l}, {t} thr" for l, t in groups], fontsize=7, rotation=35, ha="right")
    ax.set_ylabel("GFLOP/s (4·B·H·Sq·Sk·D / t)")
    ax.set_title(f"attn fused attention, f32 — {peak['cpu']}")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    out = ROOT / "docs" / "perf.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
