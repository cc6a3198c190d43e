// Row-wise softmax family and cross-entropy kernels (see softmax.cuh). A warp per row up to 512 columns,
// a block per row beyond (apt_row_geometry); three passes over a row, the later ones served from L1/L2.
#include "softmax.cuh"
#include "device_error.cuh"

namespace {

template <bool LOG>
__global__ void softmax_kernel(float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ mask,
                               Strides<1> mrow, int64_t mcol, int64_t rows, int64_t D, float scale) {
  __shared__ float scratch[32];
  const int64_t row = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  const bool valid = row < rows;
  const float* xr = x + (valid ? row : 0) * D;
  int64_t mb = 0;
  if (mask && valid) strided_offsets<1, int64_t>(mrow, row, &mb);
  float m = -INFINITY;
  if (valid)
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) m = fmaxf(m, xr[c] * scale + (mask ? mask[mb + c * mcol] : 0.f));
  m = group_max(m, scratch);
  float s = 0.f;
  if (valid)
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) s += expf(xr[c] * scale + (mask ? mask[mb + c * mcol] : 0.f) - m);
  s = group_sum<float>(s, scratch);
  if (!valid) return;
  float* yr = y + row * D;
  if (LOG) {
    // (v - m) first, like the reference: with a row masked by a finite -1e30, m + log(s) would round to m and
    // lose log(s) (every entry would read 0 instead of -log(D)).
    const float ls = logf(s);
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
      yr[c] = (xr[c] * scale + (mask ? mask[mb + c * mcol] : 0.f) - m) - ls;
  } else {
    const float inv = 1.0f / s;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
      yr[c] = expf(xr[c] * scale + (mask ? mask[mb + c * mcol] : 0.f) - m) * inv;
  }
}

template <bool LOG>
__global__ void softmax_backward_kernel(float* __restrict__ gx, const float* __restrict__ y,
                                        const float* __restrict__ g, int64_t rows, int64_t D, float scale) {
  __shared__ float scratch[32];
  const int64_t row = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  const bool valid = row < rows;
  const float* yr = y + (valid ? row : 0) * D;
  const float* gr = g + (valid ? row : 0) * D;
  float s = 0.f;
  if (valid)
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) s += LOG ? gr[c] : gr[c] * yr[c];
  s = group_sum<float>(s, scratch);
  if (!valid) return;
  float* o = gx + row * D;
  for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
    o[c] = (LOG ? gr[c] - expf(yr[c]) * s : yr[c] * (gr[c] - s)) * scale;
}

// Shared row statistics for cross-entropy: returns log-sum-exp of the row (broadcast to the group).
__device__ __forceinline__ float row_lse(const float* xr, int64_t C, bool valid, float* scratch) {
  float m = -INFINITY;
  if (valid)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = fmaxf(m, xr[c]);
  m = group_max(m, scratch);
  float s = 0.f;
  if (valid)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += expf(xr[c] - m);
  s = group_sum<float>(s, scratch);
  return m + logf(s);
}

__global__ void cross_entropy_kernel(float* __restrict__ loss, const float* __restrict__ x,
                                     const int* __restrict__ labels, int64_t B, int64_t C, int ignore,
                                     unsigned int* flag) {
  __shared__ float scratch[32];
  const int64_t row = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  const bool valid = row < B;
  const float* xr = x + (valid ? row : 0) * C;
  const float lse = row_lse(xr, C, valid, scratch);
  if (!valid || threadIdx.x != 0) return;
  const int lab = labels[row];
  if (lab == ignore) loss[row] = 0.f;
  else if (lab < 0 || lab >= C) { loss[row] = NAN; apt_raise(flag, APT_ERR_LABEL); }
  else loss[row] = lse - xr[lab];
}

__global__ void cross_entropy_backward_kernel(float* __restrict__ d, const float* __restrict__ x,
                                              const int* __restrict__ labels, const float* __restrict__ g,
                                              int64_t B, int64_t C, int ignore, unsigned int* flag) {
  __shared__ float scratch[32];
  const int64_t row = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  const bool valid = row < B;
  const float* xr = x + (valid ? row : 0) * C;
  const float lse = row_lse(xr, C, valid, scratch);
  if (!valid) return;
  const int lab = labels[row];
  float* dr = d + row * C;
  if (lab == ignore) {
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dr[c] = 0.f;
    return;
  }
  if (lab < 0 || lab >= C) {  // like the forward: NaN and APT_ERR_LABEL (the reference throws)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dr[c] = NAN;
    if (threadIdx.x == 0) apt_raise(flag, APT_ERR_LABEL);
    return;
  }
  const float gg = g[row];
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    dr[c] = gg * (expf(xr[c] - lse) - (c == lab ? 1.f : 0.f));
}
}  // namespace

void launch_softmax(cudaStream_t st, bool log, float* y, const float* x, const float* mask,
                    const Strides<1>& mask_row, int64_t mask_col, int64_t rows, int64_t D, float scale) {
  if (rows <= 0 || D <= 0) return;
  dim3 grid, block;
  apt_row_geometry(rows, D, grid, block);
  if (log) softmax_kernel<true><<<grid, block, 0, st>>>(y, x, mask, mask_row, mask_col, rows, D, scale);
  else softmax_kernel<false><<<grid, block, 0, st>>>(y, x, mask, mask_row, mask_col, rows, D, scale);
}
void launch_softmax_backward(cudaStream_t st, bool log, float* gx, const float* y, const float* g, int64_t rows,
                             int64_t D, float scale) {
  if (rows <= 0 || D <= 0) return;
  dim3 grid, block;
  apt_row_geometry(rows, D, grid, block);
  if (log) softmax_backward_kernel<true><<<grid, block, 0, st>>>(gx, y, g, rows, D, scale);
  else softmax_backward_kernel<false><<<grid, block, 0, st>>>(gx, y, g, rows, D, scale);
}
void launch_cross_entropy(cudaStream_t st, float* loss, const float* logits, const int* labels, int64_t B,
                          int64_t C, int ignore_index) {
  if (B <= 0) return;
  dim3 grid, block;
  apt_row_geometry(B, C, grid, block);
  cross_entropy_kernel<<<grid, block, 0, st>>>(loss, logits, labels, B, C, ignore_index, apt_device_error_ptr());
}
void launch_cross_entropy_backward(cudaStream_t st, float* dlogits, const float* logits, const int* labels,
                                   const float* g, int64_t B, int64_t C, int ignore_index) {
  if (B <= 0 || C <= 0) return;
  dim3 grid, block;
  apt_row_geometry(B, C, grid, block);
  cross_entropy_backward_kernel<<<grid, block, 0, st>>>(dlogits, logits, labels, g, B, C, ignore_index,
                                                          apt_device_error_ptr());
}
