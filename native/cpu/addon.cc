// The aptune CPU addon (build/Release/aptune_cpu.node; declared for TypeScript in native/cpu/index.d.ts): a native
// float32 GEMM, dropout and bias + GELU that work in place on the WebAssembly backend's shared linear memory (a Float32Array over
// the whole memory is passed; its backing store is the heap itself, so nothing is copied). Built by CMake with a C++
// compiler alone (no nvcc, no BLAS).
// Invariants: every matrix, vector and the offsets table are range-checked against the memory's byte length before
// the kernel runs; an error becomes a JS Error naming the entry; the entry runs synchronously on the calling thread
// (plus the addon's own sleeping worker threads), while the wasm worker pool is idle.
#include <napi.h>

#include <cstdint>
#include <string>

#include "gemm.h"

namespace {

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* fn = "cpu.gemm") {
  if (i >= info.Length() || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (v != (double)(int64_t)v || v < 0 || v > 9007199254740991.0) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " must be an integer in [0, 2^53)");
  return (int64_t)v;
}

/** argument 0: the Float32Array over the whole heap; its base and byte length */
uint8_t* heap_arg(const Napi::CallbackInfo& info, size_t arity, const char* fn, uint64_t* bytes) {
  if (info.Length() < arity || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument 0 must be a Float32Array over the heap");
  Napi::Float32Array heap = info[0].As<Napi::Float32Array>();
  *bytes = (uint64_t)heap.ElementLength() * 4;
  return reinterpret_cast<uint8_t*>(heap.Data());
}

// gemm(heap: Float32Array, a, b, c, offs (byte addresses), batch, M, N, K, transA, transB, threads)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t bytes = 0;
  uint8_t* base = heap_arg(info, 12, "cpu.gemm", &bytes);
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

// dropout(heap: Float32Array, x, y, mask (byte addresses), n, p, seed, offset, threads)
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t bytes = 0;
  uint8_t* base = heap_arg(info, 9, "cpu.dropout", &bytes);
  const int64_t x = int_arg(info, 1, "cpu.dropout"), y = int_arg(info, 2, "cpu.dropout"), m = int_arg(info, 3, "cpu.dropout");
  const int64_t n = int_arg(info, 4, "cpu.dropout");
  if (!info[5].IsNumber()) throw Napi::TypeError::New(env, "cpu.dropout: argument 5 (p) must be a number");
  const double p = info[5].As<Napi::Number>().DoubleValue();
  if (!(p >= 0 && p < 1)) throw Napi::RangeError::New(env, "cpu.dropout: p must be in [0, 1), got " + std::to_string(p));
  const uint64_t seed = (uint64_t)int_arg(info, 6, "cpu.dropout"), offset = (uint64_t)int_arg(info, 7, "cpu.dropout");
  const int threads = (int)int_arg(info, 8, "cpu.dropout");
  if ((x | y | m) & 3) throw Napi::RangeError::New(env, "cpu.dropout: addresses must be 4-byte aligned");
  for (const int64_t at : {x, y, m})
    if ((uint64_t)at + 4ull * (uint64_t)n > bytes) throw Napi::RangeError::New(env, "cpu.dropout: a vector of " + std::to_string(n) + " elements at " + std::to_string(at) + " reaches outside the heap");
  apt_cpu::dropout_f32(reinterpret_cast<const float*>(base + x), reinterpret_cast<float*>(base + y),
                       reinterpret_cast<float*>(base + m), n, p, seed, offset, threads);
  return env.Undefined();
}

// biasGelu(heap: Float32Array, x, bias, g (0: the forward), out (byte addresses), rows, D, threads) -> false when
// this CPU has no vector path (the caller keeps the WebAssembly kernel)
Napi::Value BiasGelu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t bytes = 0;
  uint8_t* base = heap_arg(info, 8, "cpu.biasGelu", &bytes);
  int64_t v[7];
  for (int i = 0; i < 7; ++i) v[i] = int_arg(info, i + 1, "cpu.biasGelu");
  const int64_t x = v[0], b = v[1], g = v[2], o = v[3], rows = v[4], D = v[5];
  if ((x | b | g | o) & 3) throw Napi::RangeError::New(env, "cpu.biasGelu: addresses must be 4-byte aligned");
  const uint64_t n = (uint64_t)rows * (uint64_t)D;
  const int64_t mats[3] = {x, o, g};
  for (int i = 0; i < (g != 0 ? 3 : 2); ++i)  // g 0: the forward, no gradient to read
    if (const int64_t at = mats[i]; (uint64_t)at + 4 * n > bytes)
      throw Napi::RangeError::New(env, "cpu.biasGelu: a [" + std::to_string(rows) + ", " + std::to_string(D) + "] matrix at " + std::to_string(at) + " reaches outside the heap");
  if ((uint64_t)b + 4 * (uint64_t)D > bytes) throw Napi::RangeError::New(env, "cpu.biasGelu: the bias reaches outside the heap");
  const float* f = reinterpret_cast<const float*>(base);
  return Napi::Boolean::New(env, apt_cpu::bias_gelu_f32(f + x / 4, f + b / 4, g ? f + g / 4 : nullptr, reinterpret_cast<float*>(base + o), rows, D, (int)v[6]));
}

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), apt_cpu::gemm_isa()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("isa", Napi::Function::New(env, Isa));
  exports.Set("dropout", Napi::Function::New(env, Dropout));
  exports.Set("biasGelu", Napi::Function::New(env, BiasGelu));
  return exports;
}

}  // namespace

NODE_API_MODULE(aptune_cpu, Init)
