// Reduction kernels (see reduce.cuh). Two geometries: "rows" when the reduced elements are contiguous
// (a warp or block per output, coalesced along r) and "cols" otherwise (a thread per output, coalesced along o,
// with the r range split over gridDim.y and combined by atomicAdd for sums).
#include "reduce.cuh"

namespace {

template <typename T>
__global__ void sum_rows_kernel(T* __restrict__ out, const T* __restrict__ x, Strides<1> outer, Strides<1> inner,
                                int64_t O, int64_t R) {
  __shared__ T scratch[32];
  const int64_t o = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  T acc = 0;
  if (o < O) {
    int64_t base;
    strided_offsets<1, int64_t>(outer, o, &base);
    if (inner.ndim == 1) {
      const int64_t s = inner.st[0][0];
      for (int64_t r = threadIdx.x; r < R; r += blockDim.x) acc += x[base + r * s];
    } else {
      for (int64_t r = threadIdx.x; r < R; r += blockDim.x) {
        int64_t off;
        strided_offsets<1, int64_t>(inner, r, &off);
        acc += x[base + off];
      }
    }
  }
  acc = group_sum<T>(acc, scratch);
  if (o < O && threadIdx.x == 0) out[o] = acc;
}

template <typename T>
__global__ void sum_cols_kernel(T* __restrict__ out, const T* __restrict__ x, Strides<1> outer, Strides<1> inner,
                                int64_t O, int64_t R, int64_t chunk, bool atomic) {
  const int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= O) return;
  const int64_t r0 = (int64_t)blockIdx.y * chunk;
  const int64_t r1 = r0 + chunk < R ? r0 + chunk : R;
  int64_t base;
  strided_offsets<1, int64_t>(outer, o, &base);
  T acc = 0;
  if (inner.ndim == 1) {
    const int64_t s = inner.st[0][0];
    for (int64_t r = r0; r < r1; ++r) acc += x[base + r * s];
  } else {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t off;
      strided_offsets<1, int64_t>(inner, r, &off);
      acc += x[base + off];
    }
  }
  if (atomic) atomicAdd(out + o, acc);
  else out[o] = acc;
}

// (v, i) replaces (bv, bi) when it is the better candidate: NaN counts as the maximum, then larger values,
// ties (and two NaNs) go to the smaller index; bi < 0 marks an empty candidate. Order-independent.
template <typename T>
__device__ __forceinline__ void max_pick(T& bv, int& bi, T v, int i) {
  if (i < 0) return;
  if (bi < 0) { bv = v; bi = i; return; }
  const bool nb = bv != bv, nv = v != v;
  bool take;
  if (nb || nv) take = (nv && !nb) || (nv && nb && i < bi);
  else take = v > bv || (v == bv && i < bi);
  if (take) { bv = v; bi = i; }
}
template <typename T> __device__ __forceinline__ T lowest();
template <> __device__ __forceinline__ float lowest<float>() { return -INFINITY; }
template <> __device__ __forceinline__ int lowest<int>() { return (int)0x80000000; }

template <typename T>
__global__ void max_rows_kernel(T* __restrict__ values, int* __restrict__ indices, const T* __restrict__ x,
                                Strides<1> outer, int64_t A, int64_t O) {
  __shared__ T sv[32];
  __shared__ int si[32];
  const int64_t o = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  T bv = lowest<T>();
  int bi = -1;
  if (o < O) {
    int64_t base;
    strided_offsets<1, int64_t>(outer, o, &base);
    for (int64_t r = threadIdx.x; r < A; r += blockDim.x) max_pick(bv, bi, x[base + r], (int)r);
  }
#pragma unroll
  for (int s = 16; s > 0; s >>= 1) {
    T v = __shfl_xor_sync(0xffffffffu, bv, s);
    int i = __shfl_xor_sync(0xffffffffu, bi, s);
    max_pick(bv, bi, v, i);
  }
  if (blockDim.x > 32) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
    __syncthreads();
    if (warp == 0) {
      bv = lane < nw ? sv[lane] : lowest<T>();
      bi = lane < nw ? si[lane] : -1;
#pragma unroll
      for (int s = 16; s > 0; s >>= 1) {
        T v = __shfl_xor_sync(0xffffffffu, bv, s);
        int i = __shfl_xor_sync(0xffffffffu, bi, s);
        max_pick(bv, bi, v, i);
      }
    }
  }
  if (o < O && threadIdx.x == 0) {
    if (values) values[o] = bv;
    indices[o] = bi < 0 ? 0 : bi;
  }
}

