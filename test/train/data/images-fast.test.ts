// Randomised equivalence of the fast PIL-exact resize (train/data/images.ts: windowed fixed-point passes,
// fused crop and normalisation) with the previous straightforward implementation, kept here verbatim as the slow
// reference (itself checked bit-identical to Pillow 9.4 in images.test.ts). Sizes cover up- and down-scaling,
// odd and 1-pixel edges, unchanged axes and large shrink factors; contents are noise, flat, edges and extremes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  resizeBicubicPIL, resizeCropBicubicPIL, resizeNormalizePIL, cropRGB, toNormalizedCHW, VILT_NORMALIZATION,
  CLIP_NORMALIZATION, type RGBImage,
} from '../../../train/data/images.ts';

// ---- slow reference: the pre-optimisation implementation ----
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
function referenceResize(img: RGBImage, outW: number, outH: number): RGBImage {
  const { width: W, height: H } = img;
  if (!(Number.isInteger(outW) && Number.isInteger(outH) && outW > 0 && outH > 0)) {
    throw new Error(`referenceResize: output size must be positive integers, got ${outW}x${outH}`);
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

// ---- end of reference ----

let seed = 12345;
function rnd(): number { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; }
function ri(lo: number, hi: number): number { return lo + Math.floor(rnd() * (hi - lo + 1)); }

function randomImage(w: number, h: number): RGBImage {
  const data = new Uint8Array(w * h * 3), kind = ri(0, 3);
  for (let i = 0; i < data.length; i++) {
    data[i] = kind === 0 ? ri(0, 255) // noise
      : kind === 1 ? (rnd() < 0.5 ? 0 : 255) // extremes: maximal overshoot, exercises the clip
        : kind === 2 ? ((Math.floor(i / 3 / 7) & 1) ? 250 : 5) // hard vertical edges
          : 77; // flat
  }
  return { data, width: w, height: h };
}

const same = (a: Uint8Array | Float32Array, b: Uint8Array | Float32Array): boolean =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

function randomSize(): number {
  const r = rnd();
  return r < 0.15 ? 1 : r < 0.3 ? ri(2, 4) : r < 0.85 ? ri(5, 60) : ri(61, 140);
}

test('resizeBicubicPIL equals the reference on 400 random sizes and contents', () => {
  for (let it = 0; it < 400; it++) {
    const w = randomSize(), h = randomSize();
    const img = randomImage(w, h);
    const ow = rnd() < 0.2 ? w : randomSize(), oh = rnd() < 0.2 ? h : randomSize();
    const a = referenceResize(img, ow, oh), b = resizeBicubicPIL(img, ow, oh);
    assert.ok(same(a.data, b.data), `${w}x${h} -> ${ow}x${oh}`);
    assert.equal([b.width, b.height], [ow, oh]);
    assert.ok(b.data !== img.data, 'never aliases the input');
  }
});

test('large shrink factors (wide kernels) and COCO-like pixelbert sizes', () => {
  const cases: [number, number, number, number][] = [[300, 7, 13, 5], [7, 300, 3, 17], [640, 480, 512, 384], [500, 375, 512, 384], [333, 500, 384, 576], [201, 3, 1, 1], [1, 1, 9, 4]];
  for (const [w, h, ow, oh] of cases) {
    const img = randomImage(w, h);
    assert.ok(same(referenceResize(img, ow, oh).data, resizeBicubicPIL(img, ow, oh).data), `${w}x${h} -> ${ow}x${oh}`);
  }
});

test('windowed resize and fused normalisation equal resize + crop + toNormalizedCHW', () => {
  for (let it = 0; it < 250; it++) {
    const w = randomSize(), h = randomSize(), img = randomImage(w, h);
    const ow = rnd() < 0.2 ? w : randomSize(), oh = rnd() < 0.2 ? h : randomSize();
    const cw = ri(1, ow), ch = ri(1, oh), left = ri(0, ow - cw), top = ri(0, oh - ch);
    const crop = { left, top, width: cw, height: ch };
    const ref = cropRGB(referenceResize(img, ow, oh), left, top, cw, ch);
    const win = resizeCropBicubicPIL(img, ow, oh, crop);
    assert.ok(same(ref.data, win.data), `crop ${w}x${h} -> ${ow}x${oh} [${cw}x${ch}+${left}+${top}]`);
    const norm = rnd() < 0.5 ? VILT_NORMALIZATION : CLIP_NORMALIZATION;
    const f = resizeNormalizePIL(img, ow, oh, norm, crop), g = toNormalizedCHW(ref, norm);
    assert.equal(f.shape, [3, ch, cw]);
    assert.ok(same(f.data, g.data), `fused ${w}x${h} -> ${ow}x${oh} [${cw}x${ch}+${left}+${top}]`);
  }
});

test('bad windows and sizes are rejected', () => {
  const img = randomImage(10, 10);
  assert.throws(() => resizeCropBicubicPIL(img, 8, 8, { left: 4, top: 0, width: 5, height: 8 }), /window 5x8\+4\+0 outside 8x8/);
  assert.throws(() => resizeNormalizePIL(img, 0, 8, VILT_NORMALIZATION), /output size must be positive integers/);
});

test.run();
