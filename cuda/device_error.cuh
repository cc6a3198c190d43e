// Host access to the device-side error flag (common.cuh). Call take only after `stream` is synchronised; it clears
// the flag in stream order on that stream.
#pragma once
#include <cuda_runtime_api.h>
unsigned int* apt_device_error_ptr();
unsigned int apt_device_error_take(cudaStream_t stream);
