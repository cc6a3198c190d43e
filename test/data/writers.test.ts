// Writers on small raw fixtures in the official formats (VQAv2 JSON + COCO folders, NLVR2 JSON lines + image
// folders, Karpathy dataset_flickr30k.json + images), read back through the task datasets: vocabulary, labels and
// scores, dropped questions/images, trainable_val/rest_val, grouping of NLVR2 sentences, F30K splits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeVqaV2, writeNlvr2, writeF30kKarpathy, cocoImageId } from '../../data/writers.ts';
import { TaskDataset, loadVqaVocab, type VqaItem, type Nlvr2Item, type F30kItem } from '../../data/tasks.ts';
import { ArrowTableReader } from '../../data/formats/arrow.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-writers-'));
const put = (p: string, data: string | Uint8Array) => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, data); };
const img = (tag: number) => Uint8Array.from([0xff, 0xd8, tag, tag + 1, 0xff, 0xd9]);
const coco = (split: string, id: number) => `COCO_${split}_${String(id).padStart(12, '0')}.jpg`;
const ans = (...groups: [string, number][]) => groups.flatMap(([a, n]) => Array.from({ length: n }, () => ({ answer: a })));

function vqaFixture(root: string) {
  const q = (image_id: number, question_id: number, question: string) => ({ image_id, question_id, question });
  put(path.join(root, 'v2_OpenEnded_mscoco_train2014_questions.json'), JSON.stringify({ questions: [q(1, 101, 'is it red?'), q(1, 102, 'how many?'), q(2, 201, 'is it blue?'), q(3, 301, 'what?')] }));
  put(path.join(root, 'v2_OpenEnded_mscoco_val2014_questions.json'), JSON.stringify({ questions: [10, 11, 12, 13, 14].map((i) => q(i, i * 100 + 1, `val question ${i}?`)) }));
  put(path.join(root, 'v2_OpenEnded_mscoco_test2015_questions.json'), JSON.stringify({ questions: [q(20, 2001, 't20?'), q(21, 2101, 't21a?'), q(21, 2102, 't21b?')] }));
  put(path.join(root, 'v2_OpenEnded_mscoco_test-dev2015_questions.json'), JSON.stringify({ questions: [q(21, 2101, 't21a?')] }));
  const a = (image_id: number, question_id: number, mc: string, answers: { answer: string }[]) => ({ image_id, question_id, multiple_choice_answer: mc, answers });
  put(path.join(root, 'v2_mscoco_train2014_annotations.json'), JSON.stringify({ annotations: [
    a(1, 101, 'Yes', ans(['yes', 3], ['Yes', 2], ['no', 5])),
    a(1, 102, 'two', ans(['two', 10])), // 'two' is not in the (normalised) vocabulary: raw answers are not normalised -> dropped
    a(2, 201, 'yes', ans(['yes', 10])),
    a(3, 301, 'blorp', ans(['blorp', 10])), // no label -> question dropped -> image 3 dropped
  ] }));
  put(path.join(root, 'v2_mscoco_val2014_annotations.json'), JSON.stringify({ annotations: [
    a(10, 1001, 'yes', ans(['yes', 10])), a(11, 1101, 'no', ans(['no', 10])), a(12, 1201, 'no', ans(['no', 4], ['2', 6])),
    a(13, 1301, '2', ans(['2', 10])), a(14, 1401, 'yes', ans(['yes', 2], ['maybe', 8])),
  ] }));
  for (const i of [1, 2, 3, 4]) put(path.join(root, 'train2014', coco('train2014', i)), img(i));
  for (const i of [10, 11, 12, 13, 14]) put(path.join(root, 'val2014', coco('val2014', i)), img(i));
  for (const i of [20, 21]) put(path.join(root, 'test2015', coco('test2015', i)), img(i));
}

