// Elementwise kernels (see elementwise.cuh). Precise libm calls only (no fast-math), so results stay within a
// few ulp of the reference backend.
#include "elementwise.cuh"
#include "device_error.cuh"
#include <math.h>

namespace {

template <typename T> struct add_op { __device__ T operator()(T a, T b) const { return a + b; } };
template <typename T> struct sub_op { __device__ T operator()(T a, T b) const { return a - b; } };
template <typename T> struct mul_op { __device__ T operator()(T a, T b) const { return a * b; } };
template <> struct mul_op<int> {  // Math.imul: wraps mod 2^32
  __device__ int operator()(int a, int b) const { return (int)((unsigned)a * (unsigned)b); }
};
template <typename T> struct div_op { __device__ T operator()(T a, T b) const { return a / b; } };
template <> struct div_op<int> {  // trunc(a / b); division by zero writes 0 and raises APT_ERR_DIVZERO
  unsigned int* flag;
  __device__ int operator()(int a, int b) const {
    if (b == 0) { apt_raise(flag, APT_ERR_DIVZERO); return 0; }
    return b == -1 ? (int)(0u - (unsigned)a) : a / b;
  }
};
template <typename T> struct pow_op { __device__ T operator()(T a, T b) const { return powf(a, b); } };
template <> struct pow_op<int> {
  __device__ int operator()(int a, int b) const {
    double r = pow((double)a, (double)b);
    return isfinite(r) ? (int)(long long)trunc(fmod(r, 4294967296.0)) : 0;
  }
};
template <typename T> struct maximum_op {
  __device__ T operator()(T a, T b) const { return (a != a || b != b) ? (a != a ? a : b) : (a > b ? a : b); }
};
template <typename T> struct minimum_op {
  __device__ T operator()(T a, T b) const { return (a != a || b != b) ? (a != a ? a : b) : (a < b ? a : b); }
};
template <typename T> struct eq_op { __device__ T operator()(T a, T b) const { return a == b ? (T)1 : (T)0; } };
template <typename T> struct ne_op { __device__ T operator()(T a, T b) const { return a != b ? (T)1 : (T)0; } };
template <typename T> struct lt_op { __device__ T operator()(T a, T b) const { return a < b ? (T)1 : (T)0; } };
template <typename T> struct le_op { __device__ T operator()(T a, T b) const { return a <= b ? (T)1 : (T)0; } };
template <typename T> struct gt_op { __device__ T operator()(T a, T b) const { return a > b ? (T)1 : (T)0; } };
template <typename T> struct ge_op { __device__ T operator()(T a, T b) const { return a >= b ? (T)1 : (T)0; } };

template <typename T, typename F, typename I>
__global__ void binary_kernel(T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b,
                              Strides<2> s, I n, bool contig, F f) {
  if (contig) {
    APT_GRID_LOOP(i, n, I) out[i] = f(a[i], b[i]);
  } else {
    APT_GRID_LOOP(i, n, I) {
      I off[2];
      strided_offsets<2, I>(s, i, off);
      out[i] = f(a[off[0]], b[off[1]]);
    }
  }
}

template <typename F> F make_op() { return F(); }
template <> div_op<int> make_op<div_op<int>>() { return div_op<int>{apt_device_error_ptr()}; }

template <typename T, typename F>
void run_binary(cudaStream_t st, T* out, const T* a, const T* b, const Strides<2>& s, int64_t n) {
  bool contig = s.ndim == 1 && s.st[0][0] == 1 && s.st[1][0] == 1;
  const int threads = 256;
  if (apt_fits_u32(s, n))
    binary_kernel<T, F, uint32_t><<<apt_blocks(n, threads), threads, 0, st>>>(out, a, b, s, (uint32_t)n, contig, make_op<F>());
  else
    binary_kernel<T, F, int64_t><<<apt_blocks(n, threads), threads, 0, st>>>(out, a, b, s, n, contig, make_op<F>());
}

template <typename T>
void binary_dispatch(cudaStream_t st, int op, T* out, const T* a, const T* b, const Strides<2>& s, int64_t n) {
  switch (op) {
    case APT_add: return run_binary<T, add_op<T>>(st, out, a, b, s, n);
    case APT_sub: return run_binary<T, sub_op<T>>(st, out, a, b, s, n);
    case APT_mul: return run_binary<T, mul_op<T>>(st, out, a, b, s, n);
    case APT_div: return run_binary<T, div_op<T>>(st, out, a, b, s, n);
    case APT_pow: return run_binary<T, pow_op<T>>(st, out, a, b, s, n);
    case APT_maximum: return run_binary<T, maximum_op<T>>(st, out, a, b, s, n);
    case APT_minimum: return run_binary<T, minimum_op<T>>(st, out, a, b, s, n);
    case APT_eq: return run_binary<T, eq_op<T>>(st, out, a, b, s, n);
    case APT_ne: return run_binary<T, ne_op<T>>(st, out, a, b, s, n);
    case APT_lt: return run_binary<T, lt_op<T>>(st, out, a, b, s, n);
    case APT_le: return run_binary<T, le_op<T>>(st, out, a, b, s, n);
    case APT_gt: return run_binary<T, gt_op<T>>(st, out, a, b, s, n);
    case APT_ge: return run_binary<T, ge_op<T>>(st, out, a, b, s, n);
  }
}

template <typename T, typename C>
__global__ void where_kernel(T* __restrict__ out, const C* __restrict__ c, const T* __restrict__ a,
                             const T* __restrict__ b, Strides<3> s, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    int64_t off[3];
    strided_offsets<3, int64_t>(s, i, off);
    out[i] = c[off[0]] != (C)0 ? a[off[1]] : b[off[2]];
  }
}

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float unary_f(int op, float x) {
  switch (op) {
    case APT_neg: return -x;
    case APT_exp: return expf(x);
    case APT_log: return logf(x);
    case APT_sqrt: return sqrtf(x);
    case APT_rsqrt: return 1.0f / sqrtf(x);
    case APT_abs: return fabsf(x);
    case APT_sign: return x > 0.f ? 1.f : (x < 0.f ? -1.f : x);
    case APT_tanh: return tanhf(x);
    case APT_sigmoid: return sigmoidf(x);
    case APT_relu: return x > 0.f ? x : (x == x ? 0.f : x);
    case APT_erf: return erff(x);
    case APT_gelu: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case APT_quick_gelu: return x * sigmoidf(1.702f * x);
  }
  return x;
}
__device__ __forceinline__ int unary_i(int op, int x) {
  switch (op) {
    case APT_neg: return (int)(0u - (unsigned)x);
    case APT_abs: return x < 0 ? (int)(0u - (unsigned)x) : x;
    case APT_sign: return (x > 0) - (x < 0);
    case APT_relu: return x > 0 ? x : 0;
  }
  return x;
}

