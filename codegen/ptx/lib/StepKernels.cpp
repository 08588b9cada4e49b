//===- StepKernels.cpp - kernels generated for a plan's steps -------------===//
//
// Each generator below writes kernels with an ImplicitLocOpBuilder: gpu ids,
// scf loops, arith, llvm loads/stores on global pointers and nvvm warp shuffles.
// Every shape, stride, dtype and attribute of the step is a constant of the
// kernel; only the token count T (and the KV cache's rows per sequence) arrive
// at run time. A step whose work has phases (the MLPs, the experts, the router,
// the naive attention) gets one kernel per phase, run in order, with device
// scratch between them.
//
// Numerics follow the CPU kernels (shared/spec/deepseek-semantics.md): fp32
// accumulation, IEEE-rounded sqrt and division (no fast-math), weights widened
// to fp32 exactly (bf16 by a shift, f16 by fpext, e4m3 through
// cvt.rn.f16x2.e4m3x2 on sm_90a or an exact integer decode on sm_80) and
// multiplied by their block scale; with Step.activations = BF16 the products'
// inputs are rounded to bfloat16 (nearest even) first, with F8E4M3 quantized per
// token and 128 columns to e4m3 with a scale (DeepSeek's FP8 GEMM: a warp maximum
// per block, then each value's code, dequantized, as the CPU emulates it). Rope's cos and sin are
// evaluated in double (fdlibm's reduction and polynomials) and rounded once, as
// the CPU does with std::cos; exp is ex2.approx (relative error ~2^-22).
// The naive MLA core (expanded_attention) runs in the absorbed order on the GPU
// (q_nope pulled through W_UK, attention over the latents, W_UV after): the same
// sums in another order.
//
//===----------------------------------------------------------------------===//

#include "moec/Codegen/StepKernels.h"

#include "moec/Codegen/PTX.h"
#include "moec/cpu/kernels.h"
#include "moec/runtime/PlanFormat.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <functional>
#include <optional>
#include <limits>

using namespace mlir;

namespace moec::ptx {

namespace {

constexpr int64_t kWarp = 32;
constexpr int64_t kWarpsPerBlock = 8; ///< matrix-vector kernels: one output per warp
constexpr int64_t kTokenTile = 4;     ///< matrix-vector kernels: tokens per block

llvm::Error malformed(const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", what.str().c_str());
}

/// Elements per token of a buffer (the product of its dims after T).
int64_t tokenCols(const plan::BufferT &buffer) {
  int64_t cols = 1;
  for (size_t i = 1; i < buffer.shape.size(); ++i)
    cols *= buffer.shape[i];
  return cols;
}

/// A dtype's name in kernel names ("bf16", "f8e4m3": PlanFormat.h's).
const char *dtypeSuffix(plan::DType dtype) {
  const char *name = dtypeName(dtype);
  return name ? name : "x";
}

bool unquantized(plan::DType d) {
  return d == plan::DType::F32 || d == plan::DType::F16 || d == plan::DType::BF16;
}

/// The emitter of one kernel body: small helpers over an ImplicitLocOpBuilder.
class KernelEmitter {
public:
  KernelEmitter(ImplicitLocOpBuilder &b, bool sm90) : b(b), sm90(sm90) {
    MLIRContext *ctx = b.getContext();
    f32 = b.getF32Type();
    f64 = b.getF64Type();
    f16 = b.getF16Type();
    i8 = b.getI8Type();
    i16 = b.getI16Type();
    i32 = b.getI32Type();
    i64 = b.getI64Type();
    ptr = LLVM::LLVMPointerType::get(ctx, /*addressSpace=*/1);
  }

  Value c64(int64_t v) { return arith::ConstantOp::create(b, b.getI64IntegerAttr(v)); }
  Value c32(int32_t v) { return arith::ConstantOp::create(b, b.getI32IntegerAttr(v)); }
  Value cf(float v) { return arith::ConstantOp::create(b, b.getF32FloatAttr(v)); }
  Value cd(double v) { return arith::ConstantOp::create(b, b.getF64FloatAttr(v)); }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value add(Value x, int64_t y) { return y ? add(x, c64(y)) : x; }
  Value mul(Value x, int64_t y) { return y == 1 ? x : mul(x, c64(y)); }
  Value divu(Value x, int64_t y) { return y == 1 ? x : arith::DivUIOp::create(b, x, c64(y)); }
  Value remu(Value x, int64_t y) { return arith::RemUIOp::create(b, x, c64(y)); }
  Value minu(Value x, Value y) { return arith::MinUIOp::create(b, x, y); }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
  }
  Value ieq(Value x, Value y) { return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, y); }
  Value fgt(Value x, Value y) { return arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, y); }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value fdiv(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
  Value fmax(Value x, Value y) { return arith::MaximumFOp::create(b, x, y); }
  Value fma(Value x, Value y, Value z) { return LLVM::FMAOp::create(b, x, y, z); }
  Value select(Value c, Value x, Value y) { return arith::SelectOp::create(b, c, x, y); }
  Value toI64(Value i32v) { return arith::ExtSIOp::create(b, i64, i32v); }

  Value blockId(gpu::Dimension d) {
    return arith::IndexCastOp::create(b, i64, gpu::BlockIdOp::create(b, d));
  }
  Value threadId() {
    return arith::IndexCastOp::create(b, i64, gpu::ThreadIdOp::create(b, gpu::Dimension::x));
  }

  Value addr(Type elem, Value base, Value index) {
    return LLVM::GEPOp::create(b, ptr, elem, base, ValueRange{index},
                               LLVM::GEPNoWrapFlags::inbounds);
  }
  Value load(Type elem, Value base, Value index) {
    return LLVM::LoadOp::create(b, elem, addr(elem, base, index));
  }
  void store(Value value, Value base, Value index) {
    LLVM::StoreOp::create(b, value, addr(value.getType(), base, index));
  }
  /// Element `index` of a table of device addresses, as a pointer.
  Value loadPointer(Value table, Value index) { return load(ptr, table, index); }

  /// Element `index` of a weight or state of `dtype` (f32, f16, bf16, e4m3) as f32.
  Value loadAsF32(plan::DType dtype, Value base, Value index) {
    switch (dtype) {
    case plan::DType::F16:
      return arith::ExtFOp::create(b, f32, load(f16, base, index));
    case plan::DType::BF16: {
      Value bits = arith::ExtUIOp::create(b, i32, load(i16, base, index));
      return arith::BitcastOp::create(b, f32, arith::ShLIOp::create(b, bits, c32(16)));
    }
    case plan::DType::F8E4M3:
      return decodeE4m3(load(i8, base, index));
    default:
      return load(f32, base, index);
    }
  }

  /// Stores f32 `v` as element `index` of a state of `dtype` (f32, bf16 or e4m3,
  /// rounded to nearest even; e4m3 saturates at +-448).
  void storeAs(plan::DType dtype, Value v, Value base, Value index) {
    if (dtype == plan::DType::BF16) {
      Value bits = arith::BitcastOp::create(b, i32, roundToBf16(v));
      Value high = arith::ShRUIOp::create(b, bits, c32(16));
      store(arith::TruncIOp::create(b, i16, high), base, index);
    } else if (dtype == plan::DType::F8E4M3 && sm90) {
      // cvt.rn.satfinite.e4m3x2.f32 (sm_90a): the second operand is the low byte.
      Value pair = LLVM::CallIntrinsicOp::create(b, i16,
                                                 b.getStringAttr("llvm.nvvm.ff.to.e4m3x2.rn"),
                                                 ValueRange{cf(0.0f), v})
                       .getResult(0);
      store(arith::TruncIOp::create(b, i8, pair), base, index);
    } else if (dtype == plan::DType::F8E4M3) {
      store(encodeE4m3(v), base, index); // sm_80 has no fp8 conversion
    } else {
      store(v, base, index);
    }
  }

  /// An e4m3fn byte as f32, exactly (0x7f / 0xff, NaN, never occur in weights).
  Value decodeE4m3(Value byte) {
    if (sm90) {
      // cvt.rn.f16x2.e4m3x2: the low byte becomes the low half.
      Value pair = arith::ExtUIOp::create(b, i16, byte);
      auto halves = VectorType::get({2}, f16);
      Value both = LLVM::CallIntrinsicOp::create(
                       b, halves, b.getStringAttr("llvm.nvvm.e4m3x2.to.f16x2.rn"),
                       ValueRange{pair})
                       .getResult(0);
      Value low = LLVM::ExtractElementOp::create(b, both, c32(0));
      return arith::ExtFOp::create(b, f32, low);
    }
    // sm_80 has no fp8 conversion: put exponent and mantissa where an f32 keeps
    // them (bits 26..20) and rescale by 2^120, which maps the e4m3 bias (7) onto
    // f32's (127) for normals and subnormals alike; then the sign.
    Value bits = arith::ExtUIOp::create(b, i32, byte);
    Value magnitude = arith::AndIOp::create(b, bits, c32(0x7f));
    Value placed = arith::ShLIOp::create(b, magnitude, c32(20));
    Value value = fmul(arith::BitcastOp::create(b, f32, placed), cf(0x1p120f));
    Value sign = arith::ShLIOp::create(b, arith::AndIOp::create(b, bits, c32(0x80)), c32(24));
    Value signed_ = arith::OrIOp::create(b, arith::BitcastOp::create(b, i32, value), sign);
    return arith::BitcastOp::create(b, f32, signed_);
  }

  /// Rounds an f32 to bfloat16 (nearest even) and back, as the CPU does.
  Value roundToBf16(Value x) {
    Value bits = arith::BitcastOp::create(b, i32, x);
    Value lsb = arith::AndIOp::create(b, arith::ShRUIOp::create(b, bits, c32(16)), c32(1));
    Value biased = add(add(bits, c32(0x7fff)), lsb);
    Value kept = arith::AndIOp::create(b, biased, c32(static_cast<int32_t>(0xffff0000u)));
    return arith::BitcastOp::create(b, f32, kept);
  }

  /// |x| (finite, >= 0) rounded to the e4m3fn grid: nearest even, saturating at 448
  /// (the CPU's roundToE4m3Grid).
  Value roundE4m3Magnitude(Value a) {
    // Below 2^-6 (subnormal codes, steps of 2^-9): a + 2^14 rounds a to a multiple
    // of 2^-9, nearest even.
    Value small = fsub(fadd(a, cf(16384.0f)), cf(16384.0f));
    // Else keep 3 mantissa bits, nearest even.
    Value u = arith::BitcastOp::create(b, i32, a);
    Value lsb = arith::AndIOp::create(b, arith::ShRUIOp::create(b, u, c32(20)), c32(1));
    Value kept = arith::AndIOp::create(b, add(add(u, c32(0x7ffff)), lsb),
                                       c32(static_cast<int32_t>(0xfff00000u)));
    Value normal = arith::MinimumFOp::create(b, arith::BitcastOp::create(b, f32, kept),
                                             cf(448.0f));
    return select(arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, a, cf(0.015625f)), small,
                  normal);
  }

  /// An f32 as an e4m3fn byte without cvt (sm_80): floatToFp8e4m3's rounding (nearest
  /// even, saturating at +-448), NaN as 0x7f with its sign.
  Value encodeE4m3(Value v) {
    Value bits = arith::BitcastOp::create(b, i32, v);
    Value sign = arith::AndIOp::create(b, arith::ShRUIOp::create(b, bits, c32(24)), c32(0x80));
    Value a = arith::BitcastOp::create(b, f32, arith::AndIOp::create(b, bits, c32(0x7fffffff)));
    Value r = roundE4m3Magnitude(a);
    Value u = arith::BitcastOp::create(b, i32, r);
    // Normal (r >= 2^-6, f32 exponent >= 121): ((exponent - 120) << 3) | top 3 mantissa
    // bits; subnormal: r * 512, an integer 0..7.
    Value exponent = arith::ShRUIOp::create(b, u, c32(23));
    Value normal = arith::OrIOp::create(
        b, arith::ShLIOp::create(b, arith::SubIOp::create(b, exponent, c32(120)), c32(3)),
        arith::AndIOp::create(b, arith::ShRUIOp::create(b, u, c32(20)), c32(7)));
    Value subnormal = arith::FPToSIOp::create(b, i32, fmul(r, cf(512.0f)));
    Value code = select(arith::CmpIOp::create(b, arith::CmpIPredicate::uge, exponent, c32(121)),
                        normal, subnormal);
    Value isNan = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, v, v);
    code = select(isNan, c32(0x7f), code);
    return arith::TruncIOp::create(b, i8, arith::OrIOp::create(b, code, sign));
  }

  /// DeepSeek's activation quantization of one value with its block's scale s
  /// (spec section 3), dequantized: e4m3(x / s) * s, the code's rounding to nearest
  /// even and saturating at 448 done on the float (the CPU's fakeQuantizeRowsFp8:
  /// the same bits on both targets, no cvt).
  Value quantizeE4m3(Value x, Value s) {
    Value q = fdiv(x, s);
    Value bits = arith::BitcastOp::create(b, i32, q);
    Value sign = arith::AndIOp::create(b, bits, c32(static_cast<int32_t>(0x80000000u)));
    Value a = arith::BitcastOp::create(b, f32, arith::AndIOp::create(b, bits, c32(0x7fffffff)));
    Value r = roundE4m3Magnitude(a);
    Value signedR = arith::BitcastOp::create(
        b, f32, arith::OrIOp::create(b, arith::BitcastOp::create(b, i32, r), sign));
    Value isNan = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, q, q);
    return select(isNan, q, fmul(signedR, s));
  }

  /// e^x through ex2.approx.
  Value exp(Value x) {
    Value scaled = fmul(x, cf(1.4426950408889634f));
    return LLVM::CallIntrinsicOp::create(b, f32, b.getStringAttr("llvm.nvvm.ex2.approx.f32"),
                                         ValueRange{scaled})
        .getResult(0);
  }
  /// x / (1 + e^-x), as the CPU's siluMul.
  Value silu(Value x) { return fdiv(x, fadd(cf(1.0f), exp(fsub(cf(0.0f), x)))); }

  /// (cos a, sin a) of an f64 angle: fdlibm's two-part reduction by pi/2 and its
  /// kernel polynomials on [-pi/4, pi/4] (|a| up to 2^20 keeps k * pio2_1 exact).
  std::pair<Value, Value> cosSin(Value a) {
    // cvt.rni.f64.f64 (llvm.intr.roundeven itself is left to libdevice by
    // convert-gpu-to-nvvm, which moec does not link).
    Value kf = LLVM::CallIntrinsicOp::create(b, f64, b.getStringAttr("llvm.roundeven.f64"),
                                             ValueRange{fmul(a, cd(6.36619772367581382433e-01))})
                   .getResult(0);
    Value r = fsub(fsub(a, fmul(kf, cd(1.57079632673412561417e+00))),
                   fmul(kf, cd(6.07710050650619224932e-11)));
    Value z = fmul(r, r);
    auto poly = [&](std::initializer_list<double> coeffs) {
      Value acc;
      for (auto it = std::rbegin(coeffs); it != std::rend(coeffs); ++it)
        acc = acc ? fma(acc, z, cd(*it)) : cd(*it);
      return acc;
    };
    Value s = fma(fmul(z, r),
                  poly({-1.66666666666666324348e-01, 8.33333333332248946124e-03,
                        -1.98412698298579493134e-04, 2.75573137070700676789e-06,
                        -2.50507602534068634195e-08, 1.58969099521155010221e-10}),
                  r);
    Value c = fma(fmul(z, z),
                  poly({4.16666666666666019037e-02, -1.38888888888741095749e-03,
                        2.48015872894767294178e-05, -2.75573143513906633035e-07,
                        2.08757232129817482790e-09, -1.13596475577881948265e-11}),
                  fsub(cd(1.0), fmul(cd(0.5), z)));
    Value q = arith::AndIOp::create(b, arith::FPToSIOp::create(b, i64, kf), c64(3));
    Value negS = fsub(cd(0.0), s), negC = fsub(cd(0.0), c);
    Value q1 = ieq(q, c64(1)), q2 = ieq(q, c64(2)), q3 = ieq(q, c64(3));
    Value cosA = select(q1, negS, select(q2, negC, select(q3, s, c)));
    Value sinA = select(q1, c, select(q2, negS, select(q3, negC, s)));
    return {cosA, sinA};
  }

  /// `combine` of `v` over the 32 lanes of the warp (a butterfly), in every lane.
  Value warpReduce(Value v, Value (KernelEmitter::*combine)(Value, Value)) {
    Value all = c32(-1), clamp = c32(31);
    for (int32_t offset = 16; offset >= 1; offset /= 2) {
      Value other = NVVM::ShflOp::create(b, f32, all, v, c32(offset), clamp,
                                         NVVM::ShflKind::bfly, UnitAttr());
      v = (this->*combine)(v, other);
    }
    return v;
  }
  /// Whether candidate (a, ai) comes before (b, bi) in the greedy order: the larger
  /// logit first, the lower id on ties, NaN last (the CPU's greedyToken).
  Value before(Value a, Value ai, Value bv, Value bi) {
    Value aNan = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, a, a);
    Value bNan = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, bv, bv);
    Value oneNan = arith::XOrIOp::create(b, aNan, bNan);
    Value differ = arith::CmpFOp::create(b, arith::CmpFPredicate::ONE, a, bv);
    Value lowerId = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, ai, bi);
    return select(oneNan, bNan, select(differ, fgt(a, bv), lowerId));
  }
  /// The first of the warp's candidates (v, i32 id) in the greedy order, in every lane.
  std::pair<Value, Value> warpArgmax(Value v, Value id) {
    Value all = c32(-1), clamp = c32(31);
    for (int32_t offset = 16; offset >= 1; offset /= 2) {
      Value ov = NVVM::ShflOp::create(b, f32, all, v, c32(offset), clamp, NVVM::ShflKind::bfly,
                                      UnitAttr());
      Value oid = NVVM::ShflOp::create(b, i32, all, id, c32(offset), clamp,
                                       NVVM::ShflKind::bfly, UnitAttr());
      Value other = before(ov, oid, v, id);
      v = select(other, ov, v);
      id = select(other, oid, id);
    }
    return {v, id};
  }

  /// The sum of `v` over the 32 lanes of the warp, in every lane.
  Value warpSum(Value v) { return warpReduce(v, &KernelEmitter::fadd); }
  /// The largest of `v` over the 32 lanes of the warp (NaN if any is), in every lane.
  Value warpMax(Value v) { return warpReduce(v, &KernelEmitter::fmax); }
  /// Over the 32 lanes of a warp (its threads 0..31 all here) of i64 `v` (each
  /// below 2^31 in all): the sum over the lanes before this one, and over all.
  /// A butterfly: after offset o, `total` spans the lane's aligned group of 2o lanes
  /// and `prefix` the lanes of that group before it.
  std::pair<Value, Value> warpScan(Value v) {
    Value all = c32(-1), clamp = c32(31);
    Value lane = remu(threadId(), 32);
    Value total = arith::TruncIOp::create(b, i32, v), prefix = c32(0);
    for (int32_t offset = 1; offset <= 16; offset *= 2) {
      Value other = NVVM::ShflOp::create(b, i32, all, total, c32(offset), clamp,
                                         NVVM::ShflKind::bfly, UnitAttr());
      Value upper = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                          arith::AndIOp::create(b, lane, c64(offset)), c64(0));
      prefix = select(upper, add(prefix, other), prefix);
      total = add(total, other);
    }
    return {toI64(prefix), toI64(total)};
  }
  /// The FP8 activation scale of a 128-column block whose values the warp's lanes
  /// hold (`values`, this lane's): max(amax, 1e-4) / 448 (spec section 3).
  Value activationScale(ArrayRef<Value> values) {
    Value amax = cf(0.0f);
    for (Value v : values)
      amax = fmax(amax, fabs(v));
    return fdiv(fmax(warpMax(amax), cf(1e-4f)), cf(448.0f));
  }
  /// |x| of an f32 (its sign bit cleared).
  Value fabs(Value x) {
    return arith::BitcastOp::create(
        b, f32, arith::AndIOp::create(b, arith::BitcastOp::create(b, i32, x), c32(0x7fffffff)));
  }

  /// scf.for over i64 [lb, ub) by `step` carrying `init`; returns the results.
  SmallVector<Value>
  loop(Value lb, Value ub, Value step, ValueRange init,
       llvm::function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto forOp = scf::ForOp::create(b, lb, ub, step, init);
    OpBuilder::InsertionGuard guard(b);
    Block *block = forOp.getBody();
    if (init.empty()) {
      b.setInsertionPoint(block->getTerminator());
      body(forOp.getInductionVar(), {});
    } else {
      b.setInsertionPointToEnd(block);
      SmallVector<Value> next = body(forOp.getInductionVar(), forOp.getRegionIterArgs());
      scf::YieldOp::create(b, next);
    }
    return SmallVector<Value>(forOp.getResults());
  }
  void loop(Value lb, Value ub, Value step, llvm::function_ref<void(Value)> body) {
    loop(lb, ub, step, {}, [&](Value iv, ValueRange) {
      body(iv);
      return SmallVector<Value>();
    });
  }
  /// if (cond) { body }.
  void when(Value cond, llvm::function_ref<void()> body) {
    auto ifOp = scf::IfOp::create(b, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    body();
  }

  /// The kernel's static shared memory: `bytes` in one 1024-aligned
  /// llvm.mlir.global of address space 3, named after the kernel; its address.
  Value sharedMemory(int64_t bytes) {
    std::string name = kernelName + "_smem";
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(module.getBody());
      LLVM::GlobalOp::create(b, LLVM::LLVMArrayType::get(i8, uint64_t(bytes)),
                             /*isConstant=*/false, LLVM::Linkage::Internal, name, Attribute(),
                             /*alignment=*/1024, /*addrSpace=*/3);
    }
    return LLVM::AddressOfOp::create(b, sharedPtr(), name);
  }
  Type sharedPtr() { return LLVM::LLVMPointerType::get(b.getContext(), 3); }
  /// The shared address `base` + `offset` bytes.
  Value sharedAt(Value base, Value offset) {
    return LLVM::GEPOp::create(b, sharedPtr(), i8, base, ValueRange{offset},
                               LLVM::GEPNoWrapFlags::inbounds);
  }
  Value sharedAt(Value base, int64_t offset) { return sharedAt(base, c64(offset)); }
  /// barrier.sync 0: every thread of the block.
  void barrier() { NVVM::Barrier0Op::create(b); }
  /// Waits until the phase of parity `parity` (i32) of the mbarrier at `bar`
  /// completed: mbarrier.try_wait.parity in a loop each thread leaves on its own
  /// predicate (a plain conditional branch, as a thread may see the phase complete
  /// a little before another; nvvm.mbarrier.try_wait.parity's own loop branches
  /// with bra.uni, which assumes they agree).
  void waitParity(Value bar, Value parity) {
    auto loop = scf::WhileOp::create(b, TypeRange{}, ValueRange{});
    {
      OpBuilder::InsertionGuard guard(b);
      Block *before = b.createBlock(&loop.getBefore());
      b.setInsertionPointToStart(before);
      Value done = NVVM::MBarrierTryWaitOp::create(b, b.getI1Type(), bar, parity, c32(0x989680),
                                                   NVVM::MemScopeKind::CTA, false);
      Value pending = arith::XOrIOp::create(
          b, done, arith::ConstantOp::create(b, b.getBoolAttr(true)));
      scf::ConditionOp::create(b, pending, ValueRange{});
      Block *after = b.createBlock(&loop.getAfter());
      b.setInsertionPointToStart(after);
      scf::YieldOp::create(b, ValueRange{});
    }
  }

  ImplicitLocOpBuilder &b;
  bool sm90;
  Type f32, f64, f16, i8, i16, i32, i64, ptr;
  gpu::GPUModuleOp module;
  std::string kernelName;
};

