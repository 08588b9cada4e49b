// RUN: moec-opt %s -split-input-file -moe-quantize-fp8 | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-quantize-fp8='quantize-lm-head=true scale=ue8m0' | FileCheck %s --check-prefix=LMHEAD
// RUN: moec-opt %s -split-input-file -moe-quantize-fp8='report=true' -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// RUN: moec-opt %s -split-input-file -moe-quantize-fp8 -moe-quantize-fp8 | FileCheck %s --check-prefix=TWICE
// RUN: moec-opt %s -split-input-file -moe-quantize-fp8 | moec-opt -split-input-file -moe-quantize-fp8 | FileCheck %s --check-prefix=TWICE
// RUN: moec-opt %s -split-input-file -moe-quantize-fp8 | grep -c "moe.linear\|moe.logits\|moe.embedding\|moe.rms_norm\|moe.router\|moe.routed_experts\|moe.swiglu\|moe.head_linear" | FileCheck %s --check-prefix=COUNT
// RUN: moec-opt %s -split-input-file | grep -c "moe.linear\|moe.logits\|moe.embedding\|moe.rms_norm\|moe.router\|moe.routed_experts\|moe.swiglu\|moe.head_linear" | FileCheck %s --check-prefix=COUNT

// Step level: the linear weights get a moe.quantize_weight whose type carries the
// blocks (the default float scale is not printed); the embedding table, norm, router gate, correction bias and lm_head stay.
// The compute ops stay as they are (9 in this file, before and after: COUNT); only
// the types of their weight operands change.
// CHECK-LABEL: func @steps
// CHECK: %[[EMB:.*]] = moe.weight "model.embed_tokens.weight" : tensor<64x160xbf16>
// CHECK-NEXT: %[[NORM:.*]] = moe.weight "model.layers.0.input_layernorm.weight" : tensor<160xbf16>
// CHECK-NEXT: %[[W:.*]] = moe.weight "model.layers.0.mlp.down_proj.weight" : tensor<300x160xbf16>
// CHECK-NEXT: %[[Q:.*]] = moe.quantize_weight %[[W]] : tensor<300x160xbf16> -> tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
// CHECK: %[[GATE:.*]] = moe.weight "model.layers.1.mlp.gate.weight" : tensor<2x160xbf16>
// CHECK-NOT: moe.quantize_weight %[[GATE]]
// CHECK: %[[G:.*]] = moe.weight "model.layers.1.mlp.experts.0.gate_proj.weight" : tensor<300x160xf32>
// CHECK-NEXT: %[[GQ:.*]] = moe.quantize_weight %[[G]]{{.*}} : tensor<300x160xf32> -> tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
// CHECK: %[[LM:.*]] = moe.weight "lm_head.weight" : tensor<64x160xbf16>
// CHECK-NOT: moe.quantize_weight %[[LM]]
// CHECK: moe.embedding %[[EMB]]
// CHECK: moe.rms_norm %{{.*}}, %[[NORM]]
// CHECK: moe.linear %{{.*}}, %[[Q]] : tensor<?x160xf32>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x300xf32>
// CHECK: moe.router %{{.*}}, %[[GATE]] bias
// CHECK: moe.routed_experts {{.*}} gate[%[[GQ]]] up[%{{.*}}] down[%{{.*}}] : ({{.*}}tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x160xf32>
// CHECK: moe.logits %{{.*}}, %[[LM]] : tensor<?x160xf32>, tensor<64x160xbf16>

// LMHEAD-LABEL: func @steps
// LMHEAD: moe.quantize_weight %{{.*}} {scale = #moe.fp8_scale<ue8m0>} : tensor<300x160xbf16>
// LMHEAD: %[[LM:.*]] = moe.weight "lm_head.weight" : tensor<64x160xbf16>
// LMHEAD-NEXT: %[[LMQ:.*]] = moe.quantize_weight %[[LM]] {scale = #moe.fp8_scale<ue8m0>} : tensor<64x160xbf16> -> tensor<64x160xf8E4M3FN, #moe.block_fp8<128, 128>>
// LMHEAD: moe.logits %{{.*}}, %[[LMQ]]

// REPORT: remark: moe-quantize-fp8: 4 weights to FP8 e4m3 with 128x128 float scales: 480000 -> 192096 bytes
// REPORT: remark: moe-quantize-fp8: 1 weights to FP8 e4m3 with 128x128 float scales: 8192 -> 4100 bytes
// REPORT: remark: moe-quantize-fp8: 0 weights