template <int OP>
__global__ void unary_kernel_f(float* __restrict__ out, const float* __restrict__ x, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = unary_f(OP, x[i]);
}
__global__ void unary_kernel_i(int* __restrict__ out, const int* __restrict__ x, int op, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = unary_i(op, x[i]);
}

// gelu'(v) = cdf(v) + v pdf(v)
__device__ __forceinline__ float gelu_grad(float v) {
  const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
  const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
  return cdf + v * pdf;
}
__global__ void gelu_backward_kernel(float* __restrict__ out, const float* __restrict__ x,
                                     const float* __restrict__ g, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = g[i] * gelu_grad(x[i]);
}
// x [R, D] + bias [D]: the sum lives in a register only
__global__ void bias_gelu_kernel(float* __restrict__ out, const float* __restrict__ x, const float* __restrict__ bias,
                                 int64_t n, int64_t D) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = unary_f(APT_gelu, x[i] + bias[i % D]);
}
__global__ void bias_gelu_backward_kernel(float* __restrict__ out, const float* __restrict__ x,
                                          const float* __restrict__ bias, const float* __restrict__ g, int64_t n,
                                          int64_t D) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = g[i] * gelu_grad(x[i] + bias[i % D]);
}
__global__ void quick_gelu_backward_kernel(float* __restrict__ out, const float* __restrict__ x,
                                           const float* __restrict__ g, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const float v = x[i];
    const float s = sigmoidf(1.702f * v);
    out[i] = g[i] * (s + 1.702f * v * s * (1.0f - s));
  }
}
template <typename T>
__global__ void affine_kernel(T* __restrict__ out, const T* __restrict__ x, float scale, float shift, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = x[i] * scale + shift;
}
__global__ void affine_kernel_i(int* __restrict__ out, const int* __restrict__ x, double scale, double shift,
                                int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    double r = (double)x[i] * scale + shift;
    out[i] = isfinite(r) ? (int)(long long)trunc(fmod(r, 4294967296.0)) : 0;
  }
}
__global__ void pow_scalar_kernel(float* __restrict__ out, const float* __restrict__ x, float e, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const float v = x[i];
    out[i] = e == 2.0f ? v * v : (e == 1.0f ? v : (e == 0.5f ? sqrtf(v) : powf(v, e)));
  }
}
__global__ void bce_with_logits_kernel(float* __restrict__ out, const float* __restrict__ x,
                                       const float* __restrict__ t, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const float v = x[i];
    out[i] = fmaxf(v, 0.f) - v * t[i] + log1pf(expf(-fabsf(v)));
  }
}
__global__ void bce_with_logits_backward_kernel(float* __restrict__ out, const float* __restrict__ x,
                                                const float* __restrict__ t, const float* __restrict__ g,
                                                int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = (sigmoidf(x[i]) - t[i]) * g[i];
}
template <typename T>
__global__ void fill_kernel(T* __restrict__ out, T v, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = v;
}
__global__ void cast_f2i_kernel(int* __restrict__ out, const float* __restrict__ x, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    const double v = (double)x[i];
    out[i] = isfinite(v) ? (int)(unsigned int)(long long)trunc(fmod(v, 4294967296.0)) : 0;
  }
}
__global__ void cast_i2f_kernel(float* __restrict__ out, const int* __restrict__ x, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = (float)x[i];
}
__global__ void copy_words_kernel(uint32_t* __restrict__ out, const uint32_t* __restrict__ x, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = x[i];
}

