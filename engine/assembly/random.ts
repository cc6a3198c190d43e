// Counter-based random kernels: Philox4x32-10 exactly as engine/random.ts specifies (uniform, normal, dropout).
// Does not: keep any state; (seed, offset) come from the host's Generator.
// Invariants: element i of a draw depends only on (seed, offset + i); arithmetic after the integer part is float64,
// rounded to float32 at the store, like the reference backend.

@inline function mulhi(a: u32, b: u32): u32 { return <u32>((<u64>a * <u64>b) >> 32); }

// block words written to scratch globals
let w0: u32 = 0, w1: u32 = 0, w2: u32 = 0, w3: u32 = 0;

function philoxBlock(b: u64, k0: u32, k1: u32): void {
  let c0 = <u32>b, c1 = <u32>(b >> 32), c2: u32 = 0, c3: u32 = 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) { k0 += 0x9e3779b9; k1 += 0xbb67ae85; }
    const hi0 = mulhi(0xd2511f53, c0), lo0 = 0xd2511f53 * c0;
    const hi1 = mulhi(0xcd9e8d57, c2), lo1 = 0xcd9e8d57 * c2;
    c0 = hi1 ^ c1 ^ k0; c1 = lo1; c2 = hi0 ^ c3 ^ k1; c3 = lo0;
  }
  w0 = c0; w1 = c1; w2 = c2; w3 = c3;
}

@inline function word(j: u32): u32 { return j == 0 ? w0 : j == 1 ? w1 : j == 2 ? w2 : w3; }

const INV24: f64 = 1.0 / 16777216.0;

/** mode 0: uniform(low = p0, high = p1); 1: normal(mean = p0, std = p1); 2: dropout mask (p = p0) into out and
 *  y = x * mask into y (x, y used only in mode 2). Elements [i0, i1) of the draw (seed, offset). */
export function random_f32(out: usize, mode: i32, seed: f64, offset: f64, p0: f64, p1: f64, x: usize, y: usize, i0: i32, i1: i32): void {
  const s = <u64>seed;
  const k0 = <u32>s, k1 = <u32>(s >> 32);
  const off = <u64>offset;
  let last: u64 = <u64>-1;
  const scale: f64 = mode == 2 ? 1.0 / (1.0 - p0) : 0;
  let i = i0;
  if (mode == 2) {
    // scalar up to a block boundary, then 4 Philox blocks (16 elements) per SIMD step, then the scalar tail
    const head = min<i32>(i1, i0 + <i32>((4 - <i32>((off + <u64>i0) & 3)) & 3));
    dropoutScalar(out, k0, k1, off, p0, scale, x, y, i0, head);
    i = head;
    const end = i + ((i1 - i) & ~15);
    if (end > i) dropoutSimd(out, k0, k1, off, p0, scale, x, y, i, end);
    i = end;
    dropoutScalar(out, k0, k1, off, p0, scale, x, y, i, i1);
    return;
  }
  for (; i < i1; i++) {
    const n = off + <u64>i;
    const b = n >> 2;
    if (b != last) { philoxBlock(b, k0, k1); last = b; }
    let v: f64;
    if (mode == 1) {
      const j = <u32>(n & 2);
      const u1 = <f64>((word(j) >>> 8) + 1) * INV24;
      const u2 = <f64>(word(j + 1) >>> 8) * INV24;
      const r = Math.sqrt(-2.0 * Math.log(u1));
      const t = 2.0 * Math.PI * u2;
      v = p0 + p1 * ((n & 1) == 0 ? r * Math.cos(t) : r * Math.sin(t));
    } else {
      const u = <f64>(word(<u32>(n & 3)) >>> 8) * INV24;
      if (mode == 0) v = p0 + (p1 - p0) * u;
      else v = u >= p0 ? scale : 0;
    }
    store<f32>(out + (<usize>i << 2), <f32>v);
    if (mode == 2) store<f32>(y + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * <f32>v);
  }
}

