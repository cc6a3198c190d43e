// Checkpoints: the torch-written .ckpt fixture (scripts/make_ckpt_fixture.py) read with exact values, import into
// a ViLT module by name, HF ViLT name mapping, the missing/unexpected report, position-table resize against
// torch's bicubic, the project's own format (method checkpoints), and the errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ViltModel, VILT_TINY, type ViltConfig } from '../../models/vilt.ts';
import { createModel } from '../../models/index.ts';
import { OpaqueObject, PickleGlobal, readTorchStateDict, readTorchZip, unpickle } from '../../data/formats/torch_pickle.ts';
import { legacyTorchSave } from './torch-legacy-writer.ts';
import { writeSafetensors, type HostTensor } from '../../data/formats/safetensors.ts';
import {
  convertCheckpoint, detectFormat, readExternalWeights, expectedShapes, importCheckpoint, importPretrained, loadCheckpoint, loadMethodCheckpoint, mapHfViltNames, planImport, saveCheckpoint,
  saveMethodCheckpoint, resizePositionTable,
} from '../../train/checkpoint.ts';
import { METER_TINY, type MeterConfig } from '../../models/index.ts';
import { onShapeBackend } from '../../models/accounting.ts';
import { TINY_METHOD_OPTIONS } from '../../models/petl/index.ts';
import { noGrad, tensor } from '../../engine/index.ts';
import { main as cliMain } from '../../train/cli.ts';
import type { ItmHead } from '../../models/heads.ts';

const FIX = new URL('../fixtures/ckpt/', import.meta.url).pathname;
const CKPT = join(FIX, 'vilt_tiny.ckpt');
const expected = JSON.parse(readFileSync(join(FIX, 'vilt_tiny.expected.json'), 'utf8')) as {
  tensors: Record<string, { shape: number[]; dtype: string; data: number[] }>;
  pos_embed_resized_3x3: { shape: number[]; data: number[] };
};
const dir = mkdtempSync(join(tmpdir(), 'aptune-ck-'));
// the fixture's configuration (hidden 16, 2 blocks, vocabulary 30, 8 text positions, 2x2 grid of 4 px patches)
const CFG: ViltConfig = { ...VILT_TINY, hidden: 16, heads: 2, layers: 2, mlp: 64, vocab: 30, maxTextLen: 8, patch: 4, posGrid: 2, drop: 0 };

const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((v, i) => v === b[i]);

test('.ckpt written by torch.save: every tensor with exact values (int64, float16, transposed, Parameter)', () => {
  const sd = readTorchStateDict(CKPT);
  assert.is(sd.size, Object.keys(expected.tensors).length);
  for (const [k, e] of Object.entries(expected.tensors)) {
    const t = sd.get(k);
    assert.ok(t, `missing ${k}`);
    assert.equal(t!.shape, e.shape, k);
    assert.is(t!.dtype, e.dtype, k);
    assert.ok(same(t!.data, e.data), `values of ${k}`);
  }
  const root = readTorchZip(CKPT);
  try {
    const m = root.root as Map<string, unknown>;
    assert.is(m.get('global_step'), 200000);
    assert.is(m.get('pytorch-lightning_version'), '1.1.4');
    const cfg = (m.get('hyper_parameters') as Map<string, Map<string, number>>).get('config')!;
    assert.is(cfg.get('hidden_size'), 16);
    // Lightning / sacred / numpy objects beside the weights are recorded inertly, never constructed
    assert.ok(cfg instanceof OpaqueObject && cfg.global.full === 'sacred.config.custom_containers.ReadOnlyDict');
    const [cbKey, cbState] = [...(m.get('callbacks') as Map<unknown, Map<string, unknown>>)][0];
    assert.ok(cbKey instanceof PickleGlobal && cbKey.full === 'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint' && cbKey.inert);
    const score = cbState.get('best_model_score');
    assert.ok(score instanceof OpaqueObject && score.global.full === 'numpy.core.multiarray.scalar');
  } finally {
    root.close();
  }
});

