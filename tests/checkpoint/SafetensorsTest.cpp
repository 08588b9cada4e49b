//===- SafetensorsTest.cpp - Reading and writing safetensors files --------===//
#include "moec/checkpoint/Safetensors.h"
#include "TestUtil.h"
#include "moec/checkpoint/FloatFormats.h"
#include "moec/checkpoint/SafetensorsWriter.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>

using namespace moec::checkpoint;
using namespace moec::checkpoint::test;

namespace {

TEST(SafetensorsTest, WriteThenReadBack) {
  TempDir Dir;
  std::vector<uint8_t> F32 = encodeFromFloat(DType::F32, {1.0f, -2.0f, 0.5f});
  std::vector<uint8_t> BF16 = encodeFromFloat(DType::BF16, {1, 2, 3, 4, 5, 6});
  std::vector<uint8_t> F16 = encodeFromFloat(DType::F16, {0.25f});
  std::vector<uint8_t> F8 = {0x38, 0x7E, 0x01};
  std::vector<TensorToWrite> Tensors = {{"a.f32", DType::F32, {3}, F32},
                                        {"b.bf16", DType::BF16, {2, 3}, BF16},
                                        {"c.f16", DType::F16, {1, 1}, F16},
                                        {"d.f8", DType::F8_E4M3, {3, 1}, F8}};
  std::string Path = Dir.file("x.safetensors");
  ASSERT_EQ(errorText(writeSafetensors(Path, Tensors, {{"format", "pt"}})), "");

  auto File = SafetensorsFile::open(Path);
  ASSERT_TRUE(bool(File)) << errorText(File);
  EXPECT_EQ((*File)->dataOffset() % 8, 0u);
  EXPECT_EQ((*File)->fileSize(), (*File)->dataOffset() + 12 + 12 + 2 + 3);
  EXPECT_EQ((*File)->metadata().at("format"), "pt");
  ASSERT_EQ((*File)->tensors().size(), 4u);
  for (const TensorToWrite &Want : Tensors) {
    const TensorInfo *Got = (*File)->lookup(Want.Name);
    ASSERT_NE(Got, nullptr) << Want.Name;
    EXPECT_EQ(Got->Type, Want.Type);
    EXPECT_EQ(Got->Shape, Want.Shape);
    EXPECT_EQ(Got->bytes(), Want.Bytes);
    EXPECT_EQ(Got->FilePath, Path);
    // The (file, offset) pair addresses the same bytes as the mapping.
    std::string Raw = readFile(Path);
    EXPECT_EQ(Raw.substr(Got->FileOffset, Got->ByteSize),
              std::string(Want.Bytes.begin(), Want.Bytes.end()));
  }
  // Tensors are stored in the given order without gaps.
  EXPECT_EQ((*File)->tensors()[0].Name, "a.f32");
  EXPECT_EQ((*File)->tensors()[1].FileOffset, (*File)->dataOffset() + 12);
  float Value;
  decodeToFloat(DType::F32, (*File)->lookup("a.f32")->Data + 4, 1, &Value);
  EXPECT_EQ(Value, -2.0f);
}

TEST(SafetensorsTest, ProducedTensorsAreMadeOneAtATimeAsTheyAreWritten) {
  TempDir Dir;
  std::vector<uint8_t> Fixed = encodeFromFloat(DType::F32, {1.0f, 2.0f});
  std::vector<std::string> Calls;
  auto Produce = [&Calls](std::string Name, std::vector<float> Values) {
    return [&Calls, Name, Values](std::vector<uint8_t> &Out) {
      Calls.push_back(Name);
      Out = encodeFromFloat(DType::BF16, Values);
    };
  };
  std::vector<TensorToWrite> Tensors(3);
  Tensors[0] = {"p", DType::BF16, {2, 2}, {}, Produce("p", {1, 2, 3, 4}), 8};
  Tensors[1] = {"fixed", DType::F32, {2}, Fixed};
  Tensors[2] = {"q", DType::BF16, {3}, {}, Produce("q", {5, 6, 7}), 6};
  std::string Path = Dir.file("x.safetensors");
  ASSERT_EQ(errorText(writeSafetensors(Path, Tensors)), "");
  // Each producer ran once, in file order, while the file was written.
  EXPECT_EQ(Calls, (std::vector<std::string>{"p", "q"}));
  auto File = SafetensorsFile::open(Path);
  ASSERT_TRUE(bool(File)) << errorText(File);
  EXPECT_EQ((*File)->lookup("p")->bytes(),
            llvm::ArrayRef<uint8_t>(encodeFromFloat(DType::BF16, {1, 2, 3, 4})));
  EXPECT_EQ((*File)->lookup("fixed")->bytes(), llvm::ArrayRef<uint8_t>(Fixed));
  EXPECT_EQ((*File)->lookup("q")->bytes(),
            llvm::ArrayRef<uint8_t>(encodeFromFloat(DType::BF16, {5, 6, 7})));
  // A declared size that does not fit the shape is refused before anything runs.
  Calls.clear();
  Tensors[2].ProducedSize = 4;
  EXPECT_EQ(errorText(writeSafetensors(Dir.file("y.safetensors"), Tensors)),
            Dir.file("y.safetensors") + ": tensor 'q': 4 bytes do not match BF16 x [3]");
  EXPECT_TRUE(Calls.empty());
}

TEST(SafetensorsTest, WriteIsAtomicAndLeavesNoTemporaries) {
  TempDir Dir;
  std::string Path = Dir.file("x.safetensors");
  writeFile(Path, "old contents");
  std::vector<uint8_t> Bytes = encodeFromFloat(DType::F32, {7.0f});
  ASSERT_EQ(errorText(writeSafetensors(Path, {{"t", DType::F32, {1}, Bytes}})),
            "");
  std::error_code EC;
  int Entries = 0;
  for (llvm::sys::fs::directory_iterator It(Dir.path(), EC), End;
       It != End && !EC; It.increment(EC))
    ++Entries;
  EXPECT_EQ(Entries, 1);
  auto File = SafetensorsFile::open(Path);
  ASSERT_TRUE(bool(File)) << errorText(File);
  EXPECT_EQ((*File)->tensors().size(), 1u);
}

TEST(SafetensorsTest, HeaderIsPaddedWithSpaces) {
  TempDir Dir;
  std::string Path = Dir.file("x.safetensors");
  std::vector<uint8_t> Bytes = {1, 2};
  ASSERT_EQ(
      errorText(writeSafetensors(Path, {{"abc", DType::BF16, {1}, Bytes}})),
      "");
  std::string Raw = readFile(Path);
  uint64_t Length = 0;
  for (int I = 7; I >= 0; --I)
    Length = (Length << 8) | static_cast<uint8_t>(Raw[I]);
  EXPECT_EQ((8 + Length) % 8, 0u);
  std::string Header = Raw.substr(8, Length);
  EXPECT_EQ(Header.find_last_not_of(' '), Header.rfind('}'));
}

TEST(SafetensorsTest, WriterRejectsInconsistentTensors) {
  TempDir Dir;
  std::string Path = Dir.file("x.safetensors");
  std::vector<uint8_t> Bytes = {1, 2, 3};
  EXPECT_EQ(errorText(writeSafetensors(Path, {{"t", DType::BF16, {2}, Bytes}})),
            Path + ": tensor 't': 3 bytes do not match BF16 x [2]");
  std::vector<uint8_t> Two = {1, 2};
  EXPECT_EQ(errorText(writeSafetensors(Path, {{"t", DType::BF16, {1}, Two},
                                              {"t", DType::BF16, {1}, Two}})),
            Path + ": tensor 't' is given twice");
  EXPECT_FALSE(llvm::sys::fs::exists(Path));
}

/// Opens a file made of \p Header and \p Data and returns the error text.
std::string openError(const TempDir &Dir, llvm::StringRef Header,
                      llvm::StringRef Data = "") {
  std::string Path = Dir.file("bad.safetensors");
  writeFile(Path, rawSafetensors(Header, Data));
  auto File = SafetensorsFile::open(Path);
  return errorText(File);
}

TEST(SafetensorsErrorTest, FileShorterThanHeaderLength) {
  TempDir Dir;
  std::string Path = Dir.file("short.safetensors");
  writeFile(Path, "abc");
  auto File = SafetensorsFile::open(Path);
  EXPECT_EQ(errorText(File),
            Path + ": file is 3 bytes, too short for the 8-byte header length");
}

TEST(SafetensorsErrorTest, HeaderLengthPastEndOfFile) {
  TempDir Dir;
  std::string Path = Dir.file("bad.safetensors");
  std::string Raw = rawSafetensors("{}", "");
  Raw[0] = 100; // Claims 100 header bytes; the file has 10.
  writeFile(Path, Raw);
  auto File = SafetensorsFile::open(Path);
  EXPECT_EQ(errorText(File),
            Path +
                ": header length 100 runs past the end of the file (10 bytes)");
}

TEST(SafetensorsErrorTest, MalformedHeaderJson) {
  TempDir Dir;
  std::string Error = openError(Dir, "{\"t\": {\"dtype\": ");
  EXPECT_TRUE(llvm::StringRef(Error).starts_with(
      Dir.file("bad.safetensors") +
      ": malformed JSON in the safetensors header: "))
      << Error;
  EXPECT_EQ(openError(Dir, "[1, 2]"),
            Dir.file("bad.safetensors") +
                ": safetensors header must be a JSON object, got array");
}

TEST(SafetensorsErrorTest, UnsupportedDType) {
  TempDir Dir;
  EXPECT_EQ(
      openError(
          Dir,
          R"({"pos": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})",
          std::string(8, '\0')),
      Dir.file("bad.safetensors") +
          ": tensor 'pos': unsupported dtype 'I64' (supported: BF16, F16, F32, "
          "F8_E4M3)");
}

TEST(SafetensorsErrorTest, DataOffsetsOutsideFile) {
  TempDir Dir;
  EXPECT_EQ(
      openError(
          Dir,
          R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
          std::string(8, '\0')),
      Dir.file("bad.safetensors") +
          ": tensor 'w': data_offsets [0, 16] lie outside the data section "
          "(8 bytes)");
  EXPECT_EQ(
      openError(
          Dir,
          R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [9, 4]}})",
          std::string(8, '\0')),
      Dir.file("bad.safetensors") +
          ": tensor 'w': data_offsets [9, 4] lie outside the data section "
          "(8 bytes)");
}

