// The aptune CUDA addon's Node-API surface (declared for TypeScript in native/index.d.ts): memory functions over
// integer handles and one thin entry per kernel, each named after its op (add, layer_norm, ...).
// Does not: plan shapes, broadcast or choose kernels (engine/backends/cuda.ts does), nor synchronise except in
// download()/synchronize().
// Invariants: a tensor argument is a (handle, element offset) pair and every pointer is range-checked against its
// handle before a launch; every C++ or CUDA/cuBLAS error becomes a JS Error carrying the error string;
// probe() never throws, everything else throws "unavailable: <reason>" when there is no usable device. The kernel
// entries are registered from native/entries.h (generated from engine/op-contract.ts by scripts/gen-ops.ts): entry
// NAME is NAME_fn below, and a call whose argument count differs from the contract's throws before anything else.
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "cublas.h"
#include "device.h"
#include "entries.h"  // APT_KERNEL_ENTRIES, generated from engine/op-contract.ts
#include "elementwise.cuh"
#include "gather.cuh"
#include "layer_norm.cuh"
#include "movement.cuh"
#include "optim.cuh"
#include "random.cuh"
#include "reduce.cuh"
#include "resize.cuh"
#include "softmax.cuh"

namespace {

using apt::handle_ptr;

// Argument reader: throws a clear error naming the entry and argument.
struct Args {
  const Napi::CallbackInfo& info;
  const char* op;
  Args(const Napi::CallbackInfo& i, const char* o) : info(i), op(o) {}

  [[noreturn]] void fail(size_t i, const char* what) const {
    throw std::runtime_error(std::string("cuda.") + op + ": argument " + std::to_string(i) + " must be " + what);
  }
  double num(size_t i) const {
    if (i >= info.Length() || !info[i].IsNumber()) fail(i, "a number");
    return info[i].As<Napi::Number>().DoubleValue();
  }
  int64_t i64(size_t i) const {
    const double v = num(i);
    if (v != (double)(int64_t)v) fail(i, "an integer");
    return (int64_t)v;
  }
  bool flag(size_t i) const {
    if (i >= info.Length() || !info[i].IsBoolean()) fail(i, "a boolean");
    return info[i].As<Napi::Boolean>().Value();
  }
  std::vector<int64_t> vec(size_t i) const {
    if (i >= info.Length() || !info[i].IsArray()) fail(i, "an array of integers");
    Napi::Array a = info[i].As<Napi::Array>();
    std::vector<int64_t> out(a.Length());
    for (uint32_t k = 0; k < a.Length(); ++k) {
      Napi::Value v = a.Get(k);
      if (!v.IsNumber()) fail(i, "an array of integers");
      out[k] = (int64_t)v.As<Napi::Number>().DoubleValue();
    }
    return out;
  }
  // tensor at (i, i+1) = (handle, element offset), covering `count` elements
  void* ptr(size_t i, int64_t count) const { return handle_ptr(num(i), i64(i + 1), count, op); }
  float* f(size_t i, int64_t count) const { return (float*)ptr(i, count); }
  int* idx(size_t i, int64_t count) const { return (int*)ptr(i, count); }
  // optional tensor: handle < 0 means absent
  void* opt(size_t i, int64_t count) const { return num(i) < 0 ? nullptr : ptr(i, count); }
};

template <int N>
Strides<N> strides(const Args& a, size_t shape_arg, const std::vector<size_t>& stride_args, int64_t* n,
                   int64_t* reach) {
  Strides<N> s;
  std::memset(&s, 0, sizeof(s));
  const std::vector<int64_t> shape = a.vec(shape_arg);
  if (shape.size() > APT_MAX_DIMS)
    throw std::runtime_error(std::string("cuda.") + a.op + ": more than 8 axes after coalescing");
  s.ndim = (int)shape.size();
  int64_t total = 1;
  for (size_t d = 0; d < shape.size(); ++d) { s.shape[d] = shape[d]; total *= shape[d]; }
  for (int k = 0; k < N; ++k) {
    const std::vector<int64_t> st = a.vec(stride_args[k]);
    if (st.size() != shape.size())
      throw std::runtime_error(std::string("cuda.") + a.op + ": strides and shape lengths differ");
    int64_t r = 1;
    for (size_t d = 0; d < st.size(); ++d) {
      if (st[d] < 0) throw std::runtime_error(std::string("cuda.") + a.op + ": negative stride");
      s.st[k][d] = st[d];
      r += (shape[d] - 1) * st[d];
    }
    reach[k] = total == 0 ? 0 : r;  // elements spanned by operand k
  }
  *n = total;
  return s;
}

using Fn = void (*)(const Args&);

template <Fn F>
Napi::Value entry(const Napi::CallbackInfo& info, const char* name, size_t argc) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() != argc)  // argc: the entry's argument list in engine/op-contract.ts (native/entries.h)
      throw std::runtime_error(std::string("cuda.") + name + ": " + std::to_string(info.Length()) +
                               " arguments given, the op contract (engine/op-contract.ts) declares " +
                               std::to_string(argc));
    apt::require_device();
    Args a(info, name);
    F(a);
    apt::check_launch(name);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return env.Undefined();
}

