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
# The prompt is <｜begin▁of▁sentence｜>床前明月光， in the model's tokenizer
# (models/poems-v3/tokenizer.json). moec-run takes and prints token ids until the
# runtime carries the tokenizer; token 1 is <｜end▁of▁sentence｜>.
echo "prompt: 床前明月光， (token ids 0,2016,598,1221,713,265)" >&2
"$BUILD/bin/moec-run" "$OUT/poems-v3.plan" --tokens 0,2016,598,1221,713,265 \
  --max-new-tokens 48 --stop-token 1
