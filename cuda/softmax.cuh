// Launchers for row-wise fused routines over the last axis: softmax / log_softmax (optional additive mask),
// their backward, and cross-entropy over [B, C] logits with int32 labels.
// Does not: broadcast x (the mask alone broadcasts: the host passes its row strides over x's leading axes,
// `mask_row`, and its stride along the last axis, `mask_col`, 0 for broadcast).
// Invariants: rows are contiguous; a fully masked row (all -inf) gives NaN like torch, one masked with the finite
// MASK_NEG (-1e30) gives the reference's uniform softmax and -log(D) log-softmax ((x - max) is formed before log(s)
// is subtracted); an out-of-range label that is not ignore_index gives NaN (loss, or the row of dlogits) and raises
// APT_ERR_LABEL.
#pragma once
#include "common.cuh"

// softmax / log_softmax of x * scale + mask (attention's 1/sqrt(dh) in the same pass)
void launch_softmax(cudaStream_t st, bool log, float* y, const float* x, const float* mask,
                    const Strides<1>& mask_row, int64_t mask_col, int64_t rows, int64_t D, float scale);
// softmax_backward(y, g): g_x = y * (g - sum(g * y)) * scale; log_softmax_backward(y, g): g_x = (g - exp(y) * sum(g)) * scale.
void launch_softmax_backward(cudaStream_t st, bool log, float* gx, const float* y, const float* g, int64_t rows,
                             int64_t D, float scale);
void launch_cross_entropy(cudaStream_t st, float* loss, const float* logits, const int* labels, int64_t B,
                          int64_t C, int ignore_index);
void launch_cross_entropy_backward(cudaStream_t st, float* dlogits, const float* logits, const int* labels,
                                   const float* g, int64_t B, int64_t C, int ignore_index);
