// RUN: moec-opt %s -split-input-file -moe-fuse-mla-input-proj | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-fuse-mla-input-proj -mlir-print-debuginfo | FileCheck %s --check-prefix=NAMES
// RUN: moec-opt %s -split-input-file -moe-fuse-mla-input-proj='report=true' -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT

// q_a_proj and kv_a_proj_with_mqa read the same normalised input: one linear
// over their stacked weights, and a column slice of its result for each. The
// users of the two projections (q_a_layernorm, the latent split) read the slices.
// CHECK-LABEL: func @q_lora
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x64xf32>
// CHECK: %[[WQ:.*]] = moe.weight "model.layers.0.self_attn.q_a_proj.weight" : tensor<96x64xbf16>
// CHECK: %[[WKV:.*]] = moe.weight "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" : tensor<40x64xbf16>
// CHECK: %[[W:.*]] = moe.concat_weights %[[WQ]], %[[WKV]] : tensor<96x64xbf16>, tensor<40x64xbf16> -> tensor<136x64xbf16>
// CHECK-NEXT: %[[Y:.*]] = moe.linear %[[X]], %[[W]] : tensor<?x64xf32>, tensor<136x64xbf16> -> tensor<?x136xf32>
// CHECK-NEXT: %[[Q:.*]] = moe.slice_columns %[[Y]] {begin = 0 : i64, width = 96 : i64} : tensor<?x136xf32> -> tensor<?x96xf32>
// CHECK-NEXT: %[[KV:.*]] = moe.slice_columns %[[Y]] {begin = 96 : i64, width = 40 : i64} : tensor<?x136xf32> -> tensor<?x40xf32>
// CHECK-NOT: moe.linear
// CHECK: moe.rms_norm %[[Q]]
// The latent's own slice of the slice folds into one slice of the fused result.
// CHECK: %[[C:.*]] = moe.slice_columns %[[Y]] {begin = 96 : i64, width = 32 : i64} : tensor<?x136xf32> -> tensor<?x32xf32>
// CHECK: return {{.*}}, %[[C]], %[[KV]]

// The fused linear takes a step name beside the two it replaced; the slices
// keep theirs (the plan's step names).
// NAMES-LABEL: func @q_lora
// NAMES: moe.linear {{.*}} loc(#[[FUSED:loc[0-9]*]])
// NAMES-NEXT: moe.slice_columns {{.*}} loc(#[[QA:loc[0-9]*]])
// NAMES-DAG: #[[FUSED]] = loc("model.layers.0.self_attn.q_kv_a_proj"(#{{loc[0-9]*}}))
// NAMES-DAG: #[[QA]] = loc("model.layers.0.self_attn.q_a_proj")

// REPORT: remark: moe-fuse-mla-input-proj: 1 pair(s) of MLA input projections fused into one linear
func.func @q_lora(%x: tensor<?x64xf32>) -> (tensor<?x96xf32>, tensor<?x32xf32>, tensor<?x40xf32>) {
  %wq = moe.weight "model.layers.0.self_attn.q_a_proj.weight" : tensor<96x64xbf16>
  %q = moe.linear %x, %wq : tensor<?x64xf32>, tensor<96x64xbf16> -> tensor<?x96xf32>
      loc("model.layers.0.self_attn.q_a_proj")
  %g = moe.weight "model.layers.0.self_attn.q_a_layernorm.weight" : tensor<96xbf16>
  %qn = moe.rms_norm %q, %g {epsilon = 1.0e-6 : f32} : tensor<?x96xf32>, tensor<96xbf16>
      loc("model.layers.0.self_attn.q_a_layernorm")
  %wkv = moe.weight "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" : tensor<40x64xbf16>
  %kv = moe.linear %x, %wkv : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
      loc("model.layers.0.self_attn.kv_a_proj_with_mqa")
  %c = moe.slice_columns %kv {begin = 0 : i64, width = 32 : i64} : tensor<?x40xf32> -> tensor<?x32xf32>
      loc("model.layers.0.self_attn.kv_latent")
  return %qn, %c, %kv : tensor<?x96xf32>, tensor<?x32xf32>, tensor<?x40xf32>
}

// -----

// Without q_lora the query projection is q_proj. The latent projection's
// weight, defined after the query's linear, moves up to the fused linear.
// CHECK-LABEL: func @q_proj
// CHECK: moe.weight "model.layers.1.self_attn.q_proj.weight"
// CHECK-NEXT: moe.weight "model.layers.1.self_attn.kv_a_proj_with_mqa.weight"
// CHECK-NEXT: moe.concat_weights {{.*}} -> tensor<168x64xf32>
// CHECK-NEXT: moe.linear {{.*}} -> tensor<?x168xf32>
// REPORT: remark: moe-fuse-mla-input-proj: 1 pair(s)
func.func @q_proj(%x: tensor<?x64xf32>) -> (tensor<?x128xf32>, tensor<?x40xf32>) {
  %wq = moe.weight "model.layers.1.self_attn.q_proj.weight" : tensor<128x64xf32>
  %q = moe.linear %x, %wq : tensor<?x64xf32>, tensor<128x64xf32> -> tensor<?x128xf32>
      loc("model.layers.1.self_attn.q_proj")
  %wkv = moe.weight "model.layers.1.self_attn.kv_a_proj_with_mqa.weight" : tensor<40x64xf32>
  %kv = moe.linear %x, %wkv : tensor<?x64xf32>, tensor<40x64xf32> -> tensor<?x40xf32>
      loc("model.layers.1.self_attn.kv_a_proj_with_mqa")
  return %q, %kv : tensor<?x128xf32>, tensor<?x40xf32>
}

