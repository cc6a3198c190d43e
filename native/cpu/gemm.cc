// Native CPU float32 GEMM of the aptune CPU addon (aptune_cpu.node): batched C = op(A) op(B) on the WebAssembly
// backend's linear memory, in place (the host passes the memory's base and byte addresses inside it; no copy).
// GotoBLAS/BLIS loop order: B packed in KC x NR panels, A in MR x KC panels, a register tile of MR x NR; when a
// thread's columns span at most 8 panels (attention's per-head products), full-height tiles read A in place instead.
// Micro-kernels: AVX-512F 8 x 32 and AVX2+FMA 6 x 16 (each compiled with a target attribute and chosen at run time
// with __builtin_cpu_supports; env APTUNE_NATIVE_ISA=avx2|generic forces a lower one), and a portable scalar one.
// Threads: a fixed pool (the calling thread + T-1 workers sleeping on a condition variable, never spinning, so the
// wasm worker pool that shares the cores is not starved); a call splits C by whole batches, else by column or row
// ranges, so threads never synchronise inside a product.
// Invariants: every C element is accumulated over k in increasing order in blocks of KC by one thread, whatever the
// split, so results are bit-identical across thread counts (not across ISAs). Does not: allocate in the heap, read or
// write outside the [M, N] / [M, K] / [K, N] matrices it is given, or check addresses (the addon entry does).
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define APT_X86 1
#endif

namespace apt_cpu {
namespace {

constexpr int KC = 256;
constexpr int MC_ROWS = 96;  // rows of A per packed block (a multiple of 6 and of 8)

struct Isa {
  const char* name;
  int mr, nr;
  void (*kernel)(int kc, const float* a, long rs, long ks, const float* b, float* c, long ldc, bool acc);
};

// ---- micro-kernels: c[MR x NR] (row stride ldc) = or += sum_k a(r, k) * b[k][c], a(r, k) = a[r * rs + k * ks] --------
// (a packed A panel: rs 1, ks MR; A read in place: rs K, ks 1, or A transposed: rs 1, ks M)

void kernel_generic(int kc, const float* a, long rs, long ks, const float* b, float* c, long ldc, bool acc) {
  float t[4][8] = {};
  for (int k = 0; k < kc; ++k)
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 8; ++j) t[r][j] += a[r * rs + k * ks] * b[k * 8 + j];
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 8; ++j) c[r * ldc + j] = acc ? c[r * ldc + j] + t[r][j] : t[r][j];
}

#ifdef APT_X86
__attribute__((target("avx2,fma"))) void kernel_avx2(int kc, const float* a, long rs, long ks, const float* b, float* c, long ldc, bool acc) {
  const long r2 = 2 * rs, r3 = 3 * rs, r4 = 4 * rs, r5 = 5 * rs;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 x = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a + rs);
    c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a + r2);
    c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a + r3);
    c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a + r4);
    c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a + r5);
    c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    a += ks; b += 16;
  }
  __m256* rows[6][2] = {{&c00, &c01}, {&c10, &c11}, {&c20, &c21}, {&c30, &c31}, {&c40, &c41}, {&c50, &c51}};
  for (int r = 0; r < 6; ++r) {
    float* p = c + r * ldc;
    __m256 v0 = *rows[r][0], v1 = *rows[r][1];
    if (acc) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(p)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(p + 8)); }
    _mm256_storeu_ps(p, v0); _mm256_storeu_ps(p + 8, v1);
  }
}

