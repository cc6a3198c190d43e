// Gather / scatter-add kernels (see gather.cuh). Scatters use atomicAdd, so summation order (and the last bits
// of float results) may differ from the reference backend.
#include "gather.cuh"
#include "device_error.cuh"
#include <math.h>

namespace {
template <typename T> __device__ __forceinline__ T bad_value();
template <> __device__ __forceinline__ float bad_value<float>() { return NAN; }
template <> __device__ __forceinline__ int bad_value<int>() { return 0; }

template <typename T>
__global__ void index_select_kernel(T* __restrict__ out, const T* __restrict__ x, const int* __restrict__ idx,
                                    int64_t A, int64_t I, int64_t K, int64_t n, unsigned int* flag) {
  APT_GRID_LOOP(i, n, int64_t) {
    const int64_t in = i % I, t = i / I, k = t % K, o = t / K;
    const int j = idx[k];
    if (j < 0 || j >= A) { out[i] = bad_value<T>(); apt_raise(flag, APT_ERR_INDEX); }
    else out[i] = x[(o * A + j) * I + in];
  }
}
template <typename T>
__global__ void index_add_kernel(T* __restrict__ out, const T* __restrict__ g, const int* __restrict__ idx,
                                 int64_t size, int64_t I, int64_t K, int64_t n, unsigned int* flag) {
  APT_GRID_LOOP(i, n, int64_t) {
    const int64_t in = i % I, t = i / I, k = t % K, o = t / K;
    const int j = idx[k];
    if (j < 0 || j >= size) apt_raise(flag, APT_ERR_INDEX);
    else atomicAdd(out + (o * size + j) * I + in, g[i]);
  }
}
template <typename T>
__global__ void gather_kernel(T* __restrict__ out, const T* __restrict__ x, const int* __restrict__ idx,
                              Strides<1> s, int64_t as, int64_t A, int64_t n, unsigned int* flag) {
  APT_GRID_LOOP(i, n, int64_t) {
    int64_t off;
    strided_offsets<1, int64_t>(s, i, &off);
    const int j = idx[i];
    if (j < 0 || j >= A) { out[i] = bad_value<T>(); apt_raise(flag, APT_ERR_INDEX); }
    else out[i] = x[off + j * as];
  }
}
template <typename T>
__global__ void scatter_add_kernel(T* __restrict__ out, const T* __restrict__ g, const int* __restrict__ idx,
                                   Strides<1> s, int64_t as, int64_t A, int64_t n, unsigned int* flag) {
  APT_GRID_LOOP(i, n, int64_t) {
    int64_t off;
    strided_offsets<1, int64_t>(s, i, &off);
    const int j = idx[i];
    if (j < 0 || j >= A) apt_raise(flag, APT_ERR_INDEX);
    else atomicAdd(out + off + j * as, g[i]);
  }
}
constexpr int T256 = 256;
}  // namespace

void launch_index_select(cudaStream_t st, int dtype, void* out, const void* x, const int* idx, int64_t O, int64_t A,
                         int64_t I, int64_t K) {
  const int64_t n = O * K * I;
  if (n <= 0) return;
  unsigned int* f = apt_device_error_ptr();
  if (dtype == 0) index_select_kernel<float><<<apt_blocks(n, T256), T256, 0, st>>>((float*)out, (const float*)x, idx, A, I, K, n, f);
  else index_select_kernel<int><<<apt_blocks(n, T256), T256, 0, st>>>((int*)out, (const int*)x, idx, A, I, K, n, f);
}
void launch_index_add(cudaStream_t st, int dtype, void* out, const void* g, const int* idx, int64_t O, int64_t size,
                      int64_t I, int64_t K) {
  const int64_t on = O * size * I, n = O * K * I;
  if (on > 0) cudaMemsetAsync(out, 0, on * 4, st);
  if (n <= 0) return;
  unsigned int* f = apt_device_error_ptr();
  if (dtype == 0) index_add_kernel<float><<<apt_blocks(n, T256), T256, 0, st>>>((float*)out, (const float*)g, idx, size, I, K, n, f);
  else index_add_kernel<int><<<apt_blocks(n, T256), T256, 0, st>>>((int*)out, (const int*)g, idx, size, I, K, n, f);
}
void launch_gather(cudaStream_t st, int dtype, void* out, const void* x, const int* idx, const Strides<1>& s,
                   int64_t axis_stride, int64_t axis_size, int64_t n) {
  if (n <= 0) return;
  unsigned int* f = apt_device_error_ptr();
  if (dtype == 0) gather_kernel<float><<<apt_blocks(n, T256), T256, 0, st>>>((float*)out, (const float*)x, idx, s, axis_stride, axis_size, n, f);
  else gather_kernel<int><<<apt_blocks(n, T256), T256, 0, st>>>((int*)out, (const int*)x, idx, s, axis_stride, axis_size, n, f);
}
void launch_scatter_add(cudaStream_t st, int dtype, void* out, int64_t out_numel, const void* g, const int* idx,
                        const Strides<1>& s, int64_t axis_stride, int64_t axis_size, int64_t n) {
  if (out_numel > 0) cudaMemsetAsync(out, 0, out_numel * 4, st);
  if (n <= 0) return;
  unsigned int* f = apt_device_error_ptr();
  if (dtype == 0) scatter_add_kernel<float><<<apt_blocks(n, T256), T256, 0, st>>>((float*)out, (const float*)g, idx, s, axis_stride, axis_size, n, f);
  else scatter_add_kernel<int><<<apt_blocks(n, T256), T256, 0, st>>>((int*)out, (const int*)g, idx, s, axis_stride, axis_size, n, f);
}
