//===- PtxTest.cpp - RMSNorm PTX generation, assembled by ptxas -----------===//

#include "moec/Codegen/PTX.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

namespace {

/// Finds ptxas on PATH or in the default CUDA location.
std::optional<std::string> findPtxas() {
  if (auto p = llvm::sys::findProgramByName("ptxas"))
    return *p;
  if (llvm::sys::fs::can_execute("/usr/local/cuda/bin/ptxas"))
    return std::string("/usr/local/cuda/bin/ptxas");
  return std::nullopt;
}

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
  std::optional<std::string> ptxas = findPtxas();
  if (!ptxas)
    GTEST_SKIP() << "ptxas not found (no CUDA toolkit on PATH or in "
                    "/usr/local/cuda/bin): the generated PTX is not assembled";
  std::string chip = GetParam();
  llvm::Expected<std::string> ptx = moec::ptx::emitRmsNormPtx(chip);
  ASSERT_TRUE(static_cast<bool>(ptx)) << llvm::toString(ptx.takeError());

  llvm::SmallString<128> ptxPath, logPath;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("rms_norm", "ptx", ptxPath));
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("ptxas", "log", logPath));
  {
    std::ofstream out(ptxPath.c_str());
    out << *ptx;
  }
  std::string errMsg;
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, logPath.str(),
                                                logPath.str()};
  int rc = llvm::sys::ExecuteAndWait(
      *ptxas, {*ptxas, "-v", "--gpu-name", chip, ptxPath.str(), "-o", "/dev/null"},
      std::nullopt, redirects, /*SecondsToWait=*/120, 0, &errMsg);
  std::ifstream logFile(logPath.c_str());
  std::stringstream log;
  log << logFile.rdbuf();
  llvm::sys::fs::remove(ptxPath);
  llvm::sys::fs::remove(logPath);

  ASSERT_EQ(rc, 0) << "ptxas failed: " << errMsg << "\n" << log.str();
  std::smatch m;
  std::string text = log.str();
  ASSERT_TRUE(std::regex_search(
      text, m, std::regex("(\\d+) bytes spill stores, (\\d+) bytes spill loads")))
      << text;
  EXPECT_EQ(m[1], "0") << text;
  EXPECT_EQ(m[2], "0") << text;
  ASSERT_TRUE(std::regex_search(text, m, std::regex("Used (\\d+) registers")))
      << text;
  EXPECT_LE(std::stoi(m[1]), 64) << "a warp-per-row RMSNorm needs few registers";
}

INSTANTIATE_TEST_SUITE_P(Chips, RmsNormPtx, ::testing::Values("sm_90a", "sm_80"));

TEST(Ptx, RejectsUnknownArchitecture) {
  llvm::Expected<std::string> ptx = moec::ptx::emitRmsNormPtx("sm_70");
  ASSERT_FALSE(static_cast<bool>(ptx));
  EXPECT_EQ(llvm::toString(ptx.takeError()),
            "unsupported GPU architecture 'sm_70' (supported: sm_90a, sm_80)");
}

} // namespace
