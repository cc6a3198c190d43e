// End to end through the data layer: `generateSynthetic` (tiny) -> Arrow tables on disk -> TaskDataset (vqa,
// nlvr2, f30k) -> taskLoader with the image pipeline (pixelbert at 96 px, RandAugment in training) and a BERT
// WordPiece tokenizer whose vocabulary is built from the synthetic text -> collated batches, checked against the
// tables read back independently (shapes; pixel and patch masks, with a wide image padded next to square ones;
// ViLT prefix; VQA soft targets; NLVR2 labels; 15 unprefixed IRTR negatives from the caption corpus); a corrupt
// image in a real table stops the epoch naming file, column and row or is skipped with a warning; and
// `aptune synth` through the real command line (bin/aptune.js).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generateSynthetic } from '../../experiments/synthetic.ts';
import sharp from 'sharp';
import { ArrowTableReader, writeTable, VQAV2_LAYOUT, NLVR2_LAYOUT } from '../../data/formats/arrow.ts';
import { TaskDataset, loadVqaVocab } from '../../data/tasks.ts';
import { taskLoader, type TaskBatch, type TaskLoaderOptions } from '../../data/task-batches.ts';
import { pixelbertTransform, clipTransform } from '../../data/images.ts';
import { RandAugment } from '../../data/randaugment.ts';
import { BertTokenizer, buildWordPieceVocab, VILT_TEXT_PREFIX } from '../../data/tokenizers/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-e2e-'));
const dir = path.join(tmp, 'synth');
let tok: BertTokenizer;
let prefixIds: number[];

async function firstBatches(ds: TaskDataset, o: TaskLoaderOptions, n: number, epoch = 0): Promise<TaskBatch[]> {
  const out: TaskBatch[] = [];
  for await (const b of taskLoader(ds, o).epoch(epoch)) { out.push(b); if (out.length === n) break; }
  return out;
}

/** Tokens of row b of a [B, L] text batch between [CLS] and [SEP], checking the mask and the zero padding. */
function rowTokens(t: { ids: Int32Array; mask: Int32Array; shape: [number, number] }, b: number): number[] {
  const [, L] = t.shape;
  const ids = Array.from(t.ids.subarray(b * L, (b + 1) * L)), mask = Array.from(t.mask.subarray(b * L, (b + 1) * L));
  const n = mask.reduce((s, x) => s + x, 0);
  assert.equal(mask, [...Array(n).fill(1), ...Array(L - n).fill(0)], 'mask is 1 on the tokens, then 0');
  assert.ok(ids.slice(n).every((x) => x === tok.padId), 'padded slots hold [PAD] = 0');
  assert.is(ids[0], tok.startId);
  assert.is(ids[n - 1], tok.endId);
  return ids.slice(1, n - 1);
}

const encodeBody = (text: string, max = 38) => tok.tokenize(text).slice(0, max).map((t) => tok.tokenToId(t));

test.before(async () => {
  await generateSynthetic({ out: dir, seed: 3, preset: 'tiny' });
  const texts: string[] = [VILT_TEXT_PREFIX];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.arrow'))) {
    const r = await ArrowTableReader.open(path.join(dir, f));
    const col = r.hasColumn('questions') ? 'questions' : 'caption';
    for (const v of await r.columnValues(col)) texts.push(...(v as string[]));
    await r.close();
  }
  tok = new BertTokenizer(buildWordPieceVocab(texts));
  prefixIds = tok.tokenize(VILT_TEXT_PREFIX).map((t) => tok.tokenToId(t));
  assert.is(prefixIds.length, 7, 'the ViLT prefix is 7 word pieces');
});

