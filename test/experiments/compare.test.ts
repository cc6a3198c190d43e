// `aptune compare` on a TINY generated synthetic set (32 px scenes) with the tiny ViLT (hidden 64, 2 layers) and
// 2 methods x 1 seed x 2 steps: the rows, the updated params and additional MACs against the closed-form sizes of
// the tiny APT / LoRA modules at the run's token count, the floors read from report.json, valid --json and the
// atomically written compare.json, the rebuilt-from-checkpoint model scoring exactly as the in-training eval, and
// usage errors (exit 2) for a bad method, seed list or task.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { generateSynthetic } from '../../experiments/synthetic.ts';
import { accountVilt, formatCompareTable, readFloors, scoreVqaTable, type CompareResult } from '../../experiments/compare.ts';
import { VILT_SYNTH, SYNTH_METHOD_OPTIONS } from '../../models/pretrain.ts';
import { main } from '../../train/cli.ts';
import { VILT_TINY, TINY_METHOD_OPTIONS } from '../../models/index.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-compare-'));
const DATA = path.join(tmp, 'synth');
const OUT = path.join(tmp, 'out');
const TEXT_LEN = 16;
let result: CompareResult;
let stdout = '';
let code = -1;

async function quiet(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const log = console.log, error = console.error;
  let out = '', err = '';
  console.log = (...a: unknown[]) => { out += a.join(' ') + '\n'; };
  console.error = (...a: unknown[]) => { err += a.join(' ') + '\n'; };
  try { return { code: await main(argv), out, err }; } finally { console.log = log; console.error = error; }
}

