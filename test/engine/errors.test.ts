// Errors name the op and the shapes / backend / dtype at fault; nothing returns a silently wrong result.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { registerBackend, setBackend, tensor, type Backend } from '../../engine/index.ts';
import { createRefBackend } from '../../engine/backends/ref.ts';

setBackend('ref');

// a second backend that lacks some kernels (the ref table minus matmul) to test cross-backend and missing-kernel errors
registerBackend('partial-test', () => {
  const b = createRefBackend('partial-test');
  const kernels = { ...b.kernels };
  delete kernels.matmul;
  return { ...b, kernels } as Backend;
}, -10);
registerBackend('broken-test', () => { throw new Error('unavailable: no such device in this test'); }, -20);

test('shape mismatches name the op and both shapes', () => {
  const a = tensor([[1, 2, 3]]), b = tensor([1, 2]);
  assert.throws(() => a.add(b), /add: cannot broadcast shapes \[1,3\] and \[2\]/);
  assert.throws(() => a.matmul(tensor([[1, 2]])), /matmul: inner dimensions differ: \[1,3\] x \[1,2\]/);
  assert.throws(() => E.concat([a, tensor([[1, 2]])], 0), /concat: shapes \[1,3\], \[1,2\] differ outside axis 0/);
  assert.throws(() => a.reshape([2, 2]), /reshape: cannot reshape \[1,3\] to \[2,2\]/);
  assert.throws(() => E.layerNorm(a, tensor([1, 1]), null), /layer_norm: weight \[2\] and bias \[3\] must be \[3\]/);
  assert.throws(() => a.sum(2), /sum: axis 2 out of range for a tensor of rank 2/);
  assert.throws(() => a.softmax(-1, tensor([1, 2])), /softmax: cannot broadcast shapes \[1,3\] and \[2\]/);
  assert.throws(() => E.crossEntropy(a, tensor([0, 1], undefined, { dtype: 'int32' })), /crossEntropy: logits \[1,3\] and labels \[2\] do not match/);
  assert.throws(() => E.linear(a, tensor([[1, 2]])), /linear: input \[1,3\] does not end in 2/);
});

test('dtype errors name the op and dtypes', () => {
  const f = tensor([1, 2]), i = tensor([1, 2], undefined, { dtype: 'int32' });
  assert.throws(() => f.add(i), /add: dtype mismatch \(float32, int32\)/);
  assert.throws(() => i.exp(), /exp: expected a float tensor, got int32/);
  assert.throws(() => E.embedding(tensor([[1]]), f), /embedding: ids must be int32, got float32/);
  assert.throws(() => i.requiresGrad_(), /int32 tensors cannot require grad/);
  assert.throws(() => i.gt(0.5), /gt: int32 tensor with non-integer scalar 0.5/);
});

test('a disposed tensor raises on use', () => {
  const a = tensor([1, 2]);
  a.dispose();
  assert.throws(() => a.add(1), /affine: tensor #\d+ \[2\] float32 has been disposed/);
  assert.throws(() => a.toArray(), /toArray: .* has been disposed/);
  a.dispose(); // idempotent: no throw
});

test('tensors from two backends raise naming both', () => {
  const a = tensor([1, 2]), b = tensor([1, 2], undefined, { backend: 'partial-test' });
  assert.throws(() => a.add(b), /add: tensors on two backends \(ref and partial-test\)/);
  const c = b.to('ref');
  assert.equal(a.add(c).toList(), [2, 4]);
});

test('an op missing on a backend raises one error naming op, backend and dtype', () => {
  const a = tensor([[1, 2]], undefined, { backend: 'partial-test' });
  assert.throws(() => a.matmul(a, { transB: true }), /matmul: backend partial-test has no kernel for op matmul \(dtype float32\)/);
});

test('an unavailable backend reports its reason', () => {
  assert.ok(!E.backends().includes('broken-test'));
  const st = E.backendStatus().find((s) => s.name === 'broken-test')!;
  assert.is(st.available, false);
  assert.is(st.reason, 'no such device in this test');
  assert.throws(() => tensor([1], undefined, { backend: 'broken-test' }), /backend "broken-test" is unavailable: no such device in this test/);
  assert.throws(() => setBackend('nope'), /backend "nope" is not registered/);
});

test('bad arguments are rejected, not silently accepted', () => {
  const a = tensor([[1, 2, 3]]);
  assert.throws(() => a.permute(0, 0), /permute: \[0,0\] is not a permutation/);
  assert.throws(() => E.dropout(a, 1, { training: true }), /dropout: p must be in \[0, 1\)/);
  assert.throws(() => a.item(), /item: tensor has 3 elements/);
  assert.throws(() => E.scatterAdd(a, tensor([[0, 1, 5]], undefined, { dtype: 'int32' }), 1, [1, 3]), /scatter_add: index 5 at position 2 out of range/);
  assert.throws(() => E.apply('adamw_step', [a, a, a, a], { lr: 1, beta1: 0.9, beta2: 0.9, eps: 0, weightDecay: 0, step: 0 }), /step must be an integer >= 1/);
});

test.run();