// ---- elementwise ----
template <int OP>
void binary_fn(const Args& a) {
  // (dtype, out h, off, a h, off, b h, off, shape, aStrides, bStrides)
  int64_t n, reach[2];
  Strides<2> s = strides<2>(a, 7, {8, 9}, &n, reach);
  launch_binary(apt::stream(), OP, (int)a.i64(0), a.ptr(1, n), a.ptr(3, reach[0]), a.ptr(5, reach[1]), s, n);
}
void where_fn(const Args& a) {
  // (dtype, condDtype, out, cond, a, b, shape, sc, sa, sb)
  int64_t n, reach[3];
  Strides<3> s = strides<3>(a, 10, {11, 12, 13}, &n, reach);
  launch_where(apt::stream(), (int)a.i64(0), (int)a.i64(1), a.ptr(2, n), a.ptr(4, reach[0]), a.ptr(6, reach[1]),
               a.ptr(8, reach[2]), s, n);
}
template <int OP>
void unary_fn(const Args& a) {
  // (dtype, out, x, n)
  const int64_t n = a.i64(5);
  launch_unary(apt::stream(), OP, (int)a.i64(0), a.ptr(1, n), a.ptr(3, n), n);
}
// one NAME_fn per op of the binary and unary families (X-macro lists generated from engine/op-contract.ts)
#define APT_BINARY_DEF(OP) void OP##_fn(const Args& a) { binary_fn<APT_##OP>(a); }
APT_BINARY_OPS(APT_BINARY_DEF)
#undef APT_BINARY_DEF
#define APT_UNARY_DEF(OP) void OP##_fn(const Args& a) { unary_fn<APT_##OP>(a); }
APT_UNARY_OPS(APT_UNARY_DEF)
#undef APT_UNARY_DEF
void gelu_backward_fn(const Args& a) {
  const int64_t n = a.i64(6);
  launch_gelu_backward(apt::stream(), a.f(0, n), a.f(2, n), a.f(4, n), n);
}
void quick_gelu_backward_fn(const Args& a) {
  const int64_t n = a.i64(6);
  launch_quick_gelu_backward(apt::stream(), a.f(0, n), a.f(2, n), a.f(4, n), n);
}
void affine_fn(const Args& a) {
  // (dtype, out, x, n, scale, shift)
  const int64_t n = a.i64(5);
  launch_affine(apt::stream(), (int)a.i64(0), a.ptr(1, n), a.ptr(3, n), a.num(6), a.num(7), n);
}
void pow_scalar_fn(const Args& a) {
  const int64_t n = a.i64(4);
  launch_pow_scalar(apt::stream(), a.f(0, n), a.f(2, n), a.num(5), n);
}
void bce_with_logits_fn(const Args& a) {
  const int64_t n = a.i64(6);
  launch_bce_with_logits(apt::stream(), a.f(0, n), a.f(2, n), a.f(4, n), n);
}
void bce_with_logits_backward_fn(const Args& a) {
  const int64_t n = a.i64(8);
  launch_bce_with_logits_backward(apt::stream(), a.f(0, n), a.f(2, n), a.f(4, n), a.f(6, n), n);
}
void fill_fn(const Args& a) {
  // (dtype, out, n, value)
  const int64_t n = a.i64(3);
  launch_fill(apt::stream(), (int)a.i64(0), a.ptr(1, n), a.num(4), n);
}
void cast_fn(const Args& a) {
  // (from, to, out, x, n)
  const int64_t n = a.i64(6);
  launch_cast(apt::stream(), (int)a.i64(0), (int)a.i64(1), a.ptr(2, n), a.ptr(4, n), n);
}

