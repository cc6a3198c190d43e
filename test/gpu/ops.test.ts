// Every op of OP_NAMES on the CUDA backend against the reference backend, at the kernel level (test/gpu/cases.ts),
// plus GEMM in tf32/bf16 modes and the device-side error paths (index, label, int32 division). GPU only:
// prints a visible skip elsewhere (`npm run test:gpu` sets APTUNE_BACKEND=cuda).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OP_NAMES, type TensorRef } from '../../engine/backend.ts';
import { createRefBackend } from '../../engine/backends/ref.ts';
import { caseData, kernelCases, runCase } from './cases.ts';
import { cudaUnderTest } from './gpu.ts';
import { allclose } from '../helpers.ts';

const cuda = cudaUnderTest();
const ref = createRefBackend('ref-gpu-suite');

if (!cuda) {
  test('GPU suite skipped (no CUDA)', () => {});
} else {
  cuda.setGemmMode('fp32');
  const covered = new Set<string>();
  for (const c of kernelCases()) {
    test(`${c.op}: ${c.name}`, () => {
      const data = caseData(c);
      const want = runCase(ref, c, data);
      const got = runCase(cuda, c, data);
      for (let k = 0; k < want.length; k++) allclose(got[k], want[k], { rtol: c.rtol ?? 1e-5, atol: c.atol ?? 1e-6, msg: `${c.name} output ${k}` });
      covered.add(c.op);
    });
  }
  test('every op was checked', () => {
    assert.equal(OP_NAMES.filter((o) => !covered.has(o)), []);
  });

  for (const mode of ['tf32', 'bf16'] as const) {
    test(`matmul in ${mode} mode (cublasGemmEx) stays close to fp32`, () => {
      cuda.setGemmMode(mode);
      try {
        for (const c of kernelCases().filter((k) => k.op === 'matmul')) {
          const data = caseData(c);
          const want = runCase(ref, c, data);
          const got = runCase(cuda, c, data);
          const K = (c.attrs as { transA: boolean }).transA ? c.ins[0].shape[c.ins[0].shape.length - 2] : c.ins[0].shape[c.ins[0].shape.length - 1];
          allclose(got[0], want[0], { rtol: 0, atol: (mode === 'bf16' ? 0.01 : 0.003) * Math.sqrt(K), msg: `${mode} ${c.name}` });
        }
      } finally {
        cuda.setGemmMode('fp32');
      }
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
