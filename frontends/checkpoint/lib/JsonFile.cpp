//===- JsonFile.cpp - Reading JSON files with one-line errors -------------===//
#include "JsonFile.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace moec::checkpoint {

Error fileError(StringRef File, const Twine &Message) {
  return createStringError(inconvertibleErrorCode(), File + ": " + Message);
}

std::string escapeForMessage(StringRef Text) {
  static const char Hex[] = "0123456789ABCDEF";
  StringRef Kept = Text.take_front(MaxQuotedBytes);
  std::string Out;
  Out.reserve(Kept.size());
  for (unsigned char C : Kept) {
    if (C >= 0x20 && C < 0x7f) {
      Out += char(C);
    } else {
      Out += "\\x";
      Out += Hex[C >> 4];
      Out += Hex[C & 15];
    }
  }
  if (Kept.size() < Text.size())
    Out += "...";
  return Out;
}

Expected<std::string> readTextFile(StringRef Path) {
  // Refuse a FIFO or device before open() could wait on it.
  sys::fs::file_status Status;
  if (!sys::fs::status(Path, Status) && !sys::fs::is_regular_file(Status))
    return fileError(Path, "not a regular file");
  ErrorOr<std::unique_ptr<MemoryBuffer>> Buffer =
      MemoryBuffer::getFile(Path, /*IsText=*/false,
                            /*RequiresNullTerminator=*/false);
  if (!Buffer)
    return fileError(Path, "cannot read file: " + Buffer.getError().message());
  return (*Buffer)->getBuffer().str();
}

Expected<nlohmann::json> parseJson(StringRef Text, StringRef File,
                                   StringRef Context) {
  try {
    return nlohmann::json::parse(Text.begin(), Text.end());
  } catch (const nlohmann::json::exception &Failure) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    StringRef Message = Failure.what();
    size_t Bracket = Message.find("] ");
    if (Message.starts_with("[") && Bracket != StringRef::npos)
      Message = Message.drop_front(Bracket + 2);
    std::string Where = Context.empty() ? "" : (" " + Context).str();
    // The parser quotes the bytes it stopped at.
    return fileError(File, "malformed JSON" + Twine(Where) + ": " +
                               escapeForMessage(Message));
  }
}

std::string jsonTypeName(const nlohmann::json &Value) {
  if (Value.is_number_integer())
    return "integer";
  if (Value.is_number_float())
    return "number";
  return Value.type_name();
}

std::string joinPath(StringRef Dir, StringRef Name) {
  SmallString<256> Path(Dir);
  sys::path::append(Path, Name);
  return std::string(Path);
}

} // namespace moec::checkpoint
