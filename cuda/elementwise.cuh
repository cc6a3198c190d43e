// Launchers for the elementwise op family: broadcasting binary ops and comparisons, where, unary maps,
// GELU / QuickGELU and their backward, bias + GELU (bias_gelu) and its backward, affine, pow_scalar, BCE-with-logits, fill, cast.
// Does not: broadcast-plan (the host passes coalesced shapes and strides; 0 = broadcast axis).
// Invariants: outputs are contiguous; dtype 0 = float32, 1 = int32; comparisons write 0/1 in the input dtype.
#pragma once
#include "common.cuh"
#include "op_codes.cuh"  // AptBinaryOp, AptUnaryOp and their X-macro lists, generated from engine/op-contract.ts


// out[i] = op(a[off_a(i)], b[off_b(i)]) over s.shape; s.st[0] = a strides, s.st[1] = b strides.
void launch_binary(cudaStream_t st, int op, int dtype, void* out, const void* a, const void* b,
                   const Strides<2>& s, int64_t n);
// out[i] = cond[off_c(i)] != 0 ? a[off_a(i)] : b[off_b(i)]; cond dtype given separately.
void launch_where(cudaStream_t st, int dtype, int cond_dtype, void* out, const void* cond, const void* a,
                  const void* b, const Strides<3>& s, int64_t n);
void launch_unary(cudaStream_t st, int op, int dtype, void* out, const void* x, int64_t n);
// gelu_backward / quick_gelu_backward: out = g * f'(x), all contiguous of n elements.
void launch_gelu_backward(cudaStream_t st, float* out, const float* x, const float* g, int64_t n);
void launch_quick_gelu_backward(cudaStream_t st, float* out, const float* x, const float* g, int64_t n);
// bias_gelu: out = gelu(x + bias[i % D]) over x [R, D]; bias_gelu_backward: out = g * gelu'(x + bias[i % D]).
void launch_bias_gelu(cudaStream_t st, float* out, const float* x, const float* bias, int64_t R, int64_t D);
void launch_bias_gelu_backward(cudaStream_t st, float* out, const float* x, const float* bias, const float* g,
                               int64_t R, int64_t D);
void launch_affine(cudaStream_t st, int dtype, void* out, const void* x, double scale, double shift, int64_t n);
void launch_pow_scalar(cudaStream_t st, float* out, const float* x, double exponent, int64_t n);
void launch_bce_with_logits(cudaStream_t st, float* out, const float* x, const float* t, int64_t n);
void launch_bce_with_logits_backward(cudaStream_t st, float* out, const float* x, const float* t,
                                     const float* g, int64_t n);
void launch_fill(cudaStream_t st, int dtype, void* out, double value, int64_t n);
// cast between float32 (0) and int32 (1); float -> int truncates toward zero, NaN/inf -> 0, wraps mod 2^32.
void launch_cast(cudaStream_t st, int from, int to, void* out, const void* x, int64_t n);
