//===- JsonFile.h - Reading JSON files with one-line errors -----*- C++ -*-===//
//
// Private to moec_checkpoint: nlohmann::json never appears in a public header.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_LIB_JSONFILE_H
#define MOEC_CHECKPOINT_LIB_JSONFILE_H

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <nlohmann/json.hpp>

#include <string>

namespace moec::checkpoint {

/// Returns an error whose message is "<File>: <Message>".
llvm::Error fileError(llvm::StringRef File, const llvm::Twine &Message);

/// Longest text from a file that a message quotes whole (see escapeForMessage).
constexpr size_t MaxQuotedBytes = 200;

/// Returns \p Text (a tensor name or string read from a file) fit to quote in a
/// one-line message: control bytes, DEL and non-ASCII bytes become \xNN, and text
/// longer than MaxQuotedBytes keeps its first MaxQuotedBytes bytes followed by
/// "...". Every name or string from a file goes through it before a message.
std::string escapeForMessage(llvm::StringRef Text);

/// Reads the whole file at \p Path; errors name the path.
llvm::Expected<std::string> readTextFile(llvm::StringRef Path);

/// Parses \p Text as JSON. On a syntax error returns "<File>: malformed JSON
/// <Context>: <parser message>" (Context may be empty).
llvm::Expected<nlohmann::json> parseJson(llvm::StringRef Text,
                                         llvm::StringRef File,
                                         llvm::StringRef Context = "");

/// Names the JSON type of \p Value for messages ("string", "number", ...).
std::string jsonTypeName(const nlohmann::json &Value);

/// Joins a directory and a file name with the platform separator.
std::string joinPath(llvm::StringRef Dir, llvm::StringRef Name);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_LIB_JSONFILE_H