// ---- reductions ----
void sum_fn(const Args& a) {
  // (dtype, out, x, outerShape, outerStrides, innerShape, innerStrides)
  int64_t O, R, ro, ri;
  Strides<1> outer = strides<1>(a, 5, {6}, &O, &ro);
  Strides<1> inner = strides<1>(a, 7, {8}, &R, &ri);
  const int64_t reach = (O == 0 || R == 0) ? 0 : ro + ri - 1;
  launch_sum(apt::stream(), (int)a.i64(0), a.ptr(1, O), a.ptr(3, reach), outer, inner, O, R);
}
void max_fn(const Args& a) {
  // (dtype, values (h < 0: none), indices, x, outerShape, outerStrides, axisSize, axisStride)
  int64_t O, ro;
  Strides<1> outer = strides<1>(a, 7, {8}, &O, &ro);
  const int64_t A = a.i64(9), S = a.i64(10);
  const int64_t reach = (O == 0 || A == 0) ? 0 : ro + (A - 1) * S;
  launch_max(apt::stream(), (int)a.i64(0), a.opt(1, O), a.idx(3, O), a.ptr(5, reach), outer, A, S, O);
}

// ---- matmul ----
void matmul_fn(const Args& a) {
  // (out, a, b, M, N, K, transA, transB, aOffsets[], bOffsets[], batch, strideA, strideB)
  // For each outer l: C[l*batch*M*N ..] = op(A[aOffsets[l] + j*strideA]) op(B[bOffsets[l] + j*strideB]), j < batch.
  const int64_t M = a.i64(6), N = a.i64(7), K = a.i64(8);
  const bool tA = a.flag(9), tB = a.flag(10);
  const std::vector<int64_t> ao = a.vec(11), bo = a.vec(12);
  const int64_t batch = a.i64(13), sA = a.i64(14), sB = a.i64(15);
  if (ao.size() != bo.size()) throw std::runtime_error("cuda.matmul: offset lists differ in length");
  const int64_t L = (int64_t)ao.size();
  float* C = a.f(0, L * batch * M * N);
  const double ha = a.num(2), hb = a.num(4);
  const int64_t oa = a.i64(3), ob = a.i64(5);
  for (int64_t l = 0; l < L; ++l) {
    const int64_t spanA = (batch - 1) * sA + M * K, spanB = (batch - 1) * sB + K * N;
    const float* A = (const float*)handle_ptr(ha, oa + ao[l], spanA, "matmul");
    const float* B = (const float*)handle_ptr(hb, ob + bo[l], spanB, "matmul");
    apt::gemm(tA, tB, M, N, K, A, sA, B, sB, C + l * batch * M * N, batch);
  }
}

// ---- softmax family ----
template <bool LOG>
void softmax_impl(const Args& a) {
  // (out, x, rows, D, mask h (< 0: none), mask off, maskRowShape, maskRowStrides, maskCol, scale)
  const int64_t rows = a.i64(4), D = a.i64(5);
  int64_t nr, reach;
  Strides<1> mrow = strides<1>(a, 8, {9}, &nr, &reach);
  const int64_t mcol = a.i64(10);
  const float* mask = nullptr;
  if (a.num(6) >= 0) {
    if (nr != rows) throw std::runtime_error("cuda.softmax: mask row plan does not match the rows");
    mask = (const float*)a.ptr(6, rows * D == 0 ? 0 : reach + (D - 1) * mcol);
  }
  launch_softmax(apt::stream(), LOG, a.f(0, rows * D), a.f(2, rows * D), mask, mrow, mcol, rows, D, (float)a.num(11));
}
template <bool LOG>
void softmax_backward_impl(const Args& a) {
  // (out, y, g, rows, D, scale)
  const int64_t rows = a.i64(6), D = a.i64(7), n = rows * D;
  launch_softmax_backward(apt::stream(), LOG, a.f(0, n), a.f(2, n), a.f(4, n), rows, D, (float)a.num(8));
}
void softmax_fn(const Args& a) { softmax_impl<false>(a); }
void log_softmax_fn(const Args& a) { softmax_impl<true>(a); }
void softmax_backward_fn(const Args& a) { softmax_backward_impl<false>(a); }
void log_softmax_backward_fn(const Args& a) { softmax_backward_impl<true>(a); }
void cross_entropy_fn(const Args& a) {
  // (loss, logits, labels, B, C, ignore)
  const int64_t B = a.i64(6), C = a.i64(7);
  launch_cross_entropy(apt::stream(), a.f(0, B), a.f(2, B * C), a.idx(4, B), B, C, (int)a.i64(8));
}
void cross_entropy_backward_fn(const Args& a) {
  // (dlogits, logits, labels, g, B, C, ignore)
  const int64_t B = a.i64(8), C = a.i64(9);
  launch_cross_entropy_backward(apt::stream(), a.f(0, B * C), a.f(2, B * C), a.idx(4, B), a.f(6, B), B, C,
                                (int)a.i64(10));
}

