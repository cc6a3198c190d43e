// Randomised equivalence of the optimised RandAugment point ops (data/randaugment.ts: word-at-a-time LUTs,
// tabulated blends, row-shared SMOOTH sums) with the previous straightforward per-byte implementations, kept
// here as the slow reference (those were checked bit-identical to PIL on the golden images in
// randaugment.test.ts). Covers odd lengths (LUT tails), unaligned input views (the bytewise fallback), 1- and
// 2-pixel edges (SMOOTH copies borders) and blend factors inside and outside [0, 1].
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  autoContrast, equalize, posterize, solarize, solarizeAdd, color, contrast, brightness, sharpness, smooth, luma,
  affineNearest, translateX, translateY,
} from '../../data/randaugment.ts';
import type { RGBImage } from '../../data/images.ts';

// ---- slow reference: the pre-optimisation implementations ----
function refLUT(img: RGBImage, lut: Uint8Array, perChannel: boolean): Uint8Array {
  const s = img.data, d = new Uint8Array(s.length);
  if (perChannel) for (let i = 0; i < s.length; i += 3) { d[i] = lut[s[i]]; d[i + 1] = lut[256 + s[i + 1]]; d[i + 2] = lut[512 + s[i + 2]]; }
  else for (let i = 0; i < s.length; i++) d[i] = lut[s[i]];
  return d;
}
function refHist(img: RGBImage): Float64Array {
  const h = new Float64Array(768), s = img.data;
  for (let i = 0; i < s.length; i += 3) { h[s[i]]++; h[256 + s[i + 1]]++; h[512 + s[i + 2]]++; }
  return h;
}
function refAutoContrast(img: RGBImage): Uint8Array {
  const h = refHist(img), lut = new Uint8Array(768);
  for (let c = 0; c < 3; c++) {
    let lo = 0, hi = 255;
    while (lo < 256 && !h[c * 256 + lo]) lo++;
    while (hi >= 0 && !h[c * 256 + hi]) hi--;
    for (let i = 0; i < 256; i++) {
      if (hi <= lo) { lut[c * 256 + i] = i; continue; }
      const scale = 255 / (hi - lo), offset = -lo * scale, v = Math.trunc(i * scale + offset);
      lut[c * 256 + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return refLUT(img, lut, true);
}
function refEqualize(img: RGBImage): Uint8Array {
  const h = refHist(img), lut = new Uint8Array(768);
  for (let c = 0; c < 3; c++) {
    const b = c * 256;
    let nonzero = 0, total = 0, last = 0;
    for (let i = 0; i < 256; i++) if (h[b + i]) { nonzero++; total += h[b + i]; last = h[b + i]; }
    const step = nonzero <= 1 ? 0 : Math.floor((total - last) / 256);
    if (!step) { for (let i = 0; i < 256; i++) lut[b + i] = i; continue; }
    let n = Math.floor(step / 2);
    for (let i = 0; i < 256; i++) { const v = Math.floor(n / step); lut[b + i] = v > 255 ? 255 : v; n += h[b + i]; }
  }
  return refLUT(img, lut, true);
}
function refBlend(degenerate: Uint8Array, img: RGBImage, factor: number): Uint8Array {
  const a = Math.fround(factor), s = img.data, d = new Uint8Array(s.length), inRange = a >= 0 && a <= 1;
  for (let i = 0; i < s.length; i++) {
    const t = Math.fround(degenerate[i] + Math.fround(a * (s[i] - degenerate[i])));
    d[i] = inRange ? Math.trunc(t) : t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
  }
  return d;
}
function refColor(img: RGBImage, factor: number): Uint8Array {
  const s = img.data, deg = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i += 3) { const l = luma(s[i], s[i + 1], s[i + 2]); deg[i] = l; deg[i + 1] = l; deg[i + 2] = l; }
  return refBlend(deg, img, factor);
}
function refContrast(img: RGBImage, factor: number): Uint8Array {
  const s = img.data;
  let sum = 0;
  for (let i = 0; i < s.length; i += 3) sum += luma(s[i], s[i + 1], s[i + 2]);
  return refBlend(new Uint8Array(s.length).fill(Math.trunc(sum / (s.length / 3) + 0.5)), img, factor);
}
function refSmooth(img: RGBImage): Uint8Array {
  const { width: W, height: H, data: s } = img, d = new Uint8Array(s);
  if (W < 3 || H < 3) return d;
  const k1 = Math.fround(1 / 13), k5 = Math.fround(5 / 13), f = Math.fround;
  const row3 = (o: number, ka: number, kb: number, kc: number): number => f(f(f(s[o - 3] * ka) + f(s[o] * kb)) + f(s[o + 3] * kc));
  for (let y = 1; y < H - 1; y++) {
    for (let x = 1; x < W - 1; x++) {
      for (let c = 0; c < 3; c++) {
        const o = (y * W + x) * 3 + c;
        let ss = f(0.5);
        ss = f(ss + row3(o + W * 3, k1, k1, k1));
        ss = f(ss + row3(o, k1, k5, k1));
        ss = f(ss + row3(o - W * 3, k1, k1, k1));
        d[o] = ss <= 0 ? 0 : ss >= 255 ? 255 : Math.trunc(ss);
      }
    }
  }
  return d;
}
function refAffine(img: RGBImage, m: readonly [number, number, number, number, number, number]): Uint8Array {
  const { width: W, height: H, data: s } = img, d = new Uint8Array(s.length);
  const [a, b, c, dd, e, f] = m;
  if (b === 0 && dd === 0) {
    const xs = new Int32Array(W), ys = new Int32Array(H);
    for (let x = 0; x < W; x++) { const v = Math.floor(a * (x + 0.5) + c); xs[x] = v >= 0 && v < W ? v : -1; }
    for (let y = 0; y < H; y++) { const v = Math.floor(e * (y + 0.5) + f); ys[y] = v >= 0 && v < H ? v : -1; }
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
    return d;
  }
  throw new Error('refAffine: only the scale/translate path changed');
}
// ---- end of reference ----

let seed = 987654321;
function rnd(): number { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; }
function ri(lo: number, hi: number): number { return lo + Math.floor(rnd() * (hi - lo + 1)); }

/** A random image, sometimes as an unaligned view into a larger buffer. */
function randomImage(): RGBImage {
  const w = rnd() < 0.2 ? ri(1, 3) : ri(4, 70), h = rnd() < 0.2 ? ri(1, 3) : ri(4, 50), n = w * h * 3;
  const shift = rnd() < 0.4 ? ri(1, 3) : 0, buf = new Uint8Array(n + shift), data = buf.subarray(shift);
  const kind = ri(0, 2), lo = ri(0, 128), span = ri(1, 127);
  for (let i = 0; i < n; i++) data[i] = kind === 0 ? ri(0, 255) : kind === 1 ? lo + ri(0, span) : (i % 7 < 3 ? 10 : 240);
  return { data, width: w, height: h };
}

const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;

test('point ops, blends and SMOOTH equal the per-byte reference on 150 random images', () => {
  for (let it = 0; it < 150; it++) {
    const img = randomImage(), before = new Uint8Array(img.data);
    const tag = `${img.width}x${img.height} offset ${img.data.byteOffset}`;
    const bits = ri(0, 8), thr = rnd() * 256, add = rnd() * 110;
    const factor = [0, 0.1, 0.64, 1, 1.9, -0.3, rnd() * 2][ri(0, 6)];
    assert.ok(same(autoContrast(img).data, refAutoContrast(img)), `autoContrast ${tag}`);
    assert.ok(same(equalize(img).data, refEqualize(img)), `equalize ${tag}`);
    const post = new Uint8Array(256), sol = new Uint8Array(256), sola = new Uint8Array(256);
    const mask = ~((1 << (8 - bits)) - 1) & 0xff;
    for (let i = 0; i < 256; i++) {
      post[i] = i & mask; sol[i] = i < thr ? i : 255 - i;
      const v = Math.trunc(Math.min(255, Math.max(0, i + add))); sola[i] = v < 128 ? v : 255 - v;
    }
    assert.ok(same(posterize(img, bits).data, refLUT(img, post, false)), `posterize(${bits}) ${tag}`);
    assert.ok(same(solarize(img, thr).data, refLUT(img, sol, false)), `solarize(${thr}) ${tag}`);
    assert.ok(same(solarizeAdd(img, add).data, refLUT(img, sola, false)), `solarizeAdd(${add}) ${tag}`);
    assert.ok(same(color(img, factor).data, refColor(img, factor)), `color(${factor}) ${tag}`);
    assert.ok(same(contrast(img, factor).data, refContrast(img, factor)), `contrast(${factor}) ${tag}`);
    assert.ok(same(brightness(img, factor).data, refBlend(new Uint8Array(img.data.length), img, factor)), `brightness(${factor}) ${tag}`);
    assert.ok(same(smooth(img), refSmooth(img)), `smooth ${tag}`);
    assert.ok(same(sharpness(img, factor).data, refBlend(refSmooth(img), img, factor)), `sharpness(${factor}) ${tag}`);
    assert.ok(same(img.data, before), `input unchanged ${tag}`);
  }
});

test('scale/translate warps (incl. the block-copy path for translations) equal the reference', () => {
  for (let it = 0; it < 200; it++) {
    const img = randomImage(), W = img.width, H = img.height;
    const tx = [0, 30, -30, 0.5, -0.49, 2.7, W, -W - 1, rnd() * 200 - 100][ri(0, 8)];
    const ty = [0, 30, -30, 0.5, 1.5, H, rnd() * 200 - 100][ri(0, 6)];
    const a = [1, 1, 1, 0.5, 2, -1][ri(0, 5)], e = [1, 1, 2, 0.7][ri(0, 3)];
    const tag = `${W}x${H} a=${a} e=${e} t=(${tx}, ${ty})`;
    assert.ok(same(affineNearest(img, [a, 0, tx, 0, e, ty]).data, refAffine(img, [a, 0, tx, 0, e, ty])), tag);
    assert.ok(same(translateX(img, tx).data, refAffine(img, [1, 0, tx, 0, 1, 0])), `translateX ${tag}`);
    assert.ok(same(translateY(img, ty).data, refAffine(img, [1, 0, 0, 0, 1, ty])), `translateY ${tag}`);
  }
});

test.run();
