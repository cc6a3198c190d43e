// LoRA as in the reference (apt-spec §3.4): `q_lora` / `v_lora` modules with lora_A [D, r] ~ N(0, 1),
// lora_B [r, D] = 0, input dropout 0.1 in training, no alpha/r scaling by default. ViLT: every block's attention,
// added to q and v after the qkv Linear (input LN1(x)); METER: every BertSelfAttention of the fusion layers,
// q += lora(query stream), v += lora(key/value source: the other stream in cross-attention).
// Deliberately NOT here: merging into the frozen weights (never done by the reference).
// Invariants: B = 0 at init, so the output equals the un-injected model's; names `q_lora.lora_A`, `v_lora.lora_B`.
import type { Tensor } from '../../engine/index.ts';
import { Module, type HookFn } from '../nn/module.ts';
import { Dropout } from '../nn/layers.ts';
import { normal, zerosInit } from '../nn/init.ts';
import { ViltAttention } from '../vilt.ts';
import { BertSelfAttention } from '../roberta.ts';
import { attachChild, findModules, inFusion, type Backbone, type MethodOptions, type MethodSpec } from './inject.ts';

export class LoraModule extends Module {
  readonly dropout: Dropout;
  constructor(readonly dim: number, readonly rank: number, p: number, readonly scale: number) {
    super();
    this.registerParameter('lora_A', normal([dim, rank], 1));
    this.registerParameter('lora_B', zerosInit([rank, dim]));
    this.dropout = this.registerModule('dropout', new Dropout(p));
  }
  /** x + dropout(res) A B (· scale). res, x [B, N, D] */
  forward(res: Tensor, x: Tensor): Tensor {
    let u = this.dropout.forward(res).matmul(this.param('lora_A')).matmul(this.param('lora_B'));
    if (this.scale !== 1) u = u.mul(this.scale);
    return x.add(u);
  }
}

export const lora = {
  name: 'lora',
  description: 'LoRA on the query and value projections (paper Table: r=4, no scaling)',
  options: [
    { name: 'rank', type: 'int', default: 4, min: 1, description: 'r, rank of A B (reference code: 204 ViLT, 27 METER)' },
    { name: 'dropout', type: 'number', default: 0.1, min: 0, max: 0.99, description: 'dropout on the LoRA input in training' },
    { name: 'scale', type: 'number', default: 1, description: 'multiplier on the update (the reference comments out alpha/r)' },
  ],
  tokenForClassifier: true,
  trainable: () => ['lora'],
  inject(model: Backbone, o: MethodOptions): string[] {
    const r = o.rank as number, p = o.dropout as number, s = o.scale as number;
    const make = () => new LoraModule(model.hidden, r, p, s);
    const hook = (l: LoraModule): HookFn => (x, ctx) => l.forward(ctx.input!, x);
    const attach = (t: [string, ViltAttention | BertSelfAttention]) => [
      attachChild('lora', t, 'q_lora', make(), 'q', hook),
      attachChild('lora', t, 'v_lora', make(), 'v', hook),
    ];
    return model.kind === 'vilt' ? findModules(model, ViltAttention).flatMap(attach) : findModules(model, BertSelfAttention, inFusion).flatMap(attach);
  },
} as const satisfies MethodSpec;