test('a zip with deflated entries reads the same (zip tools may re-pack checkpoints)', () => {
  const a = readTorchStateDict(CKPT), b = readTorchStateDict(join(FIX, 'vilt_tiny_deflated.ckpt'));
  assert.equal([...b.keys()], [...a.keys()]);
  for (const [k, t] of a) assert.ok(same(b.get(k)!.data, t.data), k);
});

test('the unpickler refuses globals outside the whitelist and unknown opcodes, executing nothing', () => {
  // \x80\x02 c os\nsystem\n (GLOBAL) ...
  const evil = Buffer.from('\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.', 'latin1');
  assert.throws(() => unpickle(evil, 'evil.pkl', () => null), /evil\.pkl: .*refusing global 'os\.system'/);
  assert.throws(() => unpickle(Buffer.from([0x80, 0x02, 0x69]), 'x.pkl', () => null), /unsupported pickle opcode 0x69/);
  assert.throws(() => unpickle(Buffer.from([0x80, 0x02, 0x58, 9, 0, 0, 0, 0x61]), 't.pkl', () => null), /t\.pkl: pickle: at byte 7: BINUNICODE length: needs 9 bytes, 1 remain \(truncated/);
});

test('import of the .ckpt into a ViLT module by name: values land, report lists unexpected keys', () => {
  const model = new ViltModel(CFG);
  const r = importCheckpoint(CKPT, model);
  assert.is(r.format, 'torch-zip');
  assert.equal(r.missing, []);
  assert.equal(r.unexpected.sort(), ['itm_score.fc.bias', 'itm_score.fc.weight', 'mlm_score.bias']);
  const sd = model.stateDict();
  for (const k of ['pooler.dense.weight', 'transformer.blocks.1.attn.qkv.weight', 'text_embeddings.word_embeddings.weight', 'transformer.pos_embed']) {
    assert.ok(same(sd.get(k)!.toArray(), expected.tensors[k].data), k);
  }
  assert.ok(same(sd.get('text_embeddings.position_ids')!.toArray(), [0, 1, 2, 3, 4, 5, 6, 7]));
});

/** HF names built from the fixture, independently of mapHfViltNames (split qkv, rename). */
function hfFromFixture(): Map<string, HostTensor> {
  const sd = readTorchStateDict(CKPT);
  const hf = new Map<string, HostTensor>();
  const put = (k: string, t: HostTensor) => hf.set(k, t);
  for (const [k, t] of sd) {
    let m: RegExpExecArray | null;
    if ((m = /^transformer\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)$/.exec(k))) {
      const rows = t.shape[0] / 3, per = t.data.length / 3;
      ['query', 'key', 'value'].forEach((n, j) => put(`vilt.encoder.layer.${m![1]}.attention.attention.${n}.${m![2]}`,
        { dtype: 'float32', shape: [rows, ...t.shape.slice(1)], data: (t.data as Float32Array).slice(j * per, (j + 1) * per) }));
    } else if ((m = /^transformer\.blocks\.(\d+)\.(.+)$/.exec(k))) {
      const map: Record<string, string> = { norm1: 'layernorm_before', 'attn.proj': 'attention.output.dense', norm2: 'layernorm_after', 'mlp.fc1': 'intermediate.dense', 'mlp.fc2': 'output.dense' };
      const pre = Object.keys(map).find((p) => m![2].startsWith(p + '.'))!;
      put(`vilt.encoder.layer.${m[1]}.${map[pre]}${m[2].slice(pre.length)}`, t);
    } else if (k.startsWith('text_embeddings.')) put('vilt.embeddings.' + k, t);
    else {
      const fixed: Record<string, string> = {
        'transformer.cls_token': 'vilt.embeddings.cls_token', 'transformer.pos_embed': 'vilt.embeddings.position_embeddings',
        'transformer.patch_embed.proj.weight': 'vilt.embeddings.patch_embeddings.projection.weight',
        'transformer.patch_embed.proj.bias': 'vilt.embeddings.patch_embeddings.projection.bias',
        'token_type_embeddings.weight': 'vilt.embeddings.token_type_embeddings.weight',
        'transformer.norm.weight': 'vilt.layernorm.weight', 'transformer.norm.bias': 'vilt.layernorm.bias',
        'pooler.dense.weight': 'vilt.pooler.dense.weight', 'pooler.dense.bias': 'vilt.pooler.dense.bias', 'mlm_score.bias': 'mlm_score.decoder.bias',
      };
      put(fixed[k] ?? k, t);
    }
  }
  return hf;
}

