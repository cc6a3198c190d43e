// Image pipeline (spec §5.4): encoded bytes -> RGB uint8 -> (optional augmentation) -> resize -> float32 CHW.
//   ViLT `pixelbert`: MinMaxResize(shorter, longer) with each side rounded then floored to a multiple of 32,
//     bicubic, ToTensor, normalise mean 0.5 / std 0.5.
//   METER `clip`: resize the shorter side to S (torchvision int() truncation of the longer), bicubic, centre crop
//     S x S (torchvision's round-half-even offsets), ToTensor, CLIP mean/std.
// Resampling, two implementations (`resample` option):
//   'pil' (default): PIL's BICUBIC resample re-implemented exactly (Keys cubic a = -0.5, support widened by the
//     scale when shrinking, coefficients normalised to 22-bit fixed point, horizontal pass then vertical pass,
//     a pass skipped when its size is unchanged): bit-identical to what the reference feeds the model.
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
// shape [3, H, W]; every decode error is an ImageDecodeError naming the caller's file/row/column.
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

// Fail on truncation like PIL (LOAD_TRUNCATED_IMAGES = False) but not on libjpeg warnings PIL tolerates.
const SHARP_INPUT = { failOn: 'truncated' as const, sequentialRead: true };

function wrapSharpError(where: ImageWhere | undefined, e: unknown): ImageDecodeError {
  if (e instanceof ImageDecodeError) return e;
  const msg = e instanceof Error ? e.message : String(e);
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
    const { data, info } = await sharp(toBuffer(bytes), SHARP_INPUT)
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

/** PIL precompute_coeffs + normalize_coeffs_8bpc for one axis: bounds [out, 2] and int32 taps [out, ksize]. */
function pilCoefficients(inSize: number, outSize: number): { bounds: Int32Array; kk: Int32Array; ksize: number } {
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

function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** PIL Image.resize((outW, outH), BICUBIC) on RGB uint8, bit-exact (horizontal pass, then vertical). */
export function resizeBicubicPIL(img: RGBImage, outW: number, outH: number): RGBImage {
  const { width: W, height: H } = img;
  if (!(Number.isInteger(outW) && Number.isInteger(outH) && outW > 0 && outH > 0)) {
    throw new Error(`resizeBicubicPIL: output size must be positive integers, got ${outW}x${outH}`);
  }
  let src = img.data, sw = W;
  if (outW !== W) {
    const { bounds, kk, ksize } = pilCoefficients(W, outW);
    const tmp = new Uint8Array(outW * H * 3);
    const half = 1 << (PRECISION_BITS - 1);
    for (let y = 0; y < H; y++) {
      const row = y * W * 3, orow = y * outW * 3;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], kb = xx * ksize;
        let s0 = half, s1 = half, s2 = half;
        for (let x = 0; x < xmax; x++) {
          const w = kk[kb + x], o = row + (xmin + x) * 3;
          s0 += src[o] * w; s1 += src[o + 1] * w; s2 += src[o + 2] * w;
        }
        const q = orow + xx * 3;
        tmp[q] = clip8(s0); tmp[q + 1] = clip8(s1); tmp[q + 2] = clip8(s2);
      }
    }
    src = tmp; sw = outW;
  }
  if (outH !== H) {
    const { bounds, kk, ksize } = pilCoefficients(H, outH);
    const out = new Uint8Array(outW * outH * 3);
    const half = 1 << (PRECISION_BITS - 1), stride = sw * 3;
    // Row-wise accumulation (sequential memory); sums are exact integers in float64 and fit int32 as in PIL.
    const acc = new Float64Array(stride);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], kb = yy * ksize, orow = yy * stride;
      acc.fill(half);
      for (let y = 0; y < ymax; y++) {
        const w = kk[kb + y], r = (ymin + y) * stride;
        if (w === 0) continue;
        for (let i = 0; i < stride; i++) acc[i] += src[r + i] * w;
      }
      for (let i = 0; i < stride; i++) out[orow + i] = clip8(acc[i]);
    }
    src = out;
  }
  return { data: src === img.data ? new Uint8Array(src) : src, width: outW, height: outH };
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
    const resized = size.width === rgb.width && size.height === rgb.height ? rgb : resizeBicubicPIL(rgb, size.width, size.height);
    if (t.kind !== 'clip') return resized;
    const { left, top } = centerCropOffsets(size.width, size.height, t.size);
    return cropRGB(resized, left, top, t.size, t.size);
  }
  if (resample !== 'sharp') throw new Error(`resizeRGB: unknown resampler '${String(resample)}' (expected 'pil' or 'sharp')`);
  let img: Sharp, width: number, height: number;
  if (source instanceof Uint8Array) {
    checkBytes(source, where);
    try {
      img = sharp(toBuffer(source), SHARP_INPUT);
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
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    out[i] = lut[data[j]];
    out[plane + i] = lut[256 + data[j + 1]];
    out[2 * plane + i] = lut[512 + data[j + 2]];
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
  let rgb: RGBImage;
  if (opts.augment) {
    const decoded = await decodeRGB(bytes, opts.where);
    rgb = await resizeRGB(opts.augment(decoded), t, opts.where, opts.resample);
  } else {
    rgb = await resizeRGB(bytes, t, opts.where, opts.resample);
  }
  return toNormalizedCHW(rgb, norm);
}