/// The kernel arguments (plan.fbs's KernelEntry convention).
struct KernelArgs {
  SmallVector<Value> ptrs;  ///< operands, results, weights (scales after theirs)
  SmallVector<Value> states; ///< per state: address, then rows per sequence (i64)
  Value scratch;             ///< when the kernel has scratch
  SmallVector<Value> tensorMaps; ///< per FP8 weight of the step, its CUtensorMap (tmaBox)
  Value tokens;              ///< T, i64
};

/// One kernel to build: its name (also its specialisation key), launch shape
/// and body.
struct KernelSpec {
  std::string name;
  unsigned numPointers = 0;
  unsigned numStates = 0;
  uint64_t scratchPerToken = 0; ///< bytes of device scratch per token
  unsigned block = 256;
  unsigned gridY = 1, gridZ = 1;
  unsigned tokensPerBlock = 1;
  /// The weights come as one pointer to a device table of their addresses.
  bool weightTable = false;
  /// Token counts the kernel runs for (KernelEntry.min_tokens / max_tokens; 0: any).
  unsigned minTokens = 0, maxTokens = 0;
  /// Non-empty: one CUtensorMap pointer per FP8 weight follows the weights (KernelEntry.tma_box).
  std::vector<uint32_t> tmaBox;
  /// With tmaBox: how many (the step's FP8 weights).
  unsigned numTensorMaps = 1;
  /// The block's threads work as one warpgroup (wgmma, shared memory, barriers):
  /// the kernel interpreter runs them in lockstep (the function's moec.warpgroup).
  bool warpgroup = false;
  std::function<void(KernelEmitter &, const KernelArgs &)> body;
};

/// How a warp reads one weight: W(row, col) widened to f32 and block-scaled.
struct WeightAccess {
  plan::DType dtype = plan::DType::F32;
  int64_t cols = 0;                  ///< columns of the stored weight
  int64_t blockRows = 1, blockCols = 1, scaleCols = 0; ///< FP8 only
  bool fp8() const { return dtype == plan::DType::F8E4M3; }
  std::string key() const {
    return fp8() ? llvm::formatv("{0}c{1}b{2}x{3}", dtypeSuffix(dtype), cols, blockRows,
                                 blockCols)
                       .str()
                 : llvm::formatv("{0}c{1}", dtypeSuffix(dtype), cols).str();
  }
  Value load(KernelEmitter &e, Value w, Value scale, Value row, Value col) const {
    Value v = e.loadAsF32(dtype, w, e.add(e.mul(row, cols), col));
    if (!fp8())
      return v;
    Value si = e.add(e.mul(e.divu(row, blockRows), scaleCols), e.divu(col, blockCols));
    return e.fmul(v, e.load(e.f32, scale, si));
  }
};

/// The access of `w` (false for dtypes without a GPU path: int8).
bool weightAccess(const plan::PlanT &plan, const plan::WeightT &w, WeightAccess *out) {
  if (w.shape.size() != 2)
    return false;
  out->dtype = w.dtype;
  out->cols = w.shape[1];
  if (unquantized(w.dtype))
    return true;
  if (w.dtype != plan::DType::F8E4M3 || w.block_shape.size() != 2 || w.block_scale < 0 ||
      size_t(w.block_scale) >= plan.weights.size())
    return false;
  out->blockRows = w.block_shape[0];
  out->blockCols = w.block_shape[1];
  out->scaleCols = (out->cols + out->blockCols - 1) / out->blockCols;
  return true;
}

/// What a product does to its input activations (Step.activations): nothing
/// (F32), round them to bf16 (BF16), or quantize them per 128 columns to e4m3
/// with a scale (F8E4M3, DeepSeek's FP8 GEMM).
enum class Acts : uint8_t { F32, Bf16, Fp8 };

Acts actsOf(const plan::StepT &step) {
  return step.activations == plan::DType::BF16     ? Acts::Bf16
         : step.activations == plan::DType::F8E4M3 ? Acts::Fp8
                                                   : Acts::F32;
}

const char *actsSuffix(Acts acts) {
  return acts == Acts::Bf16 ? "_bf16acts" : acts == Acts::Fp8 ? "_fp8acts" : "";
}

/// The 32-bit word of W holding W(row, col .. col + vec - 1).
Value weightWord(KernelEmitter &e, const WeightAccess &wa, Value w, Value row, Value col,
                 int64_t vec) {
  return e.load(e.i32, w, e.divu(e.add(e.mul(row, wa.cols), col), vec));
}

/// The `vec` weights W(row, col .. col + vec - 1) held by one 32-bit word (4 e4m3 or
/// 2 bf16/f16), widened to f32 and multiplied by their block scale (each weight, as
/// the CPU dequantizes). `word`: the word, if already loaded (weightWord).
SmallVector<Value> loadWeightWord(KernelEmitter &e, const WeightAccess &wa, Value w,
                                  Value scale, Value row, Value col, int64_t vec,
                                  Value word = Value()) {
  if (!word)
    word = weightWord(e, wa, w, row, col, vec);
  SmallVector<Value> wv;
  if (wa.fp8() && e.sm90) {
    for (int64_t pair = 0; pair < 2; ++pair) {
      Value bits = arith::TruncIOp::create(
          e.b, e.i16, arith::ShRUIOp::create(e.b, word, e.c32(int32_t(16 * pair))));
      Value both = LLVM::CallIntrinsicOp::create(
                       e.b, VectorType::get({2}, e.f16),
                       e.b.getStringAttr("llvm.nvvm.e4m3x2.to.f16x2.rn"), ValueRange{bits})
                       .getResult(0);
      for (int32_t half = 0; half < 2; ++half)
        wv.push_back(arith::ExtFOp::create(
            e.b, e.f32, Value(LLVM::ExtractElementOp::create(e.b, both, e.c32(half)))));
    }
  } else {
    for (int64_t j = 0; j < vec; ++j) {
      int32_t bits = int32_t(32 / vec);
      Value part = arith::ShRUIOp::create(e.b, word, e.c32(int32_t(j) * bits));
      if (wa.fp8()) {
        wv.push_back(e.decodeE4m3(arith::TruncIOp::create(e.b, e.i8, part)));
      } else if (wa.dtype == plan::DType::BF16) {
        Value high = arith::ShLIOp::create(
            e.b, arith::AndIOp::create(e.b, part, e.c32(0xffff)), e.c32(16));
        wv.push_back(arith::BitcastOp::create(e.b, e.f32, high));
      } else {
        Value half =
            arith::BitcastOp::create(e.b, e.f16, arith::TruncIOp::create(e.b, e.i16, part));
        wv.push_back(arith::ExtFOp::create(e.b, e.f32, half));
      }
    }
  }
  if (wa.fp8()) {
    // The vec elements share one 128x128 block: one scale.
    Value si =
        e.add(e.mul(e.divu(row, wa.blockRows), wa.scaleCols), e.divu(col, wa.blockCols));
    Value s = e.load(e.f32, scale, si);
    for (Value &v : wv)
      v = e.fmul(v, s);
  }
  return wv;
}

/// warpDots with FP8 activations: per block of kFp8ActBlock columns of x (the
/// product's own columns 0..K-1), amax over the block (a warp maximum: each lane
/// holds 4 consecutive columns), s = max(amax, 1e-4) / 448, each x replaced by
/// e4m3(x / s) * s; then the products as usual. Columns past K count as 0.
SmallVector<Value> warpDotsFp8Acts(KernelEmitter &e, const WeightAccess &wa, Value w,
                                   Value scale, int64_t K,
                                   llvm::function_ref<std::pair<Value, Value>(Value)> at,
                                   Value x, ArrayRef<Value> xStarts, Value lane,
                                   bool contiguous) {
  constexpr int64_t kPerLane = moec::cpu::kFp8ActBlock / kWarp;
  static_assert(kPerLane == 4, "a lane holds one 32-bit word of e4m3 weights");
  bool word = contiguous && K % kPerLane == 0 && wa.cols % kPerLane == 0 &&
              (wa.fp8() ? wa.blockCols % kPerLane == 0
                        : wa.dtype == plan::DType::BF16 || wa.dtype == plan::DType::F16);
  int64_t vec = wa.fp8() ? 4 : 2;
  int64_t blocks = (K + moec::cpu::kFp8ActBlock - 1) / moec::cpu::kFp8ActBlock;
  SmallVector<Value> zeros(xStarts.size(), e.cf(0.0f));
  SmallVector<Value> acc = e.loop(
      e.c64(0), e.c64(blocks), e.c64(1), zeros, [&](Value blk, ValueRange sums) {
        Value first = e.add(e.mul(blk, moec::cpu::kFp8ActBlock), e.mul(lane, kPerLane));
        // Column j of this lane, clamped into [0, K) for the loads, and whether it
        // is one of the product's columns.
        SmallVector<Value> cols, inside;
        for (int64_t j = 0; j < kPerLane; ++j) {
          Value k = e.add(first, j);
          inside.push_back(e.ult(k, e.c64(K)));
          cols.push_back(e.minu(k, e.c64(K - 1)));
        }
        SmallVector<Value> wv;
        if (word) {
          // K % 4 == 0: a lane's 4 columns are all inside or all outside.
          auto [row, col] = at(cols[0]);
          for (int64_t part = 0; part < kPerLane; part += vec) {
            SmallVector<Value> got =
                loadWeightWord(e, wa, w, scale, row, e.add(col, part), vec);
            wv.append(got.begin(), got.end());
          }
        } else {
          for (int64_t j = 0; j < kPerLane; ++j) {
            auto [row, col] = at(cols[size_t(j)]);
            wv.push_back(wa.load(e, w, scale, row, col));
          }
        }
        SmallVector<Value> next(sums.begin(), sums.end());
        for (size_t i = 0; i < xStarts.size(); ++i) {
          SmallVector<Value> xv;
          for (int64_t j = 0; j < kPerLane; ++j) {
            Value v = e.select(inside[size_t(j)],
                               e.load(e.f32, x, e.add(xStarts[i], cols[size_t(j)])),
                               e.cf(0.0f));
            xv.push_back(v);
          }
          Value s = e.activationScale(xv);
          for (int64_t j = 0; j < kPerLane; ++j)
            next[i] = e.fma(e.quantizeE4m3(xv[size_t(j)], s), wv[size_t(j)], next[i]);
        }
        return next;
      });
  SmallVector<Value> totals;
  for (Value a : acc)
    totals.push_back(e.warpSum(a));
  return totals;
}

/// One warp's dot products over k = 0..K-1 of W(row(k), col(k)) with x[start + k]
/// for each start in `xStarts`: every lane gets the sums.
///
/// When the K elements run along one row of W (`contiguous`: at(k) = (row, k)) and
/// the dtype packs several into 32 bits (4 e4m3, 2 bf16 or f16), each lane reads
/// them as one 32-bit word: the warp loads 128 contiguous bytes per instruction
/// instead of 32, and sm_90a widens two e4m3 per cvt.
SmallVector<Value> warpDots(KernelEmitter &e, const WeightAccess &wa, Value w, Value scale,
                            int64_t K, llvm::function_ref<std::pair<Value, Value>(Value)> at,
                            Value x, ArrayRef<Value> xStarts, Acts acts, Value lane,
                            bool contiguous = false) {
  if (acts == Acts::Fp8)
    return warpDotsFp8Acts(e, wa, w, scale, K, at, x, xStarts, lane, contiguous);
  bool bf16Acts = acts == Acts::Bf16;
  SmallVector<Value> zeros(xStarts.size(), e.cf(0.0f));
  int64_t vec = wa.fp8() ? 4 : (wa.dtype == plan::DType::BF16 || wa.dtype == plan::DType::F16) ? 2 : 1;
  if (!contiguous || K % vec || wa.cols % vec || (wa.fp8() && wa.blockCols % vec))
    vec = 1;
  if (vec > 1) {
    // The vec weights of one word at k0 into each token's sum. (Each weight times its
    // scale, then the fma: the CPU's order; summing a word's products before scaling
    // saves multiplies but moved a bf16-activation decode of the trained model by
    // 0.97 through one flipped rounding: measured, not done.)
    auto addWord = [&](SmallVector<Value> &sums, Value k0, Value word) {
      auto [row, col] = at(k0);
      SmallVector<Value> wv = loadWeightWord(e, wa, w, scale, row, col, vec, word);
      for (int64_t j = 0; j < vec; ++j)
        for (size_t i = 0; i < xStarts.size(); ++i) {
          Value xv = e.load(e.f32, x, e.add(e.add(xStarts[i], k0), j));
          if (bf16Acts)
            xv = e.roundToBf16(xv);
          sums[i] = e.fma(xv, wv[size_t(j)], sums[i]);
        }
    };
    // kUnroll words per lane per iteration, all loaded before any is used: a warp
    // keeps kUnroll x 128 bytes of the weight in flight (a memory-bound decode
    // needs many bytes in flight per SM to reach HBM speed). The rest of K, one word
    // per lane per iteration.
    constexpr int64_t kUnroll = 4;
    const int64_t span = kWarp * vec * kUnroll, mainK = K / span * span;
    SmallVector<Value> acc(zeros.begin(), zeros.end());
    if (mainK > 0)
      acc = e.loop(e.mul(lane, vec), e.c64(mainK), e.c64(span), acc,
                   [&](Value k0, ValueRange sums) {
                     SmallVector<Value> words, starts;
                     for (int64_t u = 0; u < kUnroll; ++u) {
                       Value ku = e.add(k0, u * kWarp * vec);
                       auto [row, col] = at(ku);
                       starts.push_back(ku);
                       words.push_back(weightWord(e, wa, w, row, col, vec));
                     }
                     SmallVector<Value> next(sums.begin(), sums.end());
                     for (int64_t u = 0; u < kUnroll; ++u)
                       addWord(next, starts[size_t(u)], words[size_t(u)]);
                     return next;
                   });
    if (mainK < K)
      acc = e.loop(e.add(e.mul(lane, vec), mainK), e.c64(K), e.c64(kWarp * vec), acc,
                   [&](Value k0, ValueRange sums) {
                     SmallVector<Value> next(sums.begin(), sums.end());
                     addWord(next, k0, Value());
                     return next;
                   });
    SmallVector<Value> totals;
    for (Value a : acc)
      totals.push_back(e.warpSum(a));
    return totals;
  }
  SmallVector<Value> acc =
      e.loop(lane, e.c64(K), e.c64(kWarp), zeros, [&](Value kk, ValueRange sums) {
        auto [row, col] = at(kk);
        Value wv = wa.load(e, w, scale, row, col);
        SmallVector<Value> next;
        for (size_t i = 0; i < xStarts.size(); ++i) {
          Value xv = e.load(e.f32, x, e.add(xStarts[i], kk));
          if (bf16Acts)
            xv = e.roundToBf16(xv);
          next.push_back(e.fma(xv, wv, sums[i]));
        }
        return next;
      });
  SmallVector<Value> totals;
  for (Value a : acc)
    totals.push_back(e.warpSum(a));
  return totals;
}

/// A (strided, per-head) matrix-vector product, the shape of linear and
/// head_linear: y[t, yOffset + h*n + r] = sum_k x[t, h*xStride + xOffset + k] *
/// W(h, r, k), W(h, r, k) = W[h*rowStride + rowOffset + r, k] (transpose:
/// W[h*rowStride + rowOffset + k, r]). One warp per output column, 8 per block,
/// kTokenTile tokens per block.
struct MatVec {
  int64_t heads = 1, n = 0, k = 0;
  int64_t xCols = 0, xStride = 0, xOffset = 0;
  int64_t rowStride = 0, rowOffset = 0;
  bool transpose = false;
  int64_t yCols = 0, yOffset = 0;
  WeightAccess weight;
  Acts acts = Acts::F32;
  /// Tokens per block: kTokenTile, or 1 for the decode alternative (one token: no
  /// product computed four times over the same clamped token).
  int64_t tokenTile = kTokenTile;

  std::string key() const {
    return llvm::formatv("{0}_h{1}n{2}k{3}_x{4}s{5}o{6}_r{7}o{8}{9}_y{10}o{11}{12}{13}",
                         weight.key(), heads, n, k, xCols, xStride, xOffset, rowStride,
                         rowOffset, transpose ? "t" : "", yCols, yOffset, actsSuffix(acts),
                         tokenTile == kTokenTile ? "" : "_t" + std::to_string(tokenTile));
  }
  int64_t outputs() const { return heads * n; }

  /// The kernel body, for pointers x, y, W and its scale.
  void emit(KernelEmitter &e, Value x, Value y, Value w, Value scale, Value tokens) const {
    Value tid = e.threadId();
    Value lane = e.remu(tid, kWarp);
    Value out = e.add(e.mul(e.blockId(gpu::Dimension::y), kWarpsPerBlock), e.divu(tid, kWarp));
    Value firstToken = e.mul(e.blockId(gpu::Dimension::x), tokenTile);
    // Whole warps take the branch or skip it: the shuffles inside stay converged.
    e.when(e.ult(out, e.c64(outputs())), [&] {
      Value h = e.divu(out, n);
      Value r = e.remu(out, n);
      Value lastToken = e.add(tokens, e.c64(-1));
      SmallVector<Value> xStarts;
      for (int64_t tt = 0; tt < tokenTile; ++tt) {
        Value t = e.minu(e.add(firstToken, tt), lastToken); // rows past T repeat T-1
        xStarts.push_back(e.add(e.add(e.mul(t, xCols), e.mul(h, xStride)), xOffset));
      }
      Value headRow = e.add(e.mul(h, rowStride), rowOffset);
      SmallVector<Value> totals = warpDots(
          e, weight, w, scale, k,
          [&](Value kk) -> std::pair<Value, Value> {
            return transpose ? std::make_pair(e.add(headRow, kk), r)
                             : std::make_pair(e.add(headRow, r), kk);
          },
          x, xStarts, acts, lane, /*contiguous=*/!transpose);
      e.when(e.ieq(lane, e.c64(0)), [&] {
        for (int64_t tt = 0; tt < tokenTile; ++tt) {
          Value t = e.add(firstToken, tt);
          e.when(e.ult(t, tokens), [&] {
            e.store(totals[tt], y, e.add(e.add(e.mul(t, yCols), yOffset), out));
          });
        }
      });
    });
  }

  /// As a kernel spec whose arguments are the step's: x, y, W, scale picked by
  /// `pick` from the arguments.
  KernelSpec spec(std::string name, unsigned numPointers, unsigned numStates,
                  uint64_t scratchPerToken,
                  std::function<std::array<Value, 4>(KernelEmitter &, const KernelArgs &)> pick)
      const {
    KernelSpec s;
    s.name = std::move(name);
    s.numPointers = numPointers;
    s.numStates = numStates;
    s.scratchPerToken = scratchPerToken;
    s.block = kWarpsPerBlock * kWarp;
    s.gridY = unsigned((outputs() + kWarpsPerBlock - 1) / kWarpsPerBlock);
    s.tokensPerBlock = unsigned(tokenTile);
    MatVec self = *this;
    s.body = [self, pick](KernelEmitter &e, const KernelArgs &a) {
      std::array<Value, 4> p = pick(e, a);
      self.emit(e, p[0], p[1], p[2], p[3], a.tokens);
    };
    return s;
  }
};

/// linear on the tensor cores, for steps whose products round their inputs to
/// bf16 (Step.activations = BF16) with bf16 or FP8 weights: mma.sync m16n8k16 with
/// bf16 operands and fp32 accumulation, a warp per tile of 16 tokens x 8 outputs.
/// FP8 weights are widened to bf16 in registers (exactly: e4m3 has 3 mantissa bits);
/// each 128-wide block of K is summed on its own and multiplied by its scale, as the
/// spec's fp32 block-scaled product. Same sums as MatVec, in another order.
struct MmaLinear {
  int64_t n = 0, k = 0, xCols = 0, yCols = 0;
  WeightAccess weight;

  static constexpr int64_t kTileTokens = 16, kTileOutputs = 8, kStep = 16;

  /// Whether the tensor-core path applies (else MatVec runs the step).
  static bool applies(const MatVec &m) {
    bool fp8 = m.weight.fp8();
    return m.acts == Acts::Bf16 && m.heads == 1 && !m.transpose && m.xStride == 0 && m.xOffset == 0 &&
           m.rowOffset == 0 && m.yOffset == 0 && m.k == m.weight.cols && m.k % kStep == 0 &&
           m.n % kTileOutputs == 0 &&
           (m.weight.dtype == plan::DType::BF16 ||
            (fp8 && m.weight.blockRows % kTileOutputs == 0 && m.weight.blockCols % kStep == 0));
  }

  std::string key() const {
    return llvm::formatv("{0}_n{1}k{2}_x{3}_y{4}", weight.key(), n, k, xCols, yCols);
  }

