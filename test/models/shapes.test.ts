// Output shapes of every backbone x method on the tiny presets, the other tasks' heads, and the reference names
// of the injected modules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tensor, type Tensor } from '../../engine/index.ts';
import { METER_TINY, createModel, listMethods } from '../../models/index.ts';
import { METHODS, NUM_ANSWERS, image, maxAbsDiff, text, tinyModel, vqaBatch } from './tiny.ts';

for (const bb of ['vilt', 'meter'] as const) {
  for (const method of METHODS) {
    test(`${bb} x ${method}: vqa forward shapes`, () => {
      const m = tinyModel(bb, method);
      const out = m.forward(vqaBatch(bb));
      assert.equal([...out.logits.shape], [2, NUM_ANSWERS]);
      assert.equal([...out.clsFeats.shape], [2, bb === 'vilt' ? 64 : 128]);
      const promptT = method === 'shallow_prompt' && bb === 'meter' ? 4 : 0;
      assert.equal([...out.textFeats.shape], [2, 6 + promptT, 64]);
      // ViLT: CLS + 3x3 patches (+4 appended shallow prompts); METER: CLS + 2x2 (+4 prepended)
      const nImg = bb === 'vilt' ? 10 : 5;
      assert.equal([...out.imageFeats.shape], [2, nImg + (method === 'shallow_prompt' ? 4 : 0), 64]);
      const l = m.loss(vqaBatch(bb)).loss;
      assert.equal([...l.shape], []);
      assert.ok(Number.isFinite(l.item()));
    });
  }

  test(`${bb}: nlvr2, itm and irtr heads`, () => {
    const B = 2;
    const tx = bb === 'vilt' ? text(B, 5, [5, 3], 0, 64, 1) : text(B, 5, [5, 3], 1, 64, 0);
    const S = bb === 'vilt' ? 16 : 16;
    const labels = tensor(Int32Array.from([1, 0]), [2], { dtype: 'int32' });
    const n = tinyModel(bb, 'classifier_only', 'nlvr2');
    assert.equal(n.backbone.token_type_embeddings.weight.shape[0], 3);
    const no = n.forward({ textIds: tx.ids, textMasks: tx.mask, image: image(B, S, S), image1: image(B, S, S, [], [], 1), labels });
    assert.equal([...no.logits.shape], [2, 2]);
    assert.equal([...no.clsFeats.shape], [2, bb === 'vilt' ? 128 : 256]);
    const it = tinyModel(bb, 'classifier_only', 'itm');
    assert.equal([...it.forward({ textIds: tx.ids, textMasks: tx.mask, image: image(B, S, S), labels }).logits.shape], [2, 2]);
    const ir = tinyModel(bb, 'classifier_only', 'irtr');
    const K1 = 3;
    const ids3 = tx.ids.unsqueeze(1).expand([B, K1, 5]).reshape([B, K1, 5]);
    const m3 = tx.mask.unsqueeze(1).expand([B, K1, 5]).reshape([B, K1, 5]);
    const r = ir.loss({ textIds: ids3, textMasks: m3, image: image(B, S, S) });
    assert.equal([...r.out.logits.shape], [B, K1]);
    // identical candidates: uniform scores, loss = log(K1)
    assert.ok(Math.abs(r.loss.item() - Math.log(K1)) < 1e-5, `irtr loss ${r.loss.item()}`);
    // rank_output starts as row 1 of the (frozen) ITM head
    const names = new Map(ir.namedParameters());
    assert.equal(names.get('rank_output.weight')!.toArray(), names.get('itm_score.fc.weight')!.slice(0, 1, 2).toArray());
    assert.not.ok(names.get('itm_score.fc.weight')!.requiresGrad);
    assert.ok(names.get('rank_output.weight')!.requiresGrad);
  });
}

for (const bb of ['vilt', 'meter'] as const) {
  test(`${bb}: infer = forwardTokens(embed(..)); null masks mean all valid (what the accounting passes)`, () => {
    const m = tinyModel(bb, 'shallow_prompt').eval();
    const batch = vqaBatch(bb);
    const tok = m.backbone.embed({ textIds: batch.textIds, textMasks: batch.textMasks, image: batch.image });
    const inferred = m.backbone.infer({ textIds: batch.textIds, textMasks: batch.textMasks, image: batch.image });
    assert.is(maxAbsDiff(m.backbone.forwardTokens(tok).clsFeats, inferred.clsFeats), 0);
    const ones = (t: Tensor) => Array.from({ length: t.shape[0] }, () => new Array<number>(t.shape[1]).fill(1));
    const all = m.backbone.forwardTokens({ ...tok, textMask: ones(tok.text), imageMask: ones(tok.image) });
    const none = m.backbone.forwardTokens({ ...tok, textMask: null, imageMask: null });
    assert.ok(maxAbsDiff(all.clsFeats, none.clsFeats) < 1e-6);
    assert.equal([...none.imageFeats.shape], [...all.imageFeats.shape]);
    // the masks are used: with the padded text rows the features differ
    assert.ok(maxAbsDiff(m.backbone.forwardTokens(tok).clsFeats, none.clsFeats) > 1e-5);
    assert.throws(() => m.backbone.forwardTokens({ ...tok, text: tok.text.slice(2, 0, 8) }), /forwardTokens needs text \[B, Lt, 64\]/);
  });
}

