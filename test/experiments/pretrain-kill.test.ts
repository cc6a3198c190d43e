// Durability of `aptune pretrain --resume`: a tiny run (12 steps, --save-every 2, gates every 4) is SIGKILLed inside
// the state write (APTUNE_FAULT_ATOMIC: half the temporary written / complete but not renamed / renamed but the
// directory not synced) and at seeded random instants, and run again with --resume each time. The finished run must
// write the same checkpoint, bit for bit, and log the same losses and gates as an uninterrupted run, each step once,
// and leave neither the state file nor a temporary behind; a state of other settings is refused, naming them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSynthetic } from '../../experiments/synthetic.ts';
import { loadCheckpoint } from '../../train/checkpoint.ts';
import { rng } from '../fuzz/harness.ts';
import { spawnAptune } from '../helpers.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-pretrain-kill-'));
const DATA = path.join(tmp, 'synth');
const STEPS = 12;

function pretrain(out: string, o: { fault?: string; killAfterMs?: number; extra?: string[] } = {}) {
  return spawnAptune(['pretrain', '--data', DATA, '--preset', 'tiny', '--steps', String(STEPS), '--batch-size', '4', '--save-every', '2',
    '--eval-every', '4', '--seed', '3', '--out', out, '--resume', ...(o.extra ?? [])], { env: o.fault ? { APTUNE_FAULT_ATOMIC: o.fault } : {}, killAfterMs: o.killAfterMs });
}

const runDir = (out: string) => out.replace(/\.safetensors$/, '-run');
const records = (out: string, type: string) => fs.readFileSync(path.join(runDir(out), 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.type === type).map(({ seconds: _s, ...r }) => r);

test('pretrain SIGKILLed at any instant, inside the state write included, and resumed: the uninterrupted checkpoint, losses and gates', async () => {
  await generateSynthetic({ out: DATA, seed: 2, preset: 'tiny', imageSize: 32 });
  const ref = path.join(tmp, 'ref', 'p.safetensors');
  const r0 = await pretrain(ref);
  assert.is(r0.code, 0, r0.log);
  const want = loadCheckpoint(ref);

  const out = path.join(tmp, 'killed', 'p.safetensors');
  const state = path.join(runDir(out), 'last.safetensors');
  const r = rng(20261207);
  const rounds: { fault?: string; killAfterMs?: number }[] = [
    { fault: 'last.safetensors:2:partial' }, { fault: 'last.safetensors:1:written' }, { fault: 'last.safetensors:2:renamed' },
    { fault: 'last.safetensors:1:partial' },
    ...Array.from({ length: 3 }, () => ({ killAfterMs: Math.round(300 + r() * r0.ms) })),
  ];
  let killed = 0, lastStep = 0, finished = false, resumed = 0;
  for (const round of rounds) {
    const res = await pretrain(out, round);
    if (/resumed .* at step \d+/.test(res.log)) resumed++;
    if (res.signal === 'SIGKILL') killed++;
    else assert.is(res.code, 0, `a run that was not killed must finish: ${res.log}`);
    if (fs.existsSync(state)) { // never torn: the state that is there loads whole and never goes back
      const s = (loadCheckpoint(state).config as { step: number }).step;
      assert.ok(s >= lastStep && s < STEPS, `state step ${s} after ${lastStep}`);
      lastStep = s;
    } else if (lastStep > 0) { // gone: only once FILE is written (a kill after that, before exit: the next run starts afresh)
      assert.ok(fs.existsSync(out), `the state was removed without ${out}`);
      lastStep = 0;
    }
    if (res.code === 0) { finished = true; break; }
  }
  assert.ok(killed >= 4, `${killed} runs killed`);
  assert.ok(resumed >= 2, `${resumed} runs resumed`);
  for (let i = 0; !finished; i++) {
    assert.ok(i < 3, 'the run finishes');
    const res = await pretrain(out);
    assert.is(res.code, 0, res.log);
    finished = true;
  }
  const got = loadCheckpoint(out);
  assert.equal([...got.tensors.keys()].sort(), [...want.tensors.keys()].sort());
  for (const [k, t] of want.tensors) assert.ok(Buffer.from(got.tensors.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), `${k}: bit for bit`);
  assert.equal((got.config as { gates: unknown }).gates, (want.config as { gates: unknown }).gates);
  assert.equal(records(out, 'train'), records(ref, 'train'), 'each logged step once, the same losses');
  assert.equal(records(out, 'gate'), records(ref, 'gate'), 'the same gates');
  assert.not.ok(fs.existsSync(state), 'the state is removed once the checkpoint is written');
  for (const d of [runDir(out), path.dirname(out)]) assert.equal(fs.readdirSync(d).filter((f) => f.includes('.tmp-')), [], `no temporary file in ${d}`);
});

test('pretrain --resume refuses a state of other settings, naming them', async () => {
  const out = path.join(tmp, 'other', 'p.safetensors');
  const k = await pretrain(out, { fault: 'last.safetensors:2:renamed' }); // a state at step 4 is there
  assert.is(k.signal, 'SIGKILL', k.log);
  const res = await pretrain(out, { extra: ['--lr', '0.001'] });
  assert.is(res.code, 1, res.log);
  assert.match(res.log, /last\.safetensors: a run of other settings \(lr: state 0\.002, this run 0\.001\); remove it or run without --resume/);
  const other = path.join(tmp, 'synth-copy');
  fs.cpSync(DATA, other, { recursive: true });
  const d = await spawnAptune(['pretrain', '--data', other, '--preset', 'tiny', '--steps', String(STEPS), '--batch-size', '4', '--save-every', '2', '--eval-every', '4', '--seed', '3', '--out', out, '--resume']);
  assert.is(d.code, 1, d.log);
  assert.match(d.log, /a run of other settings \(data: state ".*synth", this run ".*synth-copy"\)/, 'another data directory is another run');
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
