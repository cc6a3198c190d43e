// RandAugment(n = 2, m = 9) of the reference (spec §5.4) on packed RGB uint8 images, with PIL's semantics:
// ops are drawn with replacement from the 14-op list; each op's value is (m / 30) * (max - min) + min;
// rotate / shear / translate flip their sign with p = 0.5. Geometric ops are PIL `Image.transform(AFFINE)` /
// `Image.rotate` with NEAREST sampling at pixel centres and black fill; the point ops reproduce PIL's integer
// arithmetic (ImageOps LUTs, ImageEnhance blends in float32 with truncation, the SMOOTH 3x3 filter with its copied
// borders, L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16).
// The affine warps are our own loops rather than sharp's `affine`: sharp/libvips maps pixel corners and pads
// differently, and an exact nearest-neighbour inverse map is a few milliseconds per COCO-sized image.
// Deliberately not here: Python's Mersenne Twister (we use rng.ts's seeded PRNG; the draws are not bit-identical
// to the reference's unseeded ones), Cutout/Invert (commented out in the reference list), tensors.
// Speed without changing a byte (checked against per-byte references in randaugment-fast.test.ts): LUT ops map
// four bytes per step through uint32 views, ImageEnhance blends are 256 x 256 tables of the same float32
// expression, SMOOTH tabulates its float32 products and computes each row's 1/13 sum once for two output rows.
// Invariants: ops never modify their input; outputs are new RGBImages of the same size; all randomness comes
// from the Rng passed in, so a seed fixes the result.
import type { RGBImage } from './images.ts';
import type { RandomSource } from './rng.ts';

export const OP_NAMES = [
  'AutoContrast', 'Equalize', 'Rotate', 'Posterize', 'Solarize', 'SolarizeAdd', 'Color', 'Contrast',
  'Brightness', 'Sharpness', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY',
] as const;
export type OpName = (typeof OP_NAMES)[number];

/** Value ranges of the reference augment list (min, max). */
export const OP_RANGES: Record<OpName, readonly [number, number]> = {
  AutoContrast: [0, 1], Equalize: [0, 1], Rotate: [0, 30], Posterize: [0, 4], Solarize: [0, 256],
  SolarizeAdd: [0, 110], Color: [0.1, 1.9], Contrast: [0.1, 1.9], Brightness: [0.1, 1.9], Sharpness: [0.1, 1.9],
  ShearX: [0, 0.3], ShearY: [0, 0.3], TranslateX: [0, 100], TranslateY: [0, 100],
};

/** The value an op receives at magnitude m (double arithmetic in the reference's order). */
export function opValue(op: OpName, m: number): number {
  const [lo, hi] = OP_RANGES[op];
  return (m / 30) * (hi - lo) + lo;
}

