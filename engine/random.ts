// Counter-based random numbers shared bit-for-bit by every backend (reference, WebAssembly, CUDA).
// Does not hold tensors; kernels call philox/uniformAt/normalAt, Generator only hands out (seed, offset) ranges.
//
// THE ALGORITHM (other backends must reproduce it exactly):
// * Philox4x32-10 (Salmon et al. 2011, Random123): counter c = (c0, c1, c2, c3), key k = (k0, k1), all uint32.
//   Constants M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85. One round:
//     (hi0, lo0) = M0 * c0 (64-bit product split), (hi1, lo1) = M1 * c2
//     c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
//   10 rounds; the key is bumped (k0 += W0, k1 += W1, mod 2^32) between rounds (9 bumps).
// * A draw is (seed, offset); its element i has global counter n = offset + i (integer, < 2^53).
//   key = (seed mod 2^32, floor(seed / 2^32)); block b = floor(n / 4); counter = (b mod 2^32, floor(b / 2^32), 0, 0);
//   the block's 4 output words are w[0..3].
// * uniform(low, high) element n: u = (w[n mod 4] >>> 8) * 2^-24 in [0, 1) (24 bits, exact in float32);
//   value = low + (high - low) * u evaluated in float64, then rounded to the storage dtype.
// * normal(mean, std) element n (Box-Muller on pairs): j = n & 2 (word pair inside the block),
//   u1 = ((w[j] >>> 8) + 1) * 2^-24 in (0, 1], u2 = (w[j+1] >>> 8) * 2^-24,
//   r = sqrt(-2 ln u1), t = 2 pi u2, z = (n even) ? r cos t : r sin t; value = mean + std * z in float64, then rounded.
//   (Uniform parts are exact everywhere; the normal part is bit-exact wherever float64 log/sqrt/cos/sin agree,
//   which after rounding to float32 is all but vanishingly rare cases; tests compare normals with atol 1e-6.)
// * dropout(p) element n: keep iff uniform(0,1) element n >= p; mask = keep ? 1/(1-p) : 0 (computed in float64).
// * Generator: `next(count)` returns the current offset and advances it by count rounded up to a multiple of 4, so two
//   draws never share a Philox block.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** 32x32 -> 64-bit unsigned product; returns the high word, writes nothing else (low word = Math.imul). */
function mulhi(a: number, b: number): number {
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const t1 = a * bl; // < 2^48, exact
  const t2 = a * bh; // < 2^48, exact
  const t2hi = Math.floor(t2 / 65536);
  const t2lo = t2 - t2hi * 65536;
  const mid = t2lo * 65536 + t1; // < 2^49, exact
  return (t2hi + Math.floor(mid / 4294967296)) >>> 0;
}

/** Philox4x32-10 of counter (c0..c3) and key (k0, k1); writes the 4 output words into `out`. */
export function philox(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array | number[]): void {
  c0 >>>= 0; c1 >>>= 0; c2 >>>= 0; c3 >>>= 0; k0 >>>= 0; k1 >>>= 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

const TWO32 = 4294967296;
const INV24 = 1 / 16777216;

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new Error(`random: seed must be an integer in [0, 2^53), got ${seed}`);
  }
}

/** Calls visit(i, n, w) for elements n = offset + i (i < count) of draw `seed`; w holds n's Philox block (n >> 2). */
function forEachPhiloxElement(seed: number, offset: number, count: number, visit: (i: number, n: number, w: Uint32Array) => void): void {
  checkSeed(seed);
  const k0 = seed >>> 0;
  const k1 = Math.floor(seed / TWO32) >>> 0;
  const w = new Uint32Array(4);
  let lastBlock = -1;
  for (let i = 0; i < count; i++) {
    const n = offset + i;
    const b = Math.floor(n / 4);
    if (b !== lastBlock) {
      philox(b >>> 0, Math.floor(b / TWO32) >>> 0, 0, 0, k0, k1, w);
      lastBlock = b;
    }
    visit(i, n, w);
  }
}

/**
 * Fill `out[0..count)` with the uniform [0,1) values of elements offset .. offset+count-1 of draw `seed`
 * (float64 values, each a multiple of 2^-24).
 */
export function uniformBlock(seed: number, offset: number, count: number, out: Float64Array): void {
  forEachPhiloxElement(seed, offset, count, (i, n, w) => { out[i] = (w[n & 3] >>> 8) * INV24; });
}

/** Standard normal values of elements offset .. offset+count-1 of draw `seed` (float64). */
export function normalBlock(seed: number, offset: number, count: number, out: Float64Array): void {
  forEachPhiloxElement(seed, offset, count, (i, n, w) => {
    const j = n & 2;
    const u1 = ((w[j] >>> 8) + 1) * INV24;
    const u2 = (w[j + 1] >>> 8) * INV24;
    const r = Math.sqrt(-2 * Math.log(u1));
    const t = 2 * Math.PI * u2;
    out[i] = (n & 1) === 0 ? r * Math.cos(t) : r * Math.sin(t);
  });
}

/** Counter-based generator: hands out disjoint (seed, offset) ranges. Same seed -> same numbers on every backend. */
export class Generator {
  readonly seed: number;
  offset = 0;
  constructor(seed: number) {
    checkSeed(seed);
    this.seed = seed;
  }
  /** Reserve `count` elements; returns the offset of the first. */
  next(count: number): { seed: number; offset: number } {
    const offset = this.offset;
    this.offset += Math.ceil(count / 4) * 4;
    return { seed: this.seed, offset };
  }
  /** State for checkpoints. */
  state(): { seed: number; offset: number } {
    return { seed: this.seed, offset: this.offset };
  }
  static fromState(s: { seed: number; offset: number }): Generator {
    const g = new Generator(s.seed);
    g.offset = s.offset;
    return g;
  }
}

let defaultGen = new Generator(0);

/** Reseed the default generator. */
export function manualSeed(seed: number): Generator {
  defaultGen = new Generator(seed);
  return defaultGen;
}

export function defaultGenerator(): Generator {
  return defaultGen;
}
