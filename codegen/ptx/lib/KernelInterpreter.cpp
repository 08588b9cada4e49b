//===- KernelInterpreter.cpp - run generated kernels on the CPU -----------===//

#include "moec/Codegen/KernelInterpreter.h"

#include "moec/cpu/kernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include "llvm/ADT/bit.h"
#include <cmath>
#include <cstring>
#include <map>
#include <type_traits>
#include <vector>

using namespace mlir;

namespace moec::ptx {
namespace {

constexpr int kWarpLanes = 32;

llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", message.str().c_str());
}

/// Bits a value of `type` occupies in a lane.
unsigned widthOf(Type type) {
  if (auto i = dyn_cast<IntegerType>(type))
    return i.getWidth();
  if (isa<IndexType, LLVM::LLVMPointerType>(type))
    return 64;
  if (auto f = dyn_cast<FloatType>(type))
    return f.getWidth();
  if (auto v = dyn_cast<VectorType>(type))
    return unsigned(v.getNumElements()) * widthOf(v.getElementType());
  return 64;
}
uint64_t truncate(uint64_t v, unsigned width) {
  return width >= 64 ? v : v & ((uint64_t(1) << width) - 1);
}
int64_t signExtend(uint64_t v, unsigned width) {
  if (width >= 64)
    return int64_t(v);
  uint64_t sign = uint64_t(1) << (width - 1);
  return int64_t((truncate(v, width) ^ sign) - sign);
}
float asF32(uint64_t v) { return llvm::bit_cast<float>(uint32_t(v)); }
double asF64(uint64_t v) { return llvm::bit_cast<double>(v); }
uint64_t bitsOf(float f) { return llvm::bit_cast<uint32_t>(f); }
uint64_t bitsOf(double d) { return llvm::bit_cast<uint64_t>(d); }
/// A float of `type` (f16, f32, f64) as double, and back.
double toDouble(uint64_t v, Type type) {
  if (type.isF64())
    return asF64(v);
  if (type.isF16())
    return cpu::f16ToFloat(uint16_t(v));
  return asF32(v);
}
uint64_t fromDouble(double d, Type type) {
  if (type.isF64())
    return bitsOf(d);
  if (type.isF16())
    return cpu::floatToF16(float(d));
  return bitsOf(float(d));
}
/// Whether a pointer of this type addresses shared memory (shared::cta, 3, or
/// shared::cluster, 7: the interpreter's values for both are shared offsets).
bool isShared(Type type) {
  auto ptr = dyn_cast<LLVM::LLVMPointerType>(type);
  return ptr && (ptr.getAddressSpace() == 3 || ptr.getAddressSpace() == 7);
}

/// The interpreter's stand-in for the opaque CUtensorMap (KernelInterpreter.h).
using TensorMap = EmulatedTensorMap;

/// Size in bytes of a GEP element / load type.
uint64_t sizeOf(Type type) { return (widthOf(type) + 7) / 8; }

/// N lanes in lockstep: one warp (32), or a warpgroup's 128 threads (the kernels
/// with moec.warpgroup: wgmma, shared memory, barriers).
template <int N> class Interpreter {
public:
  static constexpr int kLanes = N;
  using Lanes = std::array<uint64_t, N>;
  using Mask = std::conditional_t<N == 32, uint32_t, unsigned __int128>;

  Interpreter(std::array<uint32_t, 3> block) : blockDim(block) {}

  llvm::Error runWarp(gpu::GPUFuncOp kernel, std::array<uint32_t, 3> blockIndex, uint32_t warp,
                      llvm::ArrayRef<uint64_t> args) {
    values.clear();
    structs.clear();
    barriers.clear();
    shared.assign(shared.size(), 0);
    blockId = blockIndex;
    warpBase = warp * kLanes;
    Mask mask = 0;
    for (int l = 0; l < kLanes; ++l)
      if (warpBase + uint32_t(l) < blockDim[0])
        mask |= Mask(1) << l;
    Block &entry = kernel.getBody().front();
    if (entry.getNumArguments() != args.size())
      return fail(llvm::formatv("{0} takes {1} arguments, given {2}", kernel.getName(),
                                entry.getNumArguments(), args.size()));
    for (unsigned i = 0; i < args.size(); ++i) {
      Lanes l;
      l.fill(truncate(args[i], widthOf(entry.getArgument(i).getType())));
      values[entry.getArgument(i)] = l;
    }
    SmallVector<Lanes, 4> ignored;
    return runBlock(entry, mask, &ignored);
  }

private:
  Lanes &get(Value v) { return values[v]; }

  /// Runs the ops of `block` for the lanes of `mask`; the terminator's operands
  /// (scf.yield) go to `yields`.
  llvm::Error runBlock(Block &block, Mask mask, SmallVector<Lanes, 4> *yields) {
    for (Operation &op : block) {
      if (isa<scf::YieldOp, scf::ConditionOp, gpu::ReturnOp>(op)) {
        yields->clear();
        for (Value v : op.getOperands())
          yields->push_back(get(v));
        return llvm::Error::success();
      }
      if (llvm::Error err = runOp(&op, mask))
        return err;
    }
    return llvm::Error::success();
  }

  template <typename Fn> void eachLane(Mask mask, Fn fn) {
    for (int l = 0; l < kLanes; ++l)
      if (mask & (Mask(1) << l))
        fn(l);
  }

  /// result[l] = fn(operand lanes...), truncated to the result's width.
  template <typename Fn> void map(Operation *op, Mask mask, Fn fn) {
    Lanes out{};
    unsigned width = widthOf(op->getResult(0).getType());
    eachLane(mask, [&](int l) { out[l] = truncate(fn(l), width); });
    values[op->getResult(0)] = out;
  }

  llvm::Error runOp(Operation *op, Mask mask);
  llvm::Error runFor(scf::ForOp op, Mask mask);
  llvm::Error runIf(scf::IfOp op, Mask mask);
  llvm::Error runIntrinsic(LLVM::CallIntrinsicOp op, Mask mask);

  llvm::Error runMma(NVVM::MmaOp op, Mask mask);
  llvm::Error runWgmma(NVVM::WgmmaMmaAsyncOp op, Mask mask);
  llvm::Error runSharedMemoryOp(Operation *op, Mask mask, bool *handled);

  /// Host address of shared byte `offset` of the block (its own copy).
  uint8_t *sharedByte(uint64_t offset, uint64_t size) {
    if (offset + size > shared.size())
      return nullptr;
    return shared.data() + offset;
  }

  llvm::DenseMap<Value, Lanes> values;
  /// Struct values (mma.sync's and wgmma's results), one Lanes per member.
  llvm::DenseMap<Value, SmallVector<Lanes, 4>> structs;
  std::array<uint32_t, 3> blockDim;
  std::array<uint32_t, 3> blockId{};
  uint32_t warpBase = 0;

public:
  /// The block's shared memory: every llvm.mlir.global of address space 3 the
  /// kernel's module declares, at offsets in declaration order (pointers of address
  /// spaces 3 and 7 hold such offsets, as the hardware's shared window does).
  std::vector<uint8_t> shared;
  llvm::StringMap<uint64_t> sharedOffsets;

private:
  /// An mbarrier object's state, by its shared offset.
  struct Barrier {
    int64_t expected = 0, pending = 0, tx = 0;
    uint32_t phase = 0;
  };
  std::map<uint64_t, Barrier> barriers;
  /// Completes the current phase when every arrival and transaction is in.
  static void settle(Barrier &b) {
    if (b.pending == 0 && b.tx == 0) {
      b.phase ^= 1;
      b.pending = b.expected;
    }
  }
};

template <int N> llvm::Error Interpreter<N>::runFor(scf::ForOp op, Mask mask) {
  Lanes lb = get(op.getLowerBound()), ub = get(op.getUpperBound()),
        step = get(op.getStep());
  Block *body = op.getBody();
  SmallVector<Lanes, 4> carried;
  for (Value init : op.getInitArgs())
    carried.push_back(get(init));
  Lanes iv = lb;
  auto active = [&] {
    Mask m = 0;
    eachLane(mask, [&](int l) {
      if (int64_t(iv[l]) < int64_t(ub[l]))
        m |= Mask(1) << l;
    });
    return m;
  };
  for (Mask m = active(); m; m = active()) {
    values[op.getInductionVar()] = iv;
    for (size_t i = 0; i < carried.size(); ++i)
      values[op.getRegionIterArgs()[i]] = carried[i];
    SmallVector<Lanes, 4> yields;
    if (llvm::Error err = runBlock(*body, m, &yields))
      return err;
    eachLane(m, [&](int l) {
      for (size_t i = 0; i < carried.size(); ++i)
        carried[i][l] = yields[i][l];
      iv[l] = uint64_t(int64_t(iv[l]) + int64_t(step[l]));
    });
  }
  for (size_t i = 0; i < carried.size(); ++i)
    values[op.getResult(i)] = carried[i];
  return llvm::Error::success();
}

template <int N> llvm::Error Interpreter<N>::runIf(scf::IfOp op, Mask mask) {
  Lanes cond = get(op.getCondition());
  Mask thenMask = 0;
  eachLane(mask, [&](int l) {
    if (cond[l] & 1)
      thenMask |= Mask(1) << l;
  });
  Mask elseMask = mask & ~thenMask;
  SmallVector<Lanes, 4> thenYields, elseYields;
  if (thenMask)
    if (llvm::Error err = runBlock(*op.thenBlock(), thenMask, &thenYields))
      return err;
  if (elseMask && !op.getElseRegion().empty())
    if (llvm::Error err = runBlock(*op.elseBlock(), elseMask, &elseYields))
      return err;
  for (unsigned i = 0; i < op.getNumResults(); ++i) {
    Lanes out{};
    eachLane(mask, [&](int l) {
      out[l] = (thenMask >> l) & 1 ? thenYields[i][l] : elseYields[i][l];
    });
    values[op.getResult(i)] = out;
  }
  return llvm::Error::success();
}

/// mma.sync m16n8k16, row x col, bf16 operands, f32 accumulators: the warp's
/// fragments gathered into the 16x16 A, 16x8 B and 16x8 C of PTX's layout (lane
/// L: group g = L / 4, t = L % 4; A regs {g, 2t..}, {g+8, 2t..}, {g, 2t+8..},
/// {g+8, 2t+8..}; B regs {k 2t.., n g}, {k 2t+8.., n g}; C {g, 2t..}, {g+8, 2t..}),
/// the products summed in fp32, scattered back.
template <int N> llvm::Error Interpreter<N>::runMma(NVVM::MmaOp op, Mask mask) {
  if (op.getShape().getM() != 16 || op.getShape().getN() != 8 || op.getShape().getK() != 16 ||
      op.getOperandA().size() != 4 || op.getOperandB().size() != 2 ||
      op.getOperandC().size() != 4)
    return fail("the kernel interpreter takes mma.sync m16n8k16 with bf16 operands only");
  if (N != kWarpLanes)
    return fail("mma.sync in a warpgroup kernel");
  if (mask != ~Mask(0))
    return fail("mma.sync with inactive lanes");
  float A[16][16], B[16][8], C[16][8];
  auto bf16 = [](uint64_t bits) { return llvm::bit_cast<float>(uint32_t(bits & 0xffff) << 16); };
  for (int l = 0; l < kLanes; ++l) {
    int g = l / 4, t = l % 4;
    const int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
    for (int r = 0; r < 4; ++r) {
      uint64_t v = get(op.getOperandA()[r])[l];
      A[rows[r]][cols[r]] = bf16(v);
      A[rows[r]][cols[r] + 1] = bf16(v >> 16);
    }
    for (int r = 0; r < 2; ++r) {
      uint64_t v = get(op.getOperandB()[r])[l];
      B[2 * t + 8 * r][g] = bf16(v);
      B[2 * t + 8 * r + 1][g] = bf16(v >> 16);
    }
    for (int r = 0; r < 4; ++r)
      C[g + (r < 2 ? 0 : 8)][2 * t + r % 2] = asF32(get(op.getOperandC()[r])[l]);
  }
  SmallVector<Lanes, 4> d(4);
  for (int l = 0; l < kLanes; ++l) {
    int g = l / 4, t = l % 4;
    for (int r = 0; r < 4; ++r) {
      int m = g + (r < 2 ? 0 : 8), n = 2 * t + r % 2;
      float sum = C[m][n];
      for (int kk = 0; kk < 16; ++kk)
        sum = std::fmaf(A[m][kk], B[kk][n], sum);
      d[r][l] = bitsOf(sum);
    }
  }
  structs[op.getResult()] = std::move(d);
  return llvm::Error::success();
}

template <int N> llvm::Error Interpreter<N>::runIntrinsic(LLVM::CallIntrinsicOp op, Mask mask) {
  llvm::StringRef name = op.getIntrin();
  auto arg = [&](unsigned i) -> Lanes & { return get(op.getArgs()[i]); };
  if (name == "llvm.nvvm.sqrt.rn.f") {
    Lanes &x = arg(0);
    map(op, mask, [&](int l) { return bitsOf(std::sqrt(asF32(x[l]))); });
  } else if (name == "llvm.nvvm.ex2.approx.f32") {
    Lanes &x = arg(0);
    map(op, mask, [&](int l) { return bitsOf(std::exp2(asF32(x[l]))); });
  } else if (name == "llvm.roundeven.f64") {
    Lanes &x = arg(0);
    map(op, mask, [&](int l) { return bitsOf(std::nearbyint(asF64(x[l]))); });
  } else if (name == "llvm.nvvm.e4m3x2.to.f16x2.rn") {
    // Two e4m3 bytes to two halves, the low byte to the low half.
    Lanes &x = arg(0);
    map(op, mask, [&](int l) {
      uint64_t lo = cpu::floatToF16(cpu::fp8e4m3ToFloat(uint8_t(x[l])));
      uint64_t hi = cpu::floatToF16(cpu::fp8e4m3ToFloat(uint8_t(x[l] >> 8)));
      return lo | (hi << 16);
    });
  } else if (name == "llvm.nvvm.ff.to.e4m3x2.rn") {
    // cvt.rn.satfinite.e4m3x2.f32 a, b: a to the high byte, b to the low one.
    Lanes &a = arg(0), &b = arg(1);
    map(op, mask, [&](int l) {
      return uint64_t(cpu::floatToFp8e4m3(asF32(b[l]))) |
             (uint64_t(cpu::floatToFp8e4m3(asF32(a[l]))) << 8);
    });
  } else {
    return fail("the kernel interpreter does not know intrinsic " + name);
  }
  return llvm::Error::success();
}

template <int N> llvm::Error Interpreter<N>::runOp(Operation *op, Mask mask) {
  auto in = [&](unsigned i) -> Lanes & { return get(op->getOperand(i)); };
  auto inWidth = [&](unsigned i) { return widthOf(op->getOperand(i).getType()); };
  if (auto c = dyn_cast<arith::ConstantOp>(op)) {
    uint64_t v = 0;
    if (auto i = dyn_cast<IntegerAttr>(c.getValue()))
      v = i.getValue().getZExtValue();
    else if (auto f = dyn_cast<FloatAttr>(c.getValue()))
      v = f.getValue().bitcastToAPInt().getZExtValue();
    else
      return fail("the kernel interpreter does not know this constant");
    Lanes l;
    l.fill(truncate(v, widthOf(c.getType())));
    values[c.getResult()] = l;
    return llvm::Error::success();
  }
  if (auto f = dyn_cast<scf::ForOp>(op))
    return runFor(f, mask);
  if (auto i = dyn_cast<scf::IfOp>(op))
    return runIf(i, mask);
  if (auto w = dyn_cast<scf::WhileOp>(op)) {
    // Loops without carried values (the mbarrier waits): the lanes whose condition
    // holds run the body, until none does.
    if (w.getNumOperands() != 0 || w.getNumResults() != 0)
      return fail("the kernel interpreter takes scf.while without carried values only");
    Mask active = mask;
    for (int64_t round = 0; active; ++round) {
      if (round > (int64_t(1) << 24))
        return fail("an scf.while ran 2^24 rounds");
      SmallVector<Lanes, 4> yields;
      if (llvm::Error err = runBlock(w.getBefore().front(), active, &yields))
        return err;
      Mask next = 0;
      eachLane(active, [&](int l) {
        if (yields[0][l] & 1)
          next |= Mask(1) << l;
      });
      active = next;
      if (active)
        if (llvm::Error err = runBlock(w.getAfter().front(), active, &yields))
          return err;
    }
    return llvm::Error::success();
  }
  if (auto call = dyn_cast<LLVM::CallIntrinsicOp>(op))
    return runIntrinsic(call, mask);
  if (auto mma = dyn_cast<NVVM::MmaOp>(op))
    return runMma(mma, mask);
  if (auto extract = dyn_cast<LLVM::ExtractValueOp>(op)) {
    auto found = structs.find(extract.getContainer());
    if (found == structs.end() || extract.getPosition().size() != 1 ||
        size_t(extract.getPosition()[0]) >= found->second.size())
      return fail("the kernel interpreter takes extractvalue of an mma.sync result only");
    values[extract.getResult()] = found->second[size_t(extract.getPosition()[0])];
    return llvm::Error::success();
  }

  // Integer arithmetic (values kept zero-extended to their width).
  using BinaryInt = uint64_t (*)(uint64_t, uint64_t, unsigned);
  BinaryInt binary =
      llvm::TypeSwitch<Operation *, BinaryInt>(op)
          .template Case<arith::AddIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return a + b; };
          })
          .template Case<arith::SubIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return a - b; };
          })
          .template Case<arith::MulIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return a * b; };
          })
          .template Case<arith::DivUIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return b ? a / b : 0; };
          })
          .template Case<arith::RemUIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return b ? a % b : 0; };
          })
          .template Case<arith::DivSIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned w) {
              int64_t d = signExtend(b, w);
              return d ? uint64_t(signExtend(a, w) / d) : 0;
            };
          })
          .template Case<arith::RemSIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned w) {
              int64_t d = signExtend(b, w);
              return d ? uint64_t(signExtend(a, w) % d) : 0;
            };
          })
          .template Case<arith::MinUIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return a < b ? a : b; };
          })
          .template Case<arith::AndIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return a & b; };
          })
          .template Case<arith::OrIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return a | b; };
          })
          .template Case<arith::XOrIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned) { return a ^ b; };
          })
          .template Case<arith::ShLIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned w) { return b < w ? a << b : 0; };
          })
          .template Case<arith::ShRUIOp>([](auto) -> BinaryInt {
            return [](uint64_t a, uint64_t b, unsigned w) { return b < w ? a >> b : 0; };
          })
          .Default([](Operation *) -> BinaryInt { return nullptr; });
  if (binary) {
    Lanes &a = in(0), &b = in(1);
    unsigned w = inWidth(0);
    map(op, mask, [&](int l) { return binary(a[l], b[l], w); });
    return llvm::Error::success();
  }
  // Float arithmetic, in the operands' own precision.
  if (isa<arith::AddFOp, arith::SubFOp, arith::MulFOp, arith::DivFOp, arith::MaximumFOp,
          arith::MinimumFOp>(op)) {
    Lanes &a = in(0), &b = in(1);
    Type t = op->getResult(0).getType();
    bool f64 = t.isF64();
    // In the operands' own precision (maximumf and minimumf propagate NaN).
    auto apply = [op](auto x, auto y) -> decltype(x) {
      if (isa<arith::AddFOp>(op))
        return x + y;
      if (isa<arith::SubFOp>(op))
        return x - y;
      if (isa<arith::MulFOp>(op))
        return x * y;
      if (isa<arith::DivFOp>(op))
        return x / y;
      if (std::isnan(x) || std::isnan(y))
        return decltype(x)(NAN);
      return isa<arith::MinimumFOp>(op) ? std::fmin(x, y) : std::fmax(x, y);
    };
    map(op, mask, [&](int l) -> uint64_t {
      return f64 ? bitsOf(apply(asF64(a[l]), asF64(b[l])))
                 : bitsOf(apply(asF32(a[l]), asF32(b[l])));
    });
    return llvm::Error::success();
  }
  if (auto fma = dyn_cast<LLVM::FMAOp>(op)) {
    Lanes &a = in(0), &b = in(1), &c = in(2);
    bool f64 = fma.getType().isF64();
    map(op, mask, [&](int l) {
      return f64 ? bitsOf(std::fma(asF64(a[l]), asF64(b[l]), asF64(c[l])))
                 : bitsOf(std::fmaf(asF32(a[l]), asF32(b[l]), asF32(c[l])));
    });
    return llvm::Error::success();
  }
  if (auto cmp = dyn_cast<arith::CmpIOp>(op)) {
    Lanes &a = in(0), &b = in(1);
    unsigned w = inWidth(0);
    auto p = cmp.getPredicate();
    map(op, mask, [&](int l) -> uint64_t {
      uint64_t x = a[l], y = b[l];
      int64_t sx = signExtend(x, w), sy = signExtend(y, w);
      switch (p) {
      case arith::CmpIPredicate::eq: return x == y;
      case arith::CmpIPredicate::ne: return x != y;
      case arith::CmpIPredicate::ult: return x < y;
      case arith::CmpIPredicate::ule: return x <= y;
      case arith::CmpIPredicate::ugt: return x > y;
      case arith::CmpIPredicate::uge: return x >= y;
      case arith::CmpIPredicate::slt: return sx < sy;
      case arith::CmpIPredicate::sle: return sx <= sy;
      case arith::CmpIPredicate::sgt: return sx > sy;
      case arith::CmpIPredicate::sge: return sx >= sy;
      }
      return 0;
    });
    return llvm::Error::success();
  }
  if (auto cmp = dyn_cast<arith::CmpFOp>(op)) {
    Lanes &a = in(0), &b = in(1);
    Type t = op->getOperand(0).getType();
    auto p = cmp.getPredicate();
    map(op, mask, [&](int l) -> uint64_t {
      double x = toDouble(a[l], t), y = toDouble(b[l], t);
      bool unordered = std::isnan(x) || std::isnan(y);
      switch (p) {
      case arith::CmpFPredicate::OEQ: return !unordered && x == y;
      case arith::CmpFPredicate::ONE: return !unordered && x != y;
      case arith::CmpFPredicate::OGT: return !unordered && x > y;
      case arith::CmpFPredicate::OGE: return !unordered && x >= y;
      case arith::CmpFPredicate::OLT: return !unordered && x < y;
      case arith::CmpFPredicate::OLE: return !unordered && x <= y;
      case arith::CmpFPredicate::UNO: return unordered;
      case arith::CmpFPredicate::ORD: return !unordered;
      default: return 0;
      }
    });
    return llvm::Error::success();
  }
  if (auto sel = dyn_cast<arith::SelectOp>(op)) {
    Lanes &c = in(0), &a = in(1), &b = in(2);
    map(op, mask, [&](int l) { return (c[l] & 1) ? a[l] : b[l]; });
    return llvm::Error::success();
  }
  if (isa<arith::ExtSIOp, arith::IndexCastOp>(op)) {
    Lanes &a = in(0);
    unsigned w = inWidth(0);
    map(op, mask, [&](int l) { return uint64_t(signExtend(a[l], w)); });
    return llvm::Error::success();
  }
  if (isa<arith::ExtUIOp, arith::TruncIOp, arith::BitcastOp>(op)) {
    Lanes &a = in(0);
    map(op, mask, [&](int l) { return a[l]; });
    return llvm::Error::success();
  }
  if (isa<arith::ExtFOp, arith::TruncFOp>(op)) {
    Lanes &a = in(0);
    Type from = op->getOperand(0).getType(), to = op->getResult(0).getType();
    map(op, mask, [&](int l) { return fromDouble(toDouble(a[l], from), to); });
    return llvm::Error::success();
  }
  if (isa<arith::SIToFPOp>(op)) {
    Lanes &a = in(0);
    unsigned w = inWidth(0);
    Type to = op->getResult(0).getType();
    map(op, mask, [&](int l) {
      int64_t v = signExtend(a[l], w);
      return to.isF64() ? bitsOf(double(v)) : bitsOf(float(v));
    });
    return llvm::Error::success();
  }
  if (isa<arith::FPToSIOp>(op)) {
    Lanes &a = in(0);
    Type from = op->getOperand(0).getType();
    map(op, mask, [&](int l) { return uint64_t(int64_t(toDouble(a[l], from))); });
    return llvm::Error::success();
  }
  if (auto gep = dyn_cast<LLVM::GEPOp>(op)) {
    auto indices = gep.getDynamicIndices();
    if (indices.size() != 1 || gep.getRawConstantIndices().size() != 1)
      return fail("the kernel interpreter takes a GEP with one dynamic index");
    Lanes &base = get(gep.getBase()), &index = get(indices[0]);
    unsigned w = widthOf(indices[0].getType());
    uint64_t size = sizeOf(gep.getElemType());
    map(op, mask, [&](int l) { return base[l] + uint64_t(signExtend(index[l], w)) * size; });
    return llvm::Error::success();
  }
  if (auto load = dyn_cast<LLVM::LoadOp>(op)) {
    Lanes &address = get(load.getAddr());
    uint64_t size = sizeOf(load.getType());
    const bool toShared = isShared(load.getAddr().getType());
    bool outside = false;
    map(op, mask, [&](int l) {
      uint64_t v = 0;
      const void *from = reinterpret_cast<const void *>(address[l]);
      if (toShared)
        from = sharedByte(address[l], size);
      if (!from) {
        outside = true;
        return v;
      }
      std::memcpy(&v, from, size);
      return v;
    });
    if (outside)
      return fail("a load past the block's shared memory");
    return llvm::Error::success();
  }
  if (auto store = dyn_cast<LLVM::StoreOp>(op)) {
    Lanes &address = get(store.getAddr()), &value = get(store.getValue());
    uint64_t size = sizeOf(store.getValue().getType());
    const bool toShared = isShared(store.getAddr().getType());
    bool outside = false;
    eachLane(mask, [&](int l) {
      void *to = reinterpret_cast<void *>(address[l]);
      if (toShared)
        to = sharedByte(address[l], size);
      if (!to) {
        outside = true;
        return;
      }
      std::memcpy(to, &value[l], size);
    });
    if (outside)
      return fail("a store past the block's shared memory");
    return llvm::Error::success();
  }
  bool handled = false;
  if (llvm::Error err = runSharedMemoryOp(op, mask, &handled))
    return err;
  if (handled)
    return llvm::Error::success();
  if (auto extract = dyn_cast<LLVM::ExtractElementOp>(op)) {
    Lanes &vec = get(extract.getVector()), &pos = get(extract.getPosition());
    unsigned w = widthOf(extract.getType());
    map(op, mask, [&](int l) { return vec[l] >> (w * pos[l]); });
    return llvm::Error::success();
  }
  if (auto id = dyn_cast<gpu::BlockIdOp>(op)) {
    unsigned d = unsigned(id.getDimension());
    map(op, mask, [&](int) { return uint64_t(blockId[d]); });
    return llvm::Error::success();
  }
  if (auto id = dyn_cast<gpu::ThreadIdOp>(op)) {
    if (id.getDimension() != gpu::Dimension::x) {
      map(op, mask, [&](int) { return uint64_t(0); });
      return llvm::Error::success();
    }
    map(op, mask, [&](int l) { return uint64_t(warpBase + uint32_t(l)); });
    return llvm::Error::success();
  }
  if (auto shfl = dyn_cast<NVVM::ShflOp>(op)) {
    if (shfl.getKind() != NVVM::ShflKind::bfly || shfl.getReturnValueAndIsValid())
      return fail("the kernel interpreter takes butterfly shuffles only");
    Lanes value = get(shfl.getVal()), &offset = get(shfl.getOffset());
    map(op, mask, [&](int l) {
      int from = l ^ int(offset[l] & 31);
      return value[from];
    });
    return llvm::Error::success();
  }
  return fail("the kernel interpreter does not know '" + op->getName().getStringRef() + "'");
}