test('VQAv2 writer: vocabulary, labels, scores, drops, splits; read back through the task datasets', async () => {
  const root = path.join(tmp, 'vqa-raw'), out = path.join(tmp, 'arrows');
  vqaFixture(root);
  assert.is(cocoImageId(coco('val2014', 12345)), 12345);
  const res = await writeVqaV2(root, out, { minAnswerCount: 2, restValRows: 2, seed: 3 });
  assert.equal(res.vocab.label2ans, ['yes', '2', 'no']); // first appearance: Yes->yes (train), two->2, no (val)
  assert.equal(res.rows, { vqav2_train: 2, vqav2_val: 5, vqav2_trainable_val: 3, vqav2_rest_val: 2, vqav2_test: 2, 'vqav2_test-dev': 1 });
  const train = await ArrowTableReader.open(path.join(out, 'vqav2_train.arrow'));
  const ids = (await train.columnValues('image_id')) as number[];
  assert.equal([...ids].sort(), [1, 2]);
  const r1 = await train.row(ids.indexOf(1));
  assert.equal(r1.questions, ['is it red?']);
  assert.equal(r1.question_id, [101]);
  assert.equal(r1.answer_labels, [[0, 2]]);
  assert.equal(r1.answer_scores, [[0.9, 1.0]]);
  assert.equal(r1.answers, [['yes', 'no']]);
  assert.is(r1.split, 'train');
  assert.equal(Array.from(r1.image as Uint8Array), Array.from(img(1)));
  await train.close();
  // trainable_val + rest_val partition val in order
  const val = await ArrowTableReader.open(path.join(out, 'vqav2_val.arrow'));
  const tv = await ArrowTableReader.open(path.join(out, 'vqav2_trainable_val.arrow'));
  const rv = await ArrowTableReader.open(path.join(out, 'vqav2_rest_val.arrow'));
  assert.equal([...(await tv.columnValues('image_id')), ...(await rv.columnValues('image_id'))], await val.columnValues('image_id'));
  for (const t of [val, tv, rv]) await t.close();

  const vilt = await TaskDataset.open(out, 'vilt', 'vqa', 'train');
  assert.is(vilt.length, 2 + 3);
  const items = [];
  for await (const it of vilt.iterate()) items.push(it as VqaItem);
  assert.equal(items.map((x) => x.tableName), ['vqav2_train', 'vqav2_train', 'vqav2_trainable_val', 'vqav2_trainable_val', 'vqav2_trainable_val']);
  await vilt.close();
  const viltVal = await TaskDataset.open(out, 'vilt', 'vqa', 'val');
  assert.is(viltVal.length, 2);
  for await (const it of viltVal.iterate()) items.push(it as VqaItem);
  await viltVal.close();
  // every val question appears exactly once across ViLT train (trainable_val) and val (rest_val)
  assert.equal(items.map((x) => x.questionId).filter((q) => q > 1000).sort(), [1001, 1101, 1201, 1301, 1401]);
  const q1201 = items.find((x) => x.questionId === 1201)!;
  assert.equal([q1201.labels, q1201.scores, q1201.answers], [[2, 1], [1.0, 1.0], ['no', '2']]);
  const q1401 = items.find((x) => x.questionId === 1401)!;
  assert.equal([q1401.labels, q1401.scores], [[0], [0.6]]);
  const meter = await TaskDataset.open(out, 'meter', 'vqa', 'train');
  assert.is(meter.length, 2 + 5);
  await meter.close();
  const v = await loadVqaVocab(out, 'vilt');
  assert.is(v.numClasses, 3);
  assert.equal([0, 1, 2, 3].map(v.id2answer), ['yes', '2', 'no', 'unknown']);
  const testSet = await TaskDataset.open(out, 'vilt', 'vqa', 'test');
  assert.is(testSet.length, 3);
  const t0 = (await testSet.get(0)) as VqaItem;
  assert.equal([t0.answers, t0.labels, t0.scores], [[], [], []]);
  await testSet.close();
});

