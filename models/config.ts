// Model configuration as users write it, resolved to the exact ViltConfig / MeterConfig the model files take:
//   - a preset name ('base', 'tiny', 'synth' (ViLT only));
//   - a preset plus overrides, in aptune's own field names: { preset: 'tiny', hidden: 96 };
//   - Hugging Face config.json names (hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
//     max_position_embeddings, layer_norm_eps, vocab_size, hidden_dropout_prob, patch_size, image_size, ...) and the
//     original ViLT / METER config names (num_layers, num_heads, mlp_ratio, max_text_len, drop_rate, num_top_layer),
//     so the config.json that ships with a checkpoint can be passed as it is (resolveModelConfigFile).
// Rules: the preset (default 'base') is applied first, then HF / original names, then aptune names; a key given twice
// under different names with different values is an error; a camelCase key that is not a config field is an error
// naming the fields (typos of our own names never pass silently); other snake_case keys of a config.json
// (architectures, id2label, torch_dtype, ...) have no meaning for the model and are returned in `ignored`; values
// are checked (positive integers, hidden divisible by heads, eps and dropout ranges, hidden_act 'gelu').
// The per-method option types (MethodOptionsFor<'apt'>) are re-exported from petl/registry.ts, where they derive from
// the method definitions themselves, so the types and the runtime validation cannot drift apart.
// Does not: size a config to a tokenizer (train/run.ts does), read weights.
import { readFileSync } from 'node:fs';
import { VILT_BASE, VILT_TINY, type ViltConfig } from './vilt.ts';
import { METER_BASE, METER_TINY, type MeterConfig } from './meter.ts';
import { VILT_SYNTH } from './pretrain.ts';
import type { ClipConfig } from './clip.ts';
import type { RobertaConfig } from './roberta.ts';
export type { MethodOptionsMap, MethodOptionsFor, MethodOptionsOf, TypedMethodName } from './petl/registry.ts';

// ---- model configs ------------------------------------------------------------------------------------------------

export type ModelPreset = 'base' | 'tiny' | 'synth';

/** Hugging Face / original-code names understood for both backbones. */
export interface HfConfigNames {
  hidden_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  intermediate_size?: number;
  max_position_embeddings?: number;
  layer_norm_eps?: number;
  vocab_size?: number;
  hidden_dropout_prob?: number;
  patch_size?: number;
  image_size?: number;
  hidden_act?: string;
  /** original ViLT / METER names */
  num_layers?: number;
  num_heads?: number;
  mlp_ratio?: number;
  max_text_len?: number;
  drop_rate?: number;
  num_top_layer?: number;
  [other: `${string}_${string}`]: unknown;
}

export type ViltConfigInput = { preset?: ModelPreset } & Partial<ViltConfig> & HfConfigNames;
export type MeterConfigInput = { preset?: Exclude<ModelPreset, 'synth'> } & Partial<Omit<MeterConfig, 'clip' | 'roberta'>> & {
  clip?: Partial<ClipConfig>; roberta?: Partial<RobertaConfig>;
} & HfConfigNames;
export type ModelConfigInput = ModelPreset | ViltConfigInput | MeterConfigInput;

export interface Resolved<C> { config: C; ignored: string[] }

const VILT_FIELDS = Object.keys(VILT_BASE) as (keyof ViltConfig)[];
const METER_FIELDS = [...Object.keys(METER_BASE)] as (keyof MeterConfig)[];

/** HF / original name -> aptune field, per backbone. ViLT: image_size is the pre-training resolution (posGrid =
 *  image_size / patch). METER: image_size and patch_size are CLIP's, vocab_size and max_position_embeddings RoBERTa's. */
const VILT_HF: Record<string, keyof ViltConfig> = {
  hidden_size: 'hidden', num_hidden_layers: 'layers', num_layers: 'layers', num_attention_heads: 'heads', num_heads: 'heads',
  intermediate_size: 'mlp', max_position_embeddings: 'maxTextLen', max_text_len: 'maxTextLen', layer_norm_eps: 'lnEps',
  vocab_size: 'vocab', hidden_dropout_prob: 'drop', drop_rate: 'drop', patch_size: 'patch',
};
const METER_HF: Record<string, string> = {
  hidden_size: 'hidden', num_attention_heads: 'heads', num_heads: 'heads', num_hidden_layers: 'fusionLayers', num_top_layer: 'fusionLayers',
  intermediate_size: 'intermediate', layer_norm_eps: 'fusionLnEps', max_text_len: 'maxTextLen', hidden_dropout_prob: 'drop', drop_rate: 'drop',
  vocab_size: 'roberta.vocab', max_position_embeddings: 'roberta.maxPositions', image_size: 'clip.imageSize', patch_size: 'clip.patch',
};

