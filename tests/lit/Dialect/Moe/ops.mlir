// RUN: moec-opt %s | moec-opt | FileCheck %s
// Round trip of every moe op, attribute and type.

// CHECK-LABEL: func @weights
func.func @weights() -> (tensor<256xbf16>, tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>>) {
  // CHECK: moe.weight "model.norm.weight" : tensor<256xbf16>
  %n = moe.weight "model.norm.weight" : tensor<256xbf16>
  // CHECK: moe.weight "w" scale "w_scale_inv" : tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>>
  %w = moe.weight "w" scale "w_scale_inv" : tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>>
  return %n, %w : tensor<256xbf16>, tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>>
}

// CHECK-LABEL: func @derived_weights
func.func @derived_weights() -> (tensor<4x16x32xbf16>, tensor<4x8x32xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<16xf32>) {
  %kvb = moe.weight "kv_b" : tensor<128x32xbf16>
  // CHECK: moe.slice_heads %{{[[:alnum:]_]+}} {heads = 4 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<4x16x32xbf16>
  %wuk = moe.slice_heads %kvb {heads = 4 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<4x16x32xbf16>
  %kvb8 = moe.weight "kv_b8" scale "kv_b8_s" : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  // CHECK: moe.slice_heads {{.*}} : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<4x8x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  %wuv = moe.slice_heads %kvb8 {heads = 4 : i64, offset = 24 : i64, size = 8 : i64}
      : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<4x8x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  %b = moe.weight "bias" : tensor<16xbf16>
  // CHECK: moe.convert_weight %{{[[:alnum:]_]+}} : tensor<16xbf16> -> tensor<16xf32>
  %b32 = moe.convert_weight %b : tensor<16xbf16> -> tensor<16xf32>
  return %wuk, %wuv, %b32 : tensor<4x16x32xbf16>, tensor<4x8x32xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<16xf32>
}

// CHECK-LABEL: func @concat_weights
func.func @concat_weights() -> tensor<208x256xf8E4M3FN, #moe.block_fp8<128, 128>> {
  %a = moe.weight "q_a" scale "q_a_s" : tensor<128x256xf8E4M3FN, #moe.block_fp8<128, 128>>
  %b = moe.weight "kv_a" scale "kv_a_s" : tensor<80x256xf8E4M3FN, #moe.block_fp8<128, 128>>
  // CHECK: moe.concat_weights %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} : tensor<128x256xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<80x256xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<208x256xf8E4M3FN, #moe.block_fp8<128, 128>>
  %w = moe.concat_weights %a, %b : tensor<128x256xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<80x256xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<208x256xf8E4M3FN, #moe.block_fp8<128, 128>>
  return %w : tensor<208x256xf8E4M3FN, #moe.block_fp8<128, 128>>
}

// Gate and up interleaved by 16 rows, and the fused SwiGLU steps that read them.
// CHECK-LABEL: func @fused_swiglu
func.func @fused_swiglu(%x: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %p: tensor<?x2xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %g = moe.weight "g" : tensor<40x64xbf16>
  %u = moe.weight "u" : tensor<40x64xbf16>
  %d = moe.weight "d" : tensor<64x40xbf16>
  // CHECK: moe.concat_weights %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} {interleave = 16 : i64} : tensor<40x64xbf16>, tensor<40x64xbf16> -> tensor<80x64xbf16>
  %gu = moe.concat_weights %g, %u {interleave = 16 : i64} : tensor<40x64xbf16>, tensor<40x64xbf16> -> tensor<80x64xbf16>
  // CHECK: moe.fused_swiglu %{{[[:alnum:]_]+}} gate_up(%{{[[:alnum:]_]+}}) down(%{{[[:alnum:]_]+}}) {gate_up_rows = 16 : i64} :
  %y = moe.fused_swiglu %x gate_up(%gu) down(%d) {gate_up_rows = 16 : i64}
      : (tensor<?x64xf32>, tensor<80x64xbf16>, tensor<64x40xbf16>) -> tensor<?x64xf32>
  // CHECK: moe.fused_routed_experts %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} gate_up[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] down[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] {gate_up_rows = 16 : i64} :
  %r = moe.fused_routed_experts %x, %idx, %p gate_up [%gu, %gu] down [%d, %d] {gate_up_rows = 16 : i64}
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<80x64xbf16>, tensor<80x64xbf16>,
         tensor<64x40xbf16>, tensor<64x40xbf16>) -> tensor<?x64xf32>
  return %y, %r : tensor<?x64xf32>, tensor<?x64xf32>
}

