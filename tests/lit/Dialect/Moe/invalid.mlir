// RUN: moec-opt %s -split-input-file -verify-diagnostics
// Every verifier error of the moe dialect (MoeOps.cpp op verifiers, the
// MoeDialect.cpp attribute/type/module-attribute verifiers and the ODS weight
// type constraints). Each split starts from a valid op of ops.mlir and breaks
// exactly one relation.

//===----------------------------------------------------------------------===//
// Attribute and type verifiers
//===----------------------------------------------------------------------===//

func.func @block_fp8_zero_rows() {
  // expected-error @+1 {{expected positive block sizes, got 0x128}}
  %w = moe.weight "w" scale "w_s" : tensor<200x300xf8E4M3FN, #moe.block_fp8<0, 128>>
  return
}

// -----

func.func @block_fp8_attr_negative_cols() {
  // expected-error @+1 {{expected positive block sizes, got 128x-1}}
  %n = moe.weight "n" {extra = #moe.block_fp8<128, -1>} : tensor<4xbf16>
  return
}

// -----

func.func @block_fp8_on_bf16() {
  // expected-error @+1 {{expected f8E4M3FN elements for #moe.block_fp8, got 'bf16'}}
  %w = moe.weight "w" scale "w_s" : tensor<200x300xbf16, #moe.block_fp8<128, 128>>
  return
}

// -----

func.func @block_fp8_rank1() {
  // expected-error @+1 {{expected a rank-2 weight (or a rank-3 per-head view) for #moe.block_fp8, got rank 1}}
  %w = moe.weight "w" scale "w_s" : tensor<300xf8E4M3FN, #moe.block_fp8<128, 128>>
  return
}

// -----
func.func @yarn_factor(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>,
      // expected-error @+1 {{expected yarn factor >= 1, got 5.000000e-01}}
      yarn = #moe.yarn<factor = 0.5, originalMaxPositions = 4096, betaFast = 32.0, betaSlow = 1.0, mscale = 1.0, mscaleAllDim = 1.0>}
      : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @yarn_original_max_positions(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>,
      // expected-error @+1 {{expected positive original max positions, got 0}}
      yarn = #moe.yarn<factor = 40.0, originalMaxPositions = 0, betaFast = 32.0, betaSlow = 1.0, mscale = 1.0, mscaleAllDim = 1.0>}
      : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @yarn_beta_order(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>,
      // expected-error @+1 {{expected beta_fast > beta_slow > 0, got beta_fast = 1.000000e+00, beta_slow = 3.200000e+01}}
      yarn = #moe.yarn<factor = 40.0, originalMaxPositions = 4096, betaFast = 1.0, betaSlow = 32.0, mscale = 1.0, mscaleAllDim = 1.0>}
      : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @yarn_beta_slow_zero(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>,
      // expected-error @+1 {{expected beta_fast > beta_slow > 0, got beta_fast = 3.200000e+01, beta_slow = 0.000000e+00}}
      yarn = #moe.yarn<factor = 40.0, originalMaxPositions = 4096, betaFast = 32.0, betaSlow = 0.0, mscale = 1.0, mscaleAllDim = 1.0>}
      : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

// expected-error @+1 {{expected a positive kv_lora_rank and a positive even rope dim, got 64 and 15}}
func.func @latent_cache_odd_rope(%c: !moe.latent_cache<64, 15>) {
  return
}

// -----

// expected-error @+1 {{expected a positive kv_lora_rank and a positive even rope dim, got 0 and 16}}
func.func @latent_cache_zero_rank(%c: !moe.latent_cache<0, 16>) {
  return
}

// -----

// expected-error @+1 {{expected a latent cache of f32, bf16 or f8E4M3FN, got 'f16'}}
func.func @latent_cache_f16(%c: !moe.latent_cache<64, 16, f16>) {
  return
}

// -----

// A cache-updating op returns the cache type it was given, element type included.
func.func @cache_store_changes_element(%c: !moe.latent_cache<16, 8>, %x: tensor<?x16xf32>,
                                       %pe: tensor<?x8xf32>, %pos: tensor<?xi32>,
                                       %seq: tensor<?xi32>) {
  // expected-error @+1 {{all of {cache, result} have same type}}
  %n = "moe.cache_store"(%c, %x, %pe, %pos, %seq)
      : (!moe.latent_cache<16, 8>, tensor<?x16xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>)
      -> !moe.latent_cache<16, 8, bf16>
  return
}

// -----

// expected-error @+1 {{expected 'moe.model_config' to be a dictionary, got "DeepseekV3ForCausalLM"}}
module attributes {moe.model_config = "DeepseekV3ForCausalLM"} {
}

// -----

// expected-error @+1 {{expected 'moe.source' to be a string, got 3 : i64}}
module attributes {moe.source = 3 : i64} {
}

// -----

// expected-error @+1 {{expected 'moe.source' on a builtin.module, got it on 'func.func'}}
func.func @source_on_func() attributes {moe.source = "/ckpt"} {
  return
}

// -----

// expected-error @+1 {{expected 'moe.model_config' on a builtin.module, got it on 'func.func'}}
func.func @config_on_func() attributes {moe.model_config = {vocab_size = 1024 : i64}} {
  return
}

// -----

// expected-error @+1 {{unknown moe dialect attribute 'moe.config'}}
module attributes {moe.config = {}} {
}

//===----------------------------------------------------------------------===//
// moe.weight
//===----------------------------------------------------------------------===//

// -----

func.func @weight_empty_name() {
  // expected-error @+1 {{expected a non-empty tensor name, got ""}}
  %w = moe.weight "" : tensor<256xbf16>
  return
}

// -----

func.func @weight_fp8_without_encoding() {
  // expected-error @+1 {{'moe.weight' op result #0 must be statically shaped bf16, f16 or f32 tensor, or f8E4M3FN tensor with a #moe.block_fp8 encoding, but got 'tensor<200x300xf8E4M3FN>'}}
  %w = moe.weight "w8" : tensor<200x300xf8E4M3FN>
  return
}

// -----

// Weights have static shapes; the ODS constraint rejects a dynamic one.
func.func @weight_dynamic_shape() {
  // expected-error @+1 {{result #0 must be statically shaped bf16, f16 or f32 tensor, or f8E4M3FN tensor with a #moe.block_fp8 encoding, but got 'tensor<?x300xbf16>'}}
  %w = moe.weight "w" : tensor<?x300xbf16>
  return
}

// -----

func.func @weight_other_encoding() {
  // expected-error @+1 {{result #0 must be statically shaped bf16, f16 or f32 tensor, or f8E4M3FN tensor with a #moe.block_fp8 encoding, but got 'tensor<4xbf16, "packed">'}}
  %w = moe.weight "w" : tensor<4xbf16, "packed">
  return
}

// -----

func.func @weight_missing_scale_name() {
  // expected-error @+1 {{'moe.weight' op expected a scale name for block-quantized weight 'w8', got none}}
  %w = moe.weight "w8" : tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>>
  return
}

// -----

func.func @weight_scale_name_unquantized() {
  // expected-error @+1 {{'moe.weight' op expected no scale name for unquantized weight 'w', got 'w_s'}}
  %w = moe.weight "w" scale "w_s" : tensor<200x300xbf16>
  return
}

// -----

func.func @weight_empty_scale_name() {
  // expected-error @+1 {{'moe.weight' op expected a non-empty scale name, got ""}}
  %w = moe.weight "w8" scale "" : tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>>
  return
}

// -----

func.func @weight_quantized_rank3() {
  // expected-error @+1 {{'moe.weight' op expected a rank-2 block-quantized weight, got rank 3}}
  %w = moe.weight "w8" scale "w8_s" : tensor<4x16x32xf8E4M3FN, #moe.block_fp8<128, 128>>
  return
}

//===----------------------------------------------------------------------===//
// moe.slice_heads (valid: kv_b 128x32 = 4 heads of 32 rows)
//===----------------------------------------------------------------------===//

// -----

func.func @slice_heads_rank(%w: tensor<4x32x32xbf16>) {
  // expected-error @+1 {{'moe.slice_heads' op expected a rank-2 weight, got rank 3}}
  %s = moe.slice_heads %w {heads = 4 : i64, offset = 0 : i64, size = 16 : i64} : tensor<4x32x32xbf16> -> tensor<4x16x32xbf16>
  return
}

// -----

func.func @slice_heads_heads(%w: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.slice_heads' op expected a positive heads, got 0}}
  %s = moe.slice_heads %w {heads = 0 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<4x16x32xbf16>
  return
}

// -----

func.func @slice_heads_size(%w: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.slice_heads' op expected a positive size, got 0}}
  %s = moe.slice_heads %w {heads = 4 : i64, offset = 0 : i64, size = 0 : i64} : tensor<128x32xbf16> -> tensor<4x16x32xbf16>
  return
}

// -----

func.func @slice_heads_divide(%w: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.slice_heads' op expected heads to divide the 128 weight rows, got heads = 3}}
  %s = moe.slice_heads %w {heads = 3 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<3x16x32xbf16>
  return
}

// -----

func.func @slice_heads_range(%w: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.slice_heads' op expected 0 <= offset and offset + size <= 32 rows per head, got offset 24 and size 16}}
  %s = moe.slice_heads %w {heads = 4 : i64, offset = 24 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<4x16x32xbf16>
  return
}

// -----

func.func @slice_heads_negative_offset(%w: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.slice_heads' op expected 0 <= offset and offset + size <= 32 rows per head, got offset -1 and size 16}}
  %s = moe.slice_heads %w {heads = 4 : i64, offset = -1 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<4x16x32xbf16>
  return
}

// -----

func.func @slice_heads_result_shape(%w: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.slice_heads' op expected result shape [4, 16, 32], got [4, 16, 16]}}
  %s = moe.slice_heads %w {heads = 4 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<4x16x16xbf16>
  return
}

// -----

func.func @slice_heads_element_type(%w: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.slice_heads' op expected the result to keep the weight's element type and encoding, got 'tensor<4x16x32xf16>' from 'tensor<128x32xbf16>'}}
  %s = moe.slice_heads %w {heads = 4 : i64, offset = 0 : i64, size = 16 : i64} : tensor<128x32xbf16> -> tensor<4x16x32xf16>
  return
}

// -----

func.func @slice_heads_encoding(%w: tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>) {
  // expected-error @+1 {{'moe.slice_heads' op expected the result to keep the weight's element type and encoding, got 'tensor<4x16x32xf8E4M3FN, #moe.block_fp8<64, 64>>' from 'tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>'}}
  %s = moe.slice_heads %w {heads = 4 : i64, offset = 0 : i64, size = 16 : i64}
      : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<4x16x32xf8E4M3FN, #moe.block_fp8<64, 64>>
  return
}

//===----------------------------------------------------------------------===//
// moe.convert_weight
//===----------------------------------------------------------------------===//

// -----

func.func @convert_weight_shape(%b: tensor<16xbf16>) {
  // expected-error @+1 {{'moe.convert_weight' op expected result shape [16], got [8]}}
  %c = moe.convert_weight %b : tensor<16xbf16> -> tensor<8xf32>
  return
}

// -----

func.func @convert_weight_quantized(%w: tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>>) {
  // expected-error @+1 {{'moe.convert_weight' op operand #0 must be statically shaped bf16, f16 or f32 tensor without an encoding}}
  %c = moe.convert_weight %w : tensor<128x32xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<128x32xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.embedding
//===----------------------------------------------------------------------===//

// -----

func.func @embedding_table_rank(%tokens: tensor<?xi32>) {
  %table = moe.weight "embed" : tensor<1024xbf16>
  // expected-error @+1 {{expected a 2-D table, got rank 1}}
  %h = moe.embedding %table[%tokens] : tensor<1024xbf16>, tensor<?xi32> -> tensor<?x256xf32>
  return
}

// -----

func.func @embedding_result_rank(%tokens: tensor<?xi32>) {
  %table = moe.weight "embed" : tensor<1024x256xbf16>
  // expected-error @+1 {{'moe.embedding' op expected result of rank 2, got rank 1}}
  %h = moe.embedding %table[%tokens] : tensor<1024x256xbf16>, tensor<?xi32> -> tensor<?xf32>
  return
}

// -----

func.func @embedding_tokens(%tokens: tensor<5xi32>) {
  %table = moe.weight "embed" : tensor<1024x256xbf16>
  // expected-error @+1 {{expected tokens shape [4], got [5]}}
  %h = moe.embedding %table[%tokens] : tensor<1024x256xbf16>, tensor<5xi32> -> tensor<4x256xf32>
  return
}

// -----

func.func @embedding_width(%tokens: tensor<?xi32>) {
  %table = moe.weight "embed" : tensor<1024x256xbf16>
  // expected-error @+1 {{'moe.embedding' op expected result shape [?, 256], got [?, 128]}}
  %h = moe.embedding %table[%tokens] : tensor<1024x256xbf16>, tensor<?xi32> -> tensor<?x128xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.rms_norm
//===----------------------------------------------------------------------===//

// -----

func.func @rms_norm_rank(%h: tensor<256xf32>, %g: tensor<256xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op expected input of rank 2, got rank 1}}
  %n = moe.rms_norm %h, %g {epsilon = 1.0e-6 : f32} : tensor<256xf32>, tensor<256xf32>
  return
}

// -----

func.func @rms_norm_epsilon(%h: tensor<?x256xf32>, %g: tensor<256xf32>) {
  // expected-error @+1 {{expected a positive epsilon, got 0.000000e+00}}
  %n = moe.rms_norm %h, %g {epsilon = 0.0 : f32} : tensor<?x256xf32>, tensor<256xf32>
  return
}

// -----

func.func @rms_norm_negative_epsilon(%h: tensor<?x256xf32>, %g: tensor<256xf32>) {
  // expected-error @+1 {{expected a positive epsilon, got -1.000000e-06}}
  %n = moe.rms_norm %h, %g {epsilon = -1.0e-6 : f32} : tensor<?x256xf32>, tensor<256xf32>
  return
}

// -----

func.func @rms_norm_weight(%h: tensor<?x256xf32>, %g: tensor<128xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op expected weight shape [256], got [128]}}
  %n = moe.rms_norm %h, %g {epsilon = 1.0e-6 : f32} : tensor<?x256xf32>, tensor<128xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.linear
//===----------------------------------------------------------------------===//

// -----

func.func @linear_input_rank(%x: tensor<64xf32>, %w: tensor<32x64xf16>) {
  // expected-error @+1 {{'moe.linear' op expected input of rank 2, got rank 1}}
  %y = moe.linear %x, %w : tensor<64xf32>, tensor<32x64xf16> -> tensor<?x32xf32>
  return
}

// -----

func.func @linear_result_rank(%x: tensor<?x64xf32>, %w: tensor<32x64xf16>) {
  // expected-error @+1 {{'moe.linear' op expected result of rank 2, got rank 3}}
  %y = moe.linear %x, %w : tensor<?x64xf32>, tensor<32x64xf16> -> tensor<?x1x32xf32>
  return
}

// -----

func.func @linear_result_tokens(%x: tensor<4x64xf32>, %w: tensor<32x64xf16>) {
  // expected-error @+1 {{expected result tokens [4], got [5]}}
  %y = moe.linear %x, %w : tensor<4x64xf32>, tensor<32x64xf16> -> tensor<5x32xf32>
  return
}

// -----

func.func @linear_weight_shape(%x: tensor<?x300xf32>, %w: tensor<200x300xbf16>) {
  // expected-error @+1 {{'moe.linear' op expected weight shape [100, 300], got [200, 300]}}
  %y = moe.linear %x, %w : tensor<?x300xf32>, tensor<200x300xbf16> -> tensor<?x100xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.slice_columns (valid: kv 40 columns, c = 0..32, k_pe = 32..40)
//===----------------------------------------------------------------------===//

// -----

func.func @slice_columns_rank(%kv: tensor<40xf32>) {
  // expected-error @+1 {{'moe.slice_columns' op expected input of rank 2, got rank 1}}
  %c = moe.slice_columns %kv {begin = 0 : i64, width = 32 : i64} : tensor<40xf32> -> tensor<?x32xf32>
  return
}

// -----

func.func @slice_columns_width(%kv: tensor<?x40xf32>) {
  // expected-error @+1 {{'moe.slice_columns' op expected a positive width, got 0}}
  %c = moe.slice_columns %kv {begin = 0 : i64, width = 0 : i64} : tensor<?x40xf32> -> tensor<?x32xf32>
  return
}

// -----

func.func @slice_columns_range(%kv: tensor<?x40xf32>) {
  // expected-error @+1 {{'moe.slice_columns' op expected 0 <= begin and begin + width <= 40 columns, got begin 32 and width 16}}
  %c = moe.slice_columns %kv {begin = 32 : i64, width = 16 : i64} : tensor<?x40xf32> -> tensor<?x16xf32>
  return
}

// -----

func.func @slice_columns_negative_begin(%kv: tensor<?x40xf32>) {
  // expected-error @+1 {{'moe.slice_columns' op expected 0 <= begin and begin + width <= 40 columns, got begin -8 and width 8}}
  %c = moe.slice_columns %kv {begin = -8 : i64, width = 8 : i64} : tensor<?x40xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @slice_columns_result(%kv: tensor<?x40xf32>) {
  // expected-error @+1 {{'moe.slice_columns' op expected result shape [?, 8], got [?, 16]}}
  %c = moe.slice_columns %kv {begin = 32 : i64, width = 8 : i64} : tensor<?x40xf32> -> tensor<?x16xf32>
  return
}

// -----

func.func @slice_columns_tokens(%kv: tensor<4x40xf32>) {
  // expected-error @+1 {{'moe.slice_columns' op expected result shape [4, 8], got [5, 8]}}
  %c = moe.slice_columns %kv {begin = 32 : i64, width = 8 : i64} : tensor<4x40xf32> -> tensor<5x8xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.rope
//===----------------------------------------------------------------------===//

// -----

func.func @rope_rank(%q: tensor<192xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.rope' op expected input of rank 2, got rank 1}}
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>} : tensor<192xf32>, tensor<?xi32>
  return
}

// -----

func.func @rope_heads(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{expected positive heads and head_dim, got 0 and 48}}
  %a = moe.rope %q, %pos {heads = 0 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>} : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @rope_heads_times_head_dim(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{expected heads x head_dim = 160 columns, got 192}}
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 40 : i64, offset = 24 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>} : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @rope_odd_rope_dim(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{expected a positive even rope_dim, got 15}}
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 15 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>} : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @rope_offset(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{expected offset + rope_dim <= head_dim (48), got 56}}
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 40 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>} : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @rope_negative_offset(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{expected offset >= 0, got -2}}
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = -2 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>} : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @rope_theta(%q: tensor<?x192xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{expected a positive theta, got -1.000000e+04}}
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = -1.0e+04 : f32, layout = #moe.rope_layout<interleaved>} : tensor<?x192xf32>, tensor<?xi32>
  return
}

// -----

func.func @rope_positions(%q: tensor<4x192xf32>, %pos: tensor<5xi32>) {
  // expected-error @+1 {{'moe.rope' op expected positions shape [4], got [5]}}
  %a = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64, rope_dim = 16 : i64,
      theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>} : tensor<4x192xf32>, tensor<5xi32>
  return
}

//===----------------------------------------------------------------------===//
// moe.mla_attention (valid shapes: hidden 256, heads 4, q_lora 96, kv_lora 64,
// nope 32, rope 16, v 32: q_a 96x256, q_b 192x96, kv_a 80x256, kv_b 256x64,
// o_proj 256x128)
//===----------------------------------------------------------------------===//

// -----

func.func @mla_input_rank(%x: tensor<256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{'moe.mla_attention' op expected input of rank 2, got rank 1}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_num_heads(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected positive num_heads, kv_lora_rank, qk_nope_head_dim and v_head_dim, got 0, 64, 32, 32}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 0 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

// A negative q_lora_rank is rejected by the same check (the message does not
// print q_lora_rank).
func.func @mla_negative_q_lora_rank(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected q_lora_rank >= 0 (0 = no query compression), got -1}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = -1 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_odd_rope(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected a positive even qk_rope_head_dim, got 15}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 15 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_softmax_scale(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected a positive softmax_scale, got 0.000000e+00}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.0 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_cache_type(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 8>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected cache !moe.latent_cache<64, 16>, got '!moe.latent_cache<64, 8>'}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 8>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 8>)
  return
}

// -----

func.func @mla_new_cache_type(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected new_cache of type '!moe.latent_cache<64, 16>', got '!moe.latent_cache<32, 16>'}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<32, 16>)
  return
}

