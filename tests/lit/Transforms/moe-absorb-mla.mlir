// RUN: moec-opt %s -moe-absorb-mla | FileCheck %s --check-prefix=ABSORB
// RUN: moec-opt %s -moe-absorb-mla=form=naive | FileCheck %s --check-prefix=NAIVE
// RUN: moec-opt %s -moe-absorb-mla=report -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// RUN: moec-opt %s '-moe-absorb-mla=form=naive report' -o /dev/null 2>&1 | FileCheck %s --check-prefix=QUIET --allow-empty
// RUN: not moec-opt %s -moe-absorb-mla=form=fused 2>&1 | FileCheck %s --check-prefix=BAD

// ABSORB-LABEL: func @decode
// ABSORB: moe.mla_attention
// ABSORB-SAME: form = #moe.attention_form<absorbed>
// NAIVE-LABEL: func @decode
// NAIVE: moe.mla_attention
// NAIVE-SAME: form = #moe.attention_form<naive>
// REPORT: remark: moe-absorb-mla: form naive -> absorbed (attention reads only the latent cache: kv_lora_rank + rope values per token)
// QUIET-NOT: remark
// BAD: error: moe-absorb-mla: expected form 'absorbed' or 'naive', got 'fused'
// BAD-NOT: see current operation
func.func @decode(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                  %cache: !moe.latent_cache<32, 8>) -> (tensor<?x64xf32>, !moe.latent_cache<32, 8>) {
  %qb = moe.weight "q_proj" : tensor<96x64xbf16>
  %kva = moe.weight "kv_a" : tensor<40x64xbf16>
  %kvan = moe.weight "kv_a_layernorm" : tensor<32xbf16>
  %kvb = moe.weight "kv_b" : tensor<128x32xbf16>
  %o = moe.weight "o" : tensor<64x64xbf16>
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 32 : i64, qk_nope_head_dim = 16 : i64,
       qk_rope_head_dim = 8 : i64, v_head_dim = 16 : i64, softmax_scale = 0.2 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>, form = #moe.attention_form<naive>}
      : (tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<96x64xbf16>,
         tensor<40x64xbf16>, tensor<32xbf16>, tensor<128x32xbf16>, tensor<64x64xbf16>)
      -> (tensor<?x64xf32>, !moe.latent_cache<32, 8>)
  return %r, %c : tensor<?x64xf32>, !moe.latent_cache<32, 8>
}
