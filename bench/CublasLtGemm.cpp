//===- CublasLtGemm.cpp - cuBLASLt's FP8 GEMM through dlopen ---------------===//

#include "CublasLtGemm.h"

#include <cstdlib>
#include <vector>

#ifdef MOEC_HAVE_CUBLASLT_H
#include <cublasLt.h>
#include <dlfcn.h>
#endif

namespace moec::bench {

CublasLtGemm::ScaleFloats CublasLtGemm::scaleFloats(int64_t M, int64_t N, int64_t K) {
  auto roundUp = [](int64_t v, int64_t m) { return uint64_t((v + m - 1) / m * m); };
  uint64_t kBlocks = roundUp((K + 127) / 128, 4);
  return {kBlocks * roundUp(M, 128), kBlocks * roundUp((N + 127) / 128, 4)};
}

#ifndef MOEC_HAVE_CUBLASLT_H

std::unique_ptr<CublasLtGemm> CublasLtGemm::open(std::string *why) {
  *why = "not measured: cublasLt.h was not found when moec_gpu_bench was configured "
         "(set CUDA_HOME to a CUDA toolkit and reconfigure)";
  return nullptr;
}

#else

namespace {

/// The entry points, resolved from the library (the header gives their types).
struct Api {
  decltype(&::cublasLtCreate) create = nullptr;
  decltype(&::cublasLtDestroy) destroy = nullptr;
  decltype(&::cublasLtGetVersion) getVersion = nullptr;
  decltype(&::cublasLtMatmulDescCreate) descCreate = nullptr;
  decltype(&::cublasLtMatmulDescDestroy) descDestroy = nullptr;
  decltype(&::cublasLtMatmulDescSetAttribute) descSet = nullptr;
  decltype(&::cublasLtMatrixLayoutCreate) layoutCreate = nullptr;
  decltype(&::cublasLtMatrixLayoutDestroy) layoutDestroy = nullptr;
  decltype(&::cublasLtMatmulPreferenceCreate) prefCreate = nullptr;
  decltype(&::cublasLtMatmulPreferenceDestroy) prefDestroy = nullptr;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) prefSet = nullptr;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&::cublasLtMatmul) matmul = nullptr;
};

template <typename Fn> bool resolve(void *handle, const char *name, Fn *fn, std::string *missing) {
  *fn = reinterpret_cast<Fn>(::dlsym(handle, name));
  if (!*fn && missing->empty())
    *missing = name;
  return *fn != nullptr;
}

std::string status(cublasStatus_t s) { return "cuBLAS status " + std::to_string(int(s)); }

class Gemm final : public CublasLtGemm {
public:
  explicit Gemm(const Api &api) : api_(api) {}
  ~Gemm() override {
    release();
    if (handle_)
      api_.destroy(handle_);
  }

  std::string version() const override {
    size_t v = api_.getVersion();
    return "cuBLASLt " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
           std::to_string(v % 100);
  }

  bool prepare(int64_t M, int64_t N, int64_t K, uint64_t x, uint64_t xScale, uint64_t w,
               uint64_t wScale, uint64_t y, uint64_t workspace, uint64_t workspaceBytes,
               std::string *why) override {
    release();
    if (!handle_)
      if (cublasStatus_t s = api_.create(&handle_); s != CUBLAS_STATUS_SUCCESS) {
        handle_ = nullptr;
        *why = "cublasLtCreate: " + status(s);
        return false;
      }
    x_ = x, w_ = w, y_ = y, workspace_ = workspace, workspaceBytes_ = workspaceBytes;
    // Column-major as cuBLAS sees it: D (N x M, ld N) = op(A) (N x K) . op(B) (K x M),
    // A = W (K x N, ld K, transposed), B = X (K x M, ld K): the "TN" form FP8 needs.
    std::string blockWhy;
    if (tryScaling(M, N, K, CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F,
                   CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F, wScale, xScale, &blockWhy)) {
      scaling_ = "1x128 / 128x128 block scales (DeepSeek's)";
      return true;
    }
    std::string scalarWhy;
    if (tryScaling(M, N, K, CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F,
                   CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F, wScale, xScale, &scalarWhy)) {
      scaling_ = "one scale per tensor (block scales refused: " + blockWhy + ")";
      return true;
    }
    *why = "block scales: " + blockWhy + "; tensor scales: " + scalarWhy;
    return false;
  }

  bool run(std::string *why) override {
    const float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t s = api_.matmul(handle_, desc_, &alpha, reinterpret_cast<void *>(w_), a_,
                                   reinterpret_cast<void *>(x_), b_, &beta,
                                   reinterpret_cast<void *>(y_), d_, reinterpret_cast<void *>(y_),
                                   d_, &algo_, reinterpret_cast<void *>(workspace_),
                                   workspaceBytes_, nullptr);
    if (s != CUBLAS_STATUS_SUCCESS) {
      *why = "cublasLtMatmul: " + status(s);
      return false;
    }
    return true;
  }

