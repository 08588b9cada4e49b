//===- SafetensorsFuzzer.cpp - libFuzzer target for the safetensors reader ===//
//
// Feeds arbitrary bytes to SafetensorsFile::fromBuffer. Whatever the input, the
// reader must return a file or one clean error line and never crash; when it
// accepts a file, every tensor it vouches for must lie inside the buffer
// (AddressSanitizer checks the touches) and be found again by name.
//
//===----------------------------------------------------------------------===//
#include "FuzzMessage.h"

#include "moec/checkpoint/Safetensors.h"

#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <cstdlib>

namespace {
volatile uint64_t sink;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using moec::checkpoint::SafetensorsFile;
  using moec::checkpoint::TensorInfo;
  // No copy: libFuzzer's buffer is exactly `size` bytes, so a read past it is caught.
  std::unique_ptr<llvm::MemoryBuffer> buffer = llvm::MemoryBuffer::getMemBuffer(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), "fuzz.safetensors",
      /*RequiresNullTerminator=*/false);
  llvm::Expected<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::fromBuffer(std::move(buffer));
  if (!file) {
    moec::fuzz::checkOneLineMessage(llvm::toString(file.takeError()), "fuzz.safetensors");
    return 0;
  }
  uint64_t sum = (*file)->metadata().size();
  for (const TensorInfo &tensor : (*file)->tensors()) {
    const TensorInfo *found = (*file)->lookup(tensor.Name);
    if (!found || found->Name != tensor.Name ||
        uint64_t(tensor.numElements()) * moec::checkpoint::dtypeSize(tensor.Type) !=
            tensor.ByteSize ||
        tensor.FileOffset + tensor.ByteSize > size)
      std::abort();
    if (tensor.ByteSize > 0)
      sum += tensor.Data[0] + tensor.Data[tensor.ByteSize - 1];
  }
  sink = sum;
  return 0;
}
