// The fp32 RMSNorm kernel, generated ahead of time through LLVM's NVPTX backend.
// RUN: moec emit-ptx --kernel=rms_norm --arch=sm_90a -o %t.sm90a.ptx
// RUN: FileCheck %s --check-prefixes=CHECK,SM90A < %t.sm90a.ptx
// RUN: moec emit-ptx --kernel=rms_norm --arch=sm_80 -o %t.sm80.ptx
// RUN: FileCheck %s --check-prefixes=CHECK,SM80 < %t.sm80.ptx
// RUN: not moec emit-ptx --kernel=rms_norm --arch=sm_70 -o %t.bad.ptx 2>&1 | FileCheck %s --check-prefix=BADARCH
// RUN: not test -e %t.bad.ptx

// SM90A: .version 8.3
// SM90A: .target sm_90a
// SM80: .target sm_80
// CHECK: .address_size 64
// CHECK: .entry moec_rms_norm_f32(
// CHECK: shfl.sync.bfly.b32
// CHECK: div.rn.f32
// CHECK: sqrt.rn.f32
// CHECK: {{div|rcp}}.rn.f32
// BADARCH: error: unsupported GPU architecture 'sm_70' (supported: sm_90a, sm_80)
