// `aptune table --mini`'s code path on a TINY generated synthetic set (32 px scenes) with tiny ViLT and METER
// backbones pre-trained here for 1 step: two cells (ViLT retrieval, METER VQA; ViLT VQA is
// test/experiments/compare.test.ts's, NLVR2 goes through the same scoreRun), two methods, one seed, 2 steps, a two-rate grid. Checks the rows (one per cell x
// method, every seed's value, the chosen rate is the grid rate with the best validation score), the retrieval parts,
// the floors, the generated JSON / Markdown (command, commit, machine), the run directories (run.json with the
// resolved config and wall time, metrics.jsonl, the method checkpoint); and that re-running a cell with the same seed
// reproduces its losses exactly (same backend and thread count).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSynthetic } from '../../experiments/synthetic.ts';
import { runPretrain } from '../../experiments/pretrain.ts';
import { runMiniTable, formatMiniTable, mergeMiniTables, readMiniTable, MINI_NEGATIVES, type MiniTable } from '../../experiments/mini-table.ts';
import { main } from '../../train/cli.ts';
import { runTrain } from '../../train/run.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-mini-'));
const DATA = path.join(tmp, 'synth');
const OUT = path.join(tmp, 'results');
const GRID = [5e-4, 1e-3];
let t: MiniTable;
const pre: Record<'vilt' | 'meter', string> = { vilt: path.join(tmp, 'pre', 'vilt.safetensors'), meter: path.join(tmp, 'pre', 'meter.safetensors') };

test.before(async () => {
  await generateSynthetic({ out: DATA, seed: 2, preset: 'tiny', imageSize: 32 });
  for (const b of ['vilt', 'meter'] as const) {
    await runPretrain({ data: DATA, out: pre[b], backbone: b, preset: 'tiny', steps: 1, batchSize: 4, evalEvery: 1, log: () => undefined, command: 'test' });
  }
  t = await runMiniTable({
    data: DATA, out: OUT, seeds: [0], steps: 2, batchSize: 4, methods: ['classifier_only', 'apt'], lrGrid: GRID, pretrained: pre,
    cells: [{ backbone: 'vilt', task: 'irtr' }, { backbone: 'meter', task: 'vqa' }],
    command: 'aptune table --mini (test)', log: () => undefined,
  });
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a cell whose backbone file is missing is skipped and named in notRun; the other cells still run', async () => {
  // (a preset whose shipped file is absent takes the same path: resolvePretrained throws naming the command that makes it)
  const r = await runMiniTable({
    data: DATA, out: path.join(tmp, 'skip'), seeds: [0], steps: 1, batchSize: 4, methods: ['classifier_only'], lrGrid: [5e-4],
    pretrained: { vilt: pre.vilt, meter: path.join(tmp, 'none', 'meter-synth.safetensors') }, cells: [{ backbone: 'meter', task: 'vqa' }, { backbone: 'vilt', task: 'vqa' }],
    command: 'test', log: () => undefined,
  });
  assert.ok(r.notRun.some((x) => /^meter vqa: not run, no backbone .*meter-synth\.safetensors/.test(x)), JSON.stringify(r.notRun));
  assert.equal(r.rows.map((x) => `${x.backbone}-${x.task}-${x.method}`), ['vilt-vqa-classifier_only']);
});

test('one row per cell x method, every seed, the rate with the best validation score', () => {
  assert.equal(t.rows.map((r) => `${r.backbone}-${r.task}-${r.method}`), [
    'vilt-irtr-classifier_only', 'vilt-irtr-apt', 'meter-vqa-classifier_only', 'meter-vqa-apt']);
  for (const r of t.rows) {
    assert.equal(r.seeds.map((s) => s.seed), [0]);
    assert.ok(r.seeds[0].value >= 0 && r.seeds[0].value <= 1);
    assert.is(r.mean, r.seeds[0].value);
    assert.is(r.std, 0);
    assert.equal(r.lrSearch!.map((x) => x.lr), GRID);
    const best = r.lrSearch!.reduce((a, x) => (x.val > a.val ? x : a));
    assert.is(r.lr, best.lr);
    assert.ok(r.msPerStep > 0 && r.peakRssMb > 0);
  }
  assert.is(t.rows.find((r) => r.method === 'classifier_only')!.params, 0);
  assert.ok(t.rows.find((r) => r.method === 'apt')!.params > 0);
  const ir = t.rows.find((r) => r.task === 'irtr')!;
  assert.ok(ir.parts && ir.parts.ir_r1.mean >= 0 && ir.parts.tr_r1.mean >= 0);
  assert.is(ir.mean, (ir.seeds[0].metrics.ir_r1 + ir.seeds[0].metrics.tr_r1) / 2);
  assert.ok(t.cells.every((c) => c.done && c.floors));
  assert.equal(t.notRun, []);
});

