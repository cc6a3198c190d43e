// Sequential bottleneck adapter (apt-spec §3.5): z -> z + up(ReLU(down(z))), weights N(0, 0.01), zero biases.
// ViLT: `adapter0` on the attention branch (after proj_drop) and `adapter1` on the MLP branch of every block;
// METER: `adapter` inside every fusion BertSelfOutput (self and cross, before dropout) and BertOutput (FFN).
// Deliberately NOT here: adapter LayerNorms or scales (the reference has none).
// Invariants: names `adapterK.down_sampler.*`, `adapterK.up_sampler.*`; the output changes at init (both weights
// are non-zero), unlike LoRA.
import type { Tensor } from '../../engine/index.ts';
import { Module, type HookFn } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { ViltBlock } from '../vilt.ts';
import { BertOutput, BertSelfOutput } from '../roberta.ts';
import { attachChild, findModules, inFusion, type Backbone, type MethodOptions, type MethodSpec } from './inject.ts';

export class Adapter extends Module {
  readonly down_sampler: Linear;
  readonly up_sampler: Linear;
  constructor(dim: number, bottleneck: number, std: number) {
    super();
    this.down_sampler = this.registerModule('down_sampler', new Linear(dim, bottleneck, { init: { std } }));
    this.up_sampler = this.registerModule('up_sampler', new Linear(bottleneck, dim, { init: { std } }));
  }
  forward(x: Tensor): Tensor {
    return x.add(this.up_sampler.forward(this.down_sampler.forward(x).relu()));
  }
}

export const adapter = {
  name: 'adapter',
  description: 'Sequential bottleneck adapters after attention and FFN outputs (paper Table: r=96)',
  options: [
    { name: 'rank', type: 'int', default: 96, min: 1, description: 'bottleneck width' },
    { name: 'initStd', type: 'number', default: 0.01, min: 0, description: 'std of the Normal init of both weights' },
  ],
  tokenForClassifier: true,
  trainable: () => ['adapter'],
  inject(model: Backbone, o: MethodOptions): string[] {
    const r = o.rank as number, std = o.initStd as number;
    const make = () => new Adapter(model.hidden, r, std);
    const hook = (a: Adapter): HookFn => (x) => a.forward(x);
    if (model.kind === 'vilt') {
      return findModules(model, ViltBlock).flatMap((t) => [
        attachChild('adapter', t, 'adapter0', make(), 'attn_branch', hook),
        attachChild('adapter', t, 'adapter1', make(), 'mlp_branch', hook),
      ]);
    }
    return [...findModules(model, BertSelfOutput, inFusion), ...findModules(model, BertOutput, inFusion)]
      .map((t) => attachChild('adapter', t, 'adapter', make(), 'dense_out', hook));
  },
} as const satisfies MethodSpec;
