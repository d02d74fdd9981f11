#!/usr/bin/env bash
# attn, PyTorch SDPA and a NumPy naive attention, measured side by side on this machine.
#
#   scripts/peers/setup.sh                 once: the peers' venv (.venv-peers/, numpy + torch)
#   scripts/peers/side_by_side.sh          the full grid, 3 rounds: bench/side-by-side-<tag>.jsonl
#                                          and .md, <tag> naming the ISA and CPU family, e.g.
#                                          avx512-emeraldrapids (about 20-25 minutes on 2 cores)
#   scripts/peers/side_by_side.sh --smoke  tiny shapes, 1 round, into a temporary directory
#
# Options: --rounds N (default 3), --out-dir DIR (default bench/), --wait S (seconds to wait
# for other load to settle before each measurement, default 10; 0 with --smoke), --no-build (use
# the tools already built: $CARGO_TARGET_DIR/release/{bench,peak}, or $ATTN_BENCH).
#
# For every shape, each round runs attn (the tools' bench --json), torch, numpy, each in its own
# process (scripts/peers/run_one.py: same thread settings for all, `taskset -c 0` at 1 thread,
# other processes' CPU use recorded). Run it on a quiet machine: rows measured under foreign load
# are marked in the table.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=3 out_dir=bench wait=10 smoke=0 build=1 out_dir_set=0 wait_set=0 rounds_set=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a value}; rounds_set=1; shift 2 ;;
    --out-dir) out_dir=${2:?--out-dir needs a value}; out_dir_set=1; shift 2 ;;
    --wait) wait=${2:?--wait needs a value}; wait_set=1; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "side_by_side: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
py=.venv-peers/bin/python
if [ ! -x "$py" ] || ! "$py" -c "import numpy, torch" 2>/dev/null; then
  echo "side_by_side: no usable peers venv at $py (numpy and torch); run scripts/peers/setup.sh first" >&2
  exit 1
fi
if [ "$smoke" = 1 ]; then
  [ "$out_dir_set" = 1 ] || out_dir=$(mktemp -d /tmp/attn-peers-smoke.XXXXXX)
  [ "$wait_set" = 1 ] || wait=0
  [ "$rounds_set" = 1 ] || rounds=1
fi

command -v taskset >/dev/null || { echo "side_by_side: taskset not found (util-linux)" >&2; exit 1; }
if [ "$build" = 1 ]; then
  cargo build --release -p attn-tools --bin bench --bin peak
fi
bin=${CARGO_TARGET_DIR:-target}/release
bench=${ATTN_BENCH:-$bin/bench}
[ -x "$bench" ] || { echo "side_by_side: $bench is missing (cargo build --release -p attn-tools --bin bench)" >&2; exit 1; }
# run_one.py runs this binary for attn.
ATTN_BENCH=$(realpath "$bench")
export ATTN_BENCH

mkdir -p "$out_dir"
tag=$(python3 scripts/peers/report.py slug)
jsonl=$out_dir/side-by-side-$tag.jsonl
md=$out_dir/side-by-side-$tag.md
: > "$jsonl"
# The machine's FMA peak and read bandwidth, measured before and after the grid (the best of the
# two, field by field: a figure measured under passing load would flatter attn's share of it).
measure_peak() {
  if [ "$smoke" = 0 ] && [ -x "$bin/peak" ]; then taskset -c 0 "$bin/peak" --json | tail -1; else echo null; fi
}
peak_before=$(measure_peak)

# label | threads | shape flags (as the tools' bench takes them) [| peers, default all three]
if [ "$smoke" = 1 ]; then
  grid=(
    "1x1x64x32|1|--batch 1 --heads 1 --seq 64 --dim 32"
    "1x4x128x32|2|--batch 1 --heads 4 --seq 128 --dim 32"
    "GQA 4/2 causal 1x4x128x32|2|--batch 1 --heads 4 --kv-heads 2 --seq 128 --dim 32 --causal"
    "decode Sq=1 Sk=256 H=4/2 D=32|1|--batch 1 --heads 4 --kv-heads 2 --seq 1 --kv-seq 256 --dim 32"
    "window 31 causal 1x4x128x32|1|--batch 1 --heads 4 --seq 128 --dim 32 --causal --window 31,0"
  )
