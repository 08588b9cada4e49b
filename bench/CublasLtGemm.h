//===- CublasLtGemm.h - cuBLASLt's FP8 GEMM, the reference of moec_gpu_bench -===//
//
// The GPU check compares moec's generated FP8 GEMM with NVIDIA's own library on
// the same device in the same run. cuBLASLt is opened with dlopen
// (libcublasLt.so.13, .12, or plain .so), so moec_gpu_bench builds and runs
// where it is absent and says so in one line. The header's types stay in
// CublasLtGemm.cpp, which compiles the real calls only where the CUDA toolkit's
// cublasLt.h was found at configure time (MOEC_HAVE_CUBLASLT_H).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_BENCH_CUBLASLTGEMM_H
#define MOEC_BENCH_CUBLASLTGEMM_H

#include <cstdint>
#include <memory>
#include <string>

namespace moec::bench {

/// One FP8 GEMM as cuBLASLt runs it: Y[M, N] (bf16) = X[M, K] . W[N, K]^T, with
/// e4m3 X and W. Scaling as DeepSeek's FP8 GEMM (spec section 3) where the
/// library has it (cuBLAS 12.9 and newer on Hopper): X per token and 128
/// columns (VEC128_32F), W per 128x128 block (BLK128x128_32F); otherwise one
/// scale per tensor (`scaling()` says which ran).
class CublasLtGemm {
public:
  /// Opens the library and resolves its entry points (no GPU needed; the handle
  /// is created by the first prepare(), in the current CUDA context); null and
  /// `*why` set when the library, an entry point or the header is missing.
  static std::unique_ptr<CublasLtGemm> open(std::string *why);
  virtual ~CublasLtGemm() = default;

  /// "cuBLASLt 13.1.0"
  virtual std::string version() const = 0;

  /// Chooses the algorithm for the shape on device buffers (x: M*K bytes, xScale:
  /// scaleFloats(M, N, K).x floats, w: N*K bytes, wScale: .w floats, y: M*N bf16,
  /// workspace: workspaceBytes). False and `*why` when no algorithm is offered.
  virtual bool prepare(int64_t M, int64_t N, int64_t K, uint64_t x, uint64_t xScale, uint64_t w,
                       uint64_t wScale, uint64_t y, uint64_t workspace,
                       uint64_t workspaceBytes, std::string *why) = 0;
  /// Enqueues the prepared GEMM on the default stream.
  virtual bool run(std::string *why) = 0;
  /// "1x128 / 128x128 block scales" or "one scale per tensor (…)".
  virtual std::string scaling() const = 0;

  /// Floats to allocate for the scale tensors: generous (each dimension rounded
  /// up to 128 rows and 4 blocks), so that a layout the library pads never reads
  /// past the allocation.
  struct ScaleFloats {
    uint64_t x, w;
  };
  static ScaleFloats scaleFloats(int64_t M, int64_t N, int64_t K);
  static constexpr uint64_t kWorkspaceBytes = uint64_t(32) << 20;
};

} // namespace moec::bench

#endif // MOEC_BENCH_CUBLASLTGEMM_H