// -----

func.func @mla_positions(%x: tensor<2x256xf32>, %pos: tensor<3xi32>, %seq: tensor<2xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{'moe.mla_attention' op expected positions shape [2], got [3]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<2x256xf32>, tensor<3xi32>, tensor<2xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<2x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_seq_ids(%x: tensor<2x256xf32>, %pos: tensor<2xi32>, %seq: tensor<3xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected seq_ids shape [2], got [3]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<2x256xf32>, tensor<2xi32>, tensor<3xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<2x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_result(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{'moe.mla_attention' op expected result shape [?, 256], got [?, 128]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x128xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_q_lora_missing_q_a_norm(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected q_a and q_a_norm when q_lora_rank is 96, got q_a and no q_a_norm}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_q_lora_missing_q_a(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected q_a and q_a_norm when q_lora_rank is 96, got no q_a and no q_a_norm}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_no_q_lora_with_q_a(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x256xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected no q_a or q_a_norm when q_lora_rank is 0, got q_a}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x256xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_q_a_shape(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<100x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected q_a shape [96, 256], got [100, 256]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<100x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_q_a_norm_shape(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<64xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected q_a_norm shape [96], got [64]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<64xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

// q_b rows = num_heads x (qk_nope_head_dim + qk_rope_head_dim) = 4 x (32 + 16).
func.func @mla_q_b_rows(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<200x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected q_b shape [192, 96], got [200, 96]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<200x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

// Without q_lora_rank, q_b (the checkpoint's q_proj) reads the hidden state.
func.func @mla_q_proj_cols(%x: tensor<?x160xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<32, 8>,
    %qb: tensor<96x96xbf16>, %kva: tensor<40x160xbf16>, %kvan: tensor<32xbf16>, %kvb: tensor<128x32xbf16>,
    %o: tensor<160x64xbf16>) {
  // expected-error @+1 {{expected q_b shape [96, 160], got [96, 96]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 32 : i64, qk_nope_head_dim = 16 : i64,
       qk_rope_head_dim = 8 : i64, v_head_dim = 16 : i64, softmax_scale = 0.2 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x160xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<96x96xbf16>,
         tensor<40x160xbf16>, tensor<32xbf16>, tensor<128x32xbf16>, tensor<160x64xbf16>) -> (tensor<?x160xf32>, !moe.latent_cache<32, 8>)
  return
}

// -----

// kv_a rows = kv_lora_rank + qk_rope_head_dim = 64 + 16.
func.func @mla_kv_a_rows(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<64x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected kv_a shape [80, 256], got [64, 256]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<64x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

func.func @mla_kv_a_norm(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<80xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected kv_a_norm shape [64], got [80]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<80xbf16>, tensor<256x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

// kv_b rows = num_heads x (qk_nope_head_dim + v_head_dim) = 4 x (32 + 32).
func.func @mla_kv_b(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<192x64xbf16>, %o: tensor<256x128xbf16>) {
  // expected-error @+1 {{expected kv_b shape [256, 64], got [192, 64]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<192x64xbf16>, tensor<256x128xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

// -----

// o_proj = [hidden, num_heads x v_head_dim] = [256, 4 x 32].
func.func @mla_o_proj(%x: tensor<?x256xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %cache: !moe.latent_cache<64, 16>,
    %qa: tensor<96x256xbf16>, %qan: tensor<96xbf16>, %qb: tensor<192x96xbf16>, %kva: tensor<80x256xbf16>,
    %kvan: tensor<64xbf16>, %kvb: tensor<256x64xbf16>, %o: tensor<256x96xbf16>) {
  // expected-error @+1 {{expected o_proj shape [256, 128], got [256, 96]}}
  %r, %c = moe.mla_attention %x, %pos, %seq, %cache q_a(%qa) q_a_norm(%qan) q_b(%qb) kv_a(%kva) kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o)
      {num_heads = 4 : i64, q_lora_rank = 96 : i64, kv_lora_rank = 64 : i64, qk_nope_head_dim = 32 : i64,
       qk_rope_head_dim = 16 : i64, v_head_dim = 32 : i64, softmax_scale = 0.144 : f32, rms_norm_eps = 1.0e-6 : f32,
       rope_theta = 1.0e+04 : f32, rope_layout = #moe.rope_layout<interleaved>}
      : (tensor<?x256xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 16>, tensor<96x256xbf16>, tensor<96xbf16>,
         tensor<192x96xbf16>, tensor<80x256xbf16>, tensor<64xbf16>, tensor<256x64xbf16>, tensor<256x96xbf16>)
      -> (tensor<?x256xf32>, !moe.latent_cache<64, 16>)
  return
}

//===----------------------------------------------------------------------===//
// moe.cache_store (valid: cache <32, 8>, c [T, 32], k_pe [T, 8])
//===----------------------------------------------------------------------===//

// -----

func.func @cache_store_latent_rank(%cache: !moe.latent_cache<32, 8>, %c: tensor<32xf32>, %pe: tensor<?x8xf32>,
                                   %pos: tensor<?xi32>, %seq: tensor<?xi32>) {
  // expected-error @+1 {{'moe.cache_store' op expected latent of rank 2, got rank 1}}
  %c1 = moe.cache_store %cache, %c, %pe, %pos, %seq
      : !moe.latent_cache<32, 8>, tensor<32xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>
  return
}

// -----

func.func @cache_store_latent(%cache: !moe.latent_cache<32, 8>, %c: tensor<?x16xf32>, %pe: tensor<?x8xf32>,
                              %pos: tensor<?xi32>, %seq: tensor<?xi32>) {
  // expected-error @+1 {{'moe.cache_store' op expected latent shape [?, 32], got [?, 16]}}
  %c1 = moe.cache_store %cache, %c, %pe, %pos, %seq
      : !moe.latent_cache<32, 8>, tensor<?x16xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>
  return
}

// -----

func.func @cache_store_rope(%cache: !moe.latent_cache<32, 8>, %c: tensor<4x32xf32>, %pe: tensor<4x16xf32>,
                            %pos: tensor<4xi32>, %seq: tensor<4xi32>) {
  // expected-error @+1 {{'moe.cache_store' op expected rope shape [4, 8], got [4, 16]}}
  %c1 = moe.cache_store %cache, %c, %pe, %pos, %seq
      : !moe.latent_cache<32, 8>, tensor<4x32xf32>, tensor<4x16xf32>, tensor<4xi32>, tensor<4xi32>
  return
}

// -----

func.func @cache_store_positions(%cache: !moe.latent_cache<32, 8>, %c: tensor<4x32xf32>, %pe: tensor<4x8xf32>,
                                 %pos: tensor<5xi32>, %seq: tensor<4xi32>) {
  // expected-error @+1 {{'moe.cache_store' op expected positions shape [4], got [5]}}
  %c1 = moe.cache_store %cache, %c, %pe, %pos, %seq
      : !moe.latent_cache<32, 8>, tensor<4x32xf32>, tensor<4x8xf32>, tensor<5xi32>, tensor<4xi32>
  return
}

// -----

func.func @cache_store_seq_ids(%cache: !moe.latent_cache<32, 8>, %c: tensor<4x32xf32>, %pe: tensor<4x8xf32>,
                               %pos: tensor<4xi32>, %seq: tensor<3xi32>) {
  // expected-error @+1 {{'moe.cache_store' op expected seq_ids shape [4], got [3]}}
  %c1 = moe.cache_store %cache, %c, %pe, %pos, %seq
      : !moe.latent_cache<32, 8>, tensor<4x32xf32>, tensor<4x8xf32>, tensor<4xi32>, tensor<3xi32>
  return
}

//===----------------------------------------------------------------------===//
// moe.head_linear (valid: q [T, 96] = 4 heads x (16 nope + 8 rope), W_UK
// [4, 16, 32] transposed -> [T, 128]; o_lat [T, 128], W_UV [4, 16, 32] -> [T, 64])
//===----------------------------------------------------------------------===//

// -----

func.func @head_linear_input_rank(%q: tensor<96xf32>, %w: tensor<4x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected input of rank 2, got rank 1}}
  %y = moe.head_linear %q, %w {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 16 : i64,
      transpose = true} : tensor<96xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @head_linear_weight_rank(%q: tensor<?x96xf32>, %w: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected a rank-3 [heads, N, K] weight, got rank 2}}
  %y = moe.head_linear %q, %w {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 16 : i64,
      transpose = true} : tensor<?x96xf32>, tensor<64x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @head_linear_heads(%q: tensor<?x96xf32>, %w: tensor<4x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected a positive heads, got 0}}
  %y = moe.head_linear %q, %w {heads = 0 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 16 : i64,
      transpose = true} : tensor<?x96xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @head_linear_in_width_positive(%q: tensor<?x96xf32>, %w: tensor<4x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected a positive in_width, got 0}}
  %y = moe.head_linear %q, %w {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 0 : i64,
      transpose = true} : tensor<?x96xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @head_linear_weight_heads(%q: tensor<?x96xf32>, %w: tensor<2x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected 4 weight heads, got 2}}
  %y = moe.head_linear %q, %w {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 16 : i64,
      transpose = true} : tensor<?x96xf32>, tensor<2x16x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @head_linear_in_slice(%q: tensor<?x96xf32>, %w: tensor<4x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected 0 <= in_offset and in_offset + in_width <= in_stride (24), got 16 + 16}}
  %y = moe.head_linear %q, %w {heads = 4 : i64, in_stride = 24 : i64, in_offset = 16 : i64, in_width = 16 : i64,
      transpose = true} : tensor<?x96xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @head_linear_input_columns(%q: tensor<?x64xf32>, %w: tensor<4x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected at least 88 input columns for 4 heads, got 64}}
  %y = moe.head_linear %q, %w {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 16 : i64,
      transpose = true} : tensor<?x64xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @head_linear_in_width_transposed(%q: tensor<?x96xf32>, %w: tensor<4x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected in_width = 16 (weight dim 1, transposed), got 8}}
  %y = moe.head_linear %q, %w {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 8 : i64,
      transpose = true} : tensor<?x96xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @head_linear_in_width(%o: tensor<?x128xf32>, %w: tensor<4x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected in_width = 32 (weight dim 2), got 16}}
  %y = moe.head_linear %o, %w {heads = 4 : i64, in_stride = 32 : i64, in_offset = 0 : i64, in_width = 16 : i64,
      transpose = false} : tensor<?x128xf32>, tensor<4x16x32xbf16> -> tensor<?x64xf32>
  return
}