constexpr int T256 = 256;
}  // namespace

void launch_binary(cudaStream_t st, int op, int dtype, void* out, const void* a, const void* b,
                   const Strides<2>& s, int64_t n) {
  if (n <= 0) return;
  if (dtype == 0) binary_dispatch<float>(st, op, (float*)out, (const float*)a, (const float*)b, s, n);
  else binary_dispatch<int>(st, op, (int*)out, (const int*)a, (const int*)b, s, n);
}

void launch_where(cudaStream_t st, int dtype, int cond_dtype, void* out, const void* cond, const void* a,
                  const void* b, const Strides<3>& s, int64_t n) {
  if (n <= 0) return;
  const unsigned int g = apt_blocks(n, T256);
  if (dtype == 0) {
    if (cond_dtype == 0) where_kernel<float, float><<<g, T256, 0, st>>>((float*)out, (const float*)cond, (const float*)a, (const float*)b, s, n);
    else where_kernel<float, int><<<g, T256, 0, st>>>((float*)out, (const int*)cond, (const float*)a, (const float*)b, s, n);
  } else {
    if (cond_dtype == 0) where_kernel<int, float><<<g, T256, 0, st>>>((int*)out, (const float*)cond, (const int*)a, (const int*)b, s, n);
    else where_kernel<int, int><<<g, T256, 0, st>>>((int*)out, (const int*)cond, (const int*)a, (const int*)b, s, n);
  }
}

void launch_unary(cudaStream_t st, int op, int dtype, void* out, const void* x, int64_t n) {
  if (n <= 0) return;
  const unsigned int g = apt_blocks(n, T256);
  if (dtype == 1) { unary_kernel_i<<<g, T256, 0, st>>>((int*)out, (const int*)x, op, n); return; }
  float* o = (float*)out;
  const float* v = (const float*)x;
#define APT_UNARY_CASE(NAME) case APT_##NAME: unary_kernel_f<APT_##NAME><<<g, T256, 0, st>>>(o, v, n); break;
  switch (op) {
    APT_UNARY_OPS(APT_UNARY_CASE)
  }
#undef APT_UNARY_CASE
}

void launch_gelu_backward(cudaStream_t st, float* out, const float* x, const float* g, int64_t n) {
  if (n > 0) gelu_backward_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, g, n);
}
void launch_bias_gelu(cudaStream_t st, float* out, const float* x, const float* bias, int64_t R, int64_t D) {
  const int64_t n = R * D;
  if (n > 0) bias_gelu_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, bias, n, D);
}
void launch_bias_gelu_backward(cudaStream_t st, float* out, const float* x, const float* bias, const float* g,
                               int64_t R, int64_t D) {
  const int64_t n = R * D;
  if (n > 0) bias_gelu_backward_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, bias, g, n, D);
}
void launch_quick_gelu_backward(cudaStream_t st, float* out, const float* x, const float* g, int64_t n) {
  if (n > 0) quick_gelu_backward_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, g, n);
}
void launch_affine(cudaStream_t st, int dtype, void* out, const void* x, double scale, double shift, int64_t n) {
  if (n <= 0) return;
  if (dtype == 0) affine_kernel<float><<<apt_blocks(n, T256), T256, 0, st>>>((float*)out, (const float*)x, (float)scale, (float)shift, n);
  else affine_kernel_i<<<apt_blocks(n, T256), T256, 0, st>>>((int*)out, (const int*)x, scale, shift, n);
}
void launch_pow_scalar(cudaStream_t st, float* out, const float* x, double exponent, int64_t n) {
  if (n > 0) pow_scalar_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, (float)exponent, n);
}
void launch_bce_with_logits(cudaStream_t st, float* out, const float* x, const float* t, int64_t n) {
  if (n > 0) bce_with_logits_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, t, n);
}
void launch_bce_with_logits_backward(cudaStream_t st, float* out, const float* x, const float* t,
                                     const float* g, int64_t n) {
  if (n > 0) bce_with_logits_backward_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, t, g, n);
}
void launch_fill(cudaStream_t st, int dtype, void* out, double value, int64_t n) {
  if (n <= 0) return;
  if (dtype == 0) fill_kernel<float><<<apt_blocks(n, T256), T256, 0, st>>>((float*)out, (float)value, n);
  else {
    int v = isfinite(value) ? (int)(unsigned int)(long long)trunc(fmod(value, 4294967296.0)) : 0;
    fill_kernel<int><<<apt_blocks(n, T256), T256, 0, st>>>((int*)out, v, n);
  }
}
void launch_cast(cudaStream_t st, int from, int to, void* out, const void* x, int64_t n) {
  if (n <= 0) return;
  const unsigned int g = apt_blocks(n, T256);
  if (from == to) copy_words_kernel<<<g, T256, 0, st>>>((uint32_t*)out, (const uint32_t*)x, n);
  else if (from == 0) cast_f2i_kernel<<<g, T256, 0, st>>>((int*)out, (const float*)x, n);
  else cast_i2f_kernel<<<g, T256, 0, st>>>((float*)out, (const int*)x, n);
}
