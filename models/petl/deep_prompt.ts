// Deep prompt (apt-spec §3.2), at token point 'layer.kv': fresh prompt rows per layer as extra keys/values of that
// layer only. ViLT (one stream): `prompt` [layers, 1, P, D]; block l appends its own P rows as extra keys/values
// (queries cut to the real tokens, prompts never carried over). METER (two streams): `prompts.0` / `prompts.1`
// [fusionLayers, 1, P, D]; at fusion layer i prompts.1[i] is prepended to the image stream the TEXT layer
// cross-attends to, and prompts.0[i] to the text stream the IMAGE layer cross-attends to (the reference's y_t / x_t),
// so prompts are extra cross-attention keys/values only. Tables and rows: inject.ts attachPrompts.
// Deliberately NOT here: the 24-insertion-point METER variant the paper's 3.68M/13.05G imply (not in the code).
// Invariants: init Uniform(-v, v), v = sqrt(6 / (3·16·16 + D)) (VPT formula with a 16x16 patch, as coded).
import { defineMethod } from './inject.ts';

export const deepPrompt = defineMethod({
  name: 'deep_prompt',
  description: 'Deep prompt tuning: fresh prompt tokens as extra keys/values at every layer (paper Table: 200 tokens)',
  options: [{ name: 'tokens', type: 'int', default: 200, min: 1, description: 'prompt tokens per layer (per stream for METER)' }],
  tokenForClassifier: true,
  mergeable: false,
  updatedParams: 'modules',
  paperRow: 2,
  trainable: () => ['prompt'],
  prompts: { at: 'layer.kv', table: 'prompt', tokens: (o) => o.tokens },
});
