// Module tree behaviour: state-dict round trip, loadStateDict errors (missing / unexpected keys, shape mismatch
// naming the tensor), freezing by substring list or predicate, train/eval, hook-point validation, loadPretrained.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, tensor, zeros } from '../../engine/index.ts';
import { Module } from '../../models/nn/module.ts';
import { Dropout, Linear } from '../../models/nn/layers.ts';
import { loadPretrained, parameterGroups, vqaScore, type MeterModel } from '../../models/index.ts';
import { resizeClipPosTable } from '../../models/clip.ts';
import { maxAbsDiff, tinyModel, vqaBatch } from './tiny.ts';
import { AdamW } from '../../train/optim.ts';

test('state dict round trip reproduces the outputs', () => {
  for (const bb of ['vilt', 'meter'] as const) {
    const a = tinyModel(bb, 'apt', 'vqa', 1).eval();
    const b = tinyModel(bb, 'apt', 'vqa', 2).eval();
    const batch = vqaBatch(bb);
    const ya = a.forward(batch).logits;
    assert.ok(maxAbsDiff(ya, b.forward(batch).logits) > 1e-4, 'different seeds should give different models');
    const copy = new Map([...a.stateDict()].map(([n, t]) => [n, t.clone()] as [string, Tensor]));
    const r = b.loadStateDict(copy);
    assert.equal(r, { missing: [], unexpected: [] });
    assert.is(maxAbsDiff(ya, b.forward(batch).logits), 0);
    // flags survive loading
    assert.equal(b.trainableParameters().map(([n]) => n), a.trainableParameters().map(([n]) => n));
  }
});

test('method state dict holds exactly the trainable weights', () => {
  const m = tinyModel('vilt', 'lora');
  const sd = m.methodStateDict();
  assert.equal([...sd.keys()], m.trainableParameters().map(([n]) => n));
  assert.ok([...sd.keys()].includes('transformer.blocks.0.attn.q_lora.lora_A'));
  assert.not.ok([...sd.keys()].some((n) => n.includes('qkv')));
});

test('loadStateDict: missing, unexpected and shape errors', () => {
  const m = tinyModel('vilt', 'classifier_only');
  const sd = new Map(m.stateDict());
  sd.delete('pooler.dense.bias');
  sd.set('not.a.weight', zeros([2]));
  assert.throws(() => m.loadStateDict(sd), /1 missing key\(s\) \[pooler\.dense\.bias\].*1 unexpected key\(s\) \[not\.a\.weight\]/);
  const r = m.loadStateDict(sd, { strict: false });
  assert.equal(r, { missing: ['pooler.dense.bias'], unexpected: ['not.a.weight'] });
  sd.set('transformer.blocks.1.attn.qkv.weight', zeros([5, 5]));
  assert.throws(() => m.loadStateDict(sd, { strict: false }), /shape mismatch for 'transformer\.blocks\.1\.attn\.qkv\.weight'.*\[5,5\].*\[192,64\]/);
});

test('freeze / unfreeze by substrings and predicates; train / eval reach every module', () => {
  const root = new Module();
  const a = root.registerModule('encoder', new Linear(3, 2));
  root.registerModule('head', new Linear(2, 1));
  const d = a.registerModule('drop', new Dropout(0.5));
  assert.equal(root.freeze(['encoder']), ['encoder.weight', 'encoder.bias']);
  assert.equal(root.trainableParameters().map(([n]) => n), ['head.weight', 'head.bias']);
  root.unfreeze((n) => n.endsWith('bias'));
  assert.equal(root.trainableParameters().map(([n]) => n), ['encoder.bias', 'head.weight', 'head.bias']);
  root.eval();
  assert.not.ok(d.training);
  const x = tensor([[1, 2, 3]]);
  assert.is(d.forward(x), x);
  root.train();
  assert.ok(d.training);
  assert.throws(() => root.registerModule('a.b', new Module()), /invalid registration name/);
  assert.throws(() => a.addHook('nowhere', (t) => t), /no hook point 'nowhere'/);
});

test('loadPretrained: NLVR2 type row 2 := row 1 and token4classifier follows the loaded embeddings', () => {
  const src = tinyModel('vilt', 'classifier_only', 'vqa', 5);
  const sd = new Map([...src.stateDict()].filter(([n]) => !n.startsWith('vqa_classifier')));
  const m = tinyModel('vilt', 'apt', 'nlvr2', 6);
  const r = loadPretrained(m, sd);
  assert.ok(r.missing.every((n) => n.includes('APT') || n.startsWith('nlvr2_classifier')), r.missing.join(','));
  const tt = m.backbone.token_type_embeddings.weight.toList() as number[][];
  const stt = src.backbone.token_type_embeddings.weight.toList() as number[][];
  assert.equal(tt[0], stt[0]);
  assert.equal(tt[2], stt[1]);
  // token4classifier = eval-mode text embedding of the [CLS] id under the loaded weights
  assert.is(maxAbsDiff(m.backbone.param('token4classifier'), src.backbone.param('token4classifier')), 0);
});

