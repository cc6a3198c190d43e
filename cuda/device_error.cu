// The device-side error flag (see common.cuh): one unsigned int in device memory, allocated on first use.
// Does not: synchronise the addon's stream. apt_device_error_take() must be called only after it was synchronised.
// Invariant: the flag is only written in stream order with the kernels that raise it: it is zeroed (and the device
// synchronised) when allocated, and cleared with cudaMemsetAsync on the addon's (non-blocking) stream, never with a
// legacy-stream cudaMemset that a later kernel could overtake (which would lose the error it raised).
#include "common.cuh"
#include "device_error.cuh"

static unsigned int* g_flag = nullptr;

unsigned int* apt_device_error_ptr() {
  if (!g_flag) {
    unsigned int* p = nullptr;
    if (cudaMalloc(&p, sizeof(unsigned int)) != cudaSuccess) return nullptr;
    if (cudaMemset(p, 0, sizeof(unsigned int)) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
      cudaFree(p);
      return nullptr;
    }
    g_flag = p;
  }
  return g_flag;
}

unsigned int apt_device_error_take(cudaStream_t stream) {
  if (!g_flag) return 0;
  unsigned int v = 0;
  if (cudaMemcpy(&v, g_flag, sizeof(v), cudaMemcpyDeviceToHost) != cudaSuccess) return 0;
  if (v) cudaMemsetAsync(g_flag, 0, sizeof(unsigned int), stream);
  return v;
}
