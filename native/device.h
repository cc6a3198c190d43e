// Device state of the addon: the runtime probe, the one stream, the caching allocator and the handle table.
// Does not: know about tensors, dtypes or ops (addon.cc does), nor call cuBLAS (cublas.cc).
// Invariants: handles are never reused (a monotonically increasing id), so a freed or unknown handle is always
// detected and raises; every device pointer handed to a kernel comes from a live handle whose byte range covers
// the access; all work goes to one stream and only download()/synchronize() wait for it.
#pragma once
#include <cuda_runtime_api.h>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace apt {

struct Probe {
  bool available = false;
  std::string reason;  // why CUDA is unavailable (empty when available)
  std::string device;
  std::string compute_capability;
  double total_memory = 0;
  int driver_version = 0;
  int runtime_version = 0;
  std::string cublas;  // path of the loaded cuBLAS
};

// Runs once (later calls return the cached result); never throws.
const Probe& probe();
// Throws "unavailable: ..." unless probe().available.
void require_device();
cudaStream_t stream();

// Throws std::runtime_error("cuda: <what>: <error string> (error N)") when e != cudaSuccess.
void check(cudaError_t e, const char* what);
// After a launch: converts a launch error into an exception.
void check_launch(const char* op);

// Caching allocator (size-bucketed free lists; cudaMalloc only on a miss; on out-of-memory the cache is
// emptied and the allocation retried once).
void* raw_alloc(size_t bytes, size_t* bucket);
void raw_free(void* p, size_t bucket);

double alloc_handle(size_t bytes);
void free_handle(double h);
// Device address of element `elem` (4-byte words) of handle h, checking that [elem, elem + count) lies inside it.
void* handle_ptr(double h, int64_t elem, int64_t count, const char* what);
size_t handle_bytes(double h);

struct MemStats {
  double allocated, reserved, peak_allocated, peak_reserved, handles;
};
MemStats mem_stats();
void reset_peak();
void empty_cache();
void synchronize();

}  // namespace apt