TEST(SafetensorsErrorTest, DataOffsetsDisagreeWithShape) {
  TempDir Dir;
  EXPECT_EQ(
      openError(
          Dir,
          R"({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}})",
          std::string(16, '\0')),
      Dir.file("bad.safetensors") +
          ": tensor 'w': data_offsets [0, 8] hold 8 bytes, but BF16 x [2, 3] "
          "needs 12");
}

TEST(SafetensorsErrorTest, OverlappingTensors) {
  TempDir Dir;
  EXPECT_EQ(
      openError(Dir,
                R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                std::string(8, '\0')),
      Dir.file("bad.safetensors") +
          ": tensors 'a' and 'b' overlap in the data section");
}

TEST(SafetensorsErrorTest, MalformedEntries) {
  TempDir Dir;
  std::string Bad = Dir.file("bad.safetensors");
  EXPECT_EQ(openError(Dir, R"({"w": {"shape": [1], "data_offsets": [0, 4]}})",
                      std::string(4, '\0')),
            Bad + ": tensor 'w': missing string 'dtype'");
  EXPECT_EQ(
      openError(
          Dir,
          R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
          std::string(4, '\0')),
      Bad + ": tensor 'w': 'shape' must be a list of non-negative integers");
  EXPECT_EQ(
      openError(Dir,
                R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})",
                std::string(4, '\0')),
      Bad + ": tensor 'w': 'data_offsets' must be a list of two non-negative "
            "integers");
  EXPECT_EQ(openError(Dir, R"({"w": 3})"), Bad +
                                               ": tensor 'w': entry must be an "
                                               "object, got integer");
  EXPECT_EQ(
      openError(Dir, R"({"__metadata__": {"format": 1}})"),
      Bad + ": '__metadata__' entry 'format' must be a string, got integer");
  EXPECT_EQ(
      openError(Dir,
                R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296],
                                "data_offsets": [0, 4]}})",
                std::string(4, '\0')),
      Bad + ": tensor 'w': shape [4294967296, 4294967296] is too large");
}