  KernelSpec spec(std::string name) const {
    KernelSpec s;
    s.name = std::move(name);
    s.numPointers = weight.fp8() ? 4 : 3; // x, y, W[, scale]
    s.block = kWarpsPerBlock * kWarp;
    int64_t tiles = n / kTileOutputs;
    s.gridY = unsigned((tiles + kWarpsPerBlock - 1) / kWarpsPerBlock);
    s.tokensPerBlock = kTileTokens;
    MmaLinear self = *this;
    s.body = [self](KernelEmitter &e, const KernelArgs &a) {
      self.emit(e, a.ptrs[0], a.ptrs[1], a.ptrs[2], a.ptrs.size() > 3 ? a.ptrs[3] : a.ptrs[2],
                a.tokens);
    };
    return s;
  }

  /// Two f32 values as bf16 (nearest even) packed in an i32, the first in the low half.
  static Value packBf16(KernelEmitter &e, Value lo, Value hi) {
    auto bits = [&](Value v) {
      Value b = arith::BitcastOp::create(e.b, e.i32, e.roundToBf16(v));
      return arith::ShRUIOp::create(e.b, b, e.c32(16));
    };
    return arith::OrIOp::create(e.b, bits(lo), arith::ShLIOp::create(e.b, bits(hi), e.c32(16)));
  }

  void emit(KernelEmitter &e, Value x, Value y, Value w, Value scale, Value tokens) const {
    Value tid = e.threadId();
    Value lane = e.remu(tid, kWarp);
    Value group = e.divu(lane, 4), inGroup = e.remu(lane, 4);
    Value tile = e.add(e.mul(e.blockId(gpu::Dimension::y), kWarpsPerBlock), e.divu(tid, kWarp));
    int64_t tiles = n / kTileOutputs;
    e.when(e.ult(tile, e.c64(tiles)), [&] {
      Value m0 = e.mul(e.blockId(gpu::Dimension::x), kTileTokens);
      Value n0 = e.mul(tile, kTileOutputs);
      Value last = e.add(tokens, e.c64(-1));
      Value row0 = e.minu(e.add(m0, group), last);
      Value row1 = e.minu(e.add(e.add(m0, group), 8), last);
      Value wRow = e.add(n0, group);
      Value col = e.mul(inGroup, 2);
      auto xAt = [&](Value row, Value kk) { return e.load(e.f32, x, e.add(e.mul(row, xCols), kk)); };
      // Each K block (128 for FP8: one scale; the whole K for bf16) on its own.
      int64_t block = weight.fp8() ? weight.blockCols : k;
      auto f32x4 = LLVM::LLVMStructType::getLiteral(e.b.getContext(),
                                                     {e.f32, e.f32, e.f32, e.f32});
      SmallVector<Value> zero(4, e.cf(0.0f));
      SmallVector<Value> acc = e.loop(
          e.c64(0), e.c64(k), e.c64(block), zero, [&](Value kb, ValueRange outer) {
            Value kEnd = e.minu(e.add(kb, block), e.c64(k));
            SmallVector<Value> part = e.loop(
                kb, kEnd, e.c64(kStep), zero, [&](Value k0, ValueRange c) -> SmallVector<Value> {
                  Value ka = e.add(k0, col), kb8 = e.add(ka, 8);
                  Value a[4] = {packBf16(e, xAt(row0, ka), xAt(row0, e.add(ka, 1))),
                                packBf16(e, xAt(row1, ka), xAt(row1, e.add(ka, 1))),
                                packBf16(e, xAt(row0, kb8), xAt(row0, e.add(kb8, 1))),
                                packBf16(e, xAt(row1, kb8), xAt(row1, e.add(kb8, 1)))};
                  // The weights unscaled (the block's scale multiplies the block's sum).
                  auto wRaw = [&](Value kk) {
                    return e.loadAsF32(weight.dtype, w, e.add(e.mul(wRow, weight.cols), kk));
                  };
                  Value bReg[2] = {packBf16(e, wRaw(ka), wRaw(e.add(ka, 1))),
                                   packBf16(e, wRaw(kb8), wRaw(e.add(kb8, 1)))};
                  Value d = NVVM::MmaOp::create(
                      e.b, f32x4, ValueRange(a), ValueRange(bReg), c,
                      ArrayRef<int64_t>{16, 8, 16}, std::nullopt, std::nullopt,
                      std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16, NVVM::MMATypes::bf16},
                      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row, NVVM::MMALayout::col});
                  SmallVector<Value> next;
                  for (int64_t i = 0; i < 4; ++i)
                    next.push_back(LLVM::ExtractValueOp::create(e.b, d, ArrayRef<int64_t>{i}));
                  return next;
                });
            Value s = e.cf(1.0f);
            if (weight.fp8())
              s = e.load(e.f32, scale,
                         e.add(e.mul(e.divu(n0, weight.blockRows), weight.scaleCols),
                               e.divu(kb, weight.blockCols)));
            SmallVector<Value> next;
            for (int64_t i = 0; i < 4; ++i)
              next.push_back(weight.fp8() ? e.fma(part[i], s, outer[i]) : e.fadd(outer[i], part[i]));
            return next;
          });
      // c0, c1: token m0 + group, outputs n0 + 2 inGroup + {0, 1}; c2, c3: token + 8.
      for (int64_t i = 0; i < 4; ++i) {
        Value t = e.add(e.add(m0, group), i < 2 ? 0 : 8);
        Value out = e.add(e.add(n0, col), i % 2);
        e.when(e.ult(t, tokens), [&] { e.store(acc[i], y, e.add(e.mul(t, yCols), out)); });
      }
    });
  }
};

/// A tensor-core linear (MmaLinear, WgmmaLinear) with the shape of a plain
/// matrix-vector product m: n outputs, k inputs, x and y row widths, the weight.
template <typename Linear> Linear linearShape(const MatVec &m) {
  Linear l;
  l.n = m.n;
  l.k = m.k;
  l.xCols = m.xCols;
  l.yCols = m.yCols;
  l.weight = m.weight;
  return l;
}

/// linear on sm_90a's FP8 tensor cores, for steps with FP8 weights and FP8
/// activations (Step.activations = F8E4M3: DeepSeek's FP8 GEMM) and batches of
/// kMinTokens or more (prefill; MatVec runs the smaller ones). Two kernels:
///   1. quantize: each token's input, per 128 columns, to e4m3 codes and a scale
///      (a warp per block: its maximum, s = max(amax, 1e-4) / 448, codes by
///      cvt.rn.satfinite.e4m3x2.f32), into device scratch, once;
///   2. the GEMM: one warpgroup (128 threads) per tile of 64 tokens x 64 outputs;
///      per 128-wide block of K the weight tile (64 rows x 128 bytes) arrives by TMA
///      (cp.async.bulk.tensor.2d, eight boxes of 16 x 64), double-buffered: the
///      next block's copy is in flight while this one is multiplied, each stage
///      with its mbarrier (arrive.expect_tx, then try_wait.parity); the tile's
///      codes are copied from scratch into shared memory by the threads; four
///      wgmma.mma_async m64n64k32 e4m3 x e4m3 -> f32 sum the block, whose sums are
///      then multiplied by the activation and the weight scale and added to fp32
///      accumulators in registers (the promotion of spec section 3: the tensor
///      cores' own accumulation never spans more than one block).
/// Shared operands are in wgmma's canonical K-major layout without swizzle: core
/// matrices of 8 rows x 16 bytes, 128 contiguous bytes each; a 16-byte column
/// slice of the tile at a time (1024 bytes: the core matrices down M or N, 128
/// apart = SBO), slices 1024 apart (LBO), so a TMA box of 16 x 64 lands exactly
/// as one slice.
struct WgmmaLinear {
  int64_t n = 0, k = 0, xCols = 0, yCols = 0;
  WeightAccess weight;
  /// Where the operands are (a linear step's: x ptrs[0], y ptrs[1], W ptrs[2], its
  /// scale ptrs[3], the first tensor map, codes at the start of each scratch row);
  /// an MLP's products chain two GEMMs through scratch.
  int64_t xOffset = 0, yOffset = 0; ///< floats into each row of x, y
  int64_t rowBytes = 0;             ///< scratch bytes per token (0: regionBytes())
  int64_t codesOffset = 0;          ///< bytes into a scratch row: the codes, then the scales
  unsigned mapIndex = 0;            ///< which of the step's tensor maps is W's
  /// The quantize kernel: rows per token (routed experts: one per choice), each
  /// subStrideBytes after the last in x (as floats) and in scratch.
  int64_t subRows = 1, subStrideBytes = 0;
  std::function<std::array<Value, 4>(KernelEmitter &, const KernelArgs &)> pick =
      [](KernelEmitter &, const KernelArgs &a) -> std::array<Value, 4> {
    return {a.ptrs[0], a.ptrs[1], a.ptrs[2], a.ptrs[3]};
  };

  static constexpr int64_t kTileTokens = 64, kTileOutputs = 64, kBlockK = 128;
  static constexpr int64_t kSlice = 16;     ///< bytes of K per core matrix row
  static constexpr int64_t kSliceBytes = 64 * kSlice; ///< one 16-wide slice of a tile
  static constexpr int64_t kThreads = 128;
  static constexpr unsigned kMinTokens = 16;
  // Shared memory (bytes): A, two B stages, two mbarriers.
  static constexpr int64_t kA = 0, kTileBytes = kTileTokens * kBlockK;
  static constexpr int64_t kB = kTileBytes;
  static constexpr int64_t kBarriers = kB + 2 * kTileBytes;
  static constexpr int64_t kShared = kBarriers + 16;

  /// Routed experts (a grouped GEMM): the rows are the (token, choice) pairs of the
  /// routing, grouped by expert (route lists, below); tiles of 64 pairs of one expert
  /// are numbered expert by expert, and block x takes tiles x, x + gridDim.x, ...
  /// (at most ceil(T K / 64) + E of them). `expertCount(e, ex)` gives (first list
  /// entry, pairs) of expert ex, `pairOf(e, q)` the pair (token t, choice k) of list
  /// entry q, `codesOf` / `outOf` where that pair's codes are and its output row
  /// starts (float index into scratch), `weightOf` the expert's (W, scales).
  struct Grouped {
    int64_t experts = 0, topK = 0, tokensPerBlock = 1;
    std::function<std::pair<Value, Value>(KernelEmitter &, Value ex)> expertCount;
    std::function<std::pair<Value, Value>(KernelEmitter &, Value q)> pairOf;
    std::function<Value(KernelEmitter &, Value t, Value k)> codesOf, outOf;
    std::function<std::pair<Value, Value>(KernelEmitter &, const KernelArgs &, Value ex)> weightOf;
  };

  static bool applies(const MatVec &m, bool sm90) {
    return sm90 && m.acts == Acts::Fp8 && m.weight.fp8() && m.heads == 1 && !m.transpose &&
           m.xStride == 0 && m.xOffset == 0 && m.rowOffset == 0 && m.yOffset == 0 &&
           m.k == m.weight.cols && m.weight.blockRows == kBlockK &&
           m.weight.blockCols == kBlockK && m.k % kSlice == 0 && m.yCols >= m.n;
  }

  int64_t blocks() const { return (k + kBlockK - 1) / kBlockK; }
  /// A token's quantized input: the codes of every whole block (zeros past K), then
  /// the scales, padded to 16 bytes.
  int64_t codesBytes() const { return blocks() * kBlockK; }
  int64_t regionBytes() const { return codesBytes() + 4 * ((blocks() + 3) / 4 * 4); }
  /// Scratch bytes between tokens.
  int64_t scratchPerToken() const { return rowBytes ? rowBytes : regionBytes(); }

  std::string key() const {
    return llvm::formatv("{0}_n{1}k{2}_x{3}_y{4}", weight.key(), n, k, xCols, yCols);
  }

  /// A shared-memory matrix descriptor: start address, LBO and SBO (each >> 4), no
  /// swizzle.
  static Value descriptor(KernelEmitter &e, Value sharedAddress) {
    Value start = arith::AndIOp::create(e.b, arith::ShRUIOp::create(e.b, sharedAddress, e.c64(4)),
                                        e.c64(0x3fff));
    int64_t fixed = ((kSliceBytes >> 4) << 16) | (int64_t(128 >> 4) << 32);
    return arith::OrIOp::create(e.b, start, e.c64(fixed));
  }

  /// The quantize kernel: a token per block x, 8 blocks of K per block y.
  KernelSpec quantizeSpec(const std::string &name, unsigned numPointers) const {
    WgmmaLinear self = *this;
    KernelSpec quantize;
    quantize.name = name;
    quantize.numPointers = numPointers;
    quantize.scratchPerToken = uint64_t(scratchPerToken());
    quantize.block = unsigned(kWarpsPerBlock * kWarp);
    quantize.gridY = unsigned((blocks() + kWarpsPerBlock - 1) / kWarpsPerBlock);
    quantize.tokensPerBlock = 1;
    quantize.minTokens = kMinTokens;
    quantize.body = [self](KernelEmitter &e, const KernelArgs &a) { self.emitQuantize(e, a); };
    return quantize;
  }

  /// The grouped GEMM of routed experts (emitGrouped, W copied by the threads: no
  /// tensor maps); `grouped` describes the rows, given the kernel's arguments.
  KernelSpec groupedSpec(const std::string &name, unsigned numPointers, int64_t tokensPerBlock,
                         std::function<Grouped(const KernelArgs &)> grouped) const {
    WgmmaLinear self = *this;
    KernelSpec gemm = gemmSpec(name, numPointers);
    gemm.weightTable = true;
    gemm.tokensPerBlock = unsigned(tokensPerBlock);
    gemm.body = [self, grouped](KernelEmitter &e, const KernelArgs &a) {
      self.emitGrouped(e, a, grouped(a));
    };
    return gemm;
  }

  /// A GEMM kernel's launch: one warpgroup per tile, a column of tiles per 64 outputs.
  KernelSpec gemmSpec(const std::string &name, unsigned numPointers) const {
    KernelSpec gemm;
    gemm.name = name;
    gemm.numPointers = numPointers;
    gemm.scratchPerToken = uint64_t(scratchPerToken());
    gemm.block = unsigned(kThreads);
    gemm.gridY = unsigned((n + kTileOutputs - 1) / kTileOutputs);
    gemm.minTokens = kMinTokens;
    gemm.warpgroup = true;
    return gemm;
  }

  /// The two kernels, in launch order: `quantName` quantizes, `gemmName` multiplies;
  /// the step has `numMaps` FP8 weights (tensor maps).
  std::vector<KernelSpec> specs(const std::string &quantName, const std::string &gemmName,
                                unsigned numPointers, unsigned numMaps = 1) const {
    WgmmaLinear self = *this;
    KernelSpec quantize = quantizeSpec(quantName, numPointers);
    KernelSpec gemm = gemmSpec(gemmName, numPointers);
    gemm.numTensorMaps = numMaps;
    gemm.tokensPerBlock = unsigned(kTileTokens);
    gemm.tmaBox = {uint32_t(kSlice), uint32_t(kTileOutputs)};
    gemm.body = [self](KernelEmitter &e, const KernelArgs &a) { self.emitGemm(e, a); };
    return {std::move(quantize), std::move(gemm)};
  }

  /// Token blockIdx.x, blocks 8 blockIdx.y + warp: codes and scale into scratch.
  void emitQuantize(KernelEmitter &e, const KernelArgs &a) const {
    Value x = pick(e, a)[0];
    Value t = e.blockId(gpu::Dimension::x);
    Value tid = e.threadId();
    Value lane = e.remu(tid, kWarp);
    Value kb = e.add(e.mul(e.blockId(gpu::Dimension::y), kWarpsPerBlock), e.divu(tid, kWarp));
    e.loop(e.c64(0), e.c64(subRows), e.c64(1), [&](Value sub) {
      Value xRow = e.add(e.add(e.mul(t, xCols), xOffset), e.mul(sub, subStrideBytes / 4));
      Value row =
          e.add(e.add(e.mul(t, scratchPerToken()), codesOffset), e.mul(sub, subStrideBytes));
      e.when(e.ult(kb, e.c64(blocks())), [&] {
        quantizeBlock(e, a, kb, lane, row, [&](Value col) {
          return e.load(e.f32, x, e.add(xRow, col));
        });
      });
    });
  }

  /// Block kb of one row, a warp: column 128 kb + 4 lane + j (j < 4) of the row
  /// (`valueAt(col)`, col < K; zero past K) quantized: the codes at byte `row` +
  /// col of scratch, the block's scale (lane 0) after the row's codes.
  void quantizeBlock(KernelEmitter &e, const KernelArgs &a, Value kb, Value lane, Value row,
                     llvm::function_ref<Value(Value)> valueAt) const {
    SmallVector<Value> xv;
    for (int64_t j = 0; j < 4; ++j) {
      Value col = e.add(e.add(e.mul(kb, kBlockK), e.mul(lane, 4)), j);
      Value v = valueAt(e.minu(col, e.c64(k - 1)));
      v = e.select(e.ult(col, e.c64(k)), v, e.cf(0.0f));
      xv.push_back(v);
    }
    Value sa = e.activationScale(xv);
    Value word;
    for (int64_t pair = 0; pair < 2; ++pair) {
      // cvt.rn.satfinite.e4m3x2.f32 a, b: b is the low byte.
      Value bits = LLVM::CallIntrinsicOp::create(
                       e.b, e.i16, e.b.getStringAttr("llvm.nvvm.ff.to.e4m3x2.rn"),
                       ValueRange{e.fdiv(xv[size_t(2 * pair + 1)], sa),
                                  e.fdiv(xv[size_t(2 * pair)], sa)})
                       .getResult(0);
      Value wide = arith::ExtUIOp::create(e.b, e.i32, bits);
      word = pair == 0 ? wide
                       : arith::OrIOp::create(e.b, word,
                                              arith::ShLIOp::create(e.b, wide, e.c32(16)));
    }
    // The row's codes as 32-bit words: word (row + kb*128 + 4*lane) / 4.
    e.store(word, a.scratch, e.divu(e.add(row, e.add(e.mul(kb, kBlockK), e.mul(lane, 4))), 4));
    e.when(e.ieq(lane, e.c64(0)), [&] {
      e.store(sa, a.scratch, e.divu(e.add(row, e.add(e.mul(kb, 4), codesBytes())), 4));
    });
  }

  /// How the 64 rows of a tile map to memory.
  struct TileRows {
    /// Row r (0..63): whether it holds a product row, and the byte offset in scratch
    /// of its codes (then scales); for a row that does not, any valid row's offset.
    std::function<std::pair<Value, Value>(KernelEmitter &, Value r)> source;
    /// The float index into y of row r's first output column (rows that hold one).
    std::function<Value(KernelEmitter &, Value r)> out;
  };

  /// The linear step's GEMM: tile (blockIdx.x, blockIdx.y) of the tokens x outputs,
  /// W by TMA from the step's tensor map.
  void emitGemm(KernelEmitter &e, const KernelArgs &a) const {
    MLIRContext *ctx = e.b.getContext();
    std::array<Value, 4> p = pick(e, a);
    // TMA takes the tensor map by its generic address.
    Value map = LLVM::AddrSpaceCastOp::create(e.b, LLVM::LLVMPointerType::get(ctx, 0),
                                              a.tensorMaps[mapIndex]);
    Value smem = e.sharedMemory(kShared);
    e.when(e.ieq(e.threadId(), e.c64(0)), [&] {
      for (int64_t st = 0; st < 2; ++st)
        NVVM::MBarrierInitOp::create(e.b, e.sharedAt(smem, kBarriers + 8 * st), e.c32(1),
                                     Value());
      NVVM::FenceMbarrierInitOp::create(e.b);
      NVVM::FenceProxyOp::create(
          e.b, NVVM::ProxyKindAttr::get(ctx, NVVM::ProxyKind::async_shared),
          NVVM::SharedSpaceAttr::get(ctx, NVVM::SharedSpace::shared_cta));
      // The tensor map lives in global memory, written by the host before the
      // launch: acquire it for the tensormap proxy before TMA reads it.
      NVVM::FenceProxyAcquireOp::create(e.b, NVVM::MemScopeKind::SYS, map, e.c32(128),
                                        NVVM::ProxyKind::GENERIC, NVVM::ProxyKind::TENSORMAP);
    });
    e.barrier();
    Value tokens = a.tokens;
    Value m0 = e.mul(e.blockId(gpu::Dimension::x), kTileTokens);
    Value lastToken = e.add(tokens, e.c64(-1));
    TileRows rows;
    rows.source = [&](KernelEmitter &e, Value r) {
      Value t = e.add(m0, r);
      return std::make_pair(
          e.ult(t, tokens), e.add(e.mul(e.minu(t, lastToken), scratchPerToken()), codesOffset));
    };
    rows.out = [&](KernelEmitter &e, Value r) {
      return e.add(e.mul(e.add(m0, r), yCols), yOffset);
    };
    emitTile(e, a, smem, e.mul(e.blockId(gpu::Dimension::y), kTileOutputs), p[2], p[3], map,
             p[1], rows);
  }

  /// One 64 x 64 tile of outputs n0.. for the rows `rows`: W's FP8 tile of each
  /// 128-wide block of K by TMA from `map` (double-buffered; the caller initialised
  /// the two mbarriers), or, when `map` is null, copied by the threads with the
  /// codes (one stage); `scale` is W's block scales.
  void emitTile(KernelEmitter &e, const KernelArgs &a, Value smem, Value n0, Value w,
                Value scale, Value map, Value y, const TileRows &rows) const {
    MLIRContext *ctx = e.b.getContext();
    Value tid = e.threadId();
    Value warp = e.divu(tid, kWarp), lane = e.remu(tid, kWarp);
    Value first = e.ieq(tid, e.c64(0));
    auto toI32 = [&](Value v) { return arith::TruncIOp::create(e.b, e.i32, v); };
    auto barrierAt = [&](Value stage) { return e.sharedAt(smem, e.add(e.mul(stage, 8), kBarriers)); };

    // Thread 0: the weight tile of block kb into stage kb % 2, eight 16 x 64 boxes.
    auto issue = [&](Value kb) {
      Value stage = e.remu(kb, 2);
      Value bar = barrierAt(stage);
      NVVM::MBarrierArriveExpectTxOp::create(e.b, Type(), bar, e.c32(int32_t(kTileBytes)),
                                             NVVM::MemScopeKindAttr(), BoolAttr(), Value());
      Value base = e.add(e.mul(stage, kTileBytes), kB);
      for (int64_t j = 0; j < kBlockK / kSlice; ++j) {
        // shared::cluster addressing (address space 7) of this CTA's own shared
        // memory: the launch is a cluster of one.
        Value dst = LLVM::AddrSpaceCastOp::create(
            e.b, LLVM::LLVMPointerType::get(ctx, 7),
            e.sharedAt(smem, e.add(base, j * kSliceBytes)));
        Value col = toI32(e.add(e.mul(kb, kBlockK), j * kSlice));
        NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
            e.b, dst, map, ValueRange{col, toI32(n0)}, bar, ValueRange{}, Value(), Value(),
            NVVM::TMALoadModeAttr(), e.b.getBoolAttr(false), NVVM::CTAGroupKindAttr(), Value());
      }
    };
    if (map)
      e.when(first, [&] { issue(e.c64(0)); });

