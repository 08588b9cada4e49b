//===- PtxTest.cpp - RMSNorm PTX generation, assembled by ptxas -----------===//

#include "moec/Codegen/PTX.h"
#include "moec/Codegen/Ptxas.h"

#include <gtest/gtest.h>

namespace {

class RmsNormPtx : public ::testing::TestWithParam<const char *> {};

TEST_P(RmsNormPtx, GeneratesTargetSpecificPtx) {
  std::string chip = GetParam();
  llvm::Expected<std::string> ptx = moec::ptx::emitRmsNormPtx(chip);
  ASSERT_TRUE(static_cast<bool>(ptx)) << llvm::toString(ptx.takeError());
  EXPECT_NE(ptx->find(".target " + chip), std::string::npos);
  EXPECT_NE(ptx->find(".entry " + moec::ptx::rmsNormKernelInfo().entry + "("),
            std::string::npos);
  EXPECT_NE(ptx->find("shfl.sync.bfly.b32"), std::string::npos);
}

TEST_P(RmsNormPtx, AssemblesWithPtxasWithoutSpills) {
  std::optional<std::string> ptxas = moec::ptx::findPtxas();
  if (!ptxas)
    GTEST_SKIP() << "ptxas not found (no CUDA toolkit on PATH or in "
                    "/usr/local/cuda/bin): the generated PTX is not assembled";
  std::string chip = GetParam();
  llvm::Expected<std::string> ptx = moec::ptx::emitRmsNormPtx(chip);
  ASSERT_TRUE(static_cast<bool>(ptx)) << llvm::toString(ptx.takeError());

  auto assembled = moec::ptx::assemblePtx(*ptxas, *ptx, chip);
  ASSERT_TRUE(static_cast<bool>(assembled)) << "ptxas failed: "
                                            << llvm::toString(assembled.takeError());
  ASSERT_EQ(assembled->kernels.size(), 1u) << assembled->log;
  const moec::ptx::KernelResources &k = assembled->kernels[0];
  EXPECT_EQ(k.spillStoreBytes, 0u) << assembled->log;
  EXPECT_EQ(k.spillLoadBytes, 0u) << assembled->log;
  EXPECT_GT(k.registers, 0u) << assembled->log;
  EXPECT_LE(k.registers, 64u) << "a warp-per-row RMSNorm needs few registers";
}

INSTANTIATE_TEST_SUITE_P(Chips, RmsNormPtx, ::testing::Values("sm_90a", "sm_80"));

TEST(Ptx, RejectsUnknownArchitecture) {
  llvm::Expected<std::string> ptx = moec::ptx::emitRmsNormPtx("sm_70");
  ASSERT_FALSE(static_cast<bool>(ptx));
  EXPECT_EQ(llvm::toString(ptx.takeError()),
            "unsupported GPU architecture 'sm_70' (supported: sm_90a, sm_80)");
}

} // namespace
