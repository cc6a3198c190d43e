// The training layer on a TINY generated synthetic set (aptune synth, 32 px scenes) and the tiny ViLT config on the
// default backend: overfitting one fixed NLVR2 batch lowers the loss; only trainable parameters change and the
// live tensor count stays flat across steps (every step in a scope); the checkpoint pair is written atomically and
// the weights file holds exactly the method's trainable weights; resume (with dropout on, so the RNG state
// matters) continues with the identical loss sequence; 2 x (B/2) accumulation equals 1 x B; a checkpoint of
// another method is refused naming the key; and `aptune train` + `aptune eval` run end to end through the real
// command line, writing a metrics file, with errors naming the missing directory / table / mismatch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { liveTensors, type Tensor } from '../../engine/index.ts';
import { createModel, parameterGroups, setDropoutRate, TINY_METHOD_OPTIONS, VILT_TINY, type VLModel } from '../../models/index.ts';
import { generateSynthetic } from '../../experiments/synthetic.ts';
import { TaskDataset } from '../../data/tasks.ts';
import { taskLoader, type TaskBatch } from '../../data/task-batches.ts';
import { pixelbertTransform } from '../../data/images.ts';
import { BertTokenizer, buildWordPieceVocab } from '../../data/tokenizers/index.ts';
import { AdamW } from '../../train/optim.ts';
import { PolynomialDecayWithWarmup, warmupSteps } from '../../train/schedule.ts';
import { Trainer, truncateMetricsLog } from '../../train/trainer.ts';
import { toModelBatch } from '../../train/batch.ts';
import { TRAIN_STATE_PREFIX, loadCheckpoint, loadMethodCheckpoint } from '../../train/checkpoint.ts';
import { dataTexts, runTrain } from '../../train/run.ts';
import { allclose } from '../helpers.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-trainer-'));
const DATA = path.join(tmp, 'synth');
const TEXT_LEN = 24;
let tok: BertTokenizer;
let ds: TaskDataset;
let batch4: TaskBatch; // the first 4 NLVR2 train items, un-shuffled
let halves: TaskBatch[]; // the same 4 items as two batches of 2

function model(method = 'apt', seed = 0): VLModel {
  const config = { ...VILT_TINY, vocab: tok.vocabSize, maxTextLen: TEXT_LEN, clsTokenId: tok.startId };
  return createModel({ backbone: 'vilt', config, task: 'nlvr2', method, methodOptions: TINY_METHOD_OPTIONS[method as 'apt'], seed });
}

function loaderOpts(batchSize: number, shuffle = false) {
  return { model: 'vilt' as const, tokenizer: tok, transform: pixelbertTransform(32, undefined, 8), maxLength: TEXT_LEN, batchSize, shuffle, seed: 5 };
}

async function firstBatches(batchSize: number, n: number): Promise<TaskBatch[]> {
  const out: TaskBatch[] = [];
  for await (const b of taskLoader(ds, loaderOpts(batchSize)).epoch(0)) { out.push(b); if (out.length === n) break; }
  return out;
}

function trainer(m: VLModel, data: { epoch: (e: number) => AsyncIterable<TaskBatch> | Iterable<TaskBatch> }, o: { maxSteps: number; accumulate?: number; lr?: number; eps?: number; wd?: number; checkpoint?: string; checkpointEvery?: number; onLog?: (r: Record<string, unknown>) => void }) {
  const lr = o.lr ?? 1e-3;
  const opt = new AdamW(parameterGroups(m, { lr, weightDecay: o.wd ?? 0.01 }), { lr, betas: [0.9, 0.98], eps: o.eps ?? 1e-8 });
  const sch = new PolynomialDecayWithWarmup(opt, { totalSteps: o.maxSteps, warmupSteps: warmupSteps(o.maxSteps) });
  return new Trainer<TaskBatch>({
    model: m, optimizer: opt, scheduler: sch, maxSteps: o.maxSteps, accumulate: o.accumulate,
    data: { epoch: data.epoch, toBatch: (b) => toModelBatch(b, 'nlvr2') },
    checkpoint: o.checkpoint, checkpointEvery: o.checkpointEvery, onLog: o.onLog,
    runConfig: { backbone: 'vilt', task: 'nlvr2', method: m.method, methodOptions: m.methodOptions },
  });
}

const snapshot = (m: VLModel) => new Map(m.namedParameters().map(([n, p]) => [n, Float32Array.from(p.toArray() as Float32Array)]));

test.before(async () => {
  await generateSynthetic({ out: DATA, seed: 2, preset: 'tiny', imageSize: 32 });
  tok = new BertTokenizer(buildWordPieceVocab(await dataTexts(DATA)));
  ds = await TaskDataset.open(DATA, 'vilt', 'nlvr2', 'train');
  [batch4] = await firstBatches(4, 1);
  halves = await firstBatches(2, 2);
});

