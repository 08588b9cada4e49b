//===- LoadedModel.h - A tiny model written, loaded and ready to run -*- C++ -*-===//
#ifndef MOEC_TESTS_RUNTIME_LOADEDMODEL_H
#define MOEC_TESTS_RUNTIME_LOADEDMODEL_H

#include "ReferenceForward.h"
#include "TinyModel.h"

#include "moec/runtime/Runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moec::test {

/// A tiny model plan in a temp dir, loaded, with an executor on the CPU backend.
struct LoadedModel {
  explicit LoadedModel(const TinyModelOptions &options = {}) {
    std::string path = dir.file("tiny.plan");
    EXPECT_TRUE(writeTinyModel(options, path, &model));
    Status status = Plan::load(path, &plan);
    EXPECT_TRUE(status.ok()) << status.message();
    if (!plan)
      return;
    ExecutorOptions executorOptions;
    executorOptions.threads = 2;
    status = Executor::create(*plan, executorOptions, &executor);
    EXPECT_TRUE(status.ok()) << status.message();
  }

  /// One sequence at positions 0..n-1 in a fresh cache; logits [n, vocab].
  std::vector<float> run(const std::vector<int32_t> &tokens) {
    std::unique_ptr<KvCache> cache;
    EXPECT_TRUE(executor->createCache(1, 64, &cache).ok());
    std::vector<int32_t> positions(tokens.size()), seqIds(tokens.size(), 0);
    std::iota(positions.begin(), positions.end(), 0);
    std::vector<float> logits(tokens.size() * size_t(executor->vocabSize()));
    Status status = executor->forward(
        {tokens.data(), positions.data(), seqIds.data(), int64_t(tokens.size())}, *cache,
        logits.data());
    EXPECT_TRUE(status.ok()) << status.message();
    return logits;
  }

  TempDir dir;
  TinyModel model;
  std::unique_ptr<Plan> plan;
  std::unique_ptr<Executor> executor;
};

/// Largest |a - b| over the largest |b|: the relative error of a whole logits block.
template <typename A, typename B>
double relativeError(const std::vector<A> &a, const std::vector<B> &b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

/// Index of the largest value (lowest on ties).
template <typename T> int32_t argmax(const T *values, int64_t n) {
  return int32_t(std::max_element(values, values + n) - values);
}

} // namespace moec::test

#endif // MOEC_TESTS_RUNTIME_LOADEDMODEL_H
