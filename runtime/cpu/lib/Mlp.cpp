//===- Mlp.cpp - SwiGLU MLP and routed experts ----------------------------===//
//
// Routed experts group the tokens by expert first, so each selected expert's
// weights are streamed once per call for all of its tokens, and experts nobody
// selected are never touched.
//
// At decode an expert is three small products (one token, a few MiB of weights
// each): run one after another with a fork and a join each, the threads spend a
// good part of the call starting, waiting for the slowest, and idling between
// products. So the selected experts run together, in one parallel region with
// two phases that threads share item by item:
//   1. (expert, chunk of its I rows): gate and up rows, then silu(gate) * up;
//   2. chunk of the D output rows: every expert's down rows for it, added into
//      out in expert order, so no two threads write the same output row.
// The swigluMlp of the shared (and dense) MLP is the same code with one MLP.
//
// Fused MLPs (SwigluWeights::fused(): gate and up interleaved in one weight by
// units of R rows) take their phase-1 items in whole units: one product over a
// unit's 2n stacked rows gives n gate and n up values per token, and silu(g) * u
// is its epilogue, while the outputs are still in cache.
// Temporaries live in per-thread scratch (Scratch.h): nothing is allocated per
// call at decode.
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"
#include "Scratch.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace moec::cpu {
namespace {

using detail::Scratch;
using detail::ScratchLayout;
using detail::ScratchSlot;

/// Most (token, expert) pairs computed in one parallel region; a call with more
/// runs its experts in several batches, so the scratch stays small at prefill.
constexpr int64_t kBatchSlots = 64;

/// One MLP of a grouped run and the token rows it serves.
struct MlpTask {
  const SwigluWeights *mlp = nullptr; ///< its weights
  const float *x = nullptr;           ///< [rows, D]: its input rows, D apart
  int64_t rows = 0;                   ///< tokens it serves
  /// [rows]: the (t * K + k) slot of each row; nullptr for swigluMlp, where row t
  /// is token t and out is written rather than accumulated.
  const int64_t *slots = nullptr;
  float *gate = nullptr;   ///< [rows, I]: gate(x), then silu(gate(x)) * up(x)
  /// [rows, I]: up(x); fused, [rows, 2I]: each unit's stacked gate and up products
  float *up = nullptr;
  int64_t gateChunk = 0;   ///< gate/up rows per phase-1 item
  int64_t firstItem = 0;   ///< index of its first phase-1 item
  /// Int8 weights (W8A8): x and the hidden activations quantized once for all
  /// items (q null: that phase's weights are not int8).
  detail::QuantizedActs xq, hq;
};

/// Whether a phase's product takes int8 weights.
bool int8Input(const SwigluWeights &mlp) {
  return (mlp.fused() ? mlp.gateUp.type : mlp.gate.type) == WeightType::I8;
}

/// y = x W[r0:r1]^T as linearRows does, from pre-quantized x when there is one.
void rowsOf(const detail::KernelTable &k, const float *x, const detail::QuantizedActs &xq,
            int64_t T, int64_t ldx, const Weight &W, int64_t r0, int64_t r1, float *y,
            int64_t ldy) {
  if (xq.q && W.type == WeightType::I8)
    k.linearRowsI8(xq, T, W, r0, r1, y, ldy);
  else
    k.linearRows(x, T, ldx, W, r0, r1, y, ldy);
}

/// Runs `count` MLPs (all with D outputs) in one parallel region (see the file
/// comment). With slots, out[t] += weights[slot] * MLP(x) for each row; without,
/// count is 1 and out = MLP(x).
void runMlps(MlpTask *tasks, int64_t count, int64_t D, int64_t K, const float *weights,
             float *out) {
  const detail::KernelTable &k = detail::activeKernels();
  int64_t work = 0, maxRows = 0;
  for (int64_t i = 0; i < count; ++i) {
    work += 3 * tasks[i].rows * tasks[i].mlp->inner() * tasks[i].mlp->width();
    maxRows = std::max(maxRows, tasks[i].rows);
  }
  const int threads = detail::threadsFor(work);
  int64_t gateItems = 0;
  for (int64_t i = 0; i < count; ++i) {
    MlpTask &task = tasks[i];
    const SwigluWeights &mlp = *task.mlp;
    // Fused: one interleave unit per item (its gate and up rows are contiguous).
    task.gateChunk = mlp.fused() ? mlp.gateUpRows
                                 : detail::linearRowChunk(mlp.gate, task.rows, threads);
    task.firstItem = gateItems;
    gateItems += (mlp.inner() + task.gateChunk - 1) / task.gateChunk;
  }
  const int64_t downChunk = detail::linearRowChunk(tasks[0].mlp->down, maxRows, threads);
  const int64_t downItems = (D + downChunk - 1) / downChunk;
  const bool accumulate = tasks[0].slots != nullptr;

  // Int8 weights: room for each task's quantized input and hidden activations
  // (the calling thread's scratch, shared by the workers); x is quantized here.
  size_t int8Bytes = 0;
  for (int64_t i = 0; i < count; ++i) {
    const SwigluWeights &mlp = *tasks[i].mlp;
    if (int8Input(mlp))
      int8Bytes += detail::QuantizedActsLayout(tasks[i].rows, mlp.width(), k.int8ByteCodes).bytes();
    if (mlp.down.type == WeightType::I8)
      int8Bytes += detail::QuantizedActsLayout(tasks[i].rows, mlp.inner(), k.int8ByteCodes).bytes();
  }
  std::optional<Scratch> int8Scratch;
  if (int8Bytes > 0)
    int8Scratch.emplace(ScratchSlot::Int8Shared, int8Bytes);
  bool int8Hidden = false;
  if (int8Scratch) {
    char *next = int8Scratch->as<char>();
    for (int64_t i = 0; i < count; ++i) {
      MlpTask &task = tasks[i];
      const SwigluWeights &mlp = *task.mlp;
      task.xq = task.hq = detail::QuantizedActs();
      if (int8Input(mlp)) {
        const detail::QuantizedActsLayout layout(task.rows, mlp.width(), k.int8ByteCodes);
        task.xq = layout.place(next);
        next += layout.bytes();
        k.quantizeActsI8(task.x, task.rows, mlp.width(), mlp.width(), task.xq);
      }
      if (mlp.down.type == WeightType::I8) {
        const detail::QuantizedActsLayout layout(task.rows, mlp.inner(), k.int8ByteCodes);
        task.hq = layout.place(next);
        next += layout.bytes();
        int8Hidden = true;
      }
    }
  }

#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < gateItems; ++item) {
      // The task whose items include this one: the last with firstItem <= item.
      int64_t i = 0;
      while (i + 1 < count && tasks[i + 1].firstItem <= item)
        ++i;
      const MlpTask &task = tasks[i];
      const SwigluWeights &mlp = *task.mlp;
      const int64_t I = mlp.inner(), Dx = mlp.width();
      const int64_t r0 = (item - task.firstItem) * task.gateChunk;
      const int64_t r1 = std::min(I, r0 + task.gateChunk), n = r1 - r0;
      if (mlp.fused()) {
        // Stacked rows [2 r0, 2 r1): n gate rows, then their n up rows.
        float *y = task.up + 2 * r0;
        rowsOf(k, task.x, task.xq, task.rows, Dx, mlp.gateUp, 2 * r0, 2 * r1, y, 2 * I);
        for (int64_t t = 0; t < task.rows; ++t)
          k.siluMul(y + t * 2 * I, y + t * 2 * I + n, n, task.gate + t * I + r0);
        continue;
      }
      rowsOf(k, task.x, task.xq, task.rows, Dx, mlp.gate, r0, r1, task.gate + r0, I);
      rowsOf(k, task.x, task.xq, task.rows, Dx, mlp.up, r0, r1, task.up + r0, I);
      for (int64_t t = 0; t < task.rows; ++t)
        k.siluMul(task.gate + t * I + r0, task.up + t * I + r0, n, task.gate + t * I + r0);
    }
    // Implicit barrier: every hidden activation is ready.
    if (int8Hidden) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < count; ++i)
        if (tasks[i].hq.q)
          k.quantizeActsI8(tasks[i].gate, tasks[i].rows, tasks[i].mlp->inner(),
                           tasks[i].mlp->inner(), tasks[i].hq);
      // Implicit barrier: the quantized hidden activations are ready.
    }
    const Scratch tile(ScratchSlot::MlpTile, accumulate ? static_cast<size_t>(
                                                              maxRows * downChunk) * sizeof(float)
                                                        : 0);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < downItems; ++item) {
      const int64_t r0 = item * downChunk, r1 = std::min(D, r0 + downChunk), n = r1 - r0;
      for (int64_t i = 0; i < count; ++i) {
        const MlpTask &task = tasks[i];
        const int64_t I = task.mlp->inner();
        if (!accumulate) {
          rowsOf(k, task.gate, task.hq, task.rows, I, task.mlp->down, r0, r1, out + r0, D);
          continue;
        }
        float *y = tile.as<float>();
        rowsOf(k, task.gate, task.hq, task.rows, I, task.mlp->down, r0, r1, y, n);
        for (int64_t j = 0; j < task.rows; ++j) {
          const int64_t slot = task.slots[j];
          k.axpy(weights[slot], y + j * n, n, out + (slot / K) * D + r0);
        }
      }
    }
  }
}

} // namespace

