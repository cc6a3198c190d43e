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
import { OpaqueObject, PickleGlobal, readTorchStateDict, readTorchZip, unpickle } from '../../train/torch_pickle.ts';
import { writeSafetensors, type HostTensor } from '../../train/safetensors.ts';
import {
  convertCheckpoint, detectFormat, expectedShapes, importCheckpoint, importPretrained, loadCheckpoint, loadMethodCheckpoint, mapHfViltNames, planImport, saveCheckpoint,
  saveMethodCheckpoint, resizePositionTable,
} from '../../train/checkpoint.ts';

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
  assert.throws(() => unpickle(Buffer.from([0x80, 0x02, 0x58, 9, 0, 0, 0, 0x61]), 't.pkl', () => null), /truncated pickle/);
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

test.run();
