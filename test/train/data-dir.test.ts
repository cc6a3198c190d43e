// `aptune train --data DIR` on a folder like ViLT's real arrow folder: tables of other tasks and unknown names
// (coco_caption_karpathy_*.arrow) are not opened, only named, so neither they nor a corrupt table of another task
// stop the run; an empty table inside the train split is refused by name instead of being skipped silently.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSynthetic } from '../../experiments/synthetic.ts';
import { VQAV2_LAYOUT, writeTable } from '../../data/formats/arrow.ts';
import { TaskDataset } from '../../data/tasks.ts';
import { runTrain } from '../../train/run.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-datadir-'));
const DATA = path.join(tmp, 'synth');

test('only the task\'s tables are opened; the others are named; a corrupt table of another task does not matter', async () => {
  await generateSynthetic({ out: DATA, seed: 3, preset: 'tiny', imageSize: 32 });
  fs.copyFileSync(path.join(DATA, 'f30k_caption_karpathy_train.arrow'), path.join(DATA, 'coco_caption_karpathy_train.arrow'));
  fs.writeFileSync(path.join(DATA, 'vqav2_val.arrow'), 'ARROW1\0\0 not really'); // corrupt, and not nlvr2's
  const lines: string[] = [];
  const r = await runTrain({ data: DATA, task: 'nlvr2', backbone: 'vilt', config: 'tiny', maxSteps: 1, batchSize: 4, out: path.join(tmp, 'run'), log: (s) => lines.push(s) });
  assert.is(r.steps, 1);
  const note = lines.find((l) => l.includes('not opened:')) ?? '';
  assert.match(note, 'reads nlvr2_train.arrow, nlvr2_dev.arrow, nlvr2_test1.arrow');
  for (const f of ['coco_caption_karpathy_train.arrow', 'vqav2_val.arrow', 'f30k_caption_karpathy_test.arrow']) assert.ok(note.includes(f), `${f} named in: ${note}`);
});

test('an empty table inside the train split is refused, naming it', async () => {
  const dir = path.join(tmp, 'empty');
  fs.mkdirSync(dir);
  for (const f of ['vqav2_trainable_val.arrow']) fs.copyFileSync(path.join(DATA, f), path.join(dir, f));
  await writeTable(path.join(dir, 'vqav2_train.arrow'), VQAV2_LAYOUT.columns, []);
  let err: Error | null = null;
  try { await TaskDataset.open(dir, 'vilt', 'vqa', 'train'); } catch (e) { err = e as Error; }
  assert.match(err?.message ?? '', `${path.join(dir, 'vqav2_train.arrow')}: table is empty (0 rows); the split reads vqav2_train.arrow + vqav2_trainable_val.arrow`);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test.run();
