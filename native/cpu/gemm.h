// Native CPU GEMM of the aptune CPU addon (native/cpu/gemm.cc): the one declaration its Node-API entry calls.
// Invariants: pointers are float32 matrices inside one memory (the wasm heap); offs holds one (a, b, c) triple of
// element offsets per batch; C [M, N] row-major = op(A) op(B) with A [M, K] ([K, M] if ta), B [K, N] ([N, K] if tb).
#pragma once
#include <cstdint>

namespace apt_cpu {
void gemm_f32(const float* a, const float* b, float* c, const int32_t* offs, long batch, long M, long N, long K,
              bool ta, bool tb, int threads);
/** the micro-kernel chosen on this CPU: "avx512", "avx2" or "generic" */
const char* gemm_isa();
}  // namespace apt_cpu