TEST(SafetensorsErrorTest, NamesFromTheFileAreEscapedInMessages) {
  TempDir Dir;
  std::string Bad = Dir.file("bad.safetensors");
  // JSON escapes: the tensor name holds a newline, a U+0001 and an e-acute.
  std::string Error = openError(
      Dir,
      R"({"w\nfake error\u0001\u00e9": {"dtype": "I\n64", "shape": [1], "data_offsets": [0, 8]}})",
      std::string(8, '\0'));
  EXPECT_EQ(Error, Bad + ": tensor 'w\\x0Afake error\\x01\\xC3\\xA9': unsupported "
                         "dtype 'I\\x0A64' (supported: BF16, F16, F32, F8_E4M3)");
  EXPECT_EQ(Error.find('\n'), std::string::npos);
  EXPECT_EQ(
      openError(Dir,
                R"({"a\r": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b\n": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                std::string(8, '\0')),
      Bad + ": tensors 'a\\x0D' and 'b\\x0A' overlap in the data section");
  EXPECT_EQ(openError(Dir, R"({"__metadata__": {"k\n": 1}})"),
            Bad + ": '__metadata__' entry 'k\\x0A' must be a string, got integer");
  // A very long name is cut after 200 bytes.
  std::string Long(300, 'n');
  EXPECT_EQ(openError(Dir, "{\"" + Long + "\": 3}"),
            Bad + ": tensor '" + std::string(200, 'n') +
                "...': entry must be an object, got integer");
  // The JSON parser's own message quotes the raw bytes it stopped at.
  Error = openError(Dir, "{\"w\": \xff\x01\n}");
  EXPECT_TRUE(llvm::StringRef(Error).starts_with(
      Bad + ": malformed JSON in the safetensors header: "))
      << Error;
  EXPECT_EQ(Error.find_first_of("\n\x01\xff"), std::string::npos) << Error;
}

