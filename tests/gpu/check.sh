#!/usr/bin/env bash
# tests/gpu/check.sh - the GPU check: one short call on a lent GPU (an H200 here).
#
#   tests/gpu/check.sh            run every check below (with the programs of
#                                 gpu-bundle.tar.xz when it is there; else built
#                                 here, which needs the Debian packages of
#                                 scripts/setup.sh)
#   tests/gpu/check.sh --prepare  on a machine with the compiler, after the build:
#                                 compile every golden variant with
#                                 --target=cpu,sm_90a,sm_80 into gpu-plans/ (weights
#                                 referenced in tests/golden and models/, so the plans
#                                 are small), write the microbenchmarks' kernels
#                                 (moec_gpu_bench --save-kernels) and copy the
#                                 runtime programs the check runs with their shared
#                                 libraries, then pack it all into gpu-bundle.tar.xz
#
# The H200 machine has CMake and the CUDA toolkit but no MLIR and none of the
# project's Debian packages (flatbuffers, GoogleTest, PCRE2, ...), and nothing can be
# fetched there: carry gpu-bundle.tar.xz to it (the device tool's `carry`) and run
# tests/gpu/check.sh; the programs are built on Debian 12 (glibc 2.36) without
# -march, so they run on a newer x86-64 Linux. The conformance cases' kernels are
# generated here too (MOEC_CONFORMANCE_SAVE_KERNELS), and the bundle's conformance
# test, built without the compiler, reads them (MOEC_CONFORMANCE_KERNELS).
#
# Checks, each printed and written to bench/gpu-results.md:
#  1. the cuda backend's tests (moec_runtime_test CudaBackend.*) and every case of
#     the backend conformance test on cuda (each step kind against double-precision
#     reference loops, with the kernels codegen/ptx generates for it);
#  2. every golden variant, as it is and with --quantize=fp8 --activations=fp8: the
#     prompt's logits and 16 greedy tokens on cuda vs the cpu backend (relative
#     error <= 1e-3, 3e-2 with FP8 activations; tokens identical); with FP8
#     activations the prompt is repeated to 96 tokens, so that on sm_90a the
#     prefill runs the wgmma GEMMs (TMA, mbarriers; the routed experts' grouped
#     GEMM with more than 64 pairs for some experts of the trained model) and
#     decode the other kernels;
#  2b. GRPO rollout groups of the trained model on cuda, the prompt's KV rows shared
#     (copied into each sample's rows on the device) and not shared, vs the cpu:
#     the same tokens;
#  3. moec_gpu_bench: the generated kernels' speed against the device's copy
#     bandwidth (decode GEMV, MLA decode), the FP8 peak and cuBLASLt's FP8 GEMM on
#     the same shapes (opened with dlopen; DeepSeek's 1x128 / 128x128 block scales
#     where the library has them, cuBLAS 12.9+; timed alternately with moec's).
# Environment: MOEC_GPU_BUILD (default build-gpu), MOEC_GPU_JOBS (default nproc).
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${MOEC_GPU_BUILD:-build-gpu}
jobs=${MOEC_GPU_JOBS:-$(nproc)}
plans=gpu-plans
bundle=gpu-bundle.tar.xz
results=bench/gpu-results.md
# The golden variants and their checkpoints (tests/golden/manifest.json).
variants=$(python3 -c 'import json; print(" ".join(v["name"] for v in json.load(open("tests/golden/manifest.json"))["variants"]))')
checkpoint() {
  python3 -c 'import json, os, sys
for v in json.load(open("tests/golden/manifest.json"))["variants"]:
    if v["name"] == sys.argv[1]:
        print(os.path.normpath(os.path.join("tests/golden", v.get("checkpoint", v["dir"]))))' "$1"
}

# Each variant as it is, and with FP8 weights and FP8 activations (DeepSeek's FP8
# GEMM numerics, --activations=fp8; the CPU backend emulates them): <variant>.fp8acts.
modes="plain fp8acts"
plan_name() { [ "$2" = plain ] && echo "$1" || echo "$1.$2"; }
compile_plans() {
  local moec=$1
  mkdir -p "$plans"
  for v in $variants; do
    "$moec" compile "$(checkpoint "$v")" --weights=external --max-tokens 128 \
      --target=cpu,sm_90a,sm_80 --quiet -o "$plans/$v.plan" || return 1
    "$moec" compile "$(checkpoint "$v")" --weights=external --max-tokens 128 \
      --quantize=fp8 --activations=fp8 \
      --target=cpu,sm_90a,sm_80 --quiet -o "$plans/$v.fp8acts.plan" || return 1
  done
}