template <typename T>
__global__ void max_cols_kernel(T* __restrict__ values, int* __restrict__ indices, const T* __restrict__ x,
                                Strides<1> outer, int64_t A, int64_t S, int64_t O) {
  const int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= O) return;
  int64_t base;
  strided_offsets<1, int64_t>(outer, o, &base);
  T bv = lowest<T>();
  int bi = -1;
  for (int64_t r = 0; r < A; ++r) max_pick(bv, bi, x[base + r * S], (int)r);
  if (values) values[o] = bv;
  indices[o] = bi < 0 ? 0 : bi;
}

template <typename T>
void sum_t(cudaStream_t st, T* out, const T* x, const Strides<1>& outer, const Strides<1>& inner, int64_t O,
           int64_t R) {
  const bool rows = inner.ndim >= 1 && inner.st[0][inner.ndim - 1] == 1;
  if (R == 0) { cudaMemsetAsync(out, 0, O * sizeof(T), st); return; }
  if (rows) {
    dim3 grid, block;
    if (R <= 1024 || O >= 4096) { block = dim3(32, 8); grid = dim3((unsigned int)((O + 7) / 8)); }
    else { block = dim3(O < 64 ? 1024 : 256, 1); grid = dim3((unsigned int)O); }
    sum_rows_kernel<T><<<grid, block, 0, st>>>(out, x, outer, inner, O, R);
  } else {
    const int threads = 128;
    const int64_t bx = (O + threads - 1) / threads;
    // enough blocks to fill the GPU (~2k), each thread summing at least 64 elements
    int64_t splits = 2048 / bx;
    if (splits > R / 64) splits = R / 64;
    if (splits < 1) splits = 1;
    if (splits > 65535) splits = 65535;
    const int64_t chunk = (R + splits - 1) / splits;
    splits = (R + chunk - 1) / chunk;
    const bool atomic = splits > 1;
    if (atomic) cudaMemsetAsync(out, 0, O * sizeof(T), st);
    sum_cols_kernel<T><<<dim3((unsigned int)bx, (unsigned int)splits), threads, 0, st>>>(out, x, outer, inner, O, R,
                                                                                          chunk, atomic);
  }
}

template <typename T>
void max_t(cudaStream_t st, T* values, int* indices, const T* x, const Strides<1>& outer, int64_t A, int64_t S,
           int64_t O) {
  if (S == 1) {
    dim3 grid, block;
    if (A <= 1024 || O >= 4096) { block = dim3(32, 8); grid = dim3((unsigned int)((O + 7) / 8)); }
    else { block = dim3(256, 1); grid = dim3((unsigned int)O); }
    max_rows_kernel<T><<<grid, block, 0, st>>>(values, indices, x, outer, A, O);
  } else {
    const int threads = 128;
    max_cols_kernel<T><<<apt_blocks(O, threads, 1LL << 30), threads, 0, st>>>(values, indices, x, outer, A, S, O);
  }
}
}  // namespace

void launch_sum(cudaStream_t st, int dtype, void* out, const void* x, const Strides<1>& outer,
                const Strides<1>& inner, int64_t O, int64_t R) {
  if (O <= 0) return;
  if (dtype == 0) sum_t<float>(st, (float*)out, (const float*)x, outer, inner, O, R);
  else sum_t<int>(st, (int*)out, (const int*)x, outer, inner, O, R);
}

void launch_max(cudaStream_t st, int dtype, void* values, int* indices, const void* x, const Strides<1>& outer,
                int64_t axis_size, int64_t axis_stride, int64_t O) {
  if (O <= 0) return;
  if (dtype == 0) max_t<float>(st, (float*)values, indices, (const float*)x, outer, axis_size, axis_stride, O);
  else max_t<int>(st, (int*)values, indices, (const int*)x, outer, axis_size, axis_stride, O);
}
