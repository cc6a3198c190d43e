// cuBLAS loader and GEMM (see cublas.h).
#include "cublas.h"
#include "device.h"
#include "matmul.cuh"

#include <dlfcn.h>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace apt {

namespace {
typedef void* cublasHandle_t;
typedef int cublasStatus_t;
// enum values (cublas_api.h / library_types.h)
constexpr int OP_N = 0, OP_T = 1;
constexpr int R_32F = 0, R_16BF = 14;
constexpr int COMPUTE_32F = 68, COMPUTE_32F_FAST_TF32 = 77;
constexpr int GEMM_DEFAULT = -1;
constexpr int DEFAULT_MATH = 0;

typedef cublasStatus_t (*create_t)(cublasHandle_t*);
typedef cublasStatus_t (*set_stream_t)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*set_math_mode_t)(cublasHandle_t, int);
typedef cublasStatus_t (*sgemm_t)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int,
                                  const float*, int, const float*, float*, int);
typedef cublasStatus_t (*sgemm_sb_t)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int,
                                     long long, const float*, int, long long, const float*, float*, int, long long,
                                     int);
typedef cublasStatus_t (*gemm_ex_t)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int,
                                    const void*, int, int, const void*, void*, int, int, int, int);
typedef cublasStatus_t (*gemm_sb_ex_t)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int,
                                       long long, const void*, int, int, long long, const void*, void*, int, int,
                                       long long, int, int, int);
typedef const char* (*status_string_t)(cublasStatus_t);

struct Api {
  void* lib = nullptr;
  cublasHandle_t handle = nullptr;
  create_t create = nullptr;
  set_stream_t set_stream = nullptr;
  set_math_mode_t set_math_mode = nullptr;
  sgemm_t sgemm = nullptr;
  sgemm_sb_t sgemm_sb = nullptr;
  gemm_ex_t gemm_ex = nullptr;
  gemm_sb_ex_t gemm_sb_ex = nullptr;
  status_string_t status_string = nullptr;
} g;
int g_mode = GEMM_FP32;
cudaStream_t g_stream = nullptr;

void check_blas(cublasStatus_t s, const char* what) {
  if (s == 0) return;
  std::string msg = std::string("cublas: ") + what + ": status " + std::to_string(s);
  if (g.status_string) msg += std::string(" (") + g.status_string(s) + ")";
  throw std::runtime_error(msg);
}

void* try_open(const std::string& path, std::string* tried) {
  // libcublas needs libcublasLt from its own folder; preload it when a folder is known
  const size_t slash = path.rfind('/'), so = path.rfind(".so");
  if (slash != std::string::npos && so != std::string::npos && so > slash) {  // (substr(npos) would throw)
    const std::string dir = path.substr(0, slash + 1);
    const std::string ver = path.substr(so);
    dlopen((dir + "libcublasLt" + ver).c_str(), RTLD_NOW | RTLD_GLOBAL);
  }
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    *tried += "\n  " + path + ": " + (e ? e : "not found");
  }
  return h;
}
}  // namespace

bool cublas_init(cudaStream_t stream, std::string* path, std::string* why) {
  g_stream = stream;
  std::vector<std::string> cands;
  if (const char* f = std::getenv("APTUNE_CUBLAS")) cands.push_back(f);
  if (const char* d = std::getenv("APTUNE_CUBLAS_DIR")) {
    cands.push_back(std::string(d) + "/libcublas.so.13");
    cands.push_back(std::string(d) + "/libcublas.so.12");
  }
  cands.push_back("libcublas.so.13");
  cands.push_back("libcublas.so.12");
  cands.push_back("libcublas.so");
  cands.push_back("/usr/local/cuda/lib64/libcublas.so.13");
  cands.push_back("/usr/local/cuda/lib64/libcublas.so.12");
  std::string tried;
  for (const auto& c : cands) {
    g.lib = try_open(c, &tried);
    if (g.lib) { *path = c; break; }
  }
  if (!g.lib) {
    *why = "tried (set APTUNE_CUBLAS to the file or APTUNE_CUBLAS_DIR to its folder):" + tried;
    return false;
  }
#define APT_SYM(field, name)                                                  \
  g.field = reinterpret_cast<decltype(g.field)>(dlsym(g.lib, name));          \
  if (!g.field) { *why = std::string(*path) + " lacks symbol " + name; return false; }
  APT_SYM(create, "cublasCreate_v2")
  APT_SYM(set_stream, "cublasSetStream_v2")
  APT_SYM(set_math_mode, "cublasSetMathMode")
  APT_SYM(sgemm, "cublasSgemm_v2")
  APT_SYM(sgemm_sb, "cublasSgemmStridedBatched")
  APT_SYM(gemm_ex, "cublasGemmEx")
  APT_SYM(gemm_sb_ex, "cublasGemmStridedBatchedEx")
#undef APT_SYM
  g.status_string = reinterpret_cast<status_string_t>(dlsym(g.lib, "cublasGetStatusString"));
  cublasStatus_t s = g.create(&g.handle);
  if (s != 0) { *why = *path + ": cublasCreate failed with status " + std::to_string(s); return false; }
  if ((s = g.set_stream(g.handle, stream)) != 0 || (s = g.set_math_mode(g.handle, DEFAULT_MATH)) != 0) {
    *why = *path + ": cublasSetStream/SetMathMode failed with status " + std::to_string(s);
    return false;
  }
  if (const char* m = std::getenv("APTUNE_CUDA_GEMM")) {
    const std::string v = m;
    g_mode = v == "tf32" ? GEMM_TF32 : v == "bf16" ? GEMM_BF16 : GEMM_FP32;
  }
  return true;
}

