// RUN: moec-opt %s -split-input-file -moe-fuse-gate-up | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-fuse-gate-up='rows=16' | FileCheck %s --check-prefix=ROWS
// RUN: moec-opt %s -split-input-file -moe-fuse-gate-up='report=true' -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT

// A dense SwiGLU: gate and up stacked by 128-row units (interleaved), one
// fused step whose product gives g and u together; down stays as it was.
// CHECK-LABEL: func @dense
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x64xf32>
// CHECK: %[[G:.*]] = moe.weight "mlp.gate_proj.weight" : tensor<32x64xbf16>
// CHECK: %[[U:.*]] = moe.weight "mlp.up_proj.weight" : tensor<32x64xbf16>
// CHECK: %[[D:.*]] = moe.weight "mlp.down_proj.weight" : tensor<64x32xbf16>
// CHECK: %[[GU:.*]] = moe.concat_weights %[[G]], %[[U]] {interleave = 128 : i64} : tensor<32x64xbf16>, tensor<32x64xbf16> -> tensor<64x64xbf16>
// CHECK-NEXT: %[[Y:.*]] = moe.fused_swiglu %[[X]] gate_up(%[[GU]]) down(%[[D]]) {gate_up_rows = 128 : i64} : (tensor<?x64xf32>, tensor<64x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
// CHECK-NOT: moe.swiglu
// CHECK: return %[[Y]]
// ROWS-LABEL: func @dense
// ROWS: moe.concat_weights {{.*}} {interleave = 16 : i64}
// ROWS: moe.fused_swiglu {{.*}} {gate_up_rows = 16 : i64}
// REPORT: remark: moe-fuse-gate-up: 1 SwiGLU step(s) fused (gate and up as one product)
func.func @dense(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %g = moe.weight "mlp.gate_proj.weight" : tensor<32x64xbf16>
  %u = moe.weight "mlp.up_proj.weight" : tensor<32x64xbf16>
  %d = moe.weight "mlp.down_proj.weight" : tensor<64x32xbf16>
  %y = moe.swiglu %x gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Routed experts: each expert's gate and up stacked, one fused step for all.
// CHECK-LABEL: func @experts
// CHECK-COUNT-2: moe.concat_weights {{.*}} {interleave = 128 : i64} : tensor<32x64xbf16>, tensor<32x64xbf16> -> tensor<64x64xbf16>
// CHECK-NEXT: moe.fused_routed_experts %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} gate_up[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] down[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] {gate_up_rows = 128 : i64}
// CHECK-NOT: moe.routed_experts
// REPORT: remark: moe-fuse-gate-up: 1 SwiGLU step(s)
func.func @experts(%x: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>) -> tensor<?x64xf32> {
  %g0 = moe.weight "e0.gate" : tensor<32x64xbf16>
  %u0 = moe.weight "e0.up" : tensor<32x64xbf16>
  %d0 = moe.weight "e0.down" : tensor<64x32xbf16>
  %g1 = moe.weight "e1.gate" : tensor<32x64xbf16>
  %u1 = moe.weight "e1.up" : tensor<32x64xbf16>
  %d1 = moe.weight "e1.down" : tensor<64x32xbf16>
  %r = moe.routed_experts %x, %idx, %w gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}

// -----

// FP8 weights whose rows are whole 128-row scale blocks stack, scale grids
// and all; a 16-row unit would split a scale block, so with rows=16 they stay.
// CHECK-LABEL: func @fp8_aligned
// CHECK: moe.concat_weights {{.*}} {interleave = 128 : i64} : tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<512x64xf8E4M3FN, #moe.block_fp8<128, 128>>
// CHECK-NEXT: moe.fused_swiglu
// ROWS-LABEL: func @fp8_aligned
// ROWS-NOT: moe.fused_swiglu
// ROWS: moe.swiglu
// REPORT: remark: moe-fuse-gate-up: 1 SwiGLU step(s)
func.func @fp8_aligned(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %g = moe.weight "g" scale "g.s" : tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %u = moe.weight "u" scale "u.s" : tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %d = moe.weight "d" scale "d.s" : tensor<64x256xf8E4M3FN, #moe.block_fp8<128, 128>>
  %y = moe.swiglu %x gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>>,
         tensor<64x256xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// FP8 gate rows that are not whole scale blocks (96 of 128) cannot be cut
// into units without splitting a block: the SwiGLU stays, and the report says
// why. The routed experts are fused all or none: one unfused expert keeps them all.
// CHECK-LABEL: func @not_fused
// CHECK-NOT: moe.concat_weights
// CHECK: moe.swiglu
// CHECK: moe.routed_experts
// REPORT: remark: moe-fuse-gate-up: not fused: the 96 gate rows and the 128-row unit are not whole 128-row scale blocks
// REPORT: remark: moe-fuse-gate-up: not fused: expert 1: the gate and up weights' types tensor<32x64xbf16> and tensor<32x64xf32> differ
// REPORT: remark: moe-fuse-gate-up: 0 SwiGLU step(s)
func.func @not_fused(%x: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %g = moe.weight "g" scale "g.s" : tensor<96x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %u = moe.weight "u" scale "u.s" : tensor<96x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %d = moe.weight "d" scale "d.s" : tensor<64x96xf8E4M3FN, #moe.block_fp8<128, 128>>
  %y = moe.swiglu %x gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<96x64xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<96x64xf8E4M3FN, #moe.block_fp8<128, 128>>,
         tensor<64x96xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x64xf32>
  %g0 = moe.weight "e0.gate" : tensor<32x64xbf16>
  %u0 = moe.weight "e0.up" : tensor<32x64xbf16>
  %d0 = moe.weight "e0.down" : tensor<64x32xbf16>
  %g1 = moe.weight "e1.gate" : tensor<32x64xbf16>
  %u1 = moe.weight "e1.up" : tensor<32x64xf32>
  %d1 = moe.weight "e1.down" : tensor<64x32xbf16>
  %r = moe.routed_experts %x, %idx, %w gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xf32>, tensor<64x32xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return %y, %r : tensor<?x64xf32>, tensor<?x64xf32>
}