/// The shared-memory, barrier, TMA and wgmma ops of the warpgroup kernels.
template <int N>
llvm::Error Interpreter<N>::runSharedMemoryOp(Operation *op, Mask mask, bool *handled) {
  *handled = true;
  auto all = [&] {
    Mask full = 0;
    for (int l = 0; l < kLanes; ++l)
      if (warpBase + uint32_t(l) < blockDim[0])
        full |= Mask(1) << l;
    return full;
  };
  if (auto address = dyn_cast<LLVM::AddressOfOp>(op)) {
    auto found = sharedOffsets.find(address.getGlobalName());
    if (found == sharedOffsets.end())
      return fail("the kernel interpreter takes addresses of shared globals only, not @" +
                  address.getGlobalName());
    const uint64_t offset = found->second;
    map(op, mask, [&](int) { return offset; });
    return llvm::Error::success();
  }
  if (isa<LLVM::AddrSpaceCastOp, LLVM::PtrToIntOp>(op)) {
    // Global and generic addresses are host addresses; shared ones stay offsets.
    Lanes &a = get(op->getOperand(0));
    map(op, mask, [&](int l) { return a[l]; });
    return llvm::Error::success();
  }
  if (auto undef = dyn_cast<LLVM::UndefOp>(op)) {
    auto type = dyn_cast<LLVM::LLVMStructType>(undef.getType());
    if (!type)
      return fail("the kernel interpreter takes undef structs only");
    structs[undef.getResult()] = SmallVector<Lanes, 4>(type.getBody().size(), Lanes{});
    return llvm::Error::success();
  }
  if (isa<NVVM::Barrier0Op>(op)) {
    // Lockstep: every thread is here at once, if none took another branch.
    if (N != 128 || mask != all())
      return fail("barrier.sync 0 where not every thread of the block is (divergent, or "
                  "a kernel without moec.warpgroup)");
    return llvm::Error::success();
  }
  if (isa<NVVM::FenceProxyOp, NVVM::FenceProxyAcquireOp, NVVM::FenceMbarrierInitOp,
          NVVM::WgmmaFenceAlignedOp, NVVM::WgmmaGroupSyncAlignedOp,
          NVVM::WgmmaWaitGroupSyncOp>(op))
    return llvm::Error::success(); // every effect is immediate here
  if (auto asmOp = dyn_cast<LLVM::InlineAsmOp>(op)) {
    // An empty asm whose outputs are its tied inputs (a register fence): a struct
    // of the operands.
    auto type = asmOp.getNumResults() == 1
                    ? dyn_cast<LLVM::LLVMStructType>(asmOp.getResult(0).getType())
                    : LLVM::LLVMStructType();
    if (!asmOp.getAsmString().empty() || !type ||
        type.getBody().size() != asmOp.getOperands().size())
      return fail("the kernel interpreter takes only empty inline asm that ties its operands");
    SmallVector<Lanes, 4> members;
    for (Value v : asmOp.getOperands())
      members.push_back(get(v));
    structs[asmOp.getResult(0)] = std::move(members);
    return llvm::Error::success();
  }
  if (auto init = dyn_cast<NVVM::MBarrierInitOp>(op)) {
    Lanes &address = get(init.getAddr()), &count = get(init.getCount());
    eachLane(mask, [&](int l) {
      Barrier b;
      b.expected = b.pending = int64_t(count[l]);
      barriers[address[l]] = b;
    });
    return llvm::Error::success();
  }
  if (auto arrive = dyn_cast<NVVM::MBarrierArriveExpectTxOp>(op)) {
    Lanes &address = get(arrive.getAddr()), &bytes = get(arrive.getTxcount());
    bool unknown = false;
    eachLane(mask, [&](int l) {
      auto found = barriers.find(address[l]);
      if (found == barriers.end()) {
        unknown = true;
        return;
      }
      found->second.tx += int64_t(bytes[l]);
      found->second.pending -= 1;
      settle(found->second);
    });
    if (unknown)
      return fail("mbarrier.arrive.expect_tx on an mbarrier never initialized");
    return llvm::Error::success();
  }
  if (auto wait = dyn_cast<NVVM::MBarrierTryWaitOp>(op)) {
    // try_wait with a phase parity: true once that phase completed. Copies complete
    // at once here, so a phase that has not completed never will: an error rather
    // than a loop that spins forever.
    Lanes &address = get(wait.getAddr()), &parity = get(wait.getStateOrPhase());
    if (!wait.getStateOrPhase().getType().isInteger(32))
      return fail("the kernel interpreter takes mbarrier.try_wait with a phase parity only");
    bool stuck = false;
    eachLane(mask, [&](int l) {
      auto found = barriers.find(address[l]);
      stuck |= found == barriers.end() || found->second.phase == (parity[l] & 1);
    });
    if (stuck)
      return fail("mbarrier.try_wait.parity would wait forever (the phase it waits for "
                  "never completes: a missing arrive or copy, or the wrong parity)");
    map(op, mask, [&](int) { return uint64_t(1); });
    return llvm::Error::success();
  }
  if (auto copy = dyn_cast<NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp>(op)) {
    if (copy.getCoordinates().size() != 2)
      return fail("the kernel interpreter takes 2-D tensor copies only");
    Lanes &dst = get(copy.getDstMem()), &map = get(copy.getTmaDescriptor()),
          &bar = get(copy.getMbar());
    Lanes &c0 = get(copy.getCoordinates()[0]), &c1 = get(copy.getCoordinates()[1]);
    std::string problem;
    eachLane(mask, [&](int l) {
      TensorMap t;
      std::memcpy(&t, reinterpret_cast<const void *>(map[l]), sizeof(t));
      const int64_t x0 = signExtend(c0[l], 32), y0 = signExtend(c1[l], 32);
      const uint64_t bytes = uint64_t(t.box[0]) * t.box[1];
      uint8_t *out = sharedByte(dst[l], bytes);
      if (!out) {
        problem = "a tensor copy past the block's shared memory";
        return;
      }
      // The box, row by row, elements outside the tensor as zero.
      for (uint32_t y = 0; y < t.box[1]; ++y)
        for (uint32_t x = 0; x < t.box[0]; ++x) {
          const int64_t gx = x0 + x, gy = y0 + y;
          const bool inside = gx >= 0 && gy >= 0 && uint64_t(gx) < t.dims[0] &&
                              uint64_t(gy) < t.dims[1];
          out[y * t.box[0] + x] =
              inside ? reinterpret_cast<const uint8_t *>(t.base)[uint64_t(gy) * t.rowStride +
                                                                 uint64_t(gx)]
                     : 0;
        }
      auto found = barriers.find(bar[l]);
      if (found == barriers.end()) {
        problem = "a tensor copy signals an mbarrier never initialized";
        return;
      }
      found->second.tx -= int64_t(bytes);
      settle(found->second);
    });
    if (!problem.empty())
      return fail(problem);
    return llvm::Error::success();
  }
  if (auto mma = dyn_cast<NVVM::WgmmaMmaAsyncOp>(op))
    return runWgmma(mma, mask);
  *handled = false;
  return llvm::Error::success();
}

