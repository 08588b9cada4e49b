//===- ModelConfigFuzzer.cpp - libFuzzer target for config.json parsing ---===//
//
// Feeds arbitrary text to parseModelConfig. Whatever the input, it must return a
// config or one clean error line and never crash. A config it accepts must give
// its derived values without trapping, and serialise to JSON that parses back to
// the same config (modelConfigToJson promises the round trip).
//
//===----------------------------------------------------------------------===//
#include "FuzzMessage.h"

#include "moec/checkpoint/ModelConfig.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace {
volatile double sink;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace moec::checkpoint;
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<ModelConfig> config = parseModelConfig(text, "fuzz/config.json");
  if (!config) {
    moec::fuzz::checkOneLineMessage(llvm::toString(config.takeError()), "fuzz/config.json");
    return 0;
  }
  double sum = config->softmaxScale() + double(config->expertsPerGroup()) +
               double(config->hasGroupLimit()) + double(config->hasCorrectionBias());
  for (int64_t layer = 0; layer < std::min<int64_t>(config->NumHiddenLayers, 1024); ++layer)
    sum += double(config->isMoeLayer(layer));
  // The limits allow 2^31 rope dims; keep the table small enough to build here.
  if (config->QkRopeHeadDim <= (1 << 16))
    for (float f : config->ropeFrequencies())
      sum += double(f);
  sink = sum;

  std::string json = modelConfigToJson(*config);
  llvm::Expected<ModelConfig> again = parseModelConfig(json, "fuzz/roundtrip.json");
  if (!again) {
    std::fprintf(stderr, "round trip refused: %s\n%s", llvm::toString(again.takeError()).c_str(),
                 json.c_str());
    std::abort();
  }
  if (modelConfigToJson(*again) != json) {
    std::fprintf(stderr, "round trip changed the config:\n%s---\n%s", json.c_str(),
                 modelConfigToJson(*again).c_str());
    std::abort();
  }
  return 0;
}
