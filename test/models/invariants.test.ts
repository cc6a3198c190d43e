// Invariants over the methods on the tiny presets: which leave the output unchanged at initialisation (per the
// spec's initialisers), that only trainable parameters move under AdamW, and that trainable counts equal their
// formulas (tiny) and the paper's per-module counts (full size, single modules).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AdamW } from '../../train/optim.ts';
import { ApproximatePrompt, Adapter, LoraModule, ParallelAdapter } from '../../models/petl/index.ts';
import { METHODS, image, maxAbsDiff, text, tinyModel, vqaBatch } from './tiny.ts';
import { createModel, type MethodName } from '../../models/index.ts';

// unchanged = same logits as classifier_only built with the same seed (identical backbone and head weights)
const UNCHANGED_AT_INIT: Record<Exclude<MethodName, 'classifier_only' | 'full'>, boolean> = {
  lora: true, // lora_B = 0
  apt: false, // S·P != 0 even though the key correction W_b = 0
  parallel_adapter: false, // "bert" init: N(0, 0.02) weights, scale 4
  adapter: false, // both weights N(0, 0.01)
  deep_prompt: false, // extra keys/values
  shallow_prompt: false, // extra tokens
};

for (const bb of ['vilt', 'meter'] as const) {
  test(`${bb}: output at initialisation vs classifier_only`, () => {
    const ref = tinyModel(bb, 'classifier_only').eval().forward(vqaBatch(bb)).logits;
    for (const [method, same] of Object.entries(UNCHANGED_AT_INIT)) {
      const out = tinyModel(bb, method as MethodName).eval().forward(vqaBatch(bb)).logits;
      const d = maxAbsDiff(out, ref);
      if (same) assert.ok(d < 1e-6, `${bb}/${method}: expected unchanged output, max diff ${d}`);
      else assert.ok(d > 1e-5, `${bb}/${method}: expected a changed output, max diff ${d}`);
    }
  });

  test(`${bb}: APT with zero memory tokens is the identity`, () => {
    const ref = tinyModel(bb, 'classifier_only').eval().forward(vqaBatch(bb)).logits;
    const m = tinyModel(bb, 'apt').eval();
    for (const [n, p] of m.namedParameters()) {
      if (!n.endsWith('APT.mm_tokens')) continue;
      const owner = m.backbone.getSubmodule(n.slice(0, -'.mm_tokens'.length));
      owner.setParam('mm_tokens', p.mul(0).detach());
    }
    assert.ok(maxAbsDiff(m.forward(vqaBatch(bb)).logits, ref) < 1e-6);
  });

  for (const method of METHODS) {
    test(`${bb} x ${method}: only trainable parameters change under AdamW`, () => {
      const m = tinyModel(bb, method);
      const before = new Map(m.namedParameters().map(([n, p]) => [n, Float32Array.from(p.toArray())]));
      const opt = new AdamW(m.trainableParameters().map(([, p]) => p), { lr: 1e-2, betas: [0.9, 0.98], eps: 1e-8, weightDecay: 0.01 });
      const batch = vqaBatch(bb);
      for (let i = 0; i < 2; i++) {
        opt.zeroGrad();
        m.loss(batch).loss.backward();
        opt.step();
      }
      const trainable = new Set(m.trainableParameters().map(([n]) => n));
      let moved = 0;
      for (const [n, p] of m.namedParameters()) {
        const a = p.toArray(), b = before.get(n)!;
        let diff = 0;
        for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
        if (!trainable.has(n)) assert.is(diff, 0, `frozen ${n} changed by ${diff}`);
        else if (diff > 0) moved++;
      }
      assert.ok(moved >= Math.max(1, trainable.size - 2), `${moved} of ${trainable.size} trainable tensors moved`);
    });
  }
}

