//===- EmitPtx.cpp - moec emit-ptx ----------------------------------------===//

#include "moec/Driver/Driver.h"

#include "moec/Codegen/PTX.h"
#include "moec/checkpoint/SafetensorsWriter.h"

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
  return checkpoint::writeOutput(output, [&](raw_ostream &os) { os << *ptx; },
                                 /*AllowStdout=*/true);
}