// -----

// FP8 weights whose query rows are whole 128-row scale blocks stack, scales
// and all; the quantize_weight ops move up with their weights.
// CHECK-LABEL: func @fp8_aligned
// CHECK: moe.quantize_weight
// CHECK: moe.quantize_weight
// CHECK-NEXT: moe.concat_weights {{.*}} -> tensor<168x64xf8E4M3FN, #moe.block_fp8<128, 128>>
// CHECK-NEXT: moe.linear {{.*}} : tensor<?x64xf32>, tensor<168x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x168xf32>
// REPORT: remark: moe-fuse-mla-input-proj: 1 pair(s)
func.func @fp8_aligned(%x: tensor<?x64xf32>) -> (tensor<?x128xf32>, tensor<?x40xf32>) {
  %wq = moe.weight "q_a.weight" : tensor<128x64xbf16>
  %wq8 = moe.quantize_weight %wq : tensor<128x64xbf16> -> tensor<128x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %q = moe.linear %x, %wq8 : tensor<?x64xf32>, tensor<128x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x128xf32>
      loc("model.layers.2.self_attn.q_a_proj")
  %wkv = moe.weight "kv_a.weight" : tensor<40x64xbf16>
  %wkv8 = moe.quantize_weight %wkv : tensor<40x64xbf16> -> tensor<40x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %kv = moe.linear %x, %wkv8 : tensor<?x64xf32>, tensor<40x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x40xf32>
      loc("model.layers.2.self_attn.kv_a_proj_with_mqa")
  return %q, %kv : tensor<?x128xf32>, tensor<?x40xf32>
}

// -----

// FP8 query rows that are not whole scale blocks (96 of 128) cannot share one
// scale grid with the latent projection: both linears stay, and the report says why.
// CHECK-LABEL: func @fp8_partial_block
// CHECK-NOT: moe.concat_weights
// CHECK-COUNT-2: moe.linear
// REPORT: remark: {{.*}}moe-fuse-mla-input-proj: not fused: the query projection's 96 rows are not whole 128-row scale blocks
// REPORT: remark: moe-fuse-mla-input-proj: 0 pair(s)
func.func @fp8_partial_block(%x: tensor<?x64xf32>) -> (tensor<?x96xf32>, tensor<?x40xf32>) {
  %wq = moe.weight "q_a.weight" scale "q_a.weight_scale_inv" : tensor<96x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %q = moe.linear %x, %wq : tensor<?x64xf32>, tensor<96x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x96xf32>
      loc("model.layers.3.self_attn.q_a_proj")
  %wkv = moe.weight "kv_a.weight" scale "kv_a.weight_scale_inv" : tensor<40x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %kv = moe.linear %x, %wkv : tensor<?x64xf32>, tensor<40x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x40xf32>
      loc("model.layers.3.self_attn.kv_a_proj_with_mqa")
  return %q, %kv : tensor<?x96xf32>, tensor<?x40xf32>
}

// -----

// Weights of different types (one quantized, one not) stay apart; so does a
// latent projection of another input.
// CHECK-LABEL: func @not_fused
// CHECK-NOT: moe.concat_weights
// REPORT: remark: {{.*}}moe-fuse-mla-input-proj: not fused: the weights' types tensor<128x64xf8E4M3FN, #moe.block_fp8<128, 128>> and tensor<40x64xbf16> differ
// REPORT: remark: moe-fuse-mla-input-proj: 0 pair(s)
func.func @not_fused(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>) -> (tensor<?x128xf32>, tensor<?x40xf32>, tensor<?x40xf32>) {
  %wq = moe.weight "q_a.weight" scale "q_a.weight_scale_inv" : tensor<128x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %q = moe.linear %x, %wq : tensor<?x64xf32>, tensor<128x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x128xf32>
      loc("model.layers.4.self_attn.q_a_proj")
  %wkv = moe.weight "kv_a.weight" : tensor<40x64xbf16>
  %kv = moe.linear %x, %wkv : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
      loc("model.layers.4.self_attn.kv_a_proj_with_mqa")
  %other = moe.linear %y, %wkv : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
      loc("model.layers.5.self_attn.kv_a_proj_with_mqa")
  return %q, %kv, %other : tensor<?x128xf32>, tensor<?x40xf32>, tensor<?x40xf32>
}
