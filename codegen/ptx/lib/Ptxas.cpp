//===- Ptxas.cpp - run the CUDA toolkit's ptxas ---------------------------===//

#include "moec/Codegen/Ptxas.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Regex.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

namespace moec::ptx {

std::optional<std::string> findPtxas() {
  if (const char *home = std::getenv("CUDA_HOME"); home && *home) {
    llvm::SmallString<256> path(home);
    llvm::sys::path::append(path, "bin", "ptxas");
    if (llvm::sys::fs::can_execute(path))
      return std::string(path);
  }
  if (auto onPath = llvm::sys::findProgramByName("ptxas"))
    return *onPath;
  if (llvm::sys::fs::can_execute("/usr/local/cuda/bin/ptxas"))
    return std::string("/usr/local/cuda/bin/ptxas");
  return std::nullopt;
}

std::vector<KernelResources> parsePtxasLog(llvm::StringRef log) {
  std::vector<KernelResources> kernels;
  llvm::Regex entry("Compiling entry function '([^']+)'");
  llvm::Regex frame("([0-9]+) bytes stack frame, ([0-9]+) bytes spill stores, ([0-9]+) bytes "
                    "spill loads");
  llvm::Regex used("Used ([0-9]+) registers");
  llvm::Regex smem("([0-9]+) bytes smem");
  llvm::SmallVector<llvm::StringRef> lines;
  log.split(lines, '\n');
  for (llvm::StringRef line : lines) {
    llvm::SmallVector<llvm::StringRef> m;
    if (entry.match(line, &m)) {
      kernels.push_back(KernelResources{m[1].str()});
      continue;
    }
    if (kernels.empty())
      continue;
    KernelResources &k = kernels.back();
    if (frame.match(line, &m)) {
      m[1].getAsInteger(10, k.stackBytes);
      m[2].getAsInteger(10, k.spillStoreBytes);
      m[3].getAsInteger(10, k.spillLoadBytes);
    }
    if (used.match(line, &m))
      m[1].getAsInteger(10, k.registers);
    if (smem.match(line, &m))
      m[1].getAsInteger(10, k.sharedBytes);
  }
  return kernels;
}

namespace {
llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", message.str().c_str());
}

/// Runs `args` with stdout and stderr captured into one string.
llvm::Expected<int> run(llvm::ArrayRef<llvm::StringRef> args, std::string *output) {
  llvm::SmallString<128> outPath, errPath;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile("moec-ptxas", "out", outPath))
    return fail("cannot create a temporary file: " + ec.message());
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile("moec-ptxas", "err", errPath)) {
    llvm::sys::fs::remove(outPath);
    return fail("cannot create a temporary file: " + ec.message());
  }
  llvm::scope_exit cleanup([&] {
    llvm::sys::fs::remove(outPath);
    llvm::sys::fs::remove(errPath);
  });
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(outPath),
                                                llvm::StringRef(errPath)};
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(args[0], args, std::nullopt, redirects, 0, 0, &error);
  if (rc < 0)
    return fail(args[0] + ": " + error);
  for (llvm::StringRef path : {llvm::StringRef(outPath), llvm::StringRef(errPath)})
    if (auto buffer = llvm::MemoryBuffer::getFile(path))
      *output += (*buffer)->getBuffer().str();
  return rc;
}
} // namespace

llvm::Expected<PtxasResult> assemblePtx(llvm::StringRef ptxas, llvm::StringRef ptx,
                                        llvm::StringRef chip) {
  llvm::SmallString<128> ptxPath, cubinPath;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile("moec-kernels", "ptx", ptxPath))
    return fail("cannot create a temporary file: " + ec.message());
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("moec-kernels", "cubin", cubinPath)) {
    llvm::sys::fs::remove(ptxPath);
    return fail("cannot create a temporary file: " + ec.message());
  }
  llvm::scope_exit cleanup([&] {
    llvm::sys::fs::remove(ptxPath);
    llvm::sys::fs::remove(cubinPath);
  });
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(ptxPath, ec);
    if (ec)
      return fail(ptxPath + ": " + ec.message());
    os << ptx;
  }
  PtxasResult result;
  std::string versionText;
  if (auto rc = run({ptxas, "--version"}, &versionText); !rc)
    return rc.takeError();
  llvm::SmallVector<llvm::StringRef> m;
  if (llvm::Regex("V([0-9]+\\.[0-9]+\\.[0-9]+)").match(versionText, &m))
    result.version = m[1].str();
  auto rc = run({ptxas, "-v", "--gpu-name", chip, ptxPath, "-o", cubinPath}, &result.log);
  if (!rc)
    return rc.takeError();
  if (*rc != 0)
    return fail(llvm::Twine(ptxas) + " failed for " + chip + " (exit " + llvm::Twine(*rc) +
                "): " + llvm::StringRef(result.log).trim());
  auto cubin = llvm::MemoryBuffer::getFile(cubinPath, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  if (!cubin)
    return fail(cubinPath + ": " + cubin.getError().message());
  result.cubin.assign((*cubin)->getBufferStart(), (*cubin)->getBufferEnd());
  result.kernels = parsePtxasLog(result.log);
  return result;
}

} // namespace moec::ptx
