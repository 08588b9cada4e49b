//===- Driver.h - the work behind moec's subcommands -------------*- C++ -*-===//
#ifndef MOEC_DRIVER_DRIVER_H
#define MOEC_DRIVER_DRIVER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace moec::driver {

/// Generates `kernel`'s PTX for `arch` and writes it atomically to `output`
/// ("-" is stdout). Nothing is written when generation fails.
llvm::Error emitPtx(llvm::StringRef kernel, llvm::StringRef arch,
                    llvm::StringRef output);

} // namespace moec::driver

#endif // MOEC_DRIVER_DRIVER_H
