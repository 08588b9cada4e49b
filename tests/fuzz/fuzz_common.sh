# Shared by the fuzz scripts (sourced, not run): a clang build of just the fuzz
# targets, and one libFuzzer invocation with the settings every target uses.

# fuzz_build SOURCE_DIR BUILD_DIR COMPILER(ON|OFF) TARGET...
# Configures a clang build with MOEC_BUILD_FUZZERS=ON (MOEC_BUILD_COMPILER as
# given: the checkpoint loaders need LLVM, the plan loader does not) and builds
# only TARGET... and what they link.
fuzz_build() {
  fb_src=$1
  fb_build=$2
  fb_compiler=$3
  shift 3
  fb_cc=$(command -v clang-22 || echo /usr/lib/llvm-22/bin/clang)
  fb_cxx=$(command -v clang++-22 || echo /usr/lib/llvm-22/bin/clang++)
  if [ ! -x "$fb_cc" ] || [ ! -x "$fb_cxx" ]; then
    echo "moec: clang-22 not found: install the Debian package clang-22" \
      "(scripts/setup.sh installs everything)" >&2
    return 1
  fi
  CC=$fb_cc CXX=$fb_cxx cmake -S "$fb_src" -B "$fb_build" -G Ninja \
    -DMOEC_BUILD_COMPILER="$fb_compiler" -DMOEC_BUILD_FUZZERS=ON \
    -DMOEC_BUILD_BENCHMARKS=OFF > "$fb_build.configure.log" 2>&1 || {
    cat "$fb_build.configure.log" >&2
    return 1
  }
  cmake --build "$fb_build" --target "$@" -- -j2
}

# run_fuzzer BINARY SECONDS ARTIFACT_PREFIX [LIBFUZZER_FLAGS...] CORPUS_DIR [SEED_DIR...]
# Runs for SECONDS; a crash or a broken invariant fails the call and leaves the
# input at ARTIFACT_PREFIX<kind>-<hash>. New inputs are added to CORPUS_DIR.
run_fuzzer() {
  rf_bin=$1
  rf_seconds=$2
  rf_prefix=$3
  shift 3
  "$rf_bin" -max_total_time="$rf_seconds" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$rf_prefix" "$@"
}
