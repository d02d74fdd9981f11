"""PyTorch's side of the score/mask mod benchmark (examples/mods.rs): the same shapes and masks
(S = 2048, H = 8, D = 64, f32, one thread) through `scaled_dot_product_attention` with the
equivalent boolean mask, and through FlexAttention (`torch.compile`d on CPU, with a block mask
from the same mask_mod) when this torch build runs it.

    .venv-peers/bin/python scripts/peers/mods_torch.py [--rounds 5]

Prints one line per case: name, median ms over the rounds, and the backend.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

S, H, D = 2048, 8, 64
PREFIX = 64
DOC = 512


def prefix_lm(b, h, i, j):
    return (j <= i) | (j < PREFIX)


def docs(b, h, i, j):
    return (i // DOC) == (j // DOC)


def dense_mod(b, h, i, j):
    return j >= 0


def timed(fn, rounds):
    fn()  # warm up (and compile)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.rand(1, H, S, D, generator=g) - 0.5 for _ in range(3))
    idx = torch.arange(S)
    masks = {
        "dense": None,
        "prefix_lm": prefix_lm(0, 0, idx[:, None], idx[None, :]),
        "docs": docs(0, 0, idx[:, None], idx[None, :]),
    }
    mods = {"dense": dense_mod, "prefix_lm": prefix_lm, "docs": docs}
    print(f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}, 1 thread")
    for name, m in masks.items():
        def sdpa(m=m):
            with torch.no_grad():
                return F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        ms = timed(sdpa, args.rounds)
        print(f"sdpa {name:10s} {ms:9.2f} ms  (boolean mask)" if m is not None else f"sdpa {name:10s} {ms:9.2f} ms")
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        flex = torch.compile(flex_attention, dynamic=False)
        for name, mod in mods.items():
            bm = create_block_mask(mod, 1, 1, S, S, device="cpu")

            def run(bm=bm):
                with torch.no_grad():
                    return flex(q, k, v, block_mask=bm)

            ms = timed(run, args.rounds)
            print(f"flex {name:10s} {ms:9.2f} ms  (torch.compile, block mask sparsity {bm.sparsity():.1f}%)")
    except Exception as e:  # noqa: BLE001 - report why FlexAttention did not run
        print(f"flex: not run on this build ({type(e).__name__}: {str(e).splitlines()[0][:160]})")


if __name__ == "__main__":
    main()