if [ "${1:-}" = "--prepare" ]; then
  moec=${MOEC_BIN:-build/bin/moec}
  bin=$(dirname "$moec")
  for p in moec moec_gpu_bench moec-run moec-rollout moec_runtime_test moec_gpu_bench_runtime; do
    [ -x "$bin/$p" ] || { echo "check.sh: $bin/$p not found: build the project first" >&2; exit 2; }
  done
  rm -rf "$plans"
  compile_plans "$moec" || { echo "check.sh: compiling the golden plans failed" >&2; exit 1; }
  echo "check.sh: wrote $plans/ for: $variants"
  "$bin/moec_gpu_bench" --save-kernels "$plans/bench-kernels.json" || exit 1
  # The conformance cases' kernels, and the test built without the compiler (it
  # reads them: MOEC_CONFORMANCE_KERNELS).
  MOEC_CONFORMANCE_SAVE_KERNELS="$plans/conformance-kernels.json" \
    "$bin/moec_backend_conformance_test" --gtest_filter='BackendConformanceGpuKernels.Every*' \
    --gtest_brief=1 | grep '^wrote' || exit 1
  lean=${MOEC_GPU_BUNDLE_BUILD:-build-gpu-bundle}
  cmake -S . -B "$lean" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOEC_BUILD_COMPILER=OFF \
    -DMOEC_BUILD_BENCHMARKS=OFF >/dev/null &&
    cmake --build "$lean" --target moec_backend_conformance_test >/dev/null || exit 1
  # The programs the check runs, and their shared libraries beyond glibc and
  # libstdc++ (the GPU machine's are newer); bin/ holds wrappers that point the
  # loader at lib/.
  mkdir -p "$plans/bin" "$plans/libexec" "$plans/lib"
  for p in moec-run moec-rollout moec_runtime_test moec_gpu_bench_runtime \
           "$lean/bin/moec_backend_conformance_test"; do
    case $p in */*) cp "$p" "$plans/libexec/"; p=$(basename "$p") ;; *) cp "$bin/$p" "$plans/libexec/" ;; esac
    cat > "$plans/bin/$p" <<WRAPPER
#!/bin/sh
here=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="\$here/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/libexec/$p" "\$@"
WRAPPER
    chmod +x "$plans/bin/$p"
  done
  for lib in $(ldd "$plans"/libexec/* | awk '/=> \// {print $3}' | sort -u); do
    case $(basename "$lib") in
      libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*) ;;
      *) cp -L "$lib" "$plans/lib/" ;;
    esac
  done
  strip "$plans"/libexec/* 2>/dev/null
  # The commit the bundle was made from (the GPU machine's copy of the tree has no
  # history to ask).
  { git rev-parse --short HEAD 2>/dev/null || echo unknown; } > "$plans/COMMIT"
  git diff --quiet HEAD 2>/dev/null || echo "(with uncommitted changes)" >> "$plans/COMMIT"
  # xz -9: a 64 MiB window, so the FP8 weights two plans share are packed once; the
  # bundle and the working tree travel to the GPU machine together (64 MiB at most).
  XZ_OPT=-9 tar -cJf "$bundle.tmp" "$plans" && mv "$bundle.tmp" "$bundle" || exit 1
  echo "check.sh: wrote $bundle ($(du -h "$bundle" | cut -f1); libraries: $(ls "$plans/lib" | tr '\n' ' '))"
  echo "check.sh: on the GPU machine, carry $bundle and run tests/gpu/check.sh"
  exit 0
fi

started=$(date +%s)
failures=0
say() { echo "$@"; echo "$@" >> "$results.tmp"; }
: > "$results.tmp"

# --- the programs: prepared (gpu-bundle.tar.xz), else the whole project built where
# MLIR is installed, the runtime alone elsewhere ---
if [ -f "$bundle" ] && { [ ! -d "$plans/bin" ] || [ "$bundle" -nt "$plans/bin" ]; }; then
  rm -rf "$plans"
  tar -xJf "$bundle" || { echo "check.sh: cannot unpack $bundle" >&2; exit 1; }
  touch "$plans/bin"
fi
if [ -x "$plans/bin/moec-run" ] && "$plans/bin/moec-run" --help >/dev/null 2>&1; then
  build=$plans
  echo "check.sh: the programs prepared in $bundle ($plans/bin)"
elif [ ! -x "$build/bin/moec-run" ] || [ ! -x "$build/bin/moec-rollout" ] ||
   [ ! -x "$build/bin/moec_backend_conformance_test" ]; then
  compiler=ON
  [ -d /usr/lib/llvm-22/lib/cmake/mlir ] || compiler=OFF
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DMOEC_BUILD_COMPILER=$compiler >/dev/null || exit 1
  targets=(moec-run moec-rollout moec_runtime_test moec_backend_conformance_test)
  [ $compiler = ON ] && targets+=(moec moec_gpu_bench)
  cmake --build "$build" -j "$jobs" --target "${targets[@]}" >/dev/null || exit 1
fi
echo "check.sh: built in $(( $(date +%s) - started )) s"

commit=$(git rev-parse --short HEAD 2>/dev/null || tr '\n' ' ' < "$plans/COMMIT" 2>/dev/null || echo unknown)
say "# GPU check ($(date -u +%Y-%m-%d), commit $commit)"
say ""
say "Device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not found')"
say ""

# --- 1. backend tests and the conformance cases on cuda ---
say "## 1. cuda backend tests and conformance cases"
say ""
for t in "moec_runtime_test --gtest_filter=CudaBackend.*" \
         "moec_backend_conformance_test --gtest_filter=Cases/BackendConformance.MatchesReference/cuda_*"; do
  set -f # the filters' * are for gtest, not the shell
  set -- $t
  set +f
  if [ ! -x "$build/bin/$1" ]; then
    say "- \`$1\`: not run (not built)"
    continue
  fi
  # Without the compiler, the conformance cases' kernels come from the bundle.
  if [ "$1" = moec_backend_conformance_test ] && [ -f "$plans/conformance-kernels.json" ] &&
     [ "$build" = "$plans" ]; then
    export MOEC_CONFORMANCE_KERNELS=$PWD/$plans/conformance-kernels.json
    set -- "$1" "$2:BackendConformanceGpuKernels.SavedKernelsLoadForEveryCase"
  fi
  log=$("$build/bin/$1" "$2" --gtest_brief=1 2>&1)
  summary=$(echo "$log" | grep -E '^\[  (PASSED|FAILED|SKIPPED) ' | tr '\n' ' ')
  echo "$log" | grep -q '^\[  FAILED  \]' && failures=$((failures + 1))
  say "- \`$1 $2\`: ${summary:-no summary (crashed?)}"
  echo "$log" | grep -E '^\[  FAILED  \]|Failure' | head -20
done
say ""

# --- 2. golden variants: cuda vs cpu ---
say "## 2. golden variants: prompt logits and 16 greedy tokens, cuda vs cpu"
say ""
if [ -x "$build/bin/moec" ]; then
  compile_plans "$build/bin/moec" || say "compiling the golden plans failed"
fi
say "| variant | logits max rel. error | greedy tokens | without CUDA graphs | result |"
say "|---|---|---|---|---|"
tmp=$(mktemp -d)
for v in $variants; do
for mode in $modes; do
  name=$(plan_name "$v" "$mode")
  plan=$plans/$name.plan
  # FP8 activations: an fp32 difference in the order of sums can move an input
  # across an e4m3 rounding boundary (1/16 apart), as between moec and the numpy
  # emulation (GoldenTest.cpp bounds that mode at 3e-2).
  bound=$([ "$mode" = fp8acts ] && echo 3e-2 || echo 1e-3)
  if [ ! -f "$plan" ]; then
    say "| $name | - | - | - | no plan (run check.sh --prepare where moec is built) |"
    continue
  fi
  tokens=$(tr -dc '0-9,' < "tests/golden/data/$v/prompt.json" | sed 's/^,*//;s/,*$//')
  # FP8 activations: the prompt repeated to 96 tokens, so that the prefill runs the
  # linear steps, MLPs and routed experts as sm_90a's wgmma GEMMs (16 tokens or
  # more) and decode the matrix-vector kernels.
  if [ "$mode" = fp8acts ]; then
    tokens=$(python3 -c 'import sys; t = sys.argv[1].split(","); print(",".join((t * 96)[:96]))' "$tokens")
  fi
  "$build/bin/moec-run" "$plan" --device cpu --tokens "$tokens" --dump-logits "$tmp/cpu.npy" \
    > /dev/null 2> "$tmp/cpu.err"
  cpu_tokens=$("$build/bin/moec-run" "$plan" --device cpu --tokens "$tokens" --max-new-tokens 16 2>/dev/null)
  if ! "$build/bin/moec-run" "$plan" --device cuda --tokens "$tokens" --dump-logits "$tmp/gpu.npy" \
      > /dev/null 2> "$tmp/gpu.err"; then
    say "| $name | - | - | - | cuda refused: $(head -1 "$tmp/gpu.err" | tr '|' '/') |"
    failures=$((failures + 1))
    continue
  fi
  gpu_tokens=$("$build/bin/moec-run" "$plan" --device cuda --tokens "$tokens" --max-new-tokens 16 2>/dev/null)
  plain_tokens=$(MOEC_CUDA_GRAPHS=0 "$build/bin/moec-run" "$plan" --device cuda --tokens "$tokens" --max-new-tokens 16 2>/dev/null)
  err=$(python3 tests/gpu/compare_npy.py "$tmp/cpu.npy" "$tmp/gpu.npy" | cut -d' ' -f1)
  same=$([ "$cpu_tokens" = "$gpu_tokens" ] && echo identical || echo "differ: $gpu_tokens vs $cpu_tokens")
  plain=$([ "$cpu_tokens" = "$plain_tokens" ] && echo identical || echo "differ: $plain_tokens")
  verdict=$(python3 -c "import sys; print('pass' if float('$err') <= $bound and '$same' == 'identical' else 'FAIL')")
  say "| $name | $err | $same | $plain | $verdict |"
  [ "$verdict" = pass ] || failures=$((failures + 1))
