// The device-side error flag (see common.cuh): one unsigned int in device memory, allocated on first use.
// Does not: synchronise. apt_device_error_take() must be called only after the stream was synchronised.
#include "common.cuh"
#include "device_error.cuh"

static unsigned int* g_flag = nullptr;

unsigned int* apt_device_error_ptr() {
  if (!g_flag) {
    if (cudaMalloc(&g_flag, sizeof(unsigned int)) != cudaSuccess) { g_flag = nullptr; return nullptr; }
    cudaMemset(g_flag, 0, sizeof(unsigned int));
  }
  return g_flag;
}

unsigned int apt_device_error_take() {
  if (!g_flag) return 0;
  unsigned int v = 0;
  if (cudaMemcpy(&v, g_flag, sizeof(v), cudaMemcpyDeviceToHost) != cudaSuccess) return 0;
  if (v) cudaMemset(g_flag, 0, sizeof(unsigned int));
  return v;
}
