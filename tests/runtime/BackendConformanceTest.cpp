//===- BackendConformanceTest.cpp - Every step kind on every backend ------===//
//
// After llama.cpp's tests/test-backend-ops.cpp: a data-driven list of cases, each
// one step kind with one combination of dtypes, attributes and token batch, is run
// on every registered backend (backendNames()) and compared with plain reference
// loops (tests/kernels/Reference.h, double accumulation). A backend that does not
// support a case (supportsStep) skips it with its reason.
//
// Each case is a small plan that the loader accepts as it stands: the step under
// test reads f32 activations that embedding steps make from the tokens input
// (random f32 tables of token_bound rows, so the test knows every operand), the
// attention steps read states that a cache_store of the same plan fills, and a last
// embedding writes the logits output. Every buffer gets its own arena bytes, so
// all of them can be read back after the run. The plan goes through the loader, then
// Backend::prepare/execute with bindings the test owns (arena, states filled with
// random earlier rows, several sequences).
//
// Tolerance: |got - want| <= 1e-5 * magnitude + 1e-7, magnitude being the sum of
// the absolute terms of the value (or |want| where there is no sum); copies are
// exact.
//
//===----------------------------------------------------------------------===//

#include "KernelFile.h"
#include "Reference.h"

#include "moec/plan_writer/PlanWriter.h"
#include "moec/runtime/Backend.h"
#include "moec/runtime/Plan.h"

#ifdef MOEC_CONFORMANCE_GPU_KERNELS
#include "../gpu/EmulatedGpuBackend.h"
#include "moec/Codegen/StepKernels.h"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace moec {
namespace {

using plan::DType;
using plan::StepKind;

/// Expected values of one checked tensor.
struct Expected {
  std::vector<double> value;     ///< per element
  std::vector<double> magnitude; ///< per element, or empty: |value|
  bool exact = false;            ///< a copy: the result must equal float(value)
};

/// What the test read back after the run.
struct Fetched {
  std::map<int32_t, std::vector<float>> f32;   ///< checked f32 buffers, [T, cols]
  std::map<int32_t, std::vector<int32_t>> i32; ///< checked i32 buffers, [T, cols]
  std::vector<std::vector<float>> states;      ///< every state, after the run
};

/// A weight as the references read it: dequantised fp32 values (products of an
/// FP8 byte and its scale in double, rounded once) and an F32 kernel view of them.
struct HostWeight {
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
  std::vector<float> dense;
  cpu::Weight view() const {
    cpu::Weight w;
    w.type = cpu::WeightType::F32;
    w.data = dense.data();
    w.rows = rows;
    w.cols = cols;
    return w;
  }
};

/// DeepSeek-V3's FP8 block shape, the one compiled plans carry today.
const std::vector<int64_t> kV3Block = {128, 128};

/// Builds one case's plan and records what to check.
class CaseBuilder {
public:
  /// The batch: tokens[t] in [0, V), positions, sequence ids < sequences; states
  /// get `capacity` rows per sequence.
  CaseBuilder(int64_t V, std::vector<int32_t> positions, std::vector<int32_t> seqIds,
              int32_t sequences, int64_t capacity, uint32_t seed)
      : V_(V), T_(int64_t(positions.size())), positions_(std::move(positions)),
        seqIds_(std::move(seqIds)), sequences_(sequences), capacity_(capacity), rng_(seed) {
    std::uniform_int_distribution<int32_t> token(0, int32_t(V - 1));
    for (int64_t t = 0; t < T_; ++t)
      tokens_.push_back(token(rng_));
    tokensBuffer_ = writer_.addBuffer("tokens", DType::I32, {-1});
    positionsBuffer_ = writer_.addBuffer("positions", DType::I32, {-1});
    seqIdsBuffer_ = writer_.addBuffer("seq_ids", DType::I32, {-1});
  }

  int64_t T() const { return T_; }
  int32_t tokens() const { return tokensBuffer_; }
  /// The token id of token t.
  int32_t token(int64_t t) const { return tokens_[size_t(t)]; }
  int32_t positions() const { return positionsBuffer_; }
  int32_t seqIds() const { return seqIdsBuffer_; }
  const std::vector<int32_t> &positionValues() const { return positions_; }
  const std::vector<int32_t> &seqIdValues() const { return seqIds_; }

  /// An f32 [T, cols] activation made by an embedding step from a random table, so
  /// its values (values()) are known.
  int32_t input(const std::string &name, int64_t cols, float amplitude = 1.f) {
    std::vector<float> table = random(V_ * cols, amplitude);
    const int32_t w = writer_.addWeight(name + ".table", DType::F32, {V_, cols}, table.data(),
                                        table.size() * sizeof(float));
    const int32_t buffer = addBuffer(name, DType::F32, cols);
    writer_.addStep(StepKind::Embedding, {tokensBuffer_}, {buffer}, {w}, {}, name + ".feed");
    std::vector<float> &values = values_[buffer];
    for (int64_t t = 0; t < T_; ++t)
      values.insert(values.end(), table.begin() + tokens_[t] * cols,
                    table.begin() + (tokens_[t] + 1) * cols);
    return buffer;
  }
  /// The values of an input() buffer, [T, cols].
  const std::vector<float> &values(int32_t buffer) const { return values_.at(buffer); }

  /// A token-major buffer [T, cols] (cols 0: [T]) written by a step under test.
  int32_t addBuffer(const std::string &name, DType dtype, int64_t cols) {
    const int32_t b = writer_.addBuffer(name, dtype, cols ? std::vector<int64_t>{-1, cols}
                                                          : std::vector<int64_t>{-1});
    cols_[b] = cols ? cols : 1;
    return b;
  }

