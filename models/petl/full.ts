// Full fine-tuning baseline (apt-spec §3.7): every parameter trains and there is no token4classifier. Our choice
// (README): gradients also reach METER's CLIP tower and RoBERTa embeddings, which the reference wraps in no_grad.
// Attaches nothing.
import type { MethodSpec } from './inject.ts';

export const full = {
  name: 'full',
  description: 'Full fine-tuning: every parameter trains (METER encoders included)',
  options: [],
  tokenForClassifier: false,
  encoderGrad: true,
  trainable: () => [''],
  inject: () => [],
} as const satisfies MethodSpec;
