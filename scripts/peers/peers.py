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
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timed calls (default 1)")
    a = p.parse_args(argv)
    a.kv_heads = a.kv_heads or a.heads
    a.kv_seq = a.kv_seq or a.seq
    for name in ("threads", "batch", "heads", "kv_heads", "seq", "kv_seq", "dim"):
        if getattr(a, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if a.heads % a.kv_heads:
        p.error(f"--heads {a.heads} is not a multiple of --kv-heads {a.kv_heads}")
    return a


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


def causal_keep(sq, sk):
    """Bottom-right aligned causal mask, True where query i sees key j (j <= i + Sk - Sq)."""
    import numpy as np

    return np.arange(sk)[None, :] <= np.arange(sq)[:, None] + (sk - sq)


def reference_head(q, k, v, causal):
    """float64 attention of one head: q (Sq, D), k (Sk, D), v (Sk, Dv)."""
    import numpy as np

    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    s = q @ k.T / math.sqrt(q.shape[1])
    if causal:
        s = np.where(causal_keep(q.shape[0], k.shape[0]), s, -np.inf)
    s = np.exp(s - s.max(axis=1, keepdims=True))
    return (s / s.sum(axis=1, keepdims=True)) @ v


def make_numpy(a, q, k, v):
    import numpy as np

    g = a.heads // a.kv_heads
    scale = np.float32(1.0 / math.sqrt(a.dim))
    # (B, Hkv, G, Sq, D) @ (B, Hkv, 1, D, Sk): each KV head serves its group without a copy.
    qg = q.reshape(a.batch, a.kv_heads, g, a.seq, a.dim)
    kg = k[:, :, None]
    vg = v[:, :, None]
    mask = None
    if a.causal:
        mask = np.where(causal_keep(a.seq, a.kv_seq), 0.0, -np.inf).astype(np.float32)

    def call():
        s = qg @ kg.swapaxes(-1, -2)
        s *= scale
        if mask is not None:
            s += mask
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
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
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    if a.causal and a.seq != a.kv_seq:
        raise SystemExit(
            "peers.py: torch's is_causal is top-left aligned, attn's bottom-right: "
            "causal shapes need --seq == --kv-seq here"
        )
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    gqa = a.kv_heads < a.heads
    kw = {"is_causal": a.causal}
    if gqa:
        kw["enable_gqa"] = True

    def call():
        with torch.inference_mode():
            return F.scaled_dot_product_attention(tq, tk, tv, **kw)

    # Which SDPA backend the dispatcher picks for these inputs (a private API: best effort).
    chosen = "unknown"
    try:
        from torch.nn.attention import SDPBackend

        i = torch._fused_sdp_choice(tq, tk, tv, None, 0.0, a.causal, scale=None, enable_gqa=gqa)
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
        exp = reference_head(q[b, h], k[b, h // g], v[b, h // g], a.causal)
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