// -----

func.func @head_linear_result(%o: tensor<?x128xf32>, %w: tensor<4x16x32xbf16>) {
  // expected-error @+1 {{'moe.head_linear' op expected result shape [?, 64], got [?, 128]}}
  %y = moe.head_linear %o, %w {heads = 4 : i64, in_stride = 32 : i64, in_offset = 0 : i64, in_width = 32 : i64,
      transpose = false} : tensor<?x128xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.latent_attention (valid: heads 4, C 32, R 8, q [T, 96] with stride 24
// and rope at 16, q_lat and result [T, 128])
//===----------------------------------------------------------------------===//

// -----

func.func @latent_attention_q_lat_rank(%ql: tensor<128xf32>, %q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                       %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected q_lat of rank 2, got rank 1}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
  return
}

// -----

func.func @latent_attention_heads(%ql: tensor<?x128xf32>, %q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                  %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected a positive heads, got 0}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 0 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
  return
}

// -----

func.func @latent_attention_softmax_scale(%ql: tensor<?x128xf32>, %q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                          %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected a positive softmax_scale, got 0.000000e+00}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.0 : f32}
      : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
  return
}

// -----

func.func @latent_attention_cache(%ql: tensor<?x128xf32>, %q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                  %cache: !moe.latent_cache<64, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected cache !moe.latent_cache<32, 8>, got '!moe.latent_cache<64, 8>'}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<64, 8>) -> tensor<?x128xf32>
  return
}

