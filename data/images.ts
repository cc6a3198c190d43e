// Image pipeline (spec §5.4): encoded bytes -> RGB uint8 -> (optional augmentation) -> resize -> float32 CHW.
//   ViLT `pixelbert`: MinMaxResize(shorter, longer) with each side rounded then floored to a multiple of 32,
//     bicubic, ToTensor, normalise mean 0.5 / std 0.5.
//   METER `clip`: resize the shorter side to S (torchvision int() truncation of the longer), bicubic, centre crop
//     S x S (torchvision's round-half-even offsets), ToTensor, CLIP mean/std.
// Resampling, two implementations (`resample` option):
//   'pil' (default): PIL's BICUBIC resample re-implemented exactly (Keys cubic a = -0.5, support widened by the
//     scale when shrinking, coefficients normalised to 22-bit fixed point, horizontal pass then vertical pass,
//     a pass skipped when its size is unchanged): bit-identical to what the reference feeds the model.
//     For speed (same bytes): cached coefficients re-laid as fixed-width zero-padded windows so each pass runs an
//     unrolled kernel; only the output window (the CLIP centre crop) and the rows it reads are computed; the
//     normalisation to float32 CHW is fused into the last pass (transformImage); scratch buffers are reused.
//     test/data/images-fast.test.ts checks all of it against the earlier straightforward implementation.
//   'sharp': libvips in one decode+resize pipeline with kernel 'cubic', which is "straight Catmull-Rom"
//     (libvips/libvips#966), i.e. the same a = -0.5 kernel. Measured against the 'pil' path on blocky noise it
//     is the closest sharp kernel when shrinking (mean |diff| 0.26-0.45 grey levels; lanczos2 0.56-0.70,
//     lanczos3 2.2-3.6, mitchell 3.7-5.1), but when enlarging libvips ignores the kernel and its result is
//     offset by half an output pixel from PIL's centre-aligned grid (mean |diff| ~13 on the same image), and
//     Flickr30k images (500 x 333-375) are enlarged to 384. Faster, so offered for throughput.
// Decoding (sharp) never applies EXIF orientation and drops alpha without compositing, like PIL's
// `.convert('RGB')`; JPEG shrink-on-load is disabled so decoding is never approximate.
// Deliberately not here: batching (collate.ts), augmentation (randaugment.ts), scheduling (loader.ts), tensors.
// Invariants: RGBImage.data is HWC uint8 of length H*W*3; ImageTensor.data is CHW float32 of length 3*H*W with
// shape [3, H, W]; every decode error is an ImageDecodeError naming the caller's file/row/column; no image above
// maxImagePixels() (APTUNE_MAX_IMAGE_PIXELS, default 40 MP) is decoded.
import sharp, { type Sharp } from 'sharp';

/** Packed RGB pixels, row-major HWC: data[(y * width + x) * 3 + c]. */
export interface RGBImage {
  data: Uint8Array; // [H, W, 3]
  width: number;
  height: number;
}

/** A normalised image, channels first. */
export interface ImageTensor {
  data: Float32Array; // [3, H, W]
  shape: [3, number, number];
}

/** Where an image came from, for error messages. */
export interface ImageWhere {
  file?: string;
  row?: number;
  column?: string;
}

export class ImageDecodeError extends Error {
  readonly row?: number;
  readonly column?: string;
  readonly file?: string;
  /** The message without the location prefix. */
  readonly detail: string;
  constructor(where: ImageWhere | undefined, detail: string) {
    super(`${describeWhere(where)}: ${detail}`);
    this.name = 'ImageDecodeError';
    this.detail = detail;
    this.row = where?.row;
    this.column = where?.column;
    this.file = where?.file;
  }
}

export function describeWhere(where: ImageWhere | undefined): string {
  const parts: string[] = [];
  if (where?.file !== undefined) parts.push(`file ${where.file}`);
  if (where?.row !== undefined) parts.push(`row ${where.row}`);
  if (where?.column !== undefined) parts.push(`column '${where.column}'`);
  return parts.length ? `image at ${parts.join(', ')}` : 'image';
}

