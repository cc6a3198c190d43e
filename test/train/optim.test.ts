// AdamW (HF semantics, spec §6.3) and SGD against hand-computed updates; parameter groups; state round trip;
// an MLP trained with AdamW solves a toy task to 100%.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, liveTensors, setBackend, tensor } from '../../engine/index.ts';
import { AdamW, SGD, clipGradNorm } from '../../train/optim.ts';
import { runDemo } from '../../experiments/demo.ts';
import { allclose } from '../helpers.ts';

setBackend('ref');

function hfAdamW(p: number[], grads: number[][], lr: number, b1: number, b2: number, eps: number, wd: number): number[] {
  const m = p.map(() => 0), v = p.map(() => 0);
  p = p.slice();
  grads.forEach((g, t0) => {
    const t = t0 + 1;
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const stepSize = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
      p[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) + eps); // eps before bias correction
      p[i] -= lr * wd * p[i]; // decoupled decay after the Adam step
    }
  });
  return p;
}

test('AdamW matches HF AdamW step by step (float64), decay after the Adam step', () => {
  const p0 = [0.5, -1.5, 2, 1e-3];
  const grads = [[0.1, -0.2, 0.3, 0], [0.05, 0.4, -0.3, 1e-4], [-1, 2, 0.5, 0]];
  const p = tensor(p0, undefined, { dtype: 'float64', requiresGrad: true });
  const opt = new AdamW([p], { lr: 0.01, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.1 });
  for (const g of grads) {
    p.grad = tensor(g, undefined, { dtype: 'float64' }).keep();
    opt.step();
    opt.zeroGrad();
  }
  allclose(p, hfAdamW(p0, grads, 0.01, 0.9, 0.98, 1e-6, 0.1), { rtol: 1e-13, atol: 1e-15 });
  // the decay order matters: decaying before the step gives a different result
  const early = hfAdamW(p0, grads, 0.01, 0.9, 0.98, 1e-6, 0);
  assert.ok(Math.abs(early[0] - p.toArray()[0]) > 1e-6, 'weight decay has an effect');
  const st = opt.getState();
  assert.is(st.params[0].step, 3);
  opt.dispose();
  p.dispose();
});

test('AdamW parameter groups use their own lr and weight decay; params without grad are skipped', () => {
  const a = tensor([1, 1], undefined, { dtype: 'float64', requiresGrad: true });
  const b = tensor([1, 1], undefined, { dtype: 'float64', requiresGrad: true });
  const c = tensor([3], undefined, { dtype: 'float64', requiresGrad: true });
  const opt = new AdamW([{ params: [a], lr: 0.1, weightDecay: 0 }, { params: [b, c], weightDecay: 0.5 }], { lr: 0.01 });
  a.grad = tensor([1, -1], undefined, { dtype: 'float64' }).keep();
  b.grad = tensor([1, -1], undefined, { dtype: 'float64' }).keep();
  opt.step();
  allclose(a, hfAdamW([1, 1], [[1, -1]], 0.1, 0.9, 0.999, 1e-8, 0), { rtol: 1e-14 });
  allclose(b, hfAdamW([1, 1], [[1, -1]], 0.01, 0.9, 0.999, 1e-8, 0.5), { rtol: 1e-14 });
  allclose(c, [3], { rtol: 0, atol: 0 });
  assert.is(opt.getState().params[2].step, 0);
  assert.throws(() => new AdamW([{ params: [a] }, { params: [a] }], { lr: 1 }), /appears in more than one group/);
  opt.zeroGrad();
  assert.is(a.grad, null);
  opt.dispose();
  for (const t of [a, b, c]) t.dispose();
});

test('AdamW state round trip: a restored optimiser continues identically', () => {
  const mk = () => tensor([0.3, -0.7], undefined, { dtype: 'float64', requiresGrad: true });
  const gs = [[0.2, 0.1], [-0.4, 0.3], [0.5, 0.5]];
  const p1 = mk(), p2 = mk();
  const o1 = new AdamW([p1], { lr: 0.05, weightDecay: 0.01 });
  const o2 = new AdamW([p2], { lr: 0.05, weightDecay: 0.01 });
  const stepWith = (o: AdamW, p: Tensor, g: number[]) => { p.grad = tensor(g, undefined, { dtype: 'float64' }).keep(); o.step(); o.zeroGrad(); };
  stepWith(o1, p1, gs[0]); stepWith(o1, p1, gs[1]);
  stepWith(o2, p2, gs[0]); stepWith(o2, p2, gs[1]);
  const o3 = new AdamW([p2], { lr: 0.05, weightDecay: 0.01 });
  o3.loadState(o2.getState());
  stepWith(o1, p1, gs[2]);
  stepWith(o3, p2, gs[2]);
  allclose(p2, p1, { rtol: 0, atol: 0 });
  for (const o of [o1, o2, o3]) o.dispose();
  p1.dispose(); p2.dispose();
});

test('SGD with momentum and weight decay matches torch.optim.SGD', () => {
  const p = tensor([1, -2], undefined, { dtype: 'float64', requiresGrad: true });
  const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
  let pv = [1, -2];
  const buf = [0, 0];
  for (const g of [[0.5, 0.5], [-1, 0.25]]) {
    p.grad = tensor(g, undefined, { dtype: 'float64' }).keep();
    opt.step();
    opt.zeroGrad();
    pv = pv.map((x, i) => {
      const d = g[i] + 0.01 * x;
      buf[i] = 0.9 * buf[i] + d;
      return x - 0.1 * buf[i];
    });
  }
  allclose(p, pv, { rtol: 1e-14 });
  opt.dispose();
  p.dispose();
});

test('clipGradNorm scales all gradients by maxNorm / total norm (only when above)', () => {
  const a = tensor([3, 0], undefined, { requiresGrad: true }), b = tensor([4], undefined, { requiresGrad: true });
  a.grad = tensor([3, 0]).keep();
  b.grad = tensor([4]).keep();
  const before = liveTensors();
  const n = clipGradNorm([a, b], 1);
  allclose(n, [5]);
  allclose(a.grad!, [0.6, 0], { rtol: 1e-5 });
  allclose(b.grad!, [0.8], { rtol: 1e-5 });
  n.dispose();
  const n2 = clipGradNorm([a, b], 10);
  allclose(b.grad!, [0.8], { rtol: 1e-5 });
  n2.dispose();
  assert.is(liveTensors(), before);
  for (const t of [a.grad!, b.grad!, a, b]) t.dispose();
});

test('an MLP trained with AdamW reaches 100% on the toy spiral, leaving no tensors behind', () => {
  const before = liveTensors();
  const r = runDemo(120, 0, undefined, 32);
  assert.is(r.accuracy, 1, `accuracy ${r.accuracy}, loss ${r.loss}`);
  assert.is(liveTensors(), before);
});

test.run();