// -----

func.func @latent_attention_q_lat(%ql: tensor<?x64xf32>, %q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                  %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected q_lat shape [?, 128], got [?, 64]}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x64xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
  return
}

// -----

func.func @latent_attention_q_tokens(%ql: tensor<4x128xf32>, %q: tensor<5x96xf32>, %pos: tensor<4xi32>, %seq: tensor<4xi32>,
                                     %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected q shape [4, 96], got [5, 96]}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<4x128xf32>, tensor<5x96xf32>, tensor<4xi32>, tensor<4xi32>, !moe.latent_cache<32, 8>) -> tensor<4x128xf32>
  return
}

// -----

func.func @latent_attention_q_rope(%ql: tensor<?x128xf32>, %q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                   %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected 0 <= q_rope_offset and q_rope_offset + rope_dim <= q_stride (24), got 20 + 8}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 20 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
  return
}

// -----

func.func @latent_attention_q_width(%ql: tensor<?x128xf32>, %q: tensor<?x80xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                    %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected q shape [?, 96], got [?, 80]}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x128xf32>, tensor<?x80xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
  return
}

// -----

func.func @latent_attention_positions(%ql: tensor<4x128xf32>, %q: tensor<4x96xf32>, %pos: tensor<3xi32>, %seq: tensor<4xi32>,
                                      %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected positions shape [4], got [3]}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<4x128xf32>, tensor<4x96xf32>, tensor<3xi32>, tensor<4xi32>, !moe.latent_cache<32, 8>) -> tensor<4x128xf32>
  return
}

