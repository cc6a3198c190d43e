// CUDA-only behaviour that is not op conformance (that is test/engine/backends.test.ts, run on cuda by
// `npm run test:gpu`): GEMM in tf32 / bf16 modes (cublasGemmEx) against the float32 reference on the conformance
// matmul cases, and the device-side error paths (index out of range, bad label, int32 division by zero) and handle
// checks (freed storages, views outside their handle) that must raise and never crash. GPU only: a visible skip
// elsewhere, a failure under APTUNE_REQUIRE_CUDA=1.
// Invariant: every test leaves the GEMM mode at fp32 and frees what it allocates.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { apply, scope, type TensorRef } from '../../engine/index.ts';
import { CASES, caseInputs } from '../engine/conformance.ts';
import { allclose } from '../helpers.ts';
import { cudaUnderTest } from './gpu.ts';

const cuda = cudaUnderTest('GPU device checks');

if (cuda) {
  for (const mode of ['tf32', 'bf16'] as const) {
    test(`matmul in ${mode} mode (cublasGemmEx) stays within ${mode === 'bf16' ? '0.01' : '0.003'} sqrt(K) of float32`, () => {
      let n = 0;
      try {
        for (const c of CASES.filter((k) => k.op === 'matmul')) {
          scope(() => {
            const ins = caseInputs(c); // [..., M, K] (or [..., K, M]) and [..., K, N] (or [..., N, K])
            const { transA } = c.attrs as { transA: boolean };
            const a = ins[0].shape;
            const K = transA ? a[a.length - 2] : a[a.length - 1];
            cuda.setGemmMode('fp32');
            const want = apply('matmul', ins, c.attrs as never)[0];
            cuda.setGemmMode(mode);
            const got = apply('matmul', ins.map((t) => t.to('cuda')), c.attrs as never)[0];
            allclose(got.toArray(), want.toArray(), { rtol: 0, atol: (mode === 'bf16' ? 0.01 : 0.003) * Math.sqrt(K), msg: `${mode} ${c.name}` });
            n++;
          });
        }
      } finally {
        cuda.setGemmMode('fp32');
      }
      assert.ok(n > 40, `matmul cases checked: ${n}`);
    });
  }

  const mk = (data: Float32Array | Int32Array, shape: number[]): TensorRef => {
    const dtype = data instanceof Int32Array ? 'int32' : 'float32';
    const storage = cuda.alloc(data.length, dtype);
    cuda.write(storage, data);
    return { storage, offset: 0, shape, dtype };
  };
  const out = (shape: number[], dtype: 'float32' | 'int32' = 'float32'): TensorRef => ({ storage: cuda.alloc(shape.reduce((a, b) => a * b, 1), dtype), offset: 0, shape, dtype });
  const freeAll = (...rs: TensorRef[]) => rs.forEach((r) => cuda.free(r.storage));

  test('an index out of range is reported by the next read, which then works again', () => {
    const x = mk(new Float32Array(12), [4, 3]), idx = mk(Int32Array.from([1, 4]), [2]), o = out([2, 3]);
    cuda.kernels.index_select!([x, idx], [o], { axis: 0 });
    assert.throws(() => cuda.read(o.storage), /index kernel .* out of range/);
    assert.equal(Array.from(cuda.read(x.storage, 0, 3)), [0, 0, 0]);
    freeAll(x, idx, o);
  });
  test('a bad cross-entropy label and an int32 division by zero are reported', () => {
    const lg = mk(new Float32Array(6), [2, 3]), lb = mk(Int32Array.from([0, 3]), [2]), o = out([2]);
    cuda.kernels.cross_entropy!([lg, lb], [o], { ignoreIndex: -100 });
    assert.throws(() => cuda.read(o.storage), /label/);
    const a = mk(Int32Array.from([4, 5]), [2]), b = mk(Int32Array.from([2, 0]), [2]), q = out([2], 'int32');
    cuda.kernels.div!([a, b], [q], {});
    assert.throws(() => cuda.read(q.storage), /division by zero/);
    freeAll(lg, lb, o, a, b, q);
  });
  test('kernels reject freed storages and out-of-range views before launching', () => {
    const x = mk(new Float32Array(4), [4]), o = out([4]);
    cuda.free(x.storage);
    assert.throws(() => cuda.kernels.exp!([x], [o], {}), /freed/);
    const small = mk(new Float32Array(2), [2]);
    assert.throws(() => cuda.kernels.exp!([{ ...small, shape: [4] }], [o], {}), /outside handle/);
    freeAll(o, small);
    assert.is(cuda.allocatedBytes(), 0);
  });
}

test.run();