    Type acc32 = LLVM::LLVMStructType::getLiteral(ctx, SmallVector<Type>(32, e.f32));
    SmallVector<Value> zeros(32, e.cf(0.0f));
    Value r0 = e.add(e.mul(warp, 16), e.divu(lane, 4)); // the fragment's rows r0, r0 + 8
    // The scales' rows of the fragment's two rows, and the rows this thread copies
    // codes from: 8-byte word q = tid + 128 i is row q / 16 = tid / 16 + 8 i.
    Value scaleRow0 = rows.source(e, r0).second;
    Value scaleRow1 = rows.source(e, e.add(r0, 8)).second;
    SmallVector<std::pair<Value, Value>> copyRows;
    for (int64_t i = 0; i < kTileBytes / 8 / kThreads; ++i)
      copyRows.push_back(rows.source(e, e.add(e.divu(tid, 16), i * (kThreads / 16))));
    // Where word q lands in a tile: 16-byte slice chunk / 2 (kSliceBytes each), row
    // `row`'s 16 bytes of it, the half chunk % 2.
    auto canonical = [&](Value row, Value chunk) {
      return e.add(e.add(e.mul(e.divu(chunk, 2), kSliceBytes), e.mul(row, 16)),
                   e.mul(e.remu(chunk, 2), 8));
    };
    SmallVector<Value> acc = e.loop(
        e.c64(0), e.c64(blocks()), e.c64(1), zeros, [&](Value kb, ValueRange sums) {
          Value stage = map ? e.remu(kb, 2) : e.c64(0);
          Value parity = toI32(e.remu(e.divu(kb, 2), 2));
          if (map)
            e.when(arith::AndIOp::create(e.b, first, e.ult(e.add(kb, 1), e.c64(blocks()))),
                   [&] { issue(e.add(kb, 1)); });

          // The block's codes, 64 rows x 128 bytes, 8 bytes per load: thread tid
          // takes words tid + 128 i; word q is row q / 16, bytes 8 (q % 16) ...
          for (int64_t i = 0; i < kTileBytes / 8 / kThreads; ++i) {
            Value q = e.add(tid, i * kThreads);
            Value row = e.divu(q, 16), chunk = e.remu(q, 16);
            auto [valid, rowStart] = copyRows[size_t(i)];
            Value from = e.add(e.add(rowStart, e.mul(kb, kBlockK)), e.mul(chunk, 8));
            // Scratch rows are 16-byte aligned (scratchPerToken): 8-byte loads.
            Value word = LLVM::LoadOp::create(e.b, e.i64, e.addr(e.i64, a.scratch, e.divu(from, 8)),
                                              /*alignment=*/8);
            Value v = e.select(valid, word, e.c64(0));
            LLVM::StoreOp::create(e.b, v, e.sharedAt(smem, e.add(canonical(row, chunk), kA)));
            if (!map) {
              // W's tile: rows n0 + row, bytes kb*128 + 8 chunk (zeros past N or K).
              Value wr = e.add(n0, row), col = e.add(e.mul(kb, kBlockK), e.mul(chunk, 8));
              Value inside = arith::AndIOp::create(e.b, e.ult(wr, e.c64(n)), e.ult(col, e.c64(k)));
              Value at = e.add(e.mul(e.minu(wr, e.c64(n - 1)), k), e.minu(col, e.c64(k - 8)));
              Value ww = LLVM::LoadOp::create(e.b, e.i64, e.addr(e.i64, w, e.divu(at, 8)),
                                              /*alignment=*/8);
              LLVM::StoreOp::create(e.b, e.select(inside, ww, e.c64(0)),
                                    e.sharedAt(smem, e.add(canonical(row, chunk), kB)));
            }
          }
          // The generic-proxy writes above, visible to wgmma's async proxy.
          NVVM::FenceProxyOp::create(
              e.b, NVVM::ProxyKindAttr::get(ctx, NVVM::ProxyKind::async_shared),
              NVVM::SharedSpaceAttr::get(ctx, NVVM::SharedSpace::shared_cta));
          e.barrier();
          if (map)
            e.waitParity(barrierAt(stage), parity);

          NVVM::WgmmaFenceAlignedOp::create(e.b);
          Value d = LLVM::UndefOp::create(e.b, acc32);
          Value aBase = LLVM::PtrToIntOp::create(e.b, e.i64, e.sharedAt(smem, kA));
          Value bBase = LLVM::PtrToIntOp::create(
              e.b, e.i64, e.sharedAt(smem, e.add(e.mul(stage, kTileBytes), kB)));
          for (int64_t i = 0; i < kBlockK / 32; ++i) {
            Value descA = descriptor(e, e.add(aBase, 2 * i * kSliceBytes));
            Value descB = descriptor(e, e.add(bBase, 2 * i * kSliceBytes));
            d = NVVM::WgmmaMmaAsyncOp::create(
                e.b, acc32, d, descA, descB, NVVM::MMAShapeAttr::get(ctx, 64, 64, 32),
                NVVM::WGMMATypesAttr::get(ctx, NVVM::WGMMATypes::e4m3),
                NVVM::WGMMATypesAttr::get(ctx, NVVM::WGMMATypes::e4m3),
                NVVM::WGMMATypesAttr::get(ctx, NVVM::WGMMATypes::f32),
                NVVM::WGMMAScaleOutAttr::get(ctx, i == 0 ? NVVM::WGMMAScaleOut::zero
                                                         : NVVM::WGMMAScaleOut::one),
                NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
                NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
                NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::row),
                NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::col), NVVM::MMAIntOverflowAttr());
          }
          NVVM::WgmmaGroupSyncAlignedOp::create(e.b);
          NVVM::WgmmaWaitGroupSyncOp::create(e.b, e.b.getI64IntegerAttr(0));
          // The accumulators are written asynchronously: tie every read of them to
          // after the wait with an empty volatile asm that "rewrites" them (LLVM may
          // not hoist a register read above it), as CUTLASS's warpgroup_fence_operand.
          {
            SmallVector<Value> parts;
            for (int64_t j = 0; j < 32; ++j)
              parts.push_back(LLVM::ExtractValueOp::create(e.b, d, ArrayRef<int64_t>{j}));
            std::string constraints;
            for (int64_t j = 0; j < 32; ++j)
              constraints += (j ? ",=f" : "=f");
            for (int64_t j = 0; j < 32; ++j)
              constraints += "," + std::to_string(j);
            d = LLVM::InlineAsmOp::create(e.b, acc32, parts, "", constraints,
                                          /*has_side_effects=*/true, /*is_align_stack=*/false,
                                          LLVM::tailcallkind::TailCallKind::None, LLVM::AsmDialectAttr(),
                                          ArrayAttr())
                    .getResult(0);
          }

          // Promotion: this block's sums times the activation and weight scales.
          Value sw = e.load(e.f32, scale,
                            e.add(e.mul(e.divu(n0, weight.blockRows), weight.scaleCols), kb));
          Value scaleAt = e.add(e.mul(kb, 4), codesBytes());
          Value sa0 = e.load(e.f32, a.scratch, e.divu(e.add(scaleRow0, scaleAt), 4));
          Value sa1 = e.load(e.f32, a.scratch, e.divu(e.add(scaleRow1, scaleAt), 4));
          Value f0 = e.fmul(sa0, sw), f1 = e.fmul(sa1, sw);
          SmallVector<Value> next;
          for (int64_t j = 0; j < 32; ++j) {
            Value part = LLVM::ExtractValueOp::create(e.b, d, ArrayRef<int64_t>{j});
            next.push_back(e.fma(part, j % 4 < 2 ? f0 : f1, sums[size_t(j)]));
          }
          // Every warp is done with A and this stage before they are refilled.
          e.barrier();
          return next;
        });

    // Fragment j of lane l: row r0 (+8 for j % 4 >= 2), column 8 (j / 4) + 2 (l % 4) + j % 2.
    Value colInQuad = e.mul(e.remu(lane, 4), 2);
    std::array<std::pair<Value, Value>, 2> outRows;
    for (int64_t h = 0; h < 2; ++h) {
      Value r = e.add(r0, 8 * h);
      outRows[size_t(h)] = {rows.source(e, r).first, rows.out(e, r)};
    }
    for (int64_t j = 0; j < 32; ++j) {
      auto [valid, start] = outRows[j % 4 < 2 ? 0 : 1];
      Value col = e.add(e.add(n0, colInQuad), 8 * (j / 4) + j % 2);
      e.when(arith::AndIOp::create(e.b, valid, e.ult(col, e.c64(n))),
             [&] { e.store(acc[size_t(j)], y, e.add(start, col)); });
    }
  }

  /// Routed experts: see Grouped.
  void emitGrouped(KernelEmitter &e, const KernelArgs &a, const Grouped &g) const {
    Value smem = e.sharedMemory(kShared);
    Value tokens = a.tokens;
    Value gx = e.divu(e.add(tokens, g.tokensPerBlock - 1), g.tokensPerBlock);
    Value bound = e.add(e.divu(e.add(e.mul(tokens, g.topK), kTileTokens - 1), kTileTokens),
                        g.experts);
    Value n0 = e.mul(e.blockId(gpu::Dimension::y), kTileOutputs);
    e.loop(e.blockId(gpu::Dimension::x), bound, gx, [&](Value j) {
      // Tile j: the expert whose tiles cover it (E when none: j is past the last).
      SmallVector<Value> found = e.loop(
          e.c64(0), e.c64(g.experts), e.c64(1), {e.c64(0), e.c64(g.experts), e.c64(0)},
          [&](Value ex, ValueRange c) -> SmallVector<Value> {
            Value count = g.expertCount(e, ex).second;
            Value tiles = e.divu(e.add(count, kTileTokens - 1), kTileTokens);
            Value hit = arith::AndIOp::create(
                e.b, e.ult(c[0], e.add(j, 1)), e.ult(j, e.add(c[0], tiles)));
            return {e.add(c[0], tiles), e.select(hit, ex, c[1]),
                    e.select(hit, e.mul(e.sub(j, c[0]), kTileTokens), c[2])};
          });
      Value ex = found[1], m0 = found[2];
      e.when(e.ult(ex, e.c64(g.experts)), [&] {
        auto [start, count] = g.expertCount(e, ex);
        Value last = e.add(count, e.c64(-1));
        auto pair = [&](Value r) {
          Value i = e.add(m0, r);
          return std::make_pair(e.ult(i, count), g.pairOf(e, e.add(start, e.minu(i, last))));
        };
        TileRows rows;
        rows.source = [&](KernelEmitter &e, Value r) {
          auto [valid, tk] = pair(r);
          return std::make_pair(valid, g.codesOf(e, tk.first, tk.second));
        };
        rows.out = [&](KernelEmitter &e, Value r) {
          auto tk = pair(r).second;
          return g.outOf(e, tk.first, tk.second);
        };
        auto [w, scale] = g.weightOf(e, a, ex);
        emitTile(e, a, smem, n0, w, scale, Value(), a.scratch, rows);
      });
    });
  }
};


/// Absorbed MLA attention for one (token, head) per warp: scores of the latent
/// query with every cached latent row j <= positions[t] of the token's sequence
/// plus the rope parts, an online softmax, and the latents weighted by it.
struct LatentAttention {
  int64_t heads = 0, latentDim = 0, ropeDim = 0;
  int64_t qLatCols = 0;              ///< columns of the latent queries (heads * C)
  int64_t qCols = 0, qStride = 0, qRopeOffset = 0;
  int64_t outCols = 0;
  float scale = 1.0f;
  plan::DType stateType = plan::DType::F32;

  /// Decode batches (up to kSplitMaxTokens tokens) split each (token, head)'s rows
  /// into kSplits chunks, a warp each, then combine the partial softmaxes: 16x the
  /// warps where one token's 128 heads alone would leave most SMs idle.
  static constexpr int64_t kSplits = 16;
  static constexpr unsigned kSplitMaxTokens = 16;

  std::string key() const {
    return llvm::formatv("h{0}c{1}r{2}_ql{3}_q{4}s{5}o{6}_o{7}_{8}_s{9:x}", heads, latentDim,
                         ropeDim, qLatCols, qCols, qStride, qRopeOffset, outCols,
                         dtypeSuffix(stateType), llvm::bit_cast<uint32_t>(scale));
  }
  int64_t lanesPerDim() const { return (latentDim + kWarp - 1) / kWarp; }
  /// Scratch per token of the split form: per head and split, m, l and C sums.
  uint64_t splitScratchPerToken() const {
    return uint64_t(heads * kSplits * (latentDim + 2)) * sizeof(float);
  }

  /// The online softmax of token t, head h over rows [begin, end) of its sequence:
  /// {max, sum of exp, then this lane's cPer weighted latent sums}, and the lane's
  /// dims with their validity.
  SmallVector<Value> attend(KernelEmitter &e, Value qLat, Value q, Value t, Value h, Value seq,
                            Value latent, Value latentRows, Value rope, Value ropeRows,
                            Value begin, Value end, SmallVector<Value> &dims,
                            SmallVector<Value> &dimOk) const {
    Value lane = e.remu(e.threadId(), kWarp);
    int64_t cPer = lanesPerDim(), rPer = (ropeDim + kWarp - 1) / kWarp;
    // This lane's dims: d = lane + 32 i (clamped loads, masked sums).
    SmallVector<Value> qv, ropeDims, qr;
    Value qLatBase = e.add(e.mul(t, qLatCols), e.mul(h, latentDim));
    Value qBase = e.add(e.add(e.mul(t, qCols), e.mul(h, qStride)), qRopeOffset);
    for (int64_t i = 0; i < cPer; ++i) {
      Value d = e.add(lane, i * kWarp);
      Value ok = e.ult(d, e.c64(latentDim));
      Value dc = e.minu(d, e.c64(latentDim - 1));
      dims.push_back(dc);
      dimOk.push_back(ok);
      qv.push_back(e.select(ok, e.load(e.f32, qLat, e.add(qLatBase, dc)), e.cf(0.0f)));
    }
    for (int64_t i = 0; i < rPer; ++i) {
      Value d = e.add(lane, i * kWarp);
      Value ok = e.ult(d, e.c64(ropeDim));
      Value dc = e.minu(d, e.c64(ropeDim - 1));
      ropeDims.push_back(dc);
      qr.push_back(e.select(ok, e.load(e.f32, q, e.add(qBase, dc)), e.cf(0.0f)));
    }
    Value latentBase = e.mul(seq, latentRows), ropeBase = e.mul(seq, ropeRows);
    SmallVector<Value> init = {e.cf(-INFINITY), e.cf(0.0f)};
    for (int64_t i = 0; i < cPer; ++i)
      init.push_back(e.cf(0.0f));
    return e.loop(begin, end, e.c64(1), init, [&](Value j, ValueRange carried) {
      Value latentRow = e.mul(e.add(latentBase, j), latentDim);
      Value ropeRow = e.mul(e.add(ropeBase, j), ropeDim);
      SmallVector<Value> c;
      Value partial = e.cf(0.0f);
      for (int64_t i = 0; i < cPer; ++i) {
        c.push_back(e.loadAsF32(stateType, latent, e.add(latentRow, dims[i])));
        partial = e.fma(qv[i], c[i], partial);
      }
      for (int64_t i = 0; i < rPer; ++i)
        partial = e.fma(qr[i], e.loadAsF32(stateType, rope, e.add(ropeRow, ropeDims[i])), partial);
      Value s = e.fmul(e.warpSum(partial), e.cf(scale));
      Value m = carried[0], l = carried[1];
      Value mNew = e.fmax(m, s);
      Value correction = e.exp(e.fsub(m, mNew));
      Value p = e.exp(e.fsub(s, mNew));
      SmallVector<Value> next = {mNew, e.fma(l, correction, p)};
      for (int64_t i = 0; i < cPer; ++i)
        next.push_back(e.fma(p, c[i], e.fmul(carried[2 + i], correction)));
      return next;
    });
  }

  /// One warp per (token blockIdx.x, head blockIdx.y) over all of its rows.
  void emit(KernelEmitter &e, Value qLat, Value q, Value positions, Value seqIds, Value latent,
            Value latentRows, Value rope, Value ropeRows, Value out) const {
    Value t = e.blockId(gpu::Dimension::x);
    Value h = e.blockId(gpu::Dimension::y);
    Value pos = e.toI64(e.load(e.i32, positions, t));
    Value seq = e.toI64(e.load(e.i32, seqIds, t));
    SmallVector<Value> dims, dimOk;
    SmallVector<Value> state = attend(e, qLat, q, t, h, seq, latent, latentRows, rope, ropeRows,
                                      e.c64(0), e.add(pos, 1), dims, dimOk);
    Value inv = e.fdiv(e.cf(1.0f), state[1]);
    Value outBase = e.add(e.mul(t, outCols), e.mul(h, latentDim));
    for (int64_t i = 0; i < lanesPerDim(); ++i)
      e.when(dimOk[i], [&] { e.store(e.fmul(state[2 + i], inv), out, e.add(outBase, dims[i])); });
  }

  /// Split form, phase 1: warp (t, h, split blockIdx.z) over its chunk of the rows,
  /// ceil(rows / kSplits) each (an empty chunk leaves m = -inf, l = 0); the partial
  /// state into scratch.
  void emitSplit(KernelEmitter &e, Value qLat, Value q, Value positions, Value seqIds,
                 Value latent, Value latentRows, Value rope, Value ropeRows,
                 Value scratch) const {
    Value t = e.blockId(gpu::Dimension::x);
    Value h = e.blockId(gpu::Dimension::y);
    Value split = e.blockId(gpu::Dimension::z);
    Value lane = e.remu(e.threadId(), kWarp);
    Value pos = e.toI64(e.load(e.i32, positions, t));
    Value seq = e.toI64(e.load(e.i32, seqIds, t));
    Value rows = e.add(pos, 1);
    Value chunk = e.divu(e.add(rows, kSplits - 1), kSplits);
    Value begin = e.minu(e.mul(split, chunk), rows);
    Value end = e.minu(e.add(begin, chunk), rows);
    SmallVector<Value> dims, dimOk;
    SmallVector<Value> state = attend(e, qLat, q, t, h, seq, latent, latentRows, rope, ropeRows,
                                      begin, end, dims, dimOk);
    Value base = e.mul(e.add(e.mul(e.add(e.mul(t, heads), h), kSplits), split), latentDim + 2);
    e.when(e.ieq(lane, e.c64(0)), [&] {
      e.store(state[0], scratch, base);
      e.store(state[1], scratch, e.add(base, 1));
    });
    for (int64_t i = 0; i < lanesPerDim(); ++i)
      e.when(dimOk[i], [&] { e.store(state[2 + i], scratch, e.add(e.add(base, 2), dims[i])); });
  }

  /// Split form, phase 2: warp (t, h) merges its kSplits partial softmaxes.
  void emitCombine(KernelEmitter &e, Value scratch, Value out) const {
    Value t = e.blockId(gpu::Dimension::x);
    Value h = e.blockId(gpu::Dimension::y);
    Value lane = e.remu(e.threadId(), kWarp);
    Value first = e.mul(e.mul(e.add(e.mul(t, heads), h), kSplits), latentDim + 2);
    auto at = [&](int64_t split, int64_t field) { return e.add(first, split * (latentDim + 2) + field); };
    Value m = e.cf(-INFINITY);
    for (int64_t sp = 0; sp < kSplits; ++sp)
      m = e.fmax(m, e.load(e.f32, scratch, at(sp, 0)));
    SmallVector<Value> weights;
    Value l = e.cf(0.0f);
    for (int64_t sp = 0; sp < kSplits; ++sp) {
      // An empty chunk: exp(-inf - m) = 0 (m is finite: chunk 0 holds row 0).
      Value w = e.exp(e.fsub(e.load(e.f32, scratch, at(sp, 0)), m));
      weights.push_back(w);
      l = e.fma(e.load(e.f32, scratch, at(sp, 1)), w, l);
    }
    Value inv = e.fdiv(e.cf(1.0f), l);
    Value outBase = e.add(e.mul(t, outCols), e.mul(h, latentDim));
    for (int64_t i = 0; i < lanesPerDim(); ++i) {
      Value d = e.add(lane, i * kWarp);
      e.when(e.ult(d, e.c64(latentDim)), [&] {
        Value sum = e.cf(0.0f);
        for (int64_t sp = 0; sp < kSplits; ++sp)
          sum = e.fma(e.load(e.f32, scratch, e.add(at(sp, 2), d)), weights[size_t(sp)], sum);
        e.store(e.fmul(sum, inv), out, e.add(outBase, d));
      });
    }
  }
};

/// A router's scratch per token: logits, score, sel, taken [E]; group score, kept [G].
int64_t routerScratchBytes(const plan::RouterAttrsT &a) {
  return 4 * (4 * int64_t(a.experts) + 2 * int64_t(a.groups));
}

/// The routed experts' grouped GEMM: its two GEMMs and a token's scratch row (bytes):
/// x's codes and scales | its K list entries (i32) | the first row only: (first
/// entry, pairs) per expert | per choice k, at pairBase + k pairBytes: a work area of
/// max(3I, D) floats (the 2I products, then h; later the D outputs) and, at hCodes
/// into it, h's codes and scales.
struct ExpertGemms {
  WgmmaLinear g1, g2;
  int64_t listOff = 0, countsOff = 0, pairBase = 0, hCodes = 0, pairBytes = 0, row = 0;
};

/// An RMSNorm and the FP8 GEMMs right after it, in its entry point, that multiply its
/// normed output on sm_90a's FP8 tensor cores: linear steps, an MLP's first GEMM, the
/// routed experts' grouped GEMM, with routers between them (a router reads the same
/// output; DeepSeek's MoE layer is norm, router, routed experts, shared experts).
/// From 16 tokens the norm's kernel also writes the 1x128 codes and scales of the row
/// it normalised at the start of each token's scratch row, and the consumers have no
/// quantize kernel for it. The group's steps share one scratch row of q.rowBytes (the
/// largest any of them needs), so that no step between writes over the codes: every
/// consumer keeps them at its row's start and its own data after them, a router its
/// scratch at routerOffset.
struct NormQuant {
  uint32_t end = 0;           ///< one past the group's last consumer
  WgmmaLinear q;              ///< the quantization the norm writes (rowBytes set)
  int64_t routerOffset = 0;   ///< bytes into a row: a router's scratch
};

