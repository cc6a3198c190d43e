// The shipped backbones (pretrained/*.safetensors, train/pretrained.ts): each file present in the repository loads
// into the model code of today (every tensor by name and shape) and still grounds: held-out ITM accuracy > 0.75 on
// the first 60 images of the synthetic caption val split (300 captions, each paired with its image and with one
// negative: 600 pairs), regenerated here from the same seed (the split is a function of seed and row only). Its
// recipe metadata names the command, seed, synthetic-data version, commit and the gates reached at pre-training.
// A change to the model code that silently breaks the shipped weights fails here, and so does a committed table cell
// measured on another file than the one shipped under its name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSynthetic, SYNTH_VERSION } from '../../experiments/synthetic.ts';
import { evaluatePretrainFile, gateReport, gateValues, loadPretrainModel, PRETRAIN_GATES, type GateMetrics } from '../../experiments/pretrain.ts';
import { PRETRAINED, PRETRAINED_DIR, pretrainedPath, resolvePretrained } from '../../train/pretrained.ts';
import { DEFAULT_DATA_SEED } from '../../experiments/synth-cache.ts';
import { readMiniTable } from '../../experiments/mini-table.ts';
import { fileSha256 } from '../../train/provenance.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-shipped-'));
const DATA = path.join(tmp, 'synth');
const shipped = (['vilt', 'meter'] as const).filter((b) => fs.existsSync(path.join(PRETRAINED_DIR, PRETRAINED.synth[b])));

test.before(async () => {
  await generateSynthetic({ out: DATA, seed: DEFAULT_DATA_SEED, preset: 'tiny', sizes: { captionVal: 60 } });
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('the preset name resolves to the shipped file, or fails naming the command that makes it', () => {
  for (const b of ['vilt', 'meter'] as const) {
    if (shipped.includes(b)) assert.is(resolvePretrained('synth', b), pretrainedPath('synth', b));
    else assert.throws(() => pretrainedPath('synth', b), new RegExp(`aptune pretrain --preset synth --backbone ${b}`));
  }
  assert.throws(() => pretrainedPath('nope', 'vilt'), /unknown pre-trained preset 'nope'/);
  const self = new URL(import.meta.url).pathname;
  assert.is(resolvePretrained(self, 'vilt'), self, 'an existing path is used as is');
});

for (const b of shipped) {
  test(`${b}: recipe metadata, and held-out ITM > 0.75 on 600 pairs`, async () => {
    const file = pretrainedPath('synth', b);
    const m = loadPretrainModel(file);
    const r = m.config.recipe as Record<string, unknown>;
    assert.is(m.backbone, b);
    assert.ok(typeof r.command === 'string' && (r.command as string).includes('pretrain'), JSON.stringify(r));
    assert.is(r.synthVersion, SYNTH_VERSION, 'pre-trained on another version of the synthetic data');
    assert.is(r.dataSeed, DEFAULT_DATA_SEED);
    assert.ok(typeof r.commit === 'string' && /^[0-9a-f]{40}/.test(r.commit as string), String(r.commit));
    // the grounding gates (ITM, image->text) hold; the file's verdict is the recomputed one; the shipped ViLT passes all
    // three, METER misses the text->image gate (README "Shipped backbones": its file says so in gatesPassed)
    const gates = m.config.gates as GateMetrics & { step: number };
    const v = gateValues(gates); // re-ranked where recorded
    assert.ok(v.itmAcc >= PRETRAIN_GATES.itmAcc && v.r1I2T >= PRETRAIN_GATES.r1I2T, `gates at pre-training: ${JSON.stringify(gates)}`);
    assert.is(m.config.gatesPassed, gateReport(gates).pass);
    if (b === 'vilt') assert.ok(gateReport(gates).pass, `the shipped ViLT passes every gate: ${JSON.stringify(gates)}`);
    for (const p of m.bb.parameters()) p.dispose();
    const g = await evaluatePretrainFile(file, path.join(DATA, 'synth_caption_val.arrow'), { limit: 60 });
    assert.ok(g.itmAcc > 0.75, `held-out ITM ${g.itmAcc.toFixed(3)} on the first 60 val images`);
  });
}

test('results/mini-table.json: a cell that records its backbone digest was measured on the file shipped now', () => {
  // shipping a new backbone without measuring its cells again fails here (cells from before digests were recorded
  // say so in mini-table.md and the README)
  const t = readMiniTable(new URL('../../results/mini-table.json', import.meta.url).pathname);
  for (const c of t.cells) {
    if (!c.pretrainedSha256 || !c.pretrained) continue;
    const file = path.join(PRETRAINED_DIR, path.basename(c.pretrained));
    assert.ok(fs.existsSync(file), `${c.backbone}-${c.task}: ${path.basename(c.pretrained)} is not shipped`);
    assert.is(fileSha256(file), c.pretrainedSha256, `${c.backbone}-${c.task} was measured on another ${path.basename(c.pretrained)}: measure it again`);
  }
  assert.ok(t.cells.some((c) => c.pretrainedSha256), 'no cell records its backbone digest');
});

test.run();
