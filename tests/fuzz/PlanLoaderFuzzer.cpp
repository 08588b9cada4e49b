//===- PlanLoaderFuzzer.cpp - libFuzzer target for the plan loader --------===//
//
// Feeds arbitrary bytes to Plan::loadFromBytes. Whatever the input, the loader must
// return a Status and never crash; when it accepts a plan, every weight view and
// buffer it vouches for must be readable (AddressSanitizer checks the touches).
// External weight files resolve against $MOEC_FUZZ_BASE_DIR (default ".").
//
//===----------------------------------------------------------------------===//
#include "moec/runtime/Plan.h"

#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <string>

namespace {
std::string baseDir = ".";
volatile uint64_t sink;
} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  if (const char *dir = std::getenv("MOEC_FUZZ_BASE_DIR"))
    baseDir = dir;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::unique_ptr<moec::Plan> plan;
  moec::Status status = moec::Plan::loadFromBytes(data, size, "fuzz.plan", baseDir, &plan);
  // Messages are one line naming the file.
  if (!status.ok() && (status.message().rfind("fuzz.plan: ", 0) != 0 ||
                       status.message().find('\n') != std::string::npos))
    std::abort();
  if (!status.ok()) {
    // Mutated bytes rarely keep their checksum: load again without the integrity
    // check, so that what follows a successful load is fuzzed too.
    moec::PlanLoadOptions options;
    options.checkIntegrity = false;
    status = moec::Plan::loadFromBytes(data, size, "fuzz.plan", baseDir, &plan, options);
    if (!status.ok())
      return 0;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < plan->numWeights(); ++i) {
    const moec::WeightView &weight = plan->weight(i);
    const uint8_t *bytes = static_cast<const uint8_t *>(weight.data);
    if (weight.bytes > 0)
      sum += bytes[0] + bytes[weight.bytes - 1];
    if (weight.blockScale) {
      // Touch the scale through its bits: converting a negative or huge float to an
      // integer is undefined behaviour (UBSan's float-cast-overflow).
      uint32_t bits;
      std::memcpy(&bits, weight.blockScale, sizeof(bits));
      sum += bits;
    }
  }
  for (size_t i = 0; i < plan->numEntryPoints(); ++i)
    sum += uint64_t(plan->entryPoint(i).logits) + uint64_t(plan->entryPoint(i).tokenBound);
  for (size_t i = 0; i < plan->numStates(); ++i)
    sum += plan->state(i).rowBytes;
  sink = sum;
  return 0;
}
