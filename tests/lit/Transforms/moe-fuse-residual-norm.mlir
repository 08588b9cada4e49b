// RUN: moec-opt %s -split-input-file -moe-fuse-residual-norm | FileCheck %s
// RUN: moec-opt %s -split-input-file -moe-fuse-residual-norm -mlir-print-debuginfo | FileCheck %s --check-prefix=NAMES
// RUN: moec-opt %s -split-input-file -moe-fuse-residual-norm='report=true' -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT

// A decoder layer's two residual adds, each read by an RMSNorm: both fuse. The
// adds' other users (the next residual add, the return) read the fused sums; the
// norm weight defined between an add and its norm moves up with the fused op.
// CHECK-LABEL: func @layer
// CHECK-SAME: (%[[H:[^:]*]]: tensor<?x64xf32>, %[[ATTN:[^:]*]]: tensor<?x64xf32>, %[[MLP:[^:]*]]: tensor<?x64xf32>)
// CHECK: %[[W1:.*]] = moe.weight "model.layers.0.post_attention_layernorm.weight"
// CHECK-NEXT: %[[H1:.*]], %[[N1:.*]] = moe.add_rms_norm %[[H]], %[[ATTN]], %[[W1]] {epsilon = 9.99999997E-7 : f32} : tensor<?x64xf32>, tensor<64xbf16>
// CHECK-NOT: moe.add %
// CHECK-NOT: moe.rms_norm
// CHECK: %[[W2:.*]] = moe.weight "model.layers.1.input_layernorm.weight"
// CHECK-NEXT: %[[H2:.*]], %[[N2:.*]] = moe.add_rms_norm %[[H1]], %[[MLP]], %[[W2]]
// CHECK: return %[[H2]], %[[N1]], %[[N2]]

// The fused steps keep the adds' names (the plan's step names), with both
// original locations inside.
// NAMES: moe.add_rms_norm {{.*}} loc(#[[L1:loc[0-9]*]])
// NAMES: moe.add_rms_norm {{.*}} loc(#[[L2:loc[0-9]*]])
// NAMES-DAG: #[[L1]] = loc("model.layers.0.attn_residual"(#{{loc[0-9]*}}))
// NAMES-DAG: #[[L2]] = loc("model.layers.0.mlp_residual"(#{{loc[0-9]*}}))

// REPORT: remark: moe-fuse-residual-norm: 2 residual add(s) fused with the RMSNorm after them
// REPORT: remark: moe-fuse-residual-norm: 0 residual add(s) fused
func.func @layer(%h: tensor<?x64xf32>, %attn: tensor<?x64xf32>, %mlp: tensor<?x64xf32>)
    -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
  %h1 = moe.add %h, %attn : tensor<?x64xf32> loc("model.layers.0.attn_residual")
  %w1 = moe.weight "model.layers.0.post_attention_layernorm.weight" : tensor<64xbf16>
  %n1 = moe.rms_norm %h1, %w1 {epsilon = 1.0e-6 : f32} : tensor<?x64xf32>, tensor<64xbf16>
      loc("model.layers.0.post_attention_layernorm")
  %h2 = moe.add %h1, %mlp : tensor<?x64xf32> loc("model.layers.0.mlp_residual")
  %w2 = moe.weight "model.layers.1.input_layernorm.weight" : tensor<64xbf16>
  %n2 = moe.rms_norm %h2, %w2 {epsilon = 1.0e-6 : f32} : tensor<?x64xf32>, tensor<64xbf16>
      loc("model.layers.1.input_layernorm")
  return %h2, %n1, %n2 : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// An add no norm reads (the routed + shared experts' sum) and a norm of
// something else (the embedding) stay as they are.
// CHECK-LABEL: func @nothing_to_fuse
// CHECK: moe.rms_norm
// CHECK: moe.add
// CHECK-NOT: moe.add_rms_norm
func.func @nothing_to_fuse(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %w = moe.weight "model.norm.weight" : tensor<64xf32>
  %n = moe.rms_norm %x, %w {epsilon = 1.0e-6 : f32} : tensor<?x64xf32>, tensor<64xf32>
  %s = moe.add %x, %y : tensor<?x64xf32>
  return %n, %s : tensor<?x64xf32>, tensor<?x64xf32>
}
