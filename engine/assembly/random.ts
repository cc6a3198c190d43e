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
  for (let i = i0; i < i1; i++) {
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