  /// A random weight [rows, cols] (rows 0: a vector [cols]) of `dtype`; f8e4m3 gets
  /// block scales for `block` (default DeepSeek-V3's). Values are uniform in
  /// [-amplitude, amplitude] (f8e4m3: random bytes, scales near 2.5e-3 * amplitude).
  int32_t weight(const std::string &name, DType dtype, int64_t rows, int64_t cols,
                 float amplitude = 1.f, std::vector<int64_t> block = kV3Block) {
    HostWeight host;
    host.dtype = dtype;
    host.rows = rows ? rows : 1;
    host.cols = cols;
    const int64_t n = host.rows * cols;
    std::vector<int64_t> shape = rows ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{cols};
    std::vector<uint8_t> bytes;
    std::uniform_real_distribution<float> value(-amplitude, amplitude);
    switch (dtype) {
    case DType::F32:
      host.dense.resize(size_t(n));
      for (float &v : host.dense)
        v = value(rng_);
      bytes.resize(size_t(n) * 4);
      std::memcpy(bytes.data(), host.dense.data(), bytes.size());
      break;
    case DType::F16:
    case DType::BF16:
      bytes.resize(size_t(n) * 2);
      for (int64_t i = 0; i < n; ++i) {
        const float v = value(rng_);
        const uint16_t h = dtype == DType::F16 ? cpu::floatToF16(v) : cpu::floatToBf16(v);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
        host.dense.push_back(
            float(dtype == DType::F16 ? cpu::ref::f16(h) : cpu::ref::bf16(h)));
      }
      break;
    case DType::F8E4M3: {
      bytes.resize(size_t(n));
      std::uniform_int_distribution<int> byte(0, 255);
      for (uint8_t &b : bytes) {
        int v;
        do
          v = byte(rng_);
        while ((v & 0x7F) == 0x7F); // NaN is not a weight
        b = uint8_t(v);
      }
      const int64_t blockRows = (host.rows + block[0] - 1) / block[0];
      const int64_t blockCols = (cols + block[1] - 1) / block[1];
      std::uniform_real_distribution<float> scale(1e-3f, 4e-3f);
      std::vector<float> scales(size_t(blockRows * blockCols));
      for (float &s : scales)
        s = scale(rng_) * amplitude;
      for (int64_t r = 0; r < host.rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          host.dense.push_back(float(cpu::ref::fp8(bytes[size_t(r * cols + c)]) *
                                     scales[size_t((r / block[0]) * blockCols + c / block[1])]));
      const int32_t w = writer_.addWeight(name, dtype, shape, bytes.data(), bytes.size());
      const int32_t s = writer_.addWeight(name + ".scale", DType::F32, {blockRows, blockCols},
                                          scales.data(), scales.size() * sizeof(float));
      writer_.setBlockScale(w, s, block);
      weights_[w] = std::move(host);
      return w;
    }
    case DType::I32:
      ADD_FAILURE() << "i32 is not a weight dtype";
      break;
    case DType::I8:
      // W8A8 products quantize their activations too, so a dense reference is not
      // theirs: LinearTest, MlpTest and the golden int8 tests check them.
      ADD_FAILURE() << "i8 weights are checked by the kernel and golden tests";
      break;
    }
    const int32_t w = writer_.addWeight(name, dtype, shape, bytes.data(), bytes.size());
    weights_[w] = std::move(host);
    return w;
  }
  /// The reference's view of weight `w`.
  const HostWeight &host(int32_t w) const { return weights_.at(w); }

  /// A persistent f32 state with rows of `width` values; before the run every row
  /// of every sequence holds random values (earlier tokens).
  int32_t state(const std::string &name, int64_t width) {
    const int32_t s = writer_.addState(name, DType::F32, {width});
    stateWidths_.push_back(width);
    initialStates_.push_back(random(sequences_ * capacity_ * width, 1.f));
    return s;
  }
  /// Rows 0..rows-1 of sequence `seq` of a state as it was before the run, with the
  /// rows the batch stores (c / pe values per token) written in.
  cpu::ref::SequenceCache cacheAfterStore(int32_t latentState, int32_t ropeState,
                                          const std::vector<float> &c,
                                          const std::vector<float> &pe, int32_t seq) const {
    const int64_t C = stateWidths_[size_t(latentState)], R = stateWidths_[size_t(ropeState)];
    cpu::ref::SequenceCache cache;
    const float *lat = initialStates_[size_t(latentState)].data() + seq * capacity_ * C;
    const float *ro = initialStates_[size_t(ropeState)].data() + seq * capacity_ * R;
    cache.latent.assign(lat, lat + capacity_ * C);
    cache.rope.assign(ro, ro + capacity_ * R);
    for (int64_t t = 0; t < T_; ++t)
      if (seqIds_[size_t(t)] == seq) {
        std::copy_n(c.begin() + t * C, C, cache.latent.begin() + positions_[size_t(t)] * C);
        std::copy_n(pe.begin() + t * R, R, cache.rope.begin() + positions_[size_t(t)] * R);
      }
    return cache;
  }
  /// Every sequence's cache after the batch's store.
  std::vector<cpu::ref::SequenceCache> cachesAfterStore(int32_t latentState, int32_t ropeState,
                                                        const std::vector<float> &c,
                                                        const std::vector<float> &pe) const {
    std::vector<cpu::ref::SequenceCache> caches;
    for (int32_t s = 0; s < sequences_; ++s)
      caches.push_back(cacheAfterStore(latentState, ropeState, c, pe, s));
    return caches;
  }

  /// Appends a step under test.
  void step(StepKind kind, std::vector<int32_t> operands, std::vector<int32_t> results,
            std::vector<int32_t> weights = {}, plan::StepAttrsUnion attrs = {},
            std::vector<int32_t> states = {}) {
    writer_.addStep(kind, std::move(operands), std::move(results), std::move(weights),
                    std::move(attrs), std::string(stepKindName(kind)) + ".test",
                    std::move(states));
  }

  /// Checks buffer `buffer` (f32, or i32 when `isIndex`) against `reference`, which
  /// may read what the run produced (e.g. a router's choice the next step used).
  void check(int32_t buffer, std::function<Expected(const Fetched &)> reference,
             bool isIndex = false) {
    checks_.push_back({buffer, -1, isIndex, std::move(reference)});
  }
  /// Checks state `state` (every sequence's rows) against `reference`.
  void checkState(int32_t state, std::function<Expected(const Fetched &)> reference) {
    checks_.push_back({-1, state, false, std::move(reference)});
  }
  /// Reads buffer `buffer` back without checking it (a check of another needs it).
  void fetch(int32_t buffer, bool isIndex) { fetches_.push_back({buffer, isIndex}); }

  /// Adds the logits and the entry points, places every buffer in its own arena
  /// bytes, lets `addKernels` (when set) add GPU kernel modules, writes the plan to
  /// `path` and loads it.
  Status finish(const std::string &path, std::unique_ptr<Plan> *out,
                const std::function<Status(plan::PlanT &)> &addKernels = {}) {
    std::vector<float> table = random(V_ * V_, 1.f);
    const int32_t w = writer_.addWeight("logits.table", DType::F32, {V_, V_}, table.data(),
                                        table.size() * sizeof(float));
    const int32_t logits = addBuffer("logits", DType::F32, V_);
    writer_.addStep(StepKind::Embedding, {tokensBuffer_}, {logits}, {w}, {}, "logits");
    const uint32_t steps = writer_.numSteps();
    for (const char *name : {"prefill", "decode"})
      writer_.addEntryPoint(name, {tokensBuffer_, positionsBuffer_, seqIdsBuffer_}, {logits}, 0,
                            steps, V_);
    plan::PlanT &p = writer_.plan();
    p.max_tokens = T_ + 2; // run with fewer tokens than the plan's maximum
    uint64_t offset = 0;
    for (auto &buffer : p.buffers) {
      uint64_t bytes = dtypeSize(buffer->dtype) * uint64_t(p.max_tokens);
      for (size_t d = 1; d < buffer->shape.size(); ++d)
        bytes *= uint64_t(buffer->shape[d]);
      buffer->offset = offset;
      buffer->size = bytes;
      offset += (bytes + kPlanAlignment - 1) / kPlanAlignment * kPlanAlignment;
    }
    p.arena_size = offset;
    if (addKernels)
      MOEC_RETURN_IF_ERROR(addKernels(p));
    MOEC_RETURN_IF_ERROR(writer_.write(path));
    return Plan::load(path, out);
  }

  /// Runs the plan's entry 0 on `backend` and checks every recorded tensor.
  void run(const Plan &plan, Backend &backend) {
    std::unique_ptr<Program> program;
    const Status prepared = backend.prepare(plan, 0, &program);
    ASSERT_TRUE(prepared.ok()) << prepared.message();
    DeviceBuffer arena;
    ASSERT_TRUE(backend.allocate(plan.arenaSize(), &arena).ok());
    uint8_t *base = static_cast<uint8_t *>(arena.data);
    auto at = [&](int32_t buffer) {
      return base + plan.root().buffers()->Get(flatbuffers::uoffset_t(buffer))->offset();
    };
    const uint64_t indexBytes = uint64_t(T_) * sizeof(int32_t);
    ASSERT_TRUE(backend.copyToDevice(at(tokensBuffer_), tokens_.data(), indexBytes).ok());
    ASSERT_TRUE(backend.copyToDevice(at(positionsBuffer_), positions_.data(), indexBytes).ok());
    ASSERT_TRUE(backend.copyToDevice(at(seqIdsBuffer_), seqIds_.data(), indexBytes).ok());
    std::vector<DeviceBuffer> stateMemory(initialStates_.size());
    std::vector<StateBinding> bindings(initialStates_.size());
    for (size_t s = 0; s < initialStates_.size(); ++s) {
      const uint64_t bytes = initialStates_[s].size() * sizeof(float);
      ASSERT_TRUE(backend.allocate(bytes, &stateMemory[s]).ok());
      ASSERT_TRUE(backend.copyToDevice(stateMemory[s].data, initialStates_[s].data(), bytes).ok());
      bindings[s].data = static_cast<uint8_t *>(stateMemory[s].data);
      bindings[s].rowBytes = uint64_t(stateWidths_[s]) * sizeof(float);
      bindings[s].sequenceStride = bindings[s].rowBytes * uint64_t(capacity_);
      bindings[s].capacity = capacity_;
    }
    Bindings call;
    call.tokens = T_;
    call.arena = base;
    call.states = bindings.data();
    call.numStates = bindings.size();
    call.numSequences = sequences_;
    const Status executed = backend.execute(*program, call);
    ASSERT_TRUE(executed.ok()) << executed.message();
    ASSERT_TRUE(backend.synchronize().ok());

    Fetched fetched;
    auto fetchBuffer = [&](int32_t buffer, bool isIndex) {
      const size_t n = size_t(T_ * cols_.at(buffer));
      if (isIndex) {
        fetched.i32[buffer].resize(n);
        ASSERT_TRUE(backend.copyToHost(fetched.i32[buffer].data(), at(buffer), n * 4).ok());
      } else {
        fetched.f32[buffer].resize(n);
        ASSERT_TRUE(backend.copyToHost(fetched.f32[buffer].data(), at(buffer), n * 4).ok());
      }
    };
    for (const auto &f : fetches_)
      fetchBuffer(f.first, f.second);
    for (const Check &c : checks_)
      if (c.buffer >= 0)
        fetchBuffer(c.buffer, c.isIndex);
    for (size_t s = 0; s < stateMemory.size(); ++s) {
      fetched.states.emplace_back(initialStates_[s].size());
      ASSERT_TRUE(backend.copyToHost(fetched.states.back().data(), stateMemory[s].data,
                                     initialStates_[s].size() * sizeof(float))
                      .ok());
    }
    for (const Check &c : checks_) {
      const Expected want = c.reference(fetched);
      std::vector<double> got;
      std::string what;
      if (c.state >= 0) {
        got.assign(fetched.states[size_t(c.state)].begin(), fetched.states[size_t(c.state)].end());
        what = "state " + std::to_string(c.state);
      } else if (c.isIndex) {
        got.assign(fetched.i32[c.buffer].begin(), fetched.i32[c.buffer].end());
        what = "buffer " + std::to_string(c.buffer);
      } else {
        got.assign(fetched.f32[c.buffer].begin(), fetched.f32[c.buffer].end());
        what = "buffer " + std::to_string(c.buffer);
      }
      ASSERT_EQ(got.size(), want.value.size()) << what;
      for (size_t i = 0; i < got.size(); ++i) {
        if (want.exact || c.isIndex) {
          ASSERT_EQ(float(got[i]), float(want.value[i])) << what << " at " << i;
          continue;
        }
        const double magnitude =
            want.magnitude.empty() ? std::fabs(want.value[i]) : want.magnitude[i];
        ASSERT_NEAR(got[i], want.value[i], 1e-5 * magnitude + 1e-7) << what << " at " << i;
      }
    }
    for (DeviceBuffer &m : stateMemory)
      backend.release(m);
    backend.release(arena);
  }

private:
  std::vector<float> random(int64_t n, float amplitude) {
    std::uniform_real_distribution<float> d(-amplitude, amplitude);
    std::vector<float> v(static_cast<size_t>(n));
    for (float &x : v)
      x = d(rng_);
    return v;
  }

  struct Check {
    int32_t buffer;  ///< -1 for a state
    int32_t state;   ///< -1 for a buffer
    bool isIndex;    ///< i32 buffer
    std::function<Expected(const Fetched &)> reference;
  };

  PlanWriter writer_;
  int64_t V_, T_;
  std::vector<int32_t> tokens_, positions_, seqIds_;
  int32_t sequences_;
  int64_t capacity_;
  std::mt19937 rng_;
  int32_t tokensBuffer_ = -1, positionsBuffer_ = -1, seqIdsBuffer_ = -1;
  std::map<int32_t, int64_t> cols_;               ///< per buffer: elements per token
  std::map<int32_t, std::vector<float>> values_;  ///< input() buffers' values
  std::map<int32_t, HostWeight> weights_;         ///< per weight (scales excluded)
  std::vector<int64_t> stateWidths_;              ///< per state
  std::vector<std::vector<float>> initialStates_; ///< per state, all sequences
  std::vector<Check> checks_;
  std::vector<std::pair<int32_t, bool>> fetches_;
};

//===----------------------------------------------------------------------===//
// References over the builder's host data
//===----------------------------------------------------------------------===//

Expected fromResult(const cpu::ref::Result &r) { return {r.value, r.magnitude, false}; }

Expected copyOf(const std::vector<float> &values) {
  return {std::vector<double>(values.begin(), values.end()), {}, true};
}

//===----------------------------------------------------------------------===//
// The cases
//===----------------------------------------------------------------------===//

template <typename Attrs> plan::StepAttrsUnion attrs(Attrs a) {
  plan::StepAttrsUnion u;
  u.Set(std::move(a));
  return u;
}

/// One conformance case: a name (the test's) and how to build it.
struct Case {
  std::string name;
  int64_t V = 40;                  ///< token_bound
  std::vector<int32_t> positions;  ///< per token (its count is T)
  std::vector<int32_t> seqIds;     ///< per token
  int32_t sequences = 1;           ///< sequences the states hold
  int64_t capacity = 1;            ///< rows per sequence of each state
  std::function<void(CaseBuilder &)> build;
};


/// The weight dtypes of steps whose kernels stream weights (f8e4m3 in DeepSeek-V3's
/// [128, 128] blocks).
const DType kAllWeights[] = {DType::F32, DType::F16, DType::BF16, DType::F8E4M3};
/// Weights that are never block-quantized (embedding tables, norm gammas, router gates).
const DType kUnquantized[] = {DType::F32, DType::F16, DType::BF16};

std::string label(DType d) { return dtypeName(d); }

/// A batch of T tokens of one sequence from position `start` on.
Case batch(std::string name, int64_t T, int32_t start = 0) {
  Case c;
  c.name = std::move(name) + "_T" + std::to_string(T);
  for (int64_t t = 0; t < T; ++t) {
    c.positions.push_back(start + int32_t(t));
    c.seqIds.push_back(0);
  }
  c.capacity = start + T;
  return c;
}

/// Batches for the cache and attention steps: a decode token deep in one sequence,
/// batched decode of three sequences (ids out of order), and a prefill that
/// continues one sequence past a 16-query block while another gets one token.
std::vector<Case> cacheBatches(const std::string &prefix) {
  std::vector<Case> out;
  out.push_back(batch(prefix + "_decode", 1, 70));
  Case batched;
  batched.name = prefix + "_batched3";
  batched.positions = {12, 0, 5};
  batched.seqIds = {2, 0, 1};
  batched.sequences = 3;
  batched.capacity = 13;
  out.push_back(batched);
  Case prefill;
  prefill.name = prefix + "_prefill";
  for (int32_t t = 0; t < 18; ++t) {
    prefill.positions.push_back(3 + t);
    prefill.seqIds.push_back(0);
  }
  prefill.positions.push_back(9);
  prefill.seqIds.push_back(1);
  prefill.sequences = 2;
  prefill.capacity = 24;
  out.push_back(prefill);
  return out;
}

void embeddingCases(std::vector<Case> &cases) {
  for (DType dtype : kUnquantized)
    for (int64_t T : {1, 5}) {
      Case c = batch("embedding_" + label(dtype), T);
      c.build = [dtype](CaseBuilder &b) {
        const int64_t D = 37;
        const int32_t table = b.weight("table", dtype, 40, D);
        const int32_t out = b.addBuffer("x", DType::F32, D);
        b.step(StepKind::Embedding, {b.tokens()}, {out}, {table});
        b.check(out, [&b, table, D](const Fetched &) {
          std::vector<float> rows;
          for (int64_t t = 0; t < b.T(); ++t)
            rows.insert(rows.end(), b.host(table).dense.begin() + b.token(t) * D,
                        b.host(table).dense.begin() + (b.token(t) + 1) * D);
          return copyOf(rows);
        });
      };
      cases.push_back(c);
    }
}

void rmsNormCases(std::vector<Case> &cases) {
  for (DType dtype : kUnquantized)
    for (int64_t T : {1, 5})
      for (bool inPlace : {false, true}) {
        Case c = batch("rms_norm_" + label(dtype) + (inPlace ? "_inplace" : ""), T);
        c.build = [dtype, inPlace](CaseBuilder &b) {
          const int64_t D = 45;
          const int32_t x = b.input("x", D, 3.f);
          const int32_t gamma = b.weight("gamma", dtype, 0, D);
          const int32_t y = inPlace ? x : b.addBuffer("y", DType::F32, D);
          plan::RmsNormAttrsT a;
          a.eps = 1e-5f;
          b.step(StepKind::RmsNorm, {x}, {y}, {gamma}, attrs(a));
          b.check(y, [&b, x, gamma, D](const Fetched &) {
            Expected e;
            e.value = cpu::ref::rmsNorm(b.values(x), b.T(), D, b.host(gamma).view(), 1e-5);
            return e;
          });
        };
        cases.push_back(c);
      }
}

/// x [T, 200] times W [150, 200]^T: partial scale blocks in both directions.
void linearCase(CaseBuilder &b, DType dtype, std::vector<int64_t> block) {
  const int64_t K = 200, N = 150;
  const int32_t x = b.input("x", K);
  const int32_t w = b.weight("w", dtype, N, K, 0.1f, block);
  const int32_t y = b.addBuffer("y", DType::F32, N);
  b.step(StepKind::Linear, {x}, {y}, {w});
  b.check(y, [&b, x, w](const Fetched &) {
    return fromResult(cpu::ref::linear(b.values(x), b.T(), b.host(w).view()));
  });
}

void linearCases(std::vector<Case> &cases) {
  for (DType dtype : kAllWeights)
    for (int64_t T : {1, 3, 17}) {
      Case c = batch("linear_" + label(dtype), T);
      c.build = [dtype](CaseBuilder &b) { linearCase(b, dtype, kV3Block); };
      cases.push_back(c);
    }
  // Another block shape: backends that implement only [128, 128] refuse it.
  Case c = batch("linear_f8e4m3_block64x32", 3);
  c.build = [](CaseBuilder &b) { linearCase(b, DType::F8E4M3, {64, 32}); };
  cases.push_back(c);
}

void addCases(std::vector<Case> &cases) {
  for (int64_t T : {1, 7})
    for (bool inPlace : {false, true}) {
      Case c = batch(std::string("add") + (inPlace ? "_inplace" : ""), T);
      c.build = [inPlace](CaseBuilder &b) {
        const int64_t D = 50;
        const int32_t x = b.input("a", D), y = b.input("b", D);
        const int32_t out = inPlace ? x : b.addBuffer("out", DType::F32, D);
        b.step(StepKind::Add, {x, y}, {out});
        b.check(out, [&b, x, y](const Fetched &) {
          std::vector<float> sum(b.values(x).size());
          for (size_t i = 0; i < sum.size(); ++i)
            sum[i] = b.values(x)[i] + b.values(y)[i];
          return copyOf(sum);
        });
      };
      cases.push_back(c);
    }
}

/// The fused residual add + RMSNorm: both results against plain loops (the sum
/// exactly), with the sum in place of an operand and the norm in place of the other.
void addRmsNormCases(std::vector<Case> &cases) {
  for (DType dtype : kUnquantized)
    for (int64_t T : {1, 6})
      for (bool inPlace : {false, true}) {
        Case c = batch("add_rms_norm_" + label(dtype) + (inPlace ? "_inplace" : ""), T);
        c.build = [dtype, inPlace](CaseBuilder &b) {
          const int64_t D = 45;
          const int32_t x = b.input("a", D, 3.f), y = b.input("b", D);
          const int32_t gamma = b.weight("gamma", dtype, 0, D);
          const int32_t sum = inPlace ? x : b.addBuffer("sum", DType::F32, D);
          const int32_t normed = inPlace ? y : b.addBuffer("normed", DType::F32, D);
          plan::RmsNormAttrsT a;
          a.eps = 1e-5f;
          b.step(StepKind::AddRmsNorm, {x, y}, {sum, normed}, {gamma}, attrs(a));
          auto added = [&b, x, y] {
            std::vector<float> v(b.values(x).size());
            for (size_t i = 0; i < v.size(); ++i)
              v[i] = b.values(x)[i] + b.values(y)[i];
            return v;
          };
          b.check(sum, [added](const Fetched &) { return copyOf(added()); });
          b.check(normed, [&b, added, gamma, D](const Fetched &) {
            std::vector<float> v = added();
            Expected e;
            e.value = cpu::ref::rmsNorm(v, b.T(), D,
                                        b.host(gamma).view(), 1e-5);
            return e;
          });
        };
        cases.push_back(c);
      }
}

void sliceCases(std::vector<Case> &cases) {
  for (int64_t T : {1, 4}) {
    Case c = batch("slice_columns", T);
    c.build = [](CaseBuilder &b) {
      const int64_t X = 30, begin = 7, width = 13;
      const int32_t x = b.input("x", X);
      const int32_t y = b.addBuffer("y", DType::F32, width);
      plan::SliceAttrsT a;
      a.begin = begin;
      a.width = width;
      b.step(StepKind::SliceColumns, {x}, {y}, {}, attrs(a));
      b.check(y, [&b, x, X](const Fetched &) {
        std::vector<float> out;
        for (int64_t t = 0; t < b.T(); ++t)
          out.insert(out.end(), b.values(x).begin() + t * X + begin,
                     b.values(x).begin() + t * X + begin + width);
        return copyOf(out);
      });
    };
    cases.push_back(c);
  }
}

void ropeCases(std::vector<Case> &cases) {
  for (plan::RopeLayout layout : {plan::RopeLayout::Interleaved, plan::RopeLayout::Half})
    for (bool yarn : {false, true})
      for (int64_t T : {1, 6}) {
        Case c = batch(std::string("rope_") +
                           (layout == plan::RopeLayout::Half ? "half" : "interleaved") +
                           (yarn ? "_yarn" : ""),
                       T, 300);
        c.build = [layout, yarn](CaseBuilder &b) {
          // rope_dim 16: the exponents 2j/d are exact in fp32, as for DeepSeek's 64,
          // so the double reference frequencies round to the spec's fp32 ones. (At
          // positions in the thousands one ulp of a frequency moves the angle by
          // 1e-4; the kernel tests cover large positions with the kernel's own
          // frequencies.)
          const int64_t heads = 3, stride = 20, offset = 3, dim = 16;
          const int32_t x = b.input("x", heads * stride);
          plan::RopeAttrsT a;
          a.heads = heads;
          a.head_stride = stride;
          a.offset = offset;
          a.layout = layout;
          a.rope_dim = dim;
          a.theta = 50000.f;
          cpu::RopeParams p;
          p.dim = dim;
          p.theta = a.theta;
          if (yarn) {
            a.yarn = std::make_unique<plan::YarnParamsT>();
            a.yarn->factor = 40.f;
            a.yarn->original_max_position_embeddings = 4096;
            a.yarn->beta_fast = 32.f;
            a.yarn->beta_slow = 1.f;
            a.yarn->attention_factor = 0.9f; // read from the step, not assumed 1
            p.yarn = true;
            p.factor = 40.f;
            p.originalMaxPositions = 4096;
            p.attentionFactor = 0.9f;
          }
          b.step(StepKind::Rope, {x, b.positions()}, {x}, {}, attrs(std::move(a)));
          b.check(x, [&b, x, p, layout](const Fetched &) {
            const cpu::RopeLayout l = layout == plan::RopeLayout::Half
                                          ? cpu::RopeLayout::Half
                                          : cpu::RopeLayout::Interleaved;
            Expected e;
            e.value = cpu::ref::rope(b.values(x), b.T(), heads, stride, offset, p,
                                     cpu::ref::ropeFrequencies(p), b.positionValues(), l);
            // Each rotated value is a sum of two terms, x_a cos + x_b sin.
            e.magnitude.assign(e.value.size(), 0.0);
            for (size_t i = 0; i < e.value.size(); ++i) {
              const int64_t col = int64_t(i) % stride - offset;
              double m = std::fabs(b.values(x)[i]);
              if (col >= 0 && col < p.dim) {
                const int64_t partner =
                    l == cpu::RopeLayout::Interleaved ? (col ^ 1) : (col + p.dim / 2) % p.dim;
                m += std::fabs(b.values(x)[i - size_t(col) + size_t(partner)]);
              }
              e.magnitude[i] = m;
            }
            return e;
          });
        };
        cases.push_back(c);
      }
}

/// c [T, C] and pe [T, R] inputs, two states, and the cache_store writing them.
struct Stored {
  int32_t c, pe, latent, rope;
};
Stored storeStep(CaseBuilder &b, int64_t C, int64_t R) {
  Stored s;
  s.c = b.input("c", C);
  s.pe = b.input("pe", R);
  s.latent = b.state("latent_cache", C);
  s.rope = b.state("rope_cache", R);
  b.step(StepKind::CacheStore, {s.c, s.pe, b.positions(), b.seqIds()}, {}, {}, {},
         {s.latent, s.rope});
  return s;
}
std::vector<cpu::ref::SequenceCache> cachesOf(const CaseBuilder &b, const Stored &s) {
  return b.cachesAfterStore(s.latent, s.rope, b.values(s.c), b.values(s.pe));
}

void cacheStoreCases(std::vector<Case> &cases) {
  for (Case c : cacheBatches("cache_store")) {
    c.build = [](CaseBuilder &b) {
      const Stored s = storeStep(b, 40, 12);
      for (int32_t state : {s.latent, s.rope})
        b.checkState(state, [&b, s, state](const Fetched &) {
          std::vector<float> all;
          for (const cpu::ref::SequenceCache &cache : cachesOf(b, s)) {
            const std::vector<float> &rows = state == s.latent ? cache.latent : cache.rope;
            all.insert(all.end(), rows.begin(), rows.end());
          }
          return copyOf(all);
        });
    };
    cases.push_back(c);
  }
}

void headLinearCases(std::vector<Case> &cases) {
  for (DType dtype : kAllWeights)
    for (bool transpose : {false, true})
      for (int64_t T : {1, 5}) {
        Case c = batch("head_linear_" + label(dtype) + (transpose ? "_transpose" : ""), T);
        c.build = [dtype, transpose](CaseBuilder &b) {
          // Three heads of x at stride 90 from column 7; W rows per head at stride
          // 130 from row 20: both slices leave gaps and cross scale blocks.
          cpu::HeadLinearParams p;
          p.heads = 3;
          p.inStride = 90;
          p.inOffset = 7;
          p.rowStride = 130;
          p.rowOffset = 20;
          p.rows = 50;
          p.transpose = transpose;
          p.inWidth = transpose ? p.rows : 70;
          const int64_t wCols = transpose ? 150 : p.inWidth;
          const int32_t x = b.input("x", 300);
          const int32_t w = b.weight("w", dtype, 3 * 130, wCols, 0.2f);
          const int32_t y = b.addBuffer("y", DType::F32, p.heads * p.outWidth(b.host(w).view()));
          plan::HeadLinearAttrsT a;
          a.heads = p.heads;
          a.in_stride = p.inStride;
          a.in_offset = p.inOffset;
          a.in_width = p.inWidth;
          a.row_stride = p.rowStride;
          a.row_offset = p.rowOffset;
          a.rows = p.rows;
          a.transpose = p.transpose;
          b.step(StepKind::HeadLinear, {x}, {y}, {w}, attrs(a));
          b.check(y, [&b, x, w, p](const Fetched &) {
            return fromResult(cpu::ref::headLinear(b.values(x), b.T(), 300, b.host(w).view(), p));
          });
        };
        cases.push_back(c);
      }
}

void latentAttentionCases(std::vector<Case> &cases) {
  for (Case c : cacheBatches("latent_attention")) {
    c.build = [](CaseBuilder &b) {
      cpu::LatentAttentionParams p;
      p.heads = 4;
      p.latentDim = 40;
      p.ropeDim = 12;
      p.qStride = 20;
      p.qRopeOffset = 6;
      p.softmaxScale = 0.3f;
      const Stored s = storeStep(b, p.latentDim, p.ropeDim);
      const int32_t qLat = b.input("q_lat", p.heads * p.latentDim);
      const int32_t q = b.input("q", p.heads * p.qStride);
      const int32_t o = b.addBuffer("o_lat", DType::F32, p.heads * p.latentDim);
      plan::LatentAttentionAttrsT a;
      a.heads = p.heads;
      a.latent_dim = p.latentDim;
      a.rope_dim = p.ropeDim;
      a.q_stride = p.qStride;
      a.q_rope_offset = p.qRopeOffset;
      a.softmax_scale = p.softmaxScale;
      b.step(StepKind::LatentAttention, {qLat, q, b.positions(), b.seqIds()}, {o}, {}, attrs(a),
             {s.latent, s.rope});
      b.check(o, [&b, s, qLat, q, p](const Fetched &) {
        return fromResult(cpu::ref::latentAttention(b.values(qLat), b.values(q),
                                                    p.heads * p.qStride, b.T(),
                                                    b.positionValues(), b.seqIdValues(),
                                                    cachesOf(b, s), p));
      });
    };
    cases.push_back(c);
  }
}

/// The naive MLA core's dims in the cases.
cpu::ExpandedAttentionParams expandedDims() {
  cpu::ExpandedAttentionParams p;
  p.heads = 3;
  p.nopeDim = 16;
  p.ropeDim = 8;
  p.vDim = 12;
  p.latentDim = 40;
  p.softmaxScale = 0.2f;
  return p;
}

void expandedAttentionCases(std::vector<Case> &cases) {
  for (DType dtype : kAllWeights)
    for (Case c : cacheBatches("expanded_attention_" + label(dtype))) {
      c.build = [dtype](CaseBuilder &b) {
        const cpu::ExpandedAttentionParams p = expandedDims();
        const Stored s = storeStep(b, p.latentDim, p.ropeDim);
        const int32_t q = b.input("q", p.heads * (p.nopeDim + p.ropeDim));
        const int32_t kvB = b.weight("kv_b", dtype, p.heads * (p.nopeDim + p.vDim), p.latentDim,
                                     0.3f);
        const int32_t o = b.addBuffer("o", DType::F32, p.heads * p.vDim);
        plan::ExpandedAttentionAttrsT a;
        a.heads = p.heads;
        a.nope_dim = p.nopeDim;
        a.rope_dim = p.ropeDim;
        a.v_dim = p.vDim;
        a.latent_dim = p.latentDim;
        a.softmax_scale = p.softmaxScale;
        b.step(StepKind::ExpandedAttention, {q, b.positions(), b.seqIds()}, {o}, {kvB}, attrs(a),
               {s.latent, s.rope});
        b.check(o, [&b, s, q, kvB, p](const Fetched &) {
          return fromResult(cpu::ref::mla(b.values(q), b.T(), b.positionValues(),
                                          b.seqIdValues(), cachesOf(b, s), b.host(kvB).view(), p));
        });
      };
      cases.push_back(c);
    }
}

/// The absorbed form as the compiler emits it: cache_store, head_linear (W_UK of
/// kv_b, transposed), latent_attention, head_linear (W_UV) - the same function as
/// expanded_attention over the same kv_b.
void absorbedChainCases(std::vector<Case> &cases) {
  for (DType dtype : kAllWeights) {
    std::vector<Case> batches = cacheBatches("mla_absorbed_" + label(dtype));
    Case c = batches[1];
    c.build = [dtype](CaseBuilder &b) {
      const cpu::ExpandedAttentionParams p = expandedDims();
      const int64_t H = p.heads, qk = p.nopeDim + p.ropeDim, headRows = p.nopeDim + p.vDim;
      const Stored s = storeStep(b, p.latentDim, p.ropeDim);
      const int32_t q = b.input("q", H * qk);
      const int32_t kvB = b.weight("kv_b", dtype, H * headRows, p.latentDim, 0.3f);
      const int32_t qLat = b.addBuffer("q_lat", DType::F32, H * p.latentDim);
      const int32_t oLat = b.addBuffer("o_lat", DType::F32, H * p.latentDim);
      const int32_t o = b.addBuffer("o", DType::F32, H * p.vDim);
      plan::HeadLinearAttrsT uk;
      uk.heads = H;
      uk.in_stride = qk;
      uk.in_width = p.nopeDim;
      uk.row_stride = headRows;
      uk.rows = p.nopeDim;
      uk.transpose = true;
      b.step(StepKind::HeadLinear, {q}, {qLat}, {kvB}, attrs(uk));
      plan::LatentAttentionAttrsT la;
      la.heads = H;
      la.latent_dim = p.latentDim;
      la.rope_dim = p.ropeDim;
      la.q_stride = qk;
      la.q_rope_offset = p.nopeDim;
      la.softmax_scale = p.softmaxScale;
      b.step(StepKind::LatentAttention, {qLat, q, b.positions(), b.seqIds()}, {oLat}, {},
             attrs(la), {s.latent, s.rope});
      plan::HeadLinearAttrsT uv;
      uv.heads = H;
      uv.in_stride = p.latentDim;
      uv.in_width = p.latentDim;
      uv.row_stride = headRows;
      uv.row_offset = p.nopeDim;
      uv.rows = p.vDim;
      b.step(StepKind::HeadLinear, {oLat}, {o}, {kvB}, attrs(uv));
      b.check(o, [&b, s, q, kvB, p](const Fetched &) {
        return fromResult(cpu::ref::mla(b.values(q), b.T(), b.positionValues(), b.seqIdValues(),
                                        cachesOf(b, s), b.host(kvB).view(), p));
      });
    };
    cases.push_back(c);
  }
}

/// Router attributes and the matching reference parameters.
struct RouterSetup {
  plan::RouterAttrsT attrs;
  cpu::RouterParams params;
};
RouterSetup routerSetup(bool grouped, int64_t experts, int64_t topK) {
  RouterSetup r;
  r.attrs.experts = r.params.experts = experts;
  r.attrs.top_k = r.params.topK = topK;
  if (grouped) { // DeepSeek-V3's selection: sigmoid, groups by top-2 sum, renormalised
    r.attrs.groups = r.params.groups = 4;
    r.attrs.topk_groups = r.params.topkGroups = 2;
    r.attrs.score_func = plan::ScoreFunc::Sigmoid;
    r.params.score = cpu::ScoreFunc::Sigmoid;
    r.attrs.group_score = plan::GroupScore::Top2Sum;
    r.params.groupScore = cpu::GroupScore::Top2Sum;
    r.attrs.norm_topk_prob = r.params.normTopkProb = true;
    r.attrs.routed_scaling_factor = r.params.routedScalingFactor = 2.5f;
  }
  return r;
}

void routerCases(std::vector<Case> &cases) {
  for (DType dtype : kUnquantized)
    for (bool bias : {false, true})
      for (bool grouped : {false, true})
        for (int64_t T : {1, 5}) {
          Case c = batch("router_" + label(dtype) + (bias ? "_bias" : "") +
                             (grouped ? "_grouped_sigmoid" : "_softmax"),
                         T);
          c.build = [dtype, bias, grouped](CaseBuilder &b) {
            const int64_t D = 64, E = 16, K = 4;
            const int32_t x = b.input("x", D);
            const int32_t gate = b.weight("gate", dtype, E, D, 0.5f);
            std::vector<int32_t> weights = {gate};
            if (bias)
              weights.push_back(b.weight("bias", DType::F32, 0, E, 0.05f));
            const int32_t idx = b.addBuffer("idx", DType::I32, K);
            const int32_t w = b.addBuffer("weights", DType::F32, K);
            RouterSetup r = routerSetup(grouped, E, K);
            b.step(StepKind::Router, {x}, {idx, w}, weights, attrs(r.attrs));
            const int32_t biasWeight = bias ? weights[1] : -1;
            // Both results from one reference routing per token.
            auto route = [&b, x, gate, biasWeight, r, E](bool wantIdx) {
              const cpu::ref::Result logits =
                  cpu::ref::linear(b.values(x), b.T(), b.host(gate).view());
              Expected e;
              for (int64_t t = 0; t < b.T(); ++t) {
                std::vector<double> tokenLogits(logits.value.begin() + t * E,
                                                logits.value.begin() + (t + 1) * E);
                std::vector<int32_t> idx;
                std::vector<double> weights;
                cpu::ref::route(tokenLogits,
                                biasWeight >= 0 ? b.host(biasWeight).dense.data() : nullptr,
                                r.params, idx, weights);
                if (wantIdx)
                  e.value.insert(e.value.end(), idx.begin(), idx.end());
                else
                  e.value.insert(e.value.end(), weights.begin(), weights.end());
              }
              e.exact = wantIdx;
              return e;
            };
            b.check(idx, [route](const Fetched &) { return route(true); }, /*isIndex=*/true);
            b.check(w, [route](const Fetched &) { return route(false); });
          };
          cases.push_back(c);
        }
}

/// Gate, up and down weights of one SwiGLU MLP [I, D], [I, D], [D, I].
std::vector<int32_t> mlpWeights(CaseBuilder &b, const std::string &name, DType dtype, int64_t D,
                                int64_t I) {
  const float a = float(2.0 / std::sqrt(double(D))), d = float(2.0 / std::sqrt(double(I)));
  return {b.weight(name + ".gate", dtype, I, D, a), b.weight(name + ".up", dtype, I, D, a),
          b.weight(name + ".down", dtype, D, I, d)};
}
cpu::SwigluWeights mlpView(const CaseBuilder &b, const std::vector<int32_t> &w, size_t first) {
  return {b.host(w[first]).view(), b.host(w[first + 1]).view(), b.host(w[first + 2]).view()};
}

void swigluCases(std::vector<Case> &cases) {
  for (DType dtype : kAllWeights)
    for (int64_t T : {1, 4}) {
      Case c = batch("swiglu_mlp_" + label(dtype), T);
      c.build = [dtype](CaseBuilder &b) {
        const int64_t D = 48, I = 40;
        const int32_t x = b.input("x", D);
        const std::vector<int32_t> w = mlpWeights(b, "mlp", dtype, D, I);
        const int32_t out = b.addBuffer("out", DType::F32, D);
        b.step(StepKind::SwigluMlp, {x}, {out}, w);
        b.check(out, [&b, x, w](const Fetched &) {
          return fromResult(cpu::ref::swiglu(b.values(x), b.T(), mlpView(b, w, 0)));
        });
      };
      cases.push_back(c);
    }
}

/// A fused SwiGLU's weights: gate_up [2I, D], gate and up rows interleaved by
/// `unit` (unit u: gate rows [uU, uU+n), then the same up rows), and down [D, I].
/// FP8 needs I and the unit in whole 128-row scale blocks; the others a
/// partial last unit too (I = 40, unit 16).
struct FusedMlpShape {
  int64_t I, unit;
};
FusedMlpShape fusedMlpShape(DType dtype) {
  return dtype == DType::F8E4M3 ? FusedMlpShape{256, 128} : FusedMlpShape{40, 16};
}
std::vector<int32_t> fusedMlpWeights(CaseBuilder &b, const std::string &name, DType dtype,
                                     int64_t D, FusedMlpShape shape) {
  const float a = float(2.0 / std::sqrt(double(D))), d = float(2.0 / std::sqrt(double(shape.I)));
  return {b.weight(name + ".gate_up", dtype, 2 * shape.I, D, a),
          b.weight(name + ".down", dtype, D, shape.I, d)};
}
/// The reference's gate and up, taken apart from the interleaved stack.
struct UnstackedMlp {
  HostWeight gate, up;
  const HostWeight *down;
  cpu::SwigluWeights view() const { return {gate.view(), up.view(), down->view()}; }
};
UnstackedMlp unstack(const CaseBuilder &b, const std::vector<int32_t> &w, size_t first,
                     int64_t unit) {
  const HostWeight &gateUp = b.host(w[first]);
  const int64_t I = gateUp.rows / 2, D = gateUp.cols;
  UnstackedMlp m;
  m.down = &b.host(w[first + 1]);
  for (HostWeight *part : {&m.gate, &m.up}) {
    part->rows = I;
    part->cols = D;
  }
  for (int64_t r0 = 0, stacked = 0; r0 < I; r0 += unit)
    for (HostWeight *part : {&m.gate, &m.up}) {
      const int64_t n = std::min(unit, I - r0);
      part->dense.insert(part->dense.end(), gateUp.dense.begin() + stacked * D,
                         gateUp.dense.begin() + (stacked + n) * D);
      stacked += n;
    }
  return m;
}

void fusedSwigluCases(std::vector<Case> &cases) {
  for (DType dtype : kAllWeights)
    for (int64_t T : {1, 4}) {
      Case c = batch("fused_swiglu_mlp_" + label(dtype), T);
      c.build = [dtype](CaseBuilder &b) {
        const int64_t D = 48;
        const FusedMlpShape shape = fusedMlpShape(dtype);
        const int32_t x = b.input("x", D);
        const std::vector<int32_t> w = fusedMlpWeights(b, "mlp", dtype, D, shape);
        const int32_t out = b.addBuffer("out", DType::F32, D);
        plan::GateUpAttrsT a;
        a.rows = shape.unit;
        b.step(StepKind::FusedSwigluMlp, {x}, {out}, w, attrs(a));
        b.check(out, [&b, x, w, shape](const Fetched &) {
          return fromResult(
              cpu::ref::swiglu(b.values(x), b.T(), unstack(b, w, 0, shape.unit).view()));
        });
      };
      cases.push_back(c);
    }
}

void moeCases(std::vector<Case> &cases) {
  for (bool fused : {false, true})
  for (DType dtype : kAllWeights)
    for (int64_t T : {1, 6}) {
      Case c = batch((fused ? "fused_moe_experts_" : "moe_experts_") + label(dtype), T);
      c.build = [dtype, fused](CaseBuilder &b) {
        const int64_t D = 48, I = 40, E = 4, K = 2;
        const FusedMlpShape shape = fusedMlpShape(dtype);
        const size_t perExpert = fused ? 2 : 3;
        const int32_t x = b.input("x", D);
        const int32_t gate = b.weight("gate", DType::F32, E, D, 0.5f);
        const int32_t idx = b.addBuffer("idx", DType::I32, K);
        const int32_t weights = b.addBuffer("weights", DType::F32, K);
        RouterSetup r = routerSetup(false, E, K);
        b.step(StepKind::Router, {x}, {idx, weights}, {gate}, attrs(r.attrs));
        std::vector<int32_t> w;
        for (int64_t e = 0; e < E; ++e) {
          const std::string name = "expert" + std::to_string(e);
          const std::vector<int32_t> mlp = fused ? fusedMlpWeights(b, name, dtype, D, shape)
                                                 : mlpWeights(b, name, dtype, D, I);
          w.insert(w.end(), mlp.begin(), mlp.end());
        }
        const int32_t out = b.addBuffer("out", DType::F32, D);
        plan::MoeAttrsT a;
        a.experts = E;
        a.top_k = K;
        a.gate_up_rows = fused ? shape.unit : 0;
        b.step(fused ? StepKind::FusedMoeExperts : StepKind::MoeExperts, {x, idx, weights},
               {out}, w, attrs(a));
        // The experts are checked on the choice the backend's router made.
        b.fetch(idx, true);
        b.fetch(weights, false);
        b.check(out, [&b, x, w, idx, weights, D, E, K, fused, shape,
                      perExpert](const Fetched &got) {
          Expected e;
          e.value.assign(size_t(b.T() * D), 0.0);
          e.magnitude.assign(e.value.size(), 0.0);
          for (int64_t expert = 0; expert < E; ++expert) {
            const size_t first = perExpert * size_t(expert);
            const cpu::ref::Result y =
                fused ? cpu::ref::swiglu(b.values(x), b.T(),
                                         unstack(b, w, first, shape.unit).view())
                      : cpu::ref::swiglu(b.values(x), b.T(), mlpView(b, w, first));
            for (int64_t t = 0; t < b.T(); ++t)
              for (int64_t k = 0; k < K; ++k) {
                if (got.i32.at(idx)[size_t(t * K + k)] != expert)
                  continue;
                const double p = got.f32.at(weights)[size_t(t * K + k)];
                for (int64_t d = 0; d < D; ++d) {
                  e.value[size_t(t * D + d)] += p * y.value[size_t(t * D + d)];
                  e.magnitude[size_t(t * D + d)] += std::fabs(p) * y.magnitude[size_t(t * D + d)];
                }
              }
          }
          return e;
        });
      };
      cases.push_back(c);
    }
}

/// Every case, in step-kind order.
const std::vector<Case> &allCases() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> out;
    embeddingCases(out);
    rmsNormCases(out);
    linearCases(out);
    addCases(out);
    addRmsNormCases(out);
    sliceCases(out);
    ropeCases(out);
    cacheStoreCases(out);
    headLinearCases(out);
    latentAttentionCases(out);
    expandedAttentionCases(out);
    absorbedChainCases(out);
    routerCases(out);
    moeCases(out);
    swigluCases(out);
    fusedSwigluCases(out);
    return out;
  }();
  return cases;
}

