// Launchers for the gather family and their scatter-add adjoints, with int32 indices:
// index_select(x [O, A, I], idx [K]) -> [O, K, I];  index_add(g [O, K, I], idx [K]) -> [O, size, I];
// gather(x, idx) along an axis (torch.gather, out shape = idx shape); scatter_add(g, idx) -> zeros(shape) += g.
// Does not: validate indices on the host (it cannot without a read). Invariants: an index outside [0, A) never
// touches memory: gathers write NaN (float) / 0 (int32), scatters drop it, and both raise APT_ERR_INDEX.
// dtype 0 = float32, 1 = int32 for the data operands.
#pragma once
#include "common.cuh"

void launch_index_select(cudaStream_t st, int dtype, void* out, const void* x, const int* idx, int64_t O, int64_t A,
                         int64_t I, int64_t K);
void launch_index_add(cudaStream_t st, int dtype, void* out, const void* g, const int* idx, int64_t O, int64_t size,
                      int64_t I, int64_t K);
// s: shape = idx shape, st[0] = strides of x (gather) or of out (scatter_add) with the axis stride set to 0.
void launch_gather(cudaStream_t st, int dtype, void* out, const void* x, const int* idx, const Strides<1>& s,
                   int64_t axis_stride, int64_t axis_size, int64_t n);
void launch_scatter_add(cudaStream_t st, int dtype, void* out, int64_t out_numel, const void* g, const int* idx,
                        const Strides<1>& s, int64_t axis_stride, int64_t axis_size, int64_t n);