__attribute__((target("avx512f"))) void kernel_avx512(int kc, const float* a, long rs, long ks, const float* b, float* c, long ldc, bool acc) {
  const long r2 = 2 * rs, r3 = 3 * rs, r4 = 4 * rs, r5 = 5 * rs, r6 = 6 * rs, r7 = 7 * rs;
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
  __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
  __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
  __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    __m512 x = _mm512_set1_ps(a[0]);
    c00 = _mm512_fmadd_ps(x, b0, c00); c01 = _mm512_fmadd_ps(x, b1, c01);
    x = _mm512_set1_ps(a[rs]);
    c10 = _mm512_fmadd_ps(x, b0, c10); c11 = _mm512_fmadd_ps(x, b1, c11);
    x = _mm512_set1_ps(a[r2]);
    c20 = _mm512_fmadd_ps(x, b0, c20); c21 = _mm512_fmadd_ps(x, b1, c21);
    x = _mm512_set1_ps(a[r3]);
    c30 = _mm512_fmadd_ps(x, b0, c30); c31 = _mm512_fmadd_ps(x, b1, c31);
    x = _mm512_set1_ps(a[r4]);
    c40 = _mm512_fmadd_ps(x, b0, c40); c41 = _mm512_fmadd_ps(x, b1, c41);
    x = _mm512_set1_ps(a[r5]);
    c50 = _mm512_fmadd_ps(x, b0, c50); c51 = _mm512_fmadd_ps(x, b1, c51);
    x = _mm512_set1_ps(a[r6]);
    c60 = _mm512_fmadd_ps(x, b0, c60); c61 = _mm512_fmadd_ps(x, b1, c61);
    x = _mm512_set1_ps(a[r7]);
    c70 = _mm512_fmadd_ps(x, b0, c70); c71 = _mm512_fmadd_ps(x, b1, c71);
    a += ks; b += 32;
  }
  __m512* rows[8][2] = {{&c00, &c01}, {&c10, &c11}, {&c20, &c21}, {&c30, &c31}, {&c40, &c41}, {&c50, &c51}, {&c60, &c61}, {&c70, &c71}};
  for (int r = 0; r < 8; ++r) {
    float* p = c + r * ldc;
    __m512 v0 = *rows[r][0], v1 = *rows[r][1];
    if (acc) { v0 = _mm512_add_ps(v0, _mm512_loadu_ps(p)); v1 = _mm512_add_ps(v1, _mm512_loadu_ps(p + 16)); }
    _mm512_storeu_ps(p, v0); _mm512_storeu_ps(p + 16, v1);
  }
}
#endif

const Isa kGeneric{"generic", 4, 8, kernel_generic};
#ifdef APT_X86
const Isa kAvx2{"avx2", 6, 16, kernel_avx2};
const Isa kAvx512{"avx512", 8, 32, kernel_avx512};
#endif