TEST(SafetensorsErrorTest, FuzzRegressions) {
  // Inputs moec_safetensors_fuzzer found, with the one clean line each must give.
  const std::string Dir = std::string(MOEC_FUZZ_DIR) + "/regressions-safetensors";
  const std::pair<const char *, const char *> Cases[] = {
      // The JSON parser's message quoted a raw 0xF4 byte.
      {"ill-formed-utf8-in-key.safetensors",
       "malformed JSON in the safetensors header: parse error at line 1, column "
       "8: syntax error while parsing object key - invalid string: ill-formed "
       "UTF-8 byte; last read: '\"__me\\xF4a'; expected string literal"},
  };
  for (const auto &[File, Message] : Cases) {
    std::string Path = Dir + "/" + File;
    auto Opened = SafetensorsFile::open(Path);
    EXPECT_EQ(errorText(Opened), Path + ": " + Message);
  }
}

TEST(SafetensorsTest, ParsesInMemoryImage) {
  std::string Raw = rawSafetensors(
      R"({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})",
      std::string("\x80\x3f\x00\xc0", 4));
  auto File = SafetensorsFile::fromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(Raw, "mem.safetensors"));
  ASSERT_TRUE(bool(File)) << errorText(File);
  float Values[2];
  decodeToFloat(DType::BF16, (*File)->lookup("w")->Data, 2, Values);
  EXPECT_EQ(Values[0], 1.0f);
  EXPECT_EQ(Values[1], -2.0f);
  EXPECT_EQ((*File)->lookup("w")->FilePath, "mem.safetensors");

  auto Short = SafetensorsFile::fromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy("1234", "mem.safetensors"));
  EXPECT_EQ(errorText(Short), "mem.safetensors: file is 4 bytes, too short for "
                              "the 8-byte header length");
}

TEST(SafetensorsErrorTest, MissingFileAndDirectory) {
  TempDir Dir;
  auto Missing = SafetensorsFile::open(Dir.file("none.safetensors"));
  EXPECT_TRUE(
      llvm::StringRef(errorText(Missing))
          .starts_with(Dir.file("none.safetensors") + ": cannot open: "));
  auto Folder = SafetensorsFile::open(Dir.path());
  EXPECT_EQ(errorText(Folder), Dir.path() + ": not a regular file");
}

} // namespace
