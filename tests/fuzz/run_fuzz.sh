#!/bin/sh
# Builds the plan-loader fuzzer with clang (a separate build of just the runtime and
# the fuzz target), seeds it with valid tiny plans and runs it for a fixed time.
# usage: run_fuzz.sh SOURCE_DIR BUILD_DIR MAKE_TEST_PLAN [SECONDS]
set -eu
src=$1
build=$2
make_plan=$3
seconds=${4:-60}

clang_c=$(command -v clang-22 || echo /usr/lib/llvm-22/bin/clang)
clang_cxx=$(command -v clang++-22 || echo /usr/lib/llvm-22/bin/clang++)
CC=$clang_c CXX=$clang_cxx cmake -S "$src" -B "$build" -G Ninja -DMOEC_BUILD_COMPILER=OFF \
  -DMOEC_BUILD_FUZZERS=ON -DMOEC_BUILD_BENCHMARKS=OFF > "$build.configure.log" 2>&1 || {
  cat "$build.configure.log" >&2
  exit 1
}
cmake --build "$build" --target moec_plan_fuzzer -- -j2

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
# The fuzzer reads seeds from one folder and external weights from another.
mkdir -p "$seeds/plans"
mv "$seeds"/*.plan "$seeds/plans/"

export MOEC_FUZZ_BASE_DIR="$seeds"
"$build/bin/moec_plan_fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$build/" "$corpus" "$seeds/plans" \
  "$src/tests/fuzz/regressions"
