// The shape backend: a kernel for every op, work recorded (not computed), no data held, never auto-selected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OP_NAMES, backendStatus, getBackend, linear, matmul, layerNorm, setBackend, zeros, ones, randn, softmax } from '../../../engine/index.ts';
import { ShapeBackend, shapeBackend, SHAPE_BACKEND_PRIORITY } from '../../../engine/backends/shape.ts';

const withShape = <T>(fn: () => T): T => {
  const prev = getBackend().name;
  setBackend('shape');
  try { return fn(); } finally { setBackend(prev); }
};

test('registered with the lowest priority and not the default', () => {
  const st = backendStatus();
  const me = st.find((s) => s.name === 'shape');
  assert.ok(me && me.available);
  assert.is(me!.priority, SHAPE_BACKEND_PRIORITY);
  assert.ok(st.every((s) => s.name === 'shape' || s.priority > SHAPE_BACKEND_PRIORITY));
  assert.is.not(getBackend().name, 'shape');
});

test('a kernel for every op', () => {
  const b = new ShapeBackend();
  for (const op of OP_NAMES) assert.type(b.kernels[op], 'function', op);
});

test('records MACs of matmul and linear, LayerNorm elements per weight, other ops in the tally only', () => {
  const sb = shapeBackend();
  const { tally, result } = withShape(() => sb.measure(() => {
    const x = randn([2, 10, 16]);
    const w = zeros([32, 16]), ln = ones([16]);
    const y = linear(x, w, zeros([32])); // [2,10,32]: 2*10*32*16
    matmul(zeros([3, 1, 4, 5]), zeros([2, 5, 6])); // broadcast [3,2,4,6]: 3*2*4*6*5
    layerNorm(x, ln, zeros([16]), 1e-6);
    softmax(y, -1);
    return { y, ln };
  }));
  assert.equal(result.y.shape, [2, 10, 32]);
  assert.is(tally.matmulMacs, 2 * 10 * 32 * 16 + 3 * 2 * 4 * 6 * 5);
  assert.is(tally.layerNormElements, 320);
  assert.is(tally.layerNormByWeight.get(result.ln._handle.storage), 320);
  assert.is(tally.ops.get('softmax')?.calls, 1);
  assert.is(tally.ops.get('add')?.elements, 640); // the bias add: counted as an op, not as FLOPs
});

test('holds no data: reads throw a clear error, writes are accepted, no bytes allocated', () => {
  const sb = shapeBackend();
  withShape(() => {
    const t = zeros([4, 4]);
    assert.throws(() => t.toArray(), /shape backend holds no data: cannot read 16 float32/);
    assert.throws(() => t.item(), /item|shape backend/);
  });
  assert.is(sb.allocatedBytes(), 0);
  const s = sb.alloc(8, 'float32');
  sb.write(s, new Float32Array(8));
  assert.throws(() => sb.write(s, new Float32Array(9)), /write of 9 elements/);
  assert.ok(sb.virtualAllocatedBytes().peak >= 32);
  sb.free(s);
});

test.run();
