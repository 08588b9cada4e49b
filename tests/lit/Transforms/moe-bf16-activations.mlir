// RUN: moec-opt %s -split-input-file -moe-bf16-activations | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-bf16-activations='report=true' 2>&1 | FileCheck %s --check-prefix=REPORT

// Every op that multiplies by weights gets moe.activations = bf16 (bf16 and FP8
// weights alike); the router, the norm and the op with int8 weights do not, and
// nothing else changes.
// CHECK-LABEL: func.func @products
// CHECK: moe.linear %{{.*}}, %{{.*}} {moe.activations = bf16} : tensor<?x64xf32>, tensor<32x64xbf16>
// CHECK: moe.linear %{{.*}}, %{{.*}} {moe.activations = bf16} : tensor<?x32xf32>, tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
// CHECK: moe.linear %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<32x64xi8, #moe.block_int8<128, 128>>
// CHECK-NOT: moe.activations
// CHECK: moe.rms_norm
// CHECK-NOT: moe.activations
// CHECK: moe.router
// CHECK-NOT: moe.activations
// CHECK: moe.swiglu %{{.*}} gate(%{{.*}}) up(%{{.*}}) down(%{{.*}}) {moe.activations = bf16}
// CHECK: moe.logits %{{.*}}, %{{.*}} {moe.activations = bf16}
// REPORT: remark: moe-bf16-activations: 4 step(s) take bf16 activations, 1 with int8 weights keep W8A8
func.func @products(%x: tensor<?x64xf32>) -> tensor<?x128xf32> {
  %w = moe.weight "a" : tensor<32x64xbf16>
  %f = moe.weight "b" scale "b.s" : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  %i = moe.weight "c" scale "c.s" : tensor<32x64xi8, #moe.block_int8<128, 128>>
  %n = moe.weight "norm" : tensor<64xbf16>
  %gate = moe.weight "gate" : tensor<4x64xbf16>
  %g = moe.weight "mlp.gate" : tensor<16x64xbf16>
  %u = moe.weight "mlp.up" : tensor<16x64xbf16>
  %d = moe.weight "mlp.down" : tensor<64x16xbf16>
  %lm = moe.weight "lm_head" : tensor<128x64xbf16>
  %a = moe.linear %x, %w : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
  %b = moe.linear %a, %f : tensor<?x32xf32>, tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x128xf32>
  %c = moe.linear %x, %i : tensor<?x64xf32>, tensor<32x64xi8, #moe.block_int8<128, 128>> -> tensor<?x32xf32>
  %r = moe.rms_norm %x, %n {epsilon = 1.0e-06 : f32} : tensor<?x64xf32>, tensor<64xbf16>
  %idx, %wts = moe.router %r, %gate {group_score = #moe.group_score<max>, n_group = 1 : i64, norm_topk_prob = false, routed_scaling_factor = 1.000000e+00 : f32, score_func = #moe.score_func<softmax>, top_k = 2 : i64, topk_group = 1 : i64} : (tensor<?x64xf32>, tensor<4x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  %m = moe.swiglu %r gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<64x16xbf16>) -> tensor<?x64xf32>
  %l = moe.logits %m, %lm : tensor<?x64xf32>, tensor<128x64xbf16> -> tensor<?x128xf32>
  return %l : tensor<?x128xf32>
}
