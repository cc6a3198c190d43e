// LoRA as in the reference (apt-spec §3.4): `q_lora` / `v_lora` modules with lora_A [D, r] ~ N(0, 1),
// lora_B [r, D] = 0, input dropout 0.1 in training, no alpha/r scaling by default. Insertion points 'attn.q' and
// 'attn.v': q += lora(query stream), v += lora(key/value source: the other stream in cross-attention); ViLT every
// block's attention (after the qkv Linear, input LN1(x)), METER every BertSelfAttention of the fusion layers.
// Deliberately NOT here: merging into the frozen weights (never done by the reference; `mergeable` tells the
// accounting that it could be, so LoRA adds no inference FLOPs by convention).
// Invariants: B = 0 at init, so the output equals the un-injected model's; names `q_lora.lora_A`, `v_lora.lora_B`.
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../nn/module.ts';
import { Dropout } from '../nn/layers.ts';
import { normal, zerosInit } from '../nn/init.ts';
import { defineMethod, type HookAttachment, type ResolvedOptions } from './inject.ts';

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

const options = [
  { name: 'rank', type: 'int', default: 4, min: 1, description: 'r, rank of A B (reference code: 204 ViLT, 27 METER)' },
  { name: 'dropout', type: 'number', default: 0.1, min: 0, max: 0.99, description: 'dropout on the LoRA input in training' },
  { name: 'scale', type: 'number', default: 1, description: 'multiplier on the update (the reference comments out alpha/r)' },
] as const;

const loraAt = (at: 'attn.q' | 'attn.v', child: string): HookAttachment<ResolvedOptions<typeof options>> => ({
  at, child,
  create(D, o) {
    const l = new LoraModule(D, o.rank, o.dropout, o.scale);
    return { module: l, hook: (x, ctx) => l.forward(ctx.input!, x) };
  },
});

export const lora = defineMethod({
  name: 'lora',
  description: 'LoRA on the query and value projections (paper Table: r=4, no scaling)',
  options,
  tokenForClassifier: true,
  mergeable: true,
  updatedParams: 'modules',
  paperRow: 3,
  trainable: () => ['lora'],
  hooks: [loraAt('attn.q', 'q_lora'), loraAt('attn.v', 'v_lora')],
});
