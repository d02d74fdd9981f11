#!/usr/bin/env python3
"""Times one attention peer on one shape and prints one JSON line.

    .venv-peers/bin/python scripts/peers/peers.py --peer torch --threads 1 \
        --batch 1 --heads 12 --seq 2048 --dim 128 [--kv-heads 2] [--kv-seq 4096] [--causal]

Peers:
  torch  torch.nn.functional.scaled_dot_product_attention under torch.inference_mode(), f32,
         (B, H, S, D) tensors, enable_gqa when Hkv < Hq, is_causal for --causal.
  numpy  the naive composition: s = q @ k^T; s *= scale; (+ causal mask); s -= rowmax; exp;
         s /= rowsum; s @ v. Grouped-query heads by broadcasting (B, Hkv, G, Sq, D) against
         (B, Hkv, 1, Sk, D).

The flags mirror tools/src/bin/bench.rs. Causal masking is bottom-right aligned like attn's (query i
sees keys j <= i + Sk - Sq); torch's is_causal is top-left aligned, so torch refuses causal shapes
with Sq != Sk rather than time something else.

Attention variants (as tools/src/bin/bench.rs; p(i) = i + Sk - Sq): --window L,R (query i sees keys
p(i) - L <= j <= p(i) + R; `max`: unbounded), --softcap C (s = C tanh(s / C)), --alibi (bias
-slope_h |p(i) - j|, slopes 2^(-8h/H)), --sinks (logit (h % 4) - 1 per head in the softmax
denominator). torch SDPA takes a window as an explicit boolean mask (causal folded in, bottom-right
aligned, so any Sq, Sk) and ALiBi as an additive float mask; it cannot express a softcap or sinks
and refuses them. numpy computes every variant.

Threads: run one (peer, threads) per process. This script sets OMP/MKL/OPENBLAS_NUM_THREADS to
--threads before numpy and torch are imported (when they are not set already) and calls
torch.set_num_threads; pinning (taskset -c 0 for one thread) is the caller's job.

Timing: one call for a correctness check (max abs error against a float64 reference on the first
and last query head), warm-up (>= 2 calls and >= 0.1 s), then samples of `inner` back-to-back
calls (a sample lasts >= 10 ms) until --budget seconds have passed (3 to 30 samples; fewer
when a call is slow). Reported: the median per-call time over the samples. FLOPs are
4 * B * Hq * Sq * Sk * D, dense-equivalent for causal shapes, as in tools/src/bin/bench.rs.
"""
import argparse
import json
import math
import os
import sys
import time


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer", required=True, choices=["torch", "numpy"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--kv-heads", type=int, default=None)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--kv-seq", type=int, default=None)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--causal", action="store_true")
    p.add_argument("--window", type=window_arg, default=None, help="L,R (max: unbounded)")
    p.add_argument("--softcap", type=float, default=None)
    p.add_argument("--alibi", action="store_true")
    p.add_argument("--sinks", action="store_true")
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timed calls (default 1)")
    a = p.parse_args(argv)
    a.kv_heads = a.kv_heads or a.heads
    a.kv_seq = a.kv_seq or a.seq
    for name in ("threads", "batch", "heads", "kv_heads", "seq", "kv_seq", "dim"):
        if getattr(a, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if a.heads % a.kv_heads:
        p.error(f"--heads {a.heads} is not a multiple of --kv-heads {a.kv_heads}")
    if a.softcap is not None and not (a.softcap > 0 and math.isfinite(a.softcap)):
        p.error(f"--softcap must be positive and finite, got {a.softcap}")
    return a


def window_arg(text):
    """`L,R` with `max` for an unbounded side (None)."""
    try:
        sides = [None if x.strip() == "max" else int(x) for x in text.split(",")]
    except ValueError:
        sides = []
    if len(sides) != 2 or any(x is not None and x < 0 for x in sides):
        raise argparse.ArgumentTypeError(f"expected L,R (non-negative integers or max), got {text}")
    return tuple(sides)


def has_variants(a):
    return a.window is not None or a.softcap is not None or a.alibi or a.sinks


def per_head(heads):
    """ALiBi slopes 2^(-8h/H) and sink logits (h % 4) - 1, as tools/src/bin/bench.rs."""
    slopes = [2.0 ** (-8.0 * h / heads) for h in range(1, heads + 1)]
    sinks = [float(h % 4) - 1.0 for h in range(heads)]
    return slopes, sinks


def visible(a):
    """(Sq, Sk) booleans, True where query i sees key j: causal and the window, bottom-right
    aligned."""
    import numpy as np

    p = np.arange(a.seq)[:, None] + (a.kv_seq - a.seq)
    j = np.arange(a.kv_seq)[None, :]
    keep = np.ones((a.seq, a.kv_seq), dtype=bool)
    if a.causal:
        keep &= j <= p
    if a.window is not None:
        left, right = a.window
        if left is not None:
            keep &= j >= p - left
        if right is not None:
            keep &= j <= p + right
    return keep


def bias(a, slope):
    """The ALiBi bias -slope |p(i) - j| of one head, (Sq, Sk) float64."""
    import numpy as np

    p = np.arange(a.seq)[:, None] + (a.kv_seq - a.seq)
    return -slope * np.abs(p - np.arange(a.kv_seq)[None, :]).astype(np.float64)


def set_thread_env(threads):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def inputs(a):
    """Deterministic uniform [-1, 1) f32 inputs, (B, H, S, D)."""
    import numpy as np

    rng = np.random.default_rng(1)
    q = rng.uniform(-1, 1, (a.batch, a.heads, a.seq, a.dim)).astype(np.float32)
    k = rng.uniform(-1, 1, (a.batch, a.kv_heads, a.kv_seq, a.dim)).astype(np.float32)
    v = rng.uniform(-1, 1, (a.batch, a.kv_heads, a.kv_seq, a.dim)).astype(np.float32)
    return q, k, v


def reference_head(a, h, q, k, v):
    """float64 attention of query head `h`: q (Sq, D), k (Sk, D), v (Sk, Dv), every variant."""
    import numpy as np

    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    s = q @ k.T / math.sqrt(q.shape[1])
    if a.softcap is not None:
        s = a.softcap * np.tanh(s / a.softcap)
    slopes, sinks = per_head(a.heads)
    if a.alibi:
        s = s + bias(a, slopes[h])
    s = np.where(visible(a), s, -np.inf)
    sink = sinks[h] if a.sinks else -np.inf
    m = np.maximum(s.max(axis=1, keepdims=True), sink)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m)
    z = e.sum(axis=1, keepdims=True) + np.exp(sink - m)
    return np.where(z > 0, e / np.where(z > 0, z, 1.0), 0.0) @ v


