// The trainer's task wiring on a TINY generated synthetic set (aptune synth, 32 px scenes) with the tiny configs:
// METER's F30K ITM loss (§4.3: half the batch keeps its image, half gets a seeded random other image; total loss =
// IRTR + CE of the frozen ITM head), RandAugment in training (deterministic for a seed, off with randaug: false),
// retrieval batches and evaluation chunks without their all-padding text columns giving the padded loss, gradients
// and scores, retrieval evaluation with embedding reuse giving the scores and recall of the full per-pair forward, the
// model's clsTokenId following the tokenizer's [CLS] id, the VQA test submission file of `aptune eval`, and the VQA
// score by question type.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { noGrad, scope, tensor, type Tensor } from '../../engine/index.ts';
import { createModel, METER_BASE, VILT_BASE, type MeterConfig, type ViltConfig, type VLModel } from '../../models/index.ts';
import { QUESTION_TYPES, generateSynthetic } from '../../experiments/synthetic.ts';
import { TaskDataset, loadVqaVocab } from '../../data/tasks.ts';
import { taskLoader, type TaskBatch, type TaskLoaderOptions } from '../../data/task-batches.ts';
import { clipTransform, pixelbertTransform } from '../../data/images.ts';
import { RandAugment } from '../../data/randaugment.ts';
import { BertTokenizer, buildWordPieceVocab } from '../../data/tokenizers/index.ts';
import { toModelBatch } from '../../train/batch.ts';
import { evaluateVqa, retrievalScores } from '../../train/evaluate.ts';
import { retrievalRecall } from '../../train/metrics.ts';
import { dataTexts, resolveModelConfig, runEval, runTrain } from '../../train/run.ts';
import { main } from '../../train/cli.ts';
import { TINY_METHOD_OPTIONS } from '../../models/index.ts';
import { allclose } from '../helpers.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-tasktrain-'));
const DATA = path.join(tmp, 'synth');
const TEXT_LEN = 16;
let tok: BertTokenizer;

function tinyModel(backbone: 'vilt' | 'meter', task: 'irtr' | 'vqa' | 'nlvr2', method = 'apt', numAnswers = 0, textLen = TEXT_LEN): VLModel {
  const config = resolveModelConfig(backbone, 'tiny', tok, textLen);
  return createModel({ backbone, config, task, numAnswers, method, methodOptions: TINY_METHOD_OPTIONS[method as 'apt'], seed: 4 });
}

function loaderOpts(backbone: 'vilt' | 'meter', extra: Partial<TaskLoaderOptions> = {}): TaskLoaderOptions {
  const transform = backbone === 'vilt' ? pixelbertTransform(32, undefined, 8) : clipTransform(16);
  return { model: backbone, tokenizer: tok, transform, maxLength: TEXT_LEN, batchSize: 4, shuffle: true, seed: 3, concurrency: 2, ...extra };
}

async function first(ds: TaskDataset, o: TaskLoaderOptions): Promise<TaskBatch> {
  for await (const b of taskLoader(ds, o).epoch(0)) return b;
  throw new Error('no batch');
}

const host = (t: Tensor) => Array.from(t.toArray() as Float32Array);

