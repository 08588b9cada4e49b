#!/bin/sh
# Builds the checkpoint-loader fuzzers (safetensors header, config.json) with clang
# in a separate build with the compiler side on (they need LLVM Support), and runs
# each for a fixed time. Seeds: a small valid safetensors file
# (tests/fuzz/seeds), the golden fixtures' and models/' config.json files, and the inputs that
# once broke them (tests/fuzz/regressions-*, also checked by moec_checkpoint_tests).
# usage: run_checkpoint_fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS]
set -eu
src=$1
build=$2
seconds=${3:-30}
fuzz=$src/tests/fuzz

. "$fuzz/fuzz_common.sh"
fuzz_build "$src" "$build" ON moec_safetensors_fuzzer moec_model_config_fuzzer

seeds=$build/fuzz-seeds
rm -rf "$seeds"
mkdir -p "$seeds/safetensors" "$seeds/config" "$build/corpus-safetensors" "$build/corpus-config"
cp "$fuzz/seeds/small.safetensors" "$seeds/safetensors/"
# The golden fixtures' configs and the committed models' (fixtures of a committed model
# keep only their data files).
for variant in "$src"/tests/golden/data/*/ "$src"/models/*/; do
  if [ -f "$variant/config.json" ]; then
    cp "$variant/config.json" "$seeds/config/$(basename "$variant").json"
  fi
done
for kind in safetensors config; do
  if [ -d "$fuzz/regressions-$kind" ]; then
    cp "$fuzz/regressions-$kind"/* "$seeds/$kind/"
  fi
done

echo "== safetensors header (SafetensorsFile::fromBuffer), $seconds s"
run_fuzzer "$build/bin/moec_safetensors_fuzzer" "$seconds" "$build/safetensors-" \
  -max_len=8192 -dict="$fuzz/safetensors.dict" "$build/corpus-safetensors" "$seeds/safetensors"
echo "== config.json (parseModelConfig), $seconds s"
run_fuzzer "$build/bin/moec_model_config_fuzzer" "$seconds" "$build/config-" \
  -max_len=8192 -dict="$fuzz/config.dict" "$build/corpus-config" "$seeds/config"
