//===- GoldenTest.cpp - compiled plans agree with transformers ------------===//
//
// For every fixture under data/: `moec compile` it (embedded and external
// weights), run `moec-run --dump-logits` on the prompt, and compare with the
// float32 logits transformers computed (max|ours - ref| / max|ref| <= 1e-4);
// then generate 16 greedy tokens and require the reference's exactly.
//
//===----------------------------------------------------------------------===//

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

const std::string kBin = MOEC_BIN_DIR;
const std::string kGolden = MOEC_GOLDEN_DIR;

/// A float32 .npy array.
struct Npy {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

/// Reads a little-endian float32 C-order .npy (version 1 or 2).
Npy readNpy(const std::string &path) {
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf) {
    ADD_FAILURE() << path << ": cannot read";
    return {};
  }
  llvm::StringRef bytes = (*buf)->getBuffer();
  EXPECT_TRUE(bytes.starts_with("\x93NUMPY")) << path;
  uint8_t major = bytes[6];
  size_t headerLen, headerStart;
  if (major == 1) {
    headerLen = uint8_t(bytes[8]) | (uint8_t(bytes[9]) << 8);
    headerStart = 10;
  } else {
    headerLen = uint32_t(uint8_t(bytes[8])) | (uint32_t(uint8_t(bytes[9])) << 8) |
                (uint32_t(uint8_t(bytes[10])) << 16) |
                (uint32_t(uint8_t(bytes[11])) << 24);
    headerStart = 12;
  }
  std::string header = bytes.substr(headerStart, headerLen).str();
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  Npy npy;
  size_t open = header.find("'shape': (") + 10;
  std::stringstream dims(header.substr(open, header.find(')', open) - open));
  for (std::string d; std::getline(dims, d, ',');)
    if (d.find_first_not_of(' ') != std::string::npos)
      npy.shape.push_back(std::stoll(d));
  size_t count = 1;
  for (int64_t d : npy.shape)
    count *= d;
  size_t dataStart = headerStart + headerLen;
  EXPECT_EQ(bytes.size() - dataStart, count * 4) << path;
  npy.data.resize(count);
  std::memcpy(npy.data.data(), bytes.data() + dataStart,
              std::min(count * 4, bytes.size() - dataStart));
  return npy;
}

nlohmann::json readJson(const std::string &path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

/// Runs `args`; stdout goes to `out` (if set). Returns the exit code and
/// appends stderr to `err`.
int run(std::vector<std::string> args, const std::string &out, std::string &err) {
  llvm::SmallString<128> errPath;
  llvm::sys::fs::createTemporaryFile("moec-golden", "err", errPath);
  std::vector<llvm::StringRef> argv(args.begin(), args.end());
  std::optional<llvm::StringRef> redirects[] = {
      std::nullopt,
      out.empty() ? std::optional<llvm::StringRef>("/dev/null")
                  : std::optional<llvm::StringRef>(out),
      llvm::StringRef(errPath)};
  int rc = llvm::sys::ExecuteAndWait(args[0], argv, std::nullopt, redirects, 300);
  std::ifstream in(errPath.c_str());
  std::stringstream s;
  s << in.rdbuf();
  err += s.str();
  llvm::sys::fs::remove(errPath);
  return rc;
}

std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Golden : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    llvm::SmallString<128> dir;
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("moec-golden", dir));
    tmp = dir.str().str();
  }
  void TearDown() override { llvm::sys::fs::remove_directories(tmp); }

  std::string variantDir() const { return kGolden + "/data/" + GetParam(); }

  /// Compiles the variant with `weights` placement and MLA `form`; returns
  /// the plan path.
  std::string compile(const std::string &weights, const std::string &form) {
    std::string plan = tmp + "/" + GetParam() + "-" + weights + "-" + form + ".plan";
    std::string err;
    int rc = run({kBin + "/moec", "compile", variantDir(), "-o", plan,
                  "--weights=" + weights, "--mla-form=" + form, "--quiet"},
                 "", err);
    EXPECT_EQ(rc, 0) << err;
    return plan;
  }

  std::string tokenList() const {
    std::string s;
    nlohmann::json prompt = readJson(variantDir() + "/prompt.json");
    for (int t : prompt["tokens"])
      s += (s.empty() ? "" : ",") + std::to_string(t);
    return s;
  }

  std::string tmp;
};

TEST_P(Golden, LogitsAndGreedyTokensMatchTransformers) {
  std::string tokens = tokenList();
  Npy ref = readNpy(variantDir() + "/logits.npy");
  std::vector<int> greedy = readJson(variantDir() + "/greedy.json")["tokens"];

  // Embedded and external weights with the absorbed MLA form (the default),
  // then the naive form: the same function, checked against the same logits.
  const char *placements[] = {"embed", "external", "embed"};
  const char *forms[] = {"absorbed", "absorbed", "naive"};
  std::string logitsBytes[3], generated[3];
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(std::string(placements[i]) + ", " + forms[i]);
    std::string plan = compile(placements[i], forms[i]);
    std::string npyPath = tmp + "/" + std::to_string(i) + ".npy";
    std::string err;
    ASSERT_EQ(run({kBin + "/moec-run", plan, "--tokens", tokens, "--dump-logits",
                   npyPath},
                  "", err),
              0)
        << err;
    Npy ours = readNpy(npyPath);
    ASSERT_EQ(ours.shape, ref.shape);
    double maxRef = 0, maxDiff = 0;
    for (size_t j = 0; j < ref.data.size(); ++j) {
      maxRef = std::max(maxRef, std::fabs(double(ref.data[j])));
      maxDiff = std::max(maxDiff, std::fabs(double(ours.data[j]) - ref.data[j]));
    }
    ASSERT_GT(maxRef, 0.0);
    std::cout << GetParam() << " (" << placements[i] << ", " << forms[i]
              << "): max|ours - ref| / max|ref| = " << maxDiff / maxRef << "\n";
    EXPECT_LE(maxDiff / maxRef, 1e-4)
        << "max|ours - ref| = " << maxDiff << ", max|ref| = " << maxRef;
    logitsBytes[i] = readFile(npyPath);

    std::string outPath = tmp + "/" + std::to_string(i) + ".tokens";
    ASSERT_EQ(run({kBin + "/moec-run", plan, "--tokens", tokens,
                   "--max-new-tokens", "16"},
                  outPath, err),
              0)
        << err;
    generated[i] = readFile(outPath);
    std::stringstream ids(generated[i]);
    std::vector<int> got;
    for (int id; ids >> id;)
      got.push_back(id);
    EXPECT_EQ(got, greedy);
  }
  // External weights must not change a single bit of the output.
  EXPECT_EQ(logitsBytes[0], logitsBytes[1]);
  EXPECT_EQ(generated[0], generated[1]);
}

std::vector<std::string> variants() {
  std::vector<std::string> names;
  // Keep the document alive: a range-for over a temporary's subobject dangles.
  nlohmann::json manifest = readJson(kGolden + "/manifest.json");
  for (const auto &v : manifest["variants"])
    names.push_back(v["name"]);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(variants()),
                         [](const auto &info) { return info.param; });

} // namespace
