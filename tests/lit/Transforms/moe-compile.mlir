// RUN: moec-opt %s --moe-compile='prefill-mla-form=absorbed decode-mla-form=absorbed' | FileCheck %s
// RUN: moec-opt %s --moe-compile | FileCheck %s --check-prefix=AUTO
// RUN: moec-opt %s --moe-compile='prefill-mla-form=naive' | FileCheck %s --check-prefix=MIXED
// RUN: moec-opt %s --moe-compile='prefill-mla-form=naive decode-mla-form=naive' | FileCheck %s --check-prefix=NAIVE
// RUN: moec-opt %s --moe-compile='kv-cache=f32' | FileCheck %s --check-prefix=F32CACHE
// RUN: not moec-opt %s --moe-compile='decode-mla-form=fused' 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moec-opt %s --moe-compile='prefill-mla-form=naive' --dump-pass-pipeline -o /dev/null 2>&1 | FileCheck %s --check-prefix=PIPELINE

// The registered pipeline replays from its textual form (what
// moe::compilePipelineString prints and plans record): the same passes
// spelled out give the same module.
// RUN: moec-opt %s --moe-compile='prefill-mla-form=naive' -mlir-print-debuginfo -o %t.registered.mlir
// RUN: moec-opt %s -mlir-print-debuginfo -o %t.textual.mlir --pass-pipeline='builtin.module(func.func(canonicalize{  max-iterations=10 max-num-rewrites=-1 region-simplify=normal test-convergence=false top-down=true}),moe-kv-cache-type{element=bf16},moe-split-phases,func.func(moe-decompose-mla,moe-decompose-moe),moe-absorb-mla{bandwidth-gbs=2.000000e+01 context-tokens=4096 form=naive function=prefill peak-gflops=1.000000e+02 report=false},moe-absorb-mla{bandwidth-gbs=2.000000e+01 context-tokens=4096 form=auto function=decode peak-gflops=1.000000e+02 report=false},func.func(moe-fuse-mla-input-proj{report=false},moe-fuse-gate-up{report=false rows=128},moe-fuse-residual-norm{report=false},canonicalize{  max-iterations=10 max-num-rewrites=-1 region-simplify=normal test-convergence=false top-down=true}))'
// RUN: diff %t.registered.mlir %t.textual.mlir

// kv-cache=f32 keeps the cache exact: the types stay as imported.
// F32CACHE-LABEL: func.func @prefill
// F32CACHE-SAME: !moe.latent_cache<32, 8>) -> (tensor<?x128xf32>, !moe.latent_cache<32, 8>, !moe.latent_cache<32, 8>)
// F32CACHE-NOT: 8, bf16>

// PIPELINE: builtin.module(
// PIPELINE-NEXT: func.func(
// PIPELINE-NEXT: canonicalize
// PIPELINE-NEXT: ),
// PIPELINE-NEXT: moe-kv-cache-type{element=bf16},
// PIPELINE-NEXT: moe-split-phases,
// PIPELINE-NEXT: func.func(
// PIPELINE-NEXT: moe-decompose-mla,
// PIPELINE-NEXT: moe-decompose-moe
// PIPELINE-NEXT: ),
// PIPELINE-NEXT: moe-absorb-mla{bandwidth-gbs=2.000000e+01 context-tokens=4096 form=naive function=prefill peak-gflops=1.000000e+02 report=false},
// PIPELINE-NEXT: moe-absorb-mla{bandwidth-gbs=2.000000e+01 context-tokens=4096 form=auto function=decode peak-gflops=1.000000e+02 report=false},
// PIPELINE-NEXT: func.func(
// PIPELINE-NEXT: moe-fuse-mla-input-proj{report=false},
// PIPELINE-NEXT: moe-fuse-gate-up{report=false rows=128},
// PIPELINE-NEXT: moe-fuse-residual-norm{report=false},
// PIPELINE-NEXT: canonicalize
// PIPELINE-NEXT: )
// PIPELINE-NEXT: )

// BAD: for the --decode-mla-form option: Cannot find option named 'fused'!