function newLike(img: RGBImage): RGBImage {
  return { data: new Uint8Array(img.data.length), width: img.width, height: img.height };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * out[i] = lut[in[i]] (perChannel: lut[c * 256 + in[i]] with c = i % 3). Four bytes per step through uint32
 * views when the input is 4-byte aligned on a little-endian host (byte k of a word = bits 8k..8k+7); the
 * remaining tail bytewise. Byte-identical to the bytewise loop.
 */
function applyLUT(img: RGBImage, lut: Uint8Array, perChannel: boolean): RGBImage {
  const out = newLike(img);
  const s = img.data, d = out.data, n = s.length;
  let i = 0;
  if (LITTLE_ENDIAN && s.byteOffset % 4 === 0) {
    if (perChannel) {
      // 12 bytes = 3 words per step; channels of the bytes: [0 1 2 0] [1 2 0 1] [2 0 1 2].
      const g = Math.floor(n / 12), s32 = new Uint32Array(s.buffer, s.byteOffset, g * 3), d32 = new Uint32Array(d.buffer, 0, g * 3);
      const L0 = lut.subarray(0, 256), L1 = lut.subarray(256, 512), L2 = lut.subarray(512, 768);
      for (let w = 0; w < g * 3; w += 3) {
        const a = s32[w], b = s32[w + 1], c = s32[w + 2];
        d32[w] = L0[a & 255] | (L1[(a >>> 8) & 255] << 8) | (L2[(a >>> 16) & 255] << 16) | (L0[a >>> 24] << 24);
        d32[w + 1] = L1[b & 255] | (L2[(b >>> 8) & 255] << 8) | (L0[(b >>> 16) & 255] << 16) | (L1[b >>> 24] << 24);
        d32[w + 2] = L2[c & 255] | (L0[(c >>> 8) & 255] << 8) | (L1[(c >>> 16) & 255] << 16) | (L2[c >>> 24] << 24);
      }
      i = g * 12;
    } else {
      const g = n >>> 2, s32 = new Uint32Array(s.buffer, s.byteOffset, g), d32 = new Uint32Array(d.buffer, 0, g);
      for (let w = 0; w < g; w++) {
        const a = s32[w];
        d32[w] = lut[a & 255] | (lut[(a >>> 8) & 255] << 8) | (lut[(a >>> 16) & 255] << 16) | (lut[a >>> 24] << 24);
      }
      i = g * 4;
    }
  }
  if (perChannel) for (; i < n; i++) d[i] = lut[(i % 3) * 256 + s[i]];
  else for (; i < n; i++) d[i] = lut[s[i]];
  return out;
}

function histograms(img: RGBImage): Int32Array {
  const h = new Int32Array(768), s = img.data;
  for (let i = 0; i < s.length; i += 3) { h[s[i]]++; h[256 + s[i + 1]]++; h[512 + s[i + 2]]++; }
  return h;
}

/** ImageOps.autocontrast(cutoff=0): per channel, stretch [lo, hi] to [0, 255] with int() truncation. */
export function autoContrast(img: RGBImage): RGBImage {
  const h = histograms(img), lut = new Uint8Array(768);
  for (let c = 0; c < 3; c++) {
    let lo = 0, hi = 255;
    while (lo < 256 && !h[c * 256 + lo]) lo++;
    while (hi >= 0 && !h[c * 256 + hi]) hi--;
    for (let i = 0; i < 256; i++) {
      if (hi <= lo) { lut[c * 256 + i] = i; continue; }
      const scale = 255 / (hi - lo), offset = -lo * scale;
      const v = Math.trunc(i * scale + offset);
      lut[c * 256 + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return applyLUT(img, lut, true);
}

/** ImageOps.equalize: per channel, PIL's step = (N - count of last nonzero bin) // 256 mapping. */
export function equalize(img: RGBImage): RGBImage {
  const h = histograms(img), lut = new Uint8Array(768);
  for (let c = 0; c < 3; c++) {
    const b = c * 256;
    let nonzero = 0, total = 0, last = 0;
    for (let i = 0; i < 256; i++) if (h[b + i]) { nonzero++; total += h[b + i]; last = h[b + i]; }
    const step = nonzero <= 1 ? 0 : Math.floor((total - last) / 256);
    if (!step) { for (let i = 0; i < 256; i++) lut[b + i] = i; continue; }
    let n = Math.floor(step / 2);
    for (let i = 0; i < 256; i++) {
      const v = Math.floor(n / step);
      lut[b + i] = v > 255 ? 255 : v;
      n += h[b + i];
    }
  }
  return applyLUT(img, lut, true);
}

/** ImageOps.posterize: keep the top `bits` bits. */
export function posterize(img: RGBImage, bits: number): RGBImage {
  const b = Math.trunc(bits);
  if (b < 0 || b > 8) throw new Error(`posterize: bits must be in [0, 8], got ${bits}`);
  const mask = ~((1 << (8 - b)) - 1) & 0xff, lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = i & mask;
  return applyLUT(img, lut, false);
}

/** ImageOps.solarize: invert every value >= threshold. */
export function solarize(img: RGBImage, threshold: number): RGBImage {
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = i < threshold ? i : 255 - i;
  return applyLUT(img, lut, false);
}

/** Reference SolarizeAdd: add `addition` (int() of it after numpy's int cast of the pixel), clip, solarize. */
export function solarizeAdd(img: RGBImage, addition: number, threshold = 128): RGBImage {
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    // numpy: int array + float -> float; clip to [0, 255]; astype(uint8) truncates.
    const v = Math.trunc(Math.min(255, Math.max(0, i + addition)));
    lut[i] = v < threshold ? v : 255 - v;
  }
  return applyLUT(img, lut, false);
}

/**
 * PIL Image.blend(degenerate, image, alpha) for uint8, tabulated: T[d * 256 + i] = trunc(fl32(d + fl32(alpha *
 * (i - d)))), clipped (the same expression per entry, so table lookups equal per-pixel evaluation).
 */
function blendTable(factor: number): Uint8Array {
  const a = Math.fround(factor), inRange = a >= 0 && a <= 1, tab = new Uint8Array(65536);
  for (let d = 0, q = 0; d < 256; d++) {
    for (let i = 0; i < 256; i++, q++) {
      const t = Math.fround(d + Math.fround(a * (i - d)));
      tab[q] = inRange ? Math.trunc(t) : t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
    }
  }
  return tab;
}

/** Blend with a per-byte degenerate image. */
function blend(degenerate: Uint8Array, img: RGBImage, factor: number): RGBImage {
  const out = newLike(img), tab = blendTable(factor), s = img.data, d = out.data;
  for (let i = 0; i < s.length; i++) d[i] = tab[(degenerate[i] << 8) | s[i]];
  return out;
}

/** Blend with a constant degenerate value: one 256-entry row of the table. */
function blendConstant(value: number, img: RGBImage, factor: number): RGBImage {
  return applyLUT(img, blendTable(factor).subarray(value << 8, (value << 8) + 256), false);
}

/** PIL convert('L') of one RGB pixel. */
export function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
}

/** ImageEnhance.Color: blend with the greyscale image. */
export function color(img: RGBImage, factor: number): RGBImage {
  const out = newLike(img), tab = blendTable(factor), s = img.data, d = out.data;
  for (let i = 0; i < s.length; i += 3) {
    const r = s[i], g = s[i + 1], b = s[i + 2], l = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16) << 8;
    d[i] = tab[l | r]; d[i + 1] = tab[l | g]; d[i + 2] = tab[l | b];
  }
  return out;
}

/** ImageEnhance.Contrast: blend with a flat image of the rounded mean luma. */
export function contrast(img: RGBImage, factor: number): RGBImage {
  const s = img.data;
  let sum = 0;
  for (let i = 0; i < s.length; i += 3) sum += luma(s[i], s[i + 1], s[i + 2]);
  const mean = Math.trunc(sum / (s.length / 3) + 0.5);
  return blendConstant(mean, img, factor);
}

/** ImageEnhance.Brightness: blend with black. */
export function brightness(img: RGBImage, factor: number): RGBImage {
  return blendConstant(0, img, factor);
}

/**
 * PIL ImageFilter.SMOOTH (3x3 [1 1 1; 1 5 1; 1 1 1] / 13, float32, +0.5 rounding, borders copied).
 * Per output: f(f(f(0.5 + R(y+1)) + M(y)) + R(y-1)), R = f(f(p1[l] + p1[c]) + p1[r]) the all-1/13 row sum
 * (computed once per row, used by two output rows), M the 1/13, 5/13, 1/13 middle row, p = tabulated f32 products.
 */
export function smooth(img: RGBImage): Uint8Array {
  const { width: W, height: H, data: s } = img;
  const d = new Uint8Array(s);
  if (W < 3 || H < 3) return d;
  const k1 = Math.fround(1 / 13), k5 = Math.fround(5 / 13);
  const p1 = new Float32Array(256), p5 = new Float32Array(256);
  for (let v = 0; v < 256; v++) { p1[v] = Math.fround(v * k1); p5[v] = Math.fround(v * k5); }
  const n = W * 3, half = Math.fround(0.5);
  const rowSum = (y: number, r: Float32Array): void => {
    for (let i = 3, o = y * n + 3; i < n - 3; i++, o++) r[i] = Math.fround(Math.fround(p1[s[o - 3]] + p1[s[o]]) + p1[s[o + 3]]);
  };
  let above = new Float32Array(n), mid = new Float32Array(n), below = new Float32Array(n);
  rowSum(0, above); rowSum(1, mid);
  for (let y = 1; y < H - 1; y++) {
    rowSum(y + 1, below);
    for (let i = 3, o = y * n + 3; i < n - 3; i++, o++) {
      const m = Math.fround(Math.fround(p1[s[o - 3]] + p5[s[o]]) + p1[s[o + 3]]);
      const ss = Math.fround(Math.fround(Math.fround(half + below[i]) + m) + above[i]);
      d[o] = ss <= 0 ? 0 : ss >= 255 ? 255 : Math.trunc(ss);
    }
    const t = above; above = mid; mid = below; below = t;
  }
  return d;
}

/** ImageEnhance.Sharpness: blend with the SMOOTH-filtered image. */
export function sharpness(img: RGBImage, factor: number): RGBImage {
  return blend(smooth(img), img, factor);
}

/**
 * PIL Image.transform(size, AFFINE, (a, b, c, d, e, f), NEAREST): output pixel (x, y) reads input
 * (floor(a(x+.5) + b(y+.5) + c), floor(d(x+.5) + e(y+.5) + f)); outside -> 0. Like PIL's ImagingTransformAffine,
 * the source coordinates are accumulated incrementally along rows and columns (same rounding as PIL).
 */
export function affineNearest(img: RGBImage, m: readonly [number, number, number, number, number, number]): RGBImage {
  const { width: W, height: H, data: s } = img;
  const out = newLike(img), d = out.data;
  const [a, b, c, dd, e, f] = m;
  if (b === 0 && dd === 0) {
    // PIL's ImagingScaleAffine path (pure scale + translate): per-axis lookup tables.
    const xs = new Int32Array(W), ys = new Int32Array(H);
    for (let x = 0; x < W; x++) { const v = Math.floor(a * (x + 0.5) + c); xs[x] = v >= 0 && v < W ? v : -1; }
    for (let y = 0; y < H; y++) { const v = Math.floor(e * (y + 0.5) + f); ys[y] = v >= 0 && v < H ? v : -1; }
    // Translations: the valid xs form one run of consecutive source columns, copied row by row in one block.
    let x0 = 0;
    while (x0 < W && xs[x0] < 0) x0++;
    let x1 = x0;
    while (x1 < W && xs[x1] === xs[x0] + (x1 - x0)) x1++;
    let tailInvalid = true;
    for (let x = x1; x < W; x++) if (xs[x] >= 0) { tailInvalid = false; break; }
    if (tailInvalid) {
      if (x1 > x0) {
        for (let y = 0; y < H; y++) {
          const yi = ys[y];
          if (yi < 0) continue;
          const q = (yi * W + xs[x0]) * 3;
          d.set(s.subarray(q, q + (x1 - x0) * 3), (y * W + x0) * 3);
        }
      }
      return out;
    }
    for (let y = 0; y < H; y++) {
      const yi = ys[y];
      if (yi < 0) continue;
      for (let x = 0; x < W; x++) {
        const xi = xs[x];
        if (xi < 0) continue;
        const o = (y * W + x) * 3, q = (yi * W + xi) * 3;
        d[o] = s[q]; d[o + 1] = s[q + 1]; d[o + 2] = s[q + 2];
      }
    }
    return out;
  }
  let xo = c + b * 0.5 + a * 0.5, yo = f + e * 0.5 + dd * 0.5;
  for (let y = 0; y < H; y++) {
    let xx = xo, yy = yo;
    for (let x = 0; x < W; x++) {
      const xi = xx < 0 ? -1 : Math.trunc(xx), yi = yy < 0 ? -1 : Math.trunc(yy);
      if (xi >= 0 && xi < W && yi >= 0 && yi < H) {
        const o = (y * W + x) * 3, q = (yi * W + xi) * 3;
        d[o] = s[q]; d[o + 1] = s[q + 1]; d[o + 2] = s[q + 2];
      }
      xx += a; yy += dd;
    }
    xo += b; yo += e;
  }
  return out;
}

function round15(x: number): number {
  return Math.round(x * 1e15) / 1e15;
}

/** PIL Image.rotate(angle) counter-clockwise about (W/2, H/2), NEAREST, same size, black fill. */
export function rotate(img: RGBImage, degrees: number): RGBImage {
  const ang = ((degrees % 360) + 360) % 360;
  if (ang === 0) return { data: new Uint8Array(img.data), width: img.width, height: img.height };
  const cx = img.width / 2, cy = img.height / 2, r = -(ang * Math.PI) / 180;
  const a = round15(Math.cos(r)), b = round15(Math.sin(r)), d = round15(-Math.sin(r)), e = round15(Math.cos(r));
  const c = a * -cx + b * -cy + cx, f = d * -cx + e * -cy + cy;
  return affineNearest(img, [a, b, c, d, e, f]);
}

export const shearX = (img: RGBImage, v: number): RGBImage => affineNearest(img, [1, v, 0, 0, 1, 0]);
export const shearY = (img: RGBImage, v: number): RGBImage => affineNearest(img, [1, 0, 0, v, 1, 0]);
export const translateX = (img: RGBImage, px: number): RGBImage => affineNearest(img, [1, 0, px, 0, 1, 0]);
export const translateY = (img: RGBImage, px: number): RGBImage => affineNearest(img, [1, 0, 0, 0, 1, px]);

const SIGNED: ReadonlySet<OpName> = new Set<OpName>(['Rotate', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY']);

/** Applies one op with the value it receives (already signed). */
export function applyOp(img: RGBImage, op: OpName, v: number): RGBImage {
  switch (op) {
    case 'AutoContrast': return autoContrast(img);
    case 'Equalize': return equalize(img);
    case 'Rotate': return rotate(img, v);
    case 'Posterize': return posterize(img, Math.trunc(v));
    case 'Solarize': return solarize(img, v);
    case 'SolarizeAdd': return solarizeAdd(img, v, 128);
    case 'Color': return color(img, v);
    case 'Contrast': return contrast(img, v);
    case 'Brightness': return brightness(img, v);
    case 'Sharpness': return sharpness(img, v);
    case 'ShearX': return shearX(img, v);
    case 'ShearY': return shearY(img, v);
    case 'TranslateX': return translateX(img, v);
    case 'TranslateY': return translateY(img, v);
  }
}

export interface RandAugmentStep {
  op: OpName;
  value: number;
}

export class RandAugment {
  readonly n: number;
  readonly m: number;
  readonly ops: readonly OpName[];

  constructor(n = 2, m = 9, ops: readonly OpName[] = OP_NAMES) {
    if (!(Number.isInteger(n) && n >= 0)) throw new Error(`RandAugment: n must be a non-negative integer, got ${n}`);
    if (!(m >= 0 && m <= 30)) throw new Error(`RandAugment: m must be in [0, 30], got ${m}`);
    for (const op of ops) if (!OP_NAMES.includes(op)) throw new Error(`RandAugment: unknown op '${op}'`);
    this.n = n; this.m = m; this.ops = ops;
  }

  /** Draws the ops (with replacement) and their signed values; consumes the same Rng calls as apply(). */
  plan(rng: RandomSource): RandAugmentStep[] {
    const steps: RandAugmentStep[] = [];
    const chosen: OpName[] = [];
    for (let i = 0; i < this.n; i++) chosen.push(this.ops[Math.min(this.ops.length - 1, Math.floor(rng.next() * this.ops.length))]);
    for (const op of chosen) {
      let v = opValue(op, this.m);
      if (SIGNED.has(op) && rng.next() > 0.5) v = -v;
      steps.push({ op, value: v });
    }
    return steps;
  }

  apply(img: RGBImage, rng: RandomSource): RGBImage {
    let out = img;
    for (const s of this.plan(rng)) out = applyOp(out, s.op, s.value);
    return out === img ? { data: new Uint8Array(img.data), width: img.width, height: img.height } : out;
  }
}
