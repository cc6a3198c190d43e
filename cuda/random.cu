// Philox4x32-10 random kernels (see random.cuh and engine/random.ts, THE ALGORITHM).
#include "random.cuh"
#include <math.h>

namespace {
struct Words { uint32_t w[4]; };

__device__ __forceinline__ Words philox(uint64_t block, uint64_t seed) {
  uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    if (r > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
    const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  Words o;
  o.w[0] = c0; o.w[1] = c1; o.w[2] = c2; o.w[3] = c3;
  return o;
}

__device__ __forceinline__ double uniform_at(uint64_t seed, uint64_t n) {
  const Words w = philox(n >> 2, seed);
  return (double)(w.w[n & 3] >> 8) * (1.0 / 16777216.0);
}

__device__ __forceinline__ double normal_at(uint64_t seed, uint64_t n) {
  const Words w = philox(n >> 2, seed);
  const int j = (int)(n & 2);
  const double u1 = (double)((w.w[j] >> 8) + 1) * (1.0 / 16777216.0);
  const double u2 = (double)(w.w[j + 1] >> 8) * (1.0 / 16777216.0);
  const double r = sqrt(-2.0 * log(u1));
  const double t = __dmul_rn(2.0 * 3.141592653589793, u2);
  return (n & 1) == 0 ? __dmul_rn(r, cos(t)) : __dmul_rn(r, sin(t));
}

__device__ __forceinline__ int to_int32(double v) {
  return isfinite(v) ? (int)(unsigned int)(long long)trunc(fmod(v, 4294967296.0)) : 0;
}

template <typename T>
__global__ void random_uniform_kernel(T* __restrict__ out, uint64_t seed, uint64_t offset, double low, double high,
                                      int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const double v = __dadd_rn(low, __dmul_rn(high - low, uniform_at(seed, offset + (uint64_t)i)));
    if constexpr (sizeof(T) == 4 && T(0.5) == T(0)) out[i] = to_int32(v);
    else out[i] = (T)v;
  }
}
template <typename T>
__global__ void random_normal_kernel(T* __restrict__ out, uint64_t seed, uint64_t offset, double mean, double sd,
                                     int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const double v = __dadd_rn(mean, __dmul_rn(sd, normal_at(seed, offset + (uint64_t)i)));
    if constexpr (sizeof(T) == 4 && T(0.5) == T(0)) out[i] = to_int32(v);
    else out[i] = (T)v;
  }
}
__global__ void dropout_kernel(float* __restrict__ y, float* __restrict__ mask, const float* __restrict__ x,
                               double p, uint64_t seed, uint64_t offset, int64_t n) {
  const double scale = 1.0 / (1.0 - p);
  APT_GRID_LOOP(i, n, int64_t) {
    const float m = uniform_at(seed, offset + (uint64_t)i) >= p ? (float)scale : 0.f;
    mask[i] = m;
    y[i] = x[i] * m;  // == round((double)x * m): the product of two floats is exact in double
  }
}
constexpr int T256 = 256;
}  // namespace

void launch_random_uniform(cudaStream_t st, int dtype, void* out, uint64_t seed, uint64_t offset, double low,
                           double high, int64_t n) {
  if (n <= 0) return;
  if (dtype == 0) random_uniform_kernel<float><<<apt_blocks(n, T256), T256, 0, st>>>((float*)out, seed, offset, low, high, n);
  else random_uniform_kernel<int><<<apt_blocks(n, T256), T256, 0, st>>>((int*)out, seed, offset, low, high, n);
}
void launch_random_normal(cudaStream_t st, int dtype, void* out, uint64_t seed, uint64_t offset, double mean,
                          double std, int64_t n) {
  if (n <= 0) return;
  if (dtype == 0) random_normal_kernel<float><<<apt_blocks(n, T256), T256, 0, st>>>((float*)out, seed, offset, mean, std, n);
  else random_normal_kernel<int><<<apt_blocks(n, T256), T256, 0, st>>>((int*)out, seed, offset, mean, std, n);
}
void launch_dropout(cudaStream_t st, float* y, float* mask, const float* x, double p, uint64_t seed,
                    uint64_t offset, int64_t n) {
  if (n > 0) dropout_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(y, mask, x, p, seed, offset, n);
}
