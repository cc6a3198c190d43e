// Optimiser kernels (see optim.cuh).
#include "optim.cuh"
#include <math.h>

namespace {
__global__ void adamw_step_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                  float* __restrict__ v, double b1, double b2, double eps, double decay, double step_size,
                                  int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const double gi = g[i];
    // explicit _rn intrinsics: no fused multiply-add, the same rounding as the reference's float64 expressions
    const float mi = (float)__dadd_rn(__dmul_rn(b1, (double)m[i]), __dmul_rn(1.0 - b1, gi));
    const float vi = (float)__dadd_rn(__dmul_rn(b2, (double)v[i]), __dmul_rn(__dmul_rn(1.0 - b2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    float pi = (float)__dsub_rn((double)p[i], __ddiv_rn(__dmul_rn(step_size, (double)mi), __dadd_rn(sqrt((double)vi), eps)));
    if (decay != 0.0) pi = (float)__dsub_rn((double)pi, __dmul_rn(decay, (double)pi));
    p[i] = pi;
  }
}
__global__ void sgd_step_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf,
                                double lr, double momentum, double wd, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    double d = __dadd_rn((double)g[i], __dmul_rn(wd, (double)p[i]));
    if (buf && momentum != 0.0) {
      const float b = (float)__dadd_rn(__dmul_rn(momentum, (double)buf[i]), d);
      buf[i] = b;
      d = (double)b;
    }
    p[i] = (float)__dsub_rn((double)p[i], __dmul_rn(lr, d));
  }
}
constexpr int T256 = 256;
}  // namespace

void launch_adamw_step(cudaStream_t st, float* p, const float* g, float* m, float* v, double lr, double beta1,
                       double beta2, double eps, double weight_decay, double step_size, int64_t n) {
  if (n > 0)
    adamw_step_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(p, g, m, v, beta1, beta2, eps, lr * weight_decay,
                                                            step_size, n);
}
void launch_sgd_step(cudaStream_t st, float* p, const float* g, float* buf, double lr, double momentum,
                     double weight_decay, int64_t n) {
  if (n > 0) sgd_step_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(p, g, buf, lr, momentum, weight_decay, n);
}