// ---- layer norm ----
void layer_norm_fn(const Args& a) {
  // (y, mean, rstd, x, w, b, R, D, eps)
  const int64_t R = a.i64(12), D = a.i64(13);
  launch_layer_norm(apt::stream(), a.f(0, R * D), a.f(2, R), a.f(4, R), a.f(6, R * D), a.f(8, D), a.f(10, D), R, D,
                    (float)a.num(14));
}
void layer_norm_backward_fn(const Args& a) {
  // (dx, dw, db, g, x, w, mean, rstd, R, D)
  const int64_t R = a.i64(16), D = a.i64(17);
  launch_layer_norm_backward(apt::stream(), a.f(0, R * D), a.f(2, D), a.f(4, D), a.f(6, R * D), a.f(8, R * D),
                             a.f(10, D), a.f(12, R), a.f(14, R), R, D);
}

// ---- bias + GELU ----
void bias_gelu_fn(const Args& a) {
  // (out, x, bias, R, D)
  const int64_t R = a.i64(6), D = a.i64(7);
  launch_bias_gelu(apt::stream(), a.f(0, R * D), a.f(2, R * D), a.f(4, D), R, D);
}
void bias_gelu_backward_fn(const Args& a) {
  // (out, x, bias, g, R, D)
  const int64_t R = a.i64(8), D = a.i64(9);
  launch_bias_gelu_backward(apt::stream(), a.f(0, R * D), a.f(2, R * D), a.f(4, D), a.f(6, R * D), R, D);
}

// ---- random ----
uint64_t u64(const Args& a, size_t i) {
  const double v = a.num(i);
  if (!(v >= 0) || v > 9007199254740991.0 || v != (double)(uint64_t)v) a.fail(i, "an integer in [0, 2^53)");
  return (uint64_t)v;
}
void dropout_fn(const Args& a) {
  // (y, mask, x, n, p, seed, offset)
  const int64_t n = a.i64(6);
  launch_dropout(apt::stream(), a.f(0, n), a.f(2, n), a.f(4, n), a.num(7), u64(a, 8), u64(a, 9), n);
}
void random_uniform_fn(const Args& a) {
  // (dtype, out, n, seed, offset, low, high)
  const int64_t n = a.i64(3);
  launch_random_uniform(apt::stream(), (int)a.i64(0), a.ptr(1, n), u64(a, 4), u64(a, 5), a.num(6), a.num(7), n);
}
void random_normal_fn(const Args& a) {
  const int64_t n = a.i64(3);
  launch_random_normal(apt::stream(), (int)a.i64(0), a.ptr(1, n), u64(a, 4), u64(a, 5), a.num(6), a.num(7), n);
}

