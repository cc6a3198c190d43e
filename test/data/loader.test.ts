// DataLoader: seeded sampler, determinism for any concurrency (1 vs 4, scrambled completion order), prefetch,
// drop_last, skipping bad images with a warning, and errors that name the row and column.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import sharp from 'sharp';
import { DataLoader, ImageWorkerPool, sampleBatches, imageProcessor, imageItemOf, type ItemSource, type ImageItem } from '../../data/loader.ts';
import { collateImages, type ImageBatch } from '../../data/collate.ts';
import { pixelbertTransform } from '../../data/images.ts';
import { RandAugment } from '../../data/randaugment.ts';

async function makeImages(n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const w = 40 + (i % 3) * 16, h = 30 + (i % 2) * 20, data = Buffer.alloc(w * h * 3);
    for (let p = 0; p < data.length; p++) data[p] = (p * (i + 3) + i * 17) & 255;
    out.push(await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
  }
  return out;
}

const images = await makeImages(10);

function source(imgs: Buffer[], jitter: boolean): ItemSource<ImageItem> {
  return {
    length: imgs.length,
    get: async (i) => {
      if (jitter) await new Promise((r) => setTimeout(r, ((i * 7) % 5) * 2)); // completion order != index order
      return { images: [imgs[i]], row: i, file: 'synthetic.arrow' };
    },
  };
}

async function runEpoch(concurrency: number, prefetch: number, jitter: boolean, epoch = 0, pool?: ImageWorkerPool): Promise<ImageBatch[]> {
  const loader = new DataLoader({
    source: source(images, jitter), batchSize: 4, shuffle: true, seed: 11, concurrency, prefetch,
    process: imageProcessor(pixelbertTransform(64, 128), new RandAugment(2, 9), { pool }),
    collate: (items) => collateImages(items.map((x) => x[0]), 32),
  });
  const out: ImageBatch[] = [];
  for await (const b of loader.epoch(epoch)) out.push(b);
  return out;
}

test('sampler: a seeded permutation per epoch, drop_last', () => {
  const e0 = sampleBatches(10, 0, { batchSize: 4, shuffle: true, seed: 1 });
  assert.equal(e0.map((b) => b.length), [4, 4, 2]);
  assert.equal(e0.flat().sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(sampleBatches(10, 0, { batchSize: 4, shuffle: true, seed: 1 }), e0);
  assert.not.equal(sampleBatches(10, 1, { batchSize: 4, shuffle: true, seed: 1 }).flat(), e0.flat());
  assert.equal(sampleBatches(10, 0, { batchSize: 4, dropLast: true }), [[0, 1, 2, 3], [4, 5, 6, 7]]);
  assert.throws(() => sampleBatches(10, 0, { batchSize: 0 }), /batchSize/);
});

test('batches are identical with concurrency 1 and 4 (with scrambled completion order)', async () => {
  const a = await runEpoch(1, 0, false);
  const b = await runEpoch(4, 2, true);
  assert.is(a.length, 3);
  assert.is(b.length, 3);
  for (let k = 0; k < a.length; k++) {
    assert.equal(a[k].shape, b[k].shape);
    assert.ok(Buffer.from(a[k].data.buffer).equals(Buffer.from(b[k].data.buffer)), `batch ${k} differs`);
    assert.equal(Array.from(a[k].patchMask), Array.from(b[k].patchMask));
  }
  const other = await runEpoch(4, 2, false, 1);
  assert.not.ok(Buffer.from(other[0].data.buffer).equals(Buffer.from(a[0].data.buffer)), 'epoch 1 should differ');
});

test('a worker pool gives the same batches as the main thread, and worker errors keep row and column', async () => {
  const pool = new ImageWorkerPool(2);
  try {
    const a = await runEpoch(1, 0, false);
    const b = await runEpoch(4, 2, true, 0, pool);
    for (let k = 0; k < a.length; k++) assert.ok(Buffer.from(a[k].data.buffer).equals(Buffer.from(b[k].data.buffer)), `batch ${k} differs`);
    const proc = imageProcessor(pixelbertTransform(64, 128), null, { pool });
    try {
      await proc({ images: [images[0], Buffer.from('xx')], file: 'nlvr2_train.arrow', row: 9 }, { index: 9, position: 0, epoch: 0, seed: 1, rng: { next: () => 0 } });
      assert.unreachable();
    } catch (e) {
      assert.is((e as Error).name, 'ImageDecodeError');
      assert.match((e as Error).message, /file nlvr2_train\.arrow, row 9, column 'image_1'/);
    }
  } finally {
    await pool.close();
  }
});

test('a bad image fails the epoch naming row and column, or is skipped with a warning', async () => {
  const imgs = images.slice(0, 6);
  imgs[3] = imgs[3].subarray(0, 40); // truncated PNG
  const mk = (skip: boolean, warnings: string[]) => new DataLoader({
    source: source(imgs, false), batchSize: 3, concurrency: 2, skipBadImages: skip, warn: (m) => warnings.push(m),
    process: imageProcessor(pixelbertTransform(64, 128)),
    collate: (items, idx) => ({ n: items.length, idx }),
  });
  const strict: { n: number; idx: number[] }[] = [];
  try {
    for await (const b of mk(false, []).epoch(0)) strict.push(b);
    assert.unreachable('should throw');
  } catch (e) {
    assert.match((e as Error).message, /file synthetic\.arrow, row 3, column 'image'/);
  }
  const warnings: string[] = [];
  const got: { n: number; idx: number[] }[] = [];
  for await (const b of mk(true, warnings).epoch(0)) got.push(b);
  assert.equal(got, [{ n: 3, idx: [0, 1, 2] }, { n: 2, idx: [4, 5] }]);
  assert.is(warnings.length, 1);
  assert.match(warnings[0], /skipping item 3: image at file synthetic\.arrow, row 3, column 'image'/);
});

test('task items adapt to image items; BadImageError from the item source is skippable too', async () => {
  const nl = imageItemOf({ image0: images[0], image1: images[1], row: 3, tableName: 'nlvr2_dev' });
  assert.equal([nl.imageColumns, nl.row, nl.file, nl.images.length], [['image_0', 'image_1'], 3, 'nlvr2_dev', 2]);
  assert.equal(imageItemOf({ image: images[0], row: 1 }).imageColumns, ['image']);
  assert.throws(() => imageItemOf({ image0: images[0], row: 2 }), /row 2 needs both image0 and image1/);
  class BadImageError extends Error { override name = 'BadImageError'; }
  const warnings: string[] = [];
  const loader = new DataLoader({
    source: { length: 3, get: (i: number) => { if (i === 1) throw new BadImageError('t.arrow: column "image" row 1: null'); return i; } },
    batchSize: 3, skipBadImages: true, warn: (m) => warnings.push(m), process: (x: number) => x, collate: (xs) => xs,
  });
  const got: number[][] = [];
  for await (const b of loader.epoch(0)) got.push(b);
  assert.equal(got, [[0, 2]]);
  assert.match(warnings[0], /row 1: null/);
});

test('two image columns are named image_0 / image_1', async () => {
  const proc = imageProcessor(pixelbertTransform(64, 128));
  const ctx = { index: 5, position: 0, epoch: 0, seed: 1, rng: { next: () => 0.5 } };
  const ok = await proc({ images: [images[0], images[1]] }, ctx);
  assert.is(ok.length, 2);
  try { await proc({ images: [images[0], Buffer.from('xx')] }, ctx); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, /row 5, column 'image_1'/);
  }
});

test.run();
