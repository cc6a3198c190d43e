// Shared device helpers for the aptune CUDA kernels: strided index decomposition, launch geometry,
// group reductions and the device-side error flag.
// Does not: allocate, synchronise or talk to Node. Every launcher takes the one stream it is given.
// Invariants: shapes have at most APT_MAX_DIMS axes (the host coalesces axes before launching);
// float32 and int32 are both 4 bytes, so movement kernels copy uint32 words for either dtype;
// a kernel that meets a bad index never reads out of bounds: it writes NaN (or 0) and raises
// apt_error_flag, which the host checks after the synchronisation in Backend.read.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#define APT_MAX_DIMS 8

// N strided operands over one logical shape: element i (row-major over `shape`) lives at
// sum_d coord_d * st[k][d] in operand k.
template <int N>
struct Strides {
  int ndim;
  int64_t shape[APT_MAX_DIMS];
  int64_t st[N][APT_MAX_DIMS];
};

#ifdef __CUDACC__
template <int N, typename I>
__device__ __forceinline__ void strided_offsets(const Strides<N>& s, I i, I* off) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = s.ndim - 1; d >= 0; --d) {
    const I n = (I)s.shape[d];
    const I q = i % n;
    i /= n;
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += q * (I)s.st[k][d];
  }
}

#endif  // __CUDACC__

// Error codes raised from device code (bit flags, or'ed together).
enum AptDeviceError : unsigned int { APT_ERR_INDEX = 1u, APT_ERR_LABEL = 2u, APT_ERR_DIVZERO = 4u };
// Defined in cuda/device_error.cu; read and cleared by apt_device_error_take().
unsigned int* apt_device_error_ptr();

#ifdef __CUDACC__
__device__ __forceinline__ void apt_raise(unsigned int* flag, unsigned int code) {
  if (flag) atomicOr(flag, code);
}

#endif  // __CUDACC__

// True when n and every operand offset of `s` fit the 32-bit index path (offsets can exceed n: a slice reads a
// window of a larger input, a concat writes a window of a larger output).
template <int N>
inline bool apt_fits_u32(const Strides<N>& s, int64_t n) {
  const int64_t lim = 1LL << 31;
  if (n >= lim) return false;
  for (int k = 0; k < N; ++k) {
    int64_t r = 1;
    for (int d = 0; d < s.ndim; ++d) r += (s.shape[d] - 1) * s.st[k][d];
    if (r >= lim) return false;
  }
  return true;
}

inline unsigned int apt_blocks(int64_t n, int threads, int64_t cap = 65535LL * 32) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return (unsigned int)(b > cap ? cap : b);
}

#ifdef __CUDACC__
// Grid-stride loop over [0, n).
#define APT_GRID_LOOP(i, n, I) \
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < (I)(n); i += (I)blockDim.x * gridDim.x)

// Reductions over the blockDim.x threads that share threadIdx.y (a "group"). blockDim.x is a multiple of 32
// and either <= 32 (several groups per block) or the whole block (blockDim.y == 1).
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// scratch: __shared__ array of >= 32 elements; result is broadcast to every thread of the group.
template <typename T>
__device__ __forceinline__ T group_sum(T v, T* scratch) {
  v = warp_sum(v);
  if (blockDim.x <= 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = (lane < nw) ? scratch[lane] : (T)0;
  v = warp_sum(v);
  return v;
}
__device__ __forceinline__ float group_max(float v, float* scratch) {
  v = warp_max(v);
  if (blockDim.x <= 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = (lane < nw) ? scratch[lane] : -INFINITY;
  v = warp_max(v);
  return v;
}

// Row geometry for row-wise kernels: a warp per row for short rows, a block per row for long ones.
inline void apt_row_geometry(int64_t rows, int64_t cols, dim3& grid, dim3& block) {
  if (cols <= 512) {
    block = dim3(32, 8);
    grid = dim3((unsigned int)((rows + 7) / 8));
  } else {
    block = dim3(cols >= 4096 ? 1024 : 256, 1);
    grid = dim3((unsigned int)rows);
  }
}
#endif  // __CUDACC__
