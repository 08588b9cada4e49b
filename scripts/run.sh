#!/usr/bin/env bash
# The main job: build moec, write the embedded default model (a deterministic
# DeepSeek-V3-shaped checkpoint), compile it to a plan and generate from it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD=${MOEC_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "${MOEC_JOBS:-$(nproc)}" --target moec moec-run
OUT="$BUILD/default-model"
mkdir -p "$OUT"
"$BUILD/bin/moec" synth --preset tiny-v3 -o "$OUT/tiny-v3"
"$BUILD/bin/moec" compile "$OUT/tiny-v3" -o "$OUT/tiny-v3.plan"
"$BUILD/bin/moec-run" "$OUT/tiny-v3.plan" --tokens 3,14,15,92,65 --max-new-tokens 16
