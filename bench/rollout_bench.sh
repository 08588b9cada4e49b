#!/usr/bin/env bash
# GRPO rollout throughput (moec-rollout) at group sizes 1, 4 and 16, on the default model
# and on a larger synthetic one (moec synth's v2-lite-4l: DeepSeek-V2-Lite's shapes, 4
# layers, 4.3 GB bf16, weights referenced from the checkpoint). 4 prompts, 32 new tokens
# per sample, temperature 1; generated tokens per second of the whole run, and the decode
# part alone. Run on an otherwise idle machine.
#   bench/rollout_bench.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
build=${1:-build}
work=${2:-/tmp/moec-rollout-bench}
mkdir -p "$work"
bin="$build/bin"
if [ ! -f "$work/poems.plan" ]; then
  "$bin/moec" compile models/poems-v3 -o "$work/poems.plan" --quiet
fi
if [ ! -f "$work/v2-lite-4l.plan" ]; then
  [ -d "$work/v2-lite-4l" ] || "$bin/moec" synth --preset v2-lite-4l -o "$work/v2-lite-4l"
  "$bin/moec" compile "$work/v2-lite-4l" --weights=external -o "$work/v2-lite-4l.plan" --quiet
fi
printf '%s\n' '{"id": "1", "prompt": "床前明月光，"}' '{"id": "2", "prompt": "春眠不觉晓，"}' \
  '{"id": "3", "prompt": "白日依山尽，"}' '{"id": "4", "prompt": "红豆生南国，"}' > "$work/prompts.jsonl"
echo "| model | G | samples | tokens | tokens/s (all) | decode tokens/s | batched steps |"
echo "|---|---|---|---|---|---|---|"
for model in poems v2-lite-4l; do
  for g in 1 4 16; do
    line=$("$bin/moec-rollout" "$work/$model.plan" --prompts "$work/prompts.jsonl" \
      --group-size "$g" --max-new-tokens 32 --temperature 1 --seed 1 \
      -o "$work/out-$model-$g.jsonl" 2>&1 >/dev/null | tail -1)
    python3 - "$model" "$g" "$line" <<'PY'
import re, sys
model, g, line = sys.argv[1:4]
m = re.search(r"(\d+) tokens generated in ([\d.]+) s \(([\d.]+) tokens/s\).*decode (\d+) tokens in "
              r"(\d+) batched steps, ([\d.]+) s \(([\d.]+) tokens/s\)", line)
if not m:
    sys.exit(f"unexpected output: {line}")
tokens, secs, rate, dtok, steps, dsecs, drate = m.groups()
print(f"| {model} | {g} | {4 * int(g)} | {tokens} | {float(rate):.1f} | {float(drate):.1f} | {steps} |")
PY
  done
done
echo
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