// Quantizing again changes nothing: one moe.quantize_weight per weight.
// TWICE-LABEL: func @steps
// TWICE-COUNT-4: moe.quantize_weight
// TWICE-NOT: moe.quantize_weight
// TWICE-LABEL: func @head_views

// COUNT: 9
func.func @steps(%tokens: tensor<?xi32>) -> tensor<?x64xf32> {
  %emb = moe.weight "model.embed_tokens.weight" : tensor<64x160xbf16>
  %norm = moe.weight "model.layers.0.input_layernorm.weight" : tensor<160xbf16>
  %down = moe.weight "model.layers.0.mlp.down_proj.weight" : tensor<300x160xbf16>
  %gate = moe.weight "model.layers.1.mlp.gate.weight" : tensor<2x160xbf16>
  %bias = moe.weight "model.layers.1.mlp.gate.e_score_correction_bias" : tensor<2xf32>
  %g = moe.weight "model.layers.1.mlp.experts.0.gate_proj.weight" : tensor<300x160xf32>
  %u = moe.weight "model.layers.1.mlp.experts.0.up_proj.weight" : tensor<300x160xbf16>
  %d = moe.weight "model.layers.1.mlp.experts.0.down_proj.weight" : tensor<160x300xbf16>
  %lm = moe.weight "lm_head.weight" : tensor<64x160xbf16>
  %h = moe.embedding %emb[%tokens] : tensor<64x160xbf16>, tensor<?xi32> -> tensor<?x160xf32>
  %n = moe.rms_norm %h, %norm {epsilon = 1.0e-6 : f32} : tensor<?x160xf32>, tensor<160xbf16>
  %wide = moe.swiglu %n gate(%g) up(%u) down(%d) : (tensor<?x160xf32>, tensor<300x160xf32>, tensor<300x160xbf16>, tensor<160x300xbf16>) -> tensor<?x160xf32>
  %x = moe.slice_columns %wide {begin = 0 : i64, width = 160 : i64} : tensor<?x160xf32> -> tensor<?x160xf32>
  %y300 = moe.linear %x, %down : tensor<?x160xf32>, tensor<300x160xbf16> -> tensor<?x300xf32>
  %idx, %w = moe.router %n, %gate bias %bias {group_score = #moe.group_score<max>, n_group = 1 : i64, norm_topk_prob = true, routed_scaling_factor = 1.0 : f32, score_func = #moe.score_func<sigmoid>, top_k = 1 : i64, topk_group = 1 : i64} : (tensor<?x160xf32>, tensor<2x160xbf16>, tensor<2xf32>) -> (tensor<?x1xi32>, tensor<?x1xf32>)
  %r = moe.routed_experts %n, %idx, %w gate[%g] up[%u] down[%d] : (tensor<?x160xf32>, tensor<?x1xi32>, tensor<?x1xf32>, tensor<300x160xf32>, tensor<300x160xbf16>, tensor<160x300xbf16>) -> tensor<?x160xf32>
  %logits = moe.logits %r, %lm : tensor<?x160xf32>, tensor<64x160xbf16> -> tensor<?x64xf32>
  return %logits : tensor<?x64xf32>
}

// -----

// A per-head view of a quantized weight (absorbed MLA's W_UK) takes the quantized
// type: its rows keep the parent's scale grid.
// CHECK-LABEL: func @head_views
// CHECK: %[[KVB:.*]] = moe.weight "kv_b" : tensor<128x32xbf16>
// CHECK-NEXT: %[[Q:.*]] = moe.quantize_weight %[[KVB]]
// CHECK-NEXT: %[[UK:.*]] = moe.slice_heads %[[Q]] {heads = 4 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>>
// CHECK-NEXT: moe.head_linear %{{.*}}, %[[UK]]
func.func @head_views(%q: tensor<?x96xf32>) -> tensor<?x128xf32> {
  %kv_b = moe.weight "kv_b" : tensor<128x32xbf16>
  %w_uk = moe.slice_heads %kv_b {heads = 4 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<4x16x32xbf16>
  %q_lat = moe.head_linear %q, %w_uk {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 16 : i64, transpose = true} : tensor<?x96xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return %q_lat : tensor<?x128xf32>
}

// -----

// An FP8 checkpoint's weight is never quantized twice.
// TWICE-LABEL: func @already_fp8
// CHECK-LABEL: func @already_fp8
// CHECK-NOT: moe.quantize_weight
func.func @already_fp8(%x: tensor<?x160xf32>) -> tensor<?x300xf32> {
  %w = moe.weight "w" scale "w_scale_inv" : tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %y = moe.linear %x, %w : tensor<?x160xf32>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x300xf32>
  return %y : tensor<?x300xf32>
}
