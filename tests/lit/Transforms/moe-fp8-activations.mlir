// RUN: moec-opt %s -split-input-file -moe-fp8-activations | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-fp8-activations='report=true' 2>&1 | FileCheck %s --check-prefix=REPORT

// The products DeepSeek runs through its FP8 GEMM get moe.activations = f8E4M3FN
// when their weights are FP8 block-scaled: linear, the SwiGLU MLP, logits. The
// linears with bf16 or int8 weights, the norm, the router and the MLA core's
// head_linear (kv_b_proj dequantized) do not, and nothing else changes.
// CHECK-LABEL: func.func @products
// CHECK: moe.linear %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<32x64xbf16>
// CHECK: moe.linear %{{.*}}, %{{.*}} {moe.activations = f8E4M3FN} : tensor<?x32xf32>, tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
// CHECK: moe.linear %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<32x64xi8, #moe.block_int8<128, 128>>
// CHECK-NOT: moe.activations
// CHECK: moe.rms_norm
// CHECK-NOT: moe.activations
// CHECK: moe.router
// CHECK-NOT: moe.activations
// CHECK: moe.swiglu %{{.*}} gate(%{{.*}}) up(%{{.*}}) down(%{{.*}}) {moe.activations = f8E4M3FN}
// CHECK: moe.logits %{{.*}}, %{{.*}} {moe.activations = f8E4M3FN}
// REPORT: remark: moe-fp8-activations: 3 step(s) quantize their activations to e4m3 per token and 128 columns, 2 without FP8 weights keep fp32
func.func @products(%x: tensor<?x64xf32>) -> tensor<?x128xf32> {
  %w = moe.weight "a" : tensor<32x64xbf16>
  %f = moe.weight "b" scale "b.s" : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  %i = moe.weight "c" scale "c.s" : tensor<32x64xi8, #moe.block_int8<128, 128>>
  %n = moe.weight "norm" : tensor<64xbf16>
  %gate = moe.weight "gate" : tensor<4x64xbf16>
  %g = moe.weight "mlp.gate" scale "g.s" : tensor<16x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %u = moe.weight "mlp.up" scale "u.s" : tensor<16x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %d = moe.weight "mlp.down" scale "d.s" : tensor<64x16xf8E4M3FN, #moe.block_fp8<128, 128>>
  %lm = moe.weight "lm_head" scale "lm.s" : tensor<128x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %a = moe.linear %x, %w : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
  %b = moe.linear %a, %f : tensor<?x32xf32>, tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x128xf32>
  %c = moe.linear %x, %i : tensor<?x64xf32>, tensor<32x64xi8, #moe.block_int8<128, 128>> -> tensor<?x32xf32>
  %r = moe.rms_norm %x, %n {epsilon = 1.0e-06 : f32} : tensor<?x64xf32>, tensor<64xbf16>
  %idx, %wts = moe.router %r, %gate {group_score = #moe.group_score<max>, n_group = 1 : i64, norm_topk_prob = false, routed_scaling_factor = 1.000000e+00 : f32, score_func = #moe.score_func<softmax>, top_k = 2 : i64, topk_group = 1 : i64} : (tensor<?x64xf32>, tensor<4x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  %m = moe.swiglu %r gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<16x64xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<16x64xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<64x16xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x64xf32>
  %l = moe.logits %m, %lm : tensor<?x64xf32>, tensor<128x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x128xf32>
  return %l : tensor<?x128xf32>
}

// -----

// The MLA core's products keep fp32 activations.
// CHECK-LABEL: func.func @head
// CHECK: moe.head_linear
// CHECK-NOT: moe.activations
// CHECK: return
func.func @head(%x: tensor<?x128xf32>, %w: tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x64xf32> {
  %y = moe.head_linear %x, %w {heads = 4 : i64, in_offset = 0 : i64, in_stride = 32 : i64, in_width = 32 : i64, transpose = false} : tensor<?x128xf32>, tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
