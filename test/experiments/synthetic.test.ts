// Synthetic benchmark: determinism for a seed (byte-identical tables), labels checked independently against the
// stored scenes, hard negatives false by construction, answers balanced within each question type, and the two
// trivial baselines (question-type prior, image-only k-NN) well below the scene-reading oracle.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSynthetic, runSynth, SIZE_PRESETS, type SynthReport } from '../../experiments/synthetic.ts';
import { ArrowTableReader } from '../../data/formats/arrow.ts';
import { TaskDataset } from '../../data/tasks.ts';
import { randomScene, holds, falsify, type Claim } from '../../experiments/scenes.ts';
import { Rng } from '../../data/rng.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-synth-'));
const arrowFiles = (d: string) => fs.readdirSync(d).filter((f) => f.endsWith('.arrow')).sort();

test('same seed -> byte-identical tables; another seed -> different tables', async () => {
  const a = path.join(tmp, 'a'), b = path.join(tmp, 'b'), c = path.join(tmp, 'c');
  const ra = await generateSynthetic({ out: a, seed: 7, preset: 'tiny' });
  const rb = await generateSynthetic({ out: b, seed: 7, preset: 'tiny', concurrency: 1 });
  await generateSynthetic({ out: c, seed: 8, preset: 'tiny' });
  assert.equal(arrowFiles(a), [
    'f30k_caption_karpathy_test.arrow', 'f30k_caption_karpathy_train.arrow', 'f30k_caption_karpathy_val.arrow',
    'nlvr2_dev.arrow', 'nlvr2_test1.arrow', 'nlvr2_train.arrow', 'synth_caption_train.arrow', 'synth_caption_val.arrow',
    'vqav2_rest_val.arrow', 'vqav2_test.arrow', 'vqav2_train.arrow', 'vqav2_trainable_val.arrow', 'vqav2_val.arrow',
  ]);
  for (const f of arrowFiles(a)) assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `${f} differs between runs`);
  assert.not.ok(fs.readFileSync(path.join(a, 'vqav2_train.arrow')).equals(fs.readFileSync(path.join(c, 'vqav2_train.arrow'))));
  assert.equal({ ...ra, seconds: 0 }, { ...rb, seconds: 0 });
  const rep = JSON.parse(fs.readFileSync(path.join(a, 'report.json'), 'utf8')) as SynthReport;
  assert.is(rep.tables.vqav2_train.rows, SIZE_PRESETS.tiny.vqaTrain);
  // the generated tables open through the task datasets of both model families
  for (const [task, split] of [['vqa', 'train'], ['vqa', 'test'], ['nlvr2', 'val'], ['f30k', 'test']] as const) {
    const ds = await TaskDataset.open(a, 'vilt', task, split);
    assert.ok(ds.length > 0);
    await ds.get(ds.length - 1);
    await ds.close();
  }
});

type SceneObj = { color: string; shape: string; size: string; row: number; col: number };

test('labels agree with the stored scenes (checked independently of the generator)', async () => {
  const d = path.join(tmp, 'a');
  const v = await ArrowTableReader.open(path.join(d, 'vqav2_train.arrow'));
  let checked = 0;
  for (let r = 0; r < v.numRows; r++) {
    const row = await v.row(r, ['questions', 'answers', 'answer_scores', 'question_types', 'scene']);
    const scene = JSON.parse(row.scene as string) as SceneObj[];
    (row.questions as string[]).forEach((q, k) => {
      const best = (row.answers as string[][])[k][(row.answer_scores as number[][])[k].indexOf(Math.max(...(row.answer_scores as number[][])[k]))];
      let m = /^is there an? (\w+) (\w+)\?$/.exec(q);
      if (m) { checked++; assert.is(best, scene.some((o) => o.color === m![1] && o.shape === m![2]) ? 'yes' : 'no', q); }
      m = /^how many (\w+)s are there\?$/.exec(q);
      if (m) { checked++; assert.is(best, String(scene.filter((o) => o.shape === m![1]).length), q); }
      m = /^is the (\w+) (\w+) small or large\?$/.exec(q);
      if (m) { checked++; assert.is(best, scene.find((o) => o.color === m![1] && o.shape === m![2])!.size, q); }
    });
  }
  assert.ok(checked > 10, `only ${checked} questions checked`);
  await v.close();
  const n = await ArrowTableReader.open(path.join(d, 'nlvr2_train.arrow'));
  let nChecked = 0;
  for (let r = 0; r < n.numRows; r++) {
    const row = await n.row(r, ['questions', 'answers', 'scene']);
    const [L, R] = JSON.parse(row.scene as string) as SceneObj[][];
    (row.questions as string[]).forEach((s, k) => {
      const has = (sc: SceneObj[], c: string, sh: string) => sc.some((o) => o.color === c && o.shape === sh);
      let m = /^both images contain an? (\w+) (\w+)$/.exec(s);
      if (m) { nChecked++; assert.is((row.answers as string[])[k], has(L, m[1], m[2]) && has(R, m[1], m[2]) ? 'True' : 'False', s); }
      m = /^the left image has more (\w+)s than the right image$/.exec(s);
      if (m) { nChecked++; assert.is((row.answers as string[])[k], L.filter((o) => o.shape === m![1]).length > R.filter((o) => o.shape === m![1]).length ? 'True' : 'False', s); }
    });
  }
  assert.ok(nChecked > 3, `only ${nChecked} statements checked`);
  await n.close();
});

