// Native CPU bias + GELU of the aptune CPU addon: out = gelu(x + bias) (g null) or out = g * gelu'(x + bias), x
// [rows, D], bias [D], on the wasm heap in place: engine/assembly's bias_gelu_f32 (the same erf: Cephes' polynomial
// below |u| = 1, Abramowitz-Stegun 7.1.26 with Cephes' exp above; gelu' shares that exponential) on 16 (AVX-512) or 8
// (AVX2+FMA) lanes, where the profile of the ViLT-B step put it after GEMM and dropout.
// Invariants: a row's result depends only on that row, so any thread split gives the same bits; agrees with the
// WebAssembly kernel to float rounding (FMA contraction may differ), not bit for bit. Does not: check addresses (the
// addon entry does) or allocate.
#include <algorithm>
#include <cstring>

#include "gemm.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // the vector helpers are always inlined into the target() callers

namespace apt_cpu {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
#define APT_INLINE __attribute__((always_inline)) inline  // compiled inside the target("avx...") callers below
template <int W> struct V;
template <> struct V<16> { typedef float F __attribute__((vector_size(64))); typedef int I __attribute__((vector_size(64))); };
template <> struct V<8> { typedef float F __attribute__((vector_size(32))); typedef int I __attribute__((vector_size(32))); };

template <class F> APT_INLINE F splat(float v) { return F{} + v; }

/** Cephes' expf for x0 <= 0 (what gelu needs): 0 below -87.34, as the WebAssembly vexp. */
template <int W> APT_INLINE typename V<W>::F vexp_neg(typename V<W>::F x0) {
  typedef typename V<W>::F F; typedef typename V<W>::I I;
  const F x = x0 < splat<F>(-87.33654f) ? splat<F>(-87.33654f) : x0;
  const F t = x * splat<F>(1.44269504088896341f) + splat<F>(0.5f);
  F fx = __builtin_convertvector(__builtin_convertvector(t, I), F);
  fx = fx > t ? fx - splat<F>(1.f) : fx;  // floor
  F r = fx * splat<F>(-0.693359375f) + x;
  r = fx * splat<F>(2.12194440e-4f) + r;
  const F z = r * r;
  F y = splat<F>(1.9875691500e-4f);
  y = y * r + splat<F>(1.3981999507e-3f);
  y = y * r + splat<F>(8.3334519073e-3f);
  y = y * r + splat<F>(4.1665795894e-2f);
  y = y * r + splat<F>(1.6666665459e-1f);
  y = y * r + splat<F>(5.0000001201e-1f);
  y = (y * z + r) + splat<F>(1.f);
  const I n = __builtin_convertvector(fx, I), h = n >> 1;
  y = y * (F)((h + 127) << 23) * (F)((n - h + 127) << 23);  // (F) of an int vector: its bits
  return x0 < splat<F>(-87.33654f) ? splat<F>(0.f) : y;
}

/** erf(u) given z = u^2 and e = exp(-min(z, 100)) (vmath.ts's verfWithExp) */
template <int W> APT_INLINE typename V<W>::F verf(typename V<W>::F u, typename V<W>::F z, typename V<W>::F e) {
  typedef typename V<W>::F F;
  F p = splat<F>(7.853861353153693e-5f);
  p = p * z + splat<F>(-8.010193625184903e-4f);
  p = p * z + splat<F>(5.188327685732524e-3f);
  p = p * z + splat<F>(-2.685381193529856e-2f);
  p = p * z + splat<F>(1.128358514861418e-1f);
  p = p * z + splat<F>(-3.761262582423300e-1f);
  p = p * z + splat<F>(1.128379165726710f);
  const F au = u < splat<F>(0.f) ? -u : u;
  const F t = splat<F>(1.f) / (au * splat<F>(0.3275911f) + splat<F>(1.f));
  F q = splat<F>(1.061405429f);
  q = q * t + splat<F>(-1.453152027f);
  q = q * t + splat<F>(1.421413741f);
  q = q * t + splat<F>(-0.284496736f);
  q = q * t + splat<F>(0.254829592f);
  const F big = splat<F>(1.f) - q * t * e;
  return au < splat<F>(1.f) ? u * p : (u < splat<F>(0.f) ? -big : big);
}

/** n <= W elements of one row: gelu(x + b), or g * gelu'(x + b) when g */
template <int W> APT_INLINE void gelu_vec(const float* x, const float* b, const float* g, float* out, int n) {
  typedef typename V<W>::F F;
  F xv = {}, bv = {}, gv = {};
  std::memcpy(&xv, x, n * 4);
  std::memcpy(&bv, b, n * 4);
  if (g) std::memcpy(&gv, g, n * 4);
  const F h = xv + bv, u = h * splat<F>(0.7071067811865476f), z = u * u;
  const F e = vexp_neg<W>(-(z < splat<F>(100.f) ? z : splat<F>(100.f)));
  const F cdf = splat<F>(0.5f) * (splat<F>(1.f) + verf<W>(u, z, e));
  const F o = g ? gv * (h * (e * splat<F>(0.3989422804014327f)) + cdf) : h * cdf;
  std::memcpy(out, &o, n * 4);
}

template <int W> APT_INLINE void gelu_rows(const float* x, const float* b, const float* g, float* out, long r0, long r1, long D) {
  for (long r = r0; r < r1; ++r) {
    const long o = r * D;
    long j = 0;
    for (; j + W <= D; j += W) gelu_vec<W>(x + o + j, b + j, g ? g + o + j : nullptr, out + o + j, W);  // constant size: plain loads
    if (j < D) gelu_vec<W>(x + o + j, b + j, g ? g + o + j : nullptr, out + o + j, (int)(D - j));
  }
}
__attribute__((target("avx512f"))) void rows_avx512(const float* x, const float* b, const float* g, float* out, long r0, long r1, long D) { gelu_rows<16>(x, b, g, out, r0, r1, D); }
__attribute__((target("avx2,fma"))) void rows_avx2(const float* x, const float* b, const float* g, float* out, long r0, long r1, long D) { gelu_rows<8>(x, b, g, out, r0, r1, D); }
#endif

}  // namespace

bool bias_gelu_f32(const float* x, const float* b, const float* g, float* out, long rows, long D, int threads) {
#if defined(__x86_64__) || defined(_M_X64)
  const int lanes = vector_lanes();
  if (lanes == 0) return false;
  const int T = (int)std::max<long>(1, std::min<long>(std::min(threads, 64), rows * D / 65536));
  run_parallel(T, [&](int t) {
    const long r0 = rows * t / T, r1 = rows * (t + 1) / T;
    if (lanes == 16) rows_avx512(x, b, g, out, r0, r1, D); else rows_avx2(x, b, g, out, r0, r1, D);
  });
  return true;
#else
  return false;
#endif
}

}  // namespace apt_cpu
