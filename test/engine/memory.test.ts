// Explicit memory: scopes free temporaries, keep/return survive, a whole scoped training step leaves zero live
// temporaries, shared storages (reshape) are freed once, the kernel allocation check, checkLeaks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { backendByName, checkLeaks, crossEntropy, liveTensors, randn, scope, setBackend, setKernelChecks, tensor, zeros } from '../../engine/index.ts';
import { AdamW } from '../../train/optim.ts';
import { createRefBackend } from '../../engine/backends/ref.ts';
import { registerBackend } from '../../engine/index.ts';

setBackend('ref');
const ref = backendByName('ref');

test('scope frees temporaries, keeps the returned value and kept tensors', () => {
  const before = liveTensors();
  const bytes = ref.allocatedBytes();
  let kept: E.Tensor | null = null;
  const r = scope(() => {
    const a = tensor([1, 2, 3]);
    const b = a.mul(2).add(1);
    kept = a.exp().keep();
    return { out: [b.sum()], n: 3 };
  });
  assert.is(liveTensors(), before + 2);
  assert.is(r.out[0].item(), 15);
  assert.ok(!kept!.isDisposed);
  r.out[0].dispose();
  kept!.dispose();
  assert.is(liveTensors(), before);
  assert.is(ref.allocatedBytes(), bytes);
});

test('nested scopes: a value returned from the inner scope belongs to the outer one', () => {
  const before = liveTensors();
  let inner: E.Tensor | null = null;
  scope(() => {
    inner = scope(() => tensor([1]).add(1));
    assert.ok(!inner.isDisposed);
  });
  assert.ok(inner!.isDisposed);
  assert.is(liveTensors(), before);
});

test('scope disposes on throw too', () => {
  const before = liveTensors();
  assert.throws(() => scope(() => { tensor([1, 2]).exp(); throw new Error('boom'); }), /boom/);
  assert.is(liveTensors(), before);
});

test('reshape shares storage: freed once, after the last holder', () => {
  const bytes = ref.allocatedBytes();
  const a = tensor([1, 2, 3, 4]);
  const v = a.reshape([2, 2]);
  assert.is(ref.allocatedBytes(), bytes + 16, 'a view allocates nothing');
  a.dispose();
  assert.equal(v.toList(), [[1, 2], [3, 4]]);
  v.dispose();
  assert.is(ref.allocatedBytes(), bytes);
  assert.throws(() => v.toArray(), /has been disposed/);
});

test('a scoped training step (forward, backward, AdamW) leaves zero live temporaries; params and grads survive', () => {
  const w = randn([4, 3], { generator: new E.Generator(1) }).requiresGrad_();
  const b = zeros([4]).requiresGrad_();
  const x = randn([5, 3], { generator: new E.Generator(2) });
  const y = tensor([0, 1, 2, 3, 1], undefined, { dtype: 'int32' });
  const opt = new AdamW([w, b], { lr: 0.1, weightDecay: 0.01 });
  const step = () => scope(() => {
    opt.zeroGrad();
    const loss = crossEntropy(E.linear(x, w, b).gelu(), y);
    loss.backward();
    opt.step();
    return loss.item();
  });
  step(); // creates the optimizer state (2 moments per param) and the grads
  const live = liveTensors(), bytes = ref.allocatedBytes();
  const l2 = step();
  const l3 = step();
  assert.is(liveTensors(), live, 'no live temporaries after a step');
  assert.is(ref.allocatedBytes(), bytes);
  assert.ok(l3 < l2, `loss decreases (${l2} -> ${l3})`);
  assert.ok(w.grad !== null && !w.grad.isDisposed, 'parameter grads are kept');
  opt.zeroGrad();
  opt.dispose();
  for (const t of [w, b, x, y]) t.dispose();
});

test('kernel check mode: every kernel allocates exactly its outputs', () => {
  setKernelChecks(true);
  try {
    checkLeaks(() => scope(() => {
      const x = randn([3, 4], { requiresGrad: true });
      const l = E.layerNorm(x, null, null).softmax(-1).matmul(x, { transA: true }).sum();
      l.backward();
      x.grad!.dispose();
    }), [ref]);
  } finally {
    setKernelChecks(false);
  }
});

test('kernel check mode catches a kernel that leaves scratch memory allocated', () => {
  const leaky = createRefBackend('leaky-test');
  const kernels = { ...leaky.kernels, neg: ((i, o, a) => { leaky.alloc(3, 'float32'); leaky.kernels.neg!(i, o, a); }) as typeof leaky.kernels.neg };
  registerBackend('leaky-test', () => ({ ...leaky, kernels }), -10);
  const x = tensor([1, 2], undefined, { backend: 'leaky-test' });
  assert.equal(x.neg().toList(), [-1, -2], 'unchecked: runs');
  setKernelChecks(true);
  try {
    assert.throws(() => x.neg(), /neg: kernel check failed on backend leaky-test: .*kernel left 12 bytes allocated/);
  } finally {
    setKernelChecks(false);
  }
});

test('checkLeaks reports a leak', () => {
  let leaked: E.Tensor | null = null;
  assert.throws(() => checkLeaks(() => { leaked = tensor([1]); }, [ref]), /1 tensor\(s\) leaked/);
  leaked!.dispose();
});

test('scope rejects async functions', () => {
  assert.throws(() => scope(() => Promise.resolve(1)), /returned a Promise/);
});

test.run();
