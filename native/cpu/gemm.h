// Native CPU kernels of the aptune CPU addon: the GEMM and its thread pool (native/cpu/gemm.cc), dropout
// (native/cpu/random.cc) and bias + GELU (native/cpu/gelu.cc), as the Node-API entries (native/cpu/addon.cc) call them.
// Invariants: pointers are float32 matrices inside one memory (the wasm heap); offs holds one (a, b, c) triple of
// element offsets per batch; C [M, N] row-major = op(A) op(B) with A [M, K] ([K, M] if ta), B [K, N] ([N, K] if tb).
#pragma once
#include <cstdint>
#include <functional>

namespace apt_cpu {
void gemm_f32(const float* a, const float* b, float* c, const int32_t* offs, long batch, long M, long N, long K,
              bool ta, bool tb, int threads);
/** the micro-kernel chosen on this CPU: "avx512", "avx2" or "generic" */
const char* gemm_isa();
/** f(0) on the calling thread and f(1..T-1) on the GEMM's pool; returns when all are done */
void run_parallel(int T, const std::function<void(int)>& f);
/** y = x * mask (both written) for the n elements of the Philox draw (seed, offset), on `threads` threads */
void dropout_f32(const float* x, float* y, float* mask, int64_t n, double p, uint64_t seed, uint64_t offset, int threads);
/** float lanes of the element-wise kernels' vector path on this CPU (gemm_isa's: 16 for avx512, 8 for avx2, 0 for
 *  generic, where dropout and bias + GELU are slower than WebAssembly SIMD and the host does not call them) */
int vector_lanes();
/** out = gelu(x + b) (g null) or g * gelu'(x + b), x [rows, D]; false (nothing written) without an AVX-512 or AVX2 path */
bool bias_gelu_f32(const float* x, const float* b, const float* g, float* out, long rows, long D, int threads);
}  // namespace apt_cpu
