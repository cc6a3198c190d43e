// Device state (see device.h).
#include "device.h"
#include "cublas.h"
#include "device_error.cuh"

#include <cmath>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace apt {

namespace {
Probe g_probe;
bool g_probed = false;
cudaStream_t g_stream = nullptr;

struct Buf {
  void* ptr;
  size_t bytes;   // requested
  size_t bucket;  // allocated
};
std::unordered_map<uint64_t, Buf> g_handles;
uint64_t g_next_handle = 1;
std::multimap<size_t, void*> g_free;  // bucket size -> cached block
double g_allocated = 0, g_reserved = 0, g_peak_allocated = 0, g_peak_reserved = 0;

std::string err_str(cudaError_t e) {
  return std::string(cudaGetErrorString(e)) + " (error " + std::to_string((int)e) + ")";
}

size_t bucket_of(size_t bytes) {
  // 512-byte granularity up to 1 MiB; above, 4 buckets per power of two (<= 25% slack)
  if (bytes <= (1u << 20)) return ((bytes + 511) / 512) * 512;
  size_t p = 1;
  while (p < bytes) p <<= 1;
  const size_t q = p >> 3;  // p/2 .. p in steps of p/8
  size_t b = p >> 1;
  while (b < bytes) b += q;
  return b;
}
}  // namespace

const Probe& probe() {
  if (g_probed) return g_probe;
  g_probed = true;
  Probe& p = g_probe;
  cudaRuntimeGetVersion(&p.runtime_version);
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  cudaDriverGetVersion(&p.driver_version);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    if (e == cudaErrorInsufficientDriver) {
      p.reason = p.driver_version == 0 ? "no CUDA driver (cudaGetDeviceCount: " + err_str(e) + ")"
                                       : "CUDA driver too old for runtime " + std::to_string(p.runtime_version) +
                                             " (driver " + std::to_string(p.driver_version) + ", " + err_str(e) + ")";
    } else if (e == cudaErrorNoDevice) {
      p.reason = "no CUDA device (" + err_str(e) + ")";
    } else {
      p.reason = "CUDA initialisation failed: " + err_str(e);
    }
    return p;
  }
  if (n == 0) { p.reason = "no CUDA device (cudaGetDeviceCount returned 0)"; return p; }
  cudaDeviceProp prop;
  if ((e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess || (e = cudaSetDevice(0)) != cudaSuccess) {
    cudaGetLastError();
    p.reason = "CUDA device 0 unusable: " + err_str(e);
    return p;
  }
  p.device = prop.name;
  p.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  p.total_memory = (double)prop.totalGlobalMem;
  if (prop.major < 8) {
    p.reason = "CUDA device " + p.device + " has compute capability " + p.compute_capability +
               "; the addon is built for sm_80 and sm_90";
    return p;
  }
  if ((e = cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking)) != cudaSuccess) {
    cudaGetLastError();
    p.reason = "cudaStreamCreate failed: " + err_str(e);
    return p;
  }
  std::string why;
  if (!cublas_init(g_stream, &p.cublas, &why)) {
    p.reason = "cuBLAS not found or unusable: " + why;
    return p;
  }
  if (!apt_device_error_ptr()) {
    cudaGetLastError();
    p.reason = "could not allocate the device error flag";
    return p;
  }
  p.available = true;
  return p;
}

void require_device() {
  const Probe& p = probe();
  if (!p.available) throw std::runtime_error("unavailable: " + p.reason);
}

cudaStream_t stream() { return g_stream; }

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("cuda: ") + what + ": " + err_str(e));
  }
}

void check_launch(const char* op) { check(cudaGetLastError(), op); }

void* raw_alloc(size_t bytes, size_t* bucket) {
  const size_t b = bucket_of(bytes == 0 ? 1 : bytes);
  *bucket = b;
  auto it = g_free.find(b);
  if (it != g_free.end()) {
    void* p = it->second;
    g_free.erase(it);
    return p;
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, b);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    empty_cache();
    e = cudaMalloc(&p, b);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("cuda: alloc of " + std::to_string(bytes) + " bytes failed: " + err_str(e) +
                             " (live " + std::to_string((size_t)g_allocated) + " bytes)");
  }
  g_reserved += (double)b;
  if (g_reserved > g_peak_reserved) g_peak_reserved = g_reserved;
  return p;
}

void raw_free(void* p, size_t bucket) {
  // Stream-ordered reuse: every later use of this block is enqueued on the same stream after the last use.
  g_free.emplace(bucket, p);
}

double alloc_handle(size_t bytes) {
  require_device();
  Buf b{nullptr, bytes, 0};
  if (bytes > 0) b.ptr = raw_alloc(bytes, &b.bucket);
  const uint64_t h = g_next_handle++;
  g_handles.emplace(h, b);
  g_allocated += (double)bytes;
  if (g_allocated > g_peak_allocated) g_peak_allocated = g_allocated;
  return (double)h;
}

static std::unordered_map<uint64_t, Buf>::iterator find_handle(double h, const char* what) {
  if (!(h >= 1) || h != std::floor(h) || h > 9007199254740991.0)
    throw std::runtime_error(std::string("cuda: ") + what + ": invalid handle " + std::to_string(h));
  auto it = g_handles.find((uint64_t)h);
  if (it == g_handles.end())
    throw std::runtime_error(std::string("cuda: ") + what + ": handle " + std::to_string((uint64_t)h) +
                             " is freed or unknown");
  return it;
}

void free_handle(double h) {
  auto it = find_handle(h, "free");
  if (it->second.ptr) raw_free(it->second.ptr, it->second.bucket);
  g_allocated -= (double)it->second.bytes;
  g_handles.erase(it);
}

void* handle_ptr(double h, int64_t elem, int64_t count, const char* what) {
  auto it = find_handle(h, what);
  const Buf& b = it->second;
  if (elem < 0 || count < 0 || (uint64_t)(elem + count) * 4 > b.bytes)
    throw std::runtime_error(std::string("cuda: ") + what + ": access [" + std::to_string(elem) + ", " +
                             std::to_string(elem + count) + ") outside handle " + std::to_string((uint64_t)h) +
                             " of " + std::to_string(b.bytes / 4) + " elements");
  return (char*)b.ptr + elem * 4;
}

size_t handle_bytes(double h) { return find_handle(h, "bytes")->second.bytes; }

MemStats mem_stats() {
  return MemStats{g_allocated, g_reserved, g_peak_allocated, g_peak_reserved, (double)g_handles.size()};
}

void reset_peak() {
  g_peak_allocated = g_allocated;
  g_peak_reserved = g_reserved;
}

void empty_cache() {
  if (!g_probe.available) return;
  cudaStreamSynchronize(g_stream);
  for (auto& kv : g_free) {
    cudaFree(kv.second);
    g_reserved -= (double)kv.first;
  }
  g_free.clear();
}

void synchronize() {
  require_device();
  check(cudaStreamSynchronize(g_stream), "synchronize");
  const unsigned int flags = apt_device_error_take(g_stream);
  if (flags & 1u) throw std::runtime_error("cuda: an index kernel (index_select/index_add/gather/scatter_add) met an index out of range; affected outputs hold NaN/0");
  if (flags & 2u) throw std::runtime_error("cuda: cross_entropy (or its backward) met a label outside [0, C) that is not ignoreIndex; that row's loss / gradient is NaN");
  if (flags & 4u) throw std::runtime_error("cuda: div: int32 division by zero (the quotient was written as 0)");
}

}  // namespace apt
