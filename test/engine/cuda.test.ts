// The CUDA backend on every machine: the addon (if built) loads; without a GPU the backend reports a precise reason
// and selection falls back; the host-side planning (axis coalescing, GEMM batching, reductions) is checked by
// executing the plans on the host against the reference backend. Device work (handle errors, a round trip) runs
// only where CUDA is available and prints a visible skip line otherwise (a failure under APTUNE_REQUIRE_CUDA=1). Op conformance on cuda is
// test/engine/backends.test.ts (with the cases of ./conformance.ts, whose matmul shapes the plan check reuses);
// the GPU-only files are test/gpu/ (`npm run test:gpu` runs both with CUDA required).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { backendStatus, broadcastShapes, getBackend } from '../../engine/index.ts';
import { type TensorRef } from '../../engine/backend.ts';
import { createRefBackend } from '../../engine/backends/ref.ts';
import {
  addonPath, broadcastStridesTo, coalesce, contiguousStrides, createCudaBackend, cudaProbe, loadAddon, planMatmul, planReduce, valueBits,
} from '../../engine/backends/cuda.ts';
import { CASES, caseInputShapes } from './conformance.ts';
import { addonEntries } from '../../engine/op-contract.ts';
import { allclose, hostRandom } from '../helpers.ts';

const REASON = /no CUDA driver|CUDA driver too old|no CUDA device|compute capability|cuBLAS not found|CUDA addon not built|CUDA addon failed to load|CUDA initialisation failed|unusable/;
const { probe, reason } = cudaProbe();
const available = !!probe?.available;
if (!available) console.log(`skipping cuda device tests: ${reason}`);

test('the addon loads when built, and reports a precise reason when CUDA is unavailable', () => {
  const built = existsSync(addonPath());
  const { addon, error } = loadAddon();
  if (built) {
    assert.ok(addon, `addon built but failed to load: ${error}`);
    const p = addon!.probe();
    assert.type(p.available, 'boolean');
    assert.ok(p.runtimeVersion >= 12000, `runtime version ${p.runtimeVersion}`);
    if (!p.available) assert.match(p.reason, REASON);
    else assert.is(p.reason, '');
  } else {
    assert.is(addon, null);
    assert.match(error, /CUDA addon not built/);
  }
});

test('the built addon has exactly the kernel entries of the op contract, and checks each call\'s argument count', () => {
  const { addon } = loadAddon();
  if (!addon) { console.log('skipping the addon entry check: the CUDA addon is not built'); return; }
  const A = addon as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const [entry, { args }] of addonEntries()) {
    assert.type(A[entry], 'function', `addon entry ${entry}`);
    const argc = args.reduce((n, a) => n + (a.kind === 'T' || a.kind === 'T?' ? 2 : 1), 0);
    assert.throws(() => A[entry](...new Array(argc + 1).fill(0)), new RegExp(`cuda\\.${entry}: ${argc + 1} arguments given, the op contract .* declares ${argc}$`), entry);
  }
  const kernels = Object.keys(addon).filter((k) => !['probe', 'alloc', 'free', 'upload', 'download', 'synchronize', 'memoryStats', 'resetPeak', 'emptyCache', 'setGemmMode', 'gemmMode'].includes(k));
  assert.equal(kernels.sort(), [...addonEntries().keys()].sort());
});

test('without CUDA the factory throws "unavailable: <reason>" and selection falls back', () => {
  const st = backendStatus().find((s) => s.name === 'cuda');
  assert.ok(st, 'cuda backend is registered');
  if (available) {
    assert.ok(st!.available);
    return;
  }
  assert.is(st!.available, false);
  assert.is(st!.reason, reason);
  assert.throws(() => createCudaBackend(), (e: Error) => e.message === `unavailable: ${reason}`);
  if (!process.env.APTUNE_BACKEND) assert.is.not(getBackend().name, 'cuda');
  if (loadAddon().addon) {
    const A = loadAddon().addon!;
    assert.throws(() => A.alloc(64), /unavailable: /);
    assert.throws(() => A.add(0, 1, 0, 1, 0, 1, 0, [4], [1], [1]), /unavailable: /);
  }
});

