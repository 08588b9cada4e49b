// RUN: moec-opt %s -moe-absorb-mla | FileCheck %s --check-prefix=ABSORB
// RUN: moec-opt %s -moe-absorb-mla=form=naive | FileCheck %s --check-prefix=NAIVE
// RUN: moec-opt %s '-moe-absorb-mla=function=decode' | FileCheck %s --check-prefix=DECODE
// RUN: moec-opt %s -moe-absorb-mla -mlir-print-debuginfo | FileCheck %s --check-prefix=NAMES
// RUN: moec-opt %s -moe-absorb-mla=report -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// RUN: moec-opt %s '-moe-absorb-mla=form=naive report' -o /dev/null 2>&1 | FileCheck %s --check-prefix=QUIET --allow-empty
// RUN: not moec-opt %s -moe-absorb-mla=form=fused 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moec-opt %s '-moe-absorb-mla=function=missing' -verify-diagnostics -o /dev/null

// The naive core of spec section 4, as moe-decompose-mla leaves it: heads 4,
// nope 16, rope 8, v 16, C 32; kv_b [4 x (16 + 16), 32] is block-quantized.

// ABSORB-LABEL: func @prefill
// ABSORB-SAME: (%[[Q:[^:]*]]: tensor<?x96xf32>, %[[POS:[^:]*]]: tensor<?xi32>, %[[SEQ:[^:]*]]: tensor<?xi32>, %[[CACHE:[^:]*]]: !moe.latent_cache<32, 8>)
// ABSORB: %[[KVB:.*]] = moe.weight "kv_b"
// ABSORB-NEXT: %[[WUK:.*]] = moe.slice_heads %[[KVB]] {heads = 4 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>>
// ABSORB-NEXT: %[[QLAT:.*]] = moe.head_linear %[[Q]], %[[WUK]] {heads = 4 : i64, in_offset = 0 : i64, in_stride = 24 : i64, in_width = 16 : i64, transpose = true} : tensor<?x96xf32>, tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x128xf32>
// ABSORB-NEXT: %[[OLAT:.*]] = moe.latent_attention %[[QLAT]], %[[Q]], %[[POS]], %[[SEQ]], %[[CACHE]] {heads = 4 : i64, latent_dim = 32 : i64, q_rope_offset = 16 : i64, q_stride = 24 : i64, rope_dim = 8 : i64, softmax_scale = 2.000000e-01 : f32} : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
// ABSORB-NEXT: %[[WUV:.*]] = moe.slice_heads %[[KVB]] {heads = 4 : i64, offset = 16 : i64, size = 16 : i64} : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>>
// ABSORB-NEXT: %[[O:.*]] = moe.head_linear %[[OLAT]], %[[WUV]] {heads = 4 : i64, in_offset = 0 : i64, in_stride = 32 : i64, in_width = 32 : i64, transpose = false} : tensor<?x128xf32>, tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x64xf32>
// ABSORB-NEXT: return %[[O]]
// ABSORB-NOT: moe.expanded_attention
// ABSORB-LABEL: func @decode
// ABSORB: moe.latent_attention
// ABSORB-NOT: moe.expanded_attention

// NAIVE-LABEL: func @prefill
// NAIVE: moe.expanded_attention
// NAIVE-NOT: moe.latent_attention
// NAIVE-LABEL: func @decode
// NAIVE: moe.expanded_attention
// NAIVE-NOT: moe.latent_attention

// function=decode leaves @prefill naive.
// DECODE-LABEL: func @prefill
// DECODE: moe.expanded_attention
// DECODE-NOT: moe.latent_attention
// DECODE-LABEL: func @decode
// DECODE-NOT: moe.expanded_attention
// DECODE: moe.latent_attention

// The latent core keeps the naive core's step name; the others are its siblings.
// NAMES: func @prefill
// NAMES: moe.slice_heads {{.*}} loc(#[[WUK:loc[0-9]*]])
// NAMES: moe.head_linear {{.*}} loc(#[[QABS:loc[0-9]*]])
// NAMES: moe.latent_attention {{.*}} loc(#[[ATT:loc[0-9]*]])
// NAMES: moe.slice_heads {{.*}} loc(#[[WUV:loc[0-9]*]])
// NAMES: moe.head_linear {{.*}} loc(#[[VUP:loc[0-9]*]])
// NAMES-DAG: #[[WUK]] = loc("model.layers.0.self_attn.w_uk"
// NAMES-DAG: #[[QABS]] = loc("model.layers.0.self_attn.q_absorb"
// NAMES-DAG: #[[ATT]] = loc("model.layers.0.self_attn.attention"
// NAMES-DAG: #[[WUV]] = loc("model.layers.0.self_attn.w_uv"
// NAMES-DAG: #[[VUP]] = loc("model.layers.0.self_attn.v_up"

// One remark per rewritten core, in @prefill and @decode.
// REPORT-COUNT-2: remark: {{.*}}moe-absorb-mla: naive -> absorbed (attention reads only the latent cache: 40 values per token)
// QUIET-NOT: remark
// BAD: for the --form option: Cannot find option named 'fused'!

// expected-error @+1 {{moe-absorb-mla: expected a function @missing, got none}}
module {
func.func @prefill(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                   %cache: !moe.latent_cache<32, 8>) -> tensor<?x64xf32> {
  %kvb = moe.weight "kv_b" scale "kv_b_s" : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>,
         tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x64xf32> loc("model.layers.0.self_attn.attention")
  return %o : tensor<?x64xf32>
}

func.func @decode(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                  %cache: !moe.latent_cache<32, 8>) -> tensor<?x64xf32> {
  %kvb = moe.weight "kv_b" : tensor<128x32xbf16>
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}
}
