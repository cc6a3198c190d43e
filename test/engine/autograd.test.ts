// Autograd semantics: a tensor used twice, accumulation over two backward calls, noGrad, detach, requiresGrad
// propagation, seeds for non-scalars, the graph released after backward, backward through reshape views.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { liveTensors, noGrad, scope, setBackend, tensor } from '../../engine/index.ts';
import { allclose, leakGuard } from '../helpers.ts';

setBackend('ref');

test('a tensor used twice gets the sum of both paths', leakGuard(() => scope(() => {
  const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
  const y = x.mul(x).add(x.mul(3)).sum(); // d/dx = 2x + 3
  y.backward();
  allclose(x.grad!, [5, 7, 9]);
  x.grad!.dispose();
})));

test('gradients accumulate over two backward calls', leakGuard(() => scope(() => {
  const x = tensor([1, -2], undefined, { requiresGrad: true });
  x.mul(2).sum().backward();
  x.pow(2).sum().backward();
  allclose(x.grad!, [2 + 2, 2 - 4]);
  const g1 = x.grad!;
  x.exp().sum().backward();
  assert.ok(g1.isDisposed, 'the old .grad is replaced, not kept alive');
  allclose(x.grad!, [4 + Math.E, -2 + Math.exp(-2)], { rtol: 1e-6 });
  x.grad!.dispose();
})));

test('noGrad records nothing; detach cuts the graph and shares data', leakGuard(() => scope(() => {
  const x = tensor([1, 2], undefined, { requiresGrad: true });
  const y = noGrad(() => x.mul(2));
  assert.is(y.requiresGrad, false);
  assert.is(y.gradFn, null);
  const d = x.detach();
  assert.is(d.requiresGrad, false);
  const z = d.mul(x).sum(); // only the x path counts
  z.backward();
  allclose(x.grad!, [1, 2]);
  assert.throws(() => y.sum().backward(), /does not require grad/);
  x.grad!.dispose();
})));

test('requiresGrad propagates through ops and stops at int outputs', leakGuard(() => scope(() => {
  const a = tensor([[1, 2], [3, 4]], undefined, { requiresGrad: true });
  const b = tensor([[1, 0], [0, 1]]);
  assert.ok(a.matmul(b).requiresGrad);
  assert.ok(!b.exp().requiresGrad);
  assert.ok(!a.argmax(1).requiresGrad);
  assert.ok(!a.maxWithIndices(0).indices.requiresGrad);
  assert.ok(a.reshape([4]).requiresGrad);
  assert.ok(!a.gt(2).requiresGrad || a.gt(2).gradFn === null, 'comparisons carry no gradient');
})));

test('non-scalar backward needs a seed; the seed is used as given', leakGuard(() => scope(() => {
  const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
  const y = x.mul(x);
  assert.throws(() => y.backward(), /not a scalar; pass a seed/);
  assert.throws(() => y.backward(tensor([1, 1])), /seed shape \[2\] does not match tensor shape \[3\]/);
  y.backward(tensor([1, 0, 2]));
  allclose(x.grad!, [2, 0, 12]);
  x.grad!.dispose();
})));

test('the graph is released after backward: saved tensors are freed and a second backward throws', leakGuard(() => {
  const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
  const before = liveTensors();
  const loss = scope(() => x.exp().mul(x).sum());
  assert.ok(liveTensors() > before + 1, 'intermediates saved by the graph are alive');
  loss.backward();
  assert.is(liveTensors(), before + 2, 'after backward only loss and x.grad remain');
  assert.throws(() => loss.backward(), /already released/);
  loss.dispose();
  x.grad!.dispose();
  x.dispose();
}));

test('a graph never walked is released when its scope ends', leakGuard(() => {
  const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
  const before = liveTensors();
  scope(() => { x.exp().mul(x).sum(); });
  assert.is(liveTensors(), before);
  x.dispose();
}));

test('an unreachable graph frees its activations at once (outputs disposed outside any scope, no backward)', leakGuard(() => {
  const w = tensor([[1, 2], [3, 4]], undefined, { requiresGrad: true });
  const x = tensor([[1, 1]]);
  const before = liveTensors();
  const m = x.matmul(w), h = m.tanh(), e = h.exp();
  const y = e.sum();
  for (const t of [m, h, e]) t.dispose();
  assert.ok(liveTensors() > before + 1, 'the graph still holds the activations y needs');
  y.dispose();
  assert.is(liveTensors(), before, 'disposing the last output releases the whole graph');
  w.dispose();
  x.dispose();
}));

test('backward works on a loss returned from a scope whose intermediates were disposed', leakGuard(() => {
  const w = tensor([0.5, -1], undefined, { requiresGrad: true });
  const loss = scope(() => w.mul(w).exp().mul(w).sum());
  loss.backward();
  const wd = [0.5, -1];
  allclose(w.grad!, wd.map((v) => Math.exp(v * v) * (1 + 2 * v * v)), { rtol: 1e-6 });
  loss.dispose();
  w.grad!.dispose();
  w.dispose();
}));

test('backward through views, slices, concat and broadcasting reaches the leaves with their shapes', leakGuard(() => scope(() => {
  const w = tensor([[1, 2, 3], [4, 5, 6]], undefined, { requiresGrad: true });
  const b = tensor([10], undefined, { requiresGrad: true });
  const y = E.concat([w.reshape([3, 2]).slice(0, 0, 1), w.reshape([6, 1]).transpose(0, 1).reshape([3, 2])], 0).add(b);
  y.sum().backward();
  allclose(w.grad!, [[2, 2, 1], [1, 1, 1]]);
  allclose(b.grad!, [8]);
  w.grad!.dispose();
  b.grad!.dispose();
})));

test('leaves that do not require grad get no .grad; frozen inputs skip their gradient computation', leakGuard(() => scope(() => {
  const frozen = tensor([[1, 2], [3, 4]]);
  const x = tensor([[1, 1]], undefined, { requiresGrad: true });
  x.matmul(frozen).sum().backward();
  assert.is(frozen.grad, null);
  allclose(x.grad!, [[3, 7]]);
  x.grad!.dispose();
})));

test('a gradient passed through to two inputs reaches both when the first is a leaf that already has .grad', leakGuard(() => scope(() => {
  // P + f(P): add passes its incoming gradient to both inputs; the first (the leaf P) accumulates and may free it
  const grads = (order: 'leaf-first' | 'leaf-second') => scope(() => {
    const P = tensor([[1, -2], [0.5, 3]], undefined, { requiresGrad: true });
    const A = tensor([[0.3, -0.7]], undefined, { requiresGrad: true });
    const f = P.matmul(A, { transB: true }).matmul(A);
    const K = order === 'leaf-first' ? P.add(f) : f.add(P);
    K.relu().matmul(P).sum().backward();
    const out = [Array.from(P.grad!.toArray()), Array.from(A.grad!.toArray())];
    P.grad!.dispose(); A.grad!.dispose();
    return out;
  });
  const a = grads('leaf-first'), b = grads('leaf-second');
  allclose(tensor(a[0]), b[0]);
  allclose(tensor(a[1]), b[1]);
})));

test.run();
