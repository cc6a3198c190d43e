// Classifier-only baseline (apt-spec §3.7): only the §3.0 base list trains (token4classifier, type tables,
// poolers, task head, rank_output). Attaches nothing.
import type { MethodSpec } from './inject.ts';

export const classifierOnly = {
  name: 'classifier_only',
  description: 'Baseline: only the task head, poolers, modality type tables and token4classifier train',
  options: [],
  tokenForClassifier: true,
  trainable: () => [],
  inject: () => [],
} as const satisfies MethodSpec;