/// Kernels made where the compiler is, for a GPU machine without it
/// (tests/gpu/check.sh --prepare): MOEC_CONFORMANCE_SAVE_KERNELS=FILE makes the
/// BackendConformanceGpuKernels test write every case's kernels there, and
/// MOEC_CONFORMANCE_KERNELS=FILE makes the cuda cases take theirs from it instead of
/// generating them (KernelFile.h; names "<target>/<case>").
#ifdef MOEC_CONFORMANCE_GPU_KERNELS
testing::KernelFile &savedGpuKernels() {
  static testing::KernelFile kernels;
  return kernels;
}
#endif

/// The GPU kernels of case `name`'s plan, generated by codegen/ptx as moec compile
/// --target=sm_90a,sm_80 would (where the compiler is built), or read from
/// MOEC_CONFORMANCE_KERNELS.
Status addGpuKernels(const std::string &name, plan::PlanT &p) {
  for (const char *chip : {"sm_90a", "sm_80"}) {
    testing::SavedKernels k;
    if (const char *file = std::getenv("MOEC_CONFORMANCE_KERNELS")) {
      static testing::KernelFile fromFile;
      static Status read = testing::readKernelFile(file, &fromFile);
      if (!read.ok())
        return read;
      auto found = fromFile.find(std::string(chip) + "/" + name);
      if (found == fromFile.end())
        return Status::error("%s: no kernels for case %s on %s", file, name.c_str(), chip);
      k = found->second;
    } else {
#ifdef MOEC_CONFORMANCE_GPU_KERNELS
      auto generated = ptx::generateStepKernelPtx(p, chip);
      if (!generated)
        return Status::error("%s", llvm::toString(generated.takeError()).c_str());
      k = {chip, generated->ptx, std::move(generated->entries)};
      savedGpuKernels()[std::string(chip) + "/" + name] = k;
#else
      return Status::error("this build has no compiler to generate GPU kernels with (give "
                           "MOEC_CONFORMANCE_KERNELS=FILE, written where it is)");
#endif
    }
    auto module = std::make_unique<plan::KernelModuleT>();
    module->target_arch = chip;
    module->ptx = k.ptx;
    for (plan::KernelEntryT &entry : k.entries)
      module->kernels.push_back(std::make_unique<plan::KernelEntryT>(std::move(entry)));
    p.kernel_modules.push_back(std::move(module));
  }
  return Status();
}

