// Shallow prompt (apt-spec §3.3, not in the paper table). ViLT: `prompt` [1, 1, P, D] appended once after the
// image tokens and carried through every block as ordinary tokens (image_feats include their outputs). METER:
// `prompts.0` / `prompts.1` [1, 1, P, D] prepended to the text / image stream before fusion layer 1 and carried
// through all layers; as in the reference, both poolers then read the first prompt token (quirk kept: it is the
// method's definition, not an accident of naming).
// Deliberately NOT here: per-layer prompts (deep_prompt.ts).
// Invariants: same Uniform(-v, v) init as the deep prompt.
import { addPromptTables, promptRows } from './deep_prompt.ts';
import type { Backbone, MethodOptions, MethodSpec } from './inject.ts';

export const shallowPrompt = {
  name: 'shallow_prompt',
  description: 'Shallow prompt tuning: prompt tokens added once to the input sequence and carried through all layers',
  options: [{ name: 'tokens', type: 'int', default: 200, min: 1, description: 'prompt tokens (per stream for METER)' }],
  tokenForClassifier: true,
  trainable: () => ['prompt'],
  inject(model: Backbone, o: MethodOptions): string[] {
    const { owner, names } = addPromptTables(model, 1, o.tokens as number);
    if (model.kind === 'vilt') {
      model.addTokenSource('sequence', (B) => promptRows(owner, 'prompt', 0, B), 'shallow_prompt');
    } else {
      model.addTokenSource('fusion_text', (B) => promptRows(owner, '0', 0, B), 'shallow_prompt');
      model.addTokenSource('fusion_image', (B) => promptRows(owner, '1', 0, B), 'shallow_prompt');
    }
    return names;
  },
} as const satisfies MethodSpec;
