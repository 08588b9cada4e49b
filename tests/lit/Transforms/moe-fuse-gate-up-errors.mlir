// RUN: moec-opt %s -moe-fuse-gate-up='rows=0' -verify-diagnostics -o /dev/null

// A unit of no rows is refused, naming the pass and the value.
// expected-error @+1 {{moe-fuse-gate-up: rows must be at least 1, got 0}}
func.func @zero(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %g = moe.weight "g" : tensor<32x64xbf16>
  %u = moe.weight "u" : tensor<32x64xbf16>
  %d = moe.weight "d" : tensor<64x32xbf16>
  %y = moe.swiglu %x gate(%g) up(%u) down(%d)
      : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
