// Launchers for the in-place optimiser updates.
// adamw_step(param, grad, m, v): HF transformers.AdamW with correct_bias (spec §6.3): m, v updated, then
//   p -= step_size * m / (sqrt(v) + eps) with step_size = lr * sqrt(1 - b2^t) / (1 - b1^t), then p -= lr * wd * p.
// sgd_step(param, grad[, buf]): g' = g + wd * p; buf = momentum * buf + g' (if buf); p -= lr * (buf or g').
// Invariants: element math in float64 with the reference backend's rounding points (m, v rounded to float32
// before the update, p rounded before the decay; buf rounded before use), so results match it bit-for-bit
// wherever float64 sqrt agrees (it is correctly rounded on both); the host computes step_size in float64.
#pragma once
#include "common.cuh"

void launch_adamw_step(cudaStream_t st, float* p, const float* g, float* m, float* v, double lr, double beta1,
                       double beta2, double eps, double weight_decay, double step_size, int64_t n);
void launch_sgd_step(cudaStream_t st, float* p, const float* g, float* buf, double lr, double momentum,
                     double weight_decay, int64_t n);
