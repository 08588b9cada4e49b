#!/usr/bin/env bash
# The CPU-performance issue's model, "v2lite-8L" (DeepSeek-V2-Lite's shapes cut to
# 8 layers: 4.59 B parameters, 0.87 B active per token, random weights), measured
# with `moec bench` as a bf16 plan, an FP8 plan (e4m3, 128x128 scales) and an int8
# plan (--quantize=int8: W8A8, integer dot products).
#
#   scripts/bench_v2lite8l.sh [WORKDIR] [-- extra moec bench options]
#
# WORKDIR (default /tmp/v2lite8l) receives the checkpoint (moec synth --preset
# v2-lite-8l: 9.2 GB, written one tensor at a time), the three plans and one JSON
# report per run. The plans run alternately, round by round (bf16, FP8, int8, ...),
# with 2 threads and with 1, so both see the same minutes of this VM's drifting
# bandwidth; every run warms up first (moec bench touches every weight page
# before timing). Prints one markdown table of medians at the end.
# Needs: a built tree (build/bin/moec); about 40 GB of disk. PLANS="bf16 int8"
# measures a subset; the default measures bf16, fp8 and int8, and the plans with bf16
# activations (bf16acts, fp8acts, fp8acts-lmhead) are compiled for PLANS or
# bench/side_by_side_llama.sh's EXTRA_PLANS.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/v2lite8l}
shift || true
[[ "${1:-}" == "--" ]] && shift
EXTRA=("$@")
MOEC=build/bin/moec
ROUNDS=${ROUNDS:-3}
P=${P:-128}
N=${N:-64}
mkdir -p "$WORK/runs"

if [[ ! -f "$WORK/ckpt/config.json" ]]; then
  echo "== writing the checkpoint (moec synth --preset v2-lite-8l)"
  "$MOEC" synth --preset v2-lite-8l -o "$WORK/ckpt"
fi
if [[ ! -f "$WORK/bf16.plan" ]]; then
  echo "== compiling the bf16 plan (external weights; stacked gate/up written into the plan)"
  "$MOEC" compile "$WORK/ckpt" --weights=external -o "$WORK/bf16.plan"
fi
if [[ ! -f "$WORK/fp8.plan" ]]; then
  echo "== compiling the FP8 plan (--quantize=fp8, DeepSeek-V3's recipe)"
  "$MOEC" compile "$WORK/ckpt" --weights=external --quantize=fp8 -o "$WORK/fp8.plan"
fi

if [[ ! -f "$WORK/int8.plan" ]]; then
  echo "== compiling the int8 plan (--quantize=int8, W8A8)"
  "$MOEC" compile "$WORK/ckpt" --weights=external --quantize=int8 -o "$WORK/int8.plan"
fi
# bf16 activations (AMX-BF16 tiles at prefill where the CPU has them), for
# PLANS="... bf16acts fp8acts fp8acts-lmhead" here and EXTRA_PLANS in
# bench/side_by_side_llama.sh.
if [[ ! -f "$WORK/bf16acts.plan" ]]; then
  echo "== compiling the bf16 plan with bf16 activations (--activations=bf16)"
  "$MOEC" compile "$WORK/ckpt" --weights=external --activations=bf16 -o "$WORK/bf16acts.plan"
fi
if [[ ! -f "$WORK/fp8acts.plan" ]]; then
  echo "== compiling the FP8 plan with bf16 activations"
  "$MOEC" compile "$WORK/ckpt" --weights=external --quantize=fp8 --activations=bf16 \
    -o "$WORK/fp8acts.plan"
fi
if [[ ! -f "$WORK/fp8acts-lmhead.plan" ]]; then
  echo "== compiling the FP8 plan with an FP8 lm_head and bf16 activations"
  "$MOEC" compile "$WORK/ckpt" --weights=external --quantize=fp8 --quantize-lm-head \
    --activations=bf16 -o "$WORK/fp8acts-lmhead.plan"
fi
read -r -a PLAN_LIST <<< "${PLANS:-bf16 fp8 int8}"

for round in $(seq 1 "$ROUNDS"); do
  for threads in 2 1; do
    for plan in "${PLAN_LIST[@]}"; do
      out="$WORK/runs/$plan-t$threads-r$round.json"
      echo "== round $round: $plan plan, $threads thread(s)"
      "$MOEC" bench "$WORK/$plan.plan" -p "$P" -n "$N" -r 1 --threads "$threads" -o json \
        --quiet "${EXTRA[@]}" > "$out"
    done
  done
done

python3 - "$WORK/runs" "$ROUNDS" <<'PY'
import glob, json, os, statistics, sys
runs, rounds = sys.argv[1], int(sys.argv[2])
print("\n| plan | threads | prefill tok/s (median, range) | decode tok/s (median, range) "
      "| decode MB/token | bandwidth GB/s | decode fraction |")
print("|---|---|---|---|---|---|---|")
for plan in ("bf16", "fp8", "int8"):
    for threads in (2, 1):
        rs = [json.load(open(f)) for f in sorted(glob.glob(f"{runs}/{plan}-t{threads}-r*.json"))]
        if not rs:
            continue
        pre = [r["prefill_tokens_per_second"]["median"] for r in rs]
        dec = [r["decode_tokens_per_second"]["median"] for r in rs]
        bw = [r["read_bandwidth"]["bytes_per_second"]["median"] / 1e9
              for r in rs if r["read_bandwidth"]]
        frac = [r["decode_bandwidth_fraction"] for r in rs if r["decode_bandwidth_fraction"]]
        mb = rs[0]["decode_bytes_per_token"]["total"] / 1e6
        rng = lambda v: f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})"
        print(f"| {plan} | {threads} | {rng(pre)} | {rng(dec)} | {mb:.0f} | "
              f"{statistics.median(bw):.1f} | {statistics.median(frac):.2f} |")
print(f"\n{len(glob.glob(runs + '/*.json'))} runs of prefill {rs[0]['prompt_tokens']} + "
      f"decode {rs[0]['generate_tokens']}; cpu: {rs[0]['cpu']}")
PY