test('HF ViLT safetensors: names mapped (q/k/v concatenated), same weights as the .ckpt', () => {
  const hf = hfFromFixture();
  assert.ok(hf.has('vilt.encoder.layer.0.attention.attention.key.bias'));
  const mapped = mapHfViltNames(hf);
  const orig = readTorchStateDict(CKPT);
  assert.equal([...mapped.keys()].sort(), [...orig.keys()].sort());
  for (const [k, t] of orig) assert.ok(same(mapped.get(k)!.data, t.data), k);
  const p = join(dir, 'hf.safetensors');
  writeSafetensors(p, hf);
  assert.is(detectFormat(p), 'safetensors');
  const model = new ViltModel(CFG);
  const r = importCheckpoint(p, model);
  assert.ok(r.hfNames);
  assert.equal(r.missing, []);
  assert.ok(same(model.stateDict().get('transformer.blocks.0.attn.qkv.bias')!.toArray(), expected.tensors['transformer.blocks.0.attn.qkv.bias'].data));
});

test('missing and unexpected keys are reported; strict mode names the missing ones', () => {
  const hf = hfFromFixture();
  hf.delete('vilt.pooler.dense.bias');
  hf.delete('vilt.layernorm.weight');
  hf.set('some.extra.tensor', { dtype: 'float32', shape: [2], data: new Float32Array(2) });
  const p = join(dir, 'partial.safetensors');
  writeSafetensors(p, hf);
  const r = importCheckpoint(p, new ViltModel(CFG));
  assert.equal(r.missing.sort(), ['pooler.dense.bias', 'transformer.norm.weight']);
  assert.ok(r.unexpected.includes('some.extra.tensor'));
  assert.throws(() => importCheckpoint(p, new ViltModel(CFG), { strict: true }), /partial\.safetensors: 2 missing key\(s\): .*pooler\.dense\.bias/);
  // allowed-missing names do not fail strict mode
  importCheckpoint(p, new ViltModel(CFG), { strict: true, allowMissing: (n) => n === 'pooler.dense.bias' || n === 'transformer.norm.weight' });
});

test('errors: not a checkpoint, truncated file, shape mismatch naming the tensor', () => {
  const junk = join(dir, 'junk.ckpt');
  writeFileSync(junk, 'this is plain text, not weights');
  assert.throws(() => importCheckpoint(junk, new ViltModel(CFG)), /junk\.ckpt: not a checkpoint/);
  const cut = join(dir, 'cut.ckpt');
  const bytes = readFileSync(CKPT);
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  assert.throws(() => importCheckpoint(cut, new ViltModel(CFG)), /cut\.ckpt: .*(truncated|not a zip)/);
  assert.throws(() => importCheckpoint(CKPT, new ViltModel({ ...CFG, vocab: 31 })), /vilt_tiny\.ckpt: shape mismatch for 'text_embeddings\.word_embeddings\.weight': checkpoint has \[30, 16\], model expects \[31, 16\]/);
});

