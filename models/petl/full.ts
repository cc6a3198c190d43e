// Full fine-tuning baseline (apt-spec §3.7): every parameter trains and there is no token4classifier. Our choice
// (README): gradients also reach METER's CLIP tower and RoBERTa embeddings, which the reference wraps in no_grad
// (encoderGrad). Attaches nothing; its "updated parameters" are the whole backbone without task heads.
import { defineMethod } from './inject.ts';

export const full = defineMethod({
  name: 'full',
  description: 'Full fine-tuning: every parameter trains (METER encoders included)',
  options: [],
  tokenForClassifier: false,
  mergeable: false,
  updatedParams: 'backbone',
  encoderGrad: true,
  paperRow: 0,
  trainable: () => [''],
});