test('VQA: pixelbert + RandAugment batches, prefixed questions, soft targets equal to the table', async () => {
  const { numClasses } = await loadVqaVocab(dir, 'vilt');
  const ds = await TaskDataset.open(dir, 'vilt', 'vqa', 'train');
  const opts: TaskLoaderOptions = {
    model: 'vilt', tokenizer: tok, transform: pixelbertTransform(96), augment: new RandAugment(2, 9), numClasses,
    batchSize: 8, shuffle: true, seed: 11, concurrency: 4,
  };
  let items = 0, batches = 0;
  for await (const b of taskLoader(ds, opts).epoch(0)) { items += b.indices.length; batches++; }
  assert.is(items, ds.length, 'one epoch covers every (row, question) item once');
  assert.is(batches, Math.ceil(ds.length / 8));

  const [b] = await firstBatches(ds, opts, 1);
  assert.is(b.images.length, 1);
  const img = b.images[0];
  assert.equal(img.shape, [8, 3, 96, 96]); // 64 px scenes, shorter side 96, floored to 32
  assert.equal(img.patchShape, [8, 3, 3]);
  assert.ok(img.patchMask.every((x) => x === 1) && img.pixelMask.every((x) => x === 1));
  assert.ok(img.data.every((x) => x >= -1 && x <= 1), 'normalised with mean 0.5 / std 0.5');
  assert.equal(b.text.shape, [8, 40]);
  assert.is(b.falseTexts.length, 0);
  const vqa = b.vqa!;
  assert.is(vqa.targets.length, 8 * numClasses);
  const readers = new Map<string, ArrowTableReader>();
  for (let k = 0; k < 8; k++) {
    const it = await ds.get(b.indices[k]);
    assert.is(b.tableNames[k], it.tableName);
    assert.equal(rowTokens(b.text, k), [...prefixIds, ...encodeBody(it.text, 31)]);
    assert.is(b.text.texts[k], VILT_TEXT_PREFIX + it.text);
    // labels and scores read back from the table itself
    const { table, local } = ds.data.locate(it.row);
    let r = readers.get(table.file);
    if (!r) readers.set(table.file, (r = await ArrowTableReader.open(table.file)));
    const labels = ((await r.cell(local, 'answer_labels')) as number[][])[it.textIndex];
    const scores = ((await r.cell(local, 'answer_scores')) as number[][])[it.textIndex];
    assert.ok(labels.length > 0 && scores.every((s) => [0.3, 0.6, 0.9, 1].includes(s)));
    const row = Array.from(vqa.targets.subarray(k * numClasses, (k + 1) * numClasses));
    const expect = new Array(numClasses).fill(0);
    labels.forEach((l, j) => { expect[l] = Math.fround(scores[j]); });
    assert.equal(row, expect);
    assert.is(vqa.questionIds[k], ((await r.cell(local, 'question_id')) as number[])[it.textIndex]);
  }
  for (const r of readers.values()) await r.close();
  assert.not.ok(b.text.ids.includes(tok.unkId), 'the built vocabulary covers the synthetic text');

  // determinism: same seed -> same batch for any concurrency; augmentation changes pixels; another seed, order
  const [again] = await firstBatches(ds, { ...opts, concurrency: 1, prefetch: 0 }, 1);
  assert.equal(again.indices, b.indices);
  assert.ok(Buffer.from(again.images[0].data.buffer).equals(Buffer.from(img.data.buffer)));
  const [plain] = await firstBatches(ds, { ...opts, augment: null }, 1);
  assert.equal(plain.indices, b.indices);
  assert.not.ok(Buffer.from(plain.images[0].data.buffer).equals(Buffer.from(img.data.buffer)), 'RandAugment changed the images');
  const [other] = await firstBatches(ds, { ...opts, seed: 12 }, 1);
  assert.not.equal(other.indices, b.indices);
  await ds.close();
});