test('retrieval cells train with MINI_NEGATIVES captions per image, recorded in the cell, the runs and the report', () => {
  assert.equal(t.cells.map((c) => c.negatives), [MINI_NEGATIVES, undefined]);
  const dir = path.join(OUT, 'cells', 'vilt-irtr', 'runs');
  for (const d of fs.readdirSync(dir)) assert.is(JSON.parse(fs.readFileSync(path.join(dir, d, 'run.json'), 'utf8')).resolved.negatives, MINI_NEGATIVES, d);
  assert.ok(formatMiniTable(t).includes(`its caption and ${MINI_NEGATIVES} random captions`), formatMiniTable(t));
  // the parts of one cell must have trained alike
  const part = (m: string, negatives: number): MiniTable => ({
    ...t, settings: { ...t.settings, methods: [m] }, rows: t.rows.filter((r) => r.method === m && r.task === 'irtr'),
    cells: t.cells.filter((c) => c.task === 'irtr').map((c) => ({ ...c, negatives })),
  });
  assert.throws(() => mergeMiniTables(part('apt', 3), part('classifier_only', 15)), /cell vilt-irtr trained with different negatives per image \(3 vs 15\)/);
});

test('each cell records the SHA-256 of its backbone file (in the report too); parts from different files do not merge', () => {
  const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
  assert.equal(t.cells.map((c) => c.pretrainedSha256), [sha(pre.vilt), sha(pre.meter)]);
  assert.ok(formatMiniTable(t).includes(`Backbone: \`vilt.safetensors\` (sha256 \`${sha(pre.vilt).slice(0, 16)}\`)`), formatMiniTable(t));
  const old = formatMiniTable({ ...t, cells: t.cells.map((c) => ({ ...c, pretrainedSha256: undefined })) }); // a table from before digests
  assert.ok(old.includes('Backbone: `vilt.safetensors` (sha256 not recorded: measured before the table recorded digests'), old);
  const part = (m: string, digest: string): MiniTable => ({
    ...t, settings: { ...t.settings, methods: [m] }, rows: t.rows.filter((r) => r.method === m && r.task === 'irtr'),
    cells: t.cells.filter((c) => c.task === 'irtr').map((c) => ({ ...c, pretrainedSha256: digest })),
  });
  assert.throws(() => mergeMiniTables(part('apt', 'aa'), part('classifier_only', 'bb')), /cell vilt-irtr started from different backbone files \(sha256 aa vs bb\)/);
  assert.is(mergeMiniTables(part('apt', 'aa'), part('classifier_only', 'aa')).rows.length, 2);
});

test('mini-table.json / .md: generated, stating command, commit and machine', () => {
  const j = JSON.parse(fs.readFileSync(path.join(OUT, 'mini-table.json'), 'utf8')) as MiniTable;
  assert.equal(j.rows.length, 4);
  assert.is(j.command, 'aptune table --mini (test)');
  assert.ok(j.commit.length > 0 && j.machine.length > 0);
  const md = fs.readFileSync(path.join(OUT, 'mini-table.md'), 'utf8');
  assert.is(md, formatMiniTable(j));
  assert.ok(md.includes('aptune table --mini (test)') && md.includes(j.commit) && md.includes(j.machine), md);
  assert.ok(md.includes('## VILT / irtr') && md.includes('IR R@1 | TR R@1') && md.includes('floor: chance text->image R@1') && md.includes('floor: question-type prior'), md);
});