/// Builds case `c` for `backendName`, writes and loads its plan.
void buildCase(const Case &c, CaseBuilder &b, std::unique_ptr<Plan> *plan,
               const std::string &backendName = "cpu") {
  c.build(b);
  const std::string path =
      ::testing::TempDir() + "moec_conformance_" + backendName + "_" + c.name + ".plan";
  std::function<Status(plan::PlanT &)> kernels;
  if (backendName == "cuda")
    kernels = [&c](plan::PlanT &p) { return addGpuKernels(c.name, p); };
  const Status loaded = b.finish(path, plan, kernels);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
}

/// Case `c`'s plan for the cuda backend: with its kernels for both targets.
void buildCudaCase(const Case &c, std::unique_ptr<Plan> *plan) {
  CaseBuilder b(c.V, c.positions, c.seqIds, c.sequences, c.capacity, 1234);
  buildCase(c, b, plan, "cuda");
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const auto *modules = (*plan)->root().kernel_modules();
  ASSERT_NE(modules, nullptr);
  ASSERT_EQ(modules->size(), 2u);
}

#ifdef MOEC_CONFORMANCE_GPU_KERNELS
/// The generated GPU kernels, interpreted on the CPU, run every case too: registered
/// before the cases are instantiated over backendNames().
const bool kEmulatedGpuBackends = (registerEmulatedGpuBackends(), true);
#endif

