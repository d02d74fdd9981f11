#!/usr/bin/env bash
# Sweeps register tilings of the fused attention kernel on this machine and prints a table
# (ms, GFLOP/s, % of the single-core FMA peak), so that the tiles in attn-runtime/src/tuning.rs
# can be chosen (and refreshed) on any machine.
#
#   scripts/tune.sh                             the default candidates for this CPU's ISA
#   scripts/tune.sh --seq 1024 --dim 64
#   scripts/tune.sh --tilings "w16r8c2p3q256 w16r8c3p3q256 w16r4c4p4q256" --rounds 5
#
# Each candidate (a tag as `Tiling::parse` reads it: w lanes, r rows per micro-block, c key
# vectors per block, p P.V vectors per tile, q rows per super-block) is compiled for the host CPU
# by `attnc` as a statically shaped kernel [S, D] x [S, D] x [S, D] (--tiling), linked with
# scripts/tune/harness.c and timed on one core (taskset -c 0; median of 31 samples of >= 10 ms),
# the candidates interleaved over `--rounds` rounds (default 3) and the median reported.
# To build the whole crate with a tiling instead: ATTN_TILING=<tag> cargo build --release.
set -euo pipefail
cd "$(dirname "$0")/.."
seq=2048 dim=128 tilings="" rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --seq) seq=${2:?}; shift 2 ;;
    --dim) dim=${2:?}; shift 2 ;;
    --tilings) tilings=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "tune: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$tilings" ]; then
  if grep -qw avx512f /proc/cpuinfo; then
    tilings="w16r8c2p3q256 w16r8c2p3q512 w16r8c3p3q256 w16r4c4p4q256 w16r4c3p6q256 w16r8c1p3q256 w16r16c1p1q256 w16r8c2p2q256"
  else
    tilings="w8r4c3p3q256 w8r4c3p3q512 w8r4c2p3q256 w8r2c4p4q256 w8r4c2p2q256 w8r8c1p1q256"
  fi
fi
cargo build -q --release -p attn-build --bin attnc
cargo build -q --release -p attn-tools --bin peak
attnc=${CARGO_TARGET_DIR:-target}/release/attnc
peak=""
if [ -x "${CARGO_TARGET_DIR:-target}/release/peak" ]; then
  peak=$(taskset -c 0 "${CARGO_TARGET_DIR:-target}/release/peak" --json | tail -1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["peak_gflops_1core"])')
fi
tmp=$(mktemp -d /tmp/attn-tune.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
spec="fn k(q: [$seq, $dim], k: [$seq, $dim], v: [$seq, $dim]) -> [$seq, $dim];"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); S=$seq D=$dim; FMA peak ${peak:-?} GFLOP/s per core"
# Compile every candidate, then time them interleaved, `rounds` times; report the medians.
built=()
for t in $tilings; do
  if ! "$attnc" "$spec" --emit asm --tiling "$t" > "$tmp/$t.s" 2> "$tmp/$t.err"; then
    echo "$t: rejected: $(head -1 "$tmp/$t.err")" >&2
    continue
  fi
  sym=$(grep -o '_mlir_ciface_attn_k_[0-9a-f]*' "$tmp/$t.s" | head -1)
  cc -O2 -DSEQ="$seq" -DDIM="$dim" -DKERNEL="$sym" scripts/tune/harness.c "$tmp/$t.s" -o "$tmp/$t" -lm
  built+=("$t")
done
for r in $(seq "$rounds"); do
  for t in "${built[@]}"; do
    read -r ms gf < <(taskset -c 0 "$tmp/$t")
    echo "$t $ms $gf" >> "$tmp/times"
  done
done
printf '%-22s %10s %10s %8s\n' tiling "ms (med)" GFLOP/s '% peak'
python3 - "$tmp/times" "${peak:-0}" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    t, ms, gf = line.split()
    rows.setdefault(t, []).append((float(ms), float(gf)))
peak = float(sys.argv[2])
for t, v in rows.items():
    ms = statistics.median(x for x, _ in v)
    gf = statistics.median(y for _, y in v)
    pct = f"{100 * gf / peak:.0f}%" if peak else "?"
    print(f"{t:<22} {ms:>10.3f} {gf:>10.2f} {pct:>8}")
PY