export interface Normalization {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** ViLT's `inception_normalize`. */
export const VILT_NORMALIZATION: Normalization = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
/** OpenAI CLIP statistics used by METER. */
export const CLIP_NORMALIZATION: Normalization = {
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};

export interface PixelbertTransform {
  kind: 'pixelbert';
  /** Target of the shorter side (ViLT: 384). */
  shorter: number;
  /** Cap on the longer side before flooring; default int(1333 / 800 * shorter) (639 for 384). */
  longer?: number;
  /** Each side is floored to a multiple of this (ViLT patch size 32). */
  multiple?: number;
}

export interface ClipTransform {
  kind: 'clip';
  /** Shorter side and crop size S (METER: 384 VQA/F30K, 288 NLVR2). */
  size: number;
}

export type ImageTransform = PixelbertTransform | ClipTransform;

export function pixelbertTransform(shorter = 384, longer?: number, multiple = 32): PixelbertTransform {
  return { kind: 'pixelbert', shorter, longer, multiple };
}

export function clipTransform(size: number): ClipTransform {
  return { kind: 'clip', size };
}

export function defaultNormalization(t: ImageTransform): Normalization {
  return t.kind === 'pixelbert' ? VILT_NORMALIZATION : CLIP_NORMALIZATION;
}

/** ViLT MinMaxResize output size (width, height) for an input of width x height, floored to `multiple`. */
export function pixelbertSize(
  width: number, height: number, shorter = 384, longer = Math.trunc((1333 / 800) * shorter), multiple = 32,
): { width: number; height: number } {
  checkDims(width, height);
  // Same double-precision arithmetic, in the same order, as the reference MinMaxResize.
  const scale = shorter / Math.min(width, height);
  let newh: number, neww: number;
  if (height < width) { newh = shorter; neww = scale * width; }
  else { newh = scale * height; neww = shorter; }
  if (Math.max(newh, neww) > longer) {
    const s = longer / Math.max(newh, neww);
    newh = newh * s;
    neww = neww * s;
  }
  const h = Math.trunc(newh + 0.5), w = Math.trunc(neww + 0.5);
  return { width: Math.floor(w / multiple) * multiple, height: Math.floor(h / multiple) * multiple };
}

/** torchvision Resize(int S) on a PIL image: shorter side S, longer int(S * long / short); unchanged if short == S. */
export function clipResizeSize(width: number, height: number, size: number): { width: number; height: number } {
  checkDims(width, height);
  const short = Math.min(width, height), long = Math.max(width, height);
  if (short === size) return { width, height };
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? { width: size, height: newLong } : { width: newLong, height: size };
}

/** Python 3 round() on a double: ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** torchvision CenterCrop offsets: int(round((H - S) / 2)), int(round((W - S) / 2)). */
export function centerCropOffsets(width: number, height: number, size: number): { left: number; top: number } {
  if (width < size || height < size) throw new Error(`centerCropOffsets: image ${width}x${height} smaller than crop ${size}`);
  return { left: roundHalfEven((width - size) / 2), top: roundHalfEven((height - size) / 2) };
}

function checkDims(width: number, height: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`image size must be positive integers, got ${width}x${height}`);
  }
}

/** Default limit on width x height of an encoded image (40 megapixels: 120 MB decoded). */
export const DEFAULT_MAX_IMAGE_PIXELS = 40_000_000;

/**
 * The pixel limit checked from the image header before decoding: APTUNE_MAX_IMAGE_PIXELS (read on each call, so
 * it reaches the loader's worker threads too) or DEFAULT_MAX_IMAGE_PIXELS. A larger image is an ImageDecodeError.
 */
export function maxImagePixels(): number {
  const v = process.env.APTUNE_MAX_IMAGE_PIXELS;
  if (v === undefined || v === '') return DEFAULT_MAX_IMAGE_PIXELS;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`APTUNE_MAX_IMAGE_PIXELS must be a positive integer, got '${v}'`);
  return n;
}

// Fail on truncation like PIL (LOAD_TRUNCATED_IMAGES = False) but not on libjpeg warnings PIL tolerates; refuse
// images whose header declares more than maxImagePixels() pixels before decoding them (libvips checks the header).
const sharpInput = () => ({ failOn: 'truncated' as const, sequentialRead: true, limitInputPixels: maxImagePixels() });

