// RUN: moec-opt %s -split-input-file -moe-split-phases -verify-diagnostics | FileCheck %s

// @forward becomes the plan's two entry points, in order, with the same body;
// other functions stay.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>, %[[W:.*]]: tensor<8xbf16>) -> tensor<?x8xf32>
// CHECK-NEXT: %[[N:.*]] = moe.rms_norm %[[X]], %[[W]] {epsilon = 9.99999997E-7 : f32}
// CHECK-NEXT: return %[[N]]
// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>, %[[W:.*]]: tensor<8xbf16>) -> tensor<?x8xf32>
// CHECK-NEXT: %[[N:.*]] = moe.rms_norm %[[X]], %[[W]] {epsilon = 9.99999997E-7 : f32}
// CHECK-NEXT: return %[[N]]
// CHECK-LABEL: func.func @helper
// CHECK-NOT: @forward
func.func @forward(%x: tensor<?x8xf32>, %w: tensor<8xbf16>) -> tensor<?x8xf32> {
  %n = moe.rms_norm %x, %w {epsilon = 1.0e-6 : f32} : tensor<?x8xf32>, tensor<8xbf16>
  return %n : tensor<?x8xf32>
}
func.func @helper() {
  return
}

// -----

// expected-error @+1 {{moe-split-phases: expected a func.func @forward, got none}}
module {
  func.func @main() {
    return
  }
}

// -----

module {
  func.func @forward() {
    return
  }
  // expected-error @+1 {{moe-split-phases: expected no @decode before the split, got one}}
  func.func @decode() {
    return
  }
}
