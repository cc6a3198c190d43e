// The slow reference of the PIL-exact bicubic resize: the straightforward pre-optimisation implementation of
// data/images.ts (PIL's precompute_coeffs + 8bpc fixed point, horizontal then vertical pass), itself checked
// bit-identical to Pillow 9.4 by test/data/images.test.ts. Used as the randomised-equivalence reference in
// test/data/images-fast.test.ts and as the same-run peer of `npm run bench:data`. Never used by the library.
import type { RGBImage } from '../../data/images.ts';

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
export function referenceResize(img: RGBImage, outW: number, outH: number): RGBImage {
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

