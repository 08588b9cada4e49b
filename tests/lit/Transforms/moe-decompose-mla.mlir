// RUN: moec-opt %s -moe-decompose-mla | FileCheck %s
// RUN: moec-opt %s -moe-decompose-mla -mlir-print-debuginfo | FileCheck %s --check-prefix=NAMES

// With q_lora_rank > 0: q_a_proj -> q_a_layernorm -> q_b_proj; YaRN and the
// rope layout reach both ropes; the new cache is cache_store's result.
// Shapes: hidden 256, heads 4, q_lora 96, C 64, nope 32, rope 16, v 32.
// CHECK-LABEL: func @q_lora
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x256xf32>, %[[POS:[^:]*]]: tensor<?xi32>, %[[SEQ:[^:]*]]: tensor<?xi32>, %[[CACHE:[^:]*]]: !moe.latent_cache<64, 16>)
// CHECK: %[[QA:.*]] = moe.weight "q_a_proj"
// CHECK: %[[QAN:.*]] = moe.weight "q_a_layernorm"
// CHECK: %[[QB:.*]] = moe.weight "q_b_proj"
// CHECK: %[[KVA:.*]] = moe.weight "kv_a_proj_with_mqa"
// CHECK: %[[KVAN:.*]] = moe.weight "kv_a_layernorm"
// CHECK: %[[KVB:.*]] = moe.weight "kv_b_proj"
// CHECK: %[[O:.*]] = moe.weight "o_proj"
// CHECK-NEXT: %[[Q1:.*]] = moe.linear %[[X]], %[[QA]] : tensor<?x256xf32>, tensor<96x256xbf16> -> tensor<?x96xf32>
// CHECK-NEXT: %[[Q2:.*]] = moe.rms_norm %[[Q1]], %[[QAN]] {epsilon = 9.99999997E-7 : f32} : tensor<?x96xf32>, tensor<96xbf16>
// CHECK-NEXT: %[[Q:.*]] = moe.linear %[[Q2]], %[[QB]] : tensor<?x96xf32>, tensor<192x96xbf16> -> tensor<?x192xf32>
// CHECK-NEXT: %[[KV:.*]] = moe.linear %[[X]], %[[KVA]] : tensor<?x256xf32>, tensor<80x256xbf16> -> tensor<?x80xf32>
// CHECK-NEXT: %[[C:.*]] = moe.slice_columns %[[KV]] {begin = 0 : i64, width = 64 : i64} : tensor<?x80xf32> -> tensor<?x64xf32>
// CHECK-NEXT: %[[CN:.*]] = moe.rms_norm %[[C]], %[[KVAN]] {epsilon = 9.99999997E-7 : f32} : tensor<?x64xf32>, tensor<64xbf16>
// CHECK-NEXT: %[[PE:.*]] = moe.slice_columns %[[KV]] {begin = 64 : i64, width = 16 : i64} : tensor<?x80xf32> -> tensor<?x16xf32>
// CHECK-NEXT: %[[QR:.*]] = moe.rope %[[Q]], %[[POS]] {head_dim = 48 : i64, heads = 4 : i64, layout = #moe.rope_layout<interleaved>, offset = 32 : i64, rope_dim = 16 : i64, theta = 1.000000e+04 : f32, yarn = #moe.yarn<factor = 4.000000e+01, originalMaxPositions = 4096, betaFast = 3.200000e+01, betaSlow = 1.000000e+00, mscale = 1.000000e+00, mscaleAllDim = 1.000000e+00>} : tensor<?x192xf32>, tensor<?xi32>
// CHECK-NEXT: %[[PER:.*]] = moe.rope %[[PE]], %[[POS]] {head_dim = 16 : i64, heads = 1 : i64, layout = #moe.rope_layout<interleaved>, offset = 0 : i64, rope_dim = 16 : i64, theta = 1.000000e+04 : f32, yarn = #moe.yarn<{{.*}}>} : tensor<?x16xf32>, tensor<?xi32>
// CHECK-NEXT: %[[C1:.*]] = moe.cache_store %[[CACHE]], %[[CN]], %[[PER]], %[[POS]], %[[SEQ]] : !moe.latent_cache<64, 16>, tensor<?x64xf32>, tensor<?x16xf32>, tensor<?xi32>, tensor<?xi32>
// CHECK-NEXT: %[[A:.*]] = moe.expanded_attention %[[QR]], %[[POS]], %[[SEQ]], %[[C1]], %[[KVB]] {heads = 4 : i64, latent_dim = 64 : i64, nope_dim = 32 : i64, rope_dim = 16 : i64, softmax_scale = 1.440000e-01 : f32, v_dim = 32 : i64} : (tensor<?x192xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<256x64xbf16>) -> tensor<?x128xf32>
// CHECK-NEXT: %[[R:.*]] = moe.linear %[[A]], %[[O]] : tensor<?x128xf32>, tensor<256x128xbf16> -> tensor<?x256xf32>
// CHECK-NEXT: return %[[R]], %[[C1]]
// CHECK-NOT: moe.mla_attention