/// Builds the kernel specs of each step.
class SpecBuilder {
public:
  explicit SpecBuilder(const plan::PlanT &plan) : plan(plan) {}

  /// The kernels of step `index`, in launch order; empty when it has none yet.
  llvm::Error build(uint32_t index, std::vector<KernelSpec> *out);

private:
  /// Fails unless every index of `step` is in range and it has the operands,
  /// results and weights its kind's generator reads; then the accessors below are
  /// safe.
  llvm::Error check(const plan::StepT &step) const;
  const plan::BufferT &buffer(const plan::StepT &step, bool result, size_t i) const {
    return *plan.buffers[size_t((result ? step.results : step.operands)[i])];
  }
  const plan::WeightT &weight(const plan::StepT &step, size_t i) const {
    return *plan.weights[size_t(step.weights[i])];
  }
  /// Index among the pointer arguments of weight i (its scale is the next one).
  unsigned weightPointer(const plan::StepT &step, size_t i) const {
    unsigned n = unsigned(step.operands.size() + step.results.size());
    for (size_t j = 0; j < i; ++j)
      n += weight(step, j).block_scale >= 0 ? 2 : 1;
    return n;
  }
  /// Pointer arguments of the step: buffers, then weights with their scales.
  unsigned numPointers(const plan::StepT &step) const {
    return weightPointer(step, step.weights.size());
  }
  /// The state dtype the step's states share (false when they differ).
  bool stateType(const plan::StepT &step, plan::DType *out) const {
    if (step.states.empty())
      return false;
    for (int32_t s : step.states)
      if (plan.states[s]->dtype != plan.states[step.states[0]]->dtype)
        return false;
    *out = plan.states[step.states[0]]->dtype;
    return *out == plan::DType::F32 || *out == plan::DType::BF16 ||
           *out == plan::DType::F8E4M3;
  }

  llvm::Error embedding(const plan::StepT &step, std::vector<KernelSpec> *out);
  llvm::Error rmsNorm(const plan::StepT &step, std::vector<KernelSpec> *out);
  llvm::Error elementwise(const plan::StepT &step, std::vector<KernelSpec> *out);
  llvm::Error linear(const plan::StepT &step, std::vector<KernelSpec> *out);
  llvm::Error rope(const plan::StepT &step, std::vector<KernelSpec> *out);
  llvm::Error cacheStore(const plan::StepT &step, std::vector<KernelSpec> *out);
  llvm::Error latentAttention(const plan::StepT &step, std::vector<KernelSpec> *out);
  llvm::Error expandedAttention(const plan::StepT &step, std::vector<KernelSpec> *out);
  llvm::Error mlp(const plan::StepT &step, std::vector<KernelSpec> *out);
  /// A SwiGLU's two products ([gate_up, down] weights, the first expert's for routed
  /// experts) as FP8 GEMMs (FP8 weights and activations, sm_90a), in their plain
  /// shapes; none when they do not apply.
  std::optional<std::pair<WgmmaLinear, WgmmaLinear>> swigluGemms(const plan::StepT &step) const;
  /// A fused_swiglu_mlp step's two FP8 GEMMs with their scratch layout; none when its
  /// products do not take the GEMM. `rowBytes`, when larger than the layout's own,
  /// spaces the scratch rows further apart (a norm group's shared row, NormQuant).
  std::optional<std::pair<WgmmaLinear, WgmmaLinear>> mlpGemms(const plan::StepT &step,
                                                              int64_t rowBytes = 0) const;
  /// A fused_moe_experts step's grouped GEMM (FP8 weights and activations, sm_90a,
  /// top-k up to 64) with a token's scratch row; none when it does not apply.
  std::optional<ExpertGemms> expertGemms(const plan::StepT &step, int64_t rowBytes = 0) const;
  /// The matrix-vector shape of a linear or head_linear step (false: no kernel).
  bool linearShapeOf(const plan::StepT &step, MatVec *out) const;
  /// The FP8 GEMMs that read RMSNorm step `normIndex`'s normed output right after it
  /// (NormQuant); none when there are none.
  std::optional<NormQuant> normQuant(uint32_t normIndex) const;
  /// The norm group step `index` belongs to as a consumer or a router between them.
  std::optional<NormQuant> normQuantOf(uint32_t index) const;

public:
  const plan::PlanT &plan;
  bool sm90 = false;
  uint32_t current = 0;
};

llvm::Error SpecBuilder::embedding(const plan::StepT &step, std::vector<KernelSpec> *out) {
  const plan::WeightT &w = weight(step, 0);
  if (w.shape.size() != 2 || !unquantized(w.dtype))
    return llvm::Error::success();
  int64_t vocab = w.shape[0], dim = w.shape[1];
  plan::DType dtype = w.dtype;
  KernelSpec spec;
  spec.name = llvm::formatv("moec_embedding_{0}x{1}_{2}", vocab, dim, dtypeSuffix(dtype));
  spec.numPointers = 3; // tokens, out, table
  spec.body = [=](KernelEmitter &e, const KernelArgs &a) {
    Value t = e.blockId(gpu::Dimension::x);
    Value id = e.toI64(e.load(e.i32, a.ptrs[0], t));
    // Ids are checked by the runtime before a call; one out of range reads row 0.
    Value row = e.select(e.ult(id, e.c64(vocab)), id, e.c64(0));
    e.loop(e.threadId(), e.c64(dim), e.c64(256), [&](Value j) {
      Value v = e.loadAsF32(dtype, a.ptrs[2], e.add(e.mul(row, dim), j));
      e.store(v, a.ptrs[1], e.add(e.mul(t, dim), j));
    });
  };
  out->push_back(std::move(spec));
  return llvm::Error::success();
}

llvm::Error SpecBuilder::rmsNorm(const plan::StepT &step, std::vector<KernelSpec> *out) {
  bool withAdd = step.kind == plan::StepKind::AddRmsNorm;
  const plan::WeightT &gamma = weight(step, 0);
  int64_t cols = tokenCols(buffer(step, false, 0));
  if (!unquantized(gamma.dtype) || gamma.shape.size() != 1 || gamma.shape[0] != cols)
    return llvm::Error::success();
  const auto *attrs = step.attrs.AsRmsNormAttrs();
  float eps = attrs ? attrs->eps : 1e-6f;
  plan::DType dtype = gamma.dtype;
  KernelSpec spec;
  spec.name = llvm::formatv("moec_{0}_{1}_{2}_eps{3:x}", withAdd ? "add_rms_norm" : "rms_norm",
                            cols, dtypeSuffix(dtype), llvm::bit_cast<uint32_t>(eps));
  spec.block = kWarp; // one warp per token row
  spec.numPointers = withAdd ? 5 : 3; // [a, b,] (x,) [sum,] y, gamma
  // The norm; returns 1 / rms of the row.
  auto norm = [=](KernelEmitter &e, const KernelArgs &a) {
    const auto &p = a.ptrs;
    Value t = e.blockId(gpu::Dimension::x);
    Value lane = e.threadId();
    Value base = e.mul(t, cols);
    Value src = withAdd ? p[2] : p[0]; // the row normalised: sum, or x
    Value y = withAdd ? p[3] : p[1];
    Value g = withAdd ? p[4] : p[2];
    Value partial = e.loop(lane, e.c64(cols), e.c64(kWarp), {e.cf(0.0f)},
                           [&](Value j, ValueRange acc) -> SmallVector<Value> {
                             Value i = e.add(base, j);
                             Value v;
                             if (withAdd) {
                               v = e.fadd(e.load(e.f32, p[0], i), e.load(e.f32, p[1], i));
                               e.store(v, p[2], i);
                             } else {
                               v = e.load(e.f32, p[0], i);
                             }
                             return {e.fma(v, v, acc[0])};
                           })[0];
    Value mean = e.fdiv(e.warpSum(partial), e.cf(float(cols)));
    Value root = LLVM::CallIntrinsicOp::create(e.b, e.f32, e.b.getStringAttr("llvm.nvvm.sqrt.rn.f"),
                                               ValueRange{e.fadd(mean, e.cf(eps))})
                     .getResult(0);
    Value inv = e.fdiv(e.cf(1.0f), root);
    e.loop(lane, e.c64(cols), e.c64(kWarp), [&](Value j) {
      Value i = e.add(base, j);
      Value normed = e.fmul(e.load(e.f32, src, i), inv);
      e.store(e.fmul(normed, e.loadAsF32(dtype, g, j)), y, i);
    });
    return inv;
  };
  spec.body = [=](KernelEmitter &e, const KernelArgs &a) { norm(e, a); };
  std::optional<NormQuant> group = normQuant(current); // its consumers' K is cols
  if (!group) {
    out->push_back(std::move(spec));
    return llvm::Error::success();
  }
  // The FP8 GEMMs after it read this row quantized (spec section 3's 1x128 blocks):
  // from 16 tokens the kernel writes the codes and scales into their scratch as a
  // GEMM's own quantize kernel would, each value recomputed exactly as y's (the
  // inputs are read again: the warp's lanes wrote y's columns in another order).
  KernelSpec fused = spec;
  spec.maxTokens = WgmmaLinear::kMinTokens - 1;
  out->push_back(std::move(spec));
  WgmmaLinear q = group->q;
  fused.name += llvm::formatv("_fp8q_{0}_r{1}", q.key(), q.scratchPerToken()).str();
  fused.scratchPerToken = uint64_t(q.scratchPerToken());
  fused.minTokens = WgmmaLinear::kMinTokens;
  fused.body = [=](KernelEmitter &e, const KernelArgs &a) {
    Value inv = norm(e, a);
    const auto &p = a.ptrs;
    Value t = e.blockId(gpu::Dimension::x);
    Value lane = e.threadId();
    Value base = e.mul(t, cols);
    Value g = withAdd ? p[4] : p[2];
    Value row = e.add(e.mul(t, q.scratchPerToken()), q.codesOffset);
    e.loop(e.c64(0), e.c64(q.blocks()), e.c64(1), [&](Value kb) {
      q.quantizeBlock(e, a, kb, lane, row, [&](Value j) {
        Value i = e.add(base, j);
        Value v = withAdd ? e.fadd(e.load(e.f32, p[0], i), e.load(e.f32, p[1], i))
                          : e.load(e.f32, p[0], i);
        return e.fmul(e.fmul(v, inv), e.loadAsF32(dtype, g, j));
      });
    });
  };
  out->push_back(std::move(fused));
  return llvm::Error::success();
}

/// add and slice_columns: a block per token.
llvm::Error SpecBuilder::elementwise(const plan::StepT &step, std::vector<KernelSpec> *out) {
  bool isAdd = step.kind == plan::StepKind::Add;
  int64_t inCols = tokenCols(buffer(step, false, 0)), outCols = tokenCols(buffer(step, true, 0));
  int64_t begin = 0;
  if (isAdd) {
    if (tokenCols(buffer(step, false, 1)) != inCols || outCols != inCols)
      return llvm::Error::success();
  } else {
    const auto *a = step.attrs.AsSliceAttrs();
    if (!a || a->width != outCols || a->begin < 0 || a->begin + a->width > inCols)
      return llvm::Error::success();
    begin = a->begin;
  }
  KernelSpec spec;
  spec.name = isAdd ? llvm::formatv("moec_add_{0}", outCols).str()
                    : llvm::formatv("moec_slice_{0}_{1}_{2}", inCols, begin, outCols).str();
  spec.numPointers = isAdd ? 3 : 2;
  spec.body = [=](KernelEmitter &e, const KernelArgs &a) {
    const auto &p = a.ptrs;
    Value t = e.blockId(gpu::Dimension::x);
    e.loop(e.threadId(), e.c64(outCols), e.c64(256), [&](Value j) {
      Value v = isAdd ? e.fadd(e.load(e.f32, p[0], e.add(e.mul(t, inCols), j)),
                               e.load(e.f32, p[1], e.add(e.mul(t, inCols), j)))
                      : e.load(e.f32, p[0], e.add(e.add(e.mul(t, inCols), begin), j));
      e.store(v, p[isAdd ? 2 : 1], e.add(e.mul(t, outCols), j));
    });
  };
  out->push_back(std::move(spec));
  return llvm::Error::success();
}

bool SpecBuilder::linearShapeOf(const plan::StepT &step, MatVec *out) const {
  const plan::WeightT &w = weight(step, 0);
  MatVec m;
  if (!weightAccess(plan, w, &m.weight))
    return false; // int8 (W8A8) has no GPU kernel yet
  m.n = w.shape[0];
  m.k = w.shape[1];
  if (step.kind == plan::StepKind::HeadLinear) {
    const auto *a = step.attrs.AsHeadLinearAttrs();
    if (!a)
      return false;
    m.heads = a->heads;
    m.xStride = a->in_stride;
    m.xOffset = a->in_offset;
    m.rowStride = a->row_stride;
    m.rowOffset = a->row_offset;
    m.transpose = a->transpose;
    m.k = a->in_width;
    m.n = m.transpose ? w.shape[1] : a->rows;
  }
  m.xCols = tokenCols(buffer(step, false, 0));
  m.yCols = tokenCols(buffer(step, true, 0));
  // As on the CPU (isa/Linear.h): the transposed head_linear (q_nope through W_UK)
  // multiplies its input unrounded.
  m.acts = m.transpose ? Acts::F32 : actsOf(step);
  if (m.yCols != m.outputs())
    return false;
  *out = m;
  return true;
}

std::optional<std::pair<WgmmaLinear, WgmmaLinear>>
SpecBuilder::swigluGemms(const plan::StepT &step) const {
  if (!sm90 || actsOf(step) != Acts::Fp8 || step.weights.size() < 2 || step.operands.empty() ||
      step.results.empty())
    return std::nullopt;
  WeightAccess gateUp, down;
  const plan::WeightT &gw = weight(step, 0), &dw = weight(step, 1);
  if (!weightAccess(plan, gw, &gateUp) || !weightAccess(plan, dw, &down) ||
      gw.shape.size() != 2 || dw.shape.size() != 2)
    return std::nullopt;
  const int64_t D = tokenCols(buffer(step, false, 0)), I = gw.shape[0] / 2;
  if (gw.shape[0] != 2 * I || gw.shape[1] != D || dw.shape[0] != D || dw.shape[1] != I ||
      tokenCols(buffer(step, true, 0)) != D)
    return std::nullopt;
  MatVec gu, dn;
  gu.n = 2 * I, gu.k = D, gu.xCols = D, gu.yCols = 2 * I, gu.weight = gateUp, gu.acts = Acts::Fp8;
  dn.n = D, dn.k = I, dn.xCols = I, dn.yCols = D, dn.weight = down, dn.acts = Acts::Fp8;
  if (!WgmmaLinear::applies(gu, sm90) || !WgmmaLinear::applies(dn, sm90))
    return std::nullopt;
  return std::make_pair(linearShape<WgmmaLinear>(gu), linearShape<WgmmaLinear>(dn));
}

std::optional<std::pair<WgmmaLinear, WgmmaLinear>>
SpecBuilder::mlpGemms(const plan::StepT &step, int64_t rowBytes) const {
  std::optional<std::pair<WgmmaLinear, WgmmaLinear>> gemms;
  if (step.kind != plan::StepKind::FusedSwigluMlp || step.weights.size() != 2 ||
      !(gemms = swigluGemms(step)))
    return std::nullopt;
  auto [g1, g2] = *gemms;
  const int64_t I = g2.k;
  // A scratch row: x's codes and scales | the 2I products | h (I) | h's codes and scales.
  const int64_t pOff = g1.regionBytes(), hOff = pOff + 8 * I, qOff = hOff + 4 * I;
  const int64_t row = std::max(qOff + g2.regionBytes(), rowBytes);
  g1.rowBytes = g2.rowBytes = row;
  g1.yCols = row / 4;
  g1.yOffset = pOff / 4;
  g2.xCols = row / 4;
  g2.xOffset = hOff / 4;
  g2.codesOffset = qOff;
  g2.mapIndex = 1;
  return std::make_pair(g1, g2);
}

std::optional<ExpertGemms> SpecBuilder::expertGemms(const plan::StepT &step,
                                                     int64_t rowBytes) const {
  // The first expert's weights (mlp() checks that every expert's match them).
  std::optional<std::pair<WgmmaLinear, WgmmaLinear>> gemms;
  if (step.kind != plan::StepKind::FusedMoeExperts || step.weights.size() % 2 ||
      step.operands.size() < 2 || !(gemms = swigluGemms(step)))
    return std::nullopt;
  const int64_t D = gemms->first.k, I = gemms->second.k;
  const int64_t K = tokenCols(buffer(step, false, 1));
  if (K <= 0 || K > 64)
    return std::nullopt;
  ExpertGemms g;
  g.g1 = gemms->first;
  g.g2 = gemms->second;
  auto align16 = [](int64_t v) { return (v + 15) / 16 * 16; };
  const int64_t experts = int64_t(step.weights.size() / 2);
  g.listOff = g.g1.regionBytes();
  g.countsOff = g.listOff + align16(4 * K);
  g.pairBase = g.countsOff + align16(8 * experts);
  const int64_t work = std::max(3 * I, D); // floats
  g.hCodes = align16(4 * work);
  g.pairBytes = g.hCodes + g.g2.regionBytes();
  g.row = std::max(g.pairBase + K * g.pairBytes, rowBytes);
  g.g1.rowBytes = g.g2.rowBytes = g.row;
  g.g2.xCols = g.row / 4;
  g.g2.xOffset = g.pairBase / 4 + 2 * I;
  g.g2.codesOffset = g.pairBase + g.hCodes;
  g.g2.subRows = K;
  g.g2.subStrideBytes = g.pairBytes;
  return g;
}

std::optional<NormQuant> SpecBuilder::normQuant(uint32_t normIndex) const {
  if (!sm90 || normIndex + 1 >= plan.steps.size())
    return std::nullopt;
  const plan::StepT &norm = *plan.steps[normIndex];
  if ((norm.kind != plan::StepKind::RmsNorm && norm.kind != plan::StepKind::AddRmsNorm) ||
      llvm::errorToBool(check(norm)))
    return std::nullopt;
  const size_t normed = norm.kind == plan::StepKind::AddRmsNorm ? 1 : 0;
  if (norm.results.size() <= normed)
    return std::nullopt;
  const int32_t y = norm.results[normed];
  const int64_t cols = tokenCols(buffer(norm, true, normed));
  // The steps of its entry point run one after the other on one stream.
  uint64_t entryEnd = 0;
  for (const auto &entry : plan.entry_points)
    if (entry->first_step <= normIndex && normIndex < uint64_t(entry->first_step) + entry->num_steps)
      entryEnd = uint64_t(entry->first_step) + entry->num_steps;
  NormQuant group;
  std::optional<WgmmaLinear> q;
  // Routers count once a consumer follows them.
  int64_t row = 0, routerBytes = 0, pendingRouterBytes = 0;
  for (uint32_t j = normIndex + 1; j < entryEnd; ++j) {
    const plan::StepT &s = *plan.steps[j];
    if (llvm::errorToBool(check(s)) || s.operands.empty() || s.operands[0] != y)
      break;
    if (s.kind == plan::StepKind::Router) {
      const auto *a = s.attrs.AsRouterAttrs();
      if (!a)
        break;
      pendingRouterBytes = std::max(pendingRouterBytes, routerScratchBytes(*a));
      continue;
    }
    std::optional<WgmmaLinear> first;
    int64_t need = 0;
    MatVec m;
    if (s.kind == plan::StepKind::Linear) {
      if (!linearShapeOf(s, &m) || MmaLinear::applies(m) || !WgmmaLinear::applies(m, sm90))
        break;
      first = linearShape<WgmmaLinear>(m);
      need = first->regionBytes();
    } else if (auto mlp = mlpGemms(s)) {
      first = mlp->first;
      need = mlp->first.rowBytes;
    } else if (auto experts = expertGemms(s)) {
      first = experts->g1;
      need = experts->row;
    } else {
      break;
    }
    // Every consumer reads the same codes: K is the norm's width, the codes at the
    // start of the row.
    if (first->k != cols || first->xOffset != 0 || first->codesOffset != 0 ||
        (q && q->regionBytes() != first->regionBytes()))
      break;
    if (!q)
      q = first;
    row = std::max(row, need);
    routerBytes = std::max(routerBytes, pendingRouterBytes);
    group.end = j + 1;
  }
  if (!q)
    return std::nullopt;
  // A router between the consumers keeps its scratch after the codes.
  group.routerOffset = q->regionBytes();
  if (routerBytes > 0)
    row = std::max(row, group.routerOffset + routerBytes);
  group.q = *q;
  group.q.rowBytes = row;
  return group;
}

std::optional<NormQuant> SpecBuilder::normQuantOf(uint32_t index) const {
  // The nearest RMSNorm before it: a group ends at the first step that is neither a
  // consumer nor a router, a norm among them.
  for (uint32_t n = index; n-- > 0;) {
    const plan::StepKind kind = plan.steps[n]->kind;
    if (kind != plan::StepKind::RmsNorm && kind != plan::StepKind::AddRmsNorm)
      continue;
    std::optional<NormQuant> group = normQuant(n);
    if (group && index < group->end)
      return group;
    return std::nullopt;
  }
  return std::nullopt;
}

