// Native CPU dropout of the aptune CPU addon: y = x * mask, mask = 1/(1-p) where the Philox4x32-10 uniform of element
// i of the draw (seed, offset) is >= p, else 0, bit for bit the WebAssembly and reference kernels (engine/random.ts's
// specification), on the wasm heap in place. The profile of the ViLT step put dropout's RNG first after GEMM; the
// WebAssembly SIMD kernel runs 4 Philox blocks per step, AVX-512 runs 16 (AVX2 8) at about 5x its speed.
// Invariants: element i depends only on (seed, offset + i) (u >= p decided on the integer: (word >> 8) >= ceil(p 2^24)),
// so every ISA and thread split writes the same bits. Does not: check addresses
// (the addon entry does) or allocate.
#include <algorithm>
#include <cmath>

#include "gemm.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define APT_X86 1
#endif

namespace apt_cpu {
namespace {

constexpr uint32_t W0 = 0x9e3779b9u, W1 = 0xbb67ae85u, M0 = 0xd2511f53u, M1 = 0xcd9e8d57u;

struct Draw {
  const float* x; float* y; float* mask;
  uint32_t thr; float scale; uint64_t seed, off;
};

/** Elements [i0, i1), one Philox block per 4 elements (the specification the vector paths must match). */
void dropout_scalar(const Draw& d, int64_t i0, int64_t i1) {
  uint32_t w[4] = {0, 0, 0, 0};
  uint64_t last = ~0ull;
  for (int64_t i = i0; i < i1; ++i) {
    const uint64_t n = d.off + (uint64_t)i, b = n >> 2;
    if (b != last) {
      uint32_t c0 = (uint32_t)b, c1 = (uint32_t)(b >> 32), c2 = 0, c3 = 0, k0 = (uint32_t)d.seed, k1 = (uint32_t)(d.seed >> 32);
      for (int r = 0; r < 10; ++r) {
        if (r > 0) { k0 += W0; k1 += W1; }
        const uint64_t p0 = (uint64_t)M0 * c0, p1 = (uint64_t)M1 * c2;
        c0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0; c1 = (uint32_t)p1; c2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1; c3 = (uint32_t)p0;
      }
      w[0] = c0; w[1] = c1; w[2] = c2; w[3] = c3;
      last = b;
    }
    const float m = (w[n & 3] >> 8) >= d.thr ? d.scale : 0.f;
    d.mask[i] = m;
    d.y[i] = d.x[i] * m;
  }
}

#ifdef APT_X86
__attribute__((target("avx512f"))) inline __m512i mulhi16(__m512i c, __m512i m) {
  const __m512i pe = _mm512_mul_epu32(c, m), po = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);
  return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
}

/** [i0, i1) with off + i0 a multiple of 4 and i1 - i0 a multiple of 64: lane j runs block b + j (16 blocks). */
__attribute__((target("avx512f"))) void dropout_avx512(const Draw& d, int64_t i0, int64_t i1) {
  const __m512i m0 = _mm512_set1_epi32((int)M0), m1 = _mm512_set1_epi32((int)M1), thr = _mm512_set1_epi32((int)d.thr);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), one = _mm512_set1_epi32(1);
  const __m512 sv = _mm512_set1_ps(d.scale);
  for (int64_t i = i0; i < i1; i += 64) {
    const uint64_t b = (d.off + (uint64_t)i) >> 2;
    const __m512i base = _mm512_set1_epi32((int)(uint32_t)b);
    __m512i c0 = _mm512_add_epi32(base, lane);  // the low counter word; a lane that wrapped carries into the high one
    __m512i c1 = _mm512_mask_add_epi32(_mm512_set1_epi32((int)(uint32_t)(b >> 32)), _mm512_cmplt_epu32_mask(c0, base),
                                       _mm512_set1_epi32((int)(uint32_t)(b >> 32)), one);
    __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
    uint32_t k0 = (uint32_t)d.seed, k1 = (uint32_t)(d.seed >> 32);
    for (int r = 0; r < 10; ++r) {
      if (r > 0) { k0 += W0; k1 += W1; }
      const __m512i hi0 = mulhi16(c0, m0), lo0 = _mm512_mullo_epi32(c0, m0);
      const __m512i hi1 = mulhi16(c2, m1), lo1 = _mm512_mullo_epi32(c2, m1);
      c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
      c1 = lo1;
      c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
      c3 = lo0;
    }
    // lanes are blocks, vectors are words: transpose so that each vector holds 4 consecutive blocks' 4 words
    const __m512i a01l = _mm512_unpacklo_epi32(c0, c1), a01h = _mm512_unpackhi_epi32(c0, c1);
    const __m512i a23l = _mm512_unpacklo_epi32(c2, c3), a23h = _mm512_unpackhi_epi32(c2, c3);
    const __m512i v0 = _mm512_unpacklo_epi64(a01l, a23l), v1 = _mm512_unpackhi_epi64(a01l, a23l);
    const __m512i v2 = _mm512_unpacklo_epi64(a01h, a23h), v3 = _mm512_unpackhi_epi64(a01h, a23h);
    const __m512i A = _mm512_shuffle_i32x4(v0, v1, 0x44), B = _mm512_shuffle_i32x4(v2, v3, 0x44);
    const __m512i C = _mm512_shuffle_i32x4(v0, v1, 0xEE), D = _mm512_shuffle_i32x4(v2, v3, 0xEE);
    const __m512i w[4] = {_mm512_shuffle_i32x4(A, B, 0x88), _mm512_shuffle_i32x4(A, B, 0xDD),
                          _mm512_shuffle_i32x4(C, D, 0x88), _mm512_shuffle_i32x4(C, D, 0xDD)};
    for (int q = 0; q < 4; ++q) {
      const __m512 m = _mm512_maskz_mov_ps(_mm512_cmpge_epu32_mask(_mm512_srli_epi32(w[q], 8), thr), sv);
      const int64_t e = i + 16 * q;
      _mm512_storeu_ps(d.mask + e, m);
      _mm512_storeu_ps(d.y + e, _mm512_mul_ps(_mm512_loadu_ps(d.x + e), m));
    }
  }
}

