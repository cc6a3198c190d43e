// Launchers for the fused layer norm over the last axis (biased variance, like torch).
// layer_norm(x [R, D], weight [D], bias [D]) -> y [R, D], mean [R], rstd [R];
// layer_norm_backward(g, x, weight, mean, rstd) -> dx [R, D], dweight [D], dbias [D].
// Invariants: all operands contiguous; dweight/dbias are fully overwritten (zeroed here before atomic sums).
#pragma once
#include "common.cuh"

void launch_layer_norm(cudaStream_t st, float* y, float* mean, float* rstd, const float* x, const float* w,
                       const float* b, int64_t R, int64_t D, float eps);
void launch_layer_norm_backward(cudaStream_t st, float* dx, float* dw, float* db, const float* g, const float* x,
                                const float* w, const float* mean, const float* rstd, int64_t R, int64_t D);
