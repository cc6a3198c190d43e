// Sequential bottleneck adapter (apt-spec §3.5): z -> z + up(ReLU(down(z))), weights N(0, 0.01), zero biases.
// ViLT: `adapter0` on the attention branch (after proj_drop) and `adapter1` on the MLP branch of every block;
// METER: `adapter` inside every fusion BertSelfOutput (self and cross, before dropout) and BertOutput (FFN).
// Deliberately NOT here: adapter LayerNorms or scales (the reference has none).
// Invariants: names `adapterK.down_sampler.*`, `adapterK.up_sampler.*`; the output changes at init (both weights
// are non-zero), unlike LoRA.
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { ViltBlock } from '../vilt.ts';
import { BertOutput, BertSelfOutput } from '../roberta.ts';
import { findModules, inFusion, joinName, type Backbone, type MethodOptions, type MethodSpec } from './inject.ts';

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

export const adapter: MethodSpec = {
  name: 'adapter',
  description: 'Sequential bottleneck adapters after attention and FFN outputs (paper Table: r=96)',
  options: [
    { name: 'rank', type: 'int', default: 96, min: 1, description: 'bottleneck width' },
    { name: 'initStd', type: 'number', default: 0.01, min: 0, description: 'std of the Normal init of both weights' },
  ],
  tokenForClassifier: true,
  trainable: () => ['adapter'],
  inject(model: Backbone, o: MethodOptions): string[] {
    const r = o.rank as number, std = o.initStd as number, D = model.hidden;
    const names: string[] = [];
    if (model.kind === 'vilt') {
      for (const [n, blk] of findModules(model, ViltBlock)) {
        const a0 = blk.registerModule('adapter0', new Adapter(D, r, std));
        const a1 = blk.registerModule('adapter1', new Adapter(D, r, std));
        blk.addHook('attn_branch', (x) => a0.forward(x), 'adapter');
        blk.addHook('mlp_branch', (x) => a1.forward(x), 'adapter');
        names.push(joinName(n, 'adapter0'), joinName(n, 'adapter1'));
      }
    } else {
      for (const [n, m] of [...findModules(model, BertSelfOutput, inFusion), ...findModules(model, BertOutput, inFusion)]) {
        const a = m.registerModule('adapter', new Adapter(D, r, std));
        m.addHook('dense_out', (x) => a.forward(x), 'adapter');
        names.push(joinName(n, 'adapter'));
      }
    }
    return names;
  },
};