def make_numpy(a, q, k, v):
    import numpy as np

    g = a.heads // a.kv_heads
    scale = np.float32(1.0 / math.sqrt(a.dim))
    # (B, Hkv, G, Sq, D) @ (B, Hkv, 1, D, Sk): each KV head serves its group without a copy.
    qg = q.reshape(a.batch, a.kv_heads, g, a.seq, a.dim)
    kg = k[:, :, None]
    vg = v[:, :, None]
    mask = None
    if a.causal or a.window is not None:
        mask = np.where(visible(a), 0.0, -np.inf).astype(np.float32)
    slopes, sink_logits = per_head(a.heads)
    if a.alibi:
        # (Hkv, G, Sq, Sk): each query head's bias, plus the mask.
        b = np.stack([bias(a, x) for x in slopes]).astype(np.float32)
        mask = b.reshape(a.kv_heads, g, a.seq, a.kv_seq) + (0.0 if mask is None else mask)
    sinks = None
    if a.sinks:
        sinks = np.array(sink_logits, dtype=np.float32).reshape(a.kv_heads, g, 1, 1)
    cap = None if a.softcap is None else np.float32(a.softcap)

    def call():
        s = qg @ kg.swapaxes(-1, -2)
        s *= scale
        if cap is not None:
            s /= cap
            np.tanh(s, out=s)
            s *= cap
        if mask is not None:
            s += mask
        m = s.max(axis=-1, keepdims=True)
        if sinks is not None:
            m = np.maximum(m, sinks)
        m[~np.isfinite(m)] = 0.0
        s -= m
        np.exp(s, out=s)
        z = s.sum(axis=-1, keepdims=True)
        if sinks is not None:
            z += np.exp(sinks - m)
        z[z == 0] = 1.0
        s /= z
        return (s @ vg).reshape(a.batch, a.heads, a.seq, a.dim)

    def backend():
        try:
            cfg = np.show_config(mode="dicts")
            blas = cfg["Build Dependencies"]["blas"]
            return f"numpy {np.__version__}, {blas.get('name')} {blas.get('version')}"
        except Exception:  # older numpy: no mode="dicts"
            return f"numpy {np.__version__}"

    return call, (lambda out: out), backend()


