// RUN: moec-opt %s -moe-decompose-moe | FileCheck %s
// RUN: moec-opt %s -moe-decompose-moe -mlir-print-debuginfo | FileCheck %s --check-prefix=NAMES

// With shared experts and a bf16 correction bias converted to f32 (as the
// importer writes it): router -> routed_experts -> swiglu on the same input
// -> add of the routed and shared outputs, which replaces the layer.
// Shapes: hidden 64, 4 experts of width 32, top_k 2, shared width 64.
// CHECK-LABEL: func @shared_and_bias
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x64xf32>)
// CHECK: %[[GATE:.*]] = moe.weight "model.layers.3.mlp.gate.weight"
// CHECK: %[[BIAS:.*]] = moe.convert_weight
// CHECK: %[[G0:.*]] = moe.weight "model.layers.3.mlp.experts.0.gate_proj.weight"
// CHECK: %[[U0:.*]] = moe.weight "model.layers.3.mlp.experts.0.up_proj.weight"
// CHECK: %[[D0:.*]] = moe.weight "model.layers.3.mlp.experts.0.down_proj.weight"
// CHECK: %[[G1:.*]] = moe.weight "model.layers.3.mlp.experts.1.gate_proj.weight"
// CHECK: %[[U1:.*]] = moe.weight "model.layers.3.mlp.experts.1.up_proj.weight"
// CHECK: %[[D1:.*]] = moe.weight "model.layers.3.mlp.experts.1.down_proj.weight"
// CHECK: %[[SG:.*]] = moe.weight "model.layers.3.mlp.shared_experts.gate_proj.weight"
// CHECK: %[[SU:.*]] = moe.weight "model.layers.3.mlp.shared_experts.up_proj.weight"
// CHECK: %[[SD:.*]] = moe.weight "model.layers.3.mlp.shared_experts.down_proj.weight"
// CHECK-NEXT: %[[IDX:.*]], %[[W:.*]] = moe.router %[[X]], %[[GATE]] bias %[[BIAS]] {group_score = #moe.group_score<top2_sum>, n_group = 2 : i64, norm_topk_prob = true, routed_scaling_factor = 2.500000e+00 : f32, score_func = #moe.score_func<sigmoid>, top_k = 2 : i64, topk_group = 1 : i64} : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
// CHECK-NEXT: %[[R:.*]] = moe.routed_experts %[[X]], %[[IDX]], %[[W]] gate[%[[G0]], %[[G1]], %[[G0]], %[[G1]]] up[%[[U0]], %[[U1]], %[[U0]], %[[U1]]] down[%[[D0]], %[[D1]], %[[D0]], %[[D1]]] : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, {{.*}}) -> tensor<?x64xf32>
// CHECK-NEXT: %[[S:.*]] = moe.swiglu %[[X]] gate(%[[SG]]) up(%[[SU]]) down(%[[SD]]) : (tensor<?x64xf32>, tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64x64xbf16>) -> tensor<?x64xf32>
// CHECK-NEXT: %[[SUM:.*]] = moe.add %[[R]], %[[S]] : tensor<?x64xf32>
// CHECK-NEXT: return %[[SUM]]
// CHECK-NOT: moe.moe_layer
func.func @shared_and_bias(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %gate = moe.weight "model.layers.3.mlp.gate.weight" : tensor<4x64xbf16>
  %bias = moe.weight "model.layers.3.mlp.gate.e_score_correction_bias" : tensor<4xbf16>
  %bias32 = moe.convert_weight %bias : tensor<4xbf16> -> tensor<4xf32>
  %g0 = moe.weight "model.layers.3.mlp.experts.0.gate_proj.weight" : tensor<32x64xbf16>
  %u0 = moe.weight "model.layers.3.mlp.experts.0.up_proj.weight" : tensor<32x64xbf16>
  %d0 = moe.weight "model.layers.3.mlp.experts.0.down_proj.weight" : tensor<64x32xbf16>
  %g1 = moe.weight "model.layers.3.mlp.experts.1.gate_proj.weight" : tensor<32x64xbf16>
  %u1 = moe.weight "model.layers.3.mlp.experts.1.up_proj.weight" : tensor<32x64xbf16>
  %d1 = moe.weight "model.layers.3.mlp.experts.1.down_proj.weight" : tensor<64x32xbf16>
  %sg = moe.weight "model.layers.3.mlp.shared_experts.gate_proj.weight" : tensor<64x64xbf16>
  %su = moe.weight "model.layers.3.mlp.shared_experts.up_proj.weight" : tensor<64x64xbf16>
  %sd = moe.weight "model.layers.3.mlp.shared_experts.down_proj.weight" : tensor<64x64xbf16>
  %m = moe.moe_layer %x, %gate bias %bias32 experts gate [%g0, %g1, %g0, %g1] up [%u0, %u1, %u0, %u1]
      down [%d0, %d1, %d0, %d1] shared gate(%sg) up(%su) down(%sd)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64x64xbf16>) -> tensor<?x64xf32>
      loc("model.layers.3.mlp")
  return %m : tensor<?x64xf32>
}