// tiny sizes: D = 64; ViLT 2 blocks; METER 2 fusion layers per stream -> 8 attention sub-blocks, 4 FFNs
const D = 64;
function count(m: { trainableParameters(): [string, { size: number }][] }): number {
  return m.trainableParameters().reduce((s, [, p]) => s + p.size, 0);
}
const FORMULA: Record<'vilt' | 'meter', Record<string, number>> = {
  vilt: {
    apt: 2 * (6 * D + D * 2 + 2 * D + 1),
    deep_prompt: 2 * 4 * D,
    shallow_prompt: 4 * D,
    lora: 2 * 2 * (D * 2 + 2 * D),
    adapter: 2 * 2 * (D * 8 + 8 + 8 * D + D),
    parallel_adapter: 2 * (2 * D + D * 8 + 8 + 8 * D + D),
  },
  meter: {
    apt: 8 * (6 * D + D * 2 + 2 * D + 1),
    deep_prompt: 2 * 2 * 4 * D,
    shallow_prompt: 2 * 4 * D,
    lora: 8 * 2 * (D * 2 + 2 * D),
    adapter: 12 * (D * 8 + 8 + 8 * D + D),
    parallel_adapter: 8 * (2 * D + D * 8 + 8 + 8 * D + D),
  },
};
// §3.0 shared set at tiny size with a 7-answer VQA head: token4classifier + type table(s) + pooler(s) + head
const HEAD = (c: number) => c * 2 * D + 2 * D + 2 * 2 * D + 2 * D * 7 + 7;
const SHARED = { vilt: D + 2 * D + 2 * D + (D * D + D) + HEAD(D), meter: D + 2 * D + 2 * (D * D + D) + HEAD(2 * D) };

for (const bb of ['vilt', 'meter'] as const) {
  test(`${bb}: trainable counts equal their formulas`, () => {
    assert.is(count(tinyModel(bb, 'classifier_only')), SHARED[bb]);
    for (const [method, n] of Object.entries(FORMULA[bb])) {
      assert.is(count(tinyModel(bb, method as MethodName)) - SHARED[bb], n, `${bb}/${method}`);
    }
    const full = tinyModel(bb, 'full');
    assert.is(count(full), full.parameters().reduce((s, p) => s + p.size, 0));
  });
}

test('full-size single modules match the paper table building blocks (§7.1)', () => {
  const size = (m: { parameters(): { size: number }[] }) => m.parameters().reduce((s, p) => s + p.size, 0);
  assert.is(size(new ApproximatePrompt(768, 4, 200)), 159_745);
  assert.is(size(new LoraModule(768, 4, 0.1, 1)), 1_536 * 4);
  assert.is(size(new Adapter(768, 96, 0.01)), 148_320);
  assert.is(size(new ParallelAdapter(768, 96, 4)), 149_856);
});

test('METER trainable rule keeps the encoders frozen and trains the APT scale', () => {
  const m = tinyModel('meter', 'apt');
  const names = m.trainableParameters().map(([n]) => n);
  assert.not.ok(names.some((n) => n.startsWith('text_transformer') || n.startsWith('vit_model')));
  assert.ok(names.includes('cross_modal_text_layers.0.attention.output.APT.scale'));
  // trainScale=false reproduces the reference's 'mm' pattern: the scale stays frozen
  const ref = createModel({ backbone: 'meter', config: 'tiny', task: 'vqa', numAnswers: 7, method: 'apt', methodOptions: { tokens: 6, rank: 2, trainScale: false } })
    .trainableParameters().map(([n]) => n);
  assert.not.ok(ref.includes('cross_modal_text_layers.0.attention.output.APT.scale'));
  assert.ok(ref.includes('cross_modal_text_layers.0.attention.output.APT.mm_tokens'));
});

test('ViLT: a zero-padded image gives the same CLS features as the image alone (mask + per-image positions)', () => {
  const m = tinyModel('vilt', 'apt').eval();
  const tx = text(2, 5, [5, 5], 0, 64, 1);
  // batch: image 0 full 24x24, image 1 = a 16x16 image padded to 24x24
  const both = m.forward({ textIds: tx.ids, textMasks: tx.mask, image: image(2, 24, 24, [24, 16], [24, 16]) });
  const small = image(2, 16, 16).slice(0, 1, 2);
  const alone = m.forward({ textIds: tx.ids.slice(0, 1, 2), textMasks: tx.mask.slice(0, 1, 2), image: small });
  assert.ok(maxAbsDiff(both.clsFeats.slice(0, 1, 2), alone.clsFeats) < 1e-5);
  // and the padded image's grid was resized to 2x2 (not left at the 3x3 pre-training grid): a 3x3 image differs
  const big = m.forward({ textIds: tx.ids.slice(0, 1, 2), textMasks: tx.mask.slice(0, 1, 2), image: image(2, 24, 24).slice(0, 1, 2) });
  assert.ok(maxAbsDiff(big.clsFeats, alone.clsFeats) > 1e-4);
});

test.run();