/// wgmma.mma_async m64nNk32 with e4m3 A and B from shared memory (descriptors:
/// start, LBO, SBO >> 4; no swizzle; A and B K-major: element (row, k) of a core
/// matrix grid at start + (row / 8) * SBO + (k / 16) * LBO + (row % 8) * 16 + k % 16),
/// f32 D in registers: thread t = 32 w + l holds D[16 w + l / 4 (+8)][8 i + 2 (l % 4) (+1)]
/// in its values 4 i + {0, 1, 2, 3}. Each product is exact in f32; the sums are
/// f32 fmas in k order (the tensor cores' own order and internal precision differ).
template <int N>
llvm::Error Interpreter<N>::runWgmma(NVVM::WgmmaMmaAsyncOp op, Mask mask) {
  if (N != 128)
    return fail("wgmma.mma_async in a kernel without moec.warpgroup");
  const int64_t M = op.getShape().getM(), Ncols = op.getShape().getN(),
                K = op.getShape().getK();
  if (M != 64 || K != 32 || op.getTypeA() != NVVM::WGMMATypes::e4m3 ||
      op.getTypeB() != NVVM::WGMMATypes::e4m3 || op.getTypeD() != NVVM::WGMMATypes::f32 ||
      Ncols % 8 != 0)
    return fail("the kernel interpreter takes wgmma m64nNk32 e4m3 x e4m3 -> f32 only");
  Mask full = 0;
  for (int l = 0; l < kLanes; ++l)
    full |= Mask(1) << l;
  if (mask != full)
    return fail("wgmma.mma_async with inactive threads");
  auto found = structs.find(op.getInouts());
  if (found == structs.end() || found->second.size() != size_t(Ncols / 2))
    return fail("wgmma.mma_async: its accumulator struct is unknown or of the wrong size");
  const uint64_t descA = get(op.getDescriptorA())[0], descB = get(op.getDescriptorB())[0];
  auto element = [&](uint64_t desc, int64_t row, int64_t k, bool *bad) -> float {
    if ((desc >> 62) != 0) {
      *bad = true;
      return 0.f;
    }
    const uint64_t start = (desc & 0x3fff) << 4, lbo = ((desc >> 16) & 0x3fff) << 4,
                   sbo = ((desc >> 32) & 0x3fff) << 4;
    const uint64_t at =
        start + uint64_t(row / 8) * sbo + uint64_t(k / 16) * lbo + uint64_t(row % 8) * 16 +
        uint64_t(k % 16);
    const uint8_t *byte = sharedByte(at, 1);
    if (!byte) {
      *bad = true;
      return 0.f;
    }
    return cpu::fp8e4m3ToFloat(*byte);
  };
  bool bad = false;
  std::vector<float> A(size_t(M * K)), B(size_t(Ncols * K));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k)
      A[size_t(m * K + k)] = element(descA, m, k, &bad);
  for (int64_t n = 0; n < Ncols; ++n)
    for (int64_t k = 0; k < K; ++k)
      B[size_t(n * K + k)] = element(descB, n, k, &bad);
  if (bad)
    return fail("wgmma.mma_async: a descriptor with a swizzle, or past shared memory");
  const bool accumulate = op.getScaleD() == NVVM::WGMMAScaleOut::one;
  SmallVector<Lanes, 4> d = found->second;
  for (int t = 0; t < kLanes; ++t) {
    const int w = t / 32, l = t % 32;
    for (int64_t j = 0; j < Ncols / 2; ++j) {
      const int64_t m = 16 * w + l / 4 + (j % 4 < 2 ? 0 : 8);
      const int64_t n = 8 * (j / 4) + 2 * (l % 4) + j % 2;
      float sum = accumulate ? asF32(d[size_t(j)][size_t(t)]) : 0.f;
      for (int64_t k = 0; k < K; ++k)
        sum = std::fmaf(A[size_t(m * K + k)], B[size_t(n * K + k)], sum);
      d[size_t(j)][size_t(t)] = bitsOf(sum);
    }
  }
  structs[op.getResult()] = std::move(d);
  return llvm::Error::success();
}

} // namespace

