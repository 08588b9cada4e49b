// RUN: moec-opt %s -canonicalize -split-input-file | FileCheck %s
// The folders of the moe dialect (dialects/lib/Moe/IR/MoeCanonicalize.cpp).

// A slice of every column is its input.
// CHECK-LABEL: func @slice_columns_full_width
// CHECK-SAME: (%[[X:.*]]: tensor<?x40xf32>)
// CHECK-NOT: moe.slice_columns
// CHECK: return %[[X]]
func.func @slice_columns_full_width(%x: tensor<?x40xf32>) -> tensor<?x40xf32> {
  %s = moe.slice_columns %x {begin = 0 : i64, width = 40 : i64} : tensor<?x40xf32> -> tensor<?x40xf32>
  return %s : tensor<?x40xf32>
}

// -----

// A slice of a slice reads the original input at the summed offset.
// CHECK-LABEL: func @slice_columns_of_slice
// CHECK-SAME: (%[[X:.*]]: tensor<?x40xf32>)
// CHECK: %[[S:.*]] = moe.slice_columns %[[X]] {begin = 34 : i64, width = 4 : i64} : tensor<?x40xf32> -> tensor<?x4xf32>
// CHECK-NOT: moe.slice_columns
// CHECK: return %[[S]]
func.func @slice_columns_of_slice(%x: tensor<?x40xf32>) -> tensor<?x4xf32> {
  %pe = moe.slice_columns %x {begin = 32 : i64, width = 8 : i64} : tensor<?x40xf32> -> tensor<?x8xf32>
  %s = moe.slice_columns %pe {begin = 2 : i64, width = 4 : i64} : tensor<?x8xf32> -> tensor<?x4xf32>
  return %s : tensor<?x4xf32>
}

// -----

// Both folds together: the full-width outer slice goes, the inner one stays.
// CHECK-LABEL: func @slice_columns_chain
// CHECK-SAME: (%[[X:.*]]: tensor<?x40xf32>)
// CHECK: %[[S:.*]] = moe.slice_columns %[[X]] {begin = 0 : i64, width = 32 : i64}
// CHECK-NEXT: return %[[S]]
func.func @slice_columns_chain(%x: tensor<?x40xf32>) -> tensor<?x32xf32> {
  %c = moe.slice_columns %x {begin = 0 : i64, width = 32 : i64} : tensor<?x40xf32> -> tensor<?x32xf32>
  %s = moe.slice_columns %c {begin = 0 : i64, width = 32 : i64} : tensor<?x32xf32> -> tensor<?x32xf32>
  return %s : tensor<?x32xf32>
}

// -----

// A strict sub-slice at column 0 is not the identity.
// CHECK-LABEL: func @slice_columns_prefix_kept
// CHECK: moe.slice_columns %{{.*}} {begin = 0 : i64, width = 32 : i64}
func.func @slice_columns_prefix_kept(%x: tensor<?x40xf32>) -> tensor<?x32xf32> {
  %c = moe.slice_columns %x {begin = 0 : i64, width = 32 : i64} : tensor<?x40xf32> -> tensor<?x32xf32>
  return %c : tensor<?x32xf32>
}

// -----

// A conversion to the weight's own type is the weight.
// CHECK-LABEL: func @convert_weight_same_type
// CHECK: %[[B:.*]] = moe.weight "bias" : tensor<16xf32>
// CHECK-NOT: moe.convert_weight
// CHECK: return %[[B]]
func.func @convert_weight_same_type() -> tensor<16xf32> {
  %b = moe.weight "bias" : tensor<16xf32>
  %c = moe.convert_weight %b : tensor<16xf32> -> tensor<16xf32>
  return %c : tensor<16xf32>
}

// -----

// bf16 -> f32 is exact, so bf16 -> f32 -> f16 is bf16 -> f16.
// CHECK-LABEL: func @convert_weight_through_f32
// CHECK: %[[B:.*]] = moe.weight "bias" : tensor<16xbf16>
// CHECK-NEXT: %[[C:.*]] = moe.convert_weight %[[B]] : tensor<16xbf16> -> tensor<16xf16>
// CHECK-NEXT: return %[[C]]
func.func @convert_weight_through_f32() -> tensor<16xf16> {
  %b = moe.weight "bias" : tensor<16xbf16>
  %f = moe.convert_weight %b : tensor<16xbf16> -> tensor<16xf32>
  %h = moe.convert_weight %f : tensor<16xf32> -> tensor<16xf16>
  return %h : tensor<16xf16>
}

// -----

// ... and bf16 -> f32 -> bf16 is the weight itself.
// CHECK-LABEL: func @convert_weight_round_trip
// CHECK: %[[B:.*]] = moe.weight "bias" : tensor<16xbf16>
// CHECK-NEXT: return %[[B]]
func.func @convert_weight_round_trip() -> tensor<16xbf16> {
  %b = moe.weight "bias" : tensor<16xbf16>
  %f = moe.convert_weight %b : tensor<16xbf16> -> tensor<16xf32>
  %r = moe.convert_weight %f : tensor<16xf32> -> tensor<16xbf16>
  return %r : tensor<16xbf16>
}

// -----

// f32 -> bf16 rounds, so bf16 -> f16 after it cannot skip the bf16 step.
// CHECK-LABEL: func @convert_weight_narrowing_kept
// CHECK: moe.convert_weight %{{.*}} : tensor<16xf32> -> tensor<16xbf16>
// CHECK: moe.convert_weight %{{.*}} : tensor<16xbf16> -> tensor<16xf16>
func.func @convert_weight_narrowing_kept() -> tensor<16xf16> {
  %b = moe.weight "bias" : tensor<16xf32>
  %n = moe.convert_weight %b : tensor<16xf32> -> tensor<16xbf16>
  %h = moe.convert_weight %n : tensor<16xbf16> -> tensor<16xf16>
  return %h : tensor<16xf16>
}

// -----

// A weight converted to f32 (the router bias) is kept.
// CHECK-LABEL: func @convert_weight_widening_kept
// CHECK: moe.convert_weight %{{.*}} : tensor<16xbf16> -> tensor<16xf32>
func.func @convert_weight_widening_kept() -> tensor<16xf32> {
  %b = moe.weight "bias" : tensor<16xbf16>
  %f = moe.convert_weight %b : tensor<16xbf16> -> tensor<16xf32>
  return %f : tensor<16xf32>
}
