// RUN: moec-opt %s -split-input-file -verify-diagnostics -moe-quantize-fp8

// The errors of -moe-quantize-fp8 (the pass itself: tests/lit/Transforms/moe-quantize-fp8.mlir).

// A weight that a product reads but that is not 2-D (an unsliced per-head
// weight) has no 128x128 blocks.
func.func @rank3(%q: tensor<?x96xf32>) -> tensor<?x128xf32> {
  // expected-error@+1 {{moe-quantize-fp8: cannot quantize 'w_uk': expected a 2-D weight, got 'tensor<4x16x32xbf16>'}}
  %w = moe.weight "w_uk" : tensor<4x16x32xbf16>
  %y = moe.head_linear %q, %w {heads = 4 : i64, in_stride = 24 : i64, in_offset = 0 : i64, in_width = 16 : i64, transpose = true} : tensor<?x96xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}