// CHECK-LABEL: func @embed_norm_add
func.func @embed_norm_add(%tokens: tensor<?xi32>) -> tensor<?x256xf32> {
  %table = moe.weight "model.embed_tokens.weight" : tensor<1024x256xbf16>
  %g = moe.weight "model.norm.weight" : tensor<256xf32>
  // CHECK: %[[H:.*]] = moe.embedding %{{[[:alnum:]_]+}}[%{{[[:alnum:]_]+}}] : tensor<1024x256xbf16>, tensor<?xi32> -> tensor<?x256xf32>
  %h = moe.embedding %table[%tokens] : tensor<1024x256xbf16>, tensor<?xi32> -> tensor<?x256xf32>
  // CHECK: %[[N:.*]] = moe.rms_norm %[[H]], %{{[[:alnum:]_]+}} {epsilon = 9.99999997E-7 : f32} : tensor<?x256xf32>, tensor<256xf32>
  %n = moe.rms_norm %h, %g {epsilon = 1.0e-6 : f32} : tensor<?x256xf32>, tensor<256xf32>
  // CHECK: %[[R:.*]] = moe.add %[[H]], %[[N]] : tensor<?x256xf32>
  %r = moe.add %h, %n : tensor<?x256xf32>
  // CHECK: %{{.*}}, %{{.*}} = moe.add_rms_norm %[[R]], %[[H]], %{{[[:alnum:]_]+}} {epsilon = 9.99999997E-7 : f32} : tensor<?x256xf32>, tensor<256xf32>
  %s, %m = moe.add_rms_norm %r, %h, %g {epsilon = 1.0e-6 : f32} : tensor<?x256xf32>, tensor<256xf32>
  return %m : tensor<?x256xf32>
}

// CHECK-LABEL: func @linears
func.func @linears(%x: tensor<?x300xf32>, %y: tensor<?x64xf32>) -> (tensor<?x200xf32>, tensor<?x32xf32>, tensor<?x16xf32>) {
  %w8 = moe.weight "fp8" scale "fp8_scale" : tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>>
  // CHECK: moe.linear %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} : tensor<?x300xf32>, tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x200xf32>
  %a = moe.linear %x, %w8 : tensor<?x300xf32>, tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x200xf32>
  %wh = moe.weight "f16" : tensor<32x64xf16>
  // CHECK: moe.linear %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} : tensor<?x64xf32>, tensor<32x64xf16> -> tensor<?x32xf32>
  %b = moe.linear %y, %wh : tensor<?x64xf32>, tensor<32x64xf16> -> tensor<?x32xf32>
  // CHECK: moe.slice_columns %{{[[:alnum:]_]+}} {begin = 8 : i64, width = 16 : i64} : tensor<?x32xf32> -> tensor<?x16xf32>
  %c = moe.slice_columns %b {begin = 8 : i64, width = 16 : i64} : tensor<?x32xf32> -> tensor<?x16xf32>
  return %a, %b, %c : tensor<?x200xf32>, tensor<?x32xf32>, tensor<?x16xf32>
}

// CHECK-LABEL: func @rope
func.func @rope(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) -> (tensor<?x192xf32>, tensor<?x192xf32>) {
  // CHECK: moe.rope {{.*}}layout = #moe.rope_layout<interleaved>{{.*}}yarn = #moe.yarn<factor = 4.000000e+01, originalMaxPositions = 4096, betaFast = 3.200000e+01, betaSlow = 1.000000e+00, mscale = 1.000000e+00, mscaleAllDim = 1.000000e+00>
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>,
      yarn = #moe.yarn<factor = 40.0, originalMaxPositions = 4096, betaFast = 32.0, betaSlow = 1.0, mscale = 1.0, mscaleAllDim = 1.0>}
      : tensor<?x192xf32>, tensor<?xi32>
  // CHECK: moe.rope {{.*}}layout = #moe.rope_layout<half>
  // CHECK-NOT: yarn
  %b = moe.rope %a, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<half>} : tensor<?x192xf32>, tensor<?xi32>
  return %a, %b : tensor<?x192xf32>, tensor<?x192xf32>
}

