#!/usr/bin/env bash
# Builds moec with clang-22 under AddressSanitizer and UndefinedBehaviorSanitizer in its
# own build folder and runs the test suite there; any sanitizer report fails the run.
# scripts/test.sh runs it after the normal build's tests (scripts/setup.sh installs
# clang-22, its sanitizer runtimes and libomp-22-dev, clang's OpenMP).
#
#   MOEC_SAN_BUILD_DIR  build folder (default: build-asan)
#   MOEC_JOBS           parallel jobs (default: all CPUs)
#
# Every UBSan check is fatal (-fno-sanitize-recover=undefined); ASan's leak check is on.
# Reports go to files in $MOEC_SAN_BUILD_DIR/sanitizer-reports as well as making the
# process fail: a test that expects a tool to fail, or that discards its stderr,
# cannot hide one.
#
# Not run here:
# - the loader fuzz runs (ctest label "fuzz"): they make their own clang builds, already
#   with ASan and UBSan, in the normal build's folder (tests/fuzz); running them again
#   would double their minutes and find nothing new;
# - the benchmarks (MOEC_BUILD_BENCHMARKS=OFF): no test runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${MOEC_SAN_BUILD_DIR:-build-asan}
JOBS=${MOEC_JOBS:-$(nproc)}
CC_BIN=$(command -v clang-22 || echo /usr/lib/llvm-22/bin/clang)
CXX_BIN=$(command -v clang++-22 || echo /usr/lib/llvm-22/bin/clang++)
if [ ! -x "$CC_BIN" ] || [ ! -x "$CXX_BIN" ]; then
  echo "moec: clang-22 not found: install the Debian package clang-22" \
    "(scripts/setup.sh installs everything)" >&2
  exit 1
fi

SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
# -O1: ASan's recommended level; it compiles faster than -O3 and keeps stacks readable.
# -gline-tables-only: file and line in every report frame, at little build cost.
# LLVM_USE_SANITIZER=Address tells LLVM's HandleLLVMOptions (included for the compiler
# side) that this is a sanitizer build, so it does not link shared libraries with
# -z defs: their ASan symbols are defined by the executable that loads them.
CC=$CC_BIN CXX=$CXX_BIN cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
  -DCMAKE_C_FLAGS="$SANITIZE -fno-omit-frame-pointer -gline-tables-only" \
  -DCMAKE_CXX_FLAGS="$SANITIZE -fno-omit-frame-pointer -gline-tables-only" \
  -DCMAKE_EXE_LINKER_FLAGS="$SANITIZE" -DCMAKE_SHARED_LINKER_FLAGS="$SANITIZE" \
  -DLLVM_USE_SANITIZER=Address -DMOEC_BUILD_BENCHMARKS=OFF
cmake --build "$BUILD" -j "$JOBS"

REPORTS=$(cd "$BUILD" && pwd)/sanitizer-reports
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
SYMBOLIZER=/usr/lib/llvm-22/bin/llvm-symbolizer
COMMON="log_path=$REPORTS/report:abort_on_error=1"
[ -x "$SYMBOLIZER" ] && export ASAN_SYMBOLIZER_PATH=$SYMBOLIZER UBSAN_SYMBOLIZER_PATH=$SYMBOLIZER
# allow_user_poisoning=0: LLVM's BumpPtrAllocator, inlined into moec's instrumented code
# from LLVM's headers, poisons the slabs it allocates; libMLIR.so, not instrumented, then
# hands out and writes memory of the same slabs without unpoisoning it, which ASan would
# report as use-after-poison. moec itself never poisons memory by hand.
export ASAN_OPTIONS="$COMMON:detect_leaks=1:allow_user_poisoning=0"
export UBSAN_OPTIONS="$COMMON:print_stacktrace=1:halt_on_error=1"
status=0
ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure --timeout 900 -LE fuzz || status=$?
if compgen -G "$REPORTS/report*" > /dev/null; then
  echo "sanitizers: reports in $REPORTS:" >&2
  for report in "$REPORTS"/report*; do
    echo "--- $report" >&2
    cat "$report" >&2
  done
  exit 1
fi
exit "$status"