const Isa& pick_isa() {
  const char* force = std::getenv("APTUNE_NATIVE_ISA");
  const std::string f = force ? force : "";
#ifdef APT_X86
  __builtin_cpu_init();
  if (f != "generic" && f != "avx2" && __builtin_cpu_supports("avx512f")) return kAvx512;
  if (f != "generic" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kAvx2;
#endif
  return kGeneric;
}

const Isa& isa() {
  static const Isa& i = pick_isa();
  return i;
}

// ---- packing -----------------------------------------------------------------------------------------------------

/** Rows [i0, i0+mc) x k [p0, p0+kc) of op(A) into MR-row panels dst[panel][k][r]; rows past M are zero. */
void pack_a(const float* a, bool ta, long M, long K, long i0, int mc, long p0, int kc, int MR, float* dst) {
  for (int ip = 0; ip < mc; ip += MR) {
    float* q = dst + (long)ip * kc;
    const int h = (int)std::min<long>(MR, std::min<long>(mc - ip, M - (i0 + ip)));
    for (int k = 0; k < kc; ++k) {
      int r = 0;
      if (ta) {
        const float* s = a + (p0 + k) * M + i0 + ip;
        for (; r < h; ++r) q[r] = s[r];
      } else {
        const float* s = a + (i0 + ip) * K + p0 + k;
        for (; r < h; ++r) q[r] = s[r * K];
      }
      for (; r < MR; ++r) q[r] = 0.f;
      q += MR;
    }
  }
}

/** k [p0, p0+kc) x columns [j0, j0+nc) of op(B) into NR-column panels dst[panel][k][c]; columns past N are zero. */
void pack_b(const float* b, bool tb, long N, long K, long p0, int kc, long j0, long nc, int NR, float* dst) {
  for (long jp = 0; jp < nc; jp += NR) {
    float* q = dst + jp * kc;
    const int w = (int)std::min<long>(NR, std::min<long>(nc - jp, N - (j0 + jp)));
    if (!tb) {
      for (int k = 0; k < kc; ++k) {
        const float* s = b + (p0 + k) * N + j0 + jp;
        int c = 0;
        for (; c < w; ++c) q[c] = s[c];
        for (; c < NR; ++c) q[c] = 0.f;
        q += NR;
      }
    } else {
      for (int c = 0; c < NR; ++c) {
        float* qq = q + c;
        if (c < w) {
          const float* s = b + (j0 + jp + c) * K + p0;
          for (int k = 0; k < kc; ++k) qq[(long)k * NR] = s[k];
        } else {
          for (int k = 0; k < kc; ++k) qq[(long)k * NR] = 0.f;
        }
      }
    }
  }
}

/** C[m0:m1, n0:n1] of one product, single thread, with this thread's packing buffers. */
void gemm_block(const float* a, const float* b, float* c, long M, long N, long K, bool ta, bool tb,
                long m0, long m1, long n0, long n1, std::vector<float>& bufA, std::vector<float>& bufB) {
  const Isa& I = isa();
  const int MR = I.mr, NR = I.nr;
  const long ldc = N;
  if (K == 0) {
    for (long i = m0; i < m1; ++i) std::memset(c + i * ldc + n0, 0, sizeof(float) * (n1 - n0));
    return;
  }
  const long nc = n1 - n0, ncp = (nc + NR - 1) / NR * NR;
  const int mcMax = MC_ROWS / MR * MR;
  if ((long)bufB.size() < (long)KC * ncp) bufB.resize((long)KC * ncp);
  if ((long)bufA.size() < (long)KC * mcMax + MR * NR) bufA.resize((long)KC * mcMax + MR * NR);
  float* pb = bufB.data();
  float* pa = bufA.data();
  float* tmp = pa + (long)KC * mcMax;
  for (long p0 = 0; p0 < K; p0 += KC) {
    const int kc = (int)std::min<long>(KC, K - p0);
    const bool acc = p0 > 0;
    pack_b(b, tb, N, K, p0, kc, n0, nc, NR, pb);
    // few column panels: A is read in place by full-height tiles (packing it would cost about what they compute)
    const bool direct = nc <= 8L * NR;
    for (long i0 = m0; i0 < m1; i0 += mcMax) {
      const int mc = (int)std::min<long>(mcMax, m1 - i0);
      const int tail = mc / MR * MR;  // direct: the partial last row tile is packed (once), the full ones are not
      if (!direct) pack_a(a, ta, M, K, i0, mc, p0, kc, MR, pa);
      else if (tail < mc) pack_a(a, ta, M, K, i0 + tail, mc - tail, p0, kc, MR, pa);
      for (long jp = 0; jp < nc; jp += NR) {
        const float* bp = pb + jp * kc;
        const int w = (int)std::min<long>(NR, nc - jp);
        for (int ip = 0; ip < mc; ip += MR) {
          const int h = std::min(MR, mc - ip);
          const float* ap = pa + (direct ? 0 : (long)ip * kc);
          long rs = 1, ks = MR;
          if (direct && h == MR) {
            ap = ta ? a + p0 * M + i0 + ip : a + (i0 + ip) * K + p0;
            rs = ta ? 1 : K; ks = ta ? M : 1;
          }
          float* cp = c + (i0 + ip) * ldc + n0 + jp;
          if (h == MR && w == NR) {
            I.kernel(kc, ap, rs, ks, bp, cp, ldc, acc);
          } else {
            if (acc)
              for (int r = 0; r < h; ++r) std::memcpy(tmp + r * NR, cp + r * ldc, sizeof(float) * w);
            I.kernel(kc, ap, rs, ks, bp, tmp, NR, acc);
            for (int r = 0; r < h; ++r) std::memcpy(cp + r * ldc, tmp + r * NR, sizeof(float) * w);
          }
        }
      }
    }
  }
}

// ---- thread pool -------------------------------------------------------------------------------------------------

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  /** Runs f(0) here and f(1..n-1) on workers; returns when all are done. */
  void run(int n, const std::function<void(int)>& f) {
    if (n <= 1) { f(0); return; }
    ensure(n - 1);
    {
      std::lock_guard<std::mutex> l(mu_);
      task_ = &f;
      parts_ = n;
      pending_ = n - 1;
      ++gen_;
    }
    cv_.notify_all();
    f(0);
    std::unique_lock<std::mutex> l(mu_);
    done_.wait(l, [&] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  void ensure(int workers) {
    while ((int)threads_.size() < workers) {
      const int id = (int)threads_.size() + 1;
      threads_.emplace_back([this, id] { loop(id); });
    }
  }
  void loop(int id) {
    unsigned long seen = 0;
    for (;;) {
      const std::function<void(int)>* f;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || gen_ != seen; });
        if (stop_) return;
        seen = gen_;
        if (id >= parts_) continue;
        f = task_;
      }
      (*f)(id);
      {
        std::lock_guard<std::mutex> l(mu_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_;
  const std::function<void(int)>* task_ = nullptr;
  int parts_ = 0, pending_ = 0;
  unsigned long gen_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers may outlive static destruction order at exit
  return *p;
}

std::vector<float>& scratch(int t, int which) {
  static std::vector<std::vector<float>> bufs(2 * 64);
  return bufs[2 * (t % 64) + which];
}

}  // namespace

const char* gemm_isa() { return isa().name; }

int vector_lanes() {
#ifdef APT_X86
  if (&isa() == &kAvx512) return 16;
  if (&isa() == &kAvx2) return 8;
#endif
  return 0;
}

void run_parallel(int T, const std::function<void(int)>& f) { pool().run(T, f); }

void gemm_f32(const float* a, const float* b, float* c, const int32_t* offs, long batch, long M, long N, long K,
              bool ta, bool tb, int threads) {
  const Isa& I = isa();
  const int T = std::max(1, std::min(threads, 64));
  auto one = [&](long t, long m0, long m1, long n0, long n1, int tid) {
    gemm_block(a + offs[3 * t], b + offs[3 * t + 1], c + offs[3 * t + 2], M, N, K, ta, tb, m0, m1, n0, n1,
               scratch(tid, 0), scratch(tid, 1));
  };
  if (T == 1) {
    for (long t = 0; t < batch; ++t) one(t, 0, M, 0, N, 0);
    return;
  }
  if (batch >= 2 * T) {  // whole matrices per thread
    pool().run(T, [&](int tid) {
      const long b0 = batch * tid / T, b1 = batch * (tid + 1) / T;
      for (long t = b0; t < b1; ++t) one(t, 0, M, 0, N, tid);
    });
    return;
  }
  // split the columns (in NR units) when there are enough, else the rows (in MR units)
  const long nUnits = (N + I.nr - 1) / I.nr, mUnits = (M + I.mr - 1) / I.mr;
  const bool byCols = nUnits >= 4L * T || nUnits >= mUnits;
  pool().run(T, [&](int tid) {
    for (long t = 0; t < batch; ++t) {
      if (byCols) {
        const long n0 = std::min(N, nUnits * tid / T * I.nr), n1 = std::min(N, nUnits * (tid + 1) / T * I.nr);
        if (n1 > n0) one(t, 0, M, n0, n1, tid);
      } else {
        const long m0 = std::min(M, mUnits * tid / T * I.mr), m1 = std::min(M, mUnits * (tid + 1) / T * I.mr);
        if (m1 > m0) one(t, m0, m1, 0, N, tid);
      }
    }
  });
}

}  // namespace apt_cpu
