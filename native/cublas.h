// cuBLAS, opened at run time with dlopen (TOOLCHAIN.md): the build needs no cuBLAS, and a machine without it
// still loads the addon and reports why the CUDA backend is unavailable.
// Does not: include cublas headers (enums are passed as the documented 4-byte integers).
// Invariants: one cublasHandle bound to the addon's stream; GEMM inputs are row-major and mapped onto
// column-major cuBLAS by swapping the operands (C^T = op(B)^T op(A)^T), so transposes never copy.
#pragma once
#include <cuda_runtime_api.h>
#include <cstdint>
#include <string>

namespace apt {

enum GemmMode { GEMM_FP32 = 0, GEMM_TF32 = 1, GEMM_BF16 = 2 };

// Search list: $APTUNE_CUBLAS (a file), $APTUNE_CUBLAS_DIR/libcublas.so.{13,12}, libcublas.so.13, .12, .so
// (the loader's path, LD_LIBRARY_PATH included), /usr/local/cuda/lib64. Returns false with `why` listing attempts.
bool cublas_init(cudaStream_t stream, std::string* path, std::string* why);
void set_gemm_mode(int mode);
int gemm_mode();

// Row-major batched GEMM: for b in [0, batch): C_b [M, N] = op(A_b) op(B_b), A_b = A + b * strideA (elements),
// op(A) = A [M, K] or A^T for A stored [K, M]; likewise B [K, N] or stored [N, K]. C is contiguous, strideC = M*N.
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t strideA,
          const float* B, int64_t strideB, float* C, int64_t batch);

}  // namespace apt
