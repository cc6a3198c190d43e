// One training step of ViLT (VQA, AdamW) for a method, on the current engine backend: the shared body of
// `npm run bench:train` (bench/train.ts) and of the large-heap step test (test/engine/heap.test.ts).
// Does not: load data or pretrained weights (random weights and inputs; the step's cost does not depend on them), or
// time anything (callers do).
// Invariants: everything a step allocates is freed by its scope; the model, optimiser and batch live until dispose().
import * as E from '../engine/index.ts';
import { createModel, type ViltConfig, type VLModel } from '../models/index.ts';
import { AdamW } from '../train/optim.ts';

export interface StepSpec {
  config: ViltConfig;
  method: string;
  batch: number;
  /** text tokens (the rest of the 185 tokens are image patches + the image [CLS]) */
  textLen: number;
  /** square image side in pixels */
  imageSize: number;
  numAnswers: number;
  methodOptions?: Record<string, unknown>;
}

export interface StepRunner {
  step(): number;
  dispose(): void;
  model: VLModel;
}

/** Builds the model, an AdamW over its trainable parameters and one fixed random batch; step() runs forward,
 *  backward and the optimiser update in a scope and returns the loss. */
export function makeStep(s: StepSpec): StepRunner {
  const model = createModel({ backbone: 'vilt', config: s.config, task: 'vqa', numAnswers: s.numAnswers, method: s.method, methodOptions: s.methodOptions, seed: 1 });
  model.backbone.train();
  const params = model.backbone.trainableParameters().map(([, p]) => p);
  const opt = new AdamW(params, { lr: 1e-4, betas: [0.9, 0.98] });
  const gen = new E.Generator(7);
  const B = s.batch, L = s.textLen;
  const ids = new Int32Array(B * L).map((_, i) => (i % L === 0 ? s.config.clsTokenId : 1000 + ((i * 7919) % 20000) % s.config.vocab));
  const batch = {
    textIds: E.keep(E.tensor(ids, [B, L], { dtype: 'int32' })),
    textMasks: E.keep(E.ones([B, L], { dtype: 'int32' })),
    image: E.keep(E.randn([B, 3, s.imageSize, s.imageSize], { generator: gen })),
    vqaTargets: E.keep(E.rand([B, s.numAnswers], { generator: gen }).mul(E.rand([B, s.numAnswers], { generator: gen }).gt(0.999))),
  };
  return {
    model,
    step: () => E.scope(() => {
      opt.zeroGrad();
      const { loss } = model.loss(batch);
      loss.backward();
      opt.step();
      return loss.item();
    }),
    dispose: () => {
      opt.zeroGrad();
      opt.dispose();
      E.dispose(batch);
      for (const p of model.backbone.parameters()) p.dispose();
    },
  };
}
