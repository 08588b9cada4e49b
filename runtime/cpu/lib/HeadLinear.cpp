//===- HeadLinear.cpp - One projection per head over strided weight views -===//
//
// head_linear multiplies each head's slice of x by that head's rows of a stored
// weight, in place (the W_UK / W_UV slices of kv_b_proj cost no copy). Work items
// are (head, block of tokens), shared dynamically: at decode one item per head, so
// every thread takes a share of the heads; with many tokens each head's tokens are
// cut into blocks so that there are several items per thread, and each item
// streams its head's rows once for the whole block.
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"

#include <algorithm>

namespace moec::cpu {

void headLinear(const float *x, int64_t T, int64_t ldx, const Weight &W,
                const HeadLinearParams &p, float *y) {
  if (T <= 0 || p.heads <= 0)
    return;
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t H = p.heads, N = p.outWidth(W), ldy = H * N;
  const int threads = detail::threadsFor(T * H * p.rows * W.cols);
  // Tokens per item: all of them when the heads alone give each thread a few items.
  constexpr int64_t kItemsPerThread = 4;
  const int64_t tokenBlock =
      std::clamp<int64_t>(T * H / (kItemsPerThread * threads), 1, T);
  const int64_t blocks = (T + tokenBlock - 1) / tokenBlock;
#pragma omp parallel for num_threads(std::min<int64_t>(threads, H * blocks)) schedule(dynamic)
  for (int64_t item = 0; item < H * blocks; ++item) {
    const int64_t h = item / blocks;
    const int64_t t0 = (item % blocks) * tokenBlock;
    const int64_t tn = std::min(tokenBlock, T - t0);
    const float *xh = x + t0 * ldx + h * p.inStride + p.inOffset;
    const int64_t row0 = h * p.rowStride + p.rowOffset;
    float *yh = y + t0 * ldy + h * N;
    if (p.transpose)
      k.linearTransposed(xh, tn, ldx, W, row0, p.rows, yh, ldy);
    else
      k.linearRows(xh, tn, ldx, W, row0, row0 + p.rows, yh, ldy);
  }
}

} // namespace moec::cpu
