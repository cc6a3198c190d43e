// Randomised equivalence of the fast PIL-exact resize (data/images.ts: windowed fixed-point passes,
// fused crop and normalisation) with the previous straightforward implementation, kept here verbatim as the slow
// reference (itself checked bit-identical to Pillow 9.4 in images.test.ts). Sizes cover up- and down-scaling,
// odd and 1-pixel edges, unchanged axes and large shrink factors; contents are noise, flat, edges and extremes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  resizeBicubicPIL, resizeCropBicubicPIL, resizeNormalizePIL, cropRGB, toNormalizedCHW, VILT_NORMALIZATION,
  CLIP_NORMALIZATION, type RGBImage,
} from '../../data/images.ts';

import { referenceResize } from '../reference/pil-resize.ts';


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