function presetOf(backbone: 'vilt' | 'meter', p: unknown): ViltConfig | MeterConfig {
  if (p === undefined || p === 'base') return backbone === 'vilt' ? VILT_BASE : METER_BASE;
  if (p === 'tiny') return backbone === 'vilt' ? VILT_TINY : METER_TINY;
  if (p === 'synth' && backbone === 'vilt') return VILT_SYNTH;
  throw new Error(`model config: unknown ${backbone} preset ${JSON.stringify(p)} (presets: base, tiny${backbone === 'vilt' ? ', synth' : ''})`);
}

function isPosInt(v: unknown): v is number { return typeof v === 'number' && Number.isInteger(v) && v >= 1; }

/** Resolve a preset name, a preset + overrides, or an HF config.json object into the model's config. */
export function resolveModelConfig(backbone: 'vilt', input?: ModelPreset | ViltConfigInput | ViltConfig): ViltConfig;
export function resolveModelConfig(backbone: 'meter', input?: ModelPreset | MeterConfigInput | MeterConfig): MeterConfig;
export function resolveModelConfig(backbone: 'vilt' | 'meter', input?: ModelConfigInput | ViltConfig | MeterConfig): ViltConfig | MeterConfig;
export function resolveModelConfig(backbone: 'vilt' | 'meter', input?: ModelConfigInput | ViltConfig | MeterConfig): ViltConfig | MeterConfig {
  return resolveModelConfigReport(backbone, input).config;
}

/** resolveModelConfig, also returning the keys that were ignored (config.json metadata without a model field). */
/** `base` replaces the preset as the starting point (e.g. a preset already sized to a tokenizer); the input may then
 *  not name a preset. */
export function resolveModelConfigReport(backbone: 'vilt' | 'meter', input?: ModelConfigInput | ViltConfig | MeterConfig, baseConfig?: ViltConfig | MeterConfig): Resolved<ViltConfig | MeterConfig> {
  if (backbone !== 'vilt' && backbone !== 'meter') throw new Error(`model config: unknown backbone '${String(backbone)}'`);
  if (baseConfig && input !== undefined && (typeof input === 'string' || (input as { preset?: unknown }).preset !== undefined)) throw new Error('model config: a preset cannot be named here (the base config is given)');
  if (input === undefined && baseConfig) return { config: baseConfig, ignored: [] };
  if (input === undefined || typeof input === 'string') return { config: presetOf(backbone, input), ignored: [] };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new Error(`model config: expected a preset name or an object, got ${JSON.stringify(input)}`);
  const given = input as Record<string, unknown>;
  const base = baseConfig ?? presetOf(backbone, given.preset);
  const fields = new Set<string>(backbone === 'vilt' ? VILT_FIELDS : METER_FIELDS);
  const hf = backbone === 'vilt' ? VILT_HF : METER_HF;
  const out: Record<string, unknown> = { ...base };
  if (backbone === 'meter') { out.clip = { ...(base as MeterConfig).clip }; out.roberta = { ...(base as MeterConfig).roberta }; }
  const setBy = new Map<string, [string, unknown]>(); // target field -> (the key that set it, value)
  const ignored: string[] = [];
  const assign = (target: string, key: string, value: unknown) => {
    const prev = setBy.get(target);
    if (prev && JSON.stringify(prev[1]) !== JSON.stringify(value)) throw new Error(`model config: '${key}' = ${JSON.stringify(value)} and '${prev[0]}' = ${JSON.stringify(prev[1])} both set ${target}`);
    setBy.set(target, [key, value]);
    const dot = target.indexOf('.');
    if (dot < 0) out[target] = value;
    else (out[target.slice(0, dot)] as Record<string, unknown>)[target.slice(dot + 1)] = value;
  };
  // HF / original names first (mlp_ratio and ViLT image_size need the final hidden / patch: resolved after)
  const deferred: [string, unknown][] = [];
  for (const [k, v] of Object.entries(given)) {
    if (k === 'preset' || fields.has(k)) continue;
    if (k in hf) assign(hf[k], k, v);
    else if (k === 'mlp_ratio' || (backbone === 'vilt' && k === 'image_size')) deferred.push([k, v]);
    else if (k === 'hidden_act') { if (v !== 'gelu') throw new Error(`model config: hidden_act '${String(v)}' is not supported (aptune's ${backbone} uses gelu)`); }
    else if (/^[a-z0-9]+(_[a-z0-9]+)+$/.test(k) || k === 'architectures') ignored.push(k); // config.json metadata
    else throw new Error(`model config: unknown ${backbone} field '${k}' (fields: ${[...fields].join(', ')}; or Hugging Face names: ${Object.keys(hf).join(', ')})`);
  }
  // aptune's own names override
  for (const k of Object.keys(given)) {
    if (k === 'preset' || !fields.has(k)) continue;
    const v = given[k];
    if (backbone === 'meter' && (k === 'clip' || k === 'roberta')) {
      if (typeof v !== 'object' || v === null) throw new Error(`model config: '${k}' must be an object`);
      const sub = out[k] as Record<string, unknown>;
      for (const [sk, sv] of Object.entries(v)) {
        if (!(sk in sub)) throw new Error(`model config: unknown ${k} field '${sk}' (fields: ${Object.keys(sub).join(', ')})`);
        assign(`${k}.${sk}`, `${k}.${sk}`, sv);
      }
      continue;
    }
    assign(k, k, v);
  }
  for (const [k, v] of deferred) {
    if (k === 'mlp_ratio') {
      if (typeof v !== 'number' || !(v > 0)) throw new Error(`model config: mlp_ratio must be a positive number, got ${JSON.stringify(v)}`);
      assign(backbone === 'vilt' ? 'mlp' : 'intermediate', k, Math.round((out.hidden as number) * v));
    } else {
      const patch = out.patch as number;
      if (!isPosInt(v) || v % patch !== 0) throw new Error(`model config: image_size ${JSON.stringify(v)} must be a positive multiple of the patch size ${patch}`);
      assign('posGrid', k, v / patch);
    }
  }
  check(backbone, out);
  return { config: Object.freeze(out) as unknown as ViltConfig | MeterConfig, ignored };
}

