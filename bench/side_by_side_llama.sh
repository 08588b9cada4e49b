#!/usr/bin/env bash
# moec against llama.cpp on the same weights, alternating program by program.
#
#   bench/side_by_side_llama.sh WORKDIR LLAMA_BENCH GGUF_BF16 GGUF_Q8_0 [THREADS...]
#
# WORKDIR is scripts/bench_v2lite8l.sh's (bf16.plan, fp8.plan). LLAMA_BENCH is a
# llama-bench binary built CPU-only with -DGGML_NATIVE=ON; the GGUFs are the same
# checkpoint converted by llama.cpp's convert_hf_to_gguf.py (bf16) and
# llama-quantize'd to Q8_0 (bench/RESULTS.md says how, for the version measured).
# Each round runs, for each thread count, moec bf16, llama.cpp bf16, moec FP8,
# llama.cpp Q8_0, moec int8 (when WORKDIR has int8.plan), one repetition each of prefill P=128 and decode N=64 after
# their own warm-up, so both programs see the same minutes of the VM's drifting
# bandwidth. Neither takes a page fault while timed: moec bench touches every
# weight page first, llama-bench runs with -mmp 0 (the model read into memory
# at load, as the files together do not fit this VM's page cache).
# Prints a table of medians and the ratios moec / llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$1 LLAMA=$2 GGUF_BF16=$3 GGUF_Q8=$4
shift 4
THREADS=("${@:-2}")
ROUNDS=${ROUNDS:-3}
P=${P:-128}
N=${N:-64}
OUT="$WORK/side-by-side"
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for t in "${THREADS[@]}"; do
    echo "== round $round, $t thread(s)"
    build/bin/moec bench "$WORK/bf16.plan" -p "$P" -n "$N" -r 1 --threads "$t" -o json --quiet \
      > "$OUT/moec-bf16-t$t-r$round.json"
    "$LLAMA" -m "$GGUF_BF16" -mmp 0 -t "$t" -p "$P" -n "$N" -r 1 -o json > "$OUT/llama-bf16-t$t-r$round.json"
    build/bin/moec bench "$WORK/fp8.plan" -p "$P" -n "$N" -r 1 --threads "$t" -o json --quiet \
      > "$OUT/moec-fp8-t$t-r$round.json"
    "$LLAMA" -m "$GGUF_Q8" -mmp 0 -t "$t" -p "$P" -n "$N" -r 1 -o json > "$OUT/llama-q8_0-t$t-r$round.json"
    for extra in int8 ${EXTRA_PLANS:-}; do # e.g. EXTRA_PLANS="int8-lmhead bf16acts fp8acts fp8acts-lmhead"
      if [[ -f "$WORK/$extra.plan" ]]; then
        build/bin/moec bench "$WORK/$extra.plan" -p "$P" -n "$N" -r 1 --threads "$t" -o json \
          --quiet > "$OUT/moec-$extra-t$t-r$round.json"
      fi
    done
  done
done
python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
def moec(f):
    r = json.load(open(f))
    return r["prefill_tokens_per_second"]["median"], r["decode_tokens_per_second"]["median"]
def llama(f):
    rows = json.load(open(f))
    pre = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0)
    dec = next(r["avg_ts"] for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0)
    return pre, dec
threads = sorted({int(f.split("-t")[1].split("-")[0]) for f in glob.glob(out + "/*.json")}, reverse=True)
print("| threads | program | prefill tok/s (median, range) | decode tok/s (median, range) |")
print("|---|---|---|---|")
med = {}
for t in threads:
    for name, pattern, read in (("moec bf16", "moec-bf16", moec), ("llama.cpp bf16", "llama-bf16", llama),
                                ("moec FP8", "moec-fp8", moec), ("llama.cpp Q8_0", "llama-q8_0", llama),
                                ("moec int8", "moec-int8", moec),
                                ("moec int8, int8 lm_head", "moec-int8-lmhead", moec),
                                ("moec bf16, bf16 activations", "moec-bf16acts", moec),
                                ("moec FP8, bf16 activations", "moec-fp8acts", moec),
                                ("moec FP8 + FP8 lm_head, bf16 activations", "moec-fp8acts-lmhead",
                                 moec)):
        rs = [read(f) for f in sorted(glob.glob(f"{out}/{pattern}-t{t}-r*.json"))]
        if not rs:
            continue
        pre, dec = [r[0] for r in rs], [r[1] for r in rs]
        med[(t, name)] = (statistics.median(pre), statistics.median(dec))
        print(f"| {t} | {name} | {statistics.median(pre):.1f} ({min(pre):.1f}–{max(pre):.1f}) | "
              f"{statistics.median(dec):.1f} ({min(dec):.1f}–{max(dec):.1f}) |")
print("\n| threads | ratio | prefill | decode |\n|---|---|---|---|")
for t in threads:
    for a, b in (("moec bf16", "llama.cpp bf16"), ("moec FP8", "llama.cpp Q8_0"),
                 ("moec int8", "llama.cpp Q8_0"), ("moec int8, int8 lm_head", "llama.cpp Q8_0"),
                 ("moec bf16, bf16 activations", "llama.cpp bf16"),
                 ("moec FP8, bf16 activations", "llama.cpp Q8_0"),
                 ("moec FP8 + FP8 lm_head, bf16 activations", "llama.cpp Q8_0")):
        if (t, a) in med and (t, b) in med:
            print(f"| {t} | {a} / {b} | {med[(t, a)][0] / med[(t, b)][0]:.2f}x | "
                  f"{med[(t, a)][1] / med[(t, b)][1]:.2f}x |")
PY
