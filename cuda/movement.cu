// Movement kernels (see movement.cuh).
#include "movement.cuh"

namespace {
template <typename I>
__global__ void copy_strided_kernel(uint32_t* __restrict__ out, const uint32_t* __restrict__ x, Strides<2> s, I n,
                                    bool contig) {
  if (contig) {
    APT_GRID_LOOP(i, n, I) out[i] = x[i];
  } else {
    APT_GRID_LOOP(i, n, I) {
      I off[2];
      strided_offsets<2, I>(s, i, off);
      out[off[0]] = x[off[1]];
    }
  }
}

struct PadGeom {
  int ndim;
  int64_t out_shape[APT_MAX_DIMS], in_shape[APT_MAX_DIMS], before[APT_MAX_DIMS];
};

__global__ void pad_kernel(uint32_t* __restrict__ out, const uint32_t* __restrict__ x, PadGeom g, uint32_t value,
                           int64_t n) {
  APT_GRID_LOOP(i, n, int64_t) {
    int64_t t = i, src = 0, mul = 1;
    bool inside = true;
    for (int d = g.ndim - 1; d >= 0; --d) {
      const int64_t c = t % g.out_shape[d] - g.before[d];
      t /= g.out_shape[d];
      if (c < 0 || c >= g.in_shape[d]) inside = false;
      src += c * mul;
      mul *= g.in_shape[d];
    }
    out[i] = inside ? x[src] : value;
  }
}
constexpr int T256 = 256;
}  // namespace

void launch_copy_strided(cudaStream_t st, uint32_t* out, const uint32_t* x, const Strides<2>& s, int64_t n) {
  if (n <= 0) return;
  const bool contig = s.ndim == 1 && s.st[0][0] == 1 && s.st[1][0] == 1;
  if (contig) {
    cudaMemcpyAsync(out, x, n * 4, cudaMemcpyDeviceToDevice, st);
    return;
  }
  if (apt_fits_u32(s, n))
    copy_strided_kernel<uint32_t><<<apt_blocks(n, T256), T256, 0, st>>>(out, x, s, (uint32_t)n, false);
  else
    copy_strided_kernel<int64_t><<<apt_blocks(n, T256), T256, 0, st>>>(out, x, s, n, false);
}

void launch_pad(cudaStream_t st, uint32_t* out, const uint32_t* x, int ndim, const int64_t* out_shape,
                const int64_t* in_shape, const int64_t* before, uint32_t value, int64_t n) {
  if (n <= 0) return;
  PadGeom g;
  g.ndim = ndim;
  for (int d = 0; d < ndim; ++d) { g.out_shape[d] = out_shape[d]; g.in_shape[d] = in_shape[d]; g.before[d] = before[d]; }
  pad_kernel<<<apt_blocks(n, T256), T256, 0, st>>>(out, x, g, value, n);
}
