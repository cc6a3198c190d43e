// Collation: bottom/right zero padding to the batch max, pixel and patch masks, text padding (spec §5.3).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { collateImages, collateTexts, maxImageSize } from '../../data/collate.ts';
import type { ImageTensor } from '../../data/images.ts';

function img(h: number, w: number, base: number): ImageTensor {
  const data = new Float32Array(3 * h * w);
  for (let i = 0; i < data.length; i++) data[i] = base + i;
  return { data, shape: [3, h, w] };
}

test('images are padded bottom/right with zeros to the batch max', () => {
  const a = img(64, 96, 1), b = img(96, 32, 100000);
  const batch = collateImages([a, b], 32);
  assert.equal(batch.shape, [2, 3, 96, 96]);
  const H = 96, W = 96, at = (bi: number, c: number, y: number, x: number): number => batch.data[((bi * 3 + c) * H + y) * W + x];
  assert.is(at(0, 0, 0, 0), 1);
  assert.is(at(0, 2, 63, 95), a.data[(2 * 64 + 63) * 96 + 95]);
  assert.is(at(0, 0, 64, 0), 0); // below
  assert.is(at(1, 1, 95, 31), b.data[(1 * 96 + 95) * 32 + 31]);
  assert.is(at(1, 1, 95, 32), 0); // right
  assert.equal(batch.sizes, [{ height: 64, width: 96 }, { height: 96, width: 32 }]);
});

test('pixel and patch masks', () => {
  const batch = collateImages([img(64, 96, 1), img(96, 32, 1)], 32);
  assert.equal(batch.patchShape, [2, 3, 3]);
  assert.equal(Array.from(batch.patchMask), [1, 1, 1, 1, 1, 1, 0, 0, 0, /* image 1 */ 1, 0, 0, 1, 0, 0, 1, 0, 0]);
  assert.equal(batch.patchGrid, [{ rows: 2, cols: 3 }, { rows: 3, cols: 1 }]);
  const pm = batch.pixelMask;
  assert.is(pm[63 * 96 + 95], 1);
  assert.is(pm[64 * 96], 0);
  assert.is(pm[96 * 96 + 95 * 96 + 31], 1);
  assert.is(pm[96 * 96 + 32], 0);
  let ones = 0;
  for (const v of pm) ones += v;
  assert.is(ones, 64 * 96 + 96 * 32);
});

test('padTo shares one size across image columns (NLVR2)', () => {
  const left = [img(32, 64, 0)], right = [img(64, 32, 0)];
  const size = maxImageSize(left, right);
  assert.equal(size, { height: 64, width: 64 });
  assert.equal(collateImages(left, 32, { padTo: size }).shape, [1, 3, 64, 64]);
  // CLIP-style patch 16 with a size that is not a multiple of the patch
  const odd = collateImages([img(40, 40, 0)], 16);
  assert.equal(odd.patchShape, [1, 2, 2]);
});

test('bad image shapes are rejected with the index', () => {
  assert.throws(() => collateImages([img(32, 32, 0), { data: new Float32Array(10), shape: [3, 32, 32] }], 32), /image 1 has 10 values/);
  assert.throws(() => collateImages([], 32), /empty batch/);
});

test('texts go into a zero tensor of the longest length, masks from the tokenizer', () => {
  const t = collateTexts([
    { ids: [101, 7, 102, 0, 0], attentionMask: [1, 1, 1, 0, 0] },
    { ids: [0, 9, 2], attentionMask: [1, 1, 1] }, // unpadded (e.g. a RoBERTa negative)
  ]);
  assert.equal(t.shape, [2, 5]);
  assert.equal(Array.from(t.ids), [101, 7, 102, 0, 0, 0, 9, 2, 0, 0]);
  assert.equal(Array.from(t.mask), [1, 1, 1, 0, 0, 1, 1, 1, 0, 0]);
  assert.equal(collateTexts([{ ids: [5], attentionMask: [1] }], { length: 3, fill: 1 }).ids, new Int32Array([5, 1, 1]));
  assert.throws(() => collateTexts([{ ids: [1, 2], attentionMask: [1] }]), /encoding 0 has 2 ids but 1 mask/);
});

test('images and pixel masks equal a per-element reference for every padding case', () => {
  const shapes: [number, number][][] = [[[64, 96], [64, 96]], [[64, 96], [32, 96]], [[64, 96], [64, 32]], [[32, 32]], [[40, 70], [70, 40], [70, 70]]];
  for (const list of shapes) {
    const ims = list.map(([h, w], k) => img(h, w, 1000 * (k + 1)));
    for (const padTo of [undefined, { height: 96, width: 128 }]) {
      const batch = collateImages(ims, 16, { padTo });
      const [B, , H, W] = batch.shape;
      for (let b = 0; b < B; b++) {
        const [, h, w] = ims[b].shape;
        for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
          const inside = y < h && x < w;
          const want = inside ? ims[b].data[(c * h + y) * w + x] : 0;
          if (batch.data[((b * 3 + c) * H + y) * W + x] !== want) assert.unreachable(`${JSON.stringify(list)} b${b} c${c} y${y} x${x}`);
          if (c === 0 && batch.pixelMask[(b * H + y) * W + x] !== (inside ? 1 : 0)) assert.unreachable(`mask ${JSON.stringify(list)} b${b} y${y} x${x}`);
        }
      }
    }
  }
});

test.run();
