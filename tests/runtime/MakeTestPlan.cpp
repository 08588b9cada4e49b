//===- MakeTestPlan.cpp - Writes a tiny random DeepSeek plan --------------===//
//
// moec-make-test-plan OUT.plan [--bf16] [--no-q-lora] [--v2-router] [--naive]
//                     [--naive-prefill] [--no-yarn] [--half-rope] [--external]
//                     [--weights-file NAME] [--layers N] [--max-tokens T] [--seed S]
// A test helper: fuzz seeds and moec-run's end-to-end test are made with it.
//
//===----------------------------------------------------------------------===//
#include "TinyModel.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char **argv) {
  moec::test::TinyModelOptions options;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool hasValue = i + 1 < argc;
    if (arg == "--bf16")
      options.fp8 = false;
    else if (arg == "--no-q-lora")
      options.qLora = false;
    else if (arg == "--v2-router")
      options.v3Router = false;
    else if (arg == "--naive")
      options.prefillAbsorbed = options.decodeAbsorbed = false;
    else if (arg == "--naive-prefill")
      options.prefillAbsorbed = false;
    else if (arg == "--half-rope")
      options.halfRope = true;
    else if (arg == "--no-yarn")
      options.yarn = false;
    else if (arg == "--external")
      options.external = true;
    else if (arg == "--weights-file" && hasValue)
      options.external = true, options.externalFile = argv[++i];
    else if (arg == "--layers" && hasValue)
      options.layers = std::atoll(argv[++i]);
    else if (arg == "--max-tokens" && hasValue)
      options.maxTokens = std::atoll(argv[++i]);
    else if (arg == "--seed" && hasValue)
      options.seed = std::strtoull(argv[++i], nullptr, 10);
    else if (arg[0] != '-' && out.empty())
      out = arg;
    else {
      std::fprintf(stderr, "moec-make-test-plan: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "usage: moec-make-test-plan OUT.plan [--bf16] [--no-q-lora] "
                         "[--v2-router] [--naive] [--naive-prefill] [--no-yarn] [--half-rope] "
                         "[--external] [--weights-file NAME] [--layers N] [--max-tokens T] "
                         "[--seed S]\n");
    return 2;
  }
  return moec::test::writeTinyModel(options, out) ? 0 : 1;
}
