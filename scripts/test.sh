#!/usr/bin/env bash
# Builds moec and runs every test (ctest: GoogleTest suites, the lit suite, the
# golden end-to-end tests and the loader fuzz runs), then builds it again with clang
# under ASan and UBSan in build-asan and runs the suite there
# (scripts/test-sanitizers.sh). Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD=${MOEC_BUILD_DIR:-build}
JOBS=${MOEC_JOBS:-$(nproc)}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$JOBS"
ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure --timeout 900
# The same suite under AddressSanitizer and UBSan; a sanitizer report fails the run.
# Its ctest summary line ("100% tests passed, 0 tests failed out of N") ends the output.
MOEC_JOBS=$JOBS scripts/test-sanitizers.sh