/// (backend name, index into allCases()).
using Param = std::tuple<std::string, size_t>;

class BackendConformance : public ::testing::TestWithParam<Param> {};

TEST_P(BackendConformance, MatchesReference) {
  const std::string &backendName = std::get<0>(GetParam());
  const Case &c = allCases()[std::get<1>(GetParam())];
  CaseBuilder b(c.V, c.positions, c.seqIds, c.sequences, c.capacity, 1234);
  std::unique_ptr<Backend> backend;
  const Status created = createBackend(backendName, BackendOptions(), &backend);
  // A GPU backend on a machine without the GPU says why, in one line, and skips.
  if (!created.ok() && backendName != "cpu")
    GTEST_SKIP() << created.message();
  ASSERT_TRUE(created.ok()) << created.message();
  std::unique_ptr<Plan> plan;
  buildCase(c, b, &plan, backendName);
  if (HasFatalFailure())
    return;
  const EntryPointInfo &entry = plan->entryPoint(0);
  for (uint32_t s = entry.firstStep; s < entry.firstStep + entry.numSteps; ++s) {
    std::string why;
    if (!backend->supportsStep(stepTypes(*plan, s), &why))
      GTEST_SKIP() << backendName << " does not run " << plan->stepLabel(s) << ": " << why;
  }
  b.run(*plan, *backend);
}

