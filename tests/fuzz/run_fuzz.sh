#!/bin/sh
# Builds the plan-loader fuzzer with clang (a separate build of just the runtime and
# the fuzz target), seeds it with valid tiny plans and runs it for a fixed time.
# usage: run_fuzz.sh SOURCE_DIR BUILD_DIR MAKE_TEST_PLAN [SECONDS]
set -eu
src=$1
build=$2
make_plan=$3
seconds=${4:-60}

. "$src/tests/fuzz/fuzz_common.sh"
fuzz_build "$src" "$build" OFF moec_plan_fuzzer

# Seeds: inputs that once crashed it (tests/fuzz/regressions, also checked by
# moec_plan_loader_test) and valid plans whose weights sit in external files beside them, so the inputs
# stay small and every loading phase is reached.
seeds=$build/fuzz-seeds
corpus=$build/fuzz-corpus
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus"
"$make_plan" "$seeds/v3-fp8.plan" --weights-file v3-fp8.weights --layers 2
"$make_plan" "$seeds/v2-bf16.plan" --weights-file v2-bf16.weights --bf16 --no-q-lora \
  --v2-router --naive --no-yarn --layers 2
"$make_plan" "$seeds/one-layer.plan" --weights-file one-layer.weights --layers 1 --max-tokens 2
"$make_plan" "$seeds/split-forms.plan" --weights-file split-forms.weights --layers 1 \
  --naive-prefill --half-rope
# The fuzzer reads seeds from one folder and external weights from another.
mkdir -p "$seeds/plans"
mv "$seeds"/*.plan "$seeds/plans/"

export MOEC_FUZZ_BASE_DIR="$seeds"
run_fuzzer "$build/bin/moec_plan_fuzzer" "$seconds" "$build/" "$corpus" "$seeds/plans" \
  "$src/tests/fuzz/regressions"