done
done

# GRPO groups: the prompt prefilled once and its KV rows shared by the samples
# (KvCache::share; the cuda backend copies them into each sample's rows), and
# without sharing; sampled at temperature 1, so the tokens of every run must match.
say ""
say "| rollout (poems, 4 samples x 16 tokens) | tokens vs cpu | result |"
say "|---|---|---|"
if [ -f "$plans/poems.plan" ]; then
  echo '{"id": "p", "prompt": "床前明月光，"}' > "$tmp/prompts.jsonl"
  rollout() { # the samples' tokens as one JSON line
    rm -f "$tmp/rollout.jsonl"
    "$build/bin/moec-rollout" "$plans/poems.plan" --prompts "$tmp/prompts.jsonl" --group-size 4 \
      --max-new-tokens 16 --seed 3 --backend "$@" -o "$tmp/rollout.jsonl" 2> "$tmp/rollout.err" &&
      python3 -c 'import json, sys; print(json.dumps([json.loads(l)["tokens"] for l in open(sys.argv[1]) if l.strip()]))' "$tmp/rollout.jsonl"
  }
  cpu_rollout=$(rollout cpu)
  for how in shared no-share; do
    flag=$([ $how = no-share ] && echo --no-share || echo "")
    gpu_rollout=$(rollout cuda $flag)
    if [ -n "$cpu_rollout" ] && [ "$gpu_rollout" = "$cpu_rollout" ]; then
      say "| cuda, $how | identical | pass |"
    else
      say "| cuda, $how | differ: $(head -c 200 <<< "$gpu_rollout$(head -1 "$tmp/rollout.err")" | tr '|' '/') | FAIL |"
      failures=$((failures + 1))
    fi
  done