// CHECK-LABEL: func @mla_q_lora
// CHECK-SAME: !moe.latent_cache<64, 16>
func.func @mla_q_lora(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                      %cache: !moe.latent_cache<64, 16>) -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>) {
  %qa = moe.weight "q_a_proj" : tensor<96x256xbf16>
  %qan = moe.weight "q_a_layernorm" : tensor<96xbf16>
  %qb = moe.weight "q_b_proj" : tensor<192x96xbf16>
  %kva = moe.weight "kv_a_proj_with_mqa" : tensor<80x256xbf16>
  %kvan = moe.weight "kv_a_layernorm" : tensor<64xbf16>
  %kvb = moe.weight "kv_b_proj" : tensor<256x64xbf16>
  %o = moe.weight "o_proj" : tensor<256x128xbf16>
  // CHECK: moe.mla_attention %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} q_a(%{{[[:alnum:]_]+}}) q_a_norm(%{{[[:alnum:]_]+}}) q_b(%{{[[:alnum:]_]+}}) kv_a(%{{[[:alnum:]_]+}}) kv_a_norm(%{{[[:alnum:]_]+}}) kv_b(%{{[[:alnum:]_]+}}) o_proj(%{{[[:alnum:]_]+}})
  // CHECK-SAME: rope_layout = #moe.rope_layout<interleaved>
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return %r, %c : tensor<?x256xf32>, !moe.latent_cache<64, 16>
}