// A two-layer model as the checkpoint importer writes it (hidden 64, vocab
// 128, heads 4, q_lora 48, C 32, nope 16, rope 8, v 16; layer 0 dense, layer
// 1 MoE with 2 routed experts, a shared expert and a bf16 correction bias, a
// model-level moe.moe_layer). With both forms absorbed, both entry points run
// the absorbed MLA core; every op left is a step-level op or a weight. By
// default (form=auto) the cost model gives @prefill the naive core and @decode
// the absorbed one, and records from how many tokens on @prefill runs: for this
// shape (C 32, rope 8, nope 16, v 16) the naive form's per-row expansion,
// 2*C*(nope+v) = 2048 FLOP per head, is paid back by its narrower attention,
// 2*((2C+R) - (nope+R+v)) = 64 FLOP per head, query and row, from 32 queries on.

// AUTO: module attributes {{{.*}}moe.prefill_min_tokens = 32 : i64
// AUTO-LABEL: func.func @prefill
// AUTO-NOT: moe.latent_attention
// AUTO-COUNT-2: moe.expanded_attention
// AUTO-LABEL: func.func @decode
// AUTO-NOT: moe.expanded_attention
// AUTO-COUNT-2: moe.latent_attention

// CHECK: module attributes {moe.model_config = {{{.*}}architecture = "DeepseekV3ForCausalLM"{{.*}}}, moe.source = "/ckpt/tiny"}
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%{{.*}}: tensor<?xi32>, %{{.*}}: tensor<?xi32>, %{{.*}}: tensor<?xi32>, %{{.*}}: !moe.latent_cache<32, 8, bf16>, %{{.*}}: !moe.latent_cache<32, 8, bf16>) -> (tensor<?x128xf32>, !moe.latent_cache<32, 8, bf16>, !moe.latent_cache<32, 8, bf16>)
// CHECK-NOT: moe.mla_attention
// CHECK-NOT: moe.expanded_attention
// CHECK: moe.embedding
// CHECK: moe.rms_norm
// q_a_proj and kv_a_proj_with_mqa: one linear (moe-fuse-mla-input-proj).
// CHECK: moe.concat_weights {{.*}} : tensor<48x64xbf16>, tensor<40x64xbf16> -> tensor<88x64xbf16>
// CHECK-NEXT: moe.linear
// CHECK-NEXT: moe.slice_columns {{.*}} {begin = 0 : i64, width = 48 : i64}
// CHECK: moe.rms_norm
// CHECK: moe.linear
// CHECK: moe.slice_columns {{.*}} {begin = 48 : i64, width = 32 : i64}
// CHECK: moe.rms_norm
// CHECK: moe.slice_columns {{.*}} {begin = 80 : i64, width = 8 : i64}
// CHECK: moe.rope
// CHECK: moe.rope
// CHECK: moe.cache_store
// CHECK: moe.slice_heads
// CHECK: moe.head_linear
// CHECK: moe.latent_attention
// CHECK: moe.slice_heads
// CHECK: moe.head_linear
// CHECK: moe.linear
// CHECK: moe.add
// Gate and up as one product (moe-fuse-gate-up).
// CHECK: moe.concat_weights {{.*}} {interleave = 128 : i64} : tensor<96x64xbf16>, tensor<96x64xbf16> -> tensor<192x64xbf16>
// CHECK-NEXT: moe.fused_swiglu
// CHECK: moe.latent_attention
// CHECK: moe.convert_weight %{{.*}} : tensor<2xbf16> -> tensor<2xf32>
// CHECK-NOT: moe.moe_layer
// CHECK: moe.router
// CHECK: moe.fused_routed_experts
// CHECK: moe.fused_swiglu
// CHECK: moe.add
// CHECK: moe.add
// CHECK: moe.logits
// CHECK-LABEL: func.func @decode
// CHECK-NOT: moe.expanded_attention
// CHECK-COUNT-2: moe.latent_attention
// CHECK-NOT: moe.expanded_attention
// CHECK-NOT: moe.moe_layer
// CHECK-NOT: @forward

// MIXED-LABEL: func.func @prefill
// MIXED-NOT: moe.latent_attention
// MIXED-COUNT-2: moe.expanded_attention
// MIXED-NOT: moe.latent_attention
// MIXED-LABEL: func.func @decode
// MIXED-NOT: moe.expanded_attention
// MIXED-COUNT-2: moe.latent_attention
// MIXED-NOT: moe.expanded_attention

// NAIVE-LABEL: func.func @prefill
// NAIVE-COUNT-2: moe.expanded_attention
// NAIVE-LABEL: func.func @decode
// NAIVE-COUNT-2: moe.expanded_attention
// NAIVE-NOT: moe.latent_attention