else
  grid=(
    "1x12x2048x128|1|--batch 1 --heads 12 --seq 2048 --dim 128"
    "1x12x2048x128|2|--batch 1 --heads 12 --seq 2048 --dim 128"
    "1x1x2048x64|1|--batch 1 --heads 1 --seq 2048 --dim 64"
    "1x1x2048x64|2|--batch 1 --heads 1 --seq 2048 --dim 64"
    "1x1x64x64|1|--batch 1 --heads 1 --seq 64 --dim 64"
    "1x1x128x64|1|--batch 1 --heads 1 --seq 128 --dim 64"
    "1x1x256x64|1|--batch 1 --heads 1 --seq 256 --dim 64"
    "1x1x512x64|1|--batch 1 --heads 1 --seq 512 --dim 64"
    "1x12x2048x64|1|--batch 1 --heads 12 --seq 2048 --dim 64"
    "1x12x2048x64|2|--batch 1 --heads 12 --seq 2048 --dim 64"
    "4x12x512x64|1|--batch 4 --heads 12 --seq 512 --dim 64"
    "4x12x512x64|2|--batch 4 --heads 12 --seq 512 --dim 64"
    "causal 1x12x2048x128|1|--batch 1 --heads 12 --seq 2048 --dim 128 --causal"
    "causal 1x12x2048x128|2|--batch 1 --heads 12 --seq 2048 --dim 128 --causal"
    "GQA 12/2 causal 1x12x1024x128|2|--batch 1 --heads 12 --kv-heads 2 --seq 1024 --dim 128 --causal"
    "decode Sq=1 Sk=4096 H=12 D=128|1|--batch 1 --heads 12 --seq 1 --kv-seq 4096 --dim 128"
    "decode Sq=1 Sk=4096 H=12/2 D=128|1|--batch 1 --heads 12 --kv-heads 2 --seq 1 --kv-seq 4096 --dim 128"
    # Split-KV decoding: one long sequence, one KV head (MQA), on one and two threads.
    "decode MQA Sq=1 Sk=32768 H=8/1 D=128|1|--batch 1 --heads 8 --kv-heads 1 --seq 1 --kv-seq 32768 --dim 128"
    "decode MQA Sq=1 Sk=32768 H=8/1 D=128|2|--batch 1 --heads 8 --kv-heads 1 --seq 1 --kv-seq 32768 --dim 128"
    # Attention variants torch SDPA can express: a sliding window (boolean mask), ALiBi (float mask).
    # (NumPy's naive attention takes a minute per call at S = 8192: not run there.)
    "causal 1x8x8192x128|1|--batch 1 --heads 8 --seq 8192 --dim 128 --causal|attn torch"
    "window 511 causal 1x8x8192x128|1|--batch 1 --heads 8 --seq 8192 --dim 128 --causal --window 511,0|attn torch"
    "window 1023 causal 1x8x4096x64|1|--batch 1 --heads 8 --seq 4096 --dim 64 --causal --window 1023,0"
    "ALiBi causal 1x8x2048x64|1|--batch 1 --heads 8 --seq 2048 --dim 64 --causal --alibi"
  )
fi

start=$(date +%s)
failed=0
for row in "${grid[@]}"; do
  IFS='|' read -r label threads flags peers <<< "$row"
  read -r -a shape <<< "$flags"
  for ((r = 1; r <= rounds; r++)); do
    for peer in ${peers:-attn torch numpy}; do
      python3 scripts/peers/run_one.py --peer "$peer" --threads "$threads" --label "$label" \
        --round "$r" --out "$jsonl" --wait "$wait" -- "${shape[@]}" || failed=$((failed + 1))
    done
  done
done
peak=$("$py" -c 'import json, sys
a, b = (json.loads(x) for x in sys.argv[1:])
print(json.dumps(None if a is None or b is None else {k: (max(a[k], b[k]) if isinstance(a[k], (int, float)) else a[k]) for k in a}))' "$peak_before" "$(measure_peak)")
"$py" scripts/peers/report.py machine --peak "$peak" >> "$jsonl"
echo "{\"kind\": \"end\", \"seconds\": $(( $(date +%s) - start )), \"loadavg\": $("$py" -c 'import json; print(json.dumps(open("/proc/loadavg").read().split()[:3]))')}" >> "$jsonl"

"$py" scripts/peers/report.py table "$jsonl" "$md" > /dev/null
echo "wrote $jsonl and $md in $(( $(date +%s) - start )) s"
if [ "$failed" -gt 0 ]; then
  echo "side_by_side: $failed measurement(s) failed (listed at the end of $md)" >&2
  exit 1
fi