// ---- gathers ----
void index_select_fn(const Args& a) {
  // (dtype, out, x, idx, O, A, I, K)
  const int64_t O = a.i64(7), A = a.i64(8), I = a.i64(9), K = a.i64(10);
  launch_index_select(apt::stream(), (int)a.i64(0), a.ptr(1, O * K * I), a.ptr(3, O * A * I), a.idx(5, K), O, A, I, K);
}
void index_add_fn(const Args& a) {
  // (dtype, out, g, idx, O, size, I, K)
  const int64_t O = a.i64(7), S = a.i64(8), I = a.i64(9), K = a.i64(10);
  launch_index_add(apt::stream(), (int)a.i64(0), a.ptr(1, O * S * I), a.ptr(3, O * K * I), a.idx(5, K), O, S, I, K);
}
void gather_fn(const Args& a) {
  // (dtype, out, x, idx, idxShape, xStrides (axis 0), axisStride, axisSize, xNumel)
  int64_t n, reach;
  Strides<1> s = strides<1>(a, 7, {8}, &n, &reach);
  launch_gather(apt::stream(), (int)a.i64(0), a.ptr(1, n), a.ptr(3, a.i64(11)), a.idx(5, n), s, a.i64(9),
                a.i64(10), n);
}
void scatter_add_fn(const Args& a) {
  // (dtype, out, g, idx, idxShape, outStrides (axis 0), axisStride, axisSize, outNumel)
  int64_t n, reach;
  Strides<1> s = strides<1>(a, 7, {8}, &n, &reach);
  const int64_t on = a.i64(11);
  launch_scatter_add(apt::stream(), (int)a.i64(0), a.ptr(1, on), on, a.ptr(3, n), a.idx(5, n), s, a.i64(9),
                     a.i64(10), n);
}

// ---- movement ----
void copy_strided_fn(const Args& a) {
  // (out, x, shape, outStrides, xStrides): permute, slice, expand, concat and contiguous copies
  int64_t n, reach[2];
  Strides<2> s = strides<2>(a, 4, {5, 6}, &n, reach);
  launch_copy_strided(apt::stream(), (uint32_t*)a.ptr(0, reach[0]), (const uint32_t*)a.ptr(2, reach[1]), s, n);
}
void pad_fn(const Args& a) {
  // (out, x, outShape, inShape, before, valueBits)
  const std::vector<int64_t> os = a.vec(4), is = a.vec(5), bf = a.vec(6);
  if (os.size() != is.size() || os.size() != bf.size() || os.size() > APT_MAX_DIMS)
    throw std::runtime_error("cuda.pad: shape lists differ in length or exceed 8 axes");
  int64_t n = 1, m = 1;
  for (size_t d = 0; d < os.size(); ++d) { n *= os[d]; m *= is[d]; }
  launch_pad(apt::stream(), (uint32_t*)a.ptr(0, n), (const uint32_t*)a.ptr(2, m), (int)os.size(), os.data(),
             is.data(), bf.data(), (uint32_t)a.i64(7), n);
}

// ---- resize ----
void resize_bilinear_fn(const Args& a) {
  // (out, x, P, H, W, OH, OW, alignCorners)
  const int64_t P = a.i64(4), H = a.i64(5), W = a.i64(6), OH = a.i64(7), OW = a.i64(8);
  launch_resize_bilinear(apt::stream(), a.f(0, P * OH * OW), a.f(2, P * H * W), P, H, W, OH, OW, a.flag(9));
}
void resize_bilinear_backward_fn(const Args& a) {
  // (gx, g, P, H, W, OH, OW, alignCorners)
  const int64_t P = a.i64(4), H = a.i64(5), W = a.i64(6), OH = a.i64(7), OW = a.i64(8);
  launch_resize_bilinear_backward(apt::stream(), a.f(0, P * H * W), a.f(2, P * OH * OW), P, H, W, OH, OW, a.flag(9));
}

// ---- optimisers ----
void adamw_step_fn(const Args& a) {
  // (p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, stepSize)
  const int64_t n = a.i64(8);
  launch_adamw_step(apt::stream(), a.f(0, n), a.f(2, n), a.f(4, n), a.f(6, n), a.num(9), a.num(10), a.num(11),
                    a.num(12), a.num(13), a.num(14), n);
}
void sgd_step_fn(const Args& a) {
  // (p, g, buf (h < 0: none), n, lr, momentum, weightDecay)
  const int64_t n = a.i64(6);
  launch_sgd_step(apt::stream(), a.f(0, n), a.f(2, n), (float*)a.opt(4, n), a.num(7), a.num(8), a.num(9), n);
}