llvm::Error SpecBuilder::linear(const plan::StepT &step, std::vector<KernelSpec> *out) {
  MatVec m;
  if (!linearShapeOf(step, &m))
    return llvm::Error::success();
  bool fp8 = m.weight.fp8();
  if (step.kind == plan::StepKind::Linear && MmaLinear::applies(m)) {
    MmaLinear mma = linearShape<MmaLinear>(m);
    out->push_back(mma.spec("moec_linear_mma_" + mma.key()));
    return llvm::Error::success();
  }
  // Matrix-vector products: one token (decode of one sequence, memory-bound: each
  // block's warps on that token alone), and batches of up to `maxTokens` (0: any)
  // kTokenTile tokens per block.
  auto matVec = [&](unsigned maxTokens) {
    auto pick = [](KernelEmitter &, const KernelArgs &a) -> std::array<Value, 4> {
      return {a.ptrs[0], a.ptrs[1], a.ptrs[2], a.ptrs.size() > 3 ? a.ptrs[3] : a.ptrs[2]};
    };
    MatVec one = m;
    one.tokenTile = 1;
    KernelSpec decode = one.spec("moec_linear_" + one.key(), fp8 ? 4 : 3, 0, 0, pick);
    decode.maxTokens = 1;
    out->push_back(std::move(decode));
    KernelSpec batch = m.spec("moec_linear_" + m.key(), fp8 ? 4 : 3, 0, 0, pick);
    batch.minTokens = 2;
    batch.maxTokens = maxTokens;
    out->push_back(std::move(batch));
  };
  if (step.kind == plan::StepKind::Linear && WgmmaLinear::applies(m, sm90)) {
    // Prefill batches on the FP8 tensor cores, smaller ones as matrix-vector products.
    WgmmaLinear gemm = linearShape<WgmmaLinear>(m);
    matVec(WgmmaLinear::kMinTokens - 1);
    // Among the GEMMs right after the RMSNorm that makes its input, that step's kernel
    // has written the codes and scales (NormQuant) into the group's scratch rows: the
    // GEMM alone.
    std::string key = gemm.key();
    std::optional<NormQuant> group = normQuantOf(current);
    if (group && group->q.rowBytes != gemm.regionBytes()) {
      gemm.rowBytes = group->q.rowBytes;
      key += llvm::formatv("_r{0}", gemm.rowBytes).str();
    }
    const bool quantized = group.has_value();
    std::vector<KernelSpec> specs =
        gemm.specs("moec_linear_actquant_" + key, "moec_linear_wgmma_" + key, 4);
    for (size_t i = quantized ? 1 : 0; i < specs.size(); ++i)
      out->push_back(std::move(specs[i]));
    return llvm::Error::success();
  }
  matVec(0);
  return llvm::Error::success();
}

llvm::Error SpecBuilder::rope(const plan::StepT &step, std::vector<KernelSpec> *out) {
  const auto *a = step.attrs.AsRopeAttrs();
  int64_t cols = tokenCols(buffer(step, false, 0));
  if (!a || tokenCols(buffer(step, true, 0)) != cols || a->rope_dim <= 0 || a->rope_dim % 2 ||
      a->offset + (a->heads - 1) * a->head_stride + a->rope_dim > cols)
    return llvm::Error::success();
  cpu::RopeParams params;
  params.dim = a->rope_dim;
  params.theta = a->theta;
  if (a->yarn) {
    params.yarn = true;
    params.factor = a->yarn->factor;
    params.originalMaxPositions = a->yarn->original_max_position_embeddings;
    params.betaFast = a->yarn->beta_fast;
    params.betaSlow = a->yarn->beta_slow;
    params.attentionFactor = a->yarn->attention_factor;
  }
  if (params.dim > 64)
    return llvm::Error::success(); // the frequencies' select chain is meant for up to 32
  std::vector<float> freqs(size_t(params.dim / 2));
  cpu::ropeFrequencies(params, freqs.data());
  int64_t half = params.dim / 2, heads = a->heads, headStride = a->head_stride,
          offset = a->offset;
  bool interleaved = a->layout == plan::RopeLayout::Interleaved;
  float factor = params.attentionFactor;
  uint32_t freqHash = 0;
  for (float f : freqs)
    freqHash = freqHash * 31u + llvm::bit_cast<uint32_t>(f);
  KernelSpec spec;
  spec.name = llvm::formatv("moec_rope_{0}_h{1}s{2}o{3}_d{4}{5}_f{6:x}_a{7:x}", cols, heads,
                            headStride, offset, params.dim, interleaved ? "i" : "h", freqHash,
                            llvm::bit_cast<uint32_t>(factor));
  // Out of place, y also gets x's columns that are not rotated.
  bool inPlace = !step.results.empty() && !step.operands.empty() &&
                 step.results[0] == step.operands[0];
  if (!inPlace)
    spec.name += "_copy";
  spec.numPointers = 3; // x, positions, y
  spec.body = [=](KernelEmitter &e, const KernelArgs &args) {
    const auto &p = args.ptrs;
    Value t = e.blockId(gpu::Dimension::x);
    if (!inPlace)
      e.loop(e.threadId(), e.c64(cols), e.c64(256), [&](Value j) {
        // Column j is rotated when j >= offset, (j - offset) / stride < heads and
        // (j - offset) % stride < dim; the rotation below writes those.
        Value rel = e.sub(j, e.c64(offset));
        Value after = arith::CmpIOp::create(e.b, arith::CmpIPredicate::sge, j, e.c64(offset));
        Value head = arith::DivSIOp::create(e.b, rel, e.c64(headStride ? headStride : 1));
        Value within = arith::RemSIOp::create(e.b, rel, e.c64(headStride ? headStride : 1));
        Value rotated = arith::AndIOp::create(
            e.b, after,
            arith::AndIOp::create(
                e.b, arith::CmpIOp::create(e.b, arith::CmpIPredicate::slt, head, e.c64(heads)),
                arith::CmpIOp::create(e.b, arith::CmpIPredicate::slt, within,
                                      e.c64(2 * half))));
        Value i = e.add(e.mul(t, cols), j);
        e.when(arith::XOrIOp::create(e.b, rotated,
                                     arith::ConstantOp::create(e.b, e.b.getBoolAttr(true))),
               [&] { e.store(e.load(e.f32, p[0], i), p[2], i); });
      });
    Value pos = arith::SIToFPOp::create(e.b, e.f32, e.load(e.i32, p[1], t));
    e.loop(e.threadId(), e.c64(heads * half), e.c64(256), [&](Value idx) {
      Value h = e.divu(idx, half), j = e.remu(idx, half);
      // The frequency of pair j, a constant of the kernel: a select chain
      // over the half (at most 32) values.
      Value f = e.cf(freqs[0]);
      for (int64_t i = 1; i < half; ++i)
        f = e.select(e.ieq(j, e.c64(i)), e.cf(freqs[size_t(i)]), f);
      Value angle = arith::ExtFOp::create(e.b, e.f64, e.fmul(pos, f));
      auto [cosA, sinA] = e.cosSin(angle);
      Value c = e.fmul(arith::TruncFOp::create(e.b, e.f32, cosA), e.cf(factor));
      Value s = e.fmul(arith::TruncFOp::create(e.b, e.f32, sinA), e.cf(factor));
      Value base = e.add(e.add(e.mul(t, cols), e.mul(h, headStride)), offset);
      Value first = interleaved ? e.add(base, e.mul(j, 2)) : e.add(base, j);
      Value second = interleaved ? e.add(first, 1) : e.add(first, half);
      Value x0 = e.load(e.f32, p[0], first), x1 = e.load(e.f32, p[0], second);
      Value negS = e.fsub(e.cf(0.0f), s);
      e.store(e.fma(x1, negS, e.fmul(x0, c)), p[2], first);
      e.store(e.fma(x0, s, e.fmul(x1, c)), p[2], second);
    });
  };
  out->push_back(std::move(spec));
  return llvm::Error::success();
}

llvm::Error SpecBuilder::cacheStore(const plan::StepT &step, std::vector<KernelSpec> *out) {
  plan::DType dtype;
  if (step.states.size() != 2 || !stateType(step, &dtype))
    return llvm::Error::success();
  int64_t C = tokenCols(buffer(step, false, 0)), R = tokenCols(buffer(step, false, 1));
  KernelSpec spec;
  spec.name = llvm::formatv("moec_cache_store_c{0}r{1}_{2}", C, R, dtypeSuffix(dtype));
  spec.numPointers = 4; // c, pe, positions, seq_ids
  spec.numStates = 2;
  spec.body = [=](KernelEmitter &e, const KernelArgs &a) {
    const auto &p = a.ptrs;
    Value t = e.blockId(gpu::Dimension::x);
    Value pos = e.toI64(e.load(e.i32, p[2], t));
    Value seq = e.toI64(e.load(e.i32, p[3], t));
    Value latentRow = e.add(e.mul(seq, a.states[1]), pos);
    Value ropeRow = e.add(e.mul(seq, a.states[3]), pos);
    e.loop(e.threadId(), e.c64(C), e.c64(256), [&](Value j) {
      e.storeAs(dtype, e.load(e.f32, p[0], e.add(e.mul(t, C), j)), a.states[0],
                e.add(e.mul(latentRow, C), j));
    });
    e.loop(e.threadId(), e.c64(R), e.c64(256), [&](Value j) {
      e.storeAs(dtype, e.load(e.f32, p[1], e.add(e.mul(t, R), j)), a.states[2],
                e.add(e.mul(ropeRow, R), j));
    });
  };
  out->push_back(std::move(spec));
  return llvm::Error::success();
}

llvm::Error SpecBuilder::latentAttention(const plan::StepT &step, std::vector<KernelSpec> *out) {
  const auto *a = step.attrs.AsLatentAttentionAttrs();
  LatentAttention att;
  if (!a || step.states.size() != 2 || !stateType(step, &att.stateType))
    return llvm::Error::success();
  att.heads = a->heads;
  att.latentDim = a->latent_dim;
  att.ropeDim = a->rope_dim;
  att.qLatCols = tokenCols(buffer(step, false, 0));
  att.qCols = tokenCols(buffer(step, false, 1));
  att.qStride = a->q_stride;
  att.qRopeOffset = a->q_rope_offset;
  att.outCols = tokenCols(buffer(step, true, 0));
  att.scale = a->softmax_scale;
  if (att.latentDim > 32 * kWarp || att.ropeDim > 4 * kWarp)
    return llvm::Error::success(); // more accumulators per lane than registers
  // Decode (up to 16 tokens): split over the rows, then combined; larger batches
  // have warps enough with one per (token, head).
  KernelSpec split;
  split.name = "moec_latent_attention_split_" + att.key();
  split.numPointers = 5; // q_lat, q, positions, seq_ids, o
  split.numStates = 2;
  split.scratchPerToken = att.splitScratchPerToken();
  split.block = kWarp;
  split.gridY = unsigned(att.heads);
  split.gridZ = unsigned(LatentAttention::kSplits);
  split.maxTokens = LatentAttention::kSplitMaxTokens;
  split.body = [att](KernelEmitter &e, const KernelArgs &k) {
    att.emitSplit(e, k.ptrs[0], k.ptrs[1], k.ptrs[2], k.ptrs[3], k.states[0], k.states[1],
                  k.states[2], k.states[3], k.scratch);
  };
  out->push_back(std::move(split));
  KernelSpec combine;
  combine.name = "moec_latent_attention_combine_" + att.key();
  combine.numPointers = 5;
  combine.numStates = 2;
  combine.scratchPerToken = att.splitScratchPerToken();
  combine.block = kWarp;
  combine.gridY = unsigned(att.heads);
  combine.maxTokens = LatentAttention::kSplitMaxTokens;
  combine.body = [att](KernelEmitter &e, const KernelArgs &k) {
    att.emitCombine(e, k.scratch, k.ptrs[4]);
  };
  out->push_back(std::move(combine));
  KernelSpec spec;
  spec.name = "moec_latent_attention_" + att.key();
  spec.numPointers = 5; // q_lat, q, positions, seq_ids, o
  spec.numStates = 2;
  spec.block = kWarp;
  spec.gridY = unsigned(att.heads);
  spec.minTokens = LatentAttention::kSplitMaxTokens + 1;
  spec.body = [att](KernelEmitter &e, const KernelArgs &k) {
    att.emit(e, k.ptrs[0], k.ptrs[1], k.ptrs[2], k.ptrs[3], k.states[0], k.states[1],
             k.states[2], k.states[3], k.ptrs[4]);
  };
  out->push_back(std::move(spec));
  return llvm::Error::success();
}

/// expanded_attention in the absorbed order, three kernels through scratch:
/// q_lat = q_nope W_UK (per head), the latent attention, o = o_lat W_UV^T.
llvm::Error SpecBuilder::expandedAttention(const plan::StepT &step,
                                           std::vector<KernelSpec> *out) {
  const plan::WeightT &kvB = weight(step, 0);
  const auto *a = step.attrs.AsExpandedAttentionAttrs();
  LatentAttention att;
  WeightAccess wa;
  if (!a || step.states.size() != 2 || !stateType(step, &att.stateType) ||
      !weightAccess(plan, kvB, &wa))
    return llvm::Error::success();
  int64_t H = a->heads, nope = a->nope_dim, rope = a->rope_dim, v = a->v_dim,
          C = a->latent_dim;
  int64_t qCols = tokenCols(buffer(step, false, 0));
  if (qCols != H * (nope + rope) || tokenCols(buffer(step, true, 0)) != H * v || C > 32 * kWarp ||
      rope > 4 * kWarp)
    return llvm::Error::success();
  bool bf16Acts = step.activations == plan::DType::BF16;
  bool fp8 = wa.fp8();
  unsigned numPointers = fp8 ? 6 : 5; // q, positions, seq_ids, o, kv_b[, scale]
  uint64_t scratch = uint64_t(2 * H * C) * sizeof(float);
  // Scratch: q_lat [T, H*C], then o_lat [T, H*C] at T_max * H * C floats... per
  // token rows: q_lat at t*2HC, o_lat at t*2HC + HC.
  MatVec absorbQ;
  absorbQ.heads = H;
  absorbQ.n = C;
  absorbQ.k = nope;
  absorbQ.xCols = qCols;
  absorbQ.xStride = nope + rope;
  absorbQ.rowStride = nope + v;
  absorbQ.transpose = true;
  absorbQ.yCols = 2 * H * C;
  absorbQ.weight = wa;
  absorbQ.acts = Acts::F32; // the transposed product, unrounded as in q_absorb
  MatVec expandV;
  expandV.heads = H;
  expandV.n = v;
  expandV.k = C;
  expandV.xCols = 2 * H * C;
  expandV.xStride = C;
  expandV.xOffset = H * C;
  expandV.rowStride = nope + v;
  expandV.rowOffset = nope;
  expandV.yCols = H * v;
  expandV.weight = wa;
  // With bf16 activations the CPU's naive form rounds the latent rows it expands:
  // a no-op for the bf16 KV cache (the default), so neither absorbed product rounds.
  expandV.acts = Acts::F32;
  att.heads = H;
  att.latentDim = C;
  att.ropeDim = rope;
  att.qLatCols = 2 * H * C;
  att.qCols = qCols;
  att.qStride = nope + rope;
  att.qRopeOffset = nope;
  att.outCols = 2 * H * C;
  att.scale = a->softmax_scale;
  std::string key = llvm::formatv("moec_expanded_attention_{0}x{1}_{2}_h{3}n{4}r{5}v{6}c{7}_{8}{9}",
                                  kvB.shape[0], kvB.shape[1], wa.key(), H, nope, rope,
                                  v, C, dtypeSuffix(att.stateType),
                                  bf16Acts ? "_bf16acts" : "");
  out->push_back(absorbQ.spec(key + "_q", numPointers, 2, scratch,
                              [](KernelEmitter &, const KernelArgs &k) -> std::array<Value, 4> {
                                return {k.ptrs[0], k.scratch, k.ptrs[4],
                                        k.ptrs.size() > 5 ? k.ptrs[5] : k.ptrs[4]};
                              }));
  KernelSpec attend;
  attend.name = key + "_attend";
  attend.numPointers = numPointers;
  attend.numStates = 2;
  attend.scratchPerToken = scratch;
  attend.block = kWarp;
  attend.gridY = unsigned(H);
  attend.body = [att, H, C](KernelEmitter &e, const KernelArgs &k) {
    Value oLat = e.addr(e.f32, k.scratch, e.c64(H * C));
    att.emit(e, k.scratch, k.ptrs[0], k.ptrs[1], k.ptrs[2], k.states[0], k.states[1],
             k.states[2], k.states[3], oLat);
  };
  out->push_back(std::move(attend));
  out->push_back(expandV.spec(key + "_v", numPointers, 2, scratch,
                              [](KernelEmitter &, const KernelArgs &k) -> std::array<Value, 4> {
                                return {k.scratch, k.ptrs[3], k.ptrs[4],
                                        k.ptrs.size() > 5 ? k.ptrs[5] : k.ptrs[4]};
                              }));
  // expandV reads o_lat at xOffset H*C of each 2HC scratch row; the attend kernel
  // writes it there (its out pointer is scratch + H*C, row stride 2HC).
  return llvm::Error::success();
}

/// A kernel over each token's row (a block per token, 256 threads).
KernelSpec perToken(std::string name, unsigned numPointers, unsigned numStates,
                    uint64_t scratchPerToken, bool weightTable,
                    std::function<void(KernelEmitter &, const KernelArgs &, Value t)> body) {
  KernelSpec s;
  s.name = std::move(name);
  s.numPointers = numPointers;
  s.numStates = numStates;
  s.scratchPerToken = scratchPerToken;
  s.weightTable = weightTable;
  s.body = [body](KernelEmitter &e, const KernelArgs &a) {
    body(e, a, e.blockId(gpu::Dimension::x));
  };
  return s;
}

/// Where the gate and up rows of SwiGLU row i sit in a stacked gate_up weight
/// interleaved by units of `unit` rows (plan.fbs, fused_swiglu_mlp).
std::pair<Value, Value> gateUpRows(KernelEmitter &e, Value i, int64_t I, int64_t unit) {
  Value u = e.divu(i, unit);
  Value start = e.mul(u, unit);
  Value n = e.minu(e.c64(unit), e.sub(e.c64(I), start));
  Value gate = e.add(e.mul(start, 2), e.sub(i, start));
  return {gate, e.add(gate, n)};
}

