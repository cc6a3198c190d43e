// Launchers for reductions: sum over a set of axes, max (values + first-max int32 indices) and argmax over one axis.
// Does not: plan axes. The host passes `outer` (kept axes: their sizes and input strides, in output order) and
// `inner` (reduced axes: sizes and input strides). Output element o (row-major over outer) is reduced over all
// r (row-major over inner) of x[off_outer(o) + off_inner(r)].
// Invariants: dtype 0 = float32, 1 = int32; float sums accumulate in float32 with a tree order (not the
// reference's order: compare with a tolerance); ties in max/argmax resolve to the smallest index.
#pragma once
#include "common.cuh"

void launch_sum(cudaStream_t st, int dtype, void* out, const void* x, const Strides<1>& outer,
                const Strides<1>& inner, int64_t O, int64_t R);
// values may be null (argmax).
void launch_max(cudaStream_t st, int dtype, void* values, int* indices, const void* x, const Strides<1>& outer,
                int64_t axis_size, int64_t axis_stride, int64_t O);