void swigluMlp(const float *x, int64_t T, const SwigluWeights &mlp, float *out) {
  if (T <= 0)
    return;
  const int64_t I = mlp.inner(), U = mlp.fused() ? 2 * I : I;
  ScratchLayout layout;
  layout.add<float>(T * I).add<float>(T * U);
  const Scratch hidden(ScratchSlot::MlpHidden, layout.bytes());
  char *base = hidden.as<char>();
  MlpTask task;
  task.mlp = &mlp;
  task.x = x;
  task.rows = T;
  task.gate = ScratchLayout::take<float>(base, T * I);
  task.up = ScratchLayout::take<float>(base, T * U);
  runMlps(&task, 1, mlp.width(), 1, nullptr, out);
}

void moeExperts(const float *x, int64_t T, const SwigluWeights *experts,
                int64_t numExperts, const int32_t *idx, const float *weights, int64_t K,
                float *out) {
  if (T <= 0 || numExperts <= 0)
    return;
  const int64_t D = experts[0].width();
  std::memset(out, 0, static_cast<size_t>(T * D) * sizeof(float));
  // Counting sort of the (token, slot) pairs by expert.
  ScratchLayout planLayout;
  planLayout.add<int64_t>(numExperts + 1).add<int64_t>(numExperts).add<int64_t>(T * K);
  const Scratch plan(ScratchSlot::MlpPlan, planLayout.bytes());
  char *base = plan.as<char>();
  int64_t *start = ScratchLayout::take<int64_t>(base, numExperts + 1);
  int64_t *fill = ScratchLayout::take<int64_t>(base, numExperts);
  int64_t *slots = ScratchLayout::take<int64_t>(base, T * K);
  std::fill(start, start + numExperts + 1, int64_t(0));
  for (int64_t i = 0; i < T * K; ++i)
    if (idx[i] >= 0 && idx[i] < numExperts)
      ++start[idx[i] + 1];
  for (int64_t e = 0; e < numExperts; ++e)
    start[e + 1] += start[e];
  std::copy(start, start + numExperts, fill);
  for (int64_t i = 0; i < T * K; ++i)
    if (idx[i] >= 0 && idx[i] < numExperts)
      slots[fill[idx[i]]++] = i;

  // Batches of consecutive selected experts with at most kBatchSlots rows in all
  // (an expert with more runs alone). Decode (T * K <= 64) is a single batch.
  MlpTask tasks[kBatchSlots];
  for (int64_t e = 0; e < numExperts;) {
    int64_t count = 0, batchRows = 0;
    for (; e < numExperts; ++e) {
      const int64_t n = start[e + 1] - start[e];
      if (n == 0)
        continue;
      if (count > 0 && batchRows + n > kBatchSlots)
        break;
      MlpTask &task = tasks[count++];
      task = MlpTask();
      task.mlp = &experts[e];
      task.rows = n;
      task.slots = slots + start[e];
      batchRows += n;
    }
    if (count == 0)
      break;
    // A single token's input is used in place; several are gathered into rows.
    ScratchLayout layout;
    for (int64_t i = 0; i < count; ++i) {
      const SwigluWeights &mlp = *tasks[i].mlp;
      const int64_t n = tasks[i].rows, I = mlp.inner(), U = mlp.fused() ? 2 * I : I;
      layout.add<float>(n > 1 ? n * D : 0).add<float>(n * I).add<float>(n * U);
    }
    const Scratch hidden(ScratchSlot::MlpHidden, layout.bytes());
    char *next = hidden.as<char>();
    for (int64_t i = 0; i < count; ++i) {
      MlpTask &task = tasks[i];
      const int64_t n = task.rows, I = task.mlp->inner(), U = task.mlp->fused() ? 2 * I : I;
      float *gathered = ScratchLayout::take<float>(next, n > 1 ? n * D : 0);
      if (n == 1) {
        task.x = x + (task.slots[0] / K) * D;
      } else {
        for (int64_t j = 0; j < n; ++j)
          std::memcpy(gathered + j * D, x + (task.slots[j] / K) * D,
                      static_cast<size_t>(D) * sizeof(float));
        task.x = gathered;
      }
      task.gate = ScratchLayout::take<float>(next, n * I);
      task.up = ScratchLayout::take<float>(next, n * U);
    }
    runMlps(tasks, count, D, K, weights, out);
  }
}

} // namespace moec::cpu