// -----

func.func @latent_attention_seq_ids(%ql: tensor<4x128xf32>, %q: tensor<4x96xf32>, %pos: tensor<4xi32>, %seq: tensor<5xi32>,
                                    %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected seq_ids shape [4], got [5]}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<4x128xf32>, tensor<4x96xf32>, tensor<4xi32>, tensor<5xi32>, !moe.latent_cache<32, 8>) -> tensor<4x128xf32>
  return
}

// -----

func.func @latent_attention_result(%ql: tensor<?x128xf32>, %q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                   %cache: !moe.latent_cache<32, 8>) {
  // expected-error @+1 {{'moe.latent_attention' op expected result shape [?, 128], got [?, 64]}}
  %o = moe.latent_attention %ql, %q, %pos, %seq, %cache {heads = 4 : i64, latent_dim = 32 : i64, rope_dim = 8 : i64,
      q_stride = 24 : i64, q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>) -> tensor<?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.expanded_attention (valid: heads 4, nope 16, rope 8, v 16, C 32:
// q [T, 96], kv_b [128, 32], result [T, 64])
//===----------------------------------------------------------------------===//

// -----

func.func @expanded_attention_q_rank(%q: tensor<96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                     %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected q of rank 2, got rank 1}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @expanded_attention_heads(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                    %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected a positive heads, got -4}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = -4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @expanded_attention_nope(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                   %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected a positive nope_dim, got 0}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 0 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @expanded_attention_v(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected a positive v_dim, got 0}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 0 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @expanded_attention_softmax_scale(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                            %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected a positive softmax_scale, got -2.000000e-01}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = -0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @expanded_attention_cache(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                    %cache: !moe.latent_cache<32, 16>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected cache !moe.latent_cache<32, 8>, got '!moe.latent_cache<32, 16>'}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 16>, tensor<128x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @expanded_attention_q(%q: tensor<?x80xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected q shape [?, 96], got [?, 80]}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x80xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @expanded_attention_positions(%q: tensor<2x96xf32>, %pos: tensor<3xi32>, %seq: tensor<2xi32>,
                                        %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected positions shape [2], got [3]}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<2x96xf32>, tensor<3xi32>, tensor<2xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<2x64xf32>
  return
}

// -----

func.func @expanded_attention_seq_ids(%q: tensor<2x96xf32>, %pos: tensor<2xi32>, %seq: tensor<1xi32>,
                                      %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected seq_ids shape [2], got [1]}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<2x96xf32>, tensor<2xi32>, tensor<1xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<2x64xf32>
  return
}

// -----