void set_gemm_mode(int mode) {
  if (mode < GEMM_FP32 || mode > GEMM_BF16) throw std::runtime_error("cuda: gemm mode must be 0 (fp32), 1 (tf32) or 2 (bf16)");
  g_mode = mode;
}
int gemm_mode() { return g_mode; }

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t strideA,
          const float* B, int64_t strideB, float* C, int64_t batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  if (K <= 0) {
    check(cudaMemsetAsync(C, 0, (size_t)(M * N * batch) * 4, g_stream), "matmul (K = 0)");
    return;
  }
  if (M > 0x7fffffff || N > 0x7fffffff || K > 0x7fffffff || batch > 0x7fffffff)
    throw std::runtime_error("cublas: matmul dimensions exceed 2^31");
  const float one = 1.f, zero = 0.f;
  // column-major view: C^T [N, M] = op(B)^T [N, K] * op(A)^T [K, M]
  const int opB = transB ? OP_T : OP_N, opA = transA ? OP_T : OP_N;
  const int ldb = (int)(transB ? K : N), lda = (int)(transA ? M : K), ldc = (int)N;
  const long long sC = (long long)(M * N);
  if (g_mode == GEMM_FP32) {
    if (batch == 1)
      check_blas(g.sgemm(g.handle, opB, opA, (int)N, (int)M, (int)K, &one, B, ldb, A, lda, &zero, C, ldc), "sgemm");
    else
      check_blas(g.sgemm_sb(g.handle, opB, opA, (int)N, (int)M, (int)K, &one, B, ldb, strideB, A, lda, strideA,
                            &zero, C, ldc, sC, (int)batch),
                 "sgemm_strided_batched");
    return;
  }
  if (g_mode == GEMM_TF32) {
    if (batch == 1)
      check_blas(g.gemm_ex(g.handle, opB, opA, (int)N, (int)M, (int)K, &one, B, R_32F, ldb, A, R_32F, lda, &zero, C,
                           R_32F, ldc, COMPUTE_32F_FAST_TF32, GEMM_DEFAULT),
                 "gemm_ex (tf32)");
    else
      check_blas(g.gemm_sb_ex(g.handle, opB, opA, (int)N, (int)M, (int)K, &one, B, R_32F, ldb, strideB, A, R_32F, lda,
                              strideA, &zero, C, R_32F, ldc, sC, (int)batch, COMPUTE_32F_FAST_TF32, GEMM_DEFAULT),
                 "gemm_strided_batched_ex (tf32)");
    return;
  }
  // bf16: operands rounded to bfloat16 in scratch blocks, fp32 accumulation and fp32 output
  if ((strideA != 0 && strideA != M * K) || (strideB != 0 && strideB != K * N))
    throw std::runtime_error("cublas: bf16 matmul needs batch strides of 0 or one matrix");
  const int64_t nA = (strideA == 0 ? 1 : batch) * M * K, nB = (strideB == 0 ? 1 : batch) * K * N;
  size_t bucketA = 0, bucketB = 0;
  void* a16 = raw_alloc((size_t)nA * 2, &bucketA);
  void* b16 = nullptr;
  try {
    b16 = raw_alloc((size_t)nB * 2, &bucketB);
  } catch (...) {
    raw_free(a16, bucketA);
    throw;
  }
  struct Release {
    void* a; size_t ba; void* b; size_t bb;
    ~Release() { raw_free(a, ba); raw_free(b, bb); }
  } release{a16, bucketA, b16, bucketB};
  launch_matmul_to_bf16(g_stream, a16, A, nA);
  launch_matmul_to_bf16(g_stream, b16, B, nB);
  check_launch("matmul (bf16 conversion)");
  if (batch == 1)
    check_blas(g.gemm_ex(g.handle, opB, opA, (int)N, (int)M, (int)K, &one, b16, R_16BF, ldb, a16, R_16BF, lda, &zero,
                         C, R_32F, ldc, COMPUTE_32F, GEMM_DEFAULT),
               "gemm_ex (bf16)");
  else
    check_blas(g.gemm_sb_ex(g.handle, opB, opA, (int)N, (int)M, (int)K, &one, b16, R_16BF, ldb, strideB, a16, R_16BF,
                            lda, strideA, &zero, C, R_32F, ldc, sC, (int)batch, COMPUTE_32F, GEMM_DEFAULT),
               "gemm_strided_batched_ex (bf16)");
}

}  // namespace apt
