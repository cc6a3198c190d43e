// Sequential bottleneck adapter (apt-spec §3.5): z -> z + up(ReLU(down(z))), weights N(0, 0.01), zero biases.
// Insertion points 'attn.branch' and 'ffn.branch'. ViLT: both on each block (attention branch after proj_drop, MLP
// branch), so one block holds two: `adapter0`, `adapter1`; METER: `adapter` inside every fusion BertSelfOutput (self
// and cross, before dropout) and BertOutput (FFN).
// Deliberately NOT here: adapter LayerNorms or scales (the reference has none).
// Invariants: names `adapterK.down_sampler.*`, `adapterK.up_sampler.*`; the output changes at init (both weights
// are non-zero), unlike LoRA.
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { defineMethod, type HookAttachment, type ResolvedOptions } from './inject.ts';

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

const options = [
  { name: 'rank', type: 'int', default: 96, min: 1, description: 'bottleneck width' },
  { name: 'initStd', type: 'number', default: 0.01, min: 0, description: 'std of the Normal init of both weights' },
] as const;

const adapterAt = (at: 'attn.branch' | 'ffn.branch'): HookAttachment<ResolvedOptions<typeof options>> => ({
  at, child: 'adapter',
  create(D, o) {
    const a = new Adapter(D, o.rank, o.initStd);
    return { module: a, hook: (x) => a.forward(x) };
  },
});

export const adapter = defineMethod({
  name: 'adapter',
  description: 'Sequential bottleneck adapters after attention and FFN outputs (paper Table: r=96)',
  options,
  tokenForClassifier: true,
  mergeable: false,
  updatedParams: 'modules',
  paperRow: 5,
  trainable: () => ['adapter'],
  hooks: [adapterAt('attn.branch'), adapterAt('ffn.branch')],
});
