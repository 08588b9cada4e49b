//===- MlaCostModel.cpp - Which MLA form is cheaper, and from when -------===//
//
// The formulas are in MlaCostModel.h.
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/MlaCostModel.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

using namespace mlir::moe;

MlaCost mlir::moe::mlaCost(const MlaShape &s, bool naive, int64_t newTokens,
                           int64_t cachedTokens, const MlaMachine &machine) {
  const double t = double(newTokens), p = double(cachedTokens);
  const double h = double(s.heads), c = double(s.latentDim), r = double(s.ropeDim);
  const double nope = double(s.nopeDim), v = double(s.vDim);
  const double pairs = t * p + t * (t + 1) / 2;
  const double rows = p + t;
  MlaCost cost;
  if (naive) {
    cost.flops = 2 * rows * h * c * (nope + v) + 2 * pairs * h * (nope + r + v);
    cost.bytes = s.kvBBytes + s.cacheBytes * rows * (c + r) + 4 * rows * h * (nope + v) +
                 4 * t * h * (nope + r + v);
  } else {
    cost.flops = 2 * t * h * c * (nope + v) + 2 * pairs * h * (2 * c + r);
    cost.bytes = s.kvBBytes + s.cacheBytes * rows * (c + r) + 4 * t * h * (nope + r + v) +
                 4 * 2 * t * h * c;
  }
  cost.seconds = std::max(cost.flops / (machine.peakGflops * 1e9),
                          cost.bytes / (machine.bandwidthGBs * 1e9));
  return cost;
}

int64_t mlir::moe::naivePrefillThreshold(const MlaShape &shape, const MlaMachine &machine,
                                         int64_t maxCached, int64_t limit) {
  // Both costs are (piecewise) smooth in P: a grid of contexts, ends included.
  constexpr int kSamples = 64;
  auto naiveWins = [&](int64_t t) {
    for (int i = 0; i <= kSamples; ++i) {
      int64_t p = maxCached * i / kSamples;
      if (mlaCost(shape, true, t, p, machine).seconds >
          mlaCost(shape, false, t, p, machine).seconds)
        return false;
    }
    return true;
  };
  // The smallest t from which the naive form wins at every larger size too.
  int64_t threshold = 0;
  for (int64_t t = limit; t >= 1 && naiveWins(t); --t)
    threshold = t;
  return threshold;
}

std::vector<MlaCostPoint> mlir::moe::mlaCostTable(const MlaShape &shape,
                                                  const MlaMachine &machine,
                                                  int64_t maxCached) {
  std::vector<MlaCostPoint> points;
  for (int64_t t : {1, 16, 64, 128, 256, 512, 2048})
    for (int64_t p : {int64_t{0}, maxCached}) {
      if (t == 1 && p == 0)
        continue; // a first token: nothing to choose between
      MlaCostPoint point;
      point.newTokens = t;
      point.cachedTokens = p;
      point.naive = mlaCost(shape, true, t, p, machine);
      point.absorbed = mlaCost(shape, false, t, p, machine);
      points.push_back(point);
    }
  return points;
}

std::string mlir::moe::formatMlaCostTable(const std::vector<MlaCostPoint> &points) {
  std::string text = llvm::formatv("{0,6} {1,7} | {2,12} {3,12} {4,11} | {5,12} {6,12} "
                                   "{7,11} | cheaper\n",
                                   "new", "cached", "naive FLOP", "naive bytes", "naive s",
                                   "absorb FLOP", "absorb bytes", "absorb s")
                         .str();
  for (const MlaCostPoint &pt : points)
    text += llvm::formatv("{0,6} {1,7} | {2,12:e2} {3,12:e2} {4,11:e2} | {5,12:e2} "
                          "{6,12:e2} {7,11:e2} | {8}\n",
                          pt.newTokens, pt.cachedTokens, pt.naive.flops, pt.naive.bytes,
                          pt.naive.seconds, pt.absorbed.flops, pt.absorbed.bytes,
                          pt.absorbed.seconds,
                          pt.naive.seconds <= pt.absorbed.seconds ? "naive" : "absorbed")
                .str();
  return text;
}
