//===- Safetensors.cpp - Memory-mapped safetensors files ------------------===//
#include "moec/checkpoint/Safetensors.h"

#include "JsonFile.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"

#include <algorithm>

using namespace llvm;
using json = nlohmann::json;

namespace moec::checkpoint {

int64_t TensorInfo::numElements() const {
  return shapeNumElements(Shape).value_or(0);
}

/// Owns the bytes: a read-only file mapping, or a buffer handed to fromBuffer.
struct SafetensorsFile::Mapping {
  sys::fs::mapped_file_region Region;
  std::unique_ptr<MemoryBuffer> Buffer;
};

SafetensorsFile::~SafetensorsFile() = default;

const TensorInfo *SafetensorsFile::lookup(StringRef Name) const {
  auto It = Index.find(Name);
  return It == Index.end() ? nullptr : &Tensors[It->second];
}

Expected<std::unique_ptr<SafetensorsFile>>
SafetensorsFile::open(StringRef Path) {
  sys::fs::file_status Status;
  if (std::error_code EC = sys::fs::status(Path, Status))
    return fileError(Path, "cannot open: " + EC.message());
  if (!sys::fs::is_regular_file(Status))
    return fileError(Path, "not a regular file");
  uint64_t Size = Status.getSize();
  // Too short to hold the header length; checked here because an empty file
  // cannot be mapped.
  if (Size < 8)
    return fileError(Path,
                     "file is " + Twine(Size) +
                         " bytes, too short for the 8-byte header length");

  Expected<sys::fs::file_t> File = sys::fs::openNativeFileForRead(Path);
  if (!File)
    return fileError(Path, "cannot open: " + toString(File.takeError()));
  std::error_code EC;
  sys::fs::mapped_file_region Region(
      *File, sys::fs::mapped_file_region::readonly, Size, 0, EC);
  sys::fs::closeFile(*File); // The mapping outlives the descriptor.
  if (EC)
    return fileError(Path, "cannot map: " + EC.message());

  std::unique_ptr<SafetensorsFile> Result(new SafetensorsFile());
  Result->Map = std::make_unique<Mapping>();
  Result->Map->Region = std::move(Region);
  const auto *Base =
      reinterpret_cast<const uint8_t *>(Result->Map->Region.const_data());
  if (Error Err = Result->init(Path, Base, Size))
    return std::move(Err);
  return std::move(Result);
}

Expected<std::unique_ptr<SafetensorsFile>>
SafetensorsFile::fromBuffer(std::unique_ptr<MemoryBuffer> Buffer) {
  std::unique_ptr<SafetensorsFile> Result(new SafetensorsFile());
  Result->Map = std::make_unique<Mapping>();
  StringRef Bytes = Buffer->getBuffer();
  std::string Name = Buffer->getBufferIdentifier().str();
  Result->Map->Buffer = std::move(Buffer);
  if (Error Err = Result->init(
          Name, reinterpret_cast<const uint8_t *>(Bytes.data()), Bytes.size()))
    return std::move(Err);
  return std::move(Result);
}

Error SafetensorsFile::init(StringRef FilePath, const uint8_t *Bytes,
                            uint64_t Size) {
  Path = FilePath.str();
  Base = Bytes;
  FileSize = Size;
  if (Size < 8)
    return fileError(Path,
                     "file is " + Twine(Size) +
                         " bytes, too short for the 8-byte header length");
  uint64_t HeaderLength = 0;
  for (int I = 7; I >= 0; --I)
    HeaderLength = (HeaderLength << 8) | Base[I];
  if (HeaderLength > Size - 8)
    return fileError(Path, "header length " + Twine(HeaderLength) +
                               " runs past the end of the file (" +
                               Twine(Size) + " bytes)");
  DataStart = 8 + HeaderLength;
  return parseHeader(
      StringRef(reinterpret_cast<const char *>(Base) + 8, HeaderLength));
}

namespace {
/// Reads a JSON list of non-negative integers; false if it is anything else.
bool readIntList(const json &Value, std::vector<uint64_t> &Out) {
  if (!Value.is_array())
    return false;
  for (const json &Item : Value) {
    if (!Item.is_number_unsigned() &&
        !(Item.is_number_integer() && Item.get<int64_t>() >= 0))
      return false;
    Out.push_back(Item.get<uint64_t>());
  }
  return true;
}
} // namespace

Error SafetensorsFile::parseHeader(StringRef Header) {
  Expected<json> Parsed = parseJson(Header, Path, "in the safetensors header");
  if (!Parsed)
    return Parsed.takeError();
  if (!Parsed->is_object())
    return fileError(Path, "safetensors header must be a JSON object, got " +
                               jsonTypeName(*Parsed));
  uint64_t DataSize = FileSize - DataStart;

  for (const auto &Item : Parsed->items()) {
    // Named, not structured bindings: the lambda below captures the name.
    const std::string &Name = Item.key();
    const json &Entry = Item.value();
    if (Name == "__metadata__") {
      if (!Entry.is_object())
        return fileError(Path, "'__metadata__' must be an object of strings");
      for (const auto &[Key, Value] : Entry.items()) {
        if (!Value.is_string())
          return fileError(Path, "'__metadata__' entry '" +
                                     escapeForMessage(Key) +
                                     "' must be a string, got " +
                                     jsonTypeName(Value));
        Metadata[Key] = Value.get<std::string>();
      }
      continue;
    }
    auto Bad = [&](const Twine &Message) {
      return fileError(Path,
                       "tensor '" + escapeForMessage(Name) + "': " + Message);
    };
    if (!Entry.is_object())
      return Bad("entry must be an object, got " + jsonTypeName(Entry));
    auto DTypeIt = Entry.find("dtype");
    if (DTypeIt == Entry.end() || !DTypeIt->is_string())
      return Bad("missing string 'dtype'");
    std::string DTypeName = DTypeIt->get<std::string>();
    std::optional<DType> Type = parseDType(DTypeName);
    if (!Type)
      return Bad("unsupported dtype '" + escapeForMessage(DTypeName) +
                 "' (supported: BF16, F16, F32, F8_E4M3)");

    std::vector<uint64_t> Dims, Offsets;
    auto ShapeIt = Entry.find("shape");
    if (ShapeIt == Entry.end() || !readIntList(*ShapeIt, Dims))
      return Bad("'shape' must be a list of non-negative integers");
    auto OffsetsIt = Entry.find("data_offsets");
    if (OffsetsIt == Entry.end() || !readIntList(*OffsetsIt, Offsets) ||
        Offsets.size() != 2)
      return Bad("'data_offsets' must be a list of two non-negative integers");

    TensorInfo Info;
    Info.Name = Name;
    Info.Type = *Type;
    for (uint64_t Dim : Dims) {
      if (Dim > uint64_t(INT64_MAX))
        return Bad("shape dimension " + Twine(Dim) + " is too large");
      Info.Shape.push_back(static_cast<int64_t>(Dim));
    }
    std::optional<int64_t> Count = shapeNumElements(Info.Shape);
    uint64_t ElementSize = dtypeSize(*Type);
    if (!Count || uint64_t(*Count) > UINT64_MAX / ElementSize)
      return Bad("shape " + formatShape(Info.Shape) + " is too large");
    uint64_t Needed = uint64_t(*Count) * ElementSize;

    uint64_t Begin = Offsets[0], End = Offsets[1];
    std::string OffsetText = "data_offsets [" + std::to_string(Begin) + ", " +
                             std::to_string(End) + "]";
    if (Begin > End || End > DataSize)
      return Bad(OffsetText + " lie outside the data section (" +
                 Twine(DataSize) + " bytes)");
    if (End - Begin != Needed)
      return Bad(OffsetText + " hold " + Twine(End - Begin) + " bytes, but " +
                 dtypeName(*Type) + " x " + formatShape(Info.Shape) +
                 " needs " + Twine(Needed));
    Info.Data = Base + DataStart + Begin;
    Info.ByteSize = Needed;
    Info.FilePath = Path;
    Info.FileOffset = DataStart + Begin;
    Tensors.push_back(std::move(Info));
  }

  std::sort(Tensors.begin(), Tensors.end(),
            [](const TensorInfo &A, const TensorInfo &B) {
              return A.FileOffset < B.FileOffset ||
                     (A.FileOffset == B.FileOffset && A.ByteSize < B.ByteSize);
            });
  // Sorted by start, a tensor overlaps an earlier one exactly when it starts
  // before the furthest end seen so far (empty tensors occupy nothing).
  const TensorInfo *Furthest = nullptr;
  for (const TensorInfo &Tensor : Tensors) {
    if (Tensor.ByteSize == 0)
      continue;
    if (Furthest &&
        Tensor.FileOffset < Furthest->FileOffset + Furthest->ByteSize)
      return fileError(Path, "tensors '" + escapeForMessage(Furthest->Name) +
                                 "' and '" + escapeForMessage(Tensor.Name) +
                                 "' overlap in the data section");
    if (!Furthest || Tensor.FileOffset + Tensor.ByteSize >
                         Furthest->FileOffset + Furthest->ByteSize)
      Furthest = &Tensor;
  }
  for (size_t I = 0; I < Tensors.size(); ++I)
    Index[Tensors[I].Name] = I;
  return Error::success();
}

} // namespace moec::checkpoint