__attribute__((target("avx2"))) inline __m256i mulhi8(__m256i c, __m256i m) {
  const __m256i pe = _mm256_mul_epu32(c, m), po = _mm256_mul_epu32(_mm256_srli_epi64(c, 32), m);
  return _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

/** As dropout_avx512 with 8 blocks per step: i1 - i0 a multiple of 32. */
__attribute__((target("avx2"))) void dropout_avx2(const Draw& d, int64_t i0, int64_t i1) {
  const __m256i m0 = _mm256_set1_epi32((int)M0), m1 = _mm256_set1_epi32((int)M1);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), sign = _mm256_set1_epi32((int)0x80000000u);
  const __m256i thr1 = _mm256_set1_epi32((int)d.thr - 1);  // word >> 8 and thr are < 2^25: a signed compare is exact
  const __m256 sv = _mm256_set1_ps(d.scale);
  for (int64_t i = i0; i < i1; i += 32) {
    const uint64_t b = (d.off + (uint64_t)i) >> 2;
    const __m256i base = _mm256_set1_epi32((int)(uint32_t)b);
    __m256i c0 = _mm256_add_epi32(base, lane);
    const __m256i wrapped = _mm256_cmpgt_epi32(_mm256_xor_si256(base, sign), _mm256_xor_si256(c0, sign));  // -1 where c0 < base
    __m256i c1 = _mm256_sub_epi32(_mm256_set1_epi32((int)(uint32_t)(b >> 32)), wrapped);
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    uint32_t k0 = (uint32_t)d.seed, k1 = (uint32_t)(d.seed >> 32);
    for (int r = 0; r < 10; ++r) {
      if (r > 0) { k0 += W0; k1 += W1; }
      const __m256i hi0 = mulhi8(c0, m0), lo0 = _mm256_mullo_epi32(c0, m0);
      const __m256i hi1 = mulhi8(c2, m1), lo1 = _mm256_mullo_epi32(c2, m1);
      c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
      c1 = lo1;
      c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
      c3 = lo0;
    }
    const __m256i a01l = _mm256_unpacklo_epi32(c0, c1), a01h = _mm256_unpackhi_epi32(c0, c1);
    const __m256i a23l = _mm256_unpacklo_epi32(c2, c3), a23h = _mm256_unpackhi_epi32(c2, c3);
    const __m256i v0 = _mm256_unpacklo_epi64(a01l, a23l), v1 = _mm256_unpackhi_epi64(a01l, a23l);  // blocks (0, 4), (1, 5)
    const __m256i v2 = _mm256_unpacklo_epi64(a01h, a23h), v3 = _mm256_unpackhi_epi64(a01h, a23h);  // blocks (2, 6), (3, 7)
    const __m256i w[4] = {_mm256_permute2x128_si256(v0, v1, 0x20), _mm256_permute2x128_si256(v2, v3, 0x20),
                          _mm256_permute2x128_si256(v0, v1, 0x31), _mm256_permute2x128_si256(v2, v3, 0x31)};
    for (int q = 0; q < 4; ++q) {
      const __m256i keep = _mm256_cmpgt_epi32(_mm256_srli_epi32(w[q], 8), thr1);
      const __m256 m = _mm256_and_ps(_mm256_castsi256_ps(keep), sv);
      const int64_t e = i + 8 * q;
      _mm256_storeu_ps(d.mask + e, m);
      _mm256_storeu_ps(d.y + e, _mm256_mul_ps(_mm256_loadu_ps(d.x + e), m));
    }
  }
}
#endif

/** Elements [i0, i1) on this ISA: the scalar path up to a block boundary, the vector body, the scalar tail. */
void dropout_range(const Draw& d, int64_t i0, int64_t i1, int vec) {
  int64_t i = std::min<int64_t>(i1, i0 + (int64_t)((4 - ((d.off + (uint64_t)i0) & 3)) & 3));
  dropout_scalar(d, i0, i);
#ifdef APT_X86
  const int64_t step = vec == 16 ? 64 : vec == 8 ? 32 : 0;
  if (step) {
    const int64_t end = i + (i1 - i) / step * step;
    if (end > i) { if (vec == 16) dropout_avx512(d, i, end); else dropout_avx2(d, i, end); }
    i = end;
  }
#endif
  dropout_scalar(d, i, i1);
}

}  // namespace

void dropout_f32(const float* x, float* y, float* mask, int64_t n, double p, uint64_t seed, uint64_t offset, int threads) {
  const Draw d{x, y, mask, (uint32_t)std::ceil(p * 16777216.0), (float)(1.0 / (1.0 - p)), seed, offset};
  const int vec = vector_lanes();  // the GEMM's CPU check and APTUNE_NATIVE_ISA override
  const int T = (int)std::max<int64_t>(1, std::min<int64_t>(std::min(threads, 64), n / 65536));
  if (T == 1) { dropout_range(d, 0, n, vec); return; }
  run_parallel(T, [&](int t) {  // split at multiples of 64 elements; the bits do not depend on the split
    const int64_t a = n * t / T / 64 * 64, b = t + 1 == T ? n : n * (t + 1) / T / 64 * 64;
    dropout_range(d, a, b, vec);
  });
}

}  // namespace apt_cpu