// Without shared experts or a bias (V2-style softmax routing), FP8 experts
// whose types carry their blocks, and a static token count: the routed
// output replaces the layer and no swiglu or add is created.
// Shapes: 3 tokens, hidden 160, 2 experts of width 300, top_k 1.
// CHECK-LABEL: func @routed_only_fp8
// CHECK-SAME: (%[[X:[^:]*]]: tensor<3x160xf32>)
// CHECK: %[[GATE:.*]] = moe.weight "gate"
// CHECK: %[[IDX:.*]], %[[W:.*]] = moe.router %[[X]], %[[GATE]] {group_score = #moe.group_score<max>, n_group = 1 : i64, norm_topk_prob = false, routed_scaling_factor = 1.000000e+00 : f32, score_func = #moe.score_func<softmax>, top_k = 1 : i64, topk_group = 1 : i64} : (tensor<3x160xf32>, tensor<2x160xbf16>) -> (tensor<3x1xi32>, tensor<3x1xf32>)
// CHECK-NEXT: %[[R:.*]] = moe.routed_experts %[[X]], %[[IDX]], %[[W]] gate[{{.*}}] up[{{.*}}] down[{{.*}}] : (tensor<3x160xf32>, tensor<3x1xi32>, tensor<3x1xf32>, {{.*}}tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<3x160xf32>
// CHECK-NEXT: return %[[R]]
func.func @routed_only_fp8(%x: tensor<3x160xf32>) -> tensor<3x160xf32> {
  %gate = moe.weight "gate" : tensor<2x160xbf16>
  %g = moe.weight "g" scale "gs" : tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %u = moe.weight "u" scale "us" : tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %d = moe.weight "d" scale "ds" : tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>
  %m = moe.moe_layer %x, %gate experts gate [%g, %g] up [%u, %u] down [%d, %d]
      {top_k = 1 : i64, n_group = 1 : i64, topk_group = 1 : i64, score_func = #moe.score_func<softmax>,
       group_score = #moe.group_score<max>, norm_topk_prob = false, routed_scaling_factor = 1.0 : f32}
      : (tensor<3x160xf32>, tensor<2x160xbf16>,
         tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>,
         tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>,
         tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>)
      -> tensor<3x160xf32> loc("model.layers.1.mlp")
  return %m : tensor<3x160xf32>
}

// Each step is named as the importer named it before this pass existed (the
// plan's step names; the locations are printed at the end of the module).
// NAMES: func @shared_and_bias
// NAMES: moe.router {{.*}} loc(#[[GATE:loc[0-9]+]])
// NAMES: moe.routed_experts {{.*}} loc(#[[EXPERTS:loc[0-9]+]])
// NAMES: moe.swiglu {{.*}} loc(#[[SHARED:loc[0-9]+]])
// NAMES: moe.add {{.*}} loc(#[[SUM:loc[0-9]+]])
// NAMES: func @routed_only_fp8
// NAMES: moe.router {{.*}} loc(#[[GATE1:loc[0-9]+]])
// NAMES: moe.routed_experts {{.*}} loc(#[[EXPERTS1:loc[0-9]+]])
// NAMES-DAG: #[[GATE]] = loc("model.layers.3.mlp.gate"
// NAMES-DAG: #[[EXPERTS]] = loc("model.layers.3.mlp.experts"
// NAMES-DAG: #[[SHARED]] = loc("model.layers.3.mlp.shared_experts"
// NAMES-DAG: #[[SUM]] = loc("model.layers.3.mlp.routed_plus_shared"
// NAMES-DAG: #[[GATE1]] = loc("model.layers.1.mlp.gate"
// NAMES-DAG: #[[EXPERTS1]] = loc("model.layers.1.mlp.experts"
