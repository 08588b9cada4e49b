//===- CudaBackendTest.cpp - the cuda backend, with or without a GPU ------===//
//
// Everywhere: the backend is registered, the architecture a device runs is
// chosen from its compute capability, and creating the backend without a driver
// or device fails with one line that says why. With a GPU (tests/gpu/check.sh
// runs this too): device memory round-trips and a plan without kernels for the
// device is refused naming what to do.
//
//===----------------------------------------------------------------------===//

#include "../../runtime/cuda/CudaDriver.h"

#include "moec/runtime/Backend.h"
#include "moec/runtime/KernelLaunch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace moec {
namespace {

TEST(CudaBackend, IsRegistered) {
  std::vector<std::string> names = backendNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "cuda"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "cpu"), names.end());
}

TEST(CudaBackend, TargetFollowsTheComputeCapability) {
  EXPECT_EQ(cuda::targetForComputeCapability(9, 0), "sm_90a"); // H100, H200
  EXPECT_EQ(cuda::targetForComputeCapability(8, 0), "sm_80");  // A100
  EXPECT_EQ(cuda::targetForComputeCapability(8, 6), "sm_80");  // A10, RTX 30xx
  EXPECT_EQ(cuda::targetForComputeCapability(8, 9), "sm_80");  // L4, L40
  EXPECT_EQ(cuda::targetForComputeCapability(10, 0), "sm_80"); // Blackwell: sm_80 PTX, JIT
  EXPECT_EQ(cuda::targetForComputeCapability(7, 5), "");      // T4: too old
}

TEST(KernelLaunch, ArgumentsFollowThePlanConvention) {
  KernelStepResources r;
  r.buffers = {0x1000, 0x2000, 0x3000};
  r.weights = {0xa000, 0xa100, 0xb000}; // W0, its scale, W1
  r.weightTable = 0xc000;
  r.stateData = {0xd000, 0xe000};
  r.stateRows = {64, 32};
  r.scratch = 0xf000;
  plan::KernelEntryT e;
  e.grid = {1, 7, 1};
  e.block = {256, 1, 1};
  e.tokens_per_block = 4;
  KernelLaunch k = kernelLaunch(e, r, 10);
  EXPECT_EQ(k.args, (std::vector<uint64_t>{0x1000, 0x2000, 0x3000, 0xa000, 0xa100, 0xb000,
                                           0xd000, 64, 0xe000, 32, 10}));
  EXPECT_EQ(k.grid, (std::array<uint32_t, 3>{3, 7, 1})) << "ceil(10 / 4) token blocks";
  EXPECT_EQ(k.block, (std::array<uint32_t, 3>{256, 1, 1}));
  e.weight_table = true;
  e.scratch_bytes_per_token = 128;
  e.tokens_per_block = 0;
  k = kernelLaunch(e, r, 3);
  EXPECT_EQ(k.args, (std::vector<uint64_t>{0x1000, 0x2000, 0x3000, 0xc000, 0xd000, 64, 0xe000,
                                           32, 0xf000, 3}));
  EXPECT_EQ(k.grid, (std::array<uint32_t, 3>{1, 7, 1})) << "a fixed grid stays";
}

/// A TMA entry (tma_box) takes one tensor-map pointer per FP8 weight right after
/// the weights; min_tokens / max_tokens pick the alternative for a batch size.
TEST(KernelLaunch, TensorMapsFollowTheWeightsAndTokenRangesPickTheKernel) {
  KernelStepResources r;
  r.buffers = {0x1000, 0x2000};
  r.weights = {0xa000, 0xa100};
  r.tensorMaps = {0x7000};
  r.scratch = 0xf000;
  plan::KernelEntryT gemm;
  gemm.grid = {1, 4, 1};
  gemm.block = {128, 1, 1};
  gemm.tokens_per_block = 64;
  gemm.tma_box = {16, 64};
  gemm.min_tokens = 16;
  KernelLaunch k = kernelLaunch(gemm, r, 100);
  EXPECT_EQ(k.args, (std::vector<uint64_t>{0x1000, 0x2000, 0xa000, 0xa100, 0x7000, 100}));
  EXPECT_EQ(k.grid, (std::array<uint32_t, 3>{2, 4, 1}));
  plan::KernelEntryT small;
  small.max_tokens = 15;
  EXPECT_EQ(kernelLaunch(small, r, 3).args, (std::vector<uint64_t>{0x1000, 0x2000, 0xa000, 0xa100, 3}))
      << "no tensor map without a tma_box";
  for (int32_t tokens : {1, 15, 16, 4096}) {
    EXPECT_EQ(kernelEntryRuns(gemm, tokens), tokens >= 16) << tokens;
    EXPECT_EQ(kernelEntryRuns(small, tokens), tokens <= 15) << tokens;
  }
  plan::KernelEntryT any;
  EXPECT_TRUE(kernelEntryRuns(any, 1) && kernelEntryRuns(any, 1 << 20));
}

TEST(CudaBackend, CreatesOrSaysWhyNotInOneLine) {
  std::unique_ptr<Backend> backend;
  Status created = createBackend("cuda", BackendOptions(), &backend);
  if (!created.ok()) {
    EXPECT_EQ(created.message().rfind("cuda: ", 0), 0u) << created.message();
    EXPECT_EQ(created.message().find('\n'), std::string::npos) << created.message();
    GTEST_SKIP() << created.message();
  }
  EXPECT_STREQ(backend->name(), "cuda");
  ASSERT_EQ(backend->bufferTypes().size(), 1u);
  EXPECT_FALSE(backend->bufferTypes()[0].hostVisible);
  DeviceBuffer buffer;
  ASSERT_TRUE(backend->allocate(4096, &buffer).ok());
  std::vector<uint8_t> zeros(4096, 0xff), data(4096), back(4096);
  ASSERT_TRUE(backend->copyToHost(zeros.data(), buffer.data, zeros.size()).ok());
  EXPECT_EQ(zeros, std::vector<uint8_t>(4096, 0)) << "allocate() zeroes";
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = uint8_t(i * 7 + 3);
  ASSERT_TRUE(backend->copyToDevice(buffer.data, data.data(), data.size()).ok());
  ASSERT_TRUE(backend->copyToHost(back.data(), buffer.data, back.size()).ok());
  EXPECT_EQ(back, data);
  backend->release(buffer);
  EXPECT_EQ(buffer.data, nullptr);
}

TEST(CudaBackend, NoSuchDeviceIsRefused) {
  std::unique_ptr<Backend> backend;
  BackendOptions options;
  options.device = 1023;
  Status created = createBackend("cuda", options, &backend);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.message().rfind("cuda: ", 0), 0u) << created.message();
}

} // namespace
} // namespace moec
