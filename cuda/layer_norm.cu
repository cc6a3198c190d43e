// Layer-norm kernels (see layer_norm.cuh): a row kernel (warp or block per row) for y and dx, and a column
// kernel (thread per feature, rows split over gridDim.y, atomicAdd) for dweight and dbias.
#include "layer_norm.cuh"

namespace {

__global__ void layer_norm_kernel(float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd,
                                  const float* __restrict__ x, const float* __restrict__ w,
                                  const float* __restrict__ b, int64_t R, int64_t D, float eps) {
  __shared__ float scratch[32];
  const int64_t row = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  const bool valid = row < R;
  const float* xr = x + (valid ? row : 0) * D;
  float s = 0.f;
  if (valid)
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) s += xr[c];
  const float mu = group_sum<float>(s, scratch) / (float)D;
  float v = 0.f;
  if (valid)
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) { const float d = xr[c] - mu; v += d * d; }
  const float var = group_sum<float>(v, scratch) / (float)D;
  if (!valid) return;
  const float rs = 1.0f / sqrtf(var + eps);
  float* yr = y + row * D;
  for (int64_t c = threadIdx.x; c < D; c += blockDim.x) yr[c] = (xr[c] - mu) * rs * w[c] + b[c];
  if (threadIdx.x == 0) { mean[row] = mu; rstd[row] = rs; }
}

__global__ void layer_norm_backward_dx_kernel(float* __restrict__ dx, const float* __restrict__ g,
                                              const float* __restrict__ x, const float* __restrict__ w,
                                              const float* __restrict__ mean, const float* __restrict__ rstd,
                                              int64_t R, int64_t D) {
  __shared__ float scratch[32];
  const int64_t row = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  const bool valid = row < R;
  const int64_t r = valid ? row : 0;
  const float* xr = x + r * D;
  const float* gr = g + r * D;
  const float mu = mean[r], rs = rstd[r];
  float a = 0.f, bsum = 0.f;
  if (valid)
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
      const float gw = gr[c] * w[c];
      a += gw;
      bsum += gw * (xr[c] - mu) * rs;
    }
  a = group_sum<float>(a, scratch) / (float)D;
  bsum = group_sum<float>(bsum, scratch) / (float)D;
  if (!valid) return;
  float* o = dx + row * D;
  for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
    const float xh = (xr[c] - mu) * rs;
    o[c] = rs * (gr[c] * w[c] - a - xh * bsum);
  }
}

__global__ void layer_norm_backward_dwdb_kernel(float* __restrict__ dw, float* __restrict__ db,
                                                const float* __restrict__ g, const float* __restrict__ x,
                                                const float* __restrict__ mean, const float* __restrict__ rstd,
                                                int64_t R, int64_t D, int64_t chunk) {
  const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= D) return;
  const int64_t r0 = (int64_t)blockIdx.y * chunk;
  const int64_t r1 = r0 + chunk < R ? r0 + chunk : R;
  float sw = 0.f, sb = 0.f;
  for (int64_t r = r0; r < r1; ++r) {
    const float gv = g[r * D + c];
    sw += gv * (x[r * D + c] - mean[r]) * rstd[r];
    sb += gv;
  }
  atomicAdd(dw + c, sw);
  atomicAdd(db + c, sb);
}
}  // namespace

void launch_layer_norm(cudaStream_t st, float* y, float* mean, float* rstd, const float* x, const float* w,
                       const float* b, int64_t R, int64_t D, float eps) {
  if (R <= 0 || D <= 0) return;
  dim3 grid, block;
  apt_row_geometry(R, D, grid, block);
  layer_norm_kernel<<<grid, block, 0, st>>>(y, mean, rstd, x, w, b, R, D, eps);
}

void launch_layer_norm_backward(cudaStream_t st, float* dx, float* dw, float* db, const float* g, const float* x,
                                const float* w, const float* mean, const float* rstd, int64_t R, int64_t D) {
  if (D <= 0) return;
  cudaMemsetAsync(dw, 0, D * sizeof(float), st);
  cudaMemsetAsync(db, 0, D * sizeof(float), st);
  if (R <= 0) return;
  dim3 grid, block;
  apt_row_geometry(R, D, grid, block);
  layer_norm_backward_dx_kernel<<<grid, block, 0, st>>>(dx, g, x, w, mean, rstd, R, D);
  const int threads = 128;
  const int64_t bx = (D + threads - 1) / threads;
  int64_t splits = 1024 / bx;
  if (splits > R / 32) splits = R / 32;
  if (splits < 1) splits = 1;
  if (splits > 65535) splits = 65535;
  const int64_t chunk = (R + splits - 1) / splits;
  splits = (R + chunk - 1) / chunk;
  layer_norm_backward_dwdb_kernel<<<dim3((unsigned int)bx, (unsigned int)splits), threads, 0, st>>>(
      dw, db, g, x, mean, rstd, R, D, chunk);
}