#ifdef MOEC_CONFORMANCE_GPU_KERNELS
/// Without a GPU, what can be checked of the cuda runs: every case's plan gets
/// its kernels, one entry for each step of a kind the cuda backend runs, for
/// both targets.
TEST(BackendConformanceGpuKernels, EveryCaseTheCudaBackendRunsHasItsKernels) {
  if (std::getenv("MOEC_CONFORMANCE_KERNELS"))
    GTEST_SKIP() << "the kernels come from MOEC_CONFORMANCE_KERNELS, not the compiler";
  size_t covered = 0;
  for (const Case &c : allCases()) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<Plan> plan;
    buildCudaCase(c, &plan);
    ASSERT_FALSE(HasFatalFailure());
    for (const plan::KernelModule *module : *plan->root().kernel_modules()) {
      std::vector<int> entries(plan->root().steps()->size(), 0);
      for (const plan::KernelEntry *e : *module->kernels())
        ++entries[size_t(e->step())];
      for (uint32_t s = 0; s < entries.size(); ++s) {
        StepTypes types = stepTypes(*plan, s);
        // Every kind but int8 weights (FP8 KV caches on both targets).
        bool cudaRuns = ptx::hasStepKernelGenerator(types.kind);
        for (DType w : types.weights)
          cudaRuns &= w != DType::I8;
        EXPECT_EQ(entries[s] > 0, cudaRuns) << entries[s]
            << module->target_arch()->str() << " " << plan->stepLabel(s);
        covered += cudaRuns;
      }
    }
  }
  EXPECT_GT(covered, 100u);
  // The kernels file a GPU machine without the compiler reads back (KernelFile.h)
  // holds every case's kernels as generated.
  const std::string roundTrip = ::testing::TempDir() + "moec_conformance_kernels.json";
  ASSERT_TRUE(testing::writeKernelFile(roundTrip, savedGpuKernels()).ok());
  testing::KernelFile read;
  const Status readBack = testing::readKernelFile(roundTrip, &read);
  ASSERT_TRUE(readBack.ok()) << readBack.message();
  std::remove(roundTrip.c_str());
  ASSERT_EQ(read.size(), savedGpuKernels().size());
  EXPECT_GT(read.size(), 200u) << "both targets' kernels of every case";
  for (const auto &[name, k] : savedGpuKernels()) {
    const testing::SavedKernels &r = read[name];
    EXPECT_EQ(r.target, k.target) << name;
    EXPECT_EQ(r.ptx, k.ptx) << name;
    ASSERT_EQ(r.entries.size(), k.entries.size()) << name;
    for (size_t i = 0; i < k.entries.size(); ++i) {
      const plan::KernelEntryT &a = r.entries[i], &b = k.entries[i];
      EXPECT_TRUE(a.name == b.name && a.step == b.step && a.grid == b.grid &&
                  a.block == b.block && a.shared_mem_bytes == b.shared_mem_bytes &&
                  a.tokens_per_block == b.tokens_per_block &&
                  a.scratch_bytes_per_token == b.scratch_bytes_per_token &&
                  a.weight_table == b.weight_table && a.min_tokens == b.min_tokens &&
                  a.max_tokens == b.max_tokens && a.tma_box == b.tma_box)
          << name << " entry " << i << " (" << b.name << ")";
    }
  }
  if (const char *file = std::getenv("MOEC_CONFORMANCE_SAVE_KERNELS")) {
    const Status saved = testing::writeKernelFile(file, savedGpuKernels());
    ASSERT_TRUE(saved.ok()) << saved.message();
    std::printf("wrote %s: the kernels of %zu cases for sm_90a and sm_80\n", file,
                savedGpuKernels().size() / 2);
  }
}
#endif

