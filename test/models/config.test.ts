// Model config resolution (models/config.ts) and per-method option types: presets, preset + overrides, Hugging Face
// and original config.json names (the real dandelin/vilt-b32-mlm config.json gives ViLT-B/32), conflicts and typos
// as errors, METER's nested fields; method options that are wrong by name or type fail tsc (@ts-expect-error lines
// below, checked by the suite's typecheck) and fail at run time with a message naming the option.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createModel, resolveModelConfig, resolveModelConfigFile, resolveModelConfigReport, VILT_BASE, VILT_TINY, METER_TINY,
  type MethodOptionsFor, type ViltConfig, type MeterConfig,
} from '../../models/index.ts';
import { VILT_SYNTH } from '../../models/pretrain.ts';

/** HF's config.json for dandelin/vilt-b32-mlm (as published; the keys a user would point at). */
const HF_VILT_B32 = {
  architectures: ['ViltForMaskedLM'], attention_probs_dropout_prob: 0.0, hidden_act: 'gelu', hidden_dropout_prob: 0.0, hidden_size: 768,
  image_size: 384, initializer_range: 0.02, intermediate_size: 3072, layer_norm_eps: 1e-12, max_image_length: -1, max_position_embeddings: 40,
  modality_type_vocab_size: 2, model_type: 'vilt', num_attention_heads: 12, num_channels: 3, num_hidden_layers: 12, num_images: -1,
  patch_size: 32, qkv_bias: true, tie_word_embeddings: false, torch_dtype: 'float32', transformers_version: '4.20.0.dev0', type_vocab_size: 2,
  vocab_size: 30522,
};

test('presets and preset + overrides', () => {
  assert.equal(resolveModelConfig('vilt'), VILT_BASE);
  assert.equal(resolveModelConfig('vilt', 'tiny'), VILT_TINY);
  assert.equal(resolveModelConfig('vilt', 'synth'), VILT_SYNTH);
  const c = resolveModelConfig('vilt', { preset: 'tiny', hidden: 96, heads: 4 });
  assert.equal(c, { ...VILT_TINY, hidden: 96, heads: 4 });
  assert.equal(resolveModelConfig('meter', { preset: 'tiny', roberta: { vocab: 99 } }).roberta, { ...METER_TINY.roberta, vocab: 99 });
  assert.throws(() => resolveModelConfig('meter', 'synth' as 'tiny'), /unknown meter preset "synth"/);
});

test('Hugging Face config.json names: the published ViLT-B/32 config gives the base model (its own layer_norm_eps)', () => {
  const { config, ignored } = resolveModelConfigReport('vilt', HF_VILT_B32);
  assert.equal(config, { ...VILT_BASE, lnEps: 1e-12, drop: 0 });
  assert.ok(ignored.includes('model_type') && ignored.includes('architectures') && ignored.includes('torch_dtype'), ignored.join());
  const small = resolveModelConfig('vilt', { preset: 'tiny', hidden_size: 96, num_hidden_layers: 3, num_attention_heads: 6, intermediate_size: 384, image_size: 32 });
  assert.equal([small.hidden, small.layers, small.heads, small.mlp, small.posGrid], [96, 3, 6, 384, 32 / VILT_TINY.patch]);
  const orig = resolveModelConfig('vilt', { preset: 'tiny', num_layers: 3, mlp_ratio: 2, max_text_len: 12 });
  assert.equal([orig.layers, orig.mlp, orig.maxTextLen], [3, 128, 12]);
  const m: MeterConfig = resolveModelConfig('meter', { preset: 'tiny', num_top_layer: 3, image_size: 24, vocab_size: 80 });
  assert.equal([m.fusionLayers, m.clip.imageSize, m.roberta.vocab], [3, 24, 80]);
  const dir = mkdtempSync(join(tmpdir(), 'aptune-cfg-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(HF_VILT_B32));
    assert.is((resolveModelConfigFile('vilt', join(dir, 'config.json')).config as ViltConfig).hidden, 768);
    writeFileSync(join(dir, 'bad.json'), '{"hidden_size": 100, "num_attention_heads": 12}');
    assert.throws(() => resolveModelConfigFile('vilt', join(dir, 'bad.json')), /bad\.json: model config: hidden 100 is not divisible by heads 12/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('conflicts, typos and bad values are errors naming the key', () => {
  assert.throws(() => resolveModelConfig('vilt', { hidden: 96, hidden_size: 128 }), /'hidden' = 96 and 'hidden_size' = 128 both set hidden/);
  assert.throws(() => resolveModelConfig('vilt', { preset: 'tiny', hiden: 96 } as never), /unknown vilt field 'hiden'/);
  assert.throws(() => resolveModelConfig('vilt', { preset: 'tiny', layers: 0 }), /layers must be a positive integer, got 0/);
  assert.throws(() => resolveModelConfig('vilt', { preset: 'tiny', hidden_act: 'relu' }), /hidden_act 'relu' is not supported/);
  assert.throws(() => resolveModelConfig('vilt', { preset: 'tiny', image_size: 20 }), /image_size 20 must be a positive multiple of the patch size 8/);
  assert.throws(() => resolveModelConfig('meter', { preset: 'tiny', clip: { widht: 3 } } as never), /unknown clip field 'widht'/);
});

test('createModel takes preset + overrides; method options are typed per method and checked at run time', () => {
  const m = createModel({ backbone: 'vilt', config: { preset: 'tiny', hidden: 96, heads: 4 }, task: 'vqa', numAnswers: 5, method: 'lora', methodOptions: { rank: 2 } });
  assert.is(m.backbone.hidden, 96);
  const apt: MethodOptionsFor<'apt'> = { tokens: 6, rank: 2, trainScale: false };
  assert.is(createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', numAnswers: 5, method: 'apt', methodOptions: apt }).methodOptions.tokens, 6);
  // @ts-expect-error: 'tokens' is not a LoRA option
  assert.throws(() => createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', numAnswers: 5, method: 'lora', methodOptions: { tokens: 6 } }), /method 'lora': unknown option 'tokens' \(options: rank, dropout, scale\)/);
  // @ts-expect-error: rank is a number
  assert.throws(() => createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', numAnswers: 5, method: 'apt', methodOptions: { rank: 'four' } }), /option 'rank' must be a number, got "four"/);
  // @ts-expect-error: classifier_only takes no options
  assert.throws(() => createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', numAnswers: 5, method: 'classifier_only', methodOptions: { rank: 2 } }), /unknown option 'rank' \(options: none\)/);
  // @ts-expect-error: apt has no option bogus
  assert.throws(() => createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', numAnswers: 5, method: 'apt', methodOptions: { tokens: 6, bogus: true } }), /unknown option 'bogus'/);
  const dynamic: string = 'lora'; // a method read at run time: any record, validated at run time
  assert.throws(() => createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', numAnswers: 5, method: dynamic, methodOptions: { tokens: 1 } }), /unknown option 'tokens'/);
});

test.run();