/// swiglu_mlp, fused_swiglu_mlp, moe_experts, fused_moe_experts and router.
llvm::Error SpecBuilder::mlp(const plan::StepT &step, std::vector<KernelSpec> *out) {
  int64_t D = tokenCols(buffer(step, false, 0));
  Acts acts = actsOf(step);
  unsigned pointers = numPointers(step);

  if (step.kind == plan::StepKind::Router) {
    const auto *a = step.attrs.AsRouterAttrs();
    WeightAccess gate;
    if (!a || !weightAccess(plan, weight(step, 0), &gate) || gate.fp8() || a->experts <= 0 || a->top_k <= 0 ||
        a->top_k > a->experts || a->groups < 1 || a->experts % a->groups)
      return llvm::Error::success();
    int64_t E = a->experts, K = a->top_k, G = a->groups, topkGroups = a->topk_groups;
    bool hasBias = step.weights.size() > 1;
    if (hasBias && weight(step, 1).dtype != plan::DType::F32)
      return llvm::Error::success();
    bool softmax = a->score_func == plan::ScoreFunc::Softmax;
    bool top2 = a->group_score == plan::GroupScore::Top2Sum;
    bool norm = a->norm_topk_prob;
    float scaling = a->routed_scaling_factor;
    // Scratch per token: logits, score, sel, taken [E]; group score, kept [G]. Among a
    // norm's FP8 GEMMs (NormQuant) in the group's rows, after the codes the norm wrote.
    int64_t S = routerScratchBytes(*a) / 4, rowFloats = S, off = 0;
    std::optional<NormQuant> group = normQuantOf(current);
    if (group) {
      rowFloats = group->q.rowBytes / 4;
      off = group->routerOffset / 4;
    }
    MatVec logits;
    logits.n = E;
    logits.k = D;
    logits.xCols = D;
    logits.yCols = rowFloats;
    logits.yOffset = off;
    logits.weight = gate;
    std::string key = llvm::formatv("moec_router_{0}x{1}_{2}_k{3}g{4}t{5}_{6}{7}{8}{9}_s{10:x}",
                                    E, D, gate.key(), K, G, topkGroups,
                                    softmax ? "softmax" : "sigmoid", top2 ? "_top2" : "",
                                    norm ? "_norm" : "", hasBias ? "_bias" : "",
                                    llvm::bit_cast<uint32_t>(scaling));
    if (group)
      key += llvm::formatv("_r{0}o{1}", rowFloats * 4, off * 4).str();
    uint64_t scratch = uint64_t(rowFloats) * sizeof(float);
    out->push_back(logits.spec(key + "_logits", pointers, 0, scratch,
                               [](KernelEmitter &, const KernelArgs &k) -> std::array<Value, 4> {
                                 return {k.ptrs[0], k.scratch, k.ptrs[3], k.ptrs[3]};
                               }));
    // Selection: one thread per token, spec section 5 step for step (CPU Router.cpp).
    KernelSpec select;
    select.name = key + "_select";
    select.numPointers = pointers;
    select.scratchPerToken = scratch;
    select.block = kWarp;
    select.tokensPerBlock = kWarp;
    select.body = [=](KernelEmitter &e, const KernelArgs &k) {
      Value t = e.add(e.mul(e.blockId(gpu::Dimension::x), kWarp), e.threadId());
      e.when(e.ult(t, k.tokens), [&] {
        Value base = e.add(e.mul(t, rowFloats), off);
        Value sc = k.scratch;
        auto at = [&](int64_t array, Value i) { return e.add(e.add(base, array), i); };
        const int64_t L = 0, SCORE = E, SEL = 2 * E, TAKEN = 3 * E, GS = 4 * E, KEPT = 4 * E + G;
        Value zero = e.c64(0), one = e.c64(1);
        Value negInf = e.cf(-INFINITY);
        Value m = e.cf(-INFINITY), total = e.cf(0.0f);
        if (softmax) {
          m = e.loop(zero, e.c64(E), one, {negInf}, [&](Value i, ValueRange c) -> SmallVector<Value> {
            return {e.fmax(c[0], e.load(e.f32, sc, at(L, i)))};
          })[0];
          total = e.loop(zero, e.c64(E), one, {e.cf(0.0f)},
                         [&](Value i, ValueRange c) -> SmallVector<Value> {
                           Value v = e.exp(e.fsub(e.load(e.f32, sc, at(L, i)), m));
                           e.store(v, sc, at(SCORE, i));
                           return {e.fadd(c[0], v)};
                         })[0];
        }
        e.loop(zero, e.c64(E), one, [&](Value i) {
          Value l = e.load(e.f32, sc, at(L, i));
          Value score = softmax ? e.fdiv(e.load(e.f32, sc, at(SCORE, i)), total)
                                : e.fdiv(e.cf(1.0f), e.fadd(e.cf(1.0f), e.exp(e.fsub(e.cf(0.0f), l))));
          e.store(score, sc, at(SCORE, i));
          Value sel = hasBias ? e.fadd(score, e.load(e.f32, k.ptrs[4], i)) : score;
          e.store(sel, sc, at(SEL, i));
          e.store(e.cf(0.0f), sc, at(TAKEN, i));
        });
        // Index of the largest value of `array` whose flag in `flags` is 0, the lowest
        // on ties; -1 if none.
        auto argmaxFree = [&](int64_t array, int64_t flags, int64_t n) {
          SmallVector<Value> best = e.loop(
              zero, e.c64(n), one, {e.c64(-1), negInf}, [&](Value i, ValueRange c) -> SmallVector<Value> {
                Value v = e.load(e.f32, sc, at(array, i));
                Value free = arith::CmpFOp::create(e.b, arith::CmpFPredicate::OEQ,
                                                   e.load(e.f32, sc, at(flags, i)), e.cf(0.0f));
                Value none = arith::CmpIOp::create(e.b, arith::CmpIPredicate::slt, c[0], zero);
                Value better = arith::AndIOp::create(
                    e.b, free, arith::OrIOp::create(e.b, none, e.fgt(v, c[1])));
                return {e.select(better, i, c[0]), e.select(better, v, c[1])};
              });
          return best[0];
        };
        if (G > 1) {
          int64_t per = E / G;
          e.loop(zero, e.c64(G), one, [&](Value g) {
            SmallVector<Value> top = e.loop(
                zero, e.c64(per), one, {negInf, negInf}, [&](Value j, ValueRange c) -> SmallVector<Value> {
                  Value v = e.load(e.f32, sc, at(SEL, e.add(e.mul(g, per), j)));
                  Value first = e.fgt(v, c[0]);
                  Value second = arith::AndIOp::create(
                      e.b, arith::XOrIOp::create(e.b, first, arith::ConstantOp::create(e.b, e.b.getBoolAttr(true))),
                      e.fgt(v, c[1]));
                  return {e.select(first, v, c[0]),
                          e.select(first, c[0], e.select(second, v, c[1]))};
                });
            Value score = (!top2 || per < 2) ? top[0] : e.fadd(top[0], top[1]);
            e.store(score, sc, at(GS, g));
            e.store(e.cf(0.0f), sc, at(KEPT, g));
          });
          e.loop(zero, e.c64(std::min(topkGroups, G)), one, [&](Value) {
            e.store(e.cf(1.0f), sc, at(KEPT, argmaxFree(GS, KEPT, G)));
          });
          e.loop(zero, e.c64(E), one, [&](Value i) {
            Value kept = e.load(e.f32, sc, at(KEPT, e.divu(i, per)));
            Value dropped = arith::CmpFOp::create(e.b, arith::CmpFPredicate::OEQ, kept, e.cf(0.0f));
            e.when(dropped, [&] { e.store(negInf, sc, at(SEL, i)); });
          });
        }
        Value sum = e.loop(zero, e.c64(K), one, {e.cf(0.0f)}, [&](Value j, ValueRange c) -> SmallVector<Value> {
          Value best = argmaxFree(SEL, TAKEN, E);
          e.store(e.cf(1.0f), sc, at(TAKEN, best));
          Value w = e.load(e.f32, sc, at(SCORE, best));
          e.store(arith::TruncIOp::create(e.b, e.i32, best), k.ptrs[1], e.add(e.mul(t, K), j));
          e.store(w, k.ptrs[2], e.add(e.mul(t, K), j));
          return {e.fadd(c[0], w)};
        })[0];
        e.loop(zero, e.c64(K), one, [&](Value j) {
          Value i = e.add(e.mul(t, K), j);
          Value w = e.load(e.f32, k.ptrs[2], i);
          if (norm)
            w = e.fdiv(w, e.fadd(sum, e.cf(1e-20f)));
          e.store(e.fmul(w, e.cf(scaling)), k.ptrs[2], i);
        });
      });
    };
    out->push_back(std::move(select));
    return llvm::Error::success();
  }

  bool fused = step.kind == plan::StepKind::FusedSwigluMlp ||
               step.kind == plan::StepKind::FusedMoeExperts;
  bool experts = step.kind == plan::StepKind::MoeExperts ||
                 step.kind == plan::StepKind::FusedMoeExperts;
  size_t perExpert = fused ? 2 : 3;
  if (step.weights.size() < perExpert || step.weights.size() % perExpert ||
      (!experts && step.weights.size() != perExpert))
    return llvm::Error::success();
  // The first expert's (or the MLP's) weights; every expert must match them.
  SmallVector<WeightAccess, 3> wa(perExpert);
  SmallVector<std::vector<int64_t>, 3> shapes(perExpert);
  for (size_t i = 0; i < step.weights.size(); ++i) {
    WeightAccess access_;
    const plan::WeightT &w = weight(step, i);
    if (!weightAccess(plan, w, &access_))
      return llvm::Error::success();
    size_t role = i % perExpert;
    if (i < perExpert) {
      wa[role] = access_;
      shapes[role] = w.shape;
    } else if (access_.key() != wa[role].key() || w.shape != shapes[role]) {
      return llvm::Error::success();
    }
  }
  int64_t I = fused ? shapes[0][0] / 2 : shapes[0][0];
  const plan::WeightT &down = *plan.weights[step.weights[perExpert - 1]];
  if (shapes[0][1] != D || down.shape[0] != D || down.shape[1] != I ||
      tokenCols(buffer(step, true, 0)) != D || (fused && shapes[0][0] != 2 * I))
    return llvm::Error::success();
  int64_t unit = 0;
  if (fused) {
    unit = step.kind == plan::StepKind::FusedSwigluMlp
               ? (step.attrs.AsGateUpAttrs() ? step.attrs.AsGateUpAttrs()->rows : 0)
               : (step.attrs.AsMoeAttrs() ? step.attrs.AsMoeAttrs()->gate_up_rows : 0);
    if (unit <= 0)
      return llvm::Error::success();
  }
  std::string weightsKey;
  for (const WeightAccess &w : wa)
    weightsKey += "_" + w.key();
  std::string key = llvm::formatv("moec_{0}_d{1}i{2}{3}{4}{5}", stepKindName(step.kind), D, I,
                                  weightsKey, fused ? llvm::formatv("_u{0}", unit).str() : "",
                                  actsSuffix(acts));

  if (!experts) {
    // Weights: [gate, up, down] or [gate_up, down]; pointers x, out, then weights.
    unsigned gateP = weightPointer(step, 0), downP = weightPointer(step, perExpert - 1);
    unsigned upP = fused ? gateP : weightPointer(step, 1);
    // FP8 weights and FP8 activations on sm_90a (DeepSeek's FP8 GEMM): batches from
    // 16 tokens run both products on the FP8 tensor cores, the wgmma GEMM of the
    // linear steps chained through scratch: x quantized, the gate_up products, silu(g)
    // * u, h quantized, out = h W_down^T. Smaller batches: the kernels further below.
    // A scratch row: x's codes and scales | the 2I products | h (I) | h's codes and
    // scales.
    std::vector<KernelSpec> tensorCores;
    // Among the GEMMs right after the RMSNorm that makes x (NormQuant), that step's
    // kernel quantized it, into the group's scratch rows.
    std::optional<NormQuant> group = normQuantOf(current);
    if (std::optional<std::pair<WgmmaLinear, WgmmaLinear>> gemms =
            mlpGemms(step, group ? group->q.rowBytes : 0)) {
      auto [g1, g2] = *gemms;
      std::string gemmKey = key;
      if (g1.rowBytes != mlpGemms(step)->first.rowBytes)
        gemmKey += llvm::formatv("_r{0}", g1.rowBytes).str();
      const int64_t row = g1.rowBytes, pOff = g1.yOffset * 4, hOff = g2.xOffset * 4;
      g1.pick = [gateP](KernelEmitter &, const KernelArgs &k) -> std::array<Value, 4> {
        return {k.ptrs[0], k.scratch, k.ptrs[gateP], k.ptrs[gateP + 1]};
      };
      g2.pick = [downP](KernelEmitter &, const KernelArgs &k) -> std::array<Value, 4> {
        return {k.scratch, k.ptrs[1], k.ptrs[downP], k.ptrs[downP + 1]};
      };
      const bool quantized = group.has_value();
      std::vector<KernelSpec> first = g1.specs(gemmKey + "_gate_up_actquant",
                                               gemmKey + "_gate_up_wgmma", pointers, /*numMaps=*/2);
      for (size_t i = quantized ? 1 : 0; i < first.size(); ++i)
        tensorCores.push_back(std::move(first[i]));
      KernelSpec silu = perToken(gemmKey + "_silu_wgmma", pointers, 0, uint64_t(row), false,
                                 [=](KernelEmitter &e, const KernelArgs &k, Value t) {
                                   Value base = e.mul(t, row / 4);
                                   e.loop(e.threadId(), e.c64(I), e.c64(256), [&](Value i) {
                                     auto [gr, ur] = gateUpRows(e, i, I, unit);
                                     Value products = e.add(base, pOff / 4);
                                     Value g = e.load(e.f32, k.scratch, e.add(products, gr));
                                     Value u = e.load(e.f32, k.scratch, e.add(products, ur));
                                     e.store(e.fmul(e.silu(g), u), k.scratch,
                                             e.add(e.add(base, hOff / 4), i));
                                   });
                                 });
      silu.minTokens = WgmmaLinear::kMinTokens;
      tensorCores.push_back(std::move(silu));
      for (KernelSpec &spec : g2.specs(gemmKey + "_down_actquant", gemmKey + "_down_wgmma", pointers,
                                       /*numMaps=*/2))
        tensorCores.push_back(std::move(spec));
    }
    const unsigned below = tensorCores.empty() ? 0 : WgmmaLinear::kMinTokens - 1;
    // Scratch per token: the 2I products, then the I activations h (fused) or
    // h in place of the gate products (unfused).
    int64_t S = fused ? 3 * I : 2 * I, hOffset = fused ? 2 * I : 0;
    uint64_t scratch = uint64_t(S) * sizeof(float);
    auto products = [&](int64_t n, int64_t yOffset, const WeightAccess &w, unsigned ptr,
                        const char *suffix) {
      MatVec m;
      m.n = n;
      m.k = D;
      m.xCols = D;
      m.yCols = S;
      m.yOffset = yOffset;
      m.weight = w;
      m.acts = acts;
      out->push_back(m.spec(key + suffix, pointers, 0, scratch,
                            [ptr, w](KernelEmitter &, const KernelArgs &k) -> std::array<Value, 4> {
                              return {k.ptrs[0], k.scratch, k.ptrs[ptr],
                                      w.fp8() ? k.ptrs[ptr + 1] : k.ptrs[ptr]};
                            }));
      out->back().maxTokens = below;
    };
    if (fused) {
      products(2 * I, 0, wa[0], gateP, "_gate_up");
    } else {
      products(I, 0, wa[0], gateP, "_gate");
      products(I, I, wa[1], upP, "_up");
    }
    out->push_back(perToken(key + "_silu", pointers, 0, scratch, false,
                            [=](KernelEmitter &e, const KernelArgs &k, Value t) {
                              Value base = e.mul(t, S);
                              e.loop(e.threadId(), e.c64(I), e.c64(256), [&](Value i) {
                                Value g, u;
                                if (fused) {
                                  auto [gr, ur] = gateUpRows(e, i, I, unit);
                                  g = e.load(e.f32, k.scratch, e.add(base, gr));
                                  u = e.load(e.f32, k.scratch, e.add(base, ur));
                                } else {
                                  g = e.load(e.f32, k.scratch, e.add(base, i));
                                  u = e.load(e.f32, k.scratch, e.add(e.add(base, I), i));
                                }
                                e.store(e.fmul(e.silu(g), u), k.scratch,
                                        e.add(e.add(base, hOffset), i));
                              });
                            }));
    out->back().maxTokens = below;
    MatVec m;
    m.n = D;
    m.k = I;
    m.xCols = S;
    m.xOffset = hOffset;
    m.yCols = D;
    m.weight = wa[perExpert - 1];
    m.acts = acts;
    WeightAccess dw = wa[perExpert - 1];
    out->push_back(m.spec(key + "_down", pointers, 0, scratch,
                          [downP, dw](KernelEmitter &, const KernelArgs &k) -> std::array<Value, 4> {
                            return {k.scratch, k.ptrs[1], k.ptrs[downP],
                                    dw.fp8() ? k.ptrs[downP + 1] : k.ptrs[downP]};
                          }));
    out->back().maxTokens = below;
    for (KernelSpec &spec : tensorCores)
      out->push_back(std::move(spec));
    return llvm::Error::success();
  }

  // Routed experts: operands x, idx [T,K], weights [T,K]; result out. The weights
  // of all experts come as one table of device addresses (KernelEntry.weight_table).
  const auto *a = step.attrs.AsMoeAttrs();
  int64_t E = int64_t(step.weights.size() / perExpert);
  int64_t K = tokenCols(buffer(step, false, 1));
  if (!a || K <= 0 || a->experts != E)
    return llvm::Error::success();
  // Table slots per expert and each weight's slot.
  SmallVector<int64_t, 3> slot(perExpert);
  int64_t stride = 0;
  for (size_t r = 0; r < perExpert; ++r) {
    slot[r] = stride;
    stride += wa[r].fp8() ? 2 : 1;
  }
  uint64_t scratch = uint64_t(K * I) * sizeof(float);
  key += llvm::formatv("_e{0}k{1}", E, K).str();
  auto weightOf = [=](KernelEmitter &e, Value table, Value expert, size_t role) {
    Value base = e.add(e.mul(expert, stride), slot[role]);
    Value w = e.loadPointer(table, base);
    Value s = wa[role].fp8() ? e.loadPointer(table, e.add(base, 1)) : w;
    return std::make_pair(w, s);
  };
  auto expertOf = [=](KernelEmitter &e, Value idx, Value t, Value k) {
    Value id = e.toI64(e.load(e.i32, idx, e.add(e.mul(t, K), k)));
    return e.minu(id, e.c64(E - 1)); // the router's ids are < E; never read past the table
  };
  // FP8 weights and FP8 activations on sm_90a: batches from 16 tokens run on the FP8
  // tensor cores as a grouped GEMM (tokens gathered per expert), seven kernels (six
  // when the RMSNorm before the router quantized x, NormQuant):
  //   route      a warp per expert lists the (token, choice) pairs routed to it, in
  //              pair order (t K + k), the lists one after another, expert by expert;
  //   x quantized (1x128), the gate_up GEMM per expert into each pair's products,
  //   silu(g) * u, h quantized per pair, the down GEMM per expert into each pair's
  //   output row, and out[t] = sum over k of weight[t, k] * row(t, k), in k order.
  // A token's scratch row: x's codes and scales | its K list entries (i32) | the
  // first row only: (first entry, pairs) per expert | per choice k: a work area of
  // max(3I, D) floats (the 2I products then h; later the D outputs) and h's codes
  // and scales. Smaller batches: the two kernels below (each token reads its
  // experts' weights).
  std::vector<KernelSpec> grouped;
  // Among the GEMMs right after the RMSNorm that makes x (NormQuant), that step's
  // kernel quantized it, into the group's scratch rows.
  std::optional<NormQuant> group = normQuantOf(current);
  std::optional<ExpertGemms> layout =
      fused ? expertGemms(step, group ? group->q.rowBytes : 0) : std::nullopt;
  if (layout) {
    WgmmaLinear g1 = layout->g1, g2 = layout->g2;
    const int64_t listOff = layout->listOff, countsOff = layout->countsOff;
    const int64_t pairBase = layout->pairBase, hCodes = layout->hCodes;
    const int64_t pairBytes = layout->pairBytes, row = layout->row;
    std::string gkey = key;
    if (row != expertGemms(step)->row)
      gkey += llvm::formatv("_r{0}", row).str();
    // A block per token along x walks the tiles x, x + T, ...: T tokens make at
    // most min(TK, E) + TK/64 tiles that hold pairs, so a small batch's tiles
    // spread over T walkers (64 / K tokens per walker would leave 2 walkers for ~100
    // tiles at T = 16 on DeepSeek-V3); in a large one the blocks past the last
    // tile exit at once.
    const int64_t tpb = 1;
    g2.pick = [](KernelEmitter &, const KernelArgs &k) -> std::array<Value, 4> {
      return {k.scratch, k.scratch, k.scratch, k.scratch};
    };
    // List entry q: token row q / K, slot q % K (i32 index into scratch).
    auto listAt = [=](KernelEmitter &e, Value q) {
      return e.add(e.add(e.mul(e.divu(q, K), row / 4), listOff / 4), e.remu(q, K));
    };
    // The float index of pair (t, k)'s work area.
    auto workOf = [=](KernelEmitter &e, Value t, Value kk) {
      return e.add(e.add(e.mul(t, row / 4), pairBase / 4), e.mul(kk, pairBytes / 4));
    };
    auto i32 = [](KernelEmitter &e, Value v) { return arith::TruncIOp::create(e.b, e.i32, v); };

    KernelSpec route;
    route.name = gkey + "_grouped_route";
    route.numPointers = 5;
    route.weightTable = true;
    route.scratchPerToken = uint64_t(row);
    route.block = kWarp;
    route.tokensPerBlock = 0; // grid as stored: a block per expert
    route.gridY = unsigned(E);
    route.minTokens = WgmmaLinear::kMinTokens;
    route.body = [=](KernelEmitter &e, const KernelArgs &k) {
      Value ex = e.blockId(gpu::Dimension::y);
      Value lane = e.threadId();
      Value total = e.mul(k.tokens, K);
      // Rounds of 32 consecutive pairs, a lane each (coalesced loads of the ids).
      Value rounds = e.divu(e.add(total, kWarp - 1), kWarp);
      auto idOf = [&](Value p) {
        Value id = e.toI64(e.load(e.i32, k.ptrs[1], e.minu(p, e.add(total, -1))));
        return e.minu(id, e.c64(E - 1)); // the router's ids are < E; never past the table
      };
      auto one = [&](Value c) { return e.select(c, e.c64(1), e.c64(0)); };
      // This lane's pair of round r, its expert, and whether the pair exists.
      auto round = [&](Value r) {
        Value p = e.add(e.mul(r, kWarp), lane);
        return std::make_tuple(p, idOf(p), e.ult(p, total));
      };
      auto both = [&](Value a, Value b) { return arith::AndIOp::create(e.b, a, b); };
      SmallVector<Value> counts = e.loop(
          e.c64(0), rounds, e.c64(1), {e.c64(0), e.c64(0)},
          [&](Value r, ValueRange c) -> SmallVector<Value> {
            auto [p, id, in] = round(r);
            return {e.add(c[0], one(both(in, e.ult(id, ex)))),
                    e.add(c[1], one(both(in, e.ieq(id, ex))))};
          });
      Value first = e.warpScan(counts[0]).second;
      Value pairs = e.warpScan(counts[1]).second;
      // In pair order: each round's matches at the next places, in lane order (every
      // lane runs every round: the scan needs the whole warp).
      e.loop(e.c64(0), rounds, e.c64(1), {first},
             [&](Value r, ValueRange c) -> SmallVector<Value> {
               auto [p, id, in] = round(r);
               Value mine = both(in, e.ieq(id, ex));
               auto [before, matches] = e.warpScan(one(mine));
               e.when(mine, [&] {
                 e.store(i32(e, p), k.scratch, listAt(e, e.add(c[0], before)));
               });
               return {e.add(c[0], matches)};
             });
      e.when(e.ieq(lane, e.c64(0)), [&] {
        Value at = e.add(e.mul(ex, 2), countsOff / 4);
        e.store(i32(e, first), k.scratch, at);
        e.store(i32(e, pairs), k.scratch, e.add(at, 1));
      });
    };
    grouped.push_back(std::move(route));
    if (!group) {
      grouped.push_back(g1.quantizeSpec(gkey + "_grouped_gate_up_actquant", 5));
      grouped.back().weightTable = true;
    }

    // The rows of a grouped GEMM: list entries; `codes` gives where a pair's
    // quantized input is (bytes into scratch).
    auto rowsOf = [=](const KernelArgs &k, size_t role,
                      std::function<Value(KernelEmitter &, Value, Value)> codes) {
      WgmmaLinear::Grouped g;
      g.experts = E;
      g.topK = K;
      g.tokensPerBlock = tpb;
      Value scratch = k.scratch, table = k.ptrs[4];
      g.expertCount = [=](KernelEmitter &e, Value ex) {
        Value at = e.add(e.mul(ex, 2), countsOff / 4);
        return std::make_pair(e.toI64(e.load(e.i32, scratch, at)),
                              e.toI64(e.load(e.i32, scratch, e.add(at, 1))));
      };
      Value tokens = k.tokens;
      g.pairOf = [=](KernelEmitter &e, Value q) {
        // (The route kernel wrote every entry; clamped, a stray one stays in bounds.)
        Value p = e.minu(e.toI64(e.load(e.i32, scratch, listAt(e, q))),
                         e.add(e.mul(tokens, K), -1));
        return std::make_pair(e.divu(p, K), e.remu(p, K));
      };
      g.codesOf = codes;
      g.outOf = workOf;
      g.weightOf = [=](KernelEmitter &e, const KernelArgs &, Value ex) {
        return weightOf(e, table, ex, role);
      };
      return g;
    };
    grouped.push_back(g1.groupedSpec(gkey + "_grouped_gate_up_wgmma", 5, tpb,
                                     [=](const KernelArgs &k) {
                                       return rowsOf(k, 0, [=](KernelEmitter &e, Value t, Value) {
                                         return e.mul(t, row);
                                       });
                                     }));
    KernelSpec silu = perToken(
        gkey + "_grouped_silu", 5, 0, uint64_t(row), true,
        [=](KernelEmitter &e, const KernelArgs &k, Value t) {
          e.loop(e.threadId(), e.c64(K * I), e.c64(256), [&](Value item) {
            Value base = workOf(e, t, e.divu(item, I));
            Value i = e.remu(item, I);
            auto [gr, ur] = gateUpRows(e, i, I, unit);
            Value g = e.load(e.f32, k.scratch, e.add(base, gr));
            Value u = e.load(e.f32, k.scratch, e.add(base, ur));
            e.store(e.fmul(e.silu(g), u), k.scratch, e.add(e.add(base, 2 * I), i));
          });
        });
    silu.minTokens = WgmmaLinear::kMinTokens;
    grouped.push_back(std::move(silu));
    grouped.push_back(g2.quantizeSpec(gkey + "_grouped_down_actquant", 5));
    grouped.back().weightTable = true;
    grouped.push_back(g2.groupedSpec(
        gkey + "_grouped_down_wgmma", 5, tpb, [=](const KernelArgs &k) {
          return rowsOf(k, perExpert - 1, [=](KernelEmitter &e, Value t, Value kk) {
            return e.add(e.add(e.mul(t, row), pairBase + hCodes), e.mul(kk, pairBytes));
          });
        }));
    KernelSpec combine = perToken(
        gkey + "_grouped_combine", 5, 0, uint64_t(row), true,
        [=](KernelEmitter &e, const KernelArgs &k, Value t) {
          e.loop(e.threadId(), e.c64(D), e.c64(256), [&](Value d) {
            Value total = e.loop(e.c64(0), e.c64(K), e.c64(1), {e.cf(0.0f)},
                                 [&](Value kk, ValueRange c) -> SmallVector<Value> {
                                   Value w = e.load(e.f32, k.ptrs[2], e.add(e.mul(t, K), kk));
                                   Value y = e.load(e.f32, k.scratch,
                                                    e.add(workOf(e, t, kk), d));
                                   return {e.fma(w, y, c[0])};
                                 })[0];
            e.store(total, k.ptrs[3], e.add(e.mul(t, D), d));
          });
        });
    combine.minTokens = WgmmaLinear::kMinTokens;
    grouped.push_back(std::move(combine));
  }
  const unsigned fewer = grouped.empty() ? 0 : WgmmaLinear::kMinTokens - 1;

  // Phase 1: h[t, k, i] = silu(gate_e(x_t)[i]) * up_e(x_t)[i], a warp per (k, i).
  KernelSpec up;
  up.name = key + "_gate_up";
  up.numPointers = 5; // x, idx, weights, out, the weight table
  up.weightTable = true;
  up.scratchPerToken = scratch;
  up.block = kWarpsPerBlock * kWarp;
  up.gridY = unsigned((K * I + kWarpsPerBlock - 1) / kWarpsPerBlock);
  up.body = [=](KernelEmitter &e, const KernelArgs &k) {
    Value t = e.blockId(gpu::Dimension::x);
    Value tid = e.threadId();
    Value lane = e.remu(tid, kWarp);
    Value item = e.add(e.mul(e.blockId(gpu::Dimension::y), kWarpsPerBlock), e.divu(tid, kWarp));
    e.when(e.ult(item, e.c64(K * I)), [&] {
      Value kk = e.divu(item, I), i = e.remu(item, I);
      Value expert = expertOf(e, k.ptrs[1], t, kk);
      Value xStart = e.mul(t, D);
      Value g, u;
      if (fused) {
        auto [w, s] = weightOf(e, k.ptrs[4], expert, 0);
        auto [gr, ur] = gateUpRows(e, i, I, unit);
        g = warpDots(e, wa[0], w, s, D, [&](Value c) { return std::make_pair(gr, c); },
                     k.ptrs[0], {xStart}, acts, lane, /*contiguous=*/true)[0];
        u = warpDots(e, wa[0], w, s, D, [&](Value c) { return std::make_pair(ur, c); },
                     k.ptrs[0], {xStart}, acts, lane, /*contiguous=*/true)[0];
      } else {
        auto [gw, gs] = weightOf(e, k.ptrs[4], expert, 0);
        auto [uw, us] = weightOf(e, k.ptrs[4], expert, 1);
        g = warpDots(e, wa[0], gw, gs, D, [&](Value c) { return std::make_pair(i, c); },
                     k.ptrs[0], {xStart}, acts, lane, /*contiguous=*/true)[0];
        u = warpDots(e, wa[1], uw, us, D, [&](Value c) { return std::make_pair(i, c); },
                     k.ptrs[0], {xStart}, acts, lane, /*contiguous=*/true)[0];
      }
      e.when(e.ieq(lane, e.c64(0)), [&] {
        e.store(e.fmul(e.silu(g), u), k.scratch, e.add(e.mul(t, K * I), item));
      });
    });
  };
  out->push_back(std::move(up));
  // Phase 2: out[t, d] = sum_k w[t, k] * down_e(h[t, k])[d], a warp per d.
  KernelSpec downSpec;
  downSpec.name = key + "_down";
  downSpec.numPointers = 5;
  downSpec.weightTable = true;
  downSpec.scratchPerToken = scratch;
  downSpec.block = kWarpsPerBlock * kWarp;
  downSpec.gridY = unsigned((D + kWarpsPerBlock - 1) / kWarpsPerBlock);
  downSpec.body = [=](KernelEmitter &e, const KernelArgs &k) {
    Value t = e.blockId(gpu::Dimension::x);
    Value tid = e.threadId();
    Value lane = e.remu(tid, kWarp);
    Value d = e.add(e.mul(e.blockId(gpu::Dimension::y), kWarpsPerBlock), e.divu(tid, kWarp));
    e.when(e.ult(d, e.c64(D)), [&] {
      Value total = e.loop(e.c64(0), e.c64(K), e.c64(1), {e.cf(0.0f)},
                           [&](Value kk, ValueRange c) -> SmallVector<Value> {
                             Value expert = expertOf(e, k.ptrs[1], t, kk);
                             auto [w, s] = weightOf(e, k.ptrs[4], expert, perExpert - 1);
                             Value hStart = e.add(e.mul(t, K * I), e.mul(kk, I));
                             Value dot = warpDots(
                                 e, wa[perExpert - 1], w, s, I,
                                 [&](Value c2) { return std::make_pair(d, c2); }, k.scratch,
                                 {hStart}, acts, lane, /*contiguous=*/true)[0];
                             Value weight = e.load(e.f32, k.ptrs[2], e.add(e.mul(t, K), kk));
                             return {e.fma(weight, dot, c[0])};
                           })[0];
      e.when(e.ieq(lane, e.c64(0)), [&] { e.store(total, k.ptrs[3], e.add(e.mul(t, D), d)); });
    });
  };
  out->push_back(std::move(downSpec));
  for (size_t i = out->size() - 2; i < out->size(); ++i)
    (*out)[i].maxTokens = fewer;
  for (KernelSpec &spec : grouped)
    out->push_back(std::move(spec));
  return llvm::Error::success();
}

