#!/usr/bin/env bash
# The main job: build moec, compile the default model (models/poems-v3, a small
# DeepSeek-V3-architecture model trained on classical Chinese poetry by
# scripts/train_default_model.py) to a plan, and generate from the first line of a
# Tang poem.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD=${MOEC_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "${MOEC_JOBS:-$(nproc)}" --target moec moec-run
OUT="$BUILD/default-model"
mkdir -p "$OUT"
"$BUILD/bin/moec" compile models/poems-v3 -o "$OUT/poems-v3.plan"
# The plan carries the model's tokenizer (models/poems-v3/tokenizer.json): moec-run
# encodes the prompt (BOS first), streams the generated text to stdout and stops at
# the end-of-sentence token. `--tokens IDS` takes ids instead, `--tokenize` shows them.
PROMPT="床前明月光，"
echo "prompt: $PROMPT (token ids: $("$BUILD/bin/moec-run" "$OUT/poems-v3.plan" --tokenize "$PROMPT"))" >&2
printf '%s' "$PROMPT"
"$BUILD/bin/moec-run" "$OUT/poems-v3.plan" --prompt "$PROMPT" --max-new-tokens 64
