// RUN: moec-opt %s -moe-absorb-mla | FileCheck %s --check-prefix=ABSORB
// RUN: moec-opt %s -moe-absorb-mla=form=naive | FileCheck %s --check-prefix=NAIVE
// RUN: moec-opt %s '-moe-absorb-mla=function=decode' | FileCheck %s --check-prefix=DECODE
// RUN: moec-opt %s -moe-absorb-mla -mlir-print-debuginfo | FileCheck %s --check-prefix=NAMES
// RUN: moec-opt %s -moe-absorb-mla=report -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// RUN: moec-opt %s '-moe-absorb-mla=form=naive report' -o /dev/null 2>&1 | FileCheck %s --check-prefix=QUIET --allow-empty
// RUN: not moec-opt %s -moe-absorb-mla=form=fused 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moec-opt %s '-moe-absorb-mla=function=missing' -verify-diagnostics -o /dev/null
// RUN: moec-opt %s '-moe-absorb-mla=form=auto' | FileCheck %s --check-prefix=AUTO
// RUN: moec-opt %s '-moe-absorb-mla=form=auto report' -o /dev/null 2>&1 | FileCheck %s --check-prefix=AUTOREPORT
// RUN: moec-opt %s '-moe-absorb-mla=form=auto context-tokens=0' | FileCheck %s --check-prefix=SHORT
// RUN: moec-opt %s '-moe-absorb-mla=form=auto bandwidth-gbs=0.001' | FileCheck %s --check-prefix=SLOWMEM
// RUN: not moec-opt %s '-moe-absorb-mla=form=auto peak-gflops=0' 2>&1 | FileCheck %s --check-prefix=BADCOST

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

// form=auto: the cost model keeps @prefill naive (from 32 new tokens on, for every
// context up to 4096 cached tokens, the naive form is cheaper: its expansion costs
// 2*C*(nope+v) = 2048 FLOP per head and cached row, its attention 64 FLOP per head,
// query and row less than the absorbed one's) and records the size on the module;
// @decode (single tokens, small batches) gets the absorbed form.
// AUTO: module attributes {moe.prefill_min_tokens = 32 : i64}
// AUTO-LABEL: func @prefill
// AUTO: moe.expanded_attention
// AUTO-NOT: moe.latent_attention
// AUTO-LABEL: func @decode
// AUTO-NOT: moe.expanded_attention
// AUTO: moe.latent_attention
// AUTOREPORT: remark: moe-absorb-mla: form=auto chose naive for @prefill (from 32 new tokens on the naive form is cheaper for every context up to 4096 cached tokens; roofline 100.0 GFLOP/s, 20.0 GB/s); per MLA layer:
// AUTOREPORT-NEXT: new  cached |   naive FLOP  naive bytes     naive s |  absorb FLOP absorb bytes    absorb s | cheaper
// AUTOREPORT: 16       0 | {{.*}} | naive
// AUTOREPORT: 16    4096 | {{.*}} | absorbed
// AUTOREPORT: 2048    4096 | {{.*}} | naive
// AUTOREPORT: remark: moe-absorb-mla: form=auto chose absorbed for @decode
// With no context to expand the naive form is never dearer: @prefill runs from 1 token.
// SHORT: module attributes {moe.prefill_min_tokens = 1 : i64}
// On a machine with almost no memory bandwidth only bytes count: the naive form's
// expanded K and V rows (4*H*(nope+v) bytes per cached row) are paid back by the
// absorbed form's q_lat and o_lat (8*H*C bytes per new token) only for batches
// near the context's length.
// SLOWMEM: module attributes {moe.prefill_min_tokens = {{[1-9][0-9][0-9][0-9]}} : i64}
// BADCOST: error: moe-absorb-mla: expected context-tokens >= 0 and positive peak-gflops and bandwidth-gbs, got 4096, 0.00, 20.00

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