llvm::Error SpecBuilder::check(const plan::StepT &step) const {
  auto inRange = [&](const std::vector<int32_t> &list, size_t size, const char *what,
                     const char *in) -> llvm::Error {
    for (size_t i = 0; i < list.size(); ++i)
      if (list[i] < 0 || size_t(list[i]) >= size)
        return malformed(llvm::formatv("step {0} ({1}): {2} {3} refers to {4} {5}, the plan "
                                       "has {6}",
                                       current, step.name, what, i, in, list[i], size));
    return llvm::Error::success();
  };
  if (llvm::Error err = inRange(step.operands, plan.buffers.size(), "operand", "buffer"))
    return err;
  if (llvm::Error err = inRange(step.results, plan.buffers.size(), "result", "buffer"))
    return err;
  if (llvm::Error err = inRange(step.weights, plan.weights.size(), "weight", "weight"))
    return err;
  if (llvm::Error err = inRange(step.states, plan.states.size(), "state", "state"))
    return err;
  // What the generators read: operands, results, weights (at least).
  size_t need[3] = {1, 1, 0};
  switch (step.kind) {
  case plan::StepKind::Embedding:
  case plan::StepKind::RmsNorm:
  case plan::StepKind::Linear:
  case plan::StepKind::HeadLinear:
  case plan::StepKind::SwigluMlp:
  case plan::StepKind::FusedSwigluMlp:
    need[2] = 1;
    break;
  case plan::StepKind::AddRmsNorm:
    need[0] = 2, need[1] = 2, need[2] = 1;
    break;
  case plan::StepKind::Add:
  case plan::StepKind::Rope:
    need[0] = 2;
    break;
  case plan::StepKind::CacheStore:
    need[0] = 4, need[1] = 0;
    break;
  case plan::StepKind::LatentAttention:
    need[0] = 4;
    break;
  case plan::StepKind::ExpandedAttention:
  case plan::StepKind::MoeExperts:
  case plan::StepKind::FusedMoeExperts:
    need[0] = 3, need[2] = 1;
    break;
  case plan::StepKind::Router:
    need[1] = 2, need[2] = 1;
    break;
  case plan::StepKind::SliceColumns:
    break;
  }
  if (step.operands.size() < need[0] || step.results.size() < need[1] ||
      step.weights.size() < need[2])
    return malformed(llvm::formatv("step {0} ({1}): {2} takes at least {3} operands, {4} "
                                   "results and {5} weights, has {6}, {7} and {8}",
                                   current, step.name, stepKindName(step.kind), need[0],
                                   need[1], need[2], step.operands.size(),
                                   step.results.size(), step.weights.size()));
  return llvm::Error::success();
}

llvm::Error SpecBuilder::build(uint32_t index, std::vector<KernelSpec> *out) {
  current = index;
  const plan::StepT &step = *plan.steps[index];
  out->clear();
  if (llvm::Error err = check(step))
    return err;
  switch (step.kind) {
  case plan::StepKind::Embedding:
    return embedding(step, out);
  case plan::StepKind::RmsNorm:
  case plan::StepKind::AddRmsNorm:
    return rmsNorm(step, out);
  case plan::StepKind::Add:
  case plan::StepKind::SliceColumns:
    return elementwise(step, out);
  case plan::StepKind::Linear:
  case plan::StepKind::HeadLinear:
    return linear(step, out);
  case plan::StepKind::Rope:
    return rope(step, out);
  case plan::StepKind::CacheStore:
    return cacheStore(step, out);
  case plan::StepKind::LatentAttention:
    return latentAttention(step, out);
  case plan::StepKind::ExpandedAttention:
    return expandedAttention(step, out);
  case plan::StepKind::SwigluMlp:
  case plan::StepKind::FusedSwigluMlp:
  case plan::StepKind::MoeExperts:
  case plan::StepKind::FusedMoeExperts:
  case plan::StepKind::Router:
    return mlp(step, out);
  }
  return llvm::Error::success();
}

/// Greedy decoding on the device (KernelModule.argmax): the token of each logits
/// row, as the CPU's greedyToken picks it (the larger logit, the lower id on ties,
/// NaN last; a row of NaN gives 0). Two kernels through scratch:
///   1. split: a warp per (row, 1/kSplits of the vocabulary): each lane scans the
///      columns lane, lane + 32, ... of its part (coalesced), then a butterfly of
///      (value, id) pairs; lane 0 writes the part's winner (f32 value, i32 id);
///   2. combine: a warp per row over its kSplits winners, which writes the token.
/// Decode reads the logits once at the device's bandwidth and copies 4 bytes per
/// row to the host instead of the row (516 KB at DeepSeek-V3's vocabulary).
struct Argmax {
  static constexpr int64_t kSplits = 32; ///< one combine lane per part
  int64_t vocab = 0;

  std::string key() const { return "v" + std::to_string(vocab); }
  uint64_t scratchPerToken() const { return uint64_t(kSplits) * 8; }
  static Value initialId(KernelEmitter &e) { return e.c32(std::numeric_limits<int32_t>::max()); }

  void emitSplit(KernelEmitter &e, Value logits, Value scratch) const {
    Value token = e.blockId(gpu::Dimension::x), part = e.blockId(gpu::Dimension::z);
    Value lane = e.threadId();
    const int64_t chunk = (vocab + kSplits - 1) / kSplits;
    Value start = e.mul(part, chunk);
    Value end = e.minu(e.add(start, chunk), e.c64(vocab));
    Value row = e.mul(token, vocab);
    // NaN with the largest id comes after every column in the greedy order.
    SmallVector<Value> best = e.loop(
        e.add(start, lane), end, e.c64(kWarp),
        ValueRange{e.cf(std::numeric_limits<float>::quiet_NaN()), initialId(e)},
        [&](Value col, ValueRange carried) {
          Value v = e.load(e.f32, logits, e.add(row, col));
          Value id = arith::TruncIOp::create(e.b, e.i32, col);
          Value take = e.before(v, id, carried[0], carried[1]);
          return SmallVector<Value>{e.select(take, v, carried[0]),
                                    e.select(take, id, carried[1])};
        });
    auto [v, id] = e.warpArgmax(best[0], best[1]);
    e.when(e.ieq(lane, e.c64(0)), [&] {
      Value slot = e.mul(e.add(e.mul(token, kSplits), part), 2);
      e.store(v, scratch, slot);
      e.store(id, scratch, e.add(slot, 1));
    });
  }

  void emitCombine(KernelEmitter &e, Value scratch, Value tokens) const {
    Value token = e.blockId(gpu::Dimension::x), lane = e.threadId();
    Value slot = e.mul(e.add(e.mul(token, kSplits), lane), 2);
    auto [v, id] = e.warpArgmax(e.load(e.f32, scratch, slot),
                                e.load(e.i32, scratch, e.add(slot, 1)));
    e.when(e.ieq(lane, e.c64(0)), [&] { e.store(id, tokens, token); });
  }

  /// The two kernels: buffers (logits f32 [T, vocab], tokens i32 [T]), scratch.
  std::vector<KernelSpec> specs() const {
    KernelSpec split;
    split.name = "moec_argmax_split_" + key();
    split.numPointers = 2;
    split.scratchPerToken = scratchPerToken();
    split.block = kWarp;
    split.gridZ = unsigned(kSplits);
    Argmax self = *this;
    split.body = [self](KernelEmitter &e, const KernelArgs &k) {
      self.emitSplit(e, k.ptrs[0], k.scratch);
    };
    KernelSpec combine;
    combine.name = "moec_argmax_combine_" + key();
    combine.numPointers = 2;
    combine.scratchPerToken = scratchPerToken();
    combine.block = kWarp;
    combine.body = [self](KernelEmitter &e, const KernelArgs &k) {
      self.emitCombine(e, k.scratch, k.ptrs[1]);
    };
    return {split, combine};
  }
};

/// The plan's vocabulary: the width of the first entry point's logits (0: none).
int64_t logitsWidth(const plan::PlanT &plan) {
  if (plan.entry_points.empty() || plan.entry_points[0]->outputs.empty())
    return 0;
  int32_t logits = plan.entry_points[0]->outputs[0];
  if (logits < 0 || size_t(logits) >= plan.buffers.size())
    return 0;
  const plan::BufferT &buffer = *plan.buffers[size_t(logits)];
  if (buffer.dtype != plan::DType::F32 || buffer.shape.size() != 2)
    return 0;
  return tokenCols(buffer);
}

} // namespace

bool hasStepKernelGenerator(plan::StepKind kind) {
  switch (kind) {
  case plan::StepKind::Embedding:
  case plan::StepKind::RmsNorm:
  case plan::StepKind::AddRmsNorm:
  case plan::StepKind::Add:
  case plan::StepKind::SliceColumns:
  case plan::StepKind::Linear:
  case plan::StepKind::HeadLinear:
  case plan::StepKind::Rope:
  case plan::StepKind::CacheStore:
  case plan::StepKind::LatentAttention:
  case plan::StepKind::ExpandedAttention:
  case plan::StepKind::Router:
  case plan::StepKind::MoeExperts:
  case plan::StepKind::SwigluMlp:
  case plan::StepKind::FusedSwigluMlp:
  case plan::StepKind::FusedMoeExperts:
    return true;
  }
  return false;
}

llvm::Expected<StepKernelModule> buildStepKernels(MLIRContext &ctx, const plan::PlanT &plan,
                                                  llvm::StringRef chip) {
  if (!llvm::is_contained(supportedChips(), chip))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "unsupported GPU architecture '%s' (supported: sm_90a, sm_80)",
                                   chip.str().c_str());
  ctx.loadDialect<arith::ArithDialect, gpu::GPUDialect, LLVM::LLVMDialect, NVVM::NVVMDialect,
                  scf::SCFDialect>();
  StepKernelModule result;
  Location loc = UnknownLoc::get(&ctx);
  result.module = ModuleOp::create(loc);
  result.module->getOperation()->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                                         UnitAttr::get(&ctx));
  ImplicitLocOpBuilder b(loc, &ctx);
  b.setInsertionPointToEnd(result.module->getBody());
  auto gpuModule = gpu::GPUModuleOp::create(b, "moec_kernels");
  bool sm90 = chip.starts_with("sm_90");

  SpecBuilder specs(plan);
  specs.sm90 = sm90;
  // Kernels are shared by name, so a name must say everything its body depends on;
  // two specs of one name that launch differently mean a name leaves something out.
  llvm::StringMap<KernelSpec> built;
  std::string clash;
  Type ptrType = LLVM::LLVMPointerType::get(&ctx, 1);
  auto addKernel = [&](KernelSpec &spec, int32_t step, std::vector<plan::KernelEntryT> *into) {
      plan::KernelEntryT entry;
      entry.name = spec.name;
      entry.step = step;
      entry.grid = {1, spec.gridY, spec.gridZ};
      entry.block = {spec.block, 1, 1};
      entry.shared_mem_bytes = 0;
      entry.tokens_per_block = spec.tokensPerBlock;
      entry.scratch_bytes_per_token = spec.scratchPerToken;
      entry.weight_table = spec.weightTable;
      entry.min_tokens = spec.minTokens;
      entry.max_tokens = spec.maxTokens;
      entry.tma_box = spec.tmaBox;
      into->push_back(std::move(entry));
      if (auto it = built.find(spec.name); it != built.end()) {
        const KernelSpec &first = it->second;
        if (clash.empty() &&
            (first.scratchPerToken != spec.scratchPerToken || first.block != spec.block ||
             first.gridY != spec.gridY || first.gridZ != spec.gridZ ||
             first.numPointers != spec.numPointers || first.tmaBox != spec.tmaBox))
          clash = spec.name;
        return;
      }
      built[spec.name] = spec;

      // (pointers..., (state, rows)..., [scratch,] i32 T)
      SmallVector<Type> args(spec.numPointers, ptrType);
      if (!spec.tmaBox.empty()) // one tensor map per FP8 weight of the step
        args.append(spec.numTensorMaps, ptrType);
      for (unsigned i = 0; i < spec.numStates; ++i) {
        args.push_back(ptrType);
        args.push_back(b.getI64Type());
      }
      if (spec.scratchPerToken)
        args.push_back(ptrType);
      args.push_back(b.getI32Type());
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToEnd(gpuModule.getBody());
      auto func = gpu::GPUFuncOp::create(b, spec.name, b.getFunctionType(args, {}));
      func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
      func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr({int32_t(spec.block), 1, 1}));
      if (spec.warpgroup)
        func->setAttr("moec.warpgroup", b.getUnitAttr());
      Block &body = func.getBody().front();
      b.setInsertionPointToStart(&body);
      KernelEmitter e(b, sm90);
      e.module = gpuModule;
      e.kernelName = spec.name;
      KernelArgs kargs;
      unsigned next = 0;
      for (; next < spec.numPointers; ++next)
        kargs.ptrs.push_back(body.getArgument(next));
      if (!spec.tmaBox.empty())
        for (unsigned i = 0; i < spec.numTensorMaps; ++i)
          kargs.tensorMaps.push_back(body.getArgument(next++));
      for (unsigned i = 0; i < 2 * spec.numStates; ++i)
        kargs.states.push_back(body.getArgument(next++));
      if (spec.scratchPerToken)
        kargs.scratch = body.getArgument(next++);
      kargs.tokens = e.toI64(body.getArgument(next));
      spec.body(e, kargs);
      gpu::ReturnOp::create(b);
  };
  for (uint32_t s = 0; s < plan.steps.size(); ++s) {
    std::vector<KernelSpec> kernels;
    if (llvm::Error err = specs.build(s, &kernels))
      return std::move(err);
    if (kernels.empty()) {
      result.uncovered.push_back(s);
      continue;
    }
    for (KernelSpec &spec : kernels)
      addKernel(spec, int32_t(s), &result.entries);
  }
  // Greedy decoding on the device, for the plan's logits.
  if (int64_t vocab = logitsWidth(plan); vocab > 0 && !result.entries.empty())
    for (KernelSpec &spec : Argmax{vocab}.specs())
      addKernel(spec, -1, &result.argmax);
  if (!clash.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "internal error: two different kernels are named '%s'",
                                   clash.c_str());
  result.distinctKernels = built.size();
  return result;
}

llvm::Expected<StepKernelPtx> generateStepKernelPtx(const plan::PlanT &plan,
                                                    llvm::StringRef chip) {
  DialectRegistry registry;
  registerPtxDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  auto built = buildStepKernels(ctx, plan, chip);
  if (!built)
    return built.takeError();
  StepKernelPtx out;
  out.entries = std::move(built->entries);
  out.argmax = std::move(built->argmax);
  out.uncovered = std::move(built->uncovered);
  out.distinctKernels = built->distinctKernels;
  if (out.distinctKernels == 0)
    return out;
  auto ptx = translateToPtx(*built->module, chip);
  if (!ptx)
    return ptx.takeError();
  out.ptx = std::move(*ptx);
  return out;
}

llvm::Expected<std::vector<KernelPtx>>
generateEachKernelPtx(const plan::PlanT &plan, llvm::StringRef chip,
                      std::vector<uint32_t> *uncovered) {
  DialectRegistry registry;
  registerPtxDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  auto built = buildStepKernels(ctx, plan, chip);
  if (!built)
    return built.takeError();
  if (uncovered)
    *uncovered = built->uncovered;
  std::vector<KernelPtx> kernels;
  auto gpuModule = *built->module->getOps<gpu::GPUModuleOp>().begin();
  for (auto func : gpuModule.getOps<gpu::GPUFuncOp>()) {
    KernelPtx kernel;
    kernel.name = func.getName().str();
    for (const plan::KernelEntryT &entry : built->entries)
      if (entry.name == kernel.name &&
          (kernel.steps.empty() || kernel.steps.back() != uint32_t(entry.step)))
        kernel.steps.push_back(uint32_t(entry.step));
    // A copy of the module with this kernel alone.
    OwningOpRef<ModuleOp> single(cast<ModuleOp>(built->module->getOperation()->clone()));
    auto singleGpu = *single->getOps<gpu::GPUModuleOp>().begin();
    for (auto other : llvm::make_early_inc_range(singleGpu.getOps<gpu::GPUFuncOp>()))
      if (other.getName() != kernel.name)
        other.erase();
    auto ptx = translateToPtx(*single, chip);
    if (!ptx)
      return ptx.takeError();
    kernel.ptx = std::move(*ptx);
    kernels.push_back(std::move(kernel));
  }
  return kernels;
}

} // namespace moec::ptx