test('coalesce merges contiguous axes, drops size-1 axes and keeps broadcast strides', () => {
  assert.equal(coalesce([2, 3, 4], [[12, 4, 1], [12, 4, 1]]), { shape: [24], strides: [[1], [1]] });
  assert.equal(coalesce([2, 3, 4], [[12, 4, 1], [0, 4, 1]]), { shape: [2, 12], strides: [[12, 1], [0, 1]] });
  assert.equal(coalesce([2, 1, 4], [[4, 4, 1]]), { shape: [8], strides: [[1]] });
  assert.equal(coalesce([], [[]]), { shape: [1], strides: [[1]] });
  assert.equal(coalesce([1, 1], [[1, 1], [0, 0]]), { shape: [1], strides: [[1], [1]] });
  assert.equal(broadcastStridesTo([3, 1], [2, 3, 4], 'x'), [0, 1, 0]);
  assert.throws(() => broadcastStridesTo([3], [4], 'add'), /cuda add: shape \[3\] does not broadcast to \[4\]/);
  assert.is(valueBits(-1.5, 'float32'), 0xbfc00000);
  assert.is(valueBits(7, 'int32'), 7);
});

/** Executes a matmul plan on the host exactly as native/cublas.cc lays out the GEMMs (row-major). */
function runPlan(a: Float32Array, b: Float32Array, aShape: number[], bShape: number[], outShape: number[], tA: boolean, tB: boolean): Float64Array {
  const p = planMatmul(aShape, bShape, outShape, tA, tB);
  const out = new Float64Array(outShape.reduce((x, y) => x * y, 1));
  const { M, N, K } = p;
  for (let l = 0; l < p.aOffsets.length; l++) {
    for (let j = 0; j < p.batch; j++) {
      const ao = p.aOffsets[l] + j * p.strideA, bo = p.bOffsets[l] + j * p.strideB, co = (l * p.batch + j) * M * N;
      for (let i = 0; i < M; i++) {
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a[ao + (tA ? k * M + i : i * K + k)] * b[bo + (tB ? n * K + k : k * N + n)];
          out[co + i * N + n] = s;
        }
      }
    }
  }
  return out;
}

test('matmul plans (broadcast batches, groups, transposes, folding into M) reproduce the reference matmul', () => {
  const ref = createRefBackend('ref-plan');
  const rng = hostRandom(3);
  let checked = 0;
  for (const c of CASES.filter((k) => k.op === 'matmul')) {
    const [sa, sb] = caseInputShapes(c);
    const { transA, transB } = c.attrs as { transA: boolean; transB: boolean };
    const M = transA ? sa[sa.length - 1] : sa[sa.length - 2], N = transB ? sb[sb.length - 2] : sb[sb.length - 1];
    const out = [...broadcastShapes('matmul', sa.slice(0, -2), sb.slice(0, -2)), M, N]; // [...batch, M, N]
    const a = Float32Array.from({ length: sa.reduce((x, y) => x * y, 1) }, () => rng() * 2 - 1);
    const b = Float32Array.from({ length: sb.reduce((x, y) => x * y, 1) }, () => rng() * 2 - 1);
    const refs: TensorRef[] = [[sa, a], [sb, b], [out, null]].map(([shape, data]) => {
      const s = shape as number[];
      const storage = ref.alloc(s.reduce((x, y) => x * y, 1), 'float32');
      if (data) ref.write(storage, data as Float32Array);
      return { storage, offset: 0, shape: s, dtype: 'float32' as const };
    });
    ref.kernels.matmul!([refs[0], refs[1]], [refs[2]], { transA, transB });
    const expect = ref.read(refs[2].storage);
    allclose(runPlan(a, b, sa, sb, out, transA, transB), expect, { rtol: 1e-5, atol: 1e-5, msg: c.name });
    for (const r of refs) ref.free(r.storage);
    checked++;
  }
  assert.ok(checked >= 50, `matmul plan cases checked: ${checked}`);
  const fold = planMatmul([4, 5, 6], [7, 6], [4, 5, 7], false, true);
  assert.equal([fold.M, fold.batch, fold.aOffsets.length], [20, 1, 1], 'a linear layer folds its batch into M');
  const grouped = planMatmul([3, 2, 6, 5], [3, 1, 6, 4], [3, 2, 5, 4], true, false);
  assert.equal([grouped.aOffsets.length, grouped.batch, grouped.strideB], [3, 2, 0], 'broadcast inner batch axis becomes a stride-0 operand');
});

