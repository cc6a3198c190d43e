// Table composition per task/split (spec §5.2) and item enumeration as (row, text index) like the reference's
// index_mapper; the bad-image hook (stop with table/column/row named, or skip with a warning); composition errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeTable, VQAV2_LAYOUT, NLVR2_LAYOUT } from '../../data/formats/arrow.ts';
import { TaskDataset, ComposedTables, TASK_TABLES, BadImageError, type VqaItem } from '../../data/tasks.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-tasks-'));
const vqaRow = (id: number, nq: number, imageByte = id) => ({
  image: Uint8Array.from([imageByte, 1, 2]), questions: Array.from({ length: nq }, (_, k) => `q${id}.${k}`),
  answers: Array.from({ length: nq }, () => ['yes']), answer_labels: Array.from({ length: nq }, () => [0]),
  answer_scores: Array.from({ length: nq }, () => [1]), image_id: id, question_id: Array.from({ length: nq }, (_, k) => id * 10 + k), split: 'x',
});

test.before(async () => {
  await writeTable(path.join(tmp, 'vqav2_train.arrow'), VQAV2_LAYOUT.columns, [vqaRow(1, 2), vqaRow(2, 0), vqaRow(3, 3)], { batchRows: 2 });
  await writeTable(path.join(tmp, 'vqav2_trainable_val.arrow'), VQAV2_LAYOUT.columns, [vqaRow(4, 1, 0xee), vqaRow(5, 1)]);
  await writeTable(path.join(tmp, 'vqav2_rest_val.arrow'), VQAV2_LAYOUT.columns, [vqaRow(6, 2)]);
  await writeTable(path.join(tmp, 'vqav2_val.arrow'), VQAV2_LAYOUT.columns, [vqaRow(4, 1), vqaRow(5, 1), vqaRow(6, 2)]);
  await writeTable(path.join(tmp, 'nlvr2_train.arrow'), NLVR2_LAYOUT.columns, [{ image_0: Uint8Array.of(1), image_1: Uint8Array.of(2), questions: ['s'], answers: ['maybe'], identifier: 'train-0-0' }]);
});

test('split tables follow spec §5.2 for both model families', () => {
  assert.equal(TASK_TABLES.vilt.vqa.train, ['vqav2_train', 'vqav2_trainable_val']);
  assert.equal(TASK_TABLES.vilt.vqa.val, ['vqav2_rest_val']);
  assert.equal(TASK_TABLES.meter.vqa.train, ['vqav2_train', 'vqav2_val']);
  assert.equal(TASK_TABLES.meter.vqa.val, ['vqav2_val']);
  assert.equal(TASK_TABLES.vilt.nlvr2.test, ['nlvr2_dev', 'nlvr2_test1']);
  assert.equal(TASK_TABLES.meter.f30k.train, ['f30k_caption_karpathy_train', 'f30k_caption_karpathy_val']);
});

test('items are (row, text index) over the concatenated tables, rows without texts contribute none', async () => {
  const c = await ComposedTables.open(tmp, ['vqav2_train', 'vqav2_trainable_val']);
  assert.is(c.numRows, 5);
  assert.equal(Array.from(c.items), [0, 0, 0, 1, 2, 0, 2, 1, 2, 2, 3, 0, 4, 0]);
  assert.equal([c.tableName(2), c.tableName(3)], ['vqav2_train', 'vqav2_trainable_val']);
  await c.close();
  const ds = await TaskDataset.open(tmp, 'vilt', 'vqa', 'train');
  assert.is(ds.length, 7);
  const it = (await ds.get(4)) as VqaItem;
  assert.equal([it.row, it.textIndex, it.text, it.questionId, it.tableName], [2, 2, 'q3.2', 32, 'vqav2_train']);
  assert.equal(Array.from(it.image), [3, 1, 2]);
  try { await ds.get(7); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'item 7 out of range (7 items in vqav2_train + vqav2_trainable_val)'); }
  await ds.close();
  const meter = await TaskDataset.open(tmp, 'meter', 'vqa', 'val');
  assert.is(meter.length, 4);
  await meter.close();
});

test('bad images: stop naming table, column and row, or skip with a warning (skipBadImages)', async () => {
  const ds = await TaskDataset.open(tmp, 'vilt', 'vqa', 'train');
  const checkImage = (b: Uint8Array) => { if (b[0] === 0xee) throw new Error('unsupported image format'); };
  try {
    for await (const _ of ds.iterate(undefined, { checkImage })) { /* consume */ }
    assert.unreachable();
  } catch (e) {
    assert.instance(e, BadImageError);
    assert.match((e as Error).message, 'vqav2_trainable_val.arrow: column "image" row 0: bad image: unsupported image format');
  }
  const warnings: string[] = [];
  const seen: number[] = [];
  for await (const x of ds.iterate([6, 5, 0], { checkImage, skipBadImages: true, warn: (m) => warnings.push(m) })) seen.push((x as VqaItem).questionId);
  assert.equal(seen, [50, 10]);
  assert.is(warnings.length, 1);
  assert.match(warnings[0], 'skipping item 5');
  await ds.close();
});

test('composition errors: missing table, mixed layouts, label that is not True/False', async () => {
  try { await TaskDataset.open(tmp, 'vilt', 'f30k', 'train'); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, 'f30k_caption_karpathy_train.arrow: table not found');
  }
  try { await ComposedTables.open(tmp, ['vqav2_train', 'nlvr2_train']); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, 'layout nlvr2 differs from vqav2');
  }
  const nl = await TaskDataset.open(tmp, 'vilt', 'nlvr2', 'train');
  try { await nl.get(0); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, 'nlvr2_train.arrow: column "answers" row 0 item 0: expected "True" or "False", got "maybe"');
  }
  await nl.close();
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