/** Mode 2 of random_f32 element by element (the specification the SIMD path must match bit for bit). */
function dropoutScalar(out: usize, k0: u32, k1: u32, off: u64, p: f64, scale: f64, x: usize, y: usize, i0: i32, i1: i32): void {
  let last: u64 = <u64>-1;
  for (let i = i0; i < i1; i++) {
    const n = off + <u64>i;
    const b = n >> 2;
    if (b != last) { philoxBlock(b, k0, k1); last = b; }
    const u = <f64>(word(<u32>(n & 3)) >>> 8) * INV24;
    const v: f64 = u >= p ? scale : 0;
    store<f32>(out + (<usize>i << 2), <f32>v);
    store<f32>(y + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * <f32>v);
  }
}

/** Mode 2 for [i0, i1) with off + i0 a multiple of 4 and i1 - i0 a multiple of 16: the 4 lanes run 4 consecutive
 *  Philox blocks; u >= p is decided on the integer (u = k 2^-24 >= p  <=>  k >= ceil(p 2^24), exact), so the
 *  mask and y = x * mask are the scalar path's bits. */
function dropoutSimd(out: usize, k0: u32, k1: u32, off: u64, p: f64, scale: f64, x: usize, y: usize, i0: i32, i1: i32): void {
  const M0 = i32x4.splat(<i32>0xd2511f53), M1 = i32x4.splat(<i32>0xcd9e8d57);
  const thr = i32x4.splat(<i32>(<u32>Math.ceil(p * 16777216.0)));
  const sv = f32x4.splat(<f32>scale), zero = f32x4.splat(0);
  for (let i = i0; i < i1; i += 16) {
    const b = (off + <u64>i) >> 2;
    let c0 = i32x4(<i32>b, <i32>(b + 1), <i32>(b + 2), <i32>(b + 3));
    let c1 = i32x4(<i32>(b >> 32), <i32>((b + 1) >> 32), <i32>((b + 2) >> 32), <i32>((b + 3) >> 32));
    let c2 = i32x4.splat(0), c3 = i32x4.splat(0);
    let ka = k0, kb = k1;
    for (let r = 0; r < 10; r++) {
      if (r > 0) { ka += 0x9e3779b9; kb += 0xbb67ae85; }
      const pl0 = v128.extmul_low<u32>(c0, M0), ph0 = v128.extmul_high<u32>(c0, M0);
      const pl1 = v128.extmul_low<u32>(c2, M1), ph1 = v128.extmul_high<u32>(c2, M1);
      const hi0 = i32x4.shuffle(pl0, ph0, 1, 3, 5, 7), lo0 = i32x4.shuffle(pl0, ph0, 0, 2, 4, 6);
      const hi1 = i32x4.shuffle(pl1, ph1, 1, 3, 5, 7), lo1 = i32x4.shuffle(pl1, ph1, 0, 2, 4, 6);
      c0 = v128.xor(v128.xor(hi1, c1), i32x4.splat(<i32>ka));
      c1 = lo1;
      c2 = v128.xor(v128.xor(hi0, c3), i32x4.splat(<i32>kb));
      c3 = lo0;
    }
    // lanes are blocks, vectors are words: transpose to 4 elements per block
    const t0 = i32x4.shuffle(c0, c1, 0, 4, 1, 5), t1 = i32x4.shuffle(c0, c1, 2, 6, 3, 7);
    const t2 = i32x4.shuffle(c2, c3, 0, 4, 1, 5), t3 = i32x4.shuffle(c2, c3, 2, 6, 3, 7);
    dropoutQuad(i32x4.shuffle(t0, t2, 0, 1, 4, 5), thr, sv, zero, out, x, y, i);
    dropoutQuad(i32x4.shuffle(t0, t2, 2, 3, 6, 7), thr, sv, zero, out, x, y, i + 4);
    dropoutQuad(i32x4.shuffle(t1, t3, 0, 1, 4, 5), thr, sv, zero, out, x, y, i + 8);
    dropoutQuad(i32x4.shuffle(t1, t3, 2, 3, 6, 7), thr, sv, zero, out, x, y, i + 12);
  }
}

@inline function dropoutQuad(words: v128, thr: v128, sv: v128, zero: v128, out: usize, x: usize, y: usize, i: i32): void {
  const keep = i32x4.ge_u(i32x4.shr_u(words, 8), thr);
  const m = v128.bitselect(sv, zero, keep);
  const o = <usize>i << 2;
  v128.store(out + o, m);
  v128.store(y + o, f32x4.mul(v128.load(x + o), m));
}