test.before(async () => {
  await generateSynthetic({ out: DATA, seed: 2, preset: 'tiny', imageSize: 32 });
  const r = await quiet(['compare', '--data', DATA, '--config', 'tiny', '--methods', 'apt,lora', '--seeds', '0', '--steps', '2',
    '--batch-size', '8', '--max-text-len', String(TEXT_LEN), '--out', OUT, '--json']);
  code = r.code; stdout = r.out;
  if (code !== 0) throw new Error(`compare failed (${code}): ${r.err}`);
  result = JSON.parse(stdout) as CompareResult;
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('--json: one row per method in order, each with its seed, steps and a score in [0, 1]', () => {
  assert.is(code, 0);
  assert.equal(result.rows.map((r) => r.method), ['apt', 'lora']);
  for (const r of result.rows) {
    assert.equal(r.seeds.map((s) => s.seed), [0]);
    assert.is(r.seeds[0].steps, 2);
    assert.ok(r.seeds[0].testCount > 0);
    assert.ok(r.mean >= 0 && r.mean <= 1);
    assert.is(r.mean, r.seeds[0].test);
    assert.is(r.min, r.max);
    assert.is(r.lr, 5e-4, 'the reference PETL lr by default');
  }
  assert.is(result.settings.lrMultHead, 10);
  assert.is(result.settings.randaug, false);
});

test('updated params and additional MACs equal the tiny APT / LoRA formulas at the run token count', () => {
  const D = VILT_TINY.hidden, L = VILT_TINY.layers;
  const { tokens: M, rank: h } = TINY_METHOD_OPTIONS.apt as { tokens: number; rank: number };
  const r = (TINY_METHOD_OPTIONS.lora as { rank: number }).rank;
  const [apt, lora] = result.rows;
  // text padded to max length; image: (32 / patch 8)^2 patches + the image CLS
  const N = TEXT_LEN + (32 / VILT_TINY.patch) ** 2 + 1;
  assert.equal(apt.tokens, { text: TEXT_LEN, image: N - TEXT_LEN });
  assert.is(apt.params, L * (M * D + D * h + h * D + 1), 'APT: mm_tokens [M, D] + W_a [h, D] + W_b [D, h] + scale per layer');
  assert.is(lora.params, L * 2 * (D * r + r * D), 'LoRA: A [D, r] + B [r, D] on q and v per layer');
  // APT: R K^T and S P ([N, M] x D each) + the key correction P W_a^T W_b^T (M x D x h twice), per layer
  assert.is(apt.addMacs, L * (2 * N * M * D + 2 * M * D * h));
  assert.is(lora.addMacs, 0, 'LoRA merges into the frozen weights');
  assert.is(lora.unmergedMacs, L * 2 * (N * D * r + N * r * D));
  assert.ok(apt.trainable > apt.params, 'trainable adds the VQA head');
});

test('synth preset at 24 tokens: the extra MACs of the PyTorch prototype (synthetic-benchmark.md)', () => {
  const cfg = { ...VILT_SYNTH, vocab: 200, maxTextLen: 40 };
  const macs = (m: 'apt' | 'deep_prompt' | 'adapter' | 'parallel_adapter') => accountVilt(cfg, m, SYNTH_METHOD_OPTIONS[m], { text: 14, image: 10 }).addMacs / 1e6;
  // prototype: deep prompt 3.54M, APT 0.46M, adapter 0.79M, PA 0.46M per sample (given to 2 decimals)
  const near = (m: 'apt' | 'deep_prompt' | 'adapter' | 'parallel_adapter', want: number, tol = 0.0051) => assert.ok(Math.abs(macs(m) - want) <= tol, `${m}: ${macs(m)}M, prototype ${want}M`);
  near('deep_prompt', 3.54);
  near('apt', 0.46);
  near('adapter', 0.79);
  near('parallel_adapter', 0.46, 0.01); // ours 0.4547M: its LN convention (5 ops / element) is not stated for the prototype
});

test('floors are read from report.json and printed as labelled floor rows', () => {
  const rep = JSON.parse(fs.readFileSync(path.join(DATA, 'report.json'), 'utf8'));
  const b = rep.vqa.testBaselines;
  assert.is(result.floors!.questionTypePrior, b.questionTypePrior);
  assert.is(result.floors!.imageOnlyKnn, b.imageOnlyKnn);
  const table = formatCompareTable(result);
  const lines = table.split('\n');
  const prior = lines.find((l) => l.includes('floor: question-type prior (text only)'));
  assert.ok(prior && prior.trim().endsWith(`${(100 * b.questionTypePrior).toFixed(2)}%`), table);
  assert.ok(lines.some((l) => l.includes('floor: image-only') && l.trim().endsWith(`${(100 * b.imageOnlyKnn).toFixed(2)}%`)), table);
  assert.is(lines.filter((l) => /^ {2}(apt|lora) /.test(l)).length, 2, table);
  assert.ok(lines.find((l) => /^ {2}apt /.test(l))!.includes(result.rows[0].params.toLocaleString('en-US')), table);
});

test('readFloors: absent report -> null; a malformed field is an error naming it', () => {
  const d = path.join(tmp, 'noreport');
  fs.mkdirSync(d);
  assert.is(readFloors(d), null);
  fs.writeFileSync(path.join(d, 'report.json'), JSON.stringify({ vqa: { testBaselines: { questionTypePrior: 'x', imageOnlyKnn: 0.2 } } }));
  assert.throws(() => readFloors(d), /questionTypePrior/);
});

test('--out: compare.json (atomic, equal to --json) and compare.txt; no temporary files left', () => {
  assert.equal(JSON.parse(fs.readFileSync(path.join(OUT, 'compare.json'), 'utf8')), result);
  assert.ok(fs.readFileSync(path.join(OUT, 'compare.txt'), 'utf8').includes('floor: question-type prior'));
  assert.equal(fs.readdirSync(OUT).filter((f) => f.includes('.tmp-')), []);
  assert.ok(fs.existsSync(path.join(OUT, 'runs', 'apt-s0', 'last.safetensors')));
});

test('the model rebuilt from the method checkpoint scores as the in-training eval (val table)', async () => {
  const ck = path.join(OUT, 'runs', 'apt-s0', 'last.safetensors');
  const r = await scoreVqaTable(ck, DATA, 8, 'vqav2_rest_val');
  assert.is(r.score, result.rows[0].seeds[0].val);
});

test('--pretrained: preset and text length come from an aptune pretrain checkpoint; the file is recorded', async () => {
  const pre = path.join(tmp, 'pre', 'p.safetensors');
  const p = await quiet(['pretrain', '--data', DATA, '--out', pre, '--preset', 'tiny', '--steps', '1', '--batch-size', '4', '--eval-every', '1']);
  assert.is(p.code, 0, p.err);
  const r = await quiet(['compare', '--data', DATA, '--pretrained', pre, '--methods', 'apt', '--seeds', '1', '--steps', '1', '--batch-size', '8', '--json']);
  assert.is(r.code, 0, r.err);
  const res = JSON.parse(r.out) as CompareResult;
  assert.is(res.settings.config, 'tiny');
  assert.is(res.settings.pretrained, path.resolve(pre));
  assert.is(res.rows[0].tokens.text, res.settings.maxTextLen);
  assert.match(r.err, /pretrained .*tensors loaded/);
});

test('without --json: each run shows its progress (status lines off a terminal) on stderr, the table on stdout', async () => {
  const write = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  let r: Awaited<ReturnType<typeof quiet>>;
  try {
    r = await quiet(['compare', '--data', DATA, '--config', 'tiny', '--methods', 'apt', '--seeds', '0', '--steps', '2', '--batch-size', '8', '--max-text-len', String(TEXT_LEN)]);
  } finally { process.stderr.write = write; }
  assert.is(r.code, 0, r.err);
  assert.match(err, /\[1\/1 vilt vqa apt lr [^\]]+ seed 0\] step 2\/2 {2}epoch \d+ {2}loss \d/);
  assert.not.match(err, /\x1b\[/); // no terminal control codes when stderr is not a terminal
  assert.match(r.out, /^ {2}apt /m);
});

const ARGS = ['compare', '--data', DATA, '--config', 'tiny', '--methods', 'apt,lora', '--seeds', '0', '--steps', '2', '--batch-size', '8', '--max-text-len', String(TEXT_LEN)];
const scores = (r: CompareResult) => r.rows.map((row) => [row.method, row.seeds.map((s) => [s.test, s.val, s.finalLoss, s.steps, s.metrics])]);

test('--resume: the same comparison into the same --out again: every run found finished and reused, the same scores', async () => {
  const r = await quiet([...ARGS, '--out', OUT, '--resume', '--json']);
  assert.is(r.code, 0, r.err);
  const again = JSON.parse(r.out) as CompareResult;
  assert.equal(scores(again), scores(result));
  assert.equal(again.rows.map((row) => row.seeds.map((s) => s.resumedAt)), [[2], [2]], 'both runs resumed at their last step');
  assert.ok(again.rows.every((row) => Number.isFinite(row.msPerStep)), 'ms/step from the finished runs');
  assert.match(r.err, /resumed .*apt-s0.* at step 2 .*finished, nothing to train/);
});

test('a comparison SIGKILLed inside a checkpoint write, run again: it resumes that run from its last checkpoint and ends with the uninterrupted scores', () => {
  const out = path.join(tmp, 'killed');
  const cli = (env: Record<string, string>) => spawnSync(process.execPath, ['bin/aptune.js', ...ARGS, '--out', out, '--resume', '--json'], { cwd: new URL('../..', import.meta.url).pathname, env: { ...process.env, ...env }, encoding: 'utf8' });
  const k = cli({ APTUNE_FAULT_ATOMIC: 'last.safetensors:2:written' }); // apt's final save (after its step-1 save): killed
  assert.is(k.signal, 'SIGKILL', k.stderr);
  assert.not.ok(fs.existsSync(path.join(out, 'runs', 'lora-s0')));
  const r = cli({});
  assert.is(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout) as CompareResult;
  assert.equal(scores(res), scores(result), 'the scores, validation figures and final losses of the uninterrupted comparison');
  assert.equal(res.rows.map((row) => row.seeds[0].resumedAt), [1, undefined], 'apt resumed from its step-1 checkpoint; lora trained from the start');
  assert.equal(fs.readdirSync(path.join(out, 'runs', 'apt-s0')).filter((f) => f.includes('.tmp-')), [], 'the torn temporary removed');
});

test('usage errors exit 2: unknown method, bad seeds, other task, missing --data', async () => {
  const bad = await quiet(['compare', '--data', DATA, '--config', 'tiny', '--methods', 'apt,nope', '--steps', '1']);
  assert.is(bad.code, 2);
  assert.match(bad.err, /unknown method 'nope'/);
  assert.is((await quiet(['compare', '--data', DATA, '--seeds', '0,x'])).code, 2);
  assert.is((await quiet(['compare', '--data', DATA, '--task', 'nlvr2'])).code, 2);
  assert.is((await quiet(['compare', '--methods', 'apt'])).code, 2);
  assert.is((await quiet(['compare', '--data', DATA, '--steps', '0'])).code, 2);
});

test.run();