test('reduction plans: kept and reduced axes with their input strides', () => {
  assert.equal(planReduce([4, 5, 6], [1]), { outerShape: [4, 6], outerStrides: [30, 1], innerShape: [5], innerStrides: [6] });
  assert.equal(planReduce([4, 5, 6], [1, 2]), { outerShape: [4], outerStrides: [30], innerShape: [30], innerStrides: [1] });
  assert.equal(planReduce([4, 5, 6], [0, 1, 2]), { outerShape: [1], outerStrides: [1], innerShape: [120], innerStrides: [1] });
  // executing the plan on the host gives the sum
  const shape = [3, 4, 5], axes = [0, 2];
  const x = Float64Array.from({ length: 60 }, (_, i) => (i * 7) % 11);
  const p = planReduce(shape, axes);
  const outer = p.outerShape.reduce((a, b) => a * b, 1), inner = p.innerShape.reduce((a, b) => a * b, 1);
  const ost = contiguousStrides(p.outerShape), ist = contiguousStrides(p.innerShape);
  for (let o = 0; o < outer; o++) {
    let s = 0;
    for (let r = 0; r < inner; r++) {
      let off = 0;
      p.outerShape.forEach((d, k) => { off += (Math.floor(o / ost[k]) % d) * p.outerStrides[k]; });
      p.innerShape.forEach((d, k) => { off += (Math.floor(r / ist[k]) % d) * p.innerStrides[k]; });
      s += x[off];
    }
    let e = 0;
    for (let i = 0; i < 3; i++) for (let k = 0; k < 5; k++) e += x[i * 20 + o * 5 + k];
    assert.is(s, e, `sum over axes ${axes} at ${o}`);
  }
});

test('device: handle errors raise and never crash; round trip; caching allocator', () => {
  if (!available) {
    if (process.env.APTUNE_REQUIRE_CUDA === '1') assert.unreachable(`APTUNE_REQUIRE_CUDA=1 but CUDA is unavailable: ${reason}`);
    console.log(`skipping cuda device checks: ${reason}`);
    return;
  }
  const be = createCudaBackend({ name: 'cuda-handles' });
  const A = loadAddon().addon!;
  const s = be.alloc(10, 'float32');
  be.write(s, Float32Array.from([1, 2, 3]), 4);
  assert.equal(Array.from(be.read(s, 4, 3)), [1, 2, 3]);
  assert.throws(() => be.write(s, new Float32Array(8), 4), /overflows/);
  assert.throws(() => A.download((s as unknown as { handle: number }).handle, 8, new Float32Array(4)), /outside handle/);
  const h = (s as unknown as { handle: number }).handle;
  be.free(s);
  assert.throws(() => be.free(s), /freed twice/);
  assert.throws(() => be.read(s), /freed/);
  assert.throws(() => A.free(h), /freed or unknown/);
  assert.throws(() => A.add(0, h, 0, h, 0, h, 0, [1], [1], [1]), /freed or unknown/);
  assert.throws(() => A.free(-3), /invalid handle/);
  const before = A.memoryStats();
  for (let i = 0; i < 5; i++) be.free(be.alloc(1 << 16, 'float32'));
  const after = A.memoryStats();
  assert.is(after.allocated, before.allocated);
  assert.ok(after.reserved - before.reserved <= 1 << 18, 'repeated same-size allocations reuse the cached block');
  assert.is(be.allocatedBytes(), 0);
});

test.run();
