// Classifier-only baseline (apt-spec §3.7): only the §3.0 base list trains (token4classifier, type tables,
// poolers, task head, rank_output). Attaches nothing.
import { defineMethod } from './inject.ts';

export const classifierOnly = defineMethod({
  name: 'classifier_only',
  description: 'Baseline: only the task head, poolers, modality type tables and token4classifier train',
  options: [],
  tokenForClassifier: true,
  mergeable: false,
  updatedParams: 'modules',
  paperRow: 1,
  trainable: () => [],
});