// ---- memory and device ----
Napi::Value Probe(const Napi::CallbackInfo& info) {
  const apt::Probe& p = apt::probe();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("available", p.available);
  o.Set("reason", p.reason);
  o.Set("device", p.device);
  o.Set("computeCapability", p.compute_capability);
  o.Set("totalMemory", p.total_memory);
  o.Set("driverVersion", p.driver_version);
  o.Set("runtimeVersion", p.runtime_version);
  o.Set("cublas", p.cublas);
  return o;
}

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args a(info, "alloc");
    const int64_t bytes = a.i64(0);
    if (bytes < 0) a.fail(0, "a non-negative byte count");
    return Napi::Number::New(info.Env(), apt::alloc_handle((size_t)bytes));
  });
}
Napi::Value Free(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    apt::free_handle(Args(info, "free").num(0));
    return info.Env().Undefined();
  });
}
// upload(h, elemOffset, typedArray): host -> device (4-byte elements).
Napi::Value Upload(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args a(info, "upload");
    apt::require_device();
    if (info.Length() < 3 || !info[2].IsTypedArray()) a.fail(2, "a TypedArray");
    Napi::TypedArray t = info[2].As<Napi::TypedArray>();
    const size_t bytes = t.ByteLength();
    if (bytes % 4) a.fail(2, "a TypedArray of 4-byte elements");
    void* dst = a.ptr(0, (int64_t)(bytes / 4));
    const char* src = (const char*)t.ArrayBuffer().Data() + t.ByteOffset();
    if (bytes) apt::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, apt::stream()), "upload");
    return info.Env().Undefined();
  });
}
// download(h, elemOffset, typedArray): device -> host; waits for the stream and reports device-side errors.
Napi::Value Download(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Args a(info, "download");
    apt::require_device();
    if (info.Length() < 3 || !info[2].IsTypedArray()) a.fail(2, "a TypedArray");
    Napi::TypedArray t = info[2].As<Napi::TypedArray>();
    const size_t bytes = t.ByteLength();
    if (bytes % 4) a.fail(2, "a TypedArray of 4-byte elements");
    const void* src = a.ptr(0, (int64_t)(bytes / 4));
    char* dst = (char*)t.ArrayBuffer().Data() + t.ByteOffset();
    if (bytes) apt::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, apt::stream()), "download");
    apt::synchronize();
    return info.Env().Undefined();
  });
}
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    apt::synchronize();
    return info.Env().Undefined();
  });
}
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  const apt::MemStats s = apt::mem_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("allocated", s.allocated);
  o.Set("reserved", s.reserved);
  o.Set("peakAllocated", s.peak_allocated);
  o.Set("peakReserved", s.peak_reserved);
  o.Set("handles", s.handles);
  return o;
}
Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  apt::reset_peak();
  return info.Env().Undefined();
}
Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  apt::empty_cache();
  return info.Env().Undefined();
}
Napi::Value SetGemmMode(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    apt::set_gemm_mode((int)Args(info, "setGemmMode").i64(0));
    return info.Env().Undefined();
  });
}
Napi::Value GemmMode(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), apt::gemm_mode()); }

#define APT_ENTRY(NAME, FN, ARGC)                                                                      \
  exports.Set(NAME, Napi::Function::New(                                                                \
                        env, [](const Napi::CallbackInfo& i) { return entry<FN>(i, NAME, ARGC); }, NAME))

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("alloc", Napi::Function::New(env, Alloc, "alloc"));
  exports.Set("free", Napi::Function::New(env, Free, "free"));
  exports.Set("upload", Napi::Function::New(env, Upload, "upload"));
  exports.Set("download", Napi::Function::New(env, Download, "download"));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize, "synchronize"));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats, "memoryStats"));
  exports.Set("resetPeak", Napi::Function::New(env, ResetPeak, "resetPeak"));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache, "emptyCache"));
  exports.Set("setGemmMode", Napi::Function::New(env, SetGemmMode, "setGemmMode"));
  exports.Set("gemmMode", Napi::Function::New(env, GemmMode, "gemmMode"));
  // every kernel entry of the op contract, as NAME_fn with its argument count (native/entries.h, generated)
#define APT_REGISTER(NAME, ARGC) APT_ENTRY(#NAME, NAME##_fn, ARGC);
  APT_KERNEL_ENTRIES(APT_REGISTER)
#undef APT_REGISTER
  return exports;
}

}  // namespace

NODE_API_MODULE(aptune_cuda, Init)
