// RUN: moec-opt %s -verify-diagnostics -moe-quantize-fp8='block=0'

// The block option of -moe-quantize-fp8 must be positive.

// expected-error@+1 {{moe-quantize-fp8: block must be at least 1, got 0}}
func.func @bad_block(%x: tensor<?x160xf32>) -> tensor<?x300xf32> {
  %w = moe.weight "w" : tensor<300x160xbf16>
  %y = moe.linear %x, %w : tensor<?x160xf32>, tensor<300x160xbf16> -> tensor<?x300xf32>
  return %y : tensor<?x300xf32>
}
