// Resize kernels (see resize.cuh). Taps and weights are computed in float64 with the reference backend's
// formulas (src = (d + 0.5) * in / out - 0.5, or d * (in - 1) / (out - 1) with align_corners), and the
// interpolation accumulates in float64, so forward results match it to the last bit or two; the backward
// scatters with float atomics (summation order differs).
#include "resize.cuh"
#include <math.h>

namespace {
__device__ __forceinline__ double src_coord(int64_t d, int64_t in, int64_t out, bool ac) {
  if (ac) return out > 1 ? __ddiv_rn((double)(d * (in - 1)), (double)(out - 1)) : 0.0;
  const double s = __ddiv_rn(__dmul_rn((double)d + 0.5, (double)in), (double)out) - 0.5;
  return s < 0.0 ? 0.0 : s;
}

struct Lin { int64_t i0, i1; double w1; };
__device__ __forceinline__ Lin lin(int64_t dst, int64_t in, int64_t out, bool ac) {
  const double s = src_coord(dst, in, out, ac);
  int64_t f = (int64_t)floor(s);
  if (f > in - 1) f = in - 1;
  Lin r;
  r.i0 = f;
  r.i1 = f + 1 < in - 1 ? f + 1 : in - 1;
  r.w1 = s - (double)f;
  return r;
}

__global__ void resize_bilinear_kernel(float* __restrict__ out, const float* __restrict__ x, int64_t H, int64_t W,
                                       int64_t OH, int64_t OW, bool ac, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const int64_t ox = i % OW, t = i / OW, oy = t % OH, p = t / OH;
    const Lin ly = lin(oy, H, OH, ac), lx = lin(ox, W, OW, ac);
    const float* xp = x + p * H * W;
    const double wx = lx.w1, wy = ly.w1;
    const double top = __dadd_rn(__dmul_rn(xp[ly.i0 * W + lx.i0], 1.0 - wx), __dmul_rn(xp[ly.i0 * W + lx.i1], wx));
    const double bot = __dadd_rn(__dmul_rn(xp[ly.i1 * W + lx.i0], 1.0 - wx), __dmul_rn(xp[ly.i1 * W + lx.i1], wx));
    out[i] = (float)__dadd_rn(__dmul_rn(top, 1.0 - wy), __dmul_rn(bot, wy));
  }
}
__global__ void resize_bilinear_backward_kernel(float* __restrict__ gx, const float* __restrict__ g, int64_t H,
                                                int64_t W, int64_t OH, int64_t OW, bool ac, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const int64_t ox = i % OW, t = i / OW, oy = t % OH, p = t / OH;
    const Lin ly = lin(oy, H, OH, ac), lx = lin(ox, W, OW, ac);
    float* gp = gx + p * H * W;
    const double v = g[i], wx = lx.w1, wy = ly.w1;
    atomicAdd(gp + ly.i0 * W + lx.i0, (float)(v * (1.0 - wy) * (1.0 - wx)));
    atomicAdd(gp + ly.i0 * W + lx.i1, (float)(v * (1.0 - wy) * wx));
    atomicAdd(gp + ly.i1 * W + lx.i0, (float)(v * wy * (1.0 - wx)));
    atomicAdd(gp + ly.i1 * W + lx.i1, (float)(v * wy * wx));
  }
}

constexpr int T256 = 256;
}  // namespace

void launch_resize_bilinear(cudaStream_t st, float* out, const float* x, int64_t P, int64_t H, int64_t W,
                            int64_t OH, int64_t OW, bool align_corners) {
  const int64_t n = P * OH * OW;
  if (n > 0) resize_bilinear_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, H, W, OH, OW, align_corners, n);
}
void launch_resize_bilinear_backward(cudaStream_t st, float* gx, const float* g, int64_t P, int64_t H, int64_t W,
                                     int64_t OH, int64_t OW, bool align_corners) {
  if (P * H * W > 0) cudaMemsetAsync(gx, 0, P * H * W * sizeof(float), st);
  const int64_t n = P * OH * OW;
  if (n > 0)
    resize_bilinear_backward_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(gx, g, H, W, OH, OW, align_corners, n);
}
