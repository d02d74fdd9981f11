#!/usr/bin/env bash
# llvm-mca analysis of the fused attention kernel's hot regions for several CPU models, without
# needing those CPUs: cycles per iteration of the score tile, the online-softmax update and the
# P.V tiles, and the resource that bounds each.
#
#   scripts/mca.sh                        the default spec and CPU models
#   scripts/mca.sh --spec 'fn k(q: [256, 64], k: [256, 64], v: [256, 64]) -> [256, 64];'
#   scripts/mca.sh --cpus "znver3 znver4" --tiling w8r4c3p3q256
#
# How: `attnc --emit asm --mca` compiles the spec for each CPU with LLVM-MCA-BEGIN/END markers
# around the regions (inline-asm comments, analysis builds only), and llvm-mca
# (${LLVM_MCA:-/usr/lib/llvm-22/bin/llvm-mca}) simulates each region for that CPU. The tiling is
# the target's (Intel AVX-512 tiles for sapphirerapids and skylake-avx512, Zen 4 tiles for
# znver4, AVX2 tiles for znver3 and aarch64) unless --tiling gives one.
#
# FMAs is the number of FMA instructions per iteration of the region and cycles/FMA the cycles
# per iteration over it: the measure to compare tiles by (0.5 is two FMA ports kept busy).
#
# Caveats: the numbers are a model's. LLVM 22's sapphirerapids model issues 512-bit FMAs on one
# port only (the Xeon parts have two), so its cycles are up to 2x those of skylake-avx512 for
# FMA-bound regions; znver4 executes 512-bit ops as two 256-bit halves. Compare tilings and code
# changes on one model, not models with each other.
set -euo pipefail
cd "$(dirname "$0")/.."
spec='fn k(q: [512, 128], k: [512, 128], v: [512, 128]) -> [512, 128];'
cpus="sapphirerapids skylake-avx512 znver4 znver3 aarch64:neoverse-v2"
tiling=""
while [ $# -gt 0 ]; do
  case $1 in
    --spec) spec=${2:?}; shift 2 ;;
    --cpus) cpus=${2:?}; shift 2 ;;
    --tiling) tiling=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "mca: unknown option $1" >&2; exit 2 ;;
  esac
done
mca=${LLVM_MCA:-/usr/lib/llvm-22/bin/llvm-mca}
[ -x "$mca" ] || { echo "mca: $mca not found (package llvm-22)" >&2; exit 1; }
cargo build -q -p attn-build --bin attnc
attnc=${CARGO_TARGET_DIR:-target}/debug/attnc
tmp=$(mktemp -d /tmp/attn-mca.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
printf '%-16s %-18s %12s %12s %6s %10s  %s\n' cpu region cycles/iter rthroughput FMAs cycles/FMA "bound by (pressure)"
for c in $cpus; do
  triple=x86_64-unknown-linux-gnu cpu=$c
  case $c in aarch64:*) triple=aarch64-unknown-linux-gnu cpu=${c#aarch64:} ;; esac
  args=(--emit asm --mca --target "$triple" --cpu "$cpu")
  [ -n "$tiling" ] && args+=(--tiling "$tiling")
  "$attnc" "$spec" "${args[@]}" > "$tmp/$cpu.s"
  march=x86-64
  [ "$triple" != "${triple#aarch64}" ] && march=aarch64
  "$mca" -march=$march -mcpu="$cpu" -iterations=200 -bottleneck-analysis "$tmp/$cpu.s" \
    > "$tmp/$cpu.mca" 2>&1 || { echo "mca: llvm-mca failed for $cpu:"; head -5 "$tmp/$cpu.mca"; continue; }
  # FMAs per iteration of each region, from the assembly between its markers.
  fmas=$(awk '/LLVM-MCA-BEGIN/ { name = $NF; n[name] = 0; on = 1; next }
    /LLVM-MCA-END/ { on = 0; next }
    on && /^[[:space:]]*(vfn?madd|fmla)/ { n[name]++ }
    END { for (k in n) printf "%s=%d ", k, n[k] }' "$tmp/$cpu.s")
  awk -v cpu="$cpu" -v fmas="$fmas" '
    BEGIN { split(fmas, kv, " "); for (i in kv) { split(kv[i], e2, "="); nf[e2[1]] = e2[2] } }
    /Code Region - / { if (name != "") emit(); name = $NF; port = ""; best = -1; inres = 0 }
    /^Iterations:/ { it = $2 }
    /^Total Cycles:/ { cyc = $3 }
    /^Block RThroughput:/ { rt = $3 }
    /Resource Pressure/ { inres = 1; next }
    inres && /^  - / { p = $4; gsub(/[\[\]%]/, "", p); if (p + 0 > best) { best = p + 0; port = $2 " " p "%" } next }
    inres && !/^  - / { inres = 0 }
    function emit() {
      f = nf[name] + 0
      printf "%-16s %-18s %12.1f %12s %6d %10s  %s\n", cpu, name, cyc / it, rt, f,
        (f > 0 ? sprintf("%.3f", cyc / it / f) : "-"), port
    }
    END { if (name != "") emit() }
  ' "$tmp/$cpu.mca"
done