test('hard negatives are false in their scene, originals true', () => {
  const rng = new Rng(3);
  let made = 0;
  for (let i = 0; i < 200; i++) {
    const s = randomScene(rng);
    const o = s.objects[0], p = s.objects[1];
    const claims: Claim[] = [
      { kind: 'exists', obj: { color: o.color, shape: o.shape, size: o.size } },
      { kind: 'count', obj: { shape: o.shape }, n: s.objects.filter((x) => x.shape === o.shape).length },
      { kind: 'total', n: s.objects.length },
      { kind: 'rel', a: { color: o.color, shape: o.shape }, rel: o.cell % 3 < p.cell % 3 ? 'left of' : 'right of', b: { color: p.color, shape: p.shape } },
    ];
    for (const c of claims) {
      if (!holds(s, c)) continue; // same-column relation
      const bad = falsify(s, c, rng);
      if (bad) { made++; assert.not.ok(holds(s, bad), JSON.stringify(bad)); }
    }
  }
  assert.ok(made > 600);
});

test('answers balanced within question types; trivial baselines far below the oracle', async () => {
  const out = path.join(tmp, 'base');
  const r = await generateSynthetic({
    out, seed: 1, preset: 'tiny',
    sizes: { vqaTrain: 400, vqaVal: 40, vqaTest: 120, questionsPerImage: 5, minAnswerCount: 9 },
  });
  const b = r.vqa.testBaselines;
  assert.ok(r.vqa.answers.length >= 20, `${r.vqa.answers.length} answers`);
  for (const [t, share] of Object.entries(r.vqa.maxAnswerShareWithinType)) assert.ok(share <= 0.55, `${t}: largest answer share ${share}`);
  assert.ok(r.vqa.ambiguousQuestions > 0);
  assert.ok(b.oracle > 0.97, `oracle ${b.oracle}`);
  assert.ok(b.questionTypePrior < 0.5, `question-type prior ${b.questionTypePrior}`);
  assert.ok(b.imageOnlyKnn < 0.3, `image-only ${b.imageOnlyKnn}`);
  assert.ok(b.oracle - Math.max(b.questionTypePrior, b.imageOnlyKnn, b.typePlusImageKnn) > 0.4);
  assert.ok(Math.abs(r.nlvr2.trueFraction - 0.5) < 0.1, `NLVR2 true fraction ${r.nlvr2.trueFraction}`);
});

test('synth command line: usage errors are explicit; --json prints the report', async () => {
  try { await runSynth(['--seed', '1']); assert.unreachable(); } catch (e) { assert.match((e as Error).message, '--out DIR is required'); }
  try { await runSynth(['--out', tmp, '--size', 'huge']); assert.unreachable(); } catch (e) { assert.match((e as Error).message, '--size must be one of'); }
  try { await runSynth(['--out', tmp, '--frobnicate']); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'unknown argument --frobnicate'); }
  try { await runSynth(['--out', tmp, '--vqa-train', '-3']); assert.unreachable(); } catch (e) { assert.match((e as Error).message, '--vqa-train needs a non-negative integer'); }
  const lines: string[] = [];
  const orig = console.log;
  console.log = (m: string) => lines.push(m);
  try { await runSynth(['--out', path.join(tmp, 'cli'), '--size', 'tiny', '--seed', '2', '--image-size', '32', '--json']); } finally { console.log = orig; }
  const rep = JSON.parse(lines[lines.length - 1]) as SynthReport;
  assert.is(rep.imageSize, 32);
  assert.ok(fs.existsSync(path.join(tmp, 'cli', 'report.json')));
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