test('NLVR2 writer: sentences grouped by pair identifier, image folders per split, optional files skipped', async () => {
  const root = path.join(tmp, 'nlvr2-raw'), out = path.join(tmp, 'arrows-nlvr2');
  const line = (identifier: string, sentence: string, label: string, directory?: number) => JSON.stringify({ identifier, sentence, label, ...(directory === undefined ? {} : { directory }) });
  put(path.join(root, 'nlvr2/data/train.json'), [line('train-1-0-0', 'one dog', 'True', 5), line('train-1-0-1', 'two dogs', 'False', 5), line('train-2-1-0', 'a cat', 'False', 7)].join('\n') + '\n');
  put(path.join(root, 'nlvr2/data/dev.json'), line('dev-3-0-0', 'dev sentence', 'True') + '\n');
  put(path.join(root, 'nlvr2/data/test1.json'), line('test1-4-0-0', 'test sentence', 'False') + '\n');
  for (const [p, t] of [['images/train/5/train-1-0', 1], ['images/train/7/train-2-1', 3], ['dev/dev-3-0', 5], ['test1/test1-4-0', 7]] as const) {
    put(path.join(root, `${p}-img0.png`), img(t)); put(path.join(root, `${p}-img1.png`), img(t + 1));
  }
  const logs: string[] = [];
  const rows = await writeNlvr2(root, out, { log: (m) => logs.push(m) });
  assert.equal(rows, { nlvr2_train: 2, nlvr2_dev: 1, nlvr2_test1: 1 });
  assert.ok(logs.some((l) => l.includes('skipping nlvr2_balanced_dev')));
  const tr = await ArrowTableReader.open(path.join(out, 'nlvr2_train.arrow'));
  const r0 = await tr.row(0);
  assert.equal([r0.questions, r0.answers, r0.identifier], [['one dog', 'two dogs'], ['True', 'False'], 'train-1-0']);
  assert.equal(Array.from(r0.image_1 as Uint8Array), Array.from(img(2)));
  await tr.close();
  const val = await TaskDataset.open(out, 'vilt', 'nlvr2', 'val');
  const got = [(await val.get(0)) as Nlvr2Item, (await val.get(1)) as Nlvr2Item];
  assert.equal(got.map((x) => [x.tableName, x.text, x.label]), [['nlvr2_dev', 'dev sentence', 1], ['nlvr2_test1', 'test sentence', 0]]);
  await val.close();
  // a missing image is an error naming the file
  fs.rmSync(path.join(root, 'dev/dev-3-0-img1.png'));
  try { await writeNlvr2(root, path.join(tmp, 'arrows-nlvr2-bad')); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'dev-3-0-img1.png'); }
  assert.not.ok(fs.existsSync(path.join(tmp, 'arrows-nlvr2-bad', 'nlvr2_dev.arrow')));
  // the same failure over existing tables: the old table stays whole and no temporary file is left
  const before = fs.readFileSync(path.join(out, 'nlvr2_dev.arrow'));
  try { await writeNlvr2(root, out); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'dev-3-0-img1.png'); }
  assert.ok(fs.readFileSync(path.join(out, 'nlvr2_dev.arrow')).equals(before));
  assert.equal(fs.readdirSync(out).filter((f) => f.includes('.tmp-')), []);
});

test('F30K (Karpathy) writer: one row per image, raw captions, splits; the task deduplicates captions', async () => {
  const root = path.join(tmp, 'f30k-raw'), out = path.join(tmp, 'arrows-f30k');
  const im = (filename: string, split: string, caps: string[]) => ({ filename, split, sentences: caps.map((raw) => ({ raw, tokens: raw.split(' ') })) });
  put(path.join(root, 'karpathy/dataset_flickr30k.json'), JSON.stringify({ images: [
    im('1.jpg', 'train', ['A dog.', 'a cat', 'A dog.']), im('2.jpg', 'val', ['v1', 'v2']), im('3.jpg', 'test', ['t1', 't2', 't3']),
  ] }));
  for (const i of [1, 2, 3, 9]) put(path.join(root, `flickr30k-images/${i}.jpg`), img(i));
  const rows = await writeF30kKarpathy(root, out);
  assert.equal(rows, { f30k_caption_karpathy_train: 1, f30k_caption_karpathy_val: 1, f30k_caption_karpathy_test: 1 });
  const t = await ArrowTableReader.open(path.join(out, 'f30k_caption_karpathy_train.arrow'));
  assert.equal(await t.row(0, ['caption', 'image_id', 'split']), { caption: ['A dog.', 'a cat', 'A dog.'], image_id: '1.jpg', split: 'train' });
  await t.close();
  const ds = await TaskDataset.open(out, 'vilt', 'f30k', 'train');
  assert.is(ds.length, 2 + 2); // 'A dog.' deduplicated; train + val tables
  assert.equal(ds.corpus(), ['A dog.', 'a cat', 'v1', 'v2']);
  const last = (await ds.get(3)) as F30kItem;
  assert.equal([last.imageId, last.text, last.tableName], ['2.jpg', 'v2', 'f30k_caption_karpathy_val']);
  await ds.close();
});

test('a missing raw file is an error naming it', async () => {
  try { await writeVqaV2(path.join(tmp, 'nowhere'), path.join(tmp, 'x')); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, 'v2_OpenEnded_mscoco_train2014_questions.json');
  }
  try { await writeF30kKarpathy(path.join(tmp, 'nowhere'), path.join(tmp, 'x')); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, 'dataset_flickr30k.json');
  }
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
