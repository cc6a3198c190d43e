// Engine demonstration (`node --import tsx experiments/demo.ts [--steps N] [--backend NAME]`): trains a small MLP with
// AdamW on a generated 3-class spiral and prints loss and accuracy. Real training, deterministic for a given seed.
// Does not touch models/ (it is the engine's smoke test on whatever backend is selected).

import { Generator, Tensor, backends, crossEntropy, getBackend, linear, liveTensors, noGrad, randn, rand, scope, setBackend, tensor, zeros } from '../engine/index.ts';
import { AdamW } from '../train/optim.ts';

export interface DemoResult {
  backend: string;
  steps: number;
  loss: number;
  accuracy: number;
}

/** Spiral data: `perClass` points for each of `classes` arms, with noise; x [N, 2] float32, y [N] int32. */
export function spiral(perClass: number, classes: number, gen: Generator): { x: Tensor; y: Tensor } {
  const n = perClass * classes;
  const nt = randn([n], { generator: gen, std: 0.1 });
  const noise = nt.toArray();
  nt.dispose();
  const xs = new Float32Array(n * 2);
  const ys = new Int32Array(n);
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < perClass; i++) {
      const k = c * perClass + i;
      const r = 0.1 + (0.9 * i) / perClass; // away from the origin, where the arms meet
      const t = (c * 4) + r * 4 + noise[k];
      xs[2 * k] = r * Math.sin(t);
      xs[2 * k + 1] = r * Math.cos(t);
      ys[k] = c;
    }
  }
  return { x: tensor(xs, [n, 2]), y: tensor(ys, [n]) };
}

/** Train a 2-H-H-C MLP (H = hidden) with AdamW for `steps` full-batch steps; returns final loss and accuracy. */
export function runDemo(steps = 300, seed = 0, log: (s: string) => void = () => {}, hidden = 64): DemoResult {
  const gen = new Generator(seed);
  const classes = 3;
  const { x, y } = spiral(100, classes, gen);
  const init = (o: number, i: number) => rand([o, i], { generator: gen, low: -1 / Math.sqrt(i), high: 1 / Math.sqrt(i) }).requiresGrad_();
  const H = hidden;
  const params = [init(H, 2), zeros([H]).requiresGrad_(), init(H, H), zeros([H]).requiresGrad_(), init(classes, H), zeros([classes]).requiresGrad_()];
  const [w1, b1, w2, b2, w3, b3] = params;
  const forward = (inp: Tensor) => linear(linear(linear(inp, w1, b1).relu(), w2, b2).relu(), w3, b3);
  const opt = new AdamW([
    { params: [w1, w2, w3], weightDecay: 1e-4 },
    { params: [b1, b2, b3], weightDecay: 0 },
  ], { lr: 1e-2, betas: [0.9, 0.98], eps: 1e-8 });
  let loss = NaN;
  for (let s = 1; s <= steps; s++) {
    loss = scope(() => {
      opt.zeroGrad();
      const l = crossEntropy(forward(x), y);
      l.backward();
      opt.step();
      return l.item();
    });
    if (s % 50 === 0 || s === 1) log(`step ${String(s).padStart(4)}  loss ${loss.toFixed(4)}`);
  }
  const accuracy = noGrad(() => scope(() => {
    const pred = forward(x).argmax(-1);
    return pred.eq(y).cast('float32').mean().item();
  }));
  opt.zeroGrad();
  opt.dispose();
  for (const p of [...params, x, y]) p.dispose();
  return { backend: getBackend().name, steps, loss, accuracy };
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const args = process.argv.slice(2);
  const at = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  if (at('--backend')) setBackend(at('--backend')!);
  const steps = Number(at('--steps') ?? 300);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`demo: --steps must be a positive integer, got ${at('--steps')}`);
  console.log(`aptune engine demo: MLP 2-64-64-3 on a 300-point spiral, AdamW, backend ${getBackend().name} (available: ${backends().join(', ')})`);
  const t0 = performance.now();
  const r = runDemo(steps, 0, (s) => console.log(s));
  console.log(`final loss ${r.loss.toFixed(4)}, train accuracy ${(r.accuracy * 100).toFixed(1)}% after ${r.steps} steps (${((performance.now() - t0) / 1000).toFixed(1)} s), live tensors ${liveTensors()}`);
}
