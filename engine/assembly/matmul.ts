// Batched float32 matmul C = op(A) op(B) with packed panels and a register tile (GotoBLAS loop order).
// Two drivers: matmul_f32 (batches [b0, b1), one thread each; per-thread scratch of matmul_scratch_bytes(N)) and,
// for large products on several threads, matmul_pack_b + matmul_blocks (B packed once per k-block, split by
// panels; threads then claim 64-row blocks of C from a shared counter, which balances a loaded machine).
// Does not: allocate, or read out of range.
// Invariants: the tile is 4 x 8 in both builds (relaxed FMA or mul+add): measured on Node 20 / Zen 5, 5x8 and 6x8
// tiles spill (V8 keeps fewer than 15 xmm registers free) and run 2-4x slower. Transpose flags are absorbed by
// packing. Every C element is accumulated over k in increasing order in blocks of KC, whichever driver, split or
// thread computes it, so results are bit-identical across thread counts. offs holds per-batch element offsets
// (a, b, c) as i32 triples.

import { fma4 } from './vmath';

const MR: i32 = 4;
const NR: i32 = 8;
const KC: i32 = 512;
const MC: i32 = 64; // multiple of MR; A block 64 x 512 floats = 128 KiB stays in L2, a B panel (16 KiB) in L1

export function matmul_scratch_bytes(ncols: i32): i32 {
  const np = (ncols + NR - 1) / NR;
  return (MC * KC + KC * np * NR + MR * NR) * 4 + 64;
}