test('NLVR2: True/False labels; both image columns padded to one size with pixel and patch masks; METER: CLIP, no prefix, length 50', async () => {
  const ds = await TaskDataset.open(dir, 'vilt', 'nlvr2', 'train');
  const [b] = await firstBatches(ds, { model: 'vilt', tokenizer: tok, transform: pixelbertTransform(96), augment: new RandAugment(2, 9), batchSize: 6, shuffle: true, seed: 2 }, 1);
  assert.is(b.images.length, 2);
  for (const im of b.images) assert.equal(im.shape, [6, 3, 96, 96]);
  const r = await ArrowTableReader.open(path.join(dir, 'nlvr2_train.arrow'));
  for (let k = 0; k < 6; k++) {
    const it = await ds.get(b.indices[k]);
    const answer = ((await r.cell(it.row, 'answers')) as string[])[it.textIndex];
    assert.is(b.nlvr2!.labels[k], answer === 'True' ? 1 : 0);
    assert.equal(rowTokens(b.text, k), [...prefixIds, ...encodeBody(it.text, 31)]);
  }
  await r.close();
  assert.ok(new Set(b.nlvr2!.labels).size <= 2 && b.nlvr2!.labels.every((x) => x === 0 || x === 1));

  // a wide image_1 in row 0: both columns of the batch are padded to one size, masks follow each image
  const wideDir = path.join(tmp, 'wide');
  const src = await ArrowTableReader.open(path.join(dir, 'nlvr2_train.arrow'));
  const rows: Record<string, unknown>[] = [];
  for (let r = 0; r < 3; r++) rows.push(await src.row(r, Object.keys(NLVR2_LAYOUT.columns)));
  await src.close();
  rows[0].image_1 = new Uint8Array(await sharp(rows[0].image_1 as Uint8Array).resize(96, 64, { fit: 'fill' }).png().toBuffer());
  await writeTable(path.join(wideDir, 'nlvr2_train.arrow'), NLVR2_LAYOUT.columns, rows);
  const wide = await TaskDataset.open(wideDir, 'vilt', 'nlvr2', 'train');
  const perRow = (rows[0].questions as string[]).length;
  const [w] = await firstBatches(wide, { model: 'vilt', tokenizer: tok, transform: pixelbertTransform(96), batchSize: perRow + 1 }, 1);
  for (const im of w.images) assert.equal([im.shape, im.patchShape], [[perRow + 1, 3, 96, 128], [perRow + 1, 3, 4]]);
  const [i0, i1] = w.images;
  assert.equal(i1.sizes[0], { height: 96, width: 128 }); // 96 x 64 -> shorter side 96 -> 144 x 96 -> floored 128 x 96
  assert.equal(i0.sizes[0], { height: 96, width: 96 });
  assert.equal([i0.patchGrid[0], i1.patchGrid[0], i1.patchGrid[perRow]], [{ rows: 3, cols: 3 }, { rows: 3, cols: 4 }, { rows: 3, cols: 3 }]);
  const patchRow = (im: typeof i0, b: number) => Array.from(im.patchMask.subarray(b * 12, b * 12 + 4));
  assert.equal([patchRow(i0, 0), patchRow(i1, 0)], [[1, 1, 1, 0], [1, 1, 1, 1]]);
  const HW = 96 * 128;
  for (let c = 0; c < 3; c++) {
    const plane = i0.data.subarray(c * HW, (c + 1) * HW); // item 0, channel c
    for (let y = 0; y < 96; y += 19) {
      assert.ok(plane.subarray(y * 128 + 96, (y + 1) * 128).every((x) => x === 0), 'padding is exactly 0');
      assert.ok(i0.pixelMask.subarray(y * 128, y * 128 + 96).every((x) => x === 1) && i0.pixelMask.subarray(y * 128 + 96, (y + 1) * 128).every((x) => x === 0));
    }
  }
  await wide.close();

  const [m] = await firstBatches(ds, { model: 'meter', tokenizer: tok, transform: clipTransform(64), batchSize: 4 }, 1);
  assert.equal(m.images[0].shape, [4, 3, 64, 64]);
  assert.equal(m.images[0].patchShape, [4, 4, 4]); // CLIP ViT-B/16 patches
  assert.equal(m.text.shape, [4, 50]);
  const it0 = await ds.get(m.indices[0]);
  assert.equal(rowTokens(m.text, 0), encodeBody(it0.text, 48));
  await ds.close();
});

test('IRTR: 15 unprefixed negatives per item drawn from the caption corpus, collated to the positives\' length', async () => {
  const ds = await TaskDataset.open(dir, 'vilt', 'f30k', 'train');
  const corpus = new Set(ds.corpus());
  const opts: TaskLoaderOptions = { model: 'vilt', tokenizer: tok, transform: pixelbertTransform(96), augment: new RandAugment(2, 9), batchSize: 4, shuffle: true, seed: 5 };
  const [b] = await firstBatches(ds, opts, 1);
  assert.is(b.falseTexts.length, 15);
  const drawn = new Set<string>();
  for (const f of b.falseTexts) {
    assert.equal(f.shape, [4, 40]);
    for (let k = 0; k < 4; k++) {
      assert.ok(corpus.has(f.texts[k]), `negative "${f.texts[k]}" comes from the corpus`);
      assert.equal(rowTokens(f, k), encodeBody(f.texts[k]), 'negatives carry no prefix');
      drawn.add(f.texts[k]);
    }
  }
  assert.ok(drawn.size > 20, `${drawn.size} distinct negatives in 60 draws`);
  for (let k = 0; k < 4; k++) {
    const it = await ds.get(b.indices[k]);
    assert.equal(rowTokens(b.text, k), [...prefixIds, ...encodeBody(it.text, 31)]);
    assert.is(b.f30k!.imageIds[k], (it as { imageId: string }).imageId);
  }
  const [same] = await firstBatches(ds, { ...opts, concurrency: 1 }, 1);
  assert.equal(same.falseTexts.map((f) => f.texts), b.falseTexts.map((f) => f.texts));
  const [next] = await firstBatches(ds, opts, 1, 1);
  assert.not.equal(next.falseTexts.map((f) => f.texts), b.falseTexts.map((f) => f.texts), 'a new epoch draws new negatives');
  // evaluation tables draw none
  const test = await TaskDataset.open(dir, 'vilt', 'f30k', 'test');
  const [e] = await firstBatches(test, { ...opts, augment: null, shuffle: false }, 1);
  assert.is(e.falseTexts.length, 0);
  await test.close();
  await ds.close();
});

