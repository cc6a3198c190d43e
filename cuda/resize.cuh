// Launchers for resizing [P, H, W] maps (P = product of leading axes), torch semantics (as engine/backends/ref.ts):
// resize_bilinear (align_corners or half-pixel with the source clamped at 0), its backward (atomic scatter of the
// same weights into zeros [P, inH, inW]). (Bicubic resizing is a host function, engine/api.ts resizeBicubic.)
#pragma once
#include "common.cuh"

void launch_resize_bilinear(cudaStream_t st, float* out, const float* x, int64_t P, int64_t H, int64_t W,
                            int64_t OH, int64_t OW, bool align_corners);
void launch_resize_bilinear_backward(cudaStream_t st, float* gx, const float* g, int64_t P, int64_t H, int64_t W,
                                     int64_t OH, int64_t OW, bool align_corners);
