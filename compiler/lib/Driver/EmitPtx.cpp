//===- EmitPtx.cpp - moec emit-ptx ----------------------------------------===//

#include "moec/Driver/Driver.h"

#include "moec/Codegen/PTX.h"

#include "llvm/Support/raw_ostream.h"

using namespace llvm;

Error moec::driver::emitPtx(StringRef kernel, StringRef arch, StringRef output) {
  if (kernel != "rms_norm")
    return createStringError(inconvertibleErrorCode(),
                             "unknown kernel '%s' (available: rms_norm)",
                             kernel.str().c_str());
  Expected<std::string> ptx = ptx::emitRmsNormPtx(arch);
  if (!ptx)
    return ptx.takeError();
  // writeToOutput writes a temporary file and renames it into place.
  return writeToOutput(output, [&](raw_ostream &os) {
    os << *ptx;
    return Error::success();
  });
}
