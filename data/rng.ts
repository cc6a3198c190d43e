// The one seeded pseudo-random generator of the data code (mulberry32): table shuffles, synthetic scenes, the
// loader's epoch order, per-item streams (RandAugment draws, IRTR negatives), plus mixSeed to derive item seeds.
// Does not: share state with the engine's Generator (tensor init / dropout); it is for data code only.
// Invariants: the same seed gives the same sequence on every platform (32-bit integer arithmetic only);
// `fork(label)` derives an independent stream from (seed, label), so adding draws to one stream never shifts another;
// `new Rng(seed)` scrambles the seed first, `createRng(seed)` starts the state at the seed itself (the loader's
// streams, whose seeds already come from mixSeed).

/** Uniform [0, 1) source (what RandAugment and the loader's item processing draw from). */
export interface RandomSource {
  next(): number;
}

/** Mixes integers into one 32-bit seed (for per-item streams independent of scheduling). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    let k = Math.trunc(p) >>> 0;
    k = Math.imul(k ^ (k >>> 16), 0x85ebca6b);
    k = Math.imul(k ^ (k >>> 13), 0xc2b2ae35);
    k ^= k >>> 16;
    h = Math.imul(h ^ k, 0x27d4eb2f) + 0x165667b1;
    h = (h ^ (h >>> 15)) >>> 0;
    // include high bits of large integers
    const hi = Math.floor(p / 4294967296) >>> 0;
    if (hi) h = (Math.imul(h ^ hi, 0x85ebca6b) ^ (h >>> 13)) >>> 0;
  }
  return h >>> 0;
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

function hashString(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Rng implements RandomSource {
  private state: number;
  /** `raw`: start the state at the seed itself instead of a scrambled seed (see createRng). */
  constructor(readonly seed: number, raw = false) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    this.state = raw ? seed >>> 0 : mix32((seed | 0) ^ 0x9e3779b9) || 1;
  }

  /** A new generator seeded from this generator's seed and a label (independent of how much this one has drawn). */
  fork(label: string): Rng { return new Rng(mix32(hashString(label, this.seed >>> 0) ^ 0x85ebca6b)); }

  /** Uniform 32-bit unsigned integer (mulberry32). */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number { return this.nextU32() / 4294967296; }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n > 0)) throw new Error(`Rng.int: n must be positive, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('Rng.pick: empty array');
    return xs[this.int(xs.length)];
  }

  /** Fisher-Yates shuffle in place; returns the array. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i]; xs[i] = xs[j]; xs[j] = t;
    }
    return xs;
  }
}

/** A generator whose mulberry32 state starts at `seed` (loader epochs and items, seeded through mixSeed). */
export function createRng(seed: number): Rng {
  return new Rng(seed, true);
}