func.func @q_lora(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                  %cache: !moe.latent_cache<64, 16>) -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>) {
  %qa = moe.weight "q_a_proj" : tensor<96x256xbf16>
  %qan = moe.weight "q_a_layernorm" : tensor<96xbf16>
  %qb = moe.weight "q_b_proj" : tensor<192x96xbf16>
  %kva = moe.weight "kv_a_proj_with_mqa" : tensor<80x256xbf16>
  %kvan = moe.weight "kv_a_layernorm" : tensor<64xbf16>
  %kvb = moe.weight "kv_b_proj" : tensor<256x64xbf16>
  %o = moe.weight "o_proj" : tensor<256x128xbf16>
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>,
       yarn = #moe.yarn<factor = 40.0, originalMaxPositions = 4096, betaFast = 32.0, betaSlow = 1.0, mscale = 1.0, mscaleAllDim = 1.0>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>) loc("model.layers.3.self_attn")
  return %r, %c : tensor<?x256xf32>, !moe.latent_cache<64, 16>
}

// Without q_lora (q_proj), with FP8 weights whose types carry their blocks,
// the half rope layout and a static token count.
// Shapes: hidden 160, heads 4, C 32, nope 16, rope 8, v 16.
// CHECK-LABEL: func @q_proj_fp8
// CHECK-SAME: (%[[X:[^:]*]]: tensor<3x160xf32>
// CHECK: %[[QB:.*]] = moe.weight "q_proj" scale "q_proj_s"
// CHECK: %[[Q:.*]] = moe.linear %[[X]], %[[QB]] : tensor<3x160xf32>, tensor<96x160xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<3x96xf32>
// CHECK-NEXT: %[[KV:.*]] = moe.linear %[[X]], %{{.*}} : tensor<3x160xf32>, tensor<40x160xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<3x40xf32>
// CHECK-NEXT: moe.slice_columns %[[KV]] {begin = 0 : i64, width = 32 : i64} : tensor<3x40xf32> -> tensor<3x32xf32>
// CHECK-NEXT: moe.rms_norm
// CHECK-NEXT: moe.slice_columns %[[KV]] {begin = 32 : i64, width = 8 : i64} : tensor<3x40xf32> -> tensor<3x8xf32>
// CHECK-NEXT: moe.rope %[[Q]], {{.*}}head_dim = 24 : i64, heads = 4 : i64, layout = #moe.rope_layout<half>, offset = 16 : i64, rope_dim = 8 : i64, theta = 5.000000e+04 : f32}
// CHECK-NEXT: moe.rope {{.*}}head_dim = 8 : i64, heads = 1 : i64, layout = #moe.rope_layout<half>, offset = 0 : i64, rope_dim = 8 : i64, theta = 5.000000e+04 : f32}
// CHECK-NEXT: moe.cache_store
// CHECK-NEXT: moe.expanded_attention {{.*}} : (tensor<3x96xf32>, tensor<3xi32>, tensor<3xi32>, !moe.latent_cache<32, 8>, tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<3x64xf32>
// CHECK-NEXT: moe.linear {{.*}} : tensor<3x64xf32>, tensor<160x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<3x160xf32>
func.func @q_proj_fp8(%x: tensor<3x160xf32>, %pos: tensor<3xi32>, %seq: tensor<3xi32>,
                      %cache: !moe.latent_cache<32, 8>) -> (tensor<3x160xf32>, !moe.latent_cache<32, 8>) {
  %qb = moe.weight "q_proj" scale "q_proj_s" : tensor<96x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %kva = moe.weight "kv_a" scale "kv_a_s" : tensor<40x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %kvan = moe.weight "kv_a_layernorm" : tensor<32xbf16>
  %kvb = moe.weight "kv_b" scale "kv_b_s" : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  %o = moe.weight "o" scale "o_s" : tensor<160x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 32 : i64, qk_nope_head_dim = 16 : i64,
       qk_rope_head_dim = 8 : i64, v_head_dim = 16 : i64, softmax_scale = 0.2 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 5.0e+04 : f32, rope_layout = #moe.rope_layout<half>}
      : (tensor<3x160xf32>, tensor<3xi32>, tensor<3xi32>, !moe.latent_cache<32, 8>,
         tensor<96x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<40x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<32xbf16>,
         tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<160x64xf8E4M3FN, #moe.block_fp8<128, 128>>)
      -> (tensor<3x160xf32>, !moe.latent_cache<32, 8>) loc("model.layers.0.self_attn")
  return %r, %c : tensor<3x160xf32>, !moe.latent_cache<32, 8>
}

// Each step is named after the checkpoint module it computes (the locations
// are printed at the end of the module).
// NAMES: func @q_lora
// NAMES: moe.linear {{.*}} loc(#[[QA:loc[0-9]+]])
// NAMES: moe.rms_norm {{.*}} loc(#[[QAN:loc[0-9]+]])
// NAMES: moe.linear {{.*}} loc(#[[QB:loc[0-9]+]])
// NAMES: moe.linear {{.*}} loc(#[[KVA:loc[0-9]+]])
// NAMES: moe.slice_columns {{.*}} loc(#[[C:loc[0-9]+]])
// NAMES: moe.rms_norm {{.*}} loc(#[[KVAN:loc[0-9]+]])
// NAMES: moe.slice_columns {{.*}} loc(#[[PE:loc[0-9]+]])
// NAMES: moe.rope {{.*}} loc(#[[RQ:loc[0-9]+]])
// NAMES: moe.rope {{.*}} loc(#[[RK:loc[0-9]+]])
// NAMES: moe.cache_store {{.*}} loc(#[[CS:loc[0-9]+]])
// NAMES: moe.expanded_attention {{.*}} loc(#[[AT:loc[0-9]+]])
// NAMES: moe.linear {{.*}} loc(#[[OP:loc[0-9]+]])
// NAMES: func @q_proj_fp8
// NAMES: moe.linear {{.*}} loc(#[[QP:loc[0-9]+]])
// NAMES-DAG: #[[QA]] = loc("model.layers.3.self_attn.q_a_proj"
// NAMES-DAG: #[[QAN]] = loc("model.layers.3.self_attn.q_a_layernorm"
// NAMES-DAG: #[[QB]] = loc("model.layers.3.self_attn.q_b_proj"
// NAMES-DAG: #[[KVA]] = loc("model.layers.3.self_attn.kv_a_proj_with_mqa"
// NAMES-DAG: #[[C]] = loc("model.layers.3.self_attn.c"
// NAMES-DAG: #[[KVAN]] = loc("model.layers.3.self_attn.kv_a_layernorm"
// NAMES-DAG: #[[PE]] = loc("model.layers.3.self_attn.k_pe"
// NAMES-DAG: #[[RQ]] = loc("model.layers.3.self_attn.rope_q"
// NAMES-DAG: #[[RK]] = loc("model.layers.3.self_attn.rope_k"
// NAMES-DAG: #[[CS]] = loc("model.layers.3.self_attn.cache_store"
// NAMES-DAG: #[[AT]] = loc("model.layers.3.self_attn.attention"
// NAMES-DAG: #[[OP]] = loc("model.layers.3.self_attn.o_proj"
// NAMES-DAG: #[[QP]] = loc("model.layers.0.self_attn.q_proj"