test('a table measured a cell at a time: a run into OUT keeps its other cells; --merge adds another run\'s cells', async () => {
  const one = path.join(tmp, 'one'), two = path.join(tmp, 'two');
  fs.cpSync(path.join(OUT, 'mini-table.json'), path.join(one, 'mini-table.json'), { recursive: true });
  const r = await runMiniTable({
    data: DATA, out: one, seeds: [0], steps: 2, batchSize: 4, methods: ['classifier_only', 'apt'], lrGrid: GRID, pretrained: pre,
    cells: [{ backbone: 'vilt', task: 'vqa' }], command: 'aptune table --mini (second)', log: () => undefined,
  });
  const j = readMiniTable(path.join(one, 'mini-table.json'));
  assert.equal(j, r);
  assert.equal(j.cells.map((c) => `${c.backbone}-${c.task}`), ['vilt-vqa', 'vilt-irtr', 'meter-vqa'], 'MINI_CELLS order');
  assert.equal(j.rows.map((x) => `${x.backbone}-${x.task}-${x.method}`), [
    'vilt-vqa-classifier_only', 'vilt-vqa-apt', 'vilt-irtr-classifier_only', 'vilt-irtr-apt', 'meter-vqa-classifier_only', 'meter-vqa-apt']);
  assert.is(j.command, 'aptune table --mini (second)');
  assert.equal(j.cells.map((c) => c.run!.command), ['aptune table --mini (second)', 'aptune table --mini (test)', 'aptune table --mini (test)']);
  assert.ok(j.cells.every((c) => c.done) && j.notRun.length === 0);
  const md = fs.readFileSync(path.join(one, 'mini-table.md'), 'utf8');
  assert.ok(md.includes('Measured by `aptune table --mini (test)`'), md);
  // --merge: the vilt-vqa cell of `one` into a copy of the first table, training nothing
  fs.mkdirSync(two, { recursive: true });
  fs.copyFileSync(path.join(OUT, 'mini-table.json'), path.join(two, 'mini-table.json'));
  assert.is(await main(['table', '--mini', '--merge', path.join(one, 'mini-table.json'), '--out', two]), 0);
  const m = readMiniTable(path.join(two, 'mini-table.json'));
  assert.equal(m.rows, j.rows);
  assert.equal(m.cells.map((c) => c.run!.command), j.cells.map((c) => c.run!.command));
  // a cell measured in parts (disjoint methods, two processes side by side): rows united in the base's method order, each
  // part's provenance kept, done only once the union covers every method
  const only = (m: string, command: string, seconds: number): MiniTable => ({
    ...t, command, settings: { ...t.settings, methods: [m] }, rows: t.rows.filter((r) => r.method === m),
    cells: t.cells.map((c) => ({ ...c, seconds, run: undefined })),
  });
  const a = only('apt', 'part A', 60), b = only('classifier_only', 'part B', 30);
  const half = mergeMiniTables({ ...t, rows: [], cells: t.cells.map((c) => ({ ...c, done: false })), notRun: [] }, a);
  assert.ok(half.cells.every((c) => !c.done), 'a cell with one of two methods is not done');
  assert.ok(half.notRun.some((x) => /^meter vqa: classifier_only \(not reached\)/.test(x)), JSON.stringify(half.notRun));
  const whole = mergeMiniTables(half, b);
  assert.equal(whole.rows.map((x) => `${x.backbone}-${x.task}-${x.method}`), t.rows.map((x) => `${x.backbone}-${x.task}-${x.method}`));
  assert.equal(whole.settings.methods, ['classifier_only', 'apt']);
  assert.ok(whole.cells.every((c) => c.done && c.seconds === 90), JSON.stringify(whole.cells.map((c) => [c.done, c.seconds])));
  assert.equal(whole.cells[0].parts!.map((p) => p.command), ['part A', 'part B']);
  assert.equal(whole.notRun, []);
  assert.ok(formatMiniTable(whole).includes('Measured in 2 parts (disjoint methods): `part A`'), formatMiniTable(whole));
  // the same method measured again replaces the cell (the newer run wins), it is not a part
  assert.is(mergeMiniTables(whole, a).rows.filter((r) => r.task === 'vqa').map((r) => r.method).join(), 'apt');
  // other settings are refused, naming the setting
  assert.throws(() => mergeMiniTables(t, { ...t, settings: { ...t.settings, steps: 3 } }), /different steps \(2 vs 3\)/);
  assert.is(await main(['table', '--mini', '--merge', path.join(one, 'mini-table.json'), '--out', path.join(tmp, 'none')]), 1);
});

test('a run directory holds the resolved config + wall time, metrics and the method checkpoint; same seed -> same losses', async () => {
  const dir = path.join(OUT, 'cells', 'meter-vqa', 'runs', `apt-lr${GRID[0]}-s0`);
  for (const f of ['run.json', 'metrics.jsonl', 'last.safetensors']) assert.ok(fs.existsSync(path.join(dir, f)), f);
  const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
  assert.is(run.resolved.method, 'apt');
  assert.is(run.resolved.backbone, 'meter');
  assert.ok(run.summary.wallSeconds > 0);
  const again = (out: string) => runTrain({ data: DATA, task: 'vqa', backbone: 'meter', pretrained: pre.meter, method: 'apt', maxSteps: 3, batchSize: 4, lr: 1e-3, seed: 5, randaug: false, out, log: () => undefined });
  const a = await again(path.join(tmp, 'rep-a')), b = await again(path.join(tmp, 'rep-b'));
  assert.is(a.losses.length, 3);
  assert.equal(a.losses, b.losses);
});

test.run();
