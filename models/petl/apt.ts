// APT, the `approximate_prompt` module (apt-spec §3.1), and its method definition: one module at insertion point
// 'attn.out' (the attention output projection before its dropout, R = the sub-block input): ViLT one per block
// (R = LN1(x)), METER one per BertSelfOutput of the fusion layers (self- and cross-attention, R = the residual).
// Deliberately NOT here: the commented-out MLP placement of the reference.
// Invariants: names `APT.mm_tokens` [M, D], `APT.mm.0.weight` [h, D], `APT.mm.1.weight` [D, h], `APT.scale` [1];
// out = (X + ReLU(R Kᵀ) P ⊙ w) · exp(s) with K = P + W_b W_a P, w = max over M of the scores, detached.
// Quirk choice: the scale trains in both backbones (trainScale=true); trainScale=false reproduces METER's
// reference, whose 'mm' pattern leaves the scale frozen.
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../nn/module.ts';
import { Dropout, Linear, Sequential } from '../nn/layers.ts';
import { normal, zerosInit } from '../nn/init.ts';
import { defineMethod } from './inject.ts';

export class ApproximatePrompt extends Module {
  readonly mm: Sequential;
  readonly attn_drop: Dropout;
  constructor(readonly dim: number, readonly rank: number, readonly memory: number, pdrop = 0) {
    super();
    this.mm = this.registerModule('mm', new Sequential([
      new Linear(dim, rank, { bias: false, init: { std: 1 } }),
      new Linear(rank, dim, { bias: false, init: 'zeros' }),
    ]));
    this.registerParameter('mm_tokens', normal([memory, dim], 0.02));
    this.attn_drop = this.registerModule('attn_drop', new Dropout(pdrop));
    this.registerParameter('scale', zerosInit([1]));
  }
  /** x [B, N, D] branch output, res [B, N, D] branch input -> [B, N, D] */
  forward(x: Tensor, res: Tensor): Tensor {
    const P = this.param('mm_tokens'); // [M, D]
    const K = P.add(this.mm.forward(P)); // [M, D]
    let S = res.matmul(K, { transB: true }).relu(); // [B, N, M]
    S = this.attn_drop.forward(S);
    const E = S.matmul(P); // [B, N, D]
    const w = S.max(-1, true).detach(); // [B, N, 1]
    return x.add(E.mul(w)).mul(this.param('scale').exp());
  }
}

export const apt = defineMethod({
  name: 'apt',
  description: 'Approximated prompt tuning: M memory tokens read by a ReLU kernel after each attention output (paper Table: M=200, h=4)',
  options: [
    { name: 'tokens', type: 'int', default: 200, min: 1, description: 'M, number of approximated prompt tokens per module' },
    { name: 'rank', type: 'int', default: 4, min: 1, description: 'h, rank of the low-rank key correction W_b W_a' },
    { name: 'dropout', type: 'number', default: 0, min: 0, max: 0.99, description: 'dropout on the ReLU scores (0 in the reference)' },
    { name: 'trainScale', type: 'bool', default: true, description: 'train the exp(s) scale (METER reference leaves it frozen)' },
  ],
  tokenForClassifier: true,
  mergeable: false,
  updatedParams: 'modules',
  paperRow: 6,
  trainable: (o) => (o.trainScale ? ['APT'] : ['APT.mm']),
  hooks: [{
    at: 'attn.out', child: 'APT',
    create(D, o) {
      const m = new ApproximatePrompt(D, o.rank, o.tokens, o.dropout);
      return { module: m, hook: (x, ctx) => m.forward(x, ctx.input!) };
    },
  }],
});
