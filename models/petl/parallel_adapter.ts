// Scaled parallel adapter `Adapter_Layer` (apt-spec §3.6): PA(u) = scale · up(ReLU(down(LN(u)))), no residual,
// fixed scale 4, "bert" init (weights N(0, 0.02), biases 0, LN 1/0), LN eps 1e-5 ("in" option).
// Insertion point 'attn.parallel': ViLT `attn.PA` fed LN1(x), added after the projection dropout; METER `output.PA`
// of every fusion BertSelfOutput, fed the residual input and added after the post-LN.
// Deliberately NOT here: the learnable-scalar and "out"/"lora" variants the reference never uses.
// Invariants: names `PA.adapter_layer_norm_before.*`, `PA.down_proj.*`, `PA.up_proj.*`.
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../nn/module.ts';
import { Dropout, LayerNorm, Linear } from '../nn/layers.ts';
import { defineMethod } from './inject.ts';

export class ParallelAdapter extends Module {
  readonly adapter_layer_norm_before: LayerNorm;
  readonly down_proj: Linear;
  readonly up_proj: Linear;
  readonly dropout: Dropout;
  constructor(dim: number, bottleneck: number, readonly scale: number, p = 0) {
    super();
    this.adapter_layer_norm_before = this.registerModule('adapter_layer_norm_before', new LayerNorm(dim, 1e-5));
    this.down_proj = this.registerModule('down_proj', new Linear(dim, bottleneck, { init: 'normal0.02' }));
    this.up_proj = this.registerModule('up_proj', new Linear(bottleneck, dim, { init: 'normal0.02' }));
    this.dropout = this.registerModule('dropout', new Dropout(p));
  }
  // [B, N, D] -> [B, N, D]
  forward(u: Tensor): Tensor {
    const d = this.dropout.forward(this.down_proj.forward(this.adapter_layer_norm_before.forward(u)).relu());
    return this.up_proj.forward(d).mul(this.scale);
  }
}

export const parallelAdapter = defineMethod({
  name: 'parallel_adapter',
  description: 'Scaled parallel adapter beside each attention block (paper Table: r=96, scale 4)',
  options: [
    { name: 'rank', type: 'int', default: 96, min: 1, description: 'bottleneck width (reference code: 204 ViLT)' },
    { name: 'scale', type: 'number', default: 4, description: 'fixed output scale' },
  ],
  tokenForClassifier: true,
  mergeable: false,
  updatedParams: 'modules',
  paperRow: 4,
  trainable: () => ['PA'],
  hooks: [{
    at: 'attn.parallel', child: 'PA',
    create(D, o) {
      const pa = new ParallelAdapter(D, o.rank, o.scale);
      return { module: pa, hook: (x, ctx) => x.add(pa.forward(ctx.input!)) };
    },
  }],
});
