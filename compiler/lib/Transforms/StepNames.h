//===- StepNames.h - names of the ops a lowering creates ---------*- C++ -*-===//
//
// Plan step names come from NameLocs: the importer names each op after the
// checkpoint module it comes from ("model.layers.3.self_attn"), and a pass
// that lowers an op names the new ops relative to it.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_LIB_TRANSFORMS_STEPNAMES_H
#define MOEC_LIB_TRANSFORMS_STEPNAMES_H

#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/Twine.h"

namespace mlir::moe {

/// `loc` named "<name of loc>.<child>": the location of a part of the op at
/// `loc` (e.g. "model.layers.3.self_attn" -> "model.layers.3.self_attn.q_a_proj").
/// An unnamed `loc` gives the name `child` around it.
inline Location childLoc(Location loc, const llvm::Twine &child) {
  MLIRContext *ctx = loc->getContext();
  if (auto named = dyn_cast<NameLoc>(loc))
    return NameLoc::get(
        StringAttr::get(ctx, named.getName().getValue() + "." + child),
        named.getChildLoc());
  return NameLoc::get(StringAttr::get(ctx, child), loc);
}

/// `loc` renamed to a sibling: its last dotted component replaced by
/// `sibling` ("model.layers.3.self_attn.attention" ->
/// "model.layers.3.self_attn.q_absorb"). A name without a dot, or an unnamed
/// `loc`, gives the name `sibling` around it.
inline Location siblingLoc(Location loc, const llvm::Twine &sibling) {
  MLIRContext *ctx = loc->getContext();
  if (auto named = dyn_cast<NameLoc>(loc)) {
    llvm::StringRef name = named.getName().getValue();
    size_t dot = name.rfind('.');
    if (dot != llvm::StringRef::npos)
      return NameLoc::get(StringAttr::get(ctx, name.take_front(dot + 1) + sibling),
                          named.getChildLoc());
    return NameLoc::get(StringAttr::get(ctx, sibling), named.getChildLoc());
  }
  return NameLoc::get(StringAttr::get(ctx, sibling), loc);
}

} // namespace mlir::moe

#endif // MOEC_LIB_TRANSFORMS_STEPNAMES_H
