// float32 -> bfloat16 operand conversion for the bf16 GEMM mode (see matmul.cuh).
#include "matmul.cuh"
#include <cuda_bf16.h>

namespace {
__global__ void matmul_to_bf16_kernel(__nv_bfloat16* __restrict__ out, const float* __restrict__ x, int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) out[i] = __float2bfloat16_rn(x[i]);
}
}  // namespace

void launch_matmul_to_bf16(cudaStream_t st, void* out_bf16, const float* x, int64_t n) {
  if (n > 0) matmul_to_bf16_kernel<<<apt_blocks(n, 256), 256, 0, st>>>((__nv_bfloat16*)out_bf16, x, n);
}