// CHECK-LABEL: func @mla_fp8_no_q_lora
func.func @mla_fp8_no_q_lora(%x: tensor<?x160xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                             %cache: !moe.latent_cache<32, 8>) -> (tensor<?x160xf32>, !moe.latent_cache<32, 8>) {
  %qb = moe.weight "q_proj" scale "q_proj_s" : tensor<96x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %kva = moe.weight "kv_a" scale "kv_a_s" : tensor<40x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %kvan = moe.weight "kv_a_layernorm" : tensor<32xbf16>
  %kvb = moe.weight "kv_b" scale "kv_b_s" : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  %o = moe.weight "o" scale "o_s" : tensor<160x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  // CHECK: moe.mla_attention {{.*}} q_b(%{{[[:alnum:]_]+}}) kv_a(%{{[[:alnum:]_]+}}) kv_a_norm(%{{[[:alnum:]_]+}}) kv_b(%{{[[:alnum:]_]+}}) o_proj(%{{[[:alnum:]_]+}})
  // CHECK-SAME: yarn = #moe.yarn
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 32 : i64, qk_nope_head_dim = 16 : i64,
       qk_rope_head_dim = 8 : i64, v_head_dim = 16 : i64, softmax_scale = 0.2 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>,
       yarn = #moe.yarn<factor = 40.0, originalMaxPositions = 4096, betaFast = 32.0, betaSlow = 1.0, mscale = 0.707, mscaleAllDim = 0.707>}
      : (tensor<?x160xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>,
         tensor<96x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<40x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<32xbf16>,
         tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<160x64xf8E4M3FN, #moe.block_fp8<128, 128>>)
      -> (tensor<?x160xf32>, !moe.latent_cache<32, 8>)
  return %r, %c : tensor<?x160xf32>, !moe.latent_cache<32, 8>
}

// The step-level attention ops: H = 4, nope = 16, rope = 8, v = 16, C = 32.
// CHECK-LABEL: func @attention_steps
func.func @attention_steps(%q: tensor<?x96xf32>, %c: tensor<?x32xf32>, %pe: tensor<?x8xf32>, %pos: tensor<?xi32>,
                           %seq: tensor<?xi32>, %cache: !moe.latent_cache<32, 8>)
    -> (tensor<?x64xf32>, tensor<?x64xf32>, !moe.latent_cache<32, 8>) {
  // CHECK: %[[C1:.*]] = moe.cache_store %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} : !moe.latent_cache<32, 8>, tensor<?x32xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>
  %c1 = moe.cache_store %cache, %c, %pe, %pos, %seq
      : !moe.latent_cache<32, 8>, tensor<?x32xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>
  %kvb = moe.weight "kv_b" scale "kv_b_s" : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  // CHECK: moe.expanded_attention %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %[[C1]], %{{[[:alnum:]_]+}} {heads = 4 : i64, latent_dim = 32 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64, softmax_scale = 2.000000e-01 : f32, v_dim = 16 : i64}
  %naive = moe.expanded_attention %q, %pos, %seq, %c1, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>,
         tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x64xf32>
  %wuk = moe.slice_heads %kvb {heads = 4 : i64, offset = 0 : i64, size = 16 : i64}
      : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  // CHECK: moe.head_linear {{.*}} {heads = 4 : i64, in_offset = 0 : i64, in_stride = 24 : i64, in_width = 16 : i64, transpose = true} : tensor<?x96xf32>, tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x128xf32>
  %qlat = moe.head_linear %q, %wuk {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 16 : i64,
      transpose = true} : tensor<?x96xf32>, tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x128xf32>
  // CHECK: moe.latent_attention {{.*}} {heads = 4 : i64, latent_dim = 32 : i64, q_rope_offset = 16 : i64, q_stride = 24 : i64, rope_dim = 8 : i64, softmax_scale = 2.000000e-01 : f32}
  %olat = moe.latent_attention %qlat, %q, %pos, %seq, %c1 {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
  %wuv = moe.slice_heads %kvb {heads = 4 : i64, offset = 16 : i64, size = 16 : i64}
      : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  // CHECK: moe.head_linear {{.*}} transpose = false} : tensor<?x128xf32>, tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x64xf32>
  %absorbed = moe.head_linear %olat, %wuv {heads = 4 : i64, in_stride = 32 : i64, in_offset = 0 : i64, in_width = 32 : i64,
      transpose = false} : tensor<?x128xf32>, tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x64xf32>
  return %naive, %absorbed, %c1 : tensor<?x64xf32>, tensor<?x64xf32>, !moe.latent_cache<32, 8>
}

// CHECK-LABEL: func @moe_layer
func.func @moe_layer(%f: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
  %gate = moe.weight "mlp.gate.weight" : tensor<4x64xbf16>
  %bias = moe.weight "mlp.gate.e_score_correction_bias" : tensor<4xf32>
  // CHECK: moe.router %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} bias %{{[[:alnum:]_]+}} {group_score = #moe.group_score<top2_sum>, n_group = 2 : i64, norm_topk_prob = true, routed_scaling_factor = 2.500000e+00 : f32, score_func = #moe.score_func<sigmoid>, top_k = 2 : i64, topk_group = 1 : i64}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  // CHECK: moe.router {{.*}}score_func = #moe.score_func<softmax>
  %idx2, %w2 = moe.router %f, %gate {top_k = 2 : i64, n_group = 1 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<softmax>, group_score = #moe.group_score<max>, norm_topk_prob = false,
      routed_scaling_factor = 1.0 : f32} : (tensor<?x64xf32>, tensor<4x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  %g0 = moe.weight "e0.gate" : tensor<32x64xbf16>
  %u0 = moe.weight "e0.up" : tensor<32x64xbf16>
  %d0 = moe.weight "e0.down" : tensor<64x32xbf16>
  %g1 = moe.weight "e1.gate" : tensor<32x64xbf16>
  %u1 = moe.weight "e1.up" : tensor<32x64xbf16>
  %d1 = moe.weight "e1.down" : tensor<64x32xbf16>
  // CHECK: moe.routed_experts %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} gate[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] up[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] down[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] :
  %r = moe.routed_experts %f, %idx, %w gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  // CHECK: moe.swiglu %{{[[:alnum:]_]+}} gate(%{{[[:alnum:]_]+}}) up(%{{[[:alnum:]_]+}}) down(%{{[[:alnum:]_]+}}) :
  %s = moe.swiglu %f gate(%g0) up(%u0) down(%d0)
      : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  %sum = moe.add %r, %s : tensor<?x64xf32>
  return %r, %s, %sum : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
}

// The model-level MoE layer, with a correction bias and shared experts, and
// without either (4 experts of width 32, hidden 64).
// CHECK-LABEL: func @model_level_moe_layer
func.func @model_level_moe_layer(%f: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %gate = moe.weight "gate" : tensor<4x64xbf16>
  %bias = moe.weight "bias" : tensor<4xf32>
  %g0 = moe.weight "e0.gate" : tensor<32x64xbf16>
  %u0 = moe.weight "e0.up" : tensor<32x64xbf16>
  %d0 = moe.weight "e0.down" : tensor<64x32xbf16>
  %g1 = moe.weight "e1.gate" : tensor<32x64xbf16>
  %u1 = moe.weight "e1.up" : tensor<32x64xbf16>
  %d1 = moe.weight "e1.down" : tensor<64x32xbf16>
  %sg = moe.weight "shared.gate" : tensor<64x64xbf16>
  %su = moe.weight "shared.up" : tensor<64x64xbf16>
  %sd = moe.weight "shared.down" : tensor<64x64xbf16>
  // CHECK: moe.moe_layer %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} bias %{{[[:alnum:]_]+}} experts gate[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] up[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] down[%{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}}] shared gate(%{{[[:alnum:]_]+}}) up(%{{[[:alnum:]_]+}}) down(%{{[[:alnum:]_]+}}) {group_score = #moe.group_score<top2_sum>, n_group = 2 : i64, norm_topk_prob = true, routed_scaling_factor = 2.500000e+00 : f32, score_func = #moe.score_func<sigmoid>, top_k = 2 : i64, topk_group = 1 : i64}
  // CHECK-SAME: : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, {{.*}}, tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64x64xbf16>) -> tensor<?x64xf32>
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g0, %g1] up [%u0, %u1, %u0, %u1] down [%d0, %d1, %d0, %d1]
      shared gate(%sg) up(%su) down(%sd)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64x64xbf16>) -> tensor<?x64xf32>
  // CHECK: moe.moe_layer %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} experts gate[{{.*}}] up[{{.*}}] down[{{.*}}] {group_score = #moe.group_score<max>, {{.*}}score_func = #moe.score_func<softmax>{{.*}}} : (tensor<?x64xf32>, tensor<4x64xbf16>, {{.*}}tensor<64x32xbf16>) -> tensor<?x64xf32>
  // CHECK-NOT: shared
  %m2 = moe.moe_layer %f, %gate experts gate [%g0, %g1, %g0, %g1] up [%u0, %u1, %u0, %u1] down [%d0, %d1, %d0, %d1]
      {top_k = 2 : i64, n_group = 1 : i64, topk_group = 1 : i64, score_func = #moe.score_func<softmax>,
       group_score = #moe.group_score<max>, norm_topk_prob = false, routed_scaling_factor = 1.0 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return %m, %m2 : tensor<?x64xf32>, tensor<?x64xf32>
}

// CHECK-LABEL: func @fp8_experts
func.func @fp8_experts(%f: tensor<?x160xf32>, %idx: tensor<?x1xi32>, %w: tensor<?x1xf32>) -> (tensor<?x160xf32>, tensor<?x160xf32>) {
  %g = moe.weight "g" scale "gs" : tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %u = moe.weight "u" scale "us" : tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>
  %d = moe.weight "d" scale "ds" : tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>
  // CHECK: moe.routed_experts {{.*}} gate[%{{[[:alnum:]_]+}}] up[%{{[[:alnum:]_]+}}] down[%{{[[:alnum:]_]+}}] : {{.*}}tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x160xf32>
  %r = moe.routed_experts %f, %idx, %w gate [%g] up [%u] down [%d]
      : (tensor<?x160xf32>, tensor<?x1xi32>, tensor<?x1xf32>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>,
         tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x160xf32>
  // CHECK: moe.swiglu %{{[[:alnum:]_]+}} gate(%{{[[:alnum:]_]+}}) up(%{{[[:alnum:]_]+}}) down(%{{[[:alnum:]_]+}}) : {{.*}}#moe.block_fp8<128, 128>>) -> tensor<?x160xf32>
  %s = moe.swiglu %f gate(%g) up(%u) down(%d)
      : (tensor<?x160xf32>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>,
         tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x160xf32>
  return %r, %s : tensor<?x160xf32>, tensor<?x160xf32>
}

// CHECK-LABEL: func @logits
func.func @logits(%h: tensor<?x256xf32>) -> tensor<?x1024xf32> {
  %lm = moe.weight "lm_head.weight" : tensor<1024x256xbf16>
  // CHECK: moe.logits %{{[[:alnum:]_]+}}, %{{[[:alnum:]_]+}} : tensor<?x256xf32>, tensor<1024x256xbf16> -> tensor<?x1024xf32>
  %l = moe.logits %h, %lm : tensor<?x256xf32>, tensor<1024x256xbf16> -> tensor<?x1024xf32>
  return %l : tensor<?x1024xf32>
}

// The module attributes the importer attaches.
// CHECK-LABEL: module @metadata
// CHECK-SAME: moe.model_config = {architecture = "DeepseekV3ForCausalLM", scoring_func = #moe.score_func<sigmoid>}
// CHECK-SAME: moe.source = "/ckpt"
module @metadata attributes {moe.model_config = {architecture = "DeepseekV3ForCausalLM", scoring_func = #moe.score_func<sigmoid>},
                             moe.source = "/ckpt"} {
}
