//===- AccuracyReport.cpp - A quantized plan against its reference --------===//

#include "moec/Driver/AccuracyReport.h"

#include "moec/runtime/Executor.h"
#include "moec/runtime/Plan.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <map>

using namespace llvm;

namespace moec::driver {
namespace {

Error fail(const Twine &message) {
  return createStringError(inconvertibleErrorCode(), message);
}

/// One plan's run: the residual stream after each layer, and the logits.
struct Run {
  std::map<std::string, std::vector<float>> layers;
  std::vector<std::string> order;
  std::vector<float> logits;
  int64_t vocab = 0;
};

Expected<std::unique_ptr<Plan>> loadPlan(const std::string &path) {
  std::unique_ptr<Plan> plan;
  if (Status s = Plan::load(path, &plan); !s.ok())
    return fail(s.message());
  return std::move(plan);
}

Expected<Run> runPlan(const Plan &plan, const std::vector<int32_t> &tokens) {
  const std::string &path = plan.name();
  std::unique_ptr<Executor> executor;
  if (Status s = Executor::create(plan, ExecutorOptions(), &executor); !s.ok())
    return fail(path + ": " + s.message());
  const int64_t n = int64_t(tokens.size());
  if (n > executor->maxTokens())
    return fail(formatv("{0} calibration tokens, the plan takes at most {1} per call "
                        "(--max-tokens)",
                        n, executor->maxTokens()));
  for (int32_t t : tokens)
    if (t < 0 || t >= executor->vocabSize())
      return fail(formatv("calibration token {0} is not below the vocabulary size {1}", t,
                          executor->vocabSize()));
  std::unique_ptr<KvCache> cache;
  if (Status s = executor->createCache(1, n, &cache); !s.ok())
    return fail(s.message());
  Run run;
  run.vocab = executor->vocabSize();
  run.logits.resize(size_t(n * run.vocab));
  std::vector<int32_t> positions(tokens.size()), seqIds(tokens.size(), 0);
  for (size_t i = 0; i < positions.size(); ++i)
    positions[i] = int32_t(i);
  TokenBatch batch;
  batch.tokens = tokens.data();
  batch.positions = positions.data();
  batch.seqIds = seqIds.data();
  batch.count = n;
  const std::string suffix = ".mlp_residual";
  Status s = executor->forward(
      batch, *cache, run.logits.data(),
      [&](uint32_t step, const float *values, int64_t rows, int64_t cols) -> Status {
        const plan::Step &st = *plan.root().steps()->Get(step);
        if (!st.name())
          return Status();
        std::string name = st.name()->str();
        if (name.size() <= suffix.size() ||
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
          return Status();
        name.resize(name.size() - suffix.size());
        run.order.push_back(name);
        run.layers[name].assign(values, values + rows * cols);
        return Status();
      });
  if (!s.ok())
    return fail(path + ": " + s.message());
  return run;
}

double relativeError(const std::vector<float> &q, const std::vector<float> &r) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    diff += (double(q[i]) - r[i]) * (double(q[i]) - r[i]);
    ref += double(r[i]) * r[i];
  }
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

} // namespace

std::vector<int32_t> defaultCalibrationTokens(int64_t vocab, int64_t count) {
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < count; ++i)
    tokens.push_back(i == 0 ? 0 : int32_t((i * 7919 + 13) % vocab));
  return tokens;
}

Expected<AccuracyReport> compareQuantized(const std::string &referencePlan,
                                          const std::string &quantizedPlan,
                                          const std::vector<int32_t> &calibration) {
  Expected<std::unique_ptr<Plan>> refPlan = loadPlan(referencePlan);
  if (!refPlan)
    return refPlan.takeError();
  Expected<std::unique_ptr<Plan>> qPlan = loadPlan(quantizedPlan);
  if (!qPlan)
    return qPlan.takeError();
  std::vector<int32_t> tokens = calibration;
  if (tokens.empty())
    tokens = defaultCalibrationTokens((*refPlan)->tokenBound(),
                                      std::min<int64_t>(64, (*refPlan)->maxTokens()));
  Expected<Run> ref = runPlan(**refPlan, tokens);
  if (!ref)
    return ref.takeError();
  Expected<Run> q = runPlan(**qPlan, tokens);
  if (!q)
    return q.takeError();
  if (ref->vocab != q->vocab)
    return fail("the two plans have different vocabularies");
  AccuracyReport report;
  report.positions = int64_t(tokens.size());
  for (const std::string &name : ref->order) {
    auto other = q->layers.find(name);
    if (other == q->layers.end() || other->second.size() != ref->layers[name].size())
      return fail("the quantized plan has no step " + name + ".mlp_residual of the same shape");
    report.layers.push_back({name, relativeError(other->second, ref->layers[name])});
  }
  report.minCosine = 1;
  const int64_t V = ref->vocab;
  for (int64_t t = 0; t < report.positions; ++t) {
    const float *x = q->logits.data() + t * V, *y = ref->logits.data() + t * V;
    double xy = 0, xx = 0, yy = 0;
    for (int64_t j = 0; j < V; ++j) {
      xy += double(x[j]) * y[j];
      xx += double(x[j]) * x[j];
      yy += double(y[j]) * y[j];
    }
    double cosine = xx > 0 && yy > 0 ? xy / std::sqrt(xx * yy) : 0;
    report.meanCosine += cosine / double(report.positions);
    report.minCosine = std::min(report.minCosine, cosine);
    report.top1Agree += std::max_element(x, x + V) - x == std::max_element(y, y + V) - y;
  }
  report.logitsRelativeError = relativeError(q->logits, ref->logits);
  return report;
}

std::string formatAccuracyReport(const AccuracyReport &report) {
  std::string text;
  raw_string_ostream os(text);
  os << formatv("moec: accuracy of the quantized plan against the unquantized one, "
                "{0} calibration tokens:\n",
                report.positions);
  os << "moec:   hidden state after each layer, ||q - r|| / ||r||:\n";
  for (const AccuracyReport::Layer &layer : report.layers)
    os << formatv("moec:     {0,-20} {1:e2}\n", layer.name, layer.relativeError);
  os << formatv("moec:   logits: ||q - r|| / ||r|| {0:e2}, cosine mean {1:f6} (lowest "
                "{2:f6}), top-1 agreement {3}/{4} ({5:f1}%)\n",
                report.logitsRelativeError, report.meanCosine, report.minCosine,
                report.top1Agree, report.positions,
                100.0 * double(report.top1Agree) / double(report.positions));
  return text;
}

} // namespace moec::driver