function wrapSharpError(where: ImageWhere | undefined, e: unknown): ImageDecodeError {
  if (e instanceof ImageDecodeError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (/exceeds pixel limit/i.test(msg)) return new ImageDecodeError(where, `image larger than the limit of ${maxImagePixels()} pixels (width x height; set APTUNE_MAX_IMAGE_PIXELS to raise it); not decoded`);
  return new ImageDecodeError(where, `cannot decode (corrupt, truncated or unsupported): ${msg}`);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkBytes(bytes: Uint8Array, where: ImageWhere | undefined): void {
  if (!(bytes instanceof Uint8Array)) throw new ImageDecodeError(where, `expected encoded bytes (Uint8Array), got ${typeof bytes}`);
  if (bytes.byteLength === 0) throw new ImageDecodeError(where, 'empty image bytes');
}

/** Decodes to 8-bit RGB: alpha dropped (not composited), grey expanded, no EXIF rotation. */
export async function decodeRGB(bytes: Uint8Array, where?: ImageWhere): Promise<RGBImage> {
  checkBytes(bytes, where);
  try {
    const { data, info } = await sharp(toBuffer(bytes), sharpInput())
      .removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new ImageDecodeError(where, `decoded to ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    throw wrapSharpError(where, e);
  }
}

/** Output size of the transform's resize step for an input size (before any crop). */
export function transformResizeSize(t: ImageTransform, width: number, height: number): { width: number; height: number } {
  return t.kind === 'pixelbert'
    ? pixelbertSize(width, height, t.shorter, t.longer ?? Math.trunc((1333 / 800) * t.shorter), t.multiple ?? 32)
    : clipResizeSize(width, height, t.size);
}

export type Resampler = 'pil' | 'sharp';

/** Keys' cubic convolution kernel with a = -0.5 (PIL's bicubic_filter). */
function bicubicKernel(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);

interface Coeffs {
  bounds: Int32Array; // [out, 2]: first input index, tap count
  kk: Int32Array; // [out, ksize]: fixed-point taps, zero beyond the tap count
  ksize: number;
  /** The same taps as fixed-width windows, built on first use (see windowsOf). */
  win?: Windows;
}

/**
 * PIL's taps re-laid as K = (max tap count) taps per output: window start st[o] = min(xmin, inSize - K) and the
 * taps shifted into place, zeros elsewhere. Zero taps add exactly 0 to the integer sums, so results are
 * unchanged; every window lies inside [0, inSize), and a fixed K lets the passes use unrolled kernels.
 */
interface Windows {
  K: number;
  st: Int32Array; // [out]
  kw: Int32Array; // [out, K]
}

function windowsOf(c: Coeffs, inSize: number): Windows {
  if (c.win) return c.win;
  const { bounds, kk, ksize } = c, out = bounds.length / 2;
  let K = 1;
  for (let o = 0; o < out; o++) K = Math.max(K, bounds[o * 2 + 1]);
  const st = new Int32Array(out), kw = new Int32Array(out * K);
  for (let o = 0; o < out; o++) {
    const xmin = bounds[o * 2], n = bounds[o * 2 + 1], s = Math.min(xmin, inSize - K);
    st[o] = s;
    for (let x = 0; x < n; x++) kw[o * K + xmin - s + x] = kk[o * ksize + x];
  }
  c.win = { K, st, kw };
  return c.win;
}

/** PIL precompute_coeffs + normalize_coeffs_8bpc for one axis: bounds [out, 2] and int32 taps [out, ksize]. */
function pilCoefficients(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2), kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) { const w = bicubicKernel((x + xmin - center + 0.5) * ss); k[x] = w; ww += w; }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

// Coefficients depend only on (inSize, outSize); datasets repeat a handful of sizes. Bounded, cleared when full.
const coeffCache = new Map<string, Coeffs>();
function coefficients(inSize: number, outSize: number): Coeffs {
  const key = `${inSize}>${outSize}`;
  let c = coeffCache.get(key);
  if (!c) {
    if (coeffCache.size >= 256) coeffCache.clear();
    c = pilCoefficients(inSize, outSize);
    coeffCache.set(key, c);
  }
  return c;
}

// Scratch buffers (never returned to callers): the horizontal pass's rows when a vertical pass follows, and one
// output row before the fused normalisation. Module-level, so one per thread; the passes are synchronous.
let scratch = new Uint8Array(0), rowScratch = new Uint8Array(0);
function scratchOf(n: number): Uint8Array {
  if (scratch.length < n) scratch = new Uint8Array(Math.max(n, Math.ceil(scratch.length * 1.25)));
  return scratch;
}

// Fixed-point sums: PIL accumulates in int32 starting from HALF; for 8-bit input and normalised 22-bit taps
// |sum| < 2^31, so the float64 sums below are the same exact integers, and `>> PRECISION_BITS` then the
// Uint8ClampedArray store is PIL's clip8 (the shifted value is an integer, so the store only clamps).

/** Horizontal pass, K > 8: rows [r0, r1), output columns [left, left + cw), dense [(r1 - r0), cw, 3] into dst. */
function hN(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray, K: number): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const kb = xx * K;
      let s0 = HALF, s1 = HALF, s2 = HALF;
      for (let x = 0, o = row + st[xx] * 3; x < K; x++, o += 3) {
        const w = kw[kb + x];
        s0 += src[o] * w; s1 += src[o + 1] * w; s2 += src[o + 2] * w;
      }
      dst[q] = s0 >> PRECISION_BITS; dst[q + 1] = s1 >> PRECISION_BITS; dst[q + 2] = s2 >> PRECISION_BITS;
    }
  }
}

/** Vertical pass for one output row, K > 8: taps at rows b, b + stride, ...; n3 bytes into dst from d. */
function vN(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number, K: number): void {
  for (let i = 0; i < n3; i++) {
    let s = HALF;
    for (let k = 0, o = b + i; k < K; k++, o += stride) s += t[o] * kw[kb + k];
    dst[d + i] = s >> PRECISION_BITS;
  }
}

// ---- unrolled kernels for K = 1..8 taps (generated; identical integer arithmetic to the generic loops) ----
function h1(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const o = row + st[xx] * 3, kb = xx * 1;
      const w0 = kw[kb];
      dst[q] = (HALF + src[o] * w0) >> PRECISION_BITS;
      dst[q + 1] = (HALF + src[o + 1] * w0) >> PRECISION_BITS;
      dst[q + 2] = (HALF + src[o + 2] * w0) >> PRECISION_BITS;
    }
  }
}
function h2(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const o = row + st[xx] * 3, kb = xx * 2;
      const w0 = kw[kb], w1 = kw[kb + 1];
      dst[q] = (HALF + src[o] * w0 + src[o + 3] * w1) >> PRECISION_BITS;
      dst[q + 1] = (HALF + src[o + 1] * w0 + src[o + 4] * w1) >> PRECISION_BITS;
      dst[q + 2] = (HALF + src[o + 2] * w0 + src[o + 5] * w1) >> PRECISION_BITS;
    }
  }
}
function h3(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const o = row + st[xx] * 3, kb = xx * 3;
      const w0 = kw[kb], w1 = kw[kb + 1], w2 = kw[kb + 2];
      dst[q] = (HALF + src[o] * w0 + src[o + 3] * w1 + src[o + 6] * w2) >> PRECISION_BITS;
      dst[q + 1] = (HALF + src[o + 1] * w0 + src[o + 4] * w1 + src[o + 7] * w2) >> PRECISION_BITS;
      dst[q + 2] = (HALF + src[o + 2] * w0 + src[o + 5] * w1 + src[o + 8] * w2) >> PRECISION_BITS;
    }
  }
}
function h4(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const o = row + st[xx] * 3, kb = xx * 4;
      const w0 = kw[kb], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3];
      dst[q] = (HALF + src[o] * w0 + src[o + 3] * w1 + src[o + 6] * w2 + src[o + 9] * w3) >> PRECISION_BITS;
      dst[q + 1] = (HALF + src[o + 1] * w0 + src[o + 4] * w1 + src[o + 7] * w2 + src[o + 10] * w3) >> PRECISION_BITS;
      dst[q + 2] = (HALF + src[o + 2] * w0 + src[o + 5] * w1 + src[o + 8] * w2 + src[o + 11] * w3) >> PRECISION_BITS;
    }
  }
}
function h5(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const o = row + st[xx] * 3, kb = xx * 5;
      const w0 = kw[kb], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3], w4 = kw[kb + 4];
      dst[q] = (HALF + src[o] * w0 + src[o + 3] * w1 + src[o + 6] * w2 + src[o + 9] * w3 + src[o + 12] * w4) >> PRECISION_BITS;
      dst[q + 1] = (HALF + src[o + 1] * w0 + src[o + 4] * w1 + src[o + 7] * w2 + src[o + 10] * w3 + src[o + 13] * w4) >> PRECISION_BITS;
      dst[q + 2] = (HALF + src[o + 2] * w0 + src[o + 5] * w1 + src[o + 8] * w2 + src[o + 11] * w3 + src[o + 14] * w4) >> PRECISION_BITS;
    }
  }
}
function h6(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const o = row + st[xx] * 3, kb = xx * 6;
      const w0 = kw[kb], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3], w4 = kw[kb + 4], w5 = kw[kb + 5];
      dst[q] = (HALF + src[o] * w0 + src[o + 3] * w1 + src[o + 6] * w2 + src[o + 9] * w3 + src[o + 12] * w4 + src[o + 15] * w5) >> PRECISION_BITS;
      dst[q + 1] = (HALF + src[o + 1] * w0 + src[o + 4] * w1 + src[o + 7] * w2 + src[o + 10] * w3 + src[o + 13] * w4 + src[o + 16] * w5) >> PRECISION_BITS;
      dst[q + 2] = (HALF + src[o + 2] * w0 + src[o + 5] * w1 + src[o + 8] * w2 + src[o + 11] * w3 + src[o + 14] * w4 + src[o + 17] * w5) >> PRECISION_BITS;
    }
  }
}
function h7(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const o = row + st[xx] * 3, kb = xx * 7;
      const w0 = kw[kb], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3], w4 = kw[kb + 4], w5 = kw[kb + 5], w6 = kw[kb + 6];
      dst[q] = (HALF + src[o] * w0 + src[o + 3] * w1 + src[o + 6] * w2 + src[o + 9] * w3 + src[o + 12] * w4 + src[o + 15] * w5 + src[o + 18] * w6) >> PRECISION_BITS;
      dst[q + 1] = (HALF + src[o + 1] * w0 + src[o + 4] * w1 + src[o + 7] * w2 + src[o + 10] * w3 + src[o + 13] * w4 + src[o + 16] * w5 + src[o + 19] * w6) >> PRECISION_BITS;
      dst[q + 2] = (HALF + src[o + 2] * w0 + src[o + 5] * w1 + src[o + 8] * w2 + src[o + 11] * w3 + src[o + 14] * w4 + src[o + 17] * w5 + src[o + 20] * w6) >> PRECISION_BITS;
    }
  }
}
function h8(src: Uint8Array, W3: number, r0: number, r1: number, st: Int32Array, kw: Int32Array, left: number, cw: number, dst: Uint8ClampedArray): void {
  let q = 0;
  for (let y = r0; y < r1; y++) {
    const row = y * W3;
    for (let xx = left, e = left + cw; xx < e; xx++, q += 3) {
      const o = row + st[xx] * 3, kb = xx * 8;
      const w0 = kw[kb], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3], w4 = kw[kb + 4], w5 = kw[kb + 5], w6 = kw[kb + 6], w7 = kw[kb + 7];
      dst[q] = (HALF + src[o] * w0 + src[o + 3] * w1 + src[o + 6] * w2 + src[o + 9] * w3 + src[o + 12] * w4 + src[o + 15] * w5 + src[o + 18] * w6 + src[o + 21] * w7) >> PRECISION_BITS;
      dst[q + 1] = (HALF + src[o + 1] * w0 + src[o + 4] * w1 + src[o + 7] * w2 + src[o + 10] * w3 + src[o + 13] * w4 + src[o + 16] * w5 + src[o + 19] * w6 + src[o + 22] * w7) >> PRECISION_BITS;
      dst[q + 2] = (HALF + src[o + 2] * w0 + src[o + 5] * w1 + src[o + 8] * w2 + src[o + 11] * w3 + src[o + 14] * w4 + src[o + 17] * w5 + src[o + 20] * w6 + src[o + 23] * w7) >> PRECISION_BITS;
    }
  }
}
function v1(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number): void {
  const w0 = kw[kb + 0];
  const b0 = b;
  for (let i = 0; i < n3; i++) dst[d + i] = (HALF + t[b0 + i] * w0) >> PRECISION_BITS;
}
function v2(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number): void {
  const w0 = kw[kb + 0], w1 = kw[kb + 1];
  const b0 = b, b1 = b + 1 * stride;
  for (let i = 0; i < n3; i++) dst[d + i] = (HALF + t[b0 + i] * w0 + t[b1 + i] * w1) >> PRECISION_BITS;
}
function v3(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number): void {
  const w0 = kw[kb + 0], w1 = kw[kb + 1], w2 = kw[kb + 2];
  const b0 = b, b1 = b + 1 * stride, b2 = b + 2 * stride;
  for (let i = 0; i < n3; i++) dst[d + i] = (HALF + t[b0 + i] * w0 + t[b1 + i] * w1 + t[b2 + i] * w2) >> PRECISION_BITS;
}
function v4(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number): void {
  const w0 = kw[kb + 0], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3];
  const b0 = b, b1 = b + 1 * stride, b2 = b + 2 * stride, b3 = b + 3 * stride;
  for (let i = 0; i < n3; i++) dst[d + i] = (HALF + t[b0 + i] * w0 + t[b1 + i] * w1 + t[b2 + i] * w2 + t[b3 + i] * w3) >> PRECISION_BITS;
}
function v5(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number): void {
  const w0 = kw[kb + 0], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3], w4 = kw[kb + 4];
  const b0 = b, b1 = b + 1 * stride, b2 = b + 2 * stride, b3 = b + 3 * stride, b4 = b + 4 * stride;
  for (let i = 0; i < n3; i++) dst[d + i] = (HALF + t[b0 + i] * w0 + t[b1 + i] * w1 + t[b2 + i] * w2 + t[b3 + i] * w3 + t[b4 + i] * w4) >> PRECISION_BITS;
}
function v6(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number): void {
  const w0 = kw[kb + 0], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3], w4 = kw[kb + 4], w5 = kw[kb + 5];
  const b0 = b, b1 = b + 1 * stride, b2 = b + 2 * stride, b3 = b + 3 * stride, b4 = b + 4 * stride, b5 = b + 5 * stride;
  for (let i = 0; i < n3; i++) dst[d + i] = (HALF + t[b0 + i] * w0 + t[b1 + i] * w1 + t[b2 + i] * w2 + t[b3 + i] * w3 + t[b4 + i] * w4 + t[b5 + i] * w5) >> PRECISION_BITS;
}
function v7(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number): void {
  const w0 = kw[kb + 0], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3], w4 = kw[kb + 4], w5 = kw[kb + 5], w6 = kw[kb + 6];
  const b0 = b, b1 = b + 1 * stride, b2 = b + 2 * stride, b3 = b + 3 * stride, b4 = b + 4 * stride, b5 = b + 5 * stride, b6 = b + 6 * stride;
  for (let i = 0; i < n3; i++) dst[d + i] = (HALF + t[b0 + i] * w0 + t[b1 + i] * w1 + t[b2 + i] * w2 + t[b3 + i] * w3 + t[b4 + i] * w4 + t[b5 + i] * w5 + t[b6 + i] * w6) >> PRECISION_BITS;
}
function v8(t: Uint8Array, b: number, stride: number, n3: number, kw: Int32Array, kb: number, dst: Uint8ClampedArray, d: number): void {
  const w0 = kw[kb + 0], w1 = kw[kb + 1], w2 = kw[kb + 2], w3 = kw[kb + 3], w4 = kw[kb + 4], w5 = kw[kb + 5], w6 = kw[kb + 6], w7 = kw[kb + 7];
  const b0 = b, b1 = b + 1 * stride, b2 = b + 2 * stride, b3 = b + 3 * stride, b4 = b + 4 * stride, b5 = b + 5 * stride, b6 = b + 6 * stride, b7 = b + 7 * stride;
  for (let i = 0; i < n3; i++) dst[d + i] = (HALF + t[b0 + i] * w0 + t[b1 + i] * w1 + t[b2 + i] * w2 + t[b3 + i] * w3 + t[b4 + i] * w4 + t[b5 + i] * w5 + t[b6 + i] * w6 + t[b7 + i] * w7) >> PRECISION_BITS;
}
const H_KERNELS = [h1, h2, h3, h4, h5, h6, h7, h8];
const V_KERNELS = [v1, v2, v3, v4, v5, v6, v7, v8];
// ---- end of generated kernels ----

/**
 * The exact PIL bicubic resize of `img` to outW x outH, restricted to the output window cw x ch at (left, top)
 * (every output pixel depends only on its own taps, so the window equals resize-then-crop byte for byte), with
 * PIL's pass structure: horizontal pass (skipped when outW == W) over only the rows the vertical pass reads, then
 * vertical pass (skipped when outH == H). Output: HWC uint8 [ch, cw, 3] when `lut` is null, else CHW float32
 * [3, ch, cw] with out[c][p] = lut[c * 256 + byte] (ToTensor + Normalize fused into the last pass).
 */
function resamplePIL(
  img: RGBImage, outW: number, outH: number, left: number, top: number, cw: number, ch: number, lut: Float32Array | null,
): Uint8Array | Float32Array {
  const { width: W, height: H, data: src } = img;
  const needH = outW !== W, needV = outH !== H;
  // Rows [r0, r1) of the horizontally resized image that the window's output rows read.
  let vw: Windows | null = null, r0 = top, r1 = top + ch;
  if (needV) {
    vw = windowsOf(coefficients(H, outH), H);
    r0 = vw.st[top]; r1 = vw.st[top + ch - 1] + vw.K; // window starts are non-decreasing
  }
  // t[off + (y - r0) * stride + x * 3 + c] = horizontally resized pixel (row y, window column x).
  let t: Uint8Array, off: number, stride: number;
  if (needH) {
    const n = (r1 - r0) * cw * 3, hw = windowsOf(coefficients(W, outW), W);
    t = needV || lut ? scratchOf(n) : new Uint8Array(n);
    const dst = new Uint8ClampedArray(t.buffer, t.byteOffset, n);
    if (hw.K <= 8) H_KERNELS[hw.K - 1](src, W * 3, r0, r1, hw.st, hw.kw, left, cw, dst);
    else hN(src, W * 3, r0, r1, hw.st, hw.kw, left, cw, dst, hw.K);
    off = 0; stride = cw * 3;
  } else {
    t = src; stride = W * 3; off = r0 * stride + left * 3;
  }
  const plane = cw * ch, n3 = cw * 3;
  if (!needV && !lut) return needH ? t : copyWindow(t, off, stride, cw, ch);
  const out8 = lut ? null : new Uint8Array(plane * 3);
  const outF = lut ? new Float32Array(3 * plane) : null;
  // Normalised floats are copied as their uint32 bit patterns (same values, no float conversions).
  const o32 = outF ? new Uint32Array(outF.buffer) : null, l32 = lut ? new Uint32Array(lut.buffer, lut.byteOffset, lut.length) : null;
  if (lut && rowScratch.length < n3) rowScratch = new Uint8Array(n3);
  const row8 = lut ? rowScratch : out8!;
  const rowC = new Uint8ClampedArray(row8.buffer, row8.byteOffset, lut ? n3 : plane * 3);
  for (let yy = top; yy < top + ch; yy++) {
    const y = yy - top;
    let r: Uint8Array, ro: number;
    if (needV) {
      const { K, st, kw } = vw!, d = lut ? 0 : y * n3, b = off + (st[yy] - r0) * stride;
      if (K <= 8) V_KERNELS[K - 1](t, b, stride, n3, kw, yy * K, rowC, d);
      else vN(t, b, stride, n3, kw, yy * K, rowC, d, K);
      r = row8; ro = d;
    } else {
      r = t; ro = off + y * stride;
    }
    if (o32) {
      for (let x = 0, p = y * cw, o = ro; x < cw; x++, p++, o += 3) {
        o32[p] = l32![r[o]]; o32[plane + p] = l32![256 + r[o + 1]]; o32[2 * plane + p] = l32![512 + r[o + 2]];
      }
    }
  }
  return out8 ?? outF!;
}

function copyWindow(s: Uint8Array, off: number, stride: number, cw: number, ch: number): Uint8Array {
  const out = new Uint8Array(cw * ch * 3), n = cw * 3;
  for (let y = 0; y < ch; y++) out.set(s.subarray(off + y * stride, off + y * stride + n), y * n);
  return out;
}

function checkOutSize(fn: string, outW: number, outH: number): void {
  if (!(Number.isInteger(outW) && Number.isInteger(outH) && outW > 0 && outH > 0)) {
    throw new Error(`${fn}: output size must be positive integers, got ${outW}x${outH}`);
  }
}

/** PIL Image.resize((outW, outH), BICUBIC) on RGB uint8, bit-exact (horizontal pass, then vertical). */
export function resizeBicubicPIL(img: RGBImage, outW: number, outH: number): RGBImage {
  checkOutSize('resizeBicubicPIL', outW, outH);
  return { data: resamplePIL(img, outW, outH, 0, 0, outW, outH, null) as Uint8Array, width: outW, height: outH };
}

/** A crop window (left, top, width, height) in the resized image. */
export interface CropWindow {
  left: number;
  top: number;
  width: number;
  height: number;
}

function checkWindow(fn: string, outW: number, outH: number, crop: CropWindow): void {
  const { left, top, width, height } = crop;
  if (!([left, top, width, height].every(Number.isInteger) && left >= 0 && top >= 0 && width > 0 && height > 0 &&
    left + width <= outW && top + height <= outH)) {
    throw new Error(`${fn}: window ${width}x${height}+${left}+${top} outside ${outW}x${outH}`);
  }
}

/**
 * cropRGB(resizeBicubicPIL(img, outW, outH), crop) byte for byte, computing only the window
 * (crop defaults to the whole output).
 */
export function resizeCropBicubicPIL(img: RGBImage, outW: number, outH: number, crop?: CropWindow): RGBImage {
  checkOutSize('resizeCropBicubicPIL', outW, outH);
  const c = crop ?? { left: 0, top: 0, width: outW, height: outH };
  checkWindow('resizeCropBicubicPIL', outW, outH, c);
  return { data: resamplePIL(img, outW, outH, c.left, c.top, c.width, c.height, null) as Uint8Array, width: c.width, height: c.height };
}

/**
 * toNormalizedCHW(cropRGB(resizeBicubicPIL(img, outW, outH), crop), norm), identical float for float, in one
 * pass per axis (crop defaults to the whole output).
 */
export function resizeNormalizePIL(img: RGBImage, outW: number, outH: number, norm: Normalization, crop?: CropWindow): ImageTensor {
  checkOutSize('resizeNormalizePIL', outW, outH);
  const c = crop ?? { left: 0, top: 0, width: outW, height: outH };
  checkWindow('resizeNormalizePIL', outW, outH, c);
  const data = resamplePIL(img, outW, outH, c.left, c.top, c.width, c.height, normalizationLUT(norm)) as Float32Array;
  return { data, shape: [3, c.height, c.width] };
}

/** Copies a width x height window of an RGB image. */
export function cropRGB(img: RGBImage, left: number, top: number, width: number, height: number): RGBImage {
  if (left < 0 || top < 0 || left + width > img.width || top + height > img.height) {
    throw new Error(`cropRGB: window ${width}x${height}+${left}+${top} outside ${img.width}x${img.height}`);
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(s, s + width * 3), y * width * 3);
  }
  return { data: out, width, height };
}

/** The centre-crop window of a 'clip' transform in its resized image; undefined (whole image) for 'pixelbert'. */
function transformCrop(t: ImageTransform, size: { width: number; height: number }): CropWindow | undefined {
  if (t.kind !== 'clip') return undefined;
  const { left, top } = centerCropOffsets(size.width, size.height, t.size);
  return { left, top, width: t.size, height: t.size };
}

function checkResizable(t: ImageTransform, width: number, height: number, where: ImageWhere | undefined): { width: number; height: number } {
  const size = transformResizeSize(t, width, height);
  if (size.width <= 0 || size.height <= 0) {
    throw new ImageDecodeError(where, `a ${width}x${height} image resizes to ${size.width}x${size.height} ` +
      `(aspect ratio too extreme for shorter=${t.kind === 'pixelbert' ? t.shorter : t.size})`);
  }
  return size;
}

/**
 * Resizes (and for 'clip' centre-crops) to the transform's size, bicubic. Returns RGB uint8 HWC.
 * `source` is either encoded bytes or already-decoded RGB pixels.
 */
export async function resizeRGB(
  source: Uint8Array | RGBImage, t: ImageTransform, where?: ImageWhere, resample: Resampler = 'pil',
): Promise<RGBImage> {
  if (resample === 'pil') {
    const rgb = source instanceof Uint8Array ? await decodeRGB(source, where) : checkRGB(source, where);
    const size = checkResizable(t, rgb.width, rgb.height, where);
    return resizeCropBicubicPIL(rgb, size.width, size.height, transformCrop(t, size));
  }
  if (resample !== 'sharp') throw new Error(`resizeRGB: unknown resampler '${String(resample)}' (expected 'pil' or 'sharp')`);
  let img: Sharp, width: number, height: number;
  if (source instanceof Uint8Array) {
    checkBytes(source, where);
    try {
      img = sharp(toBuffer(source), sharpInput());
      const meta = await img.metadata();
      if (!meta.width || !meta.height) throw new ImageDecodeError(where, 'no image dimensions in header');
      width = meta.width; height = meta.height;
    } catch (e) {
      throw wrapSharpError(where, e);
    }
  } else {
    const rgb = checkRGB(source, where);
    width = rgb.width; height = rgb.height;
    img = sharp(toBuffer(rgb.data), { raw: { width, height, channels: 3 } });
  }
  const size = checkResizable(t, width, height, where);
  img = img.removeAlpha().toColourspace('srgb');
  if (size.width !== width || size.height !== height) {
    img = img.resize(size.width, size.height, { fit: 'fill', kernel: 'cubic', fastShrinkOnLoad: false });
  }
  let outW = size.width, outH = size.height;
  if (t.kind === 'clip') {
    const { left, top } = centerCropOffsets(size.width, size.height, t.size);
    if (left !== 0 || top !== 0 || size.width !== t.size || size.height !== t.size) {
      img = img.extract({ left, top, width: t.size, height: t.size });
    }
    outW = outH = t.size;
  }
  try {
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== outW || info.height !== outH) {
      throw new ImageDecodeError(where, `resize produced ${info.width}x${info.height}x${info.channels}, expected ${outW}x${outH}x3`);
    }
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: outW, height: outH };
  } catch (e) {
    throw wrapSharpError(where, e);
  }
}

function checkRGB(img: RGBImage, where: ImageWhere | undefined): RGBImage {
  if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 3) {
    throw new ImageDecodeError(where, `RGB buffer has ${img.data.length} bytes, expected ${img.width}x${img.height}x3`);
  }
  return img;
}

const lutCache = new Map<string, Float32Array>();

/** Per-channel lookup table u8 -> float32 with torch's float32 steps: (fl(v / 255) - mean) / std. */
function normalizationLUT(norm: Normalization): Float32Array {
  const key = `${norm.mean.join(',')}|${norm.std.join(',')}`;
  let lut = lutCache.get(key);
  if (!lut) {
    lut = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) {
      const m = Math.fround(norm.mean[c]), s = Math.fround(norm.std[c]);
      if (!(s > 0)) throw new Error(`normalisation std[${c}] must be > 0, got ${norm.std[c]}`);
      for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    }
    lutCache.set(key, lut);
  }
  return lut;
}

/** ToTensor + Normalize: HWC uint8 -> CHW float32 [3, H, W]. */
export function toNormalizedCHW(img: RGBImage, norm: Normalization = VILT_NORMALIZATION): ImageTensor {
  const { width: W, height: H, data } = img;
  const lut = normalizationLUT(norm);
  const out = new Float32Array(3 * H * W);
  const plane = H * W;
  // Float bits moved as uint32 (exactly the same values; no float32 <-> float64 conversions in the loop).
  const o32 = new Uint32Array(out.buffer), l32 = new Uint32Array(lut.buffer, lut.byteOffset, lut.length);
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    o32[i] = l32[data[j]];
    o32[plane + i] = l32[256 + data[j + 1]];
    o32[2 * plane + i] = l32[512 + data[j + 2]];
  }
  return { data: out, shape: [3, H, W] };
}

export interface TransformImageOptions {
  /** Applied to the decoded full-size RGB image before resizing (training: RandAugment). */
  augment?: (img: RGBImage) => RGBImage;
  normalization?: Normalization;
  where?: ImageWhere;
  /** 'pil' (default, bit-exact PIL bicubic) or 'sharp' (libvips, faster; see the file comment). */
  resample?: Resampler;
}

/** The whole per-image pipeline: bytes -> [3, H, W] float32. */
export async function transformImage(
  bytes: Uint8Array, t: ImageTransform, opts: TransformImageOptions = {},
): Promise<ImageTensor> {
  const norm = opts.normalization ?? defaultNormalization(t);
  if ((opts.resample ?? 'pil') === 'pil') {
    // Same bytes as resizeRGB + toNormalizedCHW; resize, crop and normalisation fused (see resamplePIL).
    const decoded = await decodeRGB(bytes, opts.where);
    const rgb = opts.augment ? checkRGB(opts.augment(decoded), opts.where) : decoded;
    const size = checkResizable(t, rgb.width, rgb.height, opts.where);
    return resizeNormalizePIL(rgb, size.width, size.height, norm, transformCrop(t, size));
  }
  let rgb: RGBImage;
  if (opts.augment) {
    const decoded = await decodeRGB(bytes, opts.where);
    rgb = await resizeRGB(opts.augment(decoded), t, opts.where, opts.resample);
  } else {
    rgb = await resizeRGB(bytes, t, opts.where, opts.resample);
  }
  return toNormalizedCHW(rgb, norm);
}
