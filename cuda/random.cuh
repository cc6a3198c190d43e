// Launchers for the counter-based random ops: random_uniform, random_normal, dropout. They reproduce
// engine/random.ts bit-for-bit: Philox4x32-10 keyed by (seed mod 2^32, seed / 2^32), element n = offset + i lives
// in block n / 4, word n mod 4; uniform/normal values are formed in float64 and rounded once to the storage dtype.
// Does not: keep generator state (the host's Generator hands out (seed, offset)).
#pragma once
#include "common.cuh"

void launch_random_uniform(cudaStream_t st, int dtype, void* out, uint64_t seed, uint64_t offset, double low,
                           double high, int64_t n);
void launch_random_normal(cudaStream_t st, int dtype, void* out, uint64_t seed, uint64_t offset, double mean,
                          double std, int64_t n);
// mask = (uniform >= p) ? float32(1 / (1 - p)) : 0, y = x * mask (as the reference backend).
void launch_dropout(cudaStream_t st, float* y, float* mask, const float* x, double p, uint64_t seed,
                    uint64_t offset, int64_t n);
