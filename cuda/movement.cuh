// Launchers for movement ops (copies): one strided copy serves permute, slice, expand, concat (one launch per
// input into a strided window of the output) and contiguous copies; pad has its own kernel.
// Does not: interpret values. Invariants: float32 and int32 are both 4-byte words, so these kernels are
// dtype-free; the host coalesces axes so that contiguous copies take the ndim == 1 fast path.
#pragma once
#include "common.cuh"

// out[off_0(i)] = x[off_1(i)] for i over s.shape.
void launch_copy_strided(cudaStream_t st, uint32_t* out, const uint32_t* x, const Strides<2>& s, int64_t n);
// out (shape out_shape, contiguous) = x (shape in_shape) placed at `before` offsets, `value` elsewhere.
// before may be negative (cropping). value is the 4-byte pattern of the fill value in the tensor's dtype.
void launch_pad(cudaStream_t st, uint32_t* out, const uint32_t* x, int ndim, const int64_t* out_shape,
                const int64_t* in_shape, const int64_t* before, uint32_t value, int64_t n);