module attributes {moe.model_config = {architecture = "DeepseekV3ForCausalLM", vocab_size = 128 : i64, hidden_size = 64 : i64,
                                       num_hidden_layers = 2 : i64, kv_lora_rank = 32 : i64},
                   moe.source = "/ckpt/tiny"} {
func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                   %cache0: !moe.latent_cache<32, 8>, %cache1: !moe.latent_cache<32, 8>)
    -> (tensor<?x128xf32>, !moe.latent_cache<32, 8>, !moe.latent_cache<32, 8>) {
  %table = moe.weight "model.embed_tokens.weight" : tensor<128x64xbf16>
  %h0 = moe.embedding %table[%tokens] : tensor<128x64xbf16>, tensor<?xi32> -> tensor<?x64xf32>

  // Layer 0: MLA (bf16) + dense SwiGLU.
  %ln0 = moe.weight "model.layers.0.input_layernorm.weight" : tensor<64xbf16>
  %x0 = moe.rms_norm %h0, %ln0 {epsilon = 1.0e-6 : f32} : tensor<?x64xf32>, tensor<64xbf16>
  %qa0 = moe.weight "model.layers.0.self_attn.q_a_proj.weight" : tensor<48x64xbf16>
  %qan0 = moe.weight "model.layers.0.self_attn.q_a_layernorm.weight" : tensor<48xbf16>
  %qb0 = moe.weight "model.layers.0.self_attn.q_b_proj.weight" : tensor<96x48xbf16>
  %kva0 = moe.weight "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" : tensor<40x64xbf16>
  %kvan0 = moe.weight "model.layers.0.self_attn.kv_a_layernorm.weight" : tensor<32xbf16>
  %kvb0 = moe.weight "model.layers.0.self_attn.kv_b_proj.weight" : tensor<128x32xbf16>
  %o0 = moe.weight "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xbf16>
  %a0, %c0 = moe.mla_attention %x0, %pos, %seq, %cache0 q_a(%qa0) q_a_norm(%qan0) q_b(%qb0) kv_a(%kva0) kv_a_norm(%kvan0)
      kv_b(%kvb0) o_proj(%o0)
      {num_heads = 4 : i64, q_lora_rank = 48 : i64, kv_lora_rank = 32 : i64, qk_nope_head_dim = 16 : i64,
       qk_rope_head_dim = 8 : i64, v_head_dim = 16 : i64, softmax_scale = 0.204 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<48x64xbf16>, tensor<48xbf16>,
         tensor<96x48xbf16>, tensor<40x64xbf16>, tensor<32xbf16>, tensor<128x32xbf16>, tensor<64x64xbf16>)
      -> (tensor<?x64xf32>, !moe.latent_cache<32, 8>) loc("model.layers.0.self_attn")
  %h1 = moe.add %h0, %a0 : tensor<?x64xf32>
  %pln0 = moe.weight "model.layers.0.post_attention_layernorm.weight" : tensor<64xbf16>
  %f0 = moe.rms_norm %h1, %pln0 {epsilon = 1.0e-6 : f32} : tensor<?x64xf32>, tensor<64xbf16>
  %g0 = moe.weight "model.layers.0.mlp.gate_proj.weight" : tensor<96x64xbf16>
  %u0 = moe.weight "model.layers.0.mlp.up_proj.weight" : tensor<96x64xbf16>
  %d0 = moe.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x96xbf16>
  %m0 = moe.swiglu %f0 gate(%g0) up(%u0) down(%d0)
      : (tensor<?x64xf32>, tensor<96x64xbf16>, tensor<96x64xbf16>, tensor<64x96xbf16>) -> tensor<?x64xf32>
  %h2 = moe.add %h1, %m0 : tensor<?x64xf32>

  // Layer 1: MLA (FP8 kv_b) + MoE.
  %ln1 = moe.weight "model.layers.1.input_layernorm.weight" : tensor<64xbf16>
  %x1 = moe.rms_norm %h2, %ln1 {epsilon = 1.0e-6 : f32} : tensor<?x64xf32>, tensor<64xbf16>
  %qa1 = moe.weight "model.layers.1.self_attn.q_a_proj.weight" : tensor<48x64xbf16>
  %qan1 = moe.weight "model.layers.1.self_attn.q_a_layernorm.weight" : tensor<48xbf16>
  %qb1 = moe.weight "model.layers.1.self_attn.q_b_proj.weight" : tensor<96x48xbf16>
  %kva1 = moe.weight "model.layers.1.self_attn.kv_a_proj_with_mqa.weight" : tensor<40x64xbf16>
  %kvan1 = moe.weight "model.layers.1.self_attn.kv_a_layernorm.weight" : tensor<32xbf16>
  %kvb1 = moe.weight "model.layers.1.self_attn.kv_b_proj.weight" scale "model.layers.1.self_attn.kv_b_proj.weight_scale_inv"
      : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  %o1 = moe.weight "model.layers.1.self_attn.o_proj.weight" : tensor<64x64xbf16>
  %a1, %c1 = moe.mla_attention %x1, %pos, %seq, %cache1 q_a(%qa1) q_a_norm(%qan1) q_b(%qb1) kv_a(%kva1) kv_a_norm(%kvan1)
      kv_b(%kvb1) o_proj(%o1)
      {num_heads = 4 : i64, q_lora_rank = 48 : i64, kv_lora_rank = 32 : i64, qk_nope_head_dim = 16 : i64,
       qk_rope_head_dim = 8 : i64, v_head_dim = 16 : i64, softmax_scale = 0.204 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<48x64xbf16>, tensor<48xbf16>,
         tensor<96x48xbf16>, tensor<40x64xbf16>, tensor<32xbf16>, tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>,
         tensor<64x64xbf16>)
      -> (tensor<?x64xf32>, !moe.latent_cache<32, 8>) loc("model.layers.1.self_attn")
  %h3 = moe.add %h2, %a1 : tensor<?x64xf32>
  %pln1 = moe.weight "model.layers.1.post_attention_layernorm.weight" : tensor<64xbf16>
  %f1 = moe.rms_norm %h3, %pln1 {epsilon = 1.0e-6 : f32} : tensor<?x64xf32>, tensor<64xbf16>
  %gate = moe.weight "model.layers.1.mlp.gate.weight" : tensor<2x64xbf16>
  %bias = moe.weight "model.layers.1.mlp.gate.e_score_correction_bias" : tensor<2xbf16>
  %bias32 = moe.convert_weight %bias : tensor<2xbf16> -> tensor<2xf32>
  %eg0 = moe.weight "model.layers.1.mlp.experts.0.gate_proj.weight" : tensor<32x64xbf16>
  %eu0 = moe.weight "model.layers.1.mlp.experts.0.up_proj.weight" : tensor<32x64xbf16>
  %ed0 = moe.weight "model.layers.1.mlp.experts.0.down_proj.weight" : tensor<64x32xbf16>
  %eg1 = moe.weight "model.layers.1.mlp.experts.1.gate_proj.weight" : tensor<32x64xbf16>
  %eu1 = moe.weight "model.layers.1.mlp.experts.1.up_proj.weight" : tensor<32x64xbf16>
  %ed1 = moe.weight "model.layers.1.mlp.experts.1.down_proj.weight" : tensor<64x32xbf16>
  %sg = moe.weight "model.layers.1.mlp.shared_experts.gate_proj.weight" : tensor<32x64xbf16>
  %su = moe.weight "model.layers.1.mlp.shared_experts.up_proj.weight" : tensor<32x64xbf16>
  %sd = moe.weight "model.layers.1.mlp.shared_experts.down_proj.weight" : tensor<64x32xbf16>
  %m1 = moe.moe_layer %f1, %gate bias %bias32 experts gate [%eg0, %eg1] up [%eu0, %eu1] down [%ed0, %ed1]
      shared gate(%sg) up(%su) down(%sd)
      {top_k = 1 : i64, n_group = 1 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<2x64xbf16>, tensor<2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
      loc("model.layers.1.mlp")
  %h4 = moe.add %h3, %m1 : tensor<?x64xf32>

  %norm = moe.weight "model.norm.weight" : tensor<64xbf16>
  %n = moe.rms_norm %h4, %norm {epsilon = 1.0e-6 : f32} : tensor<?x64xf32>, tensor<64xbf16>
  %lm = moe.weight "lm_head.weight" : tensor<128x64xbf16>
  %logits = moe.logits %n, %lm : tensor<?x64xf32>, tensor<128x64xbf16> -> tensor<?x128xf32>
  return %logits, %c0, %c1 : tensor<?x128xf32>, !moe.latent_cache<32, 8>, !moe.latent_cache<32, 8>
}
}