test('a corrupt image in a real table stops the epoch naming file, column and row, or is skipped with a warning', async () => {
  const bad = path.join(tmp, 'bad');
  const src = await ArrowTableReader.open(path.join(dir, 'vqav2_train.arrow'));
  const rows: Record<string, unknown>[] = [];
  for await (const { row, values } of src.rows(Object.keys(VQAV2_LAYOUT.columns))) {
    if (row === 2) values.image = (values.image as Uint8Array).subarray(0, 60); // truncated PNG
    rows.push(values);
    if (rows.length === 6) break;
  }
  await src.close();
  const file = path.join(bad, 'vqav2_train.arrow');
  await writeTable(file, VQAV2_LAYOUT.columns, rows);
  const ds = await TaskDataset.open(bad, 'vilt', 'vqa', 'train', { tables: ['vqav2_train'] });
  const { numClasses } = await loadVqaVocab(dir, 'vilt');
  const opts: TaskLoaderOptions = { model: 'vilt', tokenizer: tok, transform: pixelbertTransform(96), numClasses, batchSize: 4 };
  try {
    for await (const _ of taskLoader(ds, opts).epoch(0)) { /* consume */ }
    assert.unreachable('a truncated image must stop the epoch');
  } catch (e) {
    assert.match((e as Error).message, `image at file ${file}, row 2, column 'image'`);
  }
  const badItems = (rows[2].questions as string[]).length;
  const warnings: string[] = [];
  let n = 0;
  for await (const b of taskLoader(ds, { ...opts, skipBadImages: true, warn: (m) => warnings.push(m) }).epoch(0)) n += b.indices.length;
  assert.is(n, ds.length - badItems);
  assert.is(warnings.length, badItems);
  assert.ok(warnings.every((w) => w.includes(`row 2, column 'image'`)));
  await ds.close();
  // VQA batches without the vocabulary size are refused up front
  const ds2 = await TaskDataset.open(dir, 'vilt', 'vqa', 'train');
  assert.throws(() => taskLoader(ds2, { ...opts, numClasses: undefined }), /need numClasses/);
  await ds2.close();
});

test('aptune synth through the real command line; bad options exit non-zero with a clear message', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin/aptune.js'), 'synth', ...args], { cwd: tmp, encoding: 'utf8' });
  const out = path.join(tmp, 'cli');
  const ok = run('--out', out, '--size', 'tiny', '--seed', '4', '--image-size', '32');
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, `written to ${out}`);
  for (const f of ['vqav2_train.arrow', 'vqav2_rest_val.arrow', 'nlvr2_test1.arrow', 'f30k_caption_karpathy_test.arrow', 'synth_caption_train.arrow', 'report.json']) {
    assert.ok(fs.existsSync(path.join(out, f)), `${f} written`);
  }
  assert.equal(fs.readdirSync(out).filter((f) => f.includes('.tmp-')), [], 'no temporary files left');
  const size = run('--out', out, '--size', 'huge');
  assert.is(size.status, 2, "a usage error exits 2");
  assert.match(size.stderr, '--size must be one of tiny, small, default, large, got huge');
  const missing = run('--size', 'tiny');
  assert.is(missing.status, 2, "a usage error exits 2");
  assert.match(missing.stderr, '--out DIR is required');
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
