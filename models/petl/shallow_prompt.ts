// Shallow prompt (apt-spec §3.3, not in the paper table), at token point 'input'. ViLT: `prompt` [1, 1, P, D]
// appended once after the image tokens and carried through every block as ordinary tokens (image_feats include their
// outputs). METER: `prompts.0` / `prompts.1` [1, 1, P, D] prepended to the text / image stream before fusion layer 1
// and carried through all layers; as in the reference, both poolers then read the first prompt token (quirk kept: it
// is the method's definition, not an accident of naming).
// Deliberately NOT here: per-layer prompts (deep_prompt.ts).
// Invariants: same Uniform(-v, v) init as the deep prompt.
import { defineMethod } from './inject.ts';

export const shallowPrompt = defineMethod({
  name: 'shallow_prompt',
  description: 'Shallow prompt tuning: prompt tokens added once to the input sequence and carried through all layers',
  options: [{ name: 'tokens', type: 'int', default: 200, min: 1, description: 'prompt tokens (per stream for METER)' }],
  tokenForClassifier: true,
  mergeable: false,
  updatedParams: 'modules',
  trainable: () => ['prompt'],
  prompts: { at: 'input', table: 'prompt', tokens: (o) => o.tokens },
});