test('parameterGroups: §6.3 decay and learning-rate groups', () => {
  const m = tinyModel('meter', 'apt');
  const gs = parameterGroups(m, { lr: 1e-4, lrMultHead: 50, lrMultCrossModal: 5 });
  const find = (n: string) => gs.find((g) => g.names.includes(n))!;
  assert.is(find('vqa_classifier.0.weight').lr, 5e-3);
  assert.is(find('vqa_classifier.0.weight').weightDecay, 0.01);
  assert.is(find('vqa_classifier.1.weight').weightDecay, 0.01); // head LayerNorm is decayed (names do not match)
  assert.is(find('vqa_classifier.0.bias').weightDecay, 0);
  assert.is(find('cross_modal_text_layers.0.attention.output.APT.scale').lr, 5e-4);
  assert.is(find('cross_modal_text_pooler.dense.weight').lr, 5e-4);
  assert.is(find('token4classifier').lr, 1e-4);
  assert.is(gs.reduce((s, g) => s + g.params.length, 0), m.trainableParameters().length);
});

test('resizeClipPosTable keeps the CLS row and preserves constants; vqaScore reads the soft target at the argmax', () => {
  const rows = [[9, 9]];
  for (let i = 0; i < 9; i++) rows.push([1, -2]);
  const r = resizeClipPosTable(tensor(rows), 5);
  assert.equal([...r.shape], [26, 2]);
  const v = r.toList() as number[][];
  assert.equal(v[0], [9, 9]);
  assert.ok(v.slice(1).every(([a, b]) => Math.abs(a - 1) < 1e-5 && Math.abs(b + 2) < 1e-5));
  assert.is(resizeClipPosTable(tensor(rows), 3).shape[0], 10);
  assert.throws(() => resizeClipPosTable(zeros([7, 2]), 3), /not grid/);
  const logits = tensor([[0.1, 2, -1], [3, 0, 0]]);
  const targets = tensor([[0, 0.6, 1], [0.3, 1, 0]]);
  assert.ok(Math.abs(vqaScore(logits, targets) - 0.45) < 1e-7);
});

test('loadPretrained resizes a CLIP position table of another grid (bicubic, CLS kept)', () => {
  const m = tinyModel('meter', 'classifier_only');
  const W = 64;
  const table = zeros([10, W]).add(0.5); // 3x3 grid + CLS, constant
  const r = loadPretrained(m, new Map([['vit_model.visual.positional_embedding', table]]));
  assert.not.ok(r.missing.includes('vit_model.visual.positional_embedding'));
  const pe = (m.backbone as MeterModel).vit_model.visual.param('positional_embedding');
  assert.equal([...pe.shape], [5, W]);
  assert.ok((pe.toArray() as Float32Array).every((v) => Math.abs(v - 0.5) < 1e-5));
});

test('dropout masks come from the model seed: same seed, same training-mode loss', () => {
  const losses = [1, 1, 2].map((seed) => {
    const m = tinyModel('vilt', 'lora', 'vqa', seed); // LoRA input dropout 0.1 is active in training mode
    return m.loss(vqaBatch('vilt')).loss.item();
  });
  assert.is(losses[0], losses[1]);
  assert.is.not(losses[0], losses[2]);
});

test('METER irtr adds the ITM loss of an itm sub-batch (frozen ITM head)', () => {
  const m = tinyModel('meter', 'classifier_only', 'irtr');
  const b = vqaBatch('meter');
  const [B, L] = b.textIds.shape;
  const ids3 = b.textIds.unsqueeze(1).expand([B, 2, L]).reshape([B, 2, L]);
  const m3 = b.textMasks.unsqueeze(1).expand([B, 2, L]).reshape([B, 2, L]);
  const labels = tensor(Int32Array.from([1, 0]), [2], { dtype: 'int32' });
  const plain = m.loss({ textIds: ids3, textMasks: m3, image: b.image }).loss.item();
  const withItm = m.loss({ textIds: ids3, textMasks: m3, image: b.image, itm: { ...b, labels } }).loss.item();
  assert.ok(Math.abs(plain - Math.log(2)) < 1e-5);
  assert.ok(withItm - plain > 0.1, `itm term ${withItm - plain}`);
});

test('loadStateDict copies into the existing tensors: an optimiser built before loading trains the loaded weights', () => {
  const a = tinyModel('vilt', 'apt'), b = tinyModel('vilt', 'apt', 'vqa', 7);
  const before = new Map(a.backbone.namedParameters());
  const opt = new AdamW(a.trainableParameters().map(([, p]) => p), { lr: 1e-2 });
  a.backbone.loadStateDict(b.backbone.stateDict());
  for (const [n, p] of a.backbone.namedParameters()) assert.ok(p === before.get(n), `${n} keeps its identity`);
  const [name, p] = a.trainableParameters().find(([n]) => n.includes('APT.mm_tokens'))!;
  const loaded = Array.from(p.toArray());
  assert.equal(loaded, Array.from(new Map(b.backbone.namedParameters()).get(name)!.toArray()), 'values loaded');
  const { loss } = a.loss(vqaBatch('vilt'));
  loss.backward();
  opt.step();
  assert.ok(maxAbsDiff(p, tensor(loaded, p.shape)) > 0, 'the optimiser updated the loaded tensor');
});

test.run();
