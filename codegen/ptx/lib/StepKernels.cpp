//===- StepKernels.cpp - kernels generated for a plan's steps -------------===//
//
// Each generator below writes one kernel with an ImplicitLocOpBuilder: gpu ids,
// scf loops, arith, llvm loads/stores on global pointers and nvvm warp shuffles.
// Every shape, stride, dtype and attribute of the step is a constant of the
// kernel; only the token count T arrives at run time.
//
// Numerics follow the CPU kernels (shared/spec/deepseek-semantics.md): fp32
// accumulation, IEEE-rounded sqrt and division (no fast-math), weights widened
// to fp32 exactly (bf16 by a shift, f16 by fpext, e4m3 through
// cvt.rn.f16x2.e4m3x2 on sm_90a or an exact integer decode on sm_80) and
// multiplied by their block scale; with Step.activations = BF16 the products'
// inputs are rounded to bfloat16 (nearest even) first.
//
//===----------------------------------------------------------------------===//

#include "moec/Codegen/StepKernels.h"

#include "moec/Codegen/PTX.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

#include <functional>

using namespace mlir;

namespace moec::ptx {

namespace {

constexpr int64_t kWarp = 32;

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

const char *dtypeSuffix(plan::DType dtype) {
  switch (dtype) {
  case plan::DType::F32:
    return "f32";
  case plan::DType::F16:
    return "f16";
  case plan::DType::BF16:
    return "bf16";
  case plan::DType::F8E4M3:
    return "f8";
  case plan::DType::I32:
    return "i32";
  case plan::DType::I8:
    return "i8";
  }
  return "x";
}

/// The emitter of one kernel body: small helpers over an ImplicitLocOpBuilder.
class KernelEmitter {
public:
  KernelEmitter(ImplicitLocOpBuilder &b, bool sm90) : b(b), sm90(sm90) {
    MLIRContext *ctx = b.getContext();
    f32 = b.getF32Type();
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
  Value add(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value add(Value x, int64_t y) { return y ? add(x, c64(y)) : x; }
  Value mul(Value x, int64_t y) { return y == 1 ? x : mul(x, c64(y)); }
  Value divu(Value x, int64_t y) { return y == 1 ? x : arith::DivUIOp::create(b, x, c64(y)); }
  Value remu(Value x, int64_t y) { return arith::RemUIOp::create(b, x, c64(y)); }
  Value minu(Value x, Value y) { return arith::MinUIOp::create(b, x, y); }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
  }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value fma(Value x, Value y, Value z) { return LLVM::FMAOp::create(b, x, y, z); }

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

  /// Element `index` of a weight of `dtype` (f32, f16, bf16 or e4m3), as f32.
  Value loadAsF32(plan::DType dtype, Value base, Value index) {
    switch (dtype) {
    case plan::DType::F16:
      return arith::ExtFOp::create(b, f32, load(f16, base, index));
    case plan::DType::BF16: {
      Value bits = arith::ExtUIOp::create(b, i32, load(i16, base, index));
      Value shifted = arith::ShLIOp::create(b, bits, c32(16));
      return arith::BitcastOp::create(b, f32, shifted);
    }
    case plan::DType::F8E4M3:
      return decodeE4m3(load(i8, base, index));
    default:
      return load(f32, base, index);
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

  /// The sum of `v` over the 32 lanes of the warp, in every lane.
  Value warpSum(Value v) {
    Value all = c32(-1), clamp = c32(31);
    for (int32_t offset = 16; offset >= 1; offset /= 2) {
      Value other = NVVM::ShflOp::create(b, f32, all, v, c32(offset), clamp,
                                         NVVM::ShflKind::bfly, UnitAttr());
      v = fadd(v, other);
    }
    return v;
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

  ImplicitLocOpBuilder &b;
  bool sm90;
  Type f32, f16, i8, i16, i32, i64, ptr;
};

/// A kernel to build: its name (also its specialisation key), launch shape and
/// body. The body gets the kernel arguments: pointers, then T (i64).
struct KernelSpec {
  std::string name;
  unsigned numPointers = 0;
  unsigned block = 256;
  unsigned gridY = 1;
  unsigned tokensPerBlock = 1;
  std::function<void(KernelEmitter &, ValueRange ptrs, Value tokens)> body;
};

/// Why `step` has no kernel yet, or empty when it has one: specs it appends.
class SpecBuilder {
public:
  explicit SpecBuilder(const plan::PlanT &plan) : plan(plan) {}

  llvm::Error build(uint32_t index, std::optional<KernelSpec> *out);

private:
  llvm::Expected<const plan::BufferT *> buffer(const plan::StepT &step, bool result,
                                               size_t i) const {
    const std::vector<int32_t> &list = result ? step.results : step.operands;
    if (i >= list.size() || list[i] < 0 || size_t(list[i]) >= plan.buffers.size())
      return malformed(llvm::formatv("step {0} ({1}): {2} {3} is missing or out of range",
                                     current, step.name, result ? "result" : "operand", i));
    return plan.buffers[list[i]].get();
  }
  llvm::Expected<const plan::WeightT *> weight(const plan::StepT &step, size_t i) const {
    if (i >= step.weights.size() || step.weights[i] < 0 ||
        size_t(step.weights[i]) >= plan.weights.size())
      return malformed(llvm::formatv("step {0} ({1}): weight {2} is missing or out of range",
                                     current, step.name, i));
    return plan.weights[step.weights[i]].get();
  }
  static bool unquantized(plan::DType d) {
    return d == plan::DType::F32 || d == plan::DType::F16 || d == plan::DType::BF16;
  }

  std::optional<KernelSpec> embedding(const plan::StepT &step, const plan::WeightT &table);
  std::optional<KernelSpec> rmsNorm(const plan::StepT &step, int64_t cols,
                                    const plan::WeightT &gamma, bool withAdd);
  std::optional<KernelSpec> linear(const plan::StepT &step, const plan::BufferT &x,
                                   const plan::BufferT &y, const plan::WeightT &w);

  const plan::PlanT &plan;
  uint32_t current = 0;
};

std::optional<KernelSpec> SpecBuilder::embedding(const plan::StepT &step,
                                                 const plan::WeightT &table) {
  if (table.shape.size() != 2 || !unquantized(table.dtype))
    return std::nullopt;
  int64_t vocab = table.shape[0], dim = table.shape[1];
  plan::DType dtype = table.dtype;
  KernelSpec spec;
  spec.name = llvm::formatv("moec_embedding_{0}x{1}_{2}", vocab, dim, dtypeSuffix(dtype));
  spec.numPointers = 3; // tokens, out, table
  spec.body = [=](KernelEmitter &e, ValueRange p, Value) {
    Value t = e.blockId(gpu::Dimension::x);
    Value id = arith::ExtSIOp::create(e.b, e.i64, e.load(e.i32, p[0], t));
    // Ids are checked by the runtime before a call; one out of range reads row 0.
    Value valid = e.ult(id, e.c64(vocab));
    Value row = arith::SelectOp::create(e.b, valid, id, e.c64(0));
    e.loop(e.threadId(), e.c64(dim), e.c64(256), [&](Value j) {
      Value v = e.loadAsF32(dtype, p[2], e.add(e.mul(row, dim), j));
      e.store(v, p[1], e.add(e.mul(t, dim), j));
    });
  };
  (void)step;
  return spec;
}

std::optional<KernelSpec> SpecBuilder::rmsNorm(const plan::StepT &step, int64_t cols,
                                               const plan::WeightT &gamma, bool withAdd) {
  if (!unquantized(gamma.dtype) || gamma.shape.size() != 1 || gamma.shape[0] != cols)
    return std::nullopt;
  const auto *attrs = step.attrs.AsRmsNormAttrs();
  float eps = attrs ? attrs->eps : 1e-6f;
  plan::DType dtype = gamma.dtype;
  KernelSpec spec;
  spec.name = llvm::formatv("moec_{0}_{1}_{2}_eps{3:x}", withAdd ? "add_rms_norm" : "rms_norm",
                            cols, dtypeSuffix(dtype), llvm::bit_cast<uint32_t>(eps));
  spec.block = kWarp; // one warp per token row
  spec.numPointers = withAdd ? 5 : 3; // [a, b,] (x,) [sum,] y, gamma
  spec.body = [=](KernelEmitter &e, ValueRange p, Value) {
    Value t = e.blockId(gpu::Dimension::x);
    Value lane = e.threadId();
    Value base = e.mul(t, cols);
    Value src = withAdd ? p[2] : p[0]; // the row normalised: sum, or x
    Value out = withAdd ? p[3] : p[1];
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
    Value sum = e.warpSum(partial);
    Value mean = arith::DivFOp::create(e.b, sum, e.cf(float(cols)));
    Value root = LLVM::CallIntrinsicOp::create(e.b, e.f32, e.b.getStringAttr("llvm.nvvm.sqrt.rn.f"),
                                               ValueRange{e.fadd(mean, e.cf(eps))})
                     .getResult(0);
    Value inv = arith::DivFOp::create(e.b, e.cf(1.0f), root);
    e.loop(lane, e.c64(cols), e.c64(kWarp), [&](Value j) {
      Value i = e.add(base, j);
      Value normed = e.fmul(e.load(e.f32, src, i), inv);
      e.store(e.fmul(normed, e.loadAsF32(dtype, g, j)), out, i);
    });
  };
  return spec;
}

/// linear and head_linear: y[t, h*N + n] = sum_k x[t, h*xs + xo + k] * W(h, n, k),
/// W(h, n, k) = W[h*rs + ro + n, k] (transpose: W[h*rs + ro + k, n]) times its
/// block scale. One warp per output column, 8 per block, 4 tokens per block.
std::optional<KernelSpec> SpecBuilder::linear(const plan::StepT &step, const plan::BufferT &x,
                                              const plan::BufferT &y, const plan::WeightT &w) {
  if (w.shape.size() != 2)
    return std::nullopt;
  bool fp8 = w.dtype == plan::DType::F8E4M3;
  if (!unquantized(w.dtype) && !fp8)
    return std::nullopt; // int8 (W8A8) has no GPU kernel yet
  int64_t wRows = w.shape[0], wCols = w.shape[1];
  int64_t heads = 1, n = wRows, k = wCols, xStride = 0, xOffset = 0, rowStride = 0,
          rowOffset = 0;
  bool transpose = false;
  if (step.kind == plan::StepKind::HeadLinear) {
    const auto *a = step.attrs.AsHeadLinearAttrs();
    if (!a)
      return std::nullopt;
    heads = a->heads;
    xStride = a->in_stride;
    xOffset = a->in_offset;
    rowStride = a->row_stride;
    rowOffset = a->row_offset;
    transpose = a->transpose;
    k = a->in_width;
    n = transpose ? wCols : a->rows;
  }
  int64_t xCols = tokenCols(x), yCols = tokenCols(y);
  if (yCols != heads * n)
    return std::nullopt;
  int64_t blockRows = 1, blockCols = 1, scaleCols = 0;
  if (fp8) {
    if (w.block_shape.size() != 2 || w.block_scale < 0 ||
        size_t(w.block_scale) >= plan.weights.size())
      return std::nullopt;
    blockRows = w.block_shape[0];
    blockCols = w.block_shape[1];
    scaleCols = (wCols + blockCols - 1) / blockCols;
  }
  bool bf16Acts = step.activations == plan::DType::BF16;
  constexpr int64_t kWarpsPerBlock = 8, kTokens = 4;
  int64_t outputs = heads * n;
  KernelSpec spec;
  spec.name = llvm::formatv(
      "moec_linear_{0}x{1}_{2}{3}_h{4}n{5}k{6}_x{7}s{8}o{9}_r{10}o{11}{12}{13}", wRows, wCols,
      dtypeSuffix(w.dtype), fp8 ? llvm::formatv("b{0}x{1}", blockRows, blockCols).str() : "",
      heads, n, k, xCols, xStride, xOffset, rowStride, rowOffset, transpose ? "_t" : "",
      bf16Acts ? "_bf16acts" : "");
  spec.numPointers = fp8 ? 4 : 3; // x, y, W[, scale]
  spec.block = kWarpsPerBlock * kWarp;
  spec.gridY = unsigned((outputs + kWarpsPerBlock - 1) / kWarpsPerBlock);
  spec.tokensPerBlock = kTokens;
  plan::DType dtype = w.dtype;
  spec.body = [=](KernelEmitter &e, ValueRange p, Value tokens) {
    Value tid = e.threadId();
    Value lane = e.remu(tid, kWarp);
    Value out = e.add(e.mul(e.blockId(gpu::Dimension::y), kWarpsPerBlock), e.divu(tid, kWarp));
    Value firstToken = e.mul(e.blockId(gpu::Dimension::x), kTokens);
    // Whole warps take the branch or skip it: the shuffles inside stay converged.
    e.when(e.ult(out, e.c64(outputs)), [&] {
      Value h = e.divu(out, n);
      Value r = e.remu(out, n);
      Value lastToken = e.add(tokens, e.c64(-1));
      SmallVector<Value> xBase;
      for (int64_t tt = 0; tt < kTokens; ++tt) {
        Value t = e.minu(e.add(firstToken, tt), lastToken); // rows past T repeat T-1
        xBase.push_back(e.add(e.add(e.mul(t, xCols), e.mul(h, xStride)), xOffset));
      }
      Value headRow = e.add(e.mul(h, rowStride), rowOffset);
      SmallVector<Value> zeros(kTokens, e.cf(0.0f));
      SmallVector<Value> acc = e.loop(
          lane, e.c64(k), e.c64(kWarp), zeros,
          [&](Value kk, ValueRange sums) -> SmallVector<Value> {
            Value wr = transpose ? e.add(headRow, kk) : e.add(headRow, r);
            Value wc = transpose ? r : kk;
            Value wv = e.loadAsF32(dtype, p[2], e.add(e.mul(wr, wCols), wc));
            if (fp8) {
              Value si = e.add(e.mul(e.divu(wr, blockRows), scaleCols), e.divu(wc, blockCols));
              wv = e.fmul(wv, e.load(e.f32, p[3], si));
            }
            SmallVector<Value> next;
            for (int64_t tt = 0; tt < kTokens; ++tt) {
              Value xv = e.load(e.f32, p[0], e.add(xBase[tt], kk));
              if (bf16Acts)
                xv = e.roundToBf16(xv);
              next.push_back(e.fma(xv, wv, sums[tt]));
            }
            return next;
          });
      SmallVector<Value> totals;
      for (Value a : acc)
        totals.push_back(e.warpSum(a));
      e.when(arith::CmpIOp::create(e.b, arith::CmpIPredicate::eq, lane, e.c64(0)), [&] {
        for (int64_t tt = 0; tt < kTokens; ++tt) {
          Value t = e.add(firstToken, tt);
          e.when(e.ult(t, tokens), [&] { e.store(totals[tt], p[1], e.add(e.mul(t, yCols), out)); });
        }
      });
    });
  };
  return spec;
}

llvm::Error SpecBuilder::build(uint32_t index, std::optional<KernelSpec> *out) {
  current = index;
  const plan::StepT &step = *plan.steps[index];
  out->reset();
  auto fail = [](llvm::Error err) { return err; };
  switch (step.kind) {
  case plan::StepKind::Embedding: {
    auto table = weight(step, 0);
    if (!table)
      return fail(table.takeError());
    *out = embedding(step, **table);
    return llvm::Error::success();
  }
  case plan::StepKind::RmsNorm:
  case plan::StepKind::AddRmsNorm: {
    bool withAdd = step.kind == plan::StepKind::AddRmsNorm;
    auto x = buffer(step, /*result=*/false, 0);
    if (!x)
      return x.takeError();
    auto gamma = weight(step, 0);
    if (!gamma)
      return gamma.takeError();
    *out = rmsNorm(step, tokenCols(**x), **gamma, withAdd);
    return llvm::Error::success();
  }
  case plan::StepKind::Add:
  case plan::StepKind::SliceColumns: {
    bool isAdd = step.kind == plan::StepKind::Add;
    auto x = buffer(step, false, 0);
    if (!x)
      return x.takeError();
    auto y = buffer(step, true, 0);
    if (!y)
      return y.takeError();
    int64_t inCols = tokenCols(**x), outCols = tokenCols(**y), begin = 0;
    if (isAdd) {
      auto other = buffer(step, false, 1);
      if (!other)
        return other.takeError();
      if (tokenCols(**other) != inCols || outCols != inCols)
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
    spec.body = [=](KernelEmitter &e, ValueRange p, Value) {
      Value t = e.blockId(gpu::Dimension::x);
      e.loop(e.threadId(), e.c64(outCols), e.c64(256), [&](Value j) {
        Value v = isAdd ? e.fadd(e.load(e.f32, p[0], e.add(e.mul(t, inCols), j)),
                                 e.load(e.f32, p[1], e.add(e.mul(t, inCols), j)))
                        : e.load(e.f32, p[0], e.add(e.add(e.mul(t, inCols), begin), j));
        e.store(v, p[isAdd ? 2 : 1], e.add(e.mul(t, outCols), j));
      });
    };
    *out = std::move(spec);
    return llvm::Error::success();
  }
  case plan::StepKind::Linear:
  case plan::StepKind::HeadLinear: {
    auto x = buffer(step, false, 0);
    if (!x)
      return x.takeError();
    auto y = buffer(step, true, 0);
    if (!y)
      return y.takeError();
    auto w = weight(step, 0);
    if (!w)
      return w.takeError();
    *out = linear(step, **x, **y, **w);
    return llvm::Error::success();
  }
  default:
    return llvm::Error::success();
  }
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
    return true;
  default:
    return false;
  }
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
  llvm::StringMap<KernelSpec> built;
  for (uint32_t s = 0; s < plan.steps.size(); ++s) {
    std::optional<KernelSpec> spec;
    if (llvm::Error err = specs.build(s, &spec))
      return std::move(err);
    if (!spec) {
      result.uncovered.push_back(s);
      continue;
    }
    plan::KernelEntryT entry;
    entry.name = spec->name;
    entry.step = int32_t(s);
    entry.grid = {1, spec->gridY, 1};
    entry.block = {spec->block, 1, 1};
    entry.shared_mem_bytes = 0;
    entry.tokens_per_block = spec->tokensPerBlock;
    result.entries.push_back(std::move(entry));
    if (built.count(spec->name))
      continue;

    // (pointers..., i32 T)
    SmallVector<Type> args(spec->numPointers, LLVM::LLVMPointerType::get(&ctx, 1));
    args.push_back(b.getI32Type());
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(gpuModule.getBody());
    auto func = gpu::GPUFuncOp::create(b, spec->name, b.getFunctionType(args, {}));
    func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
    func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr({int32_t(spec->block), 1, 1}));
    Block &body = func.getBody().front();
    b.setInsertionPointToStart(&body);
    KernelEmitter e(b, sm90);
    Value tokens = arith::ExtSIOp::create(b, b.getI64Type(), body.getArgument(spec->numPointers));
    spec->body(e, body.getArguments().take_front(spec->numPointers), tokens);
    gpu::ReturnOp::create(b);
    built.try_emplace(spec->name, std::move(*spec));
  }
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
      if (entry.name == kernel.name)
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