  std::string scaling() const override { return scaling_; }

private:
  bool tryScaling(int64_t M, int64_t N, int64_t K, int32_t aMode, int32_t bMode, uint64_t aScale,
                  uint64_t bScale, std::string *why) {
    release();
    auto fail = [&](const char *what, cublasStatus_t s) {
      *why = std::string(what) + ": " + status(s);
      release();
      return false;
    };
    cublasStatus_t s = api_.descCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (s != CUBLAS_STATUS_SUCCESS)
      return fail("cublasLtMatmulDescCreate", s);
    const cublasOperation_t transA = CUBLAS_OP_T, transB = CUBLAS_OP_N;
    const void *aScalePtr = reinterpret_cast<const void *>(aScale);
    const void *bScalePtr = reinterpret_cast<const void *>(bScale);
    struct {
      cublasLtMatmulDescAttributes_t attr;
      const void *value;
      size_t bytes;
    } attrs[] = {
        {CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof(transA)},
        {CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof(transB)},
        {CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &aMode, sizeof(aMode)},
        {CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &bMode, sizeof(bMode)},
        {CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &aScalePtr, sizeof(aScalePtr)},
        {CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &bScalePtr, sizeof(bScalePtr)},
    };
    for (const auto &a : attrs)
      if ((s = api_.descSet(desc_, a.attr, a.value, a.bytes)) != CUBLAS_STATUS_SUCCESS)
        return fail("cublasLtMatmulDescSetAttribute", s);
    if ((s = api_.layoutCreate(&a_, CUDA_R_8F_E4M3, uint64_t(K), uint64_t(N), K)) !=
            CUBLAS_STATUS_SUCCESS ||
        (s = api_.layoutCreate(&b_, CUDA_R_8F_E4M3, uint64_t(K), uint64_t(M), K)) !=
            CUBLAS_STATUS_SUCCESS ||
        (s = api_.layoutCreate(&d_, CUDA_R_16BF, uint64_t(N), uint64_t(M), N)) !=
            CUBLAS_STATUS_SUCCESS)
      return fail("cublasLtMatrixLayoutCreate", s);
    cublasLtMatmulPreference_t pref = nullptr;
    if ((s = api_.prefCreate(&pref)) != CUBLAS_STATUS_SUCCESS)
      return fail("cublasLtMatmulPreferenceCreate", s);
    uint64_t bytes = workspaceBytes_;
    s = api_.prefSet(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof(bytes));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS)
      s = api_.heuristic(handle_, desc_, a_, b_, d_, d_, pref, 1, &result, &found);
    api_.prefDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS)
      return fail("cublasLtMatmulAlgoGetHeuristic", s);
    if (found == 0)
      return fail("cublasLtMatmulAlgoGetHeuristic found no algorithm", CUBLAS_STATUS_NOT_SUPPORTED);
    algo_ = result.algo;
    return true;
  }

  void release() {
    if (a_)
      api_.layoutDestroy(a_);
    if (b_)
      api_.layoutDestroy(b_);
    if (d_)
      api_.layoutDestroy(d_);
    if (desc_)
      api_.descDestroy(desc_);
    a_ = b_ = d_ = nullptr;
    desc_ = nullptr;
  }

  Api api_;
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  uint64_t x_ = 0, w_ = 0, y_ = 0, workspace_ = 0, workspaceBytes_ = 0;
  std::string scaling_;
};

} // namespace

std::unique_ptr<CublasLtGemm> CublasLtGemm::open(std::string *why) {
  std::vector<std::string> names = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"};
  for (const char *root : {static_cast<const char *>(std::getenv("CUDA_HOME")), "/usr/local/cuda"})
    if (root && *root)
      names.push_back(std::string(root) + "/lib64/libcublasLt.so");
  void *library = nullptr;
  for (const std::string &name : names)
    if ((library = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)))
      break;
  if (!library) {
    *why = "not measured: libcublasLt.so not found (tried libcublasLt.so.13, .so.12, .so and "
           "$CUDA_HOME/lib64, /usr/local/cuda/lib64)";
    return nullptr;
  }
  Api api;
  std::string missing;
  resolve(library, "cublasLtCreate", &api.create, &missing);
  resolve(library, "cublasLtDestroy", &api.destroy, &missing);
  resolve(library, "cublasLtGetVersion", &api.getVersion, &missing);
  resolve(library, "cublasLtMatmulDescCreate", &api.descCreate, &missing);
  resolve(library, "cublasLtMatmulDescDestroy", &api.descDestroy, &missing);
  resolve(library, "cublasLtMatmulDescSetAttribute", &api.descSet, &missing);
  resolve(library, "cublasLtMatrixLayoutCreate", &api.layoutCreate, &missing);
  resolve(library, "cublasLtMatrixLayoutDestroy", &api.layoutDestroy, &missing);
  resolve(library, "cublasLtMatmulPreferenceCreate", &api.prefCreate, &missing);
  resolve(library, "cublasLtMatmulPreferenceDestroy", &api.prefDestroy, &missing);
  resolve(library, "cublasLtMatmulPreferenceSetAttribute", &api.prefSet, &missing);
  resolve(library, "cublasLtMatmulAlgoGetHeuristic", &api.heuristic, &missing);
  resolve(library, "cublasLtMatmul", &api.matmul, &missing);
  if (!missing.empty()) {
    *why = "not measured: libcublasLt has no " + missing;
    return nullptr;
  }
  return std::make_unique<Gemm>(api);
}

#endif // MOEC_HAVE_CUBLASLT_H

} // namespace moec::bench
