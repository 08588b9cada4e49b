//===- MoeInterfaces.td - moe dialect op interfaces --------*- tablegen -*-===//

#ifndef MOE_INTERFACES_TD
#define MOE_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Moe_StepOpInterface : OpInterface<"StepOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    A step-level op: the plan emitter translates it one to one into a plan
    step of kind `getStepKind()` (the `StepKind` of runtime/schema/plan.fbs,
    spelled as in its table: "linear", "rms_norm", "moe_experts", ...). Every
    constant the step's kernel needs is an attribute of the op. An op
    without this interface (other than weights and `func` ops) must be
    lowered by a pass before the plan is emitted.
  }];
  let methods = [
    StaticInterfaceMethod<
      "The plan step kind this op becomes, e.g. \"slice_columns\".",
      "::llvm::StringRef", "getStepKind">,
  ];
}

#endif // MOE_INTERFACES_TD