function check(backbone: 'vilt' | 'meter', c: Record<string, unknown>): void {
  const need = (path: string, v: unknown, ok: boolean, what: string) => { if (!ok) throw new Error(`model config: ${path} must be ${what}, got ${JSON.stringify(v)}`); };
  const ints = backbone === 'vilt' ? ['hidden', 'heads', 'layers', 'mlp', 'vocab', 'maxTextLen', 'patch', 'posGrid'] : ['hidden', 'heads', 'fusionLayers', 'intermediate', 'maxTextLen'];
  for (const k of ints) need(k, c[k], isPosInt(c[k]), 'a positive integer');
  const eps = backbone === 'vilt' ? ['lnEps', 'textLnEps'] : ['fusionLnEps'];
  for (const k of eps) need(k, c[k], typeof c[k] === 'number' && (c[k] as number) > 0 && (c[k] as number) < 1, 'in (0, 1)');
  need('drop', c.drop, typeof c.drop === 'number' && c.drop >= 0 && c.drop < 1, 'in [0, 1)');
  need('clsTokenId', c.clsTokenId, typeof c.clsTokenId === 'number' && Number.isInteger(c.clsTokenId) && c.clsTokenId >= 0, 'a non-negative integer');
  if ((c.hidden as number) % (c.heads as number) !== 0) throw new Error(`model config: hidden ${String(c.hidden)} is not divisible by heads ${String(c.heads)}`);
  if (backbone === 'meter') {
    const clip = c.clip as Record<string, unknown>, rob = c.roberta as Record<string, unknown>;
    for (const k of ['width', 'heads', 'layers', 'patch', 'imageSize']) need(`clip.${k}`, clip[k], isPosInt(clip[k]), 'a positive integer');
    for (const k of ['vocab', 'hidden', 'layers', 'heads', 'intermediate', 'maxPositions']) need(`roberta.${k}`, rob[k], isPosInt(rob[k]), 'a positive integer');
  }
}

/** Read a config.json (HF or aptune names; may hold a "preset") and resolve it. */
export function resolveModelConfigFile(backbone: 'vilt' | 'meter', file: string): Resolved<ViltConfig | MeterConfig> {
  let json: unknown;
  try { json = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new Error(`${file}: cannot read the model config (${(e as Error).message})`); }
  try { return resolveModelConfigReport(backbone, json as ModelConfigInput); } catch (e) { throw new Error(`${file}: ${(e as Error).message}`); }
}