def make_torch(a, q, k, v):
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    if a.softcap is not None or a.sinks:
        raise SystemExit("peers.py: torch SDPA cannot express --softcap or --sinks")
    explicit = a.window is not None or a.alibi
    if a.causal and a.seq != a.kv_seq and not explicit:
        raise SystemExit(
            "peers.py: torch's is_causal is top-left aligned, attn's bottom-right: "
            "causal shapes need --seq == --kv-seq here"
        )
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    gqa = a.kv_heads < a.heads
    kw = {"is_causal": a.causal and not explicit}
    if explicit:
        # An explicit mask, bottom-right aligned: boolean for a window (True: attend), float
        # (ALiBi bias, -inf where hidden) per head for ALiBi.
        keep = torch.from_numpy(visible(a))
        if a.alibi:
            slopes, _ = per_head(a.heads)
            b = torch.from_numpy(np.stack([bias(a, x) for x in slopes]).astype(np.float32))
            kw["attn_mask"] = b.masked_fill(~keep, float("-inf"))[None]
        else:
            kw["attn_mask"] = keep
    if gqa:
        kw["enable_gqa"] = True

    def call():
        with torch.inference_mode():
            return F.scaled_dot_product_attention(tq, tk, tv, **kw)

    # Which SDPA backend the dispatcher picks for these inputs (a private API: best effort).
    chosen = "unknown"
    try:
        from torch.nn.attention import SDPBackend

        mask = kw.get("attn_mask")
        i = torch._fused_sdp_choice(
            tq, tk, tv, mask, 0.0, kw["is_causal"], scale=None, enable_gqa=gqa
        )
        chosen = SDPBackend(i).name
    except Exception as e:  # noqa: BLE001 - report, never fail the timing for it
        chosen = f"unknown ({type(e).__name__})"
    info = (
        f"torch {torch.__version__}, SDPA {chosen}, cpu capability "
        f"{torch.backends.cpu.get_cpu_capability()}, threads {torch.get_num_threads()}"
    )
    return call, (lambda out: out.numpy()), info


def time_calls(call, budget):
    """Median seconds per call (see the module doc), samples, inner calls per sample."""
    t = time.perf_counter()
    call()
    first = time.perf_counter() - t
    warm, t0 = 0, time.perf_counter()
    while warm < 2 or (time.perf_counter() - t0 < 0.1 and warm < 100):
        call()
        warm += 1
    per = (time.perf_counter() - t0) / warm
    inner = max(1, math.ceil(0.01 / max(per, 1e-9)))
    max_samples = 30 if per < 0.5 else (3 if per < 2 else 2)
    samples = []
    t0 = time.perf_counter()
    while len(samples) < max_samples and (
        len(samples) < min(3, max_samples) or time.perf_counter() - t0 < budget
    ):
        t = time.perf_counter()
        for _ in range(inner):
            call()
        samples.append((time.perf_counter() - t) / inner)
    samples.sort()
    return samples[len(samples) // 2], len(samples), inner, first


def main(argv):
    a = parse(argv)
    set_thread_env(a.threads)
    import numpy as np

    q, k, v = inputs(a)
    call, to_numpy, info = (make_torch if a.peer == "torch" else make_numpy)(a, q, k, v)

    out = to_numpy(call())
    err = 0.0
    g = a.heads // a.kv_heads
    for bh in {0, a.batch * a.heads - 1}:
        b, h = divmod(bh, a.heads)
        exp = reference_head(a, h, q[b, h], k[b, h // g], v[b, h // g])
        err = max(err, float(np.max(np.abs(out[b, h].astype(np.float64) - exp))))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    median, n, inner, first = time_calls(call, a.budget)
    util = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    flops = 4.0 * a.batch * a.heads * a.seq * a.kv_seq * a.dim
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print(
        json.dumps(
            {
                "median_ms": median * 1e3,
                "gflops": flops / median / 1e9,
                "max_abs_err": err,
                "samples": n,
                "inner": inner,
                "first_call_ms": first * 1e3,
                "util": round(util, 3),
                "cpus_allowed": affinity,
                "backend": info,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
