// RUN: moec-opt %s -split-input-file -moe-kv-cache-type | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-kv-cache-type='element=f32' | FileCheck %s --check-prefix=F32
// RUN: moec-opt %s -split-input-file -verify-diagnostics -moe-kv-cache-type='element=bf16' | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-kv-cache-type='element=fp8' | FileCheck %s --check-prefix=FP8

// Every cache value is retyped: the arguments, what cache_store returns, the
// function type; nothing else changes.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[C:.*]]: !moe.latent_cache<16, 8, bf16>, %[[X:.*]]: tensor<?x16xf32>, %[[PE:.*]]: tensor<?x8xf32>, %[[P:.*]]: tensor<?xi32>, %[[S:.*]]: tensor<?xi32>) -> !moe.latent_cache<16, 8, bf16>
// CHECK-NEXT: %[[N:.*]] = moe.cache_store %[[C]], %[[X]], %[[PE]], %[[P]], %[[S]] : !moe.latent_cache<16, 8, bf16>, tensor<?x16xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>
// CHECK-NEXT: return %[[N]] : !moe.latent_cache<16, 8, bf16>
// F32-LABEL: func.func @forward
// F32-SAME: (%{{.*}}: !moe.latent_cache<16, 8>, %{{.*}}: tensor<?x16xf32>, %{{.*}}: tensor<?x8xf32>, %{{.*}}: tensor<?xi32>, %{{.*}}: tensor<?xi32>) -> !moe.latent_cache<16, 8>
// F32-NOT: bf16
// FP8-LABEL: func.func @forward
// FP8-SAME: !moe.latent_cache<16, 8, f8E4M3FN>
// FP8: moe.cache_store {{.*}} : !moe.latent_cache<16, 8, f8E4M3FN>,
// FP8: return {{.*}} : !moe.latent_cache<16, 8, f8E4M3FN>
func.func @forward(%c: !moe.latent_cache<16, 8>, %x: tensor<?x16xf32>, %pe: tensor<?x8xf32>,
                   %pos: tensor<?xi32>, %seq: tensor<?xi32>) -> !moe.latent_cache<16, 8> {
  %n = moe.cache_store %c, %x, %pe, %pos, %seq
      : !moe.latent_cache<16, 8>, tensor<?x16xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>
  return %n : !moe.latent_cache<16, 8>
}

// -----

// A cache already in bf16 goes back to f32 with element=f32.
// CHECK-LABEL: func.func @back
// CHECK-SAME: !moe.latent_cache<4, 2, bf16>
// F32-LABEL: func.func @back
// F32-SAME: (%{{.*}}: !moe.latent_cache<4, 2>) -> !moe.latent_cache<4, 2>
func.func @back(%c: !moe.latent_cache<4, 2, bf16>) -> !moe.latent_cache<4, 2, bf16> {
  return %c : !moe.latent_cache<4, 2, bf16>
}
