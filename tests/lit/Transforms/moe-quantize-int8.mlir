// RUN: moec-opt %s -split-input-file -moe-quantize-int8 | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-quantize-int8='report=true' -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// RUN: moec-opt %s -split-input-file -moe-quantize-int8 | moec-opt -split-input-file -moe-quantize-int8 | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-quantize-int8 -moe-quantize-fp8 | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-quantize-int8='requantize-fp8=false' | FileCheck %s --check-prefix=KEEP

// The int8 counterpart of moe-quantize-fp8: the same weights get a
// moe.quantize_weight to i8 with #moe.block_int8; the router gate and lm_head stay;
// a second pass (int8 or FP8) leaves quantized weights alone.
// CHECK-LABEL: func @steps
// CHECK: %[[W:.*]] = moe.weight "model.layers.0.mlp.down_proj.weight" : tensor<300x160xbf16>
// CHECK-NEXT: %[[Q:.*]] = moe.quantize_weight %[[W]] : tensor<300x160xbf16> -> tensor<300x160xi8, #moe.block_int8<128, 128>>
// CHECK-NEXT: %[[W2:.*]] = moe.weight "model.layers.0.mlp.up_proj.weight"
// CHECK-NEXT: moe.quantize_weight %[[W2]] : tensor<160x300xbf16> -> tensor<160x300xi8, #moe.block_int8<128, 128>>
// CHECK-NEXT: %[[LM:.*]] = moe.weight "lm_head.weight" : tensor<64x160xbf16>
// CHECK: moe.linear %{{.*}}, %[[Q]] : tensor<?x160xf32>, tensor<300x160xi8, #moe.block_int8<128, 128>> -> tensor<?x300xf32>
// CHECK: moe.logits %{{.*}}, %[[LM]] : tensor<?x160xf32>, tensor<64x160xbf16>

// REPORT: remark: moe-quantize-int8: 2 weights to int8 with 128x128 float scales: 192000 -> 96048 bytes
func.func @steps(%x: tensor<?x160xf32>) -> tensor<?x64xf32> {
  %w = moe.weight "model.layers.0.mlp.down_proj.weight" : tensor<300x160xbf16>
  %w2 = moe.weight "model.layers.0.mlp.up_proj.weight" : tensor<160x300xbf16>
  %lm = moe.weight "lm_head.weight" : tensor<64x160xbf16>
  %y = moe.linear %x, %w : tensor<?x160xf32>, tensor<300x160xbf16> -> tensor<?x300xf32>
  %z = moe.linear %y, %w2 : tensor<?x300xf32>, tensor<160x300xbf16> -> tensor<?x160xf32>
  %l = moe.logits %z, %lm : tensor<?x160xf32>, tensor<64x160xbf16> -> tensor<?x64xf32>
  return %l : tensor<?x64xf32>
}

// -----

// An FP8 checkpoint's weight is requantized to int8 (the plan emitter dequantizes
// it with its block scales first); with requantize-fp8=false it stays FP8.
// CHECK-LABEL: func @fromFp8
// CHECK: %[[F:.*]] = moe.weight "w" scale "w_scale_inv" : tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
// CHECK-NEXT: %[[Q:.*]] = moe.quantize_weight %[[F]] : tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<300x160xi8, #moe.block_int8<128, 128>>
// CHECK: moe.linear %{{.*}}, %[[Q]] : tensor<?x160xf32>, tensor<300x160xi8, #moe.block_int8<128, 128>> -> tensor<?x300xf32>
// KEEP-LABEL: func @fromFp8
// KEEP-NOT: moe.quantize_weight
// KEEP: moe.linear %{{.*}}, %{{.*}} : tensor<?x160xf32>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x300xf32>
// REPORT: remark: moe-quantize-int8: 1 weights to int8 with 128x128 float scales (1 of them from FP8): 48000 -> 48024 bytes
func.func @fromFp8(%x: tensor<?x160xf32>) -> tensor<?x300xf32> {
  %w = moe.weight "w" scale "w_scale_inv" : tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %y = moe.linear %x, %w : tensor<?x160xf32>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x300xf32>
  return %y : tensor<?x300xf32>
}