test.after(async () => {
  await ds.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('overfit one fixed batch (full tuning): the loss falls; no tensor leaks per step', async () => {
  const m = model('full');
  const live: number[] = [];
  const t = trainer(m, { epoch: () => [batch4] }, { maxSteps: 30, lr: 3e-3, onLog: () => live.push(liveTensors()) });
  const hist = await t.fit();
  const losses = hist.map((h) => h.loss);
  assert.is(losses.length, 30);
  const first = losses[0], last = losses.slice(-3).reduce((s, x) => s + x, 0) / 3;
  assert.ok(last < 0.25 * first, `loss ${first.toFixed(4)} -> ${last.toFixed(4)} (${losses.map((x) => x.toFixed(3)).join(' ')})`);
  assert.is(hist[29].metric, 1, 'the fixed batch is fitted');
  assert.equal(new Set(live.slice(1)).size, 1, `live tensors after each step: ${live.join(',')}`);
});

test('apt: only trainable parameters change', async () => {
  const m = model('apt');
  const before = snapshot(m);
  await trainer(m, { epoch: () => [batch4] }, { maxSteps: 3, lr: 1e-2 }).fit();
  const trainable = new Set(m.trainableParameters().map(([n]) => n));
  assert.ok(trainable.size < m.namedParameters().length, 'apt freezes the backbone');
  let changed = 0;
  for (const [n, p] of m.namedParameters()) {
    const same = (p.toArray() as Float32Array).every((v, i) => v === before.get(n)![i]);
    if (trainable.has(n)) { if (!same) changed++; } else assert.ok(same, `frozen parameter ${n} changed`);
  }
  assert.ok(changed >= trainable.size - 2, `${changed} of ${trainable.size} trainable tensors changed`);
});

test('checkpoint: one atomic file (method weights + training state); resume gives the identical losses', async () => {
  const dir = path.join(tmp, 'resume');
  const ck = path.join(dir, 'last.safetensors');
  const loader = taskLoader(ds, loaderOpts(4, true)); // 16 batches per epoch; the run crosses an epoch boundary
  const data = { epoch: (e: number) => loader.epoch(e) };
  const steps = 10, accumulate = 2;
  const a = model('apt', 1);
  setDropoutRate(a.backbone, 0.1); // dropout on: resume must restore the generator
  const full = await trainer(a, data, { maxSteps: steps, accumulate }).fit();
  const b = model('apt', 1);
  setDropoutRate(b.backbone, 0.1);
  const tb: Trainer<TaskBatch> = trainer(b, data, { maxSteps: steps, accumulate, checkpoint: ck, onLog: () => tb.requestStop() });
  await tb.fit(); // a stop request during step 1 (as SIGINT): the step finishes, the checkpoint is written
  assert.is(tb.step, 1);
  for (let s = 2; s <= 9; s++) { /* continue step by step, stopping each time (a SIGINT after every step) */
    const c = model('apt', 1);
    setDropoutRate(c.backbone, 0.1);
    const tc: Trainer<TaskBatch> = trainer(c, data, { maxSteps: steps, accumulate, checkpoint: ck, onLog: () => tc.requestStop() });
    tc.loadCheckpoint(ck);
    const h = await tc.fit();
    assert.is(h.length, 1);
    assert.is(h[0].loss, full[s - 1].loss, `step ${s} after a resume`);
  }
  const d = model('apt', 1);
  setDropoutRate(d.backbone, 0.1);
  const td = trainer(d, data, { maxSteps: steps, accumulate, checkpoint: ck });
  td.loadCheckpoint(ck);
  assert.equal([td.step, td.epoch, td.batchInEpoch], [9, 1, 2], 'step 9 = 18 micro-batches = epoch 1, batch 2');
  const rest = await td.fit();
  assert.equal(rest.map((h) => h.loss), [full[9].loss]);

  const names = new Set(d.trainableParameters().map(([n]) => n));
  const w = loadCheckpoint(ck);
  const weights = [...w.tensors.keys()].filter((k) => !k.startsWith(TRAIN_STATE_PREFIX));
  assert.equal(new Set(weights), names, 'the weights in the file are exactly the trainable weights');
  const state = [...w.tensors.keys()].filter((k) => k.startsWith(TRAIN_STATE_PREFIX)).map((k) => k.slice(TRAIN_STATE_PREFIX.length));
  assert.equal(new Set(state.filter((k) => k.startsWith('m.')).map((k) => k.slice(2))), names, 'm. per trainable weight');
  assert.equal(new Set(state.filter((k) => k.startsWith('v.')).map((k) => k.slice(2))), names, 'v. per trainable weight');
  assert.is((w.config as { step: number }).step, 10);
  assert.equal(loadMethodCheckpoint(ck, model('apt', 1).backbone).loaded.sort(), [...names].sort(), 'loadMethodCheckpoint reads the weights only');
  assert.equal(fs.readdirSync(dir).sort(), ['last.safetensors'], 'one file, no temporary file left behind');
});

test('evaluation state: a run resumed from its final checkpoint does not evaluate again; an evaluation logged after the checkpoint is cut', async () => {
  const dir = path.join(tmp, 'evalstate');
  const ck = path.join(dir, 'last.safetensors'), log = path.join(dir, 'metrics.jsonl');
  const data = { epoch: () => [batch4] };
  let calls = 0;
  const make = () => {
    const m = model('apt', 3);
    const opt = new AdamW(parameterGroups(m, { lr: 1e-3, weightDecay: 0.01 }), { lr: 1e-3 });
    return new Trainer<TaskBatch>({
      model: m, optimizer: opt, maxSteps: 2, data: { epoch: data.epoch, toBatch: (b) => toModelBatch(b, 'nlvr2') },
      evaluate: async () => ({ acc: ++calls }), logFile: log, checkpoint: ck, checkpointEvery: 1,
      runConfig: { backbone: 'vilt', task: 'nlvr2', method: m.method, methodOptions: m.methodOptions },
    });
  };
  await make().fit();
  assert.is(calls, 1, 'one final evaluation');
  assert.is((loadCheckpoint(ck).config as { trainState: { lastEvalStep: number } }).trainState.lastEvalStep, 2, 'the final checkpoint follows it');
  const again = make();
  again.loadCheckpoint(ck);
  assert.equal([again.step, again.lastEvalStep, again.evalStateKnown], [2, 2, true]);
  assert.equal(await again.fit(), []);
  assert.is(calls, 1, 'the finished run is not evaluated twice');
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(lines.map((l) => JSON.parse(l).type), ['train', 'train', 'eval']);
  const cut = (last: number | undefined) => { fs.writeFileSync(log, lines.join('\n') + '\n{"type":"tr'); return [truncateMetricsLog(log, 2, last), fs.readFileSync(log, 'utf8').trim().split('\n').length]; };
  assert.equal(cut(2), [1, 3], 'torn line cut; the evaluation the checkpoint follows kept');
  assert.equal(cut(1), [2, 2], 'an evaluation at the checkpoint step logged after it is cut (it runs again)');
  assert.equal(cut(undefined), [1, 3], 'an old checkpoint without evaluation state keeps it');
  assert.equal(truncateMetricsLog(log, 1), 2, 'records beyond the step are cut (step 2 and its evaluation)');
});

test('a checkpoint of another method is refused, naming the mismatch', async () => {
  const ck = path.join(tmp, 'resume', 'last.safetensors');
  const t = trainer(model('lora'), { epoch: () => [batch4] }, { maxSteps: 2 });
  assert.throws(() => t.loadCheckpoint(ck), /another method\/config \(method: checkpoint "apt", this run "lora"/);
});

test('gradient accumulation: 2 x (B/2) equals 1 x B (dropout 0)', async () => {
  // eps 1 and no weight decay: the first AdamW update is lr * g / (|g| + 1), a smooth function of the gradient
  const one = model('full', 3), two = model('full', 3);
  const h1 = await trainer(one, { epoch: () => [batch4] }, { maxSteps: 1, lr: 1, eps: 1, wd: 0 }).fit();
  const h2 = await trainer(two, { epoch: () => halves }, { maxSteps: 1, accumulate: 2, lr: 1, eps: 1, wd: 0 }).fit();
  assert.ok(Math.abs(h1[0].loss - h2[0].loss) < 1e-6, `mean loss ${h1[0].loss} vs ${h2[0].loss}`);
  const p2 = new Map(two.namedParameters());
  let moved = 0;
  for (const [n, p] of one.trainableParameters()) {
    allclose(p2.get(n) as Tensor, p, { rtol: 1e-4, atol: 2e-6, msg: n });
    moved++;
  }
  assert.ok(moved > 0);
  const single = model('full', 3);
  await trainer(single, { epoch: () => [halves[0]] }, { maxSteps: 1, lr: 1, eps: 1, wd: 0 }).fit();
  const differs = single.trainableParameters().some(([n, p]) => !(p.toArray() as Float32Array).every((v, i) => Math.abs(v - (p2.get(n)!.toArray() as Float32Array)[i]) < 2e-6));
  assert.ok(differs, 'one half-batch alone gives a different update (the comparison can fail)');
});

const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/aptune.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test('aptune train + aptune eval end to end on the tiny synthetic set', () => {
  const out = path.join(tmp, 'cli');
  const r = cli('train', '--data', DATA, '--task', 'nlvr2', '--backbone', 'vilt', '--config', 'tiny', '--max-steps', '4', '--batch-size', '8',
    '--max-text-len', String(TEXT_LEN), '--eval-every', '2', '--out', out);
  assert.is(r.code, 0, r.err + r.out);
  const recs = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(recs.filter((x) => x.type === 'train').map((x) => x.step), [1, 2, 3, 4]);
  const evals = recs.filter((x) => x.type === 'eval');
  assert.equal(evals.map((x) => x.step), [2, 4]);
  assert.equal([evals[1].dev_count, evals[1].test_count], [24, 24], 'nlvr2_dev and nlvr2_test1 routed by table');
  assert.ok(fs.existsSync(path.join(out, 'vocab.txt')), 'the built vocabulary is stored beside the checkpoint');
  const e = cli('eval', '--data', DATA, '--task', 'nlvr2', '--checkpoint', path.join(out, 'last.safetensors'));
  assert.is(e.code, 0, e.err);
  const m = JSON.parse(e.out.trim().split('\n').pop()!);
  assert.is(m.accuracy, evals[1].accuracy, 'eval of the saved checkpoint equals the final in-training evaluation');
  assert.is(m.count, 48);

  const wrongTask = cli('eval', '--data', DATA, '--task', 'vqa', '--checkpoint', path.join(out, 'last.safetensors'));
  assert.is(wrongTask.code, 1);
  assert.match(wrongTask.err, /task: checkpoint "nlvr2", this run "vqa"/);
  const noDir = cli('train', '--data', path.join(tmp, 'nope'), '--task', 'nlvr2', '--backbone', 'vilt', '--config', 'tiny', '--out', path.join(tmp, 'x'));
  assert.is(noDir.code, 1);
  assert.match(noDir.err, /nope: data directory not found/);
  const partial = path.join(tmp, 'partial');
  fs.mkdirSync(partial);
  fs.copyFileSync(path.join(DATA, 'nlvr2_dev.arrow'), path.join(partial, 'nlvr2_dev.arrow'));
  const noTable = cli('train', '--data', partial, '--task', 'nlvr2', '--backbone', 'vilt', '--config', 'tiny', '--out', path.join(tmp, 'y'));
  assert.is(noTable.code, 1);
  assert.match(noTable.err, /nlvr2_train\.arrow: table not found/);
  const usage = cli('train', '--data', DATA, '--task', 'caption', '--backbone', 'vilt');
  assert.is(usage.code, 2);
  assert.match(cli('train', '--help').out, /--accumulate N/);
});

test('runTrain on vqa and irtr (15 -> 3 negatives): the final evaluation covers the eval split', async () => {
  const v = await runTrain({ data: DATA, task: 'vqa', backbone: 'vilt', config: 'tiny', maxSteps: 2, batchSize: 8, maxTextLen: TEXT_LEN, out: path.join(tmp, 'vqa'), log: () => {} });
  assert.is(v.losses.length, 2);
  const val = await TaskDataset.open(DATA, 'vilt', 'vqa', 'val');
  assert.is(v.eval!.count, val.length, 'every question of the ViLT val split (vqav2_rest_val)');
  assert.ok(val.length > 0);
  await val.close();
  assert.ok(v.eval!.vqa_score >= 0 && v.eval!.vqa_score <= 1);
  const r = await runTrain({ data: DATA, task: 'irtr', backbone: 'vilt', config: 'tiny', maxSteps: 2, batchSize: 4, negatives: 3, maxTextLen: TEXT_LEN, out: path.join(tmp, 'irtr'), log: () => {} });
  assert.is(r.eval!.images, 6);
  assert.ok(r.eval!.texts >= 6 && r.eval!.texts <= 30);
  assert.is(r.eval!.ir_r10, 1, 'K = 10 exceeds the 6 test images: clamped, every caption hits');
  for (const k of ['tr_r1', 'tr_r5', 'ir_r1', 'ir_r5']) assert.ok(r.eval![k] >= 0 && r.eval![k] <= 1, k);
  assert.ok(r.eval!.tr_r1 <= r.eval!.tr_r5 && r.eval!.tr_r5 <= r.eval!.tr_r10, 'recall grows with K');
});

test('runTrain --resume with a different method names the mismatch', async () => {
  const out = path.join(tmp, 'cli');
  let err: Error | null = null;
  try { await runTrain({ data: DATA, task: 'nlvr2', backbone: 'vilt', config: 'tiny', method: 'lora', maxSteps: 5, batchSize: 8, maxTextLen: TEXT_LEN, out, resume: path.join(out, 'last.safetensors'), log: () => {} }); } catch (e) { err = e as Error; }
  assert.ok(err && /method: checkpoint "apt", this run "lora"/.test(err.message), String(err?.message));
});

test.run();
