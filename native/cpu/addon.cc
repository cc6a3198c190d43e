// The aptune CPU addon (build/Release/aptune_cpu.node; declared for TypeScript in native/cpu/index.d.ts): a native
// float32 GEMM that works in place on the WebAssembly backend's shared linear memory (a Float32Array over the whole
// memory is passed; its backing store is the heap itself, so nothing is copied). Built by CMake with a C++ compiler
// alone (no nvcc, no BLAS).
// Invariants: every matrix and the offsets table are range-checked against the memory's byte length before the
// product runs; an error becomes a JS Error naming the entry; the entry runs synchronously on the calling thread
// (plus the addon's own sleeping worker threads), while the wasm worker pool is idle.
#include <napi.h>

#include <cstdint>
#include <string>

#include "gemm.h"

namespace {

int64_t int_arg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "cpu.gemm: argument " + std::to_string(i) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (v != (double)(int64_t)v || v < 0) throw Napi::TypeError::New(info.Env(), "cpu.gemm: argument " + std::to_string(i) + " must be a non-negative integer");
  return (int64_t)v;
}

// gemm(heap: Float32Array, a, b, c, offs (byte addresses), batch, M, N, K, transA, transB, threads)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 12 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "cpu.gemm: argument 0 must be a Float32Array over the heap");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(env, "cpu.gemm: argument 0 must be a Float32Array");
  Napi::Float32Array heap = info[0].As<Napi::Float32Array>();
  uint8_t* base = reinterpret_cast<uint8_t*>(heap.Data());
  const uint64_t bytes = (uint64_t)heap.ElementLength() * 4;
  const int64_t a = int_arg(info, 1), b = int_arg(info, 2), c = int_arg(info, 3), offs = int_arg(info, 4);
  const int64_t batch = int_arg(info, 5), M = int_arg(info, 6), N = int_arg(info, 7), K = int_arg(info, 8);
  const bool tA = int_arg(info, 9) != 0, tB = int_arg(info, 10) != 0;
  const int threads = (int)int_arg(info, 11);
  if ((a | b | c | offs) & 3) throw Napi::RangeError::New(env, "cpu.gemm: addresses must be 4-byte aligned");
  if ((uint64_t)offs + (uint64_t)batch * 12 > bytes) throw Napi::RangeError::New(env, "cpu.gemm: offsets table outside the heap");
  const int32_t* o = reinterpret_cast<const int32_t*>(base + offs);
  for (int64_t t = 0; t < batch; ++t) {
    const uint64_t ea = (uint64_t)a + 4ull * (uint32_t)o[3 * t] + 4ull * (uint64_t)(M * K);
    const uint64_t eb = (uint64_t)b + 4ull * (uint32_t)o[3 * t + 1] + 4ull * (uint64_t)(K * N);
    const uint64_t ec = (uint64_t)c + 4ull * (uint32_t)o[3 * t + 2] + 4ull * (uint64_t)(M * N);
    if (o[3 * t] < 0 || o[3 * t + 1] < 0 || o[3 * t + 2] < 0 || ea > bytes || eb > bytes || ec > bytes)
      throw Napi::RangeError::New(env, "cpu.gemm: batch " + std::to_string(t) + " reaches outside the heap");
  }
  apt_cpu::gemm_f32(reinterpret_cast<const float*>(base + a), reinterpret_cast<const float*>(base + b),
                    reinterpret_cast<float*>(base + c), o, (long)batch, (long)M, (long)N, (long)K, tA, tB, threads);
  return env.Undefined();
}

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), apt_cpu::gemm_isa()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("isa", Napi::Function::New(env, Isa));
  return exports;
}

}  // namespace

NODE_API_MODULE(aptune_cpu, Init)