test.before(async () => {
  await generateSynthetic({ out: DATA, seed: 2, preset: 'tiny', imageSize: 32 });
  tok = new BertTokenizer(buildWordPieceVocab(await dataTexts(DATA)));
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('METER irtr: the ITM sub-batch (half own image, half a seeded other image) and loss = IRTR + ITM via the frozen head', async () => {
  const ds = await TaskDataset.open(DATA, 'meter', 'f30k', 'train');
  try {
    const o = loaderOpts('meter', { drawFalseText: 2, drawFalseImage: 1 });
    const tb = await first(ds, o);
    const labels = Array.from(tb.itmLabels!);
    assert.equal(labels.slice().sort(), [0, 0, 1, 1], 'floor(B/2) positives, the rest negatives');
    assert.equal(tb.falseImages![0].shape, tb.images[0].shape, 'false images share the padded shape');
    const again = await first(ds, o);
    assert.equal(Array.from(again.itmLabels!), labels, 'labels are a function of the seed');
    assert.ok(again.falseImages![0].data.every((v, i) => v === tb.falseImages![0].data[i]), 'false images are a function of the seed');
    let differs = false;
    for (const seed of [4, 5, 6]) {
      const other = await first(ds, { ...o, seed });
      const same = Array.from(other.itmLabels!).join() === labels.join() && other.falseImages![0].data.every((v, i) => v === tb.falseImages![0].data[i]);
      if (!same) differs = true;
    }
    assert.ok(differs, 'another seed draws other labels / images');
    const plain = await first(ds, { ...o, drawFalseImage: 0 });
    assert.equal(plain.falseTexts.map((t) => t.texts), tb.falseTexts.map((t) => t.texts), 'drawing false images shifts no other draw');
    assert.ok(plain.images[0].data.every((v, i) => v === tb.images[0].data[i]));

    const m = tinyModel('meter', 'irtr');
    const itmParams = m.namedParameters().filter(([n]) => n.startsWith('itm_score'));
    assert.ok(itmParams.length > 0 && itmParams.every(([, p]) => !p.requiresGrad), 'the ITM head is frozen');
    noGrad(() => scope(() => {
      const b = toModelBatch(tb, 'irtr');
      const it = b.itm!;
      const n = 3 * 16 * 16;
      const img = host(it.image), own = host(b.image), fal = Array.from(tb.falseImages![0].data);
      labels.forEach((l, i) => {
        const row = img.slice(i * n, (i + 1) * n);
        assert.equal(row, (l ? own : fal).slice(i * n, (i + 1) * n), `item ${i} (label ${l})`);
        if (!l) assert.not.equal(row, own.slice(i * n, (i + 1) * n), `negative ${i} is another image`);
      });
      assert.equal(host(it.textIds), host(b.textIds.slice(1, 0, 1).reshape([4, -1])), 'ITM text = the own caption');
      const total = m.loss(b).loss.item();
      const irtr = m.loss({ ...b, itm: undefined }).loss.item();
      const lg = host((m.backbone.child('itm_score') as unknown as { forward(x: Tensor): Tensor }).forward(m.backbone.infer({ textIds: it.textIds, textMasks: it.textMasks, image: it.image }).clsFeats));
      let ce = 0;
      labels.forEach((l, i) => {
        const a = lg[2 * i], c = lg[2 * i + 1], mx = Math.max(a, c);
        ce += mx + Math.log(Math.exp(a - mx) + Math.exp(c - mx)) - (l ? c : a);
      });
      ce /= labels.length;
      assert.ok(ce > 1e-3, 'the ITM term is not zero');
      assert.ok(Math.abs(total - (irtr + ce)) < 1e-4, `loss ${total} = IRTR ${irtr} + ITM ${ce}`);
      return null;
    }));
  } finally { await ds.close(); }
  const r = await runTrain({ data: DATA, task: 'irtr', backbone: 'meter', config: 'tiny', maxSteps: 2, batchSize: 4, negatives: 2, maxTextLen: TEXT_LEN, seed: 4, out: path.join(tmp, 'meter-irtr'), log: () => {} });
  assert.is(r.losses.length, 2);
  assert.ok(r.losses.every((l) => Number.isFinite(l)));
  assert.is(r.eval!.images, 6);
});

for (const backbone of ['vilt', 'meter'] as const) {
  for (const task of ['irtr', 'vqa', 'nlvr2'] as const) {
    test(`${backbone} ${task}: a batch without its all-padding text columns gives the same loss and gradients (APT)`, async () => {
      const LONG = 40; // the reference's max_text_len: the tiny set's texts are shorter
      const ds = await TaskDataset.open(DATA, backbone, task === 'irtr' ? 'f30k' : task, 'train');
      let tb: TaskBatch;
      const extra = task === 'irtr' ? { drawFalseText: 3, drawFalseImage: backbone === 'meter' ? 1 : 0 } : task === 'vqa' ? { numClasses: (await loadVqaVocab(DATA, backbone)).numClasses } : {};
      try { tb = await first(ds, loaderOpts(backbone, { ...extra, maxLength: LONG })); } finally { await ds.close(); }
      const m = tinyModel(backbone, task, 'apt', tb.vqa?.numClasses ?? 0, LONG);
      const run = (trimPadding: boolean) => scope(() => {
        const b = toModelBatch(tb, task, undefined, { trimPadding });
        for (const p of m.parameters()) p.grad = null;
        const loss = m.loss(b).loss;
        loss.backward();
        const grads = m.trainableParameters().map(([n, p]) => [n, host(p.grad!)] as const);
        return { L: b.textIds.shape[b.textIds.ndim - 1], itmL: b.itm ? b.itm.textIds.shape[1] : null, loss: loss.item(), grads };
      });
      const padded = run(false), trimmed = run(true);
      assert.is(padded.L, LONG);
      assert.ok(trimmed.L < LONG, `the texts leave padding to drop (${trimmed.L} of ${LONG} columns kept)`);
      assert.ok(trimmed.L === Math.max(...[tb.text, ...tb.falseTexts].flatMap((t) => Array.from({ length: t.shape[0] }, (_, r) => t.mask.subarray(r * LONG, (r + 1) * LONG).reduce((a, v) => a + v, 0)))), 'kept = the longest text');
      if (backbone === 'meter' && task === 'irtr') assert.ok(trimmed.itmL! < LONG, 'the ITM sub-batch is trimmed too');
      assert.ok(Math.abs(trimmed.loss - padded.loss) < 1e-5, `loss ${trimmed.loss} vs ${padded.loss}`);
      assert.ok(padded.grads.length > 0);
      padded.grads.forEach(([n, g], i) => allclose(trimmed.grads[i][1], g, { rtol: 1e-4, atol: 1e-6, msg: n }));
    });
  }
}

test('RandAugment in training: deterministic for a seed, changes the images, off with randaug false', async () => {
  const ds = await TaskDataset.open(DATA, 'vilt', 'nlvr2', 'train');
  try {
    const aug = loaderOpts('vilt', { augment: new RandAugment(2, 9) });
    const a = await first(ds, aug), b = await first(ds, aug), none = await first(ds, loaderOpts('vilt'));
    for (const c of [0, 1]) assert.ok(a.images[c].data.every((v, i) => v === b.images[c].data[i]), `column ${c}: same seed, same augmented pixels`);
    assert.ok(a.images[0].shape.join() !== none.images[0].shape.join() || a.images[0].data.some((v, i) => v !== none.images[0].data[i]), 'augmentation changes the images');
  } finally { await ds.close(); }
  const run = (name: string, randaug?: boolean) => runTrain({ data: DATA, task: 'nlvr2', backbone: 'vilt', config: 'tiny', maxSteps: 2, batchSize: 4, maxTextLen: TEXT_LEN, randaug, out: path.join(tmp, name), log: () => {} });
  const r1 = await run('ra1'), r2 = await run('ra2'), r0 = await run('ra0', false);
  assert.equal(r1.losses, r2.losses, 'a seed fixes the augmented run');
  assert.not.equal(r1.losses, r0.losses, 'randaug: false trains on other pixels');
  assert.is(r1.eval!.accuracy, (await runEval({ data: DATA, task: 'nlvr2', checkpoint: r1.checkpoint, log: () => {} })).accuracy, 'the saved checkpoint evaluates to the in-training number');
});

for (const backbone of ['vilt', 'meter'] as const) {
  test(`${backbone} retrieval: reused image / text embeddings give the full per-pair forward's scores and recall`, async () => {
    const ds = await TaskDataset.open(DATA, backbone, 'f30k', 'test');
    try {
      const m = tinyModel(backbone, 'irtr', 'apt');
      const batches = () => taskLoader(ds, loaderOpts(backbone, { shuffle: false, drawFalseText: 0, batchSize: 8 })).epoch(0);
      const full = await retrievalScores(m, batches(), { textChunk: 7, reuseEmbeddings: false });
      const reused = await retrievalScores(m, batches(), { textChunk: 7 });
      const uncached = await retrievalScores(m, batches(), { textChunk: 7, textCacheFloats: 0 });
      assert.is(full.imageIds.length, 6);
      assert.ok(full.textImageIds.length > 7, 'several caption chunks');
      allclose(reused.scores, full.scores, { rtol: 1e-4, atol: 1e-5, msg: 'cached text tokens' });
      allclose(uncached.scores, full.scores, { rtol: 1e-4, atol: 1e-5, msg: 'per-image text tokens' });
      assert.ok(new Set(full.scores).size > 6, 'scores vary across pairs (the comparison can fail)');
      const rec = (s: typeof full) => retrievalRecall(s.scores, s.imageIds, s.textImageIds);
      assert.equal(rec(reused), rec(full));
      // at the reference's max_text_len the captions are mostly padding: the split runs on its longest caption, same scores
      const m40 = tinyModel(backbone, 'irtr', 'apt', 0, 40);
      const batches40 = () => taskLoader(ds, loaderOpts(backbone, { shuffle: false, drawFalseText: 0, batchSize: 8, maxLength: 40 })).epoch(0);
      allclose((await retrievalScores(m40, batches40(), { textChunk: 7 })).scores, (await retrievalScores(m40, batches40(), { textChunk: 7, reuseEmbeddings: false })).scores, { rtol: 1e-4, atol: 1e-5, msg: 'trimmed chunks' });
    } finally { await ds.close(); }
  });
}

test("clsTokenId follows the tokenizer's [CLS] id (built vocabulary: 2) for every preset; token4classifier uses it", () => {
  assert.is(tok.startId, 2);
  for (const backbone of ['vilt', 'meter'] as const) {
    for (const preset of ['tiny', 'base'] as const) assert.is(resolveModelConfig(backbone, preset, tok, TEXT_LEN).clsTokenId, 2, `${backbone} ${preset}`);
  }
  const bert101 = { ...tok, startId: 101, vocabSize: tok.vocabSize } as unknown as BertTokenizer;
  assert.is(resolveModelConfig('vilt', 'base', bert101, 40), VILT_BASE, 'the base config is kept when the ids agree');
  assert.is((resolveModelConfig('meter', 'base', { ...tok, startId: 0, vocabSize: tok.vocabSize } as unknown as BertTokenizer, 50) as MeterConfig), METER_BASE);
  const m = tinyModel('vilt', 'irtr', 'apt');
  const emb = (id: number) => noGrad(() => scope(() => host((m.backbone as unknown as { text_embeddings: { forward(x: Tensor): Tensor } }).text_embeddings.forward(tensor(Int32Array.from([id]), [1, 1], { dtype: 'int32' })))));
  m.eval();
  const t4c = host(m.backbone.param('token4classifier'));
  allclose(t4c, emb(2), { msg: 'token4classifier = embedding of [CLS] (id 2)' });
  assert.not.equal(t4c, emb((resolveModelConfig('vilt', 'tiny', tok, TEXT_LEN) as ViltConfig).clsTokenId + 1));
});

test('aptune eval --split test --submit: [{question_id, answer}] for every test question, written atomically', async () => {
  const out = path.join(tmp, 'vqa');
  const r = await runTrain({ data: DATA, task: 'vqa', backbone: 'vilt', config: 'tiny', maxSteps: 1, batchSize: 8, maxTextLen: TEXT_LEN, out, log: () => {} });
  const file = path.join(tmp, 'sub', 'vqa_submit.json');
  const quiet = console.log, quietErr = console.error;
  console.log = () => {}; console.error = () => {};
  let code: number, noSubmit: number, wrongTask: number;
  try {
    code = await main(['eval', '--data', DATA, '--task', 'vqa', '--checkpoint', r.checkpoint, '--split', 'test', '--submit', file]);
    noSubmit = await main(['eval', '--data', DATA, '--task', 'vqa', '--checkpoint', r.checkpoint, '--split', 'test']);
    wrongTask = await main(['eval', '--data', DATA, '--task', 'nlvr2', '--checkpoint', r.checkpoint, '--submit', file]);
  } finally { console.log = quiet; console.error = quietErr; }
  assert.is(code, 0);
  assert.is(noSubmit, 2, 'the test split has no answers: --submit is required');
  assert.is(wrongTask, 2, '--submit is VQA only');
  const sub = JSON.parse(fs.readFileSync(file, 'utf8')) as { question_id: number; answer: string }[];
  assert.equal(fs.readdirSync(path.dirname(file)), ['vqa_submit.json'], 'no temporary file left');
  const test_ = await TaskDataset.open(DATA, 'vilt', 'vqa', 'test');
  const qids: number[] = [];
  try { for (let i = 0; i < test_.length; i++) qids.push(((await test_.get(i)) as { questionId: number }).questionId); } finally { await test_.close(); }
  assert.equal(sub.map((s) => s.question_id), qids, 'every test question, in table order');
  const vocab = await loadVqaVocab(DATA, 'vilt');
  const known = new Set(Array.from({ length: vocab.numClasses }, (_, i) => vocab.id2answer(i)));
  assert.ok(sub.every((s) => Object.keys(s).join() === 'question_id,answer' && (known.has(s.answer) || s.answer === 'unknown')));
  assert.is(vocab.id2answer(vocab.numClasses + 3), 'unknown');
});

test.run();

test('VQA score by question type (the question_types column): the types partition the questions and average to the total', async () => {
  const ds = await TaskDataset.open(DATA, 'vilt', 'vqa', 'val');
  try {
    const types = await ds.questionTypes();
    assert.ok(types && types.size === ds.length, `one type per val question (${types?.size} of ${ds.length})`);
    const { numClasses } = await loadVqaVocab(DATA, 'vilt');
    const m = tinyModel('vilt', 'vqa', 'apt', numClasses);
    const batches = () => taskLoader(ds, loaderOpts('vilt', { shuffle: false, drawFalseText: 0, batchSize: 8, numClasses })).epoch(0);
    const r = await evaluateVqa(m, batches(), types);
    const kinds = Object.keys(r).filter((k) => k.endsWith('_vqa_score')).map((k) => k.slice(0, -'_vqa_score'.length));
    assert.equal(new Set(kinds), new Set(types!.values()), 'a score for every type present');
    for (const k of kinds) assert.ok((QUESTION_TYPES as readonly string[]).includes(k), k);
    assert.is(kinds.reduce((s, k) => s + r[`${k}_count`], 0), r.count);
    allclose([kinds.reduce((s, k) => s + r[`${k}_vqa_score`] * r[`${k}_count`], 0) / r.count], [r.vqa_score], { atol: 1e-9 });
    const plain = await evaluateVqa(m, batches());
    assert.equal(plain, { vqa_score: r.vqa_score, count: r.count }, 'without types: the total only, the same');
  } finally { await ds.close(); }
});
