#!/usr/bin/env bash
# The performance grid behind the tables and plot of docs/guide/performance.md.
#   scripts/perf.sh            runs every shape (a few minutes), writes bench/results.jsonl
#   scripts/plot_perf.py       turns it into bench/perf.png and bench/table.md
# Run it on a quiet machine: each shape runs in its own process, and the timing is the median of
# repeated calls (see tools/src/bin/bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p attn-tools --bin bench --bin peak
bin=${CARGO_TARGET_DIR:-target}/release
out=bench/results.jsonl
: > "$out"
host=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | xargs || echo unknown)
peak=$("$bin/peak" --json | tail -1)
echo "{\"kind\": \"peak\", \"cpu\": \"$host\", \"result\": $peak}" >> "$out"

run() { # label impl threads causal args...
  local label=$1 impl=$2 threads=$3 causal=$4; shift 4
  local flags=("$@" --threads "$threads" --json)
  [ "$causal" = 1 ] && flags+=(--causal)
  [ "$impl" = naive ] && flags+=(--naive)
  local line
  line=$("$bin/bench" "${flags[@]}" | tail -1)
  echo "{\"kind\": \"bench\", \"label\": \"$label\", \"impl\": \"$impl\", \"threads\": $threads, \"causal\": $causal, \"result\": $line}" >> "$out"
  echo "$label impl=$impl threads=$threads causal=$causal: $line"
}

# The tutorial's sizes (single head, D = 64): attn, and the tutorial's loop pipeline
# (attn::baseline, --naive).
for s in 64 128 256 512; do
  run "1x1x${s}x64" attn 1 0 --batch 1 --heads 1 --seq "$s" --dim 64
  run "1x1x${s}x64" naive 1 0 --batch 1 --heads 1 --seq "$s" --dim 64
done
# The peer grid.
run "1x1x2048x64" naive 1 0 --batch 1 --heads 1 --seq 2048 --dim 64
for shape in "1 1 2048 64" "1 12 2048 64" "1 12 2048 128" "4 12 512 64"; do
  read -r b h s d <<< "$shape"
  for t in 1 2; do
    run "${b}x${h}x${s}x${d}" attn "$t" 0 --batch "$b" --heads "$h" --seq "$s" --dim "$d"
  done
done
# Attention variants: causal, grouped-query (12 query heads over 2 KV heads), decode.
for t in 1 2; do
  run "causal 1x12x2048x128" attn "$t" 1 --batch 1 --heads 12 --seq 2048 --dim 128
done
run "GQA 12/2 causal 1x12x1024x128" attn 2 1 --batch 1 --heads 12 --kv-heads 2 --seq 1024 --dim 128
run "decode Sq=1 Sk=4096 H=12 D=128" attn 1 0 --batch 1 --heads 12 --seq 1 --kv-seq 4096 --dim 128
run "decode Sq=1 Sk=4096 H=12/2 D=128" attn 1 0 --batch 1 --heads 12 --kv-heads 2 --seq 1 --kv-seq 4096 --dim 128
# Element types: bf16/f16 storage computed in f32, f64 computed in f64 (max abs err against the
# f64 reference of the rounded inputs).
for dt in f64 bf16 f16; do
  run "$dt 1x12x2048x128" attn 1 0 --batch 1 --heads 12 --seq 2048 --dim 128 --dtype "$dt"
  run "$dt decode Sq=1 Sk=4096 H=12 D=128" attn 1 0 --batch 1 --heads 12 --seq 1 --kv-seq 4096 --dim 128 --dtype "$dt"
  run "$dt decode Sq=1 Sk=4096 H=12/2 D=128" attn 1 0 --batch 1 --heads 12 --kv-heads 2 --seq 1 --kv-seq 4096 --dim 128 --dtype "$dt"
done
echo "wrote $out"