func.func @expanded_attention_kv_b(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                   %cache: !moe.latent_cache<32, 8>, %kvb: tensor<96x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected kv_b shape [128, 32], got [96, 32]}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<96x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @expanded_attention_result(%q: tensor<?x96xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                                     %cache: !moe.latent_cache<32, 8>, %kvb: tensor<128x32xbf16>) {
  // expected-error @+1 {{'moe.expanded_attention' op expected result shape [?, 64], got [?, 128]}}
  %o = moe.expanded_attention %q, %pos, %seq, %cache, %kvb {heads = 4 : i64, nope_dim = 16 : i64, rope_dim = 8 : i64,
      v_dim = 16 : i64, latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
      : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>, tensor<128x32xbf16>) -> tensor<?x128xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.router (valid: 4 experts of width 64, top_k 2, n_group 2, topk_group 1)
//===----------------------------------------------------------------------===//

// -----

func.func @router_input_rank(%f: tensor<64xf32>, %gate: tensor<4x64xbf16>) {
  // expected-error @+1 {{'moe.router' op expected input of rank 2, got rank 1}}
  %idx, %w = moe.router %f, %gate {top_k = 2 : i64, n_group = 1 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<softmax>, group_score = #moe.group_score<max>, norm_topk_prob = false,
      routed_scaling_factor = 1.0 : f32} : (tensor<64xf32>, tensor<4x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_gate_rank(%f: tensor<?x64xf32>, %gate: tensor<64xbf16>) {
  // expected-error @+1 {{expected a 2-D gate, got rank 1}}
  %idx, %w = moe.router %f, %gate {top_k = 2 : i64, n_group = 1 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<softmax>, group_score = #moe.group_score<max>, norm_topk_prob = false,
      routed_scaling_factor = 1.0 : f32} : (tensor<?x64xf32>, tensor<64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_gate_columns(%f: tensor<?x64xf32>, %gate: tensor<4x32xbf16>) {
  // expected-error @+1 {{expected gate columns 64, got 32}}
  %idx, %w = moe.router %f, %gate {top_k = 2 : i64, n_group = 1 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<softmax>, group_score = #moe.group_score<max>, norm_topk_prob = false,
      routed_scaling_factor = 1.0 : f32} : (tensor<?x64xf32>, tensor<4x32xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_bias(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<8xf32>) {
  // expected-error @+1 {{'moe.router' op expected bias shape [4], got [8]}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<8xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_n_group(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>) {
  // expected-error @+1 {{expected n_group >= 1, got 0}}
  %idx, %w = moe.router %f, %gate {top_k = 2 : i64, n_group = 0 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<softmax>, group_score = #moe.group_score<max>, norm_topk_prob = false,
      routed_scaling_factor = 1.0 : f32} : (tensor<?x64xf32>, tensor<4x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_topk_group_above_n_group(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{expected 1 <= topk_group <= n_group (2), got 3}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 2 : i64, topk_group = 3 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_topk_group_zero(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{expected 1 <= topk_group <= n_group (2), got 0}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 2 : i64, topk_group = 0 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_n_group_divides(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{expected n_group to divide the 4 experts, got n_group = 3}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 1 : i64, n_group = 3 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<max>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x1xi32>, tensor<?x1xf32>)
  return
}

// -----

func.func @router_top2_sum_group_size(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{expected at least 2 experts per group for top2_sum, got 1}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 4 : i64, topk_group = 2 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

// top_k <= topk_group x (experts / n_group) = 1 x (4 / 2).
func.func @router_top_k_above_kept(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{expected 1 <= top_k <= 2 experts in the kept groups, got 3}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 3 : i64, n_group = 2 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x3xi32>, tensor<?x3xf32>)
  return
}

// -----

func.func @router_top_k_zero(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>) {
  // expected-error @+1 {{expected 1 <= top_k <= 4 experts in the kept groups, got 0}}
  %idx, %w = moe.router %f, %gate {top_k = 0 : i64, n_group = 1 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<softmax>, group_score = #moe.group_score<max>, norm_topk_prob = false,
      routed_scaling_factor = 1.0 : f32} : (tensor<?x64xf32>, tensor<4x64xbf16>) -> (tensor<?x0xi32>, tensor<?x0xf32>)
  return
}

// -----

func.func @router_scaling_factor(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{expected a positive routed_scaling_factor, got 0.000000e+00}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 0.0 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_indices(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{'moe.router' op expected indices shape [?, 2], got [?, 3]}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<?x3xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_weights(%f: tensor<3x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{'moe.router' op expected weights shape [3, 2], got [4, 2]}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32}
      : (tensor<3x64xf32>, tensor<4x64xbf16>, tensor<4xf32>) -> (tensor<3x2xi32>, tensor<4x2xf32>)
  return
}

//===----------------------------------------------------------------------===//
// moe.routed_experts (valid: hidden 64, experts of width 32, top_k 2)
//===----------------------------------------------------------------------===//

// -----

func.func @experts_input_rank(%f: tensor<64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.routed_experts' op expected input of rank 2, got rank 1}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0] up [%u0] down [%d0]
      : (tensor<64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>)
      -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_result(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.routed_experts' op expected result shape [?, 64], got [?, 32]}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0] up [%u0] down [%d0]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>)
      -> tensor<?x32xf32>
  return
}

// -----

func.func @experts_indices_rank(%f: tensor<?x64xf32>, %idx: tensor<?xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>) {
  // expected-error @+1 {{expected indices of rank 2, got rank 1}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0] up [%u0] down [%d0]
      : (tensor<?x64xf32>, tensor<?xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>)
      -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_indices_tokens(%f: tensor<4x64xf32>, %idx: tensor<5x2xi32>, %w: tensor<5x2xf32>,
    %g0: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.routed_experts' op expected indices shape [4, 2], got [5, 2]}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0] up [%u0] down [%d0]
      : (tensor<4x64xf32>, tensor<5x2xi32>, tensor<5x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>)
      -> tensor<4x64xf32>
  return
}

// -----

func.func @experts_weights(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x1xf32>,
    %g0: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.routed_experts' op expected weights shape [?, 2], got [?, 1]}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0] up [%u0] down [%d0]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x1xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>)
      -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_none(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>) {
  // expected-error @+1 {{expected at least one expert, got 0}}
  %r = moe.routed_experts %f, %idx, %w gate [] up [] down []
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_count(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>) {
  // expected-error @+1 {{expected 2 up and down weights, got 1 and 2}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0, %g1] up [%u0] down [%d0, %d1]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_gate_rank(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<2048xbf16>, %u0: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>) {
  // expected-error @+1 {{expected expert 1 gate of rank 2, got rank 1}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0, %g1] up [%u0, %u0] down [%d0, %d0]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<2048xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_gate_shape(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x32xbf16>, %u0: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>) {
  // expected-error @+1 {{expected expert 0 gate shape [32, 64], got [32, 32]}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0] up [%u0] down [%d0]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x32xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>)
      -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_up_shape(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x64xbf16>, %u0: tensor<16x64xbf16>, %d0: tensor<64x32xbf16>) {
  // expected-error @+1 {{expected expert 0 up shape [32, 64], got [16, 64]}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0] up [%u0] down [%d0]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<16x64xbf16>, tensor<64x32xbf16>)
      -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_down_shape(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>, %d1: tensor<64x16xbf16>) {
  // expected-error @+1 {{expected expert 1 down shape [64, 32], got [64, 16]}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0, %g0] up [%u0, %u0] down [%d0, %d1]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x16xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @experts_width(%f: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %g0: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>,
    %g1: tensor<16x64xbf16>, %u1: tensor<16x64xbf16>, %d1: tensor<64x16xbf16>) {
  // expected-error @+1 {{expected every expert of width 32, got 16 for expert 1}}
  %r = moe.routed_experts %f, %idx, %w gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1]
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<32x64xbf16>, tensor<16x64xbf16>, tensor<32x64xbf16>,
         tensor<16x64xbf16>, tensor<64x32xbf16>, tensor<64x16xbf16>) -> tensor<?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.moe_layer (valid: hidden 64, 4 experts of width 32, top_k 2, n_group 2,
// topk_group 1, a bias, shared experts of width 32)
//===----------------------------------------------------------------------===//

// -----

func.func @moe_layer_input_rank(%f: tensor<64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected input of rank 2, got rank 1}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_result(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected result shape [?, 64], got [?, 32]}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x32xf32>
  return
}

// -----

func.func @moe_layer_gate_rank(%f: tensor<?x64xf32>, %gate: tensor<64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected a 2-D gate, got rank 1}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_gate_columns(%f: tensor<?x64xf32>, %gate: tensor<4x32xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected gate columns 64, got 32}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x32xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_bias(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<8xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected bias shape [4], got [8]}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<8xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_n_group(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected n_group >= 1, got 0}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 0 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_topk_group(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected 1 <= topk_group <= n_group (2), got 3}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 3 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_n_group_divides(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected n_group to divide the 4 experts, got n_group = 3}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 1 : i64, n_group = 3 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<max>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_top2_sum_group_size(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected at least 2 experts per group for top2_sum, got 1}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 4 : i64, topk_group = 2 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

// top_k <= E when there is one group.
func.func @moe_layer_top_k_above_experts(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected 1 <= top_k <= 4 experts in the kept groups, got 5}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 5 : i64, n_group = 1 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_scaling_factor(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected a positive routed_scaling_factor, got 0.000000e+00}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 0.0 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_expert_count(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %u0: tensor<32x64xbf16>,
    %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>,
    %d2: tensor<64x32xbf16>, %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected 4 experts (the gate's rows), got 3}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2] up [%u0, %u1, %u2] down [%d0, %d1, %d2]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_up_down_count(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>,
    %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>, %sgate: tensor<32x64xbf16>,
    %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected 4 up and down weights, got 3 and 4}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_expert_shape(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<32x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected expert 2 down shape [64, 32], got [32, 32]}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<32x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_expert_width(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<16x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<16x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x16xbf16>,
    %sgate: tensor<32x64xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected every expert of width 32, got 16 for expert 3}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<16x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<16x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x16xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_shared_partial(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected shared_gate, shared_up and shared_down together or none of them, got only shared_gate and shared_down}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up() down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_shared_up_only(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sup: tensor<32x64xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected shared_gate, shared_up and shared_down together or none of them, got only shared_up}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate() up(%sup) down()
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<32x64xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_shared_gate_rank(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<2048xbf16>, %sup: tensor<32x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected shared gate of rank 2, got rank 1}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<2048xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @moe_layer_shared_down(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xf32>,
    %g0: tensor<32x64xbf16>, %g1: tensor<32x64xbf16>, %g2: tensor<32x64xbf16>, %g3: tensor<32x64xbf16>,
    %u0: tensor<32x64xbf16>, %u1: tensor<32x64xbf16>, %u2: tensor<32x64xbf16>, %u3: tensor<32x64xbf16>,
    %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>, %d2: tensor<64x32xbf16>, %d3: tensor<64x32xbf16>,
    %sgate: tensor<48x64xbf16>, %sup: tensor<48x64xbf16>, %sdown: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.moe_layer' op expected shared down shape [64, 48], got [64, 32]}}
  %m = moe.moe_layer %f, %gate bias %bias experts gate [%g0, %g1, %g2, %g3] up [%u0, %u1, %u2, %u3] down [%d0, %d1, %d2, %d3]
      shared gate(%sgate) up(%sup) down(%sdown)
      {top_k = 2 : i64, n_group = 2 : i64, topk_group = 1 : i64, score_func = #moe.score_func<sigmoid>,
       group_score = #moe.group_score<top2_sum>, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>,
         tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
         tensor<48x64xbf16>, tensor<48x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.swiglu (valid: hidden 64, width 32)
//===----------------------------------------------------------------------===//

// -----

func.func @swiglu_input_rank(%f: tensor<64xf32>, %g: tensor<32x64xbf16>, %u: tensor<32x64xbf16>, %d: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.swiglu' op expected input of rank 2, got rank 1}}
  %s = moe.swiglu %f gate(%g) up(%u) down(%d)
      : (tensor<64xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @swiglu_result(%f: tensor<?x64xf32>, %g: tensor<32x64xbf16>, %u: tensor<32x64xbf16>, %d: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.swiglu' op expected result shape [?, 64], got [?, 32]}}
  %s = moe.swiglu %f gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x32xf32>
  return
}

// -----

func.func @swiglu_gate_rank(%f: tensor<?x64xf32>, %g: tensor<2048xbf16>, %u: tensor<32x64xbf16>, %d: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.swiglu' op expected gate of rank 2, got rank 1}}
  %s = moe.swiglu %f gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<2048xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @swiglu_gate_shape(%f: tensor<?x64xf32>, %g: tensor<32x32xbf16>, %u: tensor<32x64xbf16>, %d: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.swiglu' op expected gate shape [32, 64], got [32, 32]}}
  %s = moe.swiglu %f gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<32x32xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @swiglu_up_shape(%f: tensor<?x64xf32>, %g: tensor<32x64xbf16>, %u: tensor<16x64xbf16>, %d: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.swiglu' op expected up shape [32, 64], got [16, 64]}}
  %s = moe.swiglu %f gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<16x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @swiglu_down_shape(%f: tensor<?x64xf32>, %g: tensor<32x64xbf16>, %u: tensor<32x64xbf16>, %d: tensor<64x16xbf16>) {
  // expected-error @+1 {{'moe.swiglu' op expected down shape [64, 32], got [64, 16]}}
  %s = moe.swiglu %f gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x16xbf16>) -> tensor<?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.logits
//===----------------------------------------------------------------------===//

// -----

func.func @logits_input_rank(%h: tensor<256xf32>, %lm: tensor<1024x256xbf16>) {
  // expected-error @+1 {{'moe.logits' op expected input of rank 2, got rank 1}}
  %l = moe.logits %h, %lm : tensor<256xf32>, tensor<1024x256xbf16> -> tensor<?x1024xf32>
  return
}

// -----

func.func @logits_lm_head_rank(%h: tensor<?x256xf32>, %lm: tensor<256xbf16>) {
  // expected-error @+1 {{expected a 2-D lm_head, got rank 1}}
  %l = moe.logits %h, %lm : tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x1024xf32>
  return
}

// -----

func.func @logits_lm_head_columns(%h: tensor<?x256xf32>, %lm: tensor<1024x128xbf16>) {
  // expected-error @+1 {{expected lm_head columns 256, got 128}}
  %l = moe.logits %h, %lm : tensor<?x256xf32>, tensor<1024x128xbf16> -> tensor<?x1024xf32>
  return
}

// -----

func.func @logits_width(%h: tensor<?x256xf32>, %lm: tensor<1024x256xbf16>) {
  // expected-error @+1 {{'moe.logits' op expected result shape [?, 1024], got [?, 512]}}
  %l = moe.logits %h, %lm : tensor<?x256xf32>, tensor<1024x256xbf16> -> tensor<?x512xf32>
  return
}

// -----

// A rank-0 expert weight is reported, not dereferenced.
func.func @experts_rank0(%f: tensor<?x64xf32>, %idx: tensor<?x1xi32>, %w: tensor<?x1xf32>,
                         %g: tensor<bf16>, %u: tensor<32x64xbf16>, %d: tensor<64x32xbf16>) {
  // expected-error @+1 {{expected expert 0 gate of rank 2, got rank 0}}
  %r = moe.routed_experts %f, %idx, %w gate [%g] up [%u] down [%d]
      : (tensor<?x64xf32>, tensor<?x1xi32>, tensor<?x1xf32>, tensor<bf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

// The router reads its correction bias in f32; another dtype needs a moe.convert_weight.
func.func @router_bias_bf16(%f: tensor<?x64xf32>, %gate: tensor<4x64xbf16>, %bias: tensor<4xbf16>) {
  // expected-error @+1 {{'moe.router' op operand #2 must be statically shaped f32 tensor without an encoding, but got 'tensor<4xbf16>'}}
  %idx, %w = moe.router %f, %gate bias %bias {top_k = 2 : i64, n_group = 1 : i64, topk_group = 1 : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<max>, norm_topk_prob = true,
      routed_scaling_factor = 2.5 : f32} : (tensor<?x64xf32>, tensor<4x64xbf16>, tensor<4xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

// An FP8 expert must carry its block quantization in its type.
func.func @experts_fp8_without_encoding(%f: tensor<?x160xf32>, %idx: tensor<?x1xi32>, %w: tensor<?x1xf32>,
    %g: tensor<300x160xf8E4M3FN>, %u: tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>,
    %d: tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>) {
  // expected-error @+1 {{'moe.routed_experts' op operand #3 must be variadic of statically shaped bf16, f16 or f32 tensor, or f8E4M3FN tensor with a #moe.block_fp8 encoding, but got 'tensor<300x160xf8E4M3FN>'}}
  %r = moe.routed_experts %f, %idx, %w gate [%g] up [%u] down [%d]
      : (tensor<?x160xf32>, tensor<?x1xi32>, tensor<?x1xf32>, tensor<300x160xf8E4M3FN>,
         tensor<300x160xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<160x300xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x160xf32>
  return
}

// -----

func.func @linear_fp8_without_encoding(%x: tensor<?x300xf32>, %w8: tensor<200x300xf8E4M3FN>) {
  // expected-error @+1 {{'moe.linear' op operand #1 must be statically shaped bf16, f16 or f32 tensor, or f8E4M3FN tensor with a #moe.block_fp8 encoding, but got 'tensor<200x300xf8E4M3FN>'}}
  %a = moe.linear %x, %w8 : tensor<?x300xf32>, tensor<200x300xf8E4M3FN> -> tensor<?x200xf32>
  return
}

// -----

func.func @embedding_quantized_table(%tokens: tensor<?xi32>, %table: tensor<1024x256xf8E4M3FN, #moe.block_fp8<128, 128>>) {
  // expected-error @+1 {{'moe.embedding' op operand #0 must be statically shaped bf16, f16 or f32 tensor without an encoding}}
  %h = moe.embedding %table[%tokens] : tensor<1024x256xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<?xi32> -> tensor<?x256xf32>
  return
}

// -----

// moe.add_rms_norm

func.func @add_rms_norm_bad_epsilon(%a: tensor<?x256xf32>, %b: tensor<?x256xf32>, %g: tensor<256xbf16>) {
  // expected-error @+1 {{'moe.add_rms_norm' op expected a positive epsilon, got 0}}
  %s, %n = moe.add_rms_norm %a, %b, %g {epsilon = 0.0 : f32} : tensor<?x256xf32>, tensor<256xbf16>
  return
}

// -----

func.func @add_rms_norm_weight_width(%a: tensor<?x256xf32>, %b: tensor<?x256xf32>, %g: tensor<128xbf16>) {
  // expected-error @+1 {{'moe.add_rms_norm' op expected weight shape [256], got [128]}}
  %s, %n = moe.add_rms_norm %a, %b, %g {epsilon = 1.0e-6 : f32} : tensor<?x256xf32>, tensor<128xbf16>
  return
}

// -----

// moe.concat_weights

func.func @concat_weights_one(%a: tensor<128x256xbf16>) {
  // expected-error @+1 {{'moe.concat_weights' op expected at least 2 weights, got 1}}
  %w = moe.concat_weights %a : tensor<128x256xbf16> -> tensor<128x256xbf16>
  return
}

// -----

func.func @concat_weights_columns(%a: tensor<128x256xbf16>, %b: tensor<80x128xbf16>) {
  // expected-error @+1 {{'moe.concat_weights' op expected every weight to have 256 columns and the type of the first, got 'tensor<80x128xbf16>' for weight 1}}
  %w = moe.concat_weights %a, %b : tensor<128x256xbf16>, tensor<80x128xbf16> -> tensor<208x256xbf16>
  return
}

// -----

func.func @concat_weights_types(%a: tensor<128x256xbf16>, %b: tensor<80x256xf32>) {
  // expected-error @+1 {{'moe.concat_weights' op expected every weight to have 256 columns and the type of the first, got 'tensor<80x256xf32>' for weight 1}}
  %w = moe.concat_weights %a, %b : tensor<128x256xbf16>, tensor<80x256xf32> -> tensor<208x256xbf16>
  return
}

// -----

func.func @concat_weights_partial_block(%a: tensor<96x256xf8E4M3FN, #moe.block_fp8<128, 128>>, %b: tensor<80x256xf8E4M3FN, #moe.block_fp8<128, 128>>) {
  // expected-error @+1 {{'moe.concat_weights' op expected weight 0 to have a multiple of the 128-row scale block, got 96 rows}}
  %w = moe.concat_weights %a, %b : tensor<96x256xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<80x256xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<176x256xf8E4M3FN, #moe.block_fp8<128, 128>>
  return
}

// -----

func.func @concat_weights_result(%a: tensor<128x256xbf16>, %b: tensor<80x256xbf16>) {
  // expected-error @+1 {{'moe.concat_weights' op expected the result 208x256 with the weights' element type and encoding, got 'tensor<200x256xbf16>'}}
  %w = moe.concat_weights %a, %b : tensor<128x256xbf16>, tensor<80x256xbf16> -> tensor<200x256xbf16>
  return
}

// -----

func.func @concat_weights_interleave_zero(%a: tensor<32x64xbf16>, %b: tensor<32x64xbf16>) {
  // expected-error @+1 {{'moe.concat_weights' op expected a positive interleave, got 0}}
  %w = moe.concat_weights %a, %b {interleave = 0 : i64} : tensor<32x64xbf16>, tensor<32x64xbf16> -> tensor<64x64xbf16>
  return
}

// -----

func.func @concat_weights_interleave_rows(%a: tensor<32x64xbf16>, %b: tensor<16x64xbf16>) {
  // expected-error @+1 {{'moe.concat_weights' op expected interleaved weights of 32 rows each, got 16 for weight 1}}
  %w = moe.concat_weights %a, %b {interleave = 16 : i64} : tensor<32x64xbf16>, tensor<16x64xbf16> -> tensor<48x64xbf16>
  return
}

// -----

func.func @concat_weights_interleave_block(%a: tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>>, %b: tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>>) {
  // expected-error @+1 {{'moe.concat_weights' op expected an interleave of whole 128-row scale blocks, got 64}}
  %w = moe.concat_weights %a, %b {interleave = 64 : i64} : tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<256x64xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<512x64xf8E4M3FN, #moe.block_fp8<128, 128>>
  return
}

// -----

func.func @fused_swiglu_odd(%x: tensor<?x64xf32>, %gu: tensor<63x64xbf16>, %d: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.fused_swiglu' op expected gate_up of an even number of rows (gate and up), got 'tensor<63x64xbf16>'}}
  %y = moe.fused_swiglu %x gate_up(%gu) down(%d) {gate_up_rows = 16 : i64}
      : (tensor<?x64xf32>, tensor<63x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @fused_swiglu_unit(%x: tensor<?x64xf32>, %gu: tensor<64x64xbf16>, %d: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.fused_swiglu' op expected a positive gate_up_rows, got 0}}
  %y = moe.fused_swiglu %x gate_up(%gu) down(%d) {gate_up_rows = 0 : i64}
      : (tensor<?x64xf32>, tensor<64x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @fused_swiglu_block(%x: tensor<?x64xf32>, %gu: tensor<192x64xf8E4M3FN, #moe.block_fp8<128, 128>>, %d: tensor<64x96xf8E4M3FN, #moe.block_fp8<128, 128>>) {
  // expected-error @+1 {{'moe.fused_swiglu' op expected gate_up_rows (128) and the inner width (96) in whole 128-row scale blocks}}
  %y = moe.fused_swiglu %x gate_up(%gu) down(%d) {gate_up_rows = 128 : i64}
      : (tensor<?x64xf32>, tensor<192x64xf8E4M3FN, #moe.block_fp8<128, 128>>, tensor<64x96xf8E4M3FN, #moe.block_fp8<128, 128>>) -> tensor<?x64xf32>
  return
}

// -----

func.func @fused_swiglu_down(%x: tensor<?x64xf32>, %gu: tensor<64x64xbf16>, %d: tensor<64x16xbf16>) {
  // expected-error @+1 {{'moe.fused_swiglu' op expected down}}
  %y = moe.fused_swiglu %x gate_up(%gu) down(%d) {gate_up_rows = 16 : i64}
      : (tensor<?x64xf32>, tensor<64x64xbf16>, tensor<64x16xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @fused_routed_experts_width(%x: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %gu0: tensor<64x64xbf16>, %gu1: tensor<32x64xbf16>, %d0: tensor<64x32xbf16>, %d1: tensor<64x16xbf16>) {
  // expected-error @+1 {{'moe.fused_routed_experts' op expected every expert of width 32, got 16 for expert 1}}
  %y = moe.fused_routed_experts %x, %idx, %w gate_up [%gu0, %gu1] down [%d0, %d1] {gate_up_rows = 16 : i64}
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<64x64xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>, tensor<64x16xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @fused_routed_experts_down(%x: tensor<?x64xf32>, %idx: tensor<?x2xi32>, %w: tensor<?x2xf32>,
    %gu0: tensor<64x64xbf16>, %d0: tensor<64x32xbf16>, %d1: tensor<64x32xbf16>) {
  // expected-error @+1 {{'moe.fused_routed_experts' op expected 1 down weights, got 2}}
  %y = moe.fused_routed_experts %x, %idx, %w gate_up [%gu0] down [%d0, %d1] {gate_up_rows = 16 : i64}
      : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<64x64xbf16>,
         tensor<64x32xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return
}

// -----

// A quantized weight is requantized only from FP8 to int8.
func.func @quantize_fp8_again() {
  %w = moe.weight "w" scale "w.s" : tensor<256x128xf8E4M3FN, #moe.block_fp8<128, 128>>
  // expected-error @+1 {{'moe.quantize_weight' op expected an unquantized weight, or an FP8 one requantized to int8, got 'tensor<256x128xf8E4M3FN, #moe.block_fp8<128, 128>>' -> 'tensor<256x128xf8E4M3FN, #moe.block_fp8<64, 64>>'}}
  %q = moe.quantize_weight %w : tensor<256x128xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<256x128xf8E4M3FN, #moe.block_fp8<64, 64>>
  return
}

// -----

// moe.activations is bf16, on an op that multiplies by weights.
func.func @activations_f16(%x: tensor<?x64xf32>, %w: tensor<32x64xbf16>) {
  // expected-error @+1 {{expected 'moe.activations' to be bf16 or f8E4M3FN, got f16}}
  %y = moe.linear %x, %w {moe.activations = f16} : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
  return
}

// -----

func.func @activations_on_norm(%x: tensor<?x64xf32>, %w: tensor<64xbf16>) {
  // expected-error @+1 {{expected 'moe.activations' on a step op that multiplies by weights, got it on 'moe.rms_norm'}}
  %y = moe.rms_norm %x, %w {epsilon = 1.0e-06 : f32, moe.activations = bf16} : tensor<?x64xf32>, tensor<64xbf16>
  return
}
