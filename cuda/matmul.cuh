// Device helpers for the GEMM path (the GEMM itself is cuBLAS, called from native/cublas.cc):
// float32 -> bfloat16 conversion (round to nearest even) of an operand for the bf16 mode.
#pragma once
#include "common.cuh"

void launch_matmul_to_bf16(cudaStream_t st, void* out_bf16, const float* x, int64_t n);