test('hooks name their method; METER methods attach nothing to the frozen encoders', () => {
  const vilt = tinyModel('vilt', 'apt').backbone;
  assert.equal(vilt.getSubmodule('transformer.blocks.1.attn').attachedHooks(), ['out<-apt']);
  assert.equal(tinyModel('vilt', 'adapter').backbone.getSubmodule('transformer.blocks.0').attachedHooks(), ['attn_branch<-adapter', 'mlp_branch<-adapter']);
  assert.equal(tinyModel('vilt', 'deep_prompt').backbone.getSubmodule('transformer.blocks.0').attachedHooks(), ['prompt<-deep_prompt']);
  for (const method of METHODS) {
    const m = tinyModel('meter', method).backbone;
    let attached = 0;
    for (const [n, mod] of m.namedModules()) {
      const hooks = mod.attachedHooks();
      attached += hooks.length;
      if (hooks.length) assert.ok(n === '' || n.startsWith('cross_modal_'), `${method}: hook at ${n}: ${hooks.join(', ')}`);
    }
    assert.is(attached > 0, !['classifier_only', 'full'].includes(method), `${method}: ${attached} hooks`);
  }
});

test('injected module names follow the APT repository', () => {
  const expect: Record<string, [string, string]> = {
    apt: ['transformer.blocks.1.attn.APT.mm.1.weight', 'cross_modal_image_layers.1.crossattention.output.APT.mm_tokens'],
    deep_prompt: ['prompt', 'prompts.1'],
    shallow_prompt: ['prompt', 'prompts.0'],
    lora: ['transformer.blocks.0.attn.v_lora.lora_B', 'cross_modal_text_layers.0.crossattention.self.q_lora.lora_A'],
    adapter: ['transformer.blocks.1.adapter1.up_sampler.bias', 'cross_modal_text_layers.1.output.adapter.down_sampler.weight'],
    parallel_adapter: ['transformer.blocks.0.attn.PA.adapter_layer_norm_before.weight', 'cross_modal_text_layers.0.attention.output.PA.up_proj.weight'],
  };
  for (const [method, [v, m]] of Object.entries(expect)) {
    const vn = tinyModel('vilt', method as never).namedParameters().map(([n]) => n);
    const mn = tinyModel('meter', method as never).namedParameters().map(([n]) => n);
    assert.ok(vn.includes(v), `${method}: ViLT lacks ${v}`);
    assert.ok(mn.includes(m), `${method}: METER lacks ${m}`);
  }
});

test('listMethods lists the eight methods with paper defaults', () => {
  const ms = listMethods();
  assert.equal(ms.map((m) => m.name).sort(), [...METHODS].sort());
  const opt = (name: string, o: string) => ms.find((m) => m.name === name)!.options.find((x) => x.name === o)!.default;
  assert.is(opt('apt', 'tokens'), 200);
  assert.is(opt('apt', 'rank'), 4);
  assert.is(opt('deep_prompt', 'tokens'), 200);
  assert.is(opt('lora', 'rank'), 4);
  assert.is(opt('adapter', 'rank'), 96);
  assert.is(opt('parallel_adapter', 'rank'), 96);
  assert.is(opt('parallel_adapter', 'scale'), 4);
});

test('bad method names and options fail loudly', () => {
  assert.throws(() => tinyModel('vilt', 'prefix' as never), /unknown method 'prefix'/);
  const bad = (methodOptions: Record<string, unknown>) => () => createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', numAnswers: 7, method: 'lora', methodOptions });
  assert.throws(bad({ rnak: 3 }), /unknown option 'rnak'/);
  assert.throws(bad({ rank: 2.5 }), /'rank' must be an integer/);
});

test('a METER config whose RoBERTa width differs from the fusion width is refused with the reason', () => {
  const config = { ...METER_TINY, roberta: { ...METER_TINY.roberta, hidden: 32 } };
  assert.throws(() => createModel({ backbone: 'meter', config, task: 'vqa', numAnswers: 7, method: 'apt' }), /RoBERTa width \(32\) must equal the fusion width hidden \(64\)/);
});

test.run();