llvm::Error interpretKernel(gpu::GPUFuncOp kernel, std::array<uint32_t, 3> grid,
                            std::array<uint32_t, 3> block, llvm::ArrayRef<uint64_t> args) {
  if (block[0] == 0 || block[0] % kWarpLanes != 0 || block[1] != 1 || block[2] != 1)
    return fail(llvm::formatv("{0}: the kernel interpreter takes blocks of a multiple of 32 "
                              "threads in x, got {1}x{2}x{3}",
                              kernel.getName(), block[0], block[1], block[2]));
  if (kernel->hasAttr("moec.warpgroup")) {
    // One warpgroup in lockstep, with its shared memory.
    if (block[0] != 128)
      return fail(kernel.getName() + ": a warpgroup kernel takes blocks of 128 threads");
    Interpreter<128> interpreter(block);
    uint64_t bytes = 0;
    if (auto module = kernel->getParentOfType<gpu::GPUModuleOp>())
      for (auto global : module.getOps<LLVM::GlobalOp>()) {
        if (global.getAddrSpace() != 3)
          continue;
        auto array = dyn_cast<LLVM::LLVMArrayType>(global.getType());
        if (!array)
          continue;
        uint64_t align = std::max<uint64_t>(global.getAlignment().value_or(16), 16);
        bytes = (bytes + align - 1) / align * align;
        interpreter.sharedOffsets[global.getSymName()] = bytes;
        bytes += array.getNumElements() * sizeOf(array.getElementType());
      }
    interpreter.shared.assign(bytes, 0);
    for (uint32_t z = 0; z < grid[2]; ++z)
      for (uint32_t y = 0; y < grid[1]; ++y)
        for (uint32_t x = 0; x < grid[0]; ++x)
          if (llvm::Error err = interpreter.runWarp(kernel, {x, y, z}, 0, args))
            return fail(kernel.getName() + ": " + llvm::toString(std::move(err)));
    return llvm::Error::success();
  }
  Interpreter<kWarpLanes> interpreter(block);
  for (uint32_t z = 0; z < grid[2]; ++z)
    for (uint32_t y = 0; y < grid[1]; ++y)
      for (uint32_t x = 0; x < grid[0]; ++x)
        for (uint32_t w = 0; w < block[0] / kWarpLanes; ++w)
          if (llvm::Error err = interpreter.runWarp(kernel, {x, y, z}, w, args))
            return fail(kernel.getName() + ": " + llvm::toString(std::move(err)));
  return llvm::Error::success();
}

} // namespace moec::ptx
