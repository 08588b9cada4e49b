#!/bin/sh
# Fails if a runtime binary links MLIR or LLVM (DESIGN.md, layering rule 1).
# usage: check_no_compiler_libs.sh BINARY...
set -eu
status=0
for binary in "$@"; do
  needed=$(readelf -d "$binary" | grep NEEDED) || {
    echo "$binary: readelf found no NEEDED entries" >&2
    exit 1
  }
  if echo "$needed" | grep -E -i 'lib(MLIR|LLVM)' >&2; then
    echo "$binary: links MLIR or LLVM" >&2
    status=1
  elif nm -C "$binary" 2>/dev/null | grep -E -m 3 ' (mlir|llvm)::' >&2; then
    # A static link would leave no NEEDED entry but would define their symbols.
    echo "$binary: contains MLIR or LLVM code" >&2
    status=1
  else
    echo "$binary: links only: $(echo "$needed" | sed 's/.*\[\(.*\)\]/\1/' | tr '\n' ' ')"
  fi
done
exit $status