test('position table resized on load: CLS row kept, grid bicubic like torch (2x2 -> 3x3)', () => {
  const pe = readTorchStateDict(CKPT).get('transformer.pos_embed')!;
  const out = resizePositionTable(pe, 10, 'pos');
  assert.equal(out.shape, [1, 10, 16]);
  const want = expected.pos_embed_resized_3x3.data;
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(out.data[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `element ${i}: ${out.data[i]} vs ${want[i]}`);
  // planImport resizes a table of another grid instead of failing, and says so
  const { report, tensors } = planImport('f', 'torch-zip', new Map([['vit_model.visual.positional_embedding', { dtype: 'float32', shape: [5, 16], data: pe.data }]]), new Map([['vit_model.visual.positional_embedding', [10, 16]]]));
  assert.equal(report.resized, [{ name: 'vit_model.visual.positional_embedding', from: [5, 16], to: [10, 16] }]);
  assert.equal(tensors.get('vit_model.visual.positional_embedding')!.shape, [10, 16]);
});

test('own format: round trip with config; a method checkpoint holds only trainable weights', () => {
  const model = new ViltModel(CFG);
  importCheckpoint(CKPT, model);
  model.freeze();
  model.unfreeze('pooler');
  const p = join(dir, 'method.safetensors');
  const names = saveMethodCheckpoint(p, model, { method: 'classifier_only', lr: 5e-4 });
  assert.equal(names.sort(), ['pooler.dense.bias', 'pooler.dense.weight']);
  const ck = loadCheckpoint(p);
  assert.equal(ck.config, { method: 'classifier_only', lr: 5e-4 });
  assert.equal([...ck.tensors.keys()].sort(), names);
  const fresh = new ViltModel(CFG);
  const r = loadMethodCheckpoint(p, fresh);
  assert.equal(r.loaded.sort(), names);
  assert.ok(same(fresh.stateDict().get('pooler.dense.weight')!.toArray(), expected.tensors['pooler.dense.weight'].data));
  assert.throws(() => loadCheckpoint(CKPT), /PyTorch zip checkpoint, not an aptune checkpoint/);
  const plain = join(dir, 'plain.safetensors');
  writeSafetensors(plain, { w: { dtype: 'float32', shape: [1], data: new Float32Array(1) } });
  assert.throws(() => loadCheckpoint(plain), /plain\.safetensors: not an aptune checkpoint/);
  saveCheckpoint(join(dir, 'bad.safetensors'), new Map([['nope', { dtype: 'float32', shape: [1], data: new Float32Array(1) }]]), {});
  assert.throws(() => loadMethodCheckpoint(join(dir, 'bad.safetensors'), fresh), /bad\.safetensors: 1 tensor\(s\) not in the model: nope/);
});

test('importPretrained into a createModel model: NLVR2 type row 2 := row 1, method modules left missing, flags kept', () => {
  const model = createModel({ backbone: 'vilt', config: CFG, task: 'nlvr2', method: 'apt', methodOptions: { tokens: 4, rank: 2 } });
  const r = importPretrained(CKPT, model, { strict: true, allowMissing: (n) => n.includes('.APT.') || n.startsWith('nlvr2_classifier') || n === 'token4classifier' });
  assert.ok(r.missing.some((n) => n.includes('.APT.')));
  assert.equal(r.resized.map((x) => x.name), ['token_type_embeddings.weight']);
  const sd = model.stateDict();
  const tt = Array.from(sd.get('token_type_embeddings.weight')!.toArray());
  const want = expected.tensors['token_type_embeddings.weight'].data;
  assert.ok(same(tt, [...want, ...want.slice(16, 32)]));
  const trainable = new Set(model.trainableParameters().map(([n]) => n));
  assert.ok(trainable.has('token_type_embeddings.weight') && trainable.has('token4classifier'));
  assert.not.ok(trainable.has('transformer.blocks.0.attn.qkv.weight'));
  assert.ok(same(sd.get('transformer.blocks.0.attn.qkv.weight')!.toArray(), expected.tensors['transformer.blocks.0.attn.qkv.weight'].data));
});

test('convertCheckpoint (aptune import) writes an aptune checkpoint with the report in its config', () => {
  const out = join(dir, 'converted.safetensors');
  const r = convertCheckpoint({ from: CKPT, out, model: 'vilt', config: CFG });
  assert.match(r.text, /unexpected 1: mlm_score\.bias/);
  assert.ok(r.report.loaded.includes('itm_score.fc.weight')); // the import target carries the pre-trained ITM head
  const ck = loadCheckpoint(out);
  const cfg = ck.config as { kind: string; model: string; unexpected: string[]; missing: string[] };
  assert.is(cfg.kind, 'pretrained');
  assert.is(cfg.model, 'vilt');
  assert.equal(cfg.unexpected, ['mlm_score.bias']);
  assert.equal(cfg.missing, []);
  assert.ok(same(ck.tensors.get('transformer.blocks.1.mlp.fc2.weight')!.data, expected.tensors['transformer.blocks.1.mlp.fc2.weight'].data));
  assert.throws(() => convertCheckpoint({ from: CKPT, out: join(dir, 'x.safetensors'), model: 'vilt' }), /shape mismatch for 'text_embeddings\.word_embeddings\.weight'/);
});

test('expected names and shapes of the full-size backbones (import targets), METER table sized for the run', () => {
  const v = expectedShapes('vilt');
  assert.equal(v.get('transformer.blocks.11.attn.qkv.weight'), [2304, 768]);
  assert.equal(v.get('transformer.pos_embed'), [1, 145, 768]);
  const m = expectedShapes('meter', { imageSize: 288 });
  assert.equal(m.get('vit_model.visual.positional_embedding'), [325, 768]);
  assert.equal(expectedShapes('meter').get('vit_model.visual.positional_embedding'), [577, 768]);
  assert.ok(m.has('cross_modal_image_layers.5.crossattention.self.value.weight'));
  assert.ok(m.has('itm_score.fc.weight'));
});

// ------------------------------------------------------------------ METER: test/fixtures/ckpt/meter_tiny.ckpt
// Written by torch.save (scripts/make_ckpt_fixture.py) under METER's reference names for METER_TINY narrowed to
// fusion and RoBERTa hidden 16, CLIP width 12 (same layer counts, so the same names); its CLIP position
// table is for a 3x3 grid (24 px) while the model is built for 2x2 (16 px). The JSON holds torch's checksums.
const MCKPT = join(FIX, 'meter_tiny.ckpt');
type TorchCheck = { shape: number[]; dtype: string; sum: number; wsum: number; abs_sum: number; data?: number[] };
const mexp = JSON.parse(readFileSync(join(FIX, 'meter_tiny.expected.json'), 'utf8')) as {
  config: Record<string, number | string>;
  tensors: Record<string, TorchCheck>;
  positional_embedding_resized: Record<'2' | '4', { shape: number[]; data: number[] }>;
};
const MCFG: MeterConfig = {
  ...METER_TINY, hidden: 16, heads: 2, intermediate: 32,
  clip: { ...METER_TINY.clip, width: 12, heads: 2 },
  roberta: { ...METER_TINY.roberta, hidden: 16, heads: 2, intermediate: 24 },
};
const PE = 'vit_model.visual.positional_embedding';
const MLM = ['mlm_score.bias', 'mlm_score.decoder.weight', 'mlm_score.transform.LayerNorm.bias', 'mlm_score.transform.LayerNorm.weight', 'mlm_score.transform.dense.bias', 'mlm_score.transform.dense.weight'];

/** Values `a` (row-major) against torch's checks of tensor `name`: float64 sum and weighted sum, all values when stored. */
function matchesTorch(name: string, a: ArrayLike<number>): boolean {
  const e = mexp.tensors[name];
  if (!e || a.length !== e.shape.reduce((x, y) => x * y, 1)) return false;
  let s = 0, w = 0;
  for (let i = 0; i < a.length; i++) { s += a[i]; w += a[i] * ((i % 13) - 6); }
  const tol = 1e-9 * (1 + 6 * e.abs_sum);
  return Math.abs(s - e.sum) <= tol && Math.abs(w - e.wsum) <= tol && (!e.data || same(a, e.data));
}
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => a.length === b.length && Array.from(a).every((v, i) => Math.abs(v - b[i]) <= tol * (1 + Math.abs(b[i])));
const sortedKeys = (m: Map<string, unknown>, pred: (k: string) => boolean = () => true) => [...m.keys()].filter(pred).sort();

test('METER .ckpt by torch.save: every tensor equals torch (tied storage, offset view, int64 buffer), Lightning root', () => {
  const sd = readTorchStateDict(MCKPT);
  assert.equal([...sd.keys()].sort(), Object.keys(mexp.tensors).sort());
  for (const [k, t] of sd) {
    assert.equal(t.shape, mexp.tensors[k].shape, k);
    assert.is(t.dtype, mexp.tensors[k].dtype, k);
    assert.ok(matchesTorch(k, t.data), `values of ${k}`);
  }
  // mlm_score.decoder.weight is the word-embedding tensor itself in the file (one storage, two names)
  assert.ok(same(sd.get('mlm_score.decoder.weight')!.data, sd.get('text_transformer.embeddings.word_embeddings.weight')!.data));
  assert.ok(same(sd.get('text_transformer.embeddings.position_ids')!.data, Array.from({ length: 18 }, (_, i) => i)));
  const root = readTorchZip(MCKPT);
  try {
    const m = root.root as Map<string, unknown>;
    assert.is(m.get('epoch'), 9);
    assert.is(m.get('pytorch-lightning_version'), '1.3.2');
    const cfg = (m.get('hyper_parameters') as Map<string, Map<string, unknown>>).get('config')!;
    assert.ok(cfg instanceof OpaqueObject && cfg.global.full === 'sacred.config.custom_containers.ReadOnlyDict');
  } finally {
    root.close();
  }
  // the fixture's hyper-parameters are the narrowed config the tests build (its image size is the ckpt's 3x3 grid)
  assert.equal([mexp.config.hidden_size, mexp.config.num_top_layer, mexp.config.input_image_embed_size, mexp.config.input_text_embed_size, mexp.config.patch_size, mexp.config.image_size],
    [MCFG.hidden, MCFG.fusionLayers, MCFG.clip.width, MCFG.roberta.hidden, MCFG.clip.patch, 3 * MCFG.clip.patch]);
});

test("METER fixture config builds exactly METER_TINY's names for vqa, nlvr2 and irtr (only widths differ)", () => {
  for (const task of ['vqa', 'nlvr2', 'irtr'] as const) {
    const names = (config: MeterConfig | 'tiny') => onShapeBackend(() => sortedKeys(createModel({ backbone: 'meter', config, task, method: 'full', numAnswers: 7 }).stateDict()));
    assert.equal(names(MCFG), names('tiny'), task);
  }
});

test('importPretrained METER (vqa): every backbone tensor exact, CLIP table 3x3 -> 2x2 like torch bicubic, mlm/itm unexpected, VQA head missing', () => {
  const model = createModel({ backbone: 'meter', config: MCFG, task: 'vqa', method: 'full', numAnswers: 7 });
  const before = Array.from(model.stateDict().get('vqa_classifier.3.weight')!.toArray());
  const r = importPretrained(MCKPT, model, { strict: true, allowMissing: (n) => n.startsWith('vqa_classifier.') });
  const sd = model.stateDict();
  assert.equal(r.missing.sort(), sortedKeys(sd, (k) => k.startsWith('vqa_classifier.')));
  assert.ok(r.missing.length === 6);
  assert.equal(r.unexpected.sort(), [...MLM, 'itm_score.fc.bias', 'itm_score.fc.weight'].sort());
  assert.equal(r.resized, [{ name: PE, from: [10, 12], to: [5, 12] }]);
  assert.equal(r.loaded.sort(), sortedKeys(sd, (k) => !k.startsWith('vqa_classifier.')));
  for (const k of r.loaded) if (k !== PE) assert.ok(matchesTorch(k, sd.get(k)!.toArray()), `value of ${k}`);
  const want = mexp.positional_embedding_resized['2'];
  assert.equal(sd.get(PE)!.shape, want.shape);
  assert.ok(close(sd.get(PE)!.toArray(), want.data), 'position table vs torch F.interpolate bicubic');
  assert.ok(same(Array.from(sd.get(PE)!.toArray()).slice(0, 12), mexp.tensors[PE].data ?? readTorchStateDict(MCKPT).get(PE)!.data.slice(0, 12)), 'CLS row kept');
  assert.ok(same(sd.get('vqa_classifier.3.weight')!.toArray(), before), 'the new head is left as initialised');
  // without allowMissing, strict names the VQA head
  assert.throws(() => importPretrained(MCKPT, createModel({ backbone: 'meter', config: MCFG, task: 'vqa', method: 'full', numAnswers: 7 }), { strict: true }), /meter_tiny\.ckpt: 6 missing key\(s\): vqa_classifier\./);
  // the imported model runs (16 px image, 2x2 grid)
  const out = noGrad(() => model.forward({
    textIds: tensor(Int32Array.from([0, 5, 9, 2]), [1, 4], { dtype: 'int32' }), textMasks: tensor([[1, 1, 1, 1]]),
    image: tensor(Float32Array.from({ length: 3 * 16 * 16 }, (_, i) => Math.sin(i)), [1, 3, 16, 16]),
  }));
  assert.equal(out.logits.shape, [1, 7]);
  assert.ok(Array.from(out.logits.toArray()).every(Number.isFinite));
});

test('importPretrained METER (nlvr2, APT): type table grows to 3 rows with row 2 = row 1; APT modules and NLVR2 head missing', () => {
  const model = createModel({ backbone: 'meter', config: MCFG, task: 'nlvr2', method: 'apt', methodOptions: TINY_METHOD_OPTIONS.apt });
  const r = importPretrained(MCKPT, model, { strict: true, allowMissing: (n) => n.includes('.APT.') || n.startsWith('nlvr2_classifier.') || n === 'token4classifier' });
  assert.ok(r.missing.some((n) => n.startsWith('cross_modal_text_layers.0.crossattention.output.APT.')));
  assert.ok(r.missing.every((n) => n.includes('.APT.') || n.startsWith('nlvr2_classifier.') || n === 'token4classifier'));
  assert.equal(r.resized.map((x) => x.name).sort(), ['token_type_embeddings.weight', PE]);
  const tt = Array.from(model.stateDict().get('token_type_embeddings.weight')!.toArray());
  const src = readTorchStateDict(MCKPT).get('token_type_embeddings.weight')!.data;
  assert.ok(matchesTorch('token_type_embeddings.weight', tt.slice(0, 32)));
  assert.ok(same(tt, [...src, ...Array.from(src).slice(16, 32)]));
  assert.ok(r.unexpected.includes('itm_score.fc.weight') && r.unexpected.includes('mlm_score.decoder.weight'));
  assert.ok(matchesTorch('cross_modal_image_layers.1.crossattention.self.key.weight', model.stateDict().get('cross_modal_image_layers.1.crossattention.self.key.weight')!.toArray()));
});

test('importPretrained METER (irtr): ITM head loaded exactly, rank_output := ITM row 1 (scores agree)', () => {
  const model = createModel({ backbone: 'meter', config: MCFG, task: 'irtr', method: 'full' });
  const r = importPretrained(MCKPT, model);
  assert.equal(r.missing.sort(), ['rank_output.bias', 'rank_output.weight']);
  assert.equal(r.unexpected.sort(), MLM);
  const sd = model.stateDict();
  const itmW = mexp.tensors['itm_score.fc.weight'].data!, itmB = mexp.tensors['itm_score.fc.bias'].data!;
  assert.ok(same(sd.get('itm_score.fc.weight')!.toArray(), itmW) && same(sd.get('itm_score.fc.bias')!.toArray(), itmB));
  assert.ok(same(sd.get('rank_output.weight')!.toArray(), itmW.slice(32, 64)));
  assert.ok(same(sd.get('rank_output.bias')!.toArray(), [itmB[1]]));
  noGrad(() => {
    const out = model.forward({
      textIds: tensor(Int32Array.from([0, 7, 3, 2, 0, 4, 2, 1]), [1, 2, 4], { dtype: 'int32' }), textMasks: tensor([[[1, 1, 1, 1], [1, 1, 1, 0]]]),
      image: tensor(Float32Array.from({ length: 3 * 16 * 16 }, (_, i) => Math.cos(i / 3)), [1, 3, 16, 16]),
    });
    const itm = Array.from(model.backbone.child<ItmHead>('itm_score').forward(out.clsFeats).toArray()); // [1 * 2 candidates, 2]
    const scores = Array.from(out.logits.toArray());
    assert.ok(close(scores, [itm[1], itm[3]], 1e-6), `rank scores ${scores} vs ITM match logits ${[itm[1], itm[3]]}`);
  });
});

test('convertCheckpoint METER (the `aptune import` library path) with the fixture config: 3x3 -> 4x4 like torch, then imports like the .ckpt', () => {
  const out = join(dir, 'meter32.safetensors');
  const r = convertCheckpoint({ from: MCKPT, out, model: 'meter', config: MCFG, imageSize: 32 });
  assert.match(r.text, /resized vit_model\.visual\.positional_embedding \[10, 12\] -> \[17, 12\] \(bicubic, CLS row kept\)/);
  assert.equal(r.report.missing, []);
  assert.equal(r.report.unexpected.sort(), MLM);
  const ck = loadCheckpoint(out);
  assert.is((ck.config as { imageSize: number }).imageSize, 32);
  assert.ok(close(ck.tensors.get(PE)!.data, mexp.positional_embedding_resized['4'].data));
  assert.ok(matchesTorch('itm_score.fc.weight', ck.tensors.get('itm_score.fc.weight')!.data));
  // at the run's own grid (16 px) the converted file imports into the model exactly like the .ckpt itself
  const out16 = join(dir, 'meter16.safetensors');
  convertCheckpoint({ from: MCKPT, out: out16, model: 'meter', config: MCFG, imageSize: 16 });
  const a = createModel({ backbone: 'meter', config: MCFG, task: 'irtr', method: 'full' });
  const b = createModel({ backbone: 'meter', config: MCFG, task: 'irtr', method: 'full', seed: 5 });
  const ra = importPretrained(MCKPT, a), rb = importPretrained(out16, b);
  assert.equal(rb.loaded.sort(), ra.loaded.sort());
  assert.equal(rb.resized, []);
  const sa = a.stateDict(), sb = b.stateDict();
  for (const [k, t] of sa) assert.ok(same(sb.get(k)!.toArray(), t.toArray()), k);
});

test('CLI `aptune import --model meter` on the tiny .ckpt: matches the full-size METER only, so it fails naming the tensor', async () => {
  const out = join(dir, 'cli-meter.safetensors');
  const errs: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => { errs.push(a.join(' ')); };
  let code: number;
  try {
    code = await cliMain(['import', '--from', MCKPT, '--out', out, '--model', 'meter', '--image-size', '32']);
  } finally {
    console.error = orig;
  }
  assert.is(code, 1);
  assert.match(errs.join('\n'), /meter_tiny\.ckpt: shape mismatch for '[^']+': checkpoint has \[\d+(, \d+)*\], model expects \[\d+(, \d+)*\]/);
  assert.throws(() => readFileSync(out), /ENOENT/);
});

test('legacy (pre-zip) torch.save files are read: same tensors as the zip checkpoint; detected as torch-legacy', () => {
  const sd = readTorchStateDict(CKPT);
  const file = join(mkdtempSync(join(tmpdir(), 'aptune-legacy-')), 'vilt_tiny_legacy.pt');
  writeFileSync(file, legacyTorchSave(sd));
  const back = readTorchStateDict(file);
  assert.equal([...back.keys()], [...sd.keys()]);
  for (const [k, t] of sd) {
    assert.equal(back.get(k)!.shape, t.shape, k);
    assert.ok(same(Array.from(back.get(k)!.data), Array.from(t.data)), k);
  }
  assert.is(detectFormat(file), 'torch-legacy');
  assert.is(readExternalWeights(file).tensors.size, sd.size);
  assert.throws(() => loadCheckpoint(file), /legacy torch\.save checkpoint, not an aptune checkpoint/);
});


test('a legacy torch.save file written by real PyTorch (1.13, _use_new_zipfile_serialization=False) reads exactly', () => {
  const file = new URL('../fixtures/ckpt/legacy_torch.pt', import.meta.url).pathname; // scripts/make_legacy_fixture.py
  assert.is(detectFormat(file), 'torch-legacy');
  const { tensors } = readExternalWeights(file);
  const get = (k: string) => { const t = tensors.get(k); assert.ok(t, k); return { shape: t!.shape, data: Array.from(t!.data as ArrayLike<number>) }; };
  assert.equal(get('a'), { shape: [2, 3], data: [0, 1, 2, 3, 4, 5] });
  assert.equal(get('b'), { shape: [3], data: [1, 2, 3] });
  assert.equal(get('c'), { shape: [3, 2], data: [0, 3, 1, 4, 2, 5] }); // the transposed view of a's storage
});

test.run();