/// On a GPU machine without the compiler (MOEC_CONFORMANCE_KERNELS): every case's
/// plan loads with both targets' saved kernels, the loader checking their entries.
TEST(BackendConformanceGpuKernels, SavedKernelsLoadForEveryCase) {
  if (!std::getenv("MOEC_CONFORMANCE_KERNELS"))
    GTEST_SKIP() << "MOEC_CONFORMANCE_KERNELS is not set (tests/gpu/check.sh sets it)";
  size_t entries = 0;
  for (const Case &c : allCases()) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<Plan> plan;
    buildCudaCase(c, &plan);
    ASSERT_FALSE(HasFatalFailure());
    for (const plan::KernelModule *module : *plan->root().kernel_modules())
      entries += module->kernels() ? module->kernels()->size() : 0;
  }
  EXPECT_GT(entries, 400u);
}

std::vector<size_t> caseIndices() {
  std::vector<size_t> indices(allCases().size(), 0);
  for (size_t i = 0; i < indices.size(); ++i)
    indices[i] = i;
  return indices;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BackendConformance,
    ::testing::Combine(::testing::ValuesIn(backendNames()), ::testing::ValuesIn(caseIndices())),
    [](const ::testing::TestParamInfo<Param> &info) {
      std::string name = std::get<0>(info.param) + "_" + allCases()[std::get<1>(info.param)].name;
      std::replace(name.begin(), name.end(), '-', '_'); // emulated-sm_90a
      return name;
    });

