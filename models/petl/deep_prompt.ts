// Deep prompt (apt-spec §3.2). ViLT: `prompt` [layers, 1, P, D]; block l appends its own P rows as extra
// keys/values (queries cut to the real tokens, prompts never carried over). METER: `prompts.0` / `prompts.1`
// [fusionLayers, 1, P, D]; at fusion layer i prompts.1[i] is prepended to the image stream the TEXT layer
// cross-attends to, and prompts.0[i] to the text stream the IMAGE layer cross-attends to (the reference's
// y_t / x_t), so prompts are extra cross-attention keys/values only.
// Also the prompt-table helpers shared with shallow_prompt.ts (registration, per-layer rows).
// Deliberately NOT here: the 24-insertion-point METER variant the paper's 3.68M/13.05G imply (not in the code).
// Invariants: init Uniform(-v, v), v = sqrt(6 / (3·16·16 + D)) (VPT formula with a 16x16 patch, as coded).
import { Module } from '../nn/module.ts';
import { uniform } from '../nn/init.ts';
import type { Tensor } from '../../engine/index.ts';
import type { Backbone, MethodOptions, MethodSpec } from './inject.ts';

export function promptInitBound(dim: number): number {
  return Math.sqrt(6 / (3 * 16 * 16 + dim));
}

/**
 * Registers the prompt tables of a method, [rows, 1, P, D] each, Uniform(-v, v): ViLT one table `prompt` on the
 * model; METER `prompts.0` (text stream) and `prompts.1` (image stream) under a `prompts` module. Returns the
 * owner of the tables, their local names (ViLT [prompt]; METER [0, 1]) and the full names injection reports.
 */
export function addPromptTables(model: Backbone, rows: number, P: number): { owner: Module; tables: string[]; names: string[] } {
  const D = model.hidden, v = promptInitBound(D);
  const owner = model.kind === 'vilt' ? model : model.registerModule('prompts', new Module());
  const tables = model.kind === 'vilt' ? ['prompt'] : ['0', '1'];
  for (const t of tables) owner.registerParameter(t, uniform([rows, 1, P, D], -v, v));
  return { owner, tables, names: model.kind === 'vilt' ? ['prompt'] : ['prompts'] };
}

/** Rows `i` of a [n, 1, P, D] prompt table, broadcast to [B, P, D]. Reads the live parameter each call. */
export function promptRows(owner: Module, name: string, i: number, B: number): Tensor {
  const t = owner.param(name);
  const [, , P, D] = t.shape;
  return t.slice(0, i, i + 1).reshape([1, P, D]).expand([B, P, D]);
}

export const deepPrompt = {
  name: 'deep_prompt',
  description: 'Deep prompt tuning: fresh prompt tokens as extra keys/values at every layer (paper Table: 200 tokens)',
  options: [{ name: 'tokens', type: 'int', default: 200, min: 1, description: 'prompt tokens per layer (per stream for METER)' }],
  tokenForClassifier: true,
  trainable: () => ['prompt'],
  inject(model: Backbone, o: MethodOptions): string[] {
    const P = o.tokens as number;
    if (model.kind === 'vilt') {
      const { owner, names } = addPromptTables(model, model.cfg.layers, P);
      model.transformer.blocks.items.forEach((blk, i) => blk.addTokenSource('prompt', (B) => promptRows(owner, 'prompt', i, B), 'deep_prompt'));
      return names;
    }
    const { owner, names } = addPromptTables(model, model.cfg.fusionLayers, P);
    for (let i = 0; i < model.cfg.fusionLayers; i++) {
      // the text layer cross-attends to [prompts.1[i]; y], the image layer to [prompts.0[i]; x]
      model.cross_modal_text_layers.at(i).addTokenSource('cross_kv', (B) => promptRows(owner, '1', i, B), 'deep_prompt');
      model.cross_modal_image_layers.at(i).addTokenSource('cross_kv', (B) => promptRows(owner, '0', i, B), 'deep_prompt');
    }
    return names;
  },
} as const satisfies MethodSpec;