// acc: add the tile into C (else overwrite). Not inlined: V8 allocates its 8 accumulators + 2 B vectors + the
// broadcast A value in registers only when the kernel is its own function.
function kernel4(ap: usize, bp: usize, kc: i32, c: usize, ldc: usize, acc: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = bp + (<usize>kc << 5);
  while (bp < end) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = fma4(a, b0, c00); c01 = fma4(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = fma4(a, b0, c10); c11 = fma4(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = fma4(a, b0, c20); c21 = fma4(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = fma4(a, b0, c30); c31 = fma4(a, b1, c31);
    ap += 16; bp += 32;
  }
  if (acc) {
    c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(c + ldc)); c11 = f32x4.add(c11, v128.load(c + ldc, 16));
    c20 = f32x4.add(c20, v128.load(c + 2 * ldc)); c21 = f32x4.add(c21, v128.load(c + 2 * ldc, 16));
    c30 = f32x4.add(c30, v128.load(c + 3 * ldc)); c31 = f32x4.add(c31, v128.load(c + 3 * ldc, 16));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
  v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
  v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
}

@inline function tile(ap: usize, bp: usize, kc: i32, c: usize, ldc: usize, acc: bool): void {
  kernel4(ap, bp, kc, c, ldc, acc);
}

/** Pack rows [i0, i0+mc) x k [p0, p0+kc) of op(A) into MR-row panels: dst[panel][k][r]; rows past M are 0. */
function packA(a: usize, transA: i32, M: i32, K: i32, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  for (let ip = 0; ip < mc; ip += MR) {
    const panel = dst + (<usize>(ip * kc) << 2);
    const i = i0 + ip;
    const h = min(MR, min(mc - ip, M - i));
    if (h == MR && transA) { // A stored [K, M]: the panel's 4 values at each k are contiguous
      let s = a + (<usize>(p0 * M + i) << 2), q = panel;
      const step = <usize>M << 2;
      for (let k = 0; k < kc; k++) { v128.store(q, v128.load(s)); q += 16; s += step; }
      continue;
    }
    if (h == MR) { // A stored [M, K]: 4x4 transposes
      const r0 = a + (<usize>(i * K + p0) << 2), ld = <usize>K << 2;
      let q = panel, k = 0;
      for (; k + 4 <= kc; k += 4) {
        const o = <usize>k << 2;
        const x0 = v128.load(r0 + o), x1 = v128.load(r0 + ld + o), x2 = v128.load(r0 + 2 * ld + o), x3 = v128.load(r0 + 3 * ld + o);
        const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5), t1 = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
        const t2 = i32x4.shuffle(x2, x3, 0, 4, 1, 5), t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
        v128.store(q, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
        v128.store(q, i32x4.shuffle(t0, t2, 2, 3, 6, 7), 16);
        v128.store(q, i32x4.shuffle(t1, t3, 0, 1, 4, 5), 32);
        v128.store(q, i32x4.shuffle(t1, t3, 2, 3, 6, 7), 48);
        q += 64;
      }
      for (; k < kc; k++) {
        const o = <usize>k << 2;
        store<f32>(q, load<f32>(r0 + o)); store<f32>(q, load<f32>(r0 + ld + o), 4);
        store<f32>(q, load<f32>(r0 + 2 * ld + o), 8); store<f32>(q, load<f32>(r0 + 3 * ld + o), 12);
        q += 16;
      }
      continue;
    }
    for (let r = 0; r < MR; r++) { // edge panel
      let q = panel + (<usize>r << 2);
      if (r >= h) {
        for (let k = 0; k < kc; k++) { store<f32>(q, 0); q += <usize>(MR << 2); }
      } else if (transA) {
        let s = a + (<usize>(p0 * M + i + r) << 2);
        const step = <usize>M << 2;
        for (let k = 0; k < kc; k++) { store<f32>(q, load<f32>(s)); q += <usize>(MR << 2); s += step; }
      } else {
        let s = a + (<usize>((i + r) * K + p0) << 2);
        for (let k = 0; k < kc; k++) { store<f32>(q, load<f32>(s)); q += <usize>(MR << 2); s += 4; }
      }
    }
  }
}

/** Pack k [p0, p0+kc) x columns [j0, j0+nc) of op(B) into 8-column panels: dst[panel][k][c]; columns past N are 0. */
function packB(b: usize, transB: i32, N: i32, K: i32, p0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  for (let jp = 0; jp < nc; jp += NR) {
    const panel = dst + (<usize>(jp * kc) << 2);
    const j = j0 + jp;
    const w = min(NR, min(nc - jp, N - j));
    if (!transB && w == NR) { // B stored [K, N]: 8 contiguous floats per k
      let s = b + (<usize>(p0 * N + j) << 2);
      let q = panel;
      const step = <usize>N << 2;
      for (let k = 0; k < kc; k++) {
        v128.store(q, v128.load(s)); v128.store(q, v128.load(s, 16), 16);
        q += 32; s += step;
      }
      continue;
    }
    for (let c = 0; c < NR; c++) {
      let q = panel + (<usize>c << 2);
      if (c >= w) {
        for (let k = 0; k < kc; k++) { store<f32>(q, 0); q += 32; }
      } else if (transB) { // B stored [N, K]
        let s = b + (<usize>((j + c) * K + p0) << 2);
        for (let k = 0; k < kc; k++) { store<f32>(q, load<f32>(s)); q += 32; s += 4; }
      } else {
        let s = b + (<usize>(p0 * N + j + c) << 2);
        const step = <usize>N << 2;
        for (let k = 0; k < kc; k++) { store<f32>(q, load<f32>(s)); q += 32; s += step; }
      }
    }
  }
}

/** One packed A block [mc, kc] times the packed B panels of nc columns into C at c0 (row stride ldc bytes):
 *  full 4 x 8 tiles in place, edge tiles through tmp [MR, NR] (loaded from C first when acc). Shared by both drivers. */
@inline function macroBlock(packedA: usize, packedB: usize, mc: i32, nc: i32, kc: i32, c0: usize, ldc: usize, acc: bool, tmp: usize): void {
  for (let jp = 0; jp < nc; jp += NR) {
    const bp = packedB + (<usize>(jp * kc) << 2);
    const w = min(NR, nc - jp);
    for (let ip = 0; ip < mc; ip += MR) {
      const ap = packedA + (<usize>(ip * kc) << 2);
      const h = min(MR, mc - ip);
      const cp = c0 + <usize>ip * ldc + (<usize>jp << 2);
      if (h == MR && w == NR) {
        tile(ap, bp, kc, cp, ldc, acc);
      } else {
        if (acc) {
          for (let r = 0; r < h; r++) for (let q = 0; q < w; q++)
            store<f32>(tmp + (<usize>(r * NR + q) << 2), load<f32>(cp + <usize>r * ldc + (<usize>q << 2)));
        }
        tile(ap, bp, kc, tmp, 32, acc);
        for (let r = 0; r < h; r++) for (let q = 0; q < w; q++)
          store<f32>(cp + <usize>r * ldc + (<usize>q << 2), load<f32>(tmp + (<usize>(r * NR + q) << 2)));
      }
    }
  }
}

/** C[m0:m1, n0:n1] of one matrix product; C is [M, N] row-major. */
function gemm(a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, transA: i32, transB: i32,
  m0: i32, m1: i32, n0: i32, n1: i32, scratch: usize): void {
  const ldc = <usize>N << 2;
  if (K == 0) {
    for (let i = m0; i < m1; i++) memory.fill(c + <usize>i * ldc + (<usize>n0 << 2), 0, <usize>(n1 - n0) << 2);
    return;
  }
  const nc = n1 - n0;
  const packedA = (scratch + 15) & ~(<usize>15);
  const packedB = packedA + (<usize>(MC * KC) << 2);
  const tmp = packedB + (<usize>(KC * ((nc + NR - 1) / NR) * NR) << 2);
  for (let p0 = 0; p0 < K; p0 += KC) {
    const kc = min(KC, K - p0);
    const acc = p0 > 0;
    packB(b, transB, N, K, p0, kc, n0, nc, packedB);
    for (let i0 = m0; i0 < m1; i0 += MC) {
      const mc = min(MC, m1 - i0);
      packA(a, transA, M, K, i0, mc, p0, kc, packedA);
      macroBlock(packedA, packedB, mc, nc, kc, c + <usize>i0 * ldc + (<usize>n0 << 2), ldc, acc, tmp);
    }
  }
}

// ---- shared-B path for large single products: B is packed once per k-block (split by panels), then threads
// claim MC-row blocks of C from a shared counter (dynamic balance on a loaded machine; A is packed once).

export function matmul_kc(): i32 { return KC; }
export function matmul_mc(): i32 { return MC; }

/** Pack k-block [p0, p0+kc) of op(B), panels [jp0, jp1) (in units of 8 columns), into dst (all N columns' layout). */
export function matmul_pack_b(b: usize, transB: i32, N: i32, K: i32, p0: i32, kc: i32, jp0: i32, jp1: i32, dst: usize): void {
  const j0 = jp0 * NR, j1 = min(N, jp1 * NR);
  if (j1 > j0) packB(b, transB, N, K, p0, kc, j0, j1 - j0, dst + (<usize>(j0 * kc) << 2));
}

@inline function claim(counter: usize): i32 {
  if (ASC_FEATURE_THREADS) return atomic.add<i32>(counter, 1);
  const c = load<i32>(counter);
  store<i32>(counter, c + 1);
  return c;
}

/** matmul_pack_b over chunks of `chunk` panels claimed from *counter (all panels of N). */
export function matmul_pack_b_claim(b: usize, transB: i32, N: i32, K: i32, p0: i32, kc: i32, counter: usize, chunk: i32, dst: usize): void {
  const np = (N + NR - 1) / NR;
  const nch = (np + chunk - 1) / chunk;
  for (let c = claim(counter); c < nch; c = claim(counter)) matmul_pack_b(b, transB, N, K, p0, kc, c * chunk, min(np, (c + 1) * chunk), dst);
}

/** k-block [p0, p0+kc) of C += op(A) B (acc) or C = (first block), over row blocks claimed from *counter until
 *  nBlocks are taken; scratchA holds MC x KC floats + a tile (per thread). */
export function matmul_blocks(a: usize, transA: i32, M: i32, N: i32, K: i32, p0: i32, kc: i32, acc: i32,
  packedB: usize, c: usize, counter: usize, scratchA: usize): void {
  const ldc = <usize>N << 2;
  const nBlocks = (M + MC - 1) / MC;
  const packedA = (scratchA + 15) & ~(<usize>15);
  const tmp = packedA + (<usize>(MC * KC) << 2);
  for (let blk = claim(counter); blk < nBlocks; blk = claim(counter)) {
    const i0 = blk * MC;
    const mc = min(MC, M - i0);
    packA(a, transA, M, K, i0, mc, p0, kc, packedA);
    macroBlock(packedA, packedB, mc, N, kc, c + <usize>i0 * ldc, ldc, acc != 0, tmp);
  }
}

/** Batches [b0, b1), each C[m0:m1, n0:n1]; offs: i32 triples of element offsets per batch. */
export function matmul_f32(a: usize, b: usize, c: usize, offs: usize, b0: i32, b1: i32, M: i32, N: i32, K: i32,
  transA: i32, transB: i32, m0: i32, m1: i32, n0: i32, n1: i32, scratch: usize): void {
  for (let t = b0; t < b1; t++) {
    const o = offs + (<usize>(t * 3) << 2);
    gemm(a + (<usize>load<i32>(o) << 2), b + (<usize>load<i32>(o, 4) << 2), c + (<usize>load<i32>(o, 8) << 2),
      M, N, K, transA, transB, m0, m1, n0, n1, scratch);
  }
}

/** Benchmark probe (bench/engine.ts): n iterations of 8 independent f32x4 multiply-adds (fma4: FMA in the relaxed
 *  build, mul + add otherwise) with no memory traffic; 64 flops per iteration. Returns a value so nothing is elided. */
export function simd_peak(n: i32, seed: f32): f32 {
  const b = f32x4.splat(0.999999), c = f32x4.splat(1e-7);
  let a0 = f32x4.splat(seed), a1 = f32x4.splat(seed + 1), a2 = f32x4.splat(seed + 2), a3 = f32x4.splat(seed + 3);
  let a4 = f32x4.splat(seed + 4), a5 = f32x4.splat(seed + 5), a6 = f32x4.splat(seed + 6), a7 = f32x4.splat(seed + 7);
  for (let i = 0; i < n; i++) {
    a0 = fma4(a0, b, c); a1 = fma4(a1, b, c); a2 = fma4(a2, b, c); a3 = fma4(a3, b, c);
    a4 = fma4(a4, b, c); a5 = fma4(a5, b, c); a6 = fma4(a6, b, c); a7 = fma4(a7, b, c);
  }
  return f32x4.extract_lane(f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7))), 0);
}
