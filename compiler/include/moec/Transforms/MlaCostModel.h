//===- MlaCostModel.h - Which MLA form is cheaper, and from when -*- C++ -*-===//
//
// MLA computes one function in two forms (spec section 4). The naive form
// expands kv_b over every cached latent row, then attends with head dims
// nope+rope (scores) and v (values): the expansion costs per cached row, so
// decode pays it again for the whole context at every token. The absorbed form
// folds W_UK into the query and W_UV into the output and attends over the
// latent rows themselves (C+R and C wide): nothing is paid per cached row except
// the attention, which is wider. For `T` new tokens of a sequence that already
// holds `P` cached tokens, per MLA layer:
//
//   pairs      = T*P + T*(T+1)/2                        (causal query/key pairs)
//   naive      flops = 2*(P+T)*H*C*(nope+v) + 2*pairs*H*(nope+rope+v)
//              bytes = kv_b + e*(P+T)*(C+R) + 4*(P+T)*H*(nope+v) [expanded K,V]
//                      + 4*T*H*(nope+rope+v)
//   absorbed   flops = 2*T*H*C*(nope+v) + 2*pairs*H*(2C+R)
//              bytes = kv_b + e*(P+T)*(C+R) + 4*T*H*(nope+rope+v) + 4*2*T*H*C
//   (e: bytes per cached value, 4 for f32, 2 for bf16, 1 for fp8)
//   seconds    = max(flops / peak FLOP/s, bytes / bandwidth)  (a roofline)
//
// The naive form's extra cost grows with P (the expansion), the absorbed form's
// with T*P (the wider attention): from some batch size on the naive form wins for
// every context length. `moe-absorb-mla{form=auto}` lowers @prefill to the naive
// form when such a size exists and records it in the plan; the runtime runs
// @prefill for batches of at least that many tokens and @decode (absorbed) for
// smaller ones.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TRANSFORMS_MLACOSTMODEL_H
#define MOEC_TRANSFORMS_MLACOSTMODEL_H

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::moe {

/// The shape of one MLA layer (the attributes of moe.expanded_attention).
struct MlaShape {
  int64_t heads = 0;
  int64_t nopeDim = 0;
  int64_t ropeDim = 0;
  int64_t vDim = 0;
  int64_t latentDim = 0;
  /// Bytes of kv_b's weights, with its scales (read once per call by both forms).
  double kvBBytes = 0;
  /// Bytes of one cached value: 4 (f32), 2 (bf16) or 1 (fp8; moe-kv-cache-type).
  double cacheBytes = 4;
};

/// The machine the roofline assumes.
struct MlaMachine {
  double peakGflops = 100;    ///< sustained FLOP/s of the attention kernels, in 1e9
  double bandwidthGBs = 20;   ///< memory bandwidth, in 1e9 bytes/s
};

/// The cost of one MLA layer's attention for one call.
struct MlaCost {
  double flops = 0;
  double bytes = 0;
  double seconds = 0;
};

/// The cost of `naive` (true) or the absorbed form for `newTokens` new tokens of
/// one sequence that holds `cachedTokens` before them.
MlaCost mlaCost(const MlaShape &shape, bool naive, int64_t newTokens,
                int64_t cachedTokens, const MlaMachine &machine);

/// The smallest number of new tokens, at most `limit`, from which the naive form
/// costs no more than the absorbed one for every context of 0..`maxCached`
/// cached tokens (and every larger batch); 0 when there is none up to `limit`.
int64_t naivePrefillThreshold(const MlaShape &shape, const MlaMachine &machine,
                              int64_t maxCached, int64_t limit);

/// One evaluated point, for reports.
struct MlaCostPoint {
  int64_t newTokens = 0;
  int64_t cachedTokens = 0;
  MlaCost naive, absorbed;
};

/// The points reports print: decode (1 new token) and batches of 16..2048 new
/// tokens, each with no context and with `maxCached` cached tokens.
std::vector<MlaCostPoint> mlaCostTable(const MlaShape &shape, const MlaMachine &machine,
                                       int64_t maxCached);

/// The table as lines of text (for the pass's report).
std::string formatMlaCostTable(const std::vector<MlaCostPoint> &points);

} // namespace mlir::moe

#endif // MOEC_TRANSFORMS_MLACOSTMODEL_H