else
  say "| - | no poems plan (run check.sh --prepare where moec is built) | - |"
fi
rm -rf "$tmp"
say ""

# --- 3. microbenchmarks ---
say "## 3. microbenchmarks (moec_gpu_bench)"
say ""
gpu_bench=()
if [ -x "$build/bin/moec_gpu_bench" ]; then
  gpu_bench=("$build/bin/moec_gpu_bench")
elif [ -x "$build/bin/moec_gpu_bench_runtime" ] && [ -f "$plans/bench-kernels.json" ]; then
  gpu_bench=("$build/bin/moec_gpu_bench_runtime" --kernels "$plans/bench-kernels.json")
fi
if [ ${#gpu_bench[@]} -gt 0 ]; then
  if bench=$("${gpu_bench[@]}" 2>&1); then
    while IFS= read -r line; do say "$line"; done <<< "$bench"
  else
    say "moec_gpu_bench failed: $(echo "$bench" | tail -1)"
    failures=$((failures + 1))
  fi
else
  say "moec_gpu_bench was not built (it needs the compiler, MLIR 22, or the kernels of check.sh --prepare)."
fi
say ""
say "Check time: $(( $(date +%s) - started )) s."
say "Failures: $failures."
mv "$results.tmp" "$results"
echo "check.sh: wrote $results"
[ "$failures" -eq 0 ]
