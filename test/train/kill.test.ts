// Durability of `aptune train`: a tiny run (12 steps, --save-every 2) is SIGKILLed again and again, inside the
// checkpoint write (APTUNE_FAULT_ATOMIC: half the temporary written / temporary complete but not renamed / renamed
// but the directory not synced) and at seeded random instants, and resumed each time from whatever checkpoint is
// there (or restarted when there is none). Every checkpoint seen between kills must load whole; the finished run
// must log each step once with exactly the losses of an uninterrupted run, and leave no temporary file behind.
// A run killed after its final checkpoint (in the summary write) is completed by the rerun without a second evaluation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSynthetic } from '../../experiments/synthetic.ts';
import { loadCheckpoint } from '../../train/checkpoint.ts';
import { rng } from '../fuzz/harness.ts';
import { spawnAptune } from '../helpers.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-kill-'));
const DATA = path.join(tmp, 'synth');
const STEPS = 12;

function train(out: string, o: { fault?: string; killAfterMs?: number } = {}) {
  const ck = path.join(out, 'last.safetensors');
  return spawnAptune(['train', '--data', DATA, '--task', 'nlvr2', '--backbone', 'vilt', '--config', 'tiny', '--max-steps', String(STEPS),
    '--batch-size', '4', '--save-every', '2', '--out', out, ...(fs.existsSync(ck) ? ['--resume', ck] : [])], { env: o.fault ? { APTUNE_FAULT_ATOMIC: o.fault } : {}, killAfterMs: o.killAfterMs });
}

const records = (out: string) => fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const evals = (out: string) => records(out).filter((r) => r.type === 'eval');
const trainLosses = (out: string) => records(out).filter((r) => r.type === 'train') as { type: string; step: number; loss: number }[];

test('SIGKILL at any instant, inside the checkpoint write included: the run resumes and ends with the uninterrupted losses', async () => {
  await generateSynthetic({ out: DATA, seed: 2, preset: 'tiny', imageSize: 32 });
  const ref = path.join(tmp, 'ref');
  const r0 = await train(ref);
  assert.is(r0.code, 0, r0.log);
  const want = trainLosses(ref);
  assert.equal(want.map((r) => r.step), Array.from({ length: STEPS }, (_, i) => i + 1));

  const out = path.join(tmp, 'killed');
  const ck = path.join(out, 'last.safetensors');
  const r = rng(20261204);
  const rounds: { fault?: string; killAfterMs?: number }[] = [
    { fault: 'last.safetensors:1:partial' }, { fault: 'last.safetensors:1:written' }, { fault: 'last.safetensors:1:renamed' },
    { fault: 'last.safetensors:2:partial' }, { fault: 'last.safetensors:1:written' },
    ...Array.from({ length: 4 }, () => ({ killAfterMs: Math.round(300 + r() * r0.ms) })),
  ];
  let killed = 0, lastStep = 0, finished = false;
  for (const round of rounds) {
    const res = await train(out, round);
    if (res.signal === 'SIGKILL') killed++;
    else assert.is(res.code, 0, `a run that was not killed must finish: ${res.log}`);
    if (fs.existsSync(ck)) { // never torn: the checkpoint that is there loads whole and never goes back
      const c = loadCheckpoint(ck).config as { step: number };
      assert.ok(c.step >= lastStep && c.step <= STEPS, `checkpoint step ${c.step} after ${lastStep}`);
      lastStep = c.step;
    }
    if (res.code === 0) { finished = true; break; }
  }
  assert.ok(killed >= 5, `${killed} runs killed`);
  // finish: a run killed after its final checkpoint (step 12) but before its evaluation, summary and report is run
  // again too; it trains nothing and must not evaluate the same weights twice
  for (let i = 0; !finished; i++) {
    assert.ok(i < 3, 'the run finishes');
    const res = await train(out);
    assert.is(res.code, 0, res.log);
    finished = true;
  }
  const got = trainLosses(out);
  assert.equal(got.map((x) => x.step), want.map((x) => x.step), 'each step logged once, in order');
  assert.equal(got.map((x) => x.loss), want.map((x) => x.loss), 'the same losses as the uninterrupted run');
  assert.equal(evals(out), evals(ref), 'the one final evaluation, logged once');
  assert.is((JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')) as { summary?: { finished?: boolean } }).summary?.finished, true);
  assert.equal(fs.readdirSync(out).sort(), ['last.safetensors', 'metrics.jsonl', 'report.html', 'run.json', 'vocab.txt'], 'no temporary file left');
});

test('SIGKILL after the final checkpoint, inside the summary write: the rerun trains and evaluates nothing again and completes the run', async () => {
  const ref = path.join(tmp, 'ref'), out = path.join(tmp, 'killed-at-end');
  const killed = await train(out, { fault: 'run.json:2:written' }); // run.json is written at the start and with the summary
  assert.is(killed.signal, 'SIGKILL', killed.log);
  assert.is((loadCheckpoint(path.join(out, 'last.safetensors')).config as { step: number }).step, STEPS);
  assert.not.ok(fs.existsSync(path.join(out, 'report.html')));
  const res = await train(out);
  assert.is(res.code, 0, res.log);
  assert.equal(evals(out), evals(ref), 'the final evaluation logged once');
  assert.equal(trainLosses(out).map((x) => x.loss), trainLosses(ref).map((x) => x.loss));
  assert.is((JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')) as { summary?: { finished?: boolean } }).summary?.finished, true);
  assert.equal(fs.readdirSync(out).sort(), ['last.safetensors', 'metrics.jsonl', 'report.html', 'run.json', 'vocab.txt'], 'the temporary of the killed write removed');
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