/// A CPU-specific check: FP8 weights in blocks other than [128, 128] are refused
/// with a reason, by supportsStep and by prepare (naming the step).
TEST(CpuBackend, RefusesOtherFp8BlockShapes) {
  std::unique_ptr<Backend> cpu;
  ASSERT_TRUE(createBackend("cpu", BackendOptions(), &cpu).ok());
  StepTypes types;
  types.kind = StepKind::Linear;
  types.operands = {DType::F32};
  types.results = {DType::F32};
  types.weights = {DType::F8E4M3};
  types.weightBlocks = {kV3Block};
  std::string why;
  EXPECT_TRUE(cpu->supportsStep(types, &why)) << why;
  types.weightBlocks = {{64, 32}};
  EXPECT_FALSE(cpu->supportsStep(types, &why));
  EXPECT_NE(why.find("f8e4m3 with block shape [64, 32]"), std::string::npos) << why;
  EXPECT_NE(why.find("[128, 128]"), std::string::npos) << why;
  types.weightBlocks = {{}};
  EXPECT_FALSE(cpu->supportsStep(types, &why));

  const Case *block64 = nullptr;
  for (const Case &c : allCases())
    if (c.name.find("block64x32") != std::string::npos)
      block64 = &c;
  ASSERT_NE(block64, nullptr);
  CaseBuilder b(block64->V, block64->positions, block64->seqIds, block64->sequences,
                block64->capacity, 1);
  std::unique_ptr<Plan> plan;
  buildCase(*block64, b, &plan);
  if (HasFatalFailure())
    return;
  std::unique_ptr<Program> program;
  const Status prepared = cpu->prepare(*plan, 0, &program);
  ASSERT_FALSE(prepared.ok());
  EXPECT_NE(prepared.message().find("steps["), std::string::npos) << prepared.message();
  EXPECT_NE(prepared.message().find("[64, 32]"), std::string::npos) << prepared.message();
}

/// Two CPU backends with different thread counts run programs at the same time
/// (the thread count belongs to the backend, kernel scratch to the calling thread).
TEST(CpuBackend, BackendsWithDifferentThreadCountsRunConcurrently) {
  std::unique_ptr<Backend> one, two;
  BackendOptions options;
  options.threads = 1;
  ASSERT_TRUE(createBackend("cpu", options, &one).ok());
  options.threads = 2;
  ASSERT_TRUE(createBackend("cpu", options, &two).ok());
  for (const char *name : {"mla_absorbed_bf16_batched3", "moe_experts_f8e4m3_T6"}) {
    const Case *c = nullptr;
    for (const Case &candidate : allCases())
      if (candidate.name == name)
        c = &candidate;
    ASSERT_NE(c, nullptr) << name;
    CaseBuilder b(c->V, c->positions, c->seqIds, c->sequences, c->capacity, 7);
    std::unique_ptr<Plan> plan;
    buildCase(*c, b, &plan);
    if (HasFatalFailure())
      return;
    auto repeat = [&](Backend &backend) {
      for (int i = 0; i < 5; ++i)
        b.run(*plan, backend);
    };
    std::thread first(repeat, std::ref(*one)), second(repeat, std::ref(*two));
    first.join();
    second.join();
  }
}

/// Reduced-precision activations and other kinds of misuse are refused too.
TEST(CpuBackend, RefusesWhatTheKernelsDoNotImplement) {
  std::unique_ptr<Backend> cpu;
  ASSERT_TRUE(createBackend("cpu", BackendOptions(), &cpu).ok());
  std::string why;
  StepTypes bf16Activations;
  bf16Activations.kind = StepKind::RmsNorm;
  bf16Activations.operands = {DType::BF16};
  bf16Activations.results = {DType::F32};
  bf16Activations.weights = {DType::F32};
  bf16Activations.weightBlocks = {{}};
  EXPECT_FALSE(cpu->supportsStep(bf16Activations, &why));
  EXPECT_NE(why.find("operand 0 is bf16"), std::string::npos) << why;
  StepTypes fp8Gate;
  fp8Gate.kind = StepKind::Router;
  fp8Gate.operands = {DType::F32};
  fp8Gate.results = {DType::I32, DType::F32};
  fp8Gate.weights = {DType::F8E4M3};
  fp8Gate.weightBlocks = {kV3Block};
  EXPECT_FALSE(cpu->supportsStep(fp8Gate, &why));
  EXPECT_NE(why.find("f8e4m3"), std::string::npos) << why;
  StepTypes bf16State;
  bf16State.kind = StepKind::CacheStore;
  bf16State.operands = {DType::F32, DType::F32, DType::I32, DType::I32};
  // The KV cache's two states are both f32 or both bf16 (moec compile --kv-cache).
  bf16State.states = {DType::BF16, DType::BF16};
  EXPECT_TRUE(cpu->supportsStep(bf16State, &why)) << why;
  bf16State.states = {DType::BF16, DType::F32};
  EXPECT_FALSE(cpu->supportsStep(bf16State, &why));
  EXPECT_NE(why.find("state 1 is f32, the cpu kernel takes bf16"), std::string::npos) << why;
  bf16State.states = {DType::F8E4M3, DType::F8E4M3};
  EXPECT_TRUE(cpu->supportsStep(bf16State, &why)) << why;
  bf16State.states = {DType::I8, DType::I8};
  EXPECT_FALSE(cpu->supportsStep(bf16State, &why));
  EXPECT_NE(why.find("state 0 is i8"), std::string::npos) << why;
}

} // namespace
} // namespace moec
