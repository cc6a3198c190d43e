// WebAssembly-backend specifics (the op-by-op comparison with the reference lives in backends.test.ts):
// kernel completeness, the host allocator (reuse, growth, views re-created after a grow), bit-identical results
// on 1 and 2 threads for every threaded kernel and every matmul split, and agreement of the relaxed-SIMD and
// plain-SIMD builds. Does not time anything. Skips (with a message) when the kernels are not built.
import { probeWasm } from '../helpers.ts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OP_NAMES, type TensorRef, type DType, type OpName, type OpAttrs } from '../../engine/backend.ts';

type WasmBackend = import('../../engine/backends/wasm.ts').WasmBackend;
const { mod, why } = await probeWasm('wasm');
if (!mod) console.log(`wasm.test: SKIPPED, wasm backend unavailable: ${why}`);
const maybe = mod ? test : test.skip;
/** A wasm backend with the WebAssembly GEMM (the native CPU GEMM has its own test at the end). */
const wasmOnly = (o: import('../../engine/backends/wasm.ts').WasmBackendOptions) => mod!.createWasmBackend({ nativeGemm: false, ...o });
const nativeWhy = mod ? mod.loadCpuAddonReason() : 'wasm unavailable';
if (mod && nativeWhy) console.log(`wasm.test: native CPU GEMM test skipped: ${nativeWhy}`);

let seed = 12345;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const randData = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());

function ref(be: WasmBackend, data: Float32Array | Int32Array | number, shape: number[], dtype: DType = 'float32'): TensorRef {
  const n = numel(shape);
  const storage = be.alloc(n, dtype);
  if (typeof data !== 'number') be.write(storage, data);
  return { storage, offset: 0, shape, dtype };
}
function run<K extends OpName>(be: WasmBackend, op: K, ins: { data: Float32Array | Int32Array; shape: number[]; dtype?: DType }[],
  outs: { shape: number[]; dtype?: DType }[], attrs: OpAttrs[K]): (Float32Array | Int32Array)[] {
  const i = ins.map((x) => ref(be, x.data, x.shape, x.dtype ?? 'float32'));
  const o = outs.map((x) => ref(be, 0, x.shape, x.dtype ?? 'float32'));
  (be.kernels[op] as (a: TensorRef[], b: TensorRef[], c: OpAttrs[K]) => void)(i, o, attrs);
  const res = (op === 'adamw_step' || op === 'sgd_step' ? i : o).map((t) => be.read(t.storage) as Float32Array | Int32Array);
  for (const t of [...i, ...o]) be.free(t.storage);
  return res;
}

maybe('every op of OP_NAMES has a wasm kernel', () => {
  const be = wasmOnly({ threads: 1, name: 'wasm-c' });
  const missing = OP_NAMES.filter((op) => typeof be.kernels[op] !== 'function');
  assert.equal(missing, [], `missing kernels: ${missing.join(', ')}`);
});

maybe('allocator: freed blocks are reused, the top block is returned to the bump pointer', () => {
  const be = wasmOnly({ threads: 1, name: 'wasm-a' });
  const a = be.alloc(1000, 'float32'), b = be.alloc(1000, 'float32'), c = be.alloc(10, 'int32');
  assert.ok(a.ptr % 64 === 0 && b.ptr % 64 === 0 && c.ptr % 64 === 0, 'blocks are 64-byte aligned');
  assert.ok(b.ptr >= a.ptr + 4000 && c.ptr >= b.ptr + 4000, 'blocks do not overlap');
  be.free(a);
  const a2 = be.alloc(1005, 'float32'); // same size class as 1000 floats (4032 bytes)
  assert.is(a2.ptr, a.ptr, 'a freed block of the same class is reused');
  be.free(c);
  const c2 = be.alloc(10, 'int32');
  assert.is(c2.ptr, c.ptr, 'the top block is reused');
  assert.is(be.allocatedBytes(), (1005 + 1000 + 10) * 4);
  be.free(a2); be.free(b); be.free(c2);
  assert.is(be.allocatedBytes(), 0);
  assert.throws(() => be.free(b), /freed/);
  assert.throws(() => be.read(b), /freed storage/);
  assert.throws(() => be.alloc(4, 'float64'), /float64 is not supported/);
});

maybe('allocator: memory grows and data written before and after the grow stays readable', () => {
  const be = wasmOnly({ threads: 1, name: 'wasm-g' });
  const small = be.alloc(1024, 'float32');
  const d0 = randData(1024);
  be.write(small, d0);
  const heap0 = be.rt.heapBytes();
  const bigN = Math.ceil((heap0 * 2) / 4); // forces at least one grow
  const big = be.alloc(bigN, 'float32');
  assert.ok(be.rt.heapBytes() > heap0, 'the memory grew');
  assert.equal(Array.from(be.read(small)), Array.from(d0), 'data from before the grow is intact');
  const d1 = randData(bigN);
  be.write(big, d1);
  const back = be.read(big) as Float32Array;
  assert.is(back.length, bigN);
  assert.is(back[bigN - 1], d1[bigN - 1], 'views were re-created after the grow');
  assert.is(back[0], d1[0]);
  // a kernel over the grown region
  const out = be.alloc(bigN, 'float32');
  be.kernels.neg!([{ storage: big, offset: 0, shape: [bigN], dtype: 'float32' }], [{ storage: out, offset: 0, shape: [bigN], dtype: 'float32' }], {});
  assert.is((be.read(out, bigN - 1, 1) as Float32Array)[0], -d1[bigN - 1]);
  be.free(small); be.free(big); be.free(out);
});

maybe('kernels read at storage offsets and reject indices out of range', () => {
  const be = wasmOnly({ threads: 1, name: 'wasm-o' });
  const s = be.alloc(10, 'float32');
  be.write(s, Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  const o = be.alloc(3, 'float32');
  be.kernels.exp!([{ storage: s, offset: 4, shape: [3], dtype: 'float32' }], [{ storage: o, offset: 0, shape: [3], dtype: 'float32' }], {});
  const r = be.read(o) as Float32Array;
  assert.ok(Math.abs(r[0] - Math.exp(4)) < 1e-4 * Math.exp(4) && Math.abs(r[2] - Math.exp(6)) < 1e-4 * Math.exp(6));
  assert.throws(() => run(be, 'index_select', [{ data: randData(12), shape: [4, 3] }, { data: Int32Array.from([1, 4]), shape: [2], dtype: 'int32' }],
    [{ shape: [2, 3] }], { axis: 0 }), /index_select: index 4 at position 1 out of range \[0, 4\)/);
  assert.throws(() => run(be, 'cross_entropy', [{ data: randData(6), shape: [2, 3] }, { data: Int32Array.from([0, 3]), shape: [2], dtype: 'int32' }],
    [{ shape: [2] }], { ignoreIndex: -100 }), /label 3 at row 1 out of range/);
});

// one case per threaded kernel (sizes above the threading threshold) and per matmul split
function threadedCases(): [string, (be: WasmBackend) => (Float32Array | Int32Array)[]][] {
  seed = 777;
  const x1 = randData(150 * 1024, -4, 4), g1 = randData(150 * 1024);
  const mask = randData(512, -3, 0);
  const w = randData(768), b = randData(768), rstd = randData(200, 0.5, 2);
  const mmA = randData(100 * 50), mmB = randData(50 * 300); // shared packed B, row blocks claimed by threads
  const mmC = randData(300 * 64), mmD = randData(64 * 40);
  const mmI = randData(2 * 70 * 600), mmJ = randData(2 * 600 * 45); // 2 batches, K above one k-block (512)
  const mmK = randData(20 * 90), mmL = randData(90 * 400); // one row block: columns split across threads
  const mmE = randData(6 * 40 * 40), mmF = randData(40 * 40); // batch split, broadcast B
  const mmG = randData(8 * 64 * 96), mmH = randData(8 * 200 * 64); // transposes
  const xi = Int32Array.from(x1, (v) => Math.round(v * 3)); // int32 with ties
  const labels = Int32Array.from({ length: 48 }, (_, i) => (i % 7 === 3 ? -100 : (i * 977) % 3200));
  return [
    ['matmul shared-B', (be) => run(be, 'matmul', [{ data: mmA, shape: [100, 50] }, { data: mmB, shape: [50, 300] }], [{ shape: [100, 300] }], { transA: false, transB: false })],
    ['matmul shared-B tall', (be) => run(be, 'matmul', [{ data: mmC, shape: [300, 64] }, { data: mmD, shape: [64, 40] }], [{ shape: [300, 40] }], { transA: false, transB: false })],
    ['matmul shared-B 2 batches, 2 k-blocks, transA', (be) => run(be, 'matmul', [{ data: mmI, shape: [2, 600, 70] }, { data: mmJ, shape: [2, 600, 45] }], [{ shape: [2, 70, 45] }], { transA: true, transB: false })],
    ['matmul column split', (be) => run(be, 'matmul', [{ data: mmK, shape: [20, 90] }, { data: mmL, shape: [400, 90] }], [{ shape: [20, 400] }], { transA: false, transB: true })],
    ['matmul batch-split', (be) => run(be, 'matmul', [{ data: mmE, shape: [6, 40, 40] }, { data: mmF, shape: [40, 40] }], [{ shape: [6, 40, 40] }], { transA: false, transB: false })],
    ['matmul transA transB', (be) => run(be, 'matmul', [{ data: mmG, shape: [8, 64, 96] }, { data: mmH, shape: [8, 200, 64] }], [{ shape: [8, 96, 200] }], { transA: true, transB: true })],
    ['gelu', (be) => run(be, 'gelu', [{ data: x1, shape: [150, 1024] }], [{ shape: [150, 1024] }], {})],
    ['gelu_backward', (be) => run(be, 'gelu_backward', [{ data: x1, shape: [150, 1024] }, { data: g1, shape: [150, 1024] }], [{ shape: [150, 1024] }], {})],
    ['exp', (be) => run(be, 'exp', [{ data: x1, shape: [150 * 1024] }], [{ shape: [150 * 1024] }], {})],
    ['add (broadcast)', (be) => run(be, 'add', [{ data: x1, shape: [150, 1024] }, { data: g1.subarray(0, 1024), shape: [1024] }], [{ shape: [150, 1024] }], {})],
    ['softmax (mask)', (be) => run(be, 'softmax', [{ data: x1, shape: [300, 512] }, { data: mask, shape: [1, 512] }], [{ shape: [300, 512] }], {})],
    ['softmax_backward', (be) => run(be, 'softmax_backward', [{ data: x1, shape: [300, 512] }, { data: g1, shape: [300, 512] }], [{ shape: [300, 512] }], {})],
    ['layer_norm', (be) => run(be, 'layer_norm', [{ data: x1.subarray(0, 200 * 768), shape: [200, 768] }, { data: w, shape: [768] }, { data: b, shape: [768] }],
      [{ shape: [200, 768] }, { shape: [200] }, { shape: [200] }], { eps: 1e-5 })],
    ['layer_norm_backward', (be) => run(be, 'layer_norm_backward', [{ data: g1.subarray(0, 200 * 768), shape: [200, 768] }, { data: x1.subarray(0, 200 * 768), shape: [200, 768] },
      { data: w, shape: [768] }, { data: b.subarray(0, 200), shape: [200] }, { data: rstd, shape: [200] }],
    [{ shape: [200, 768] }, { shape: [768] }, { shape: [768] }], {})],
    ['permute', (be) => run(be, 'permute', [{ data: x1, shape: [8, 150, 8, 16] }], [{ shape: [8, 8, 150, 16] }], { perm: [0, 2, 1, 3] })],
    ['dropout', (be) => run(be, 'dropout', [{ data: x1, shape: [150 * 1024] }], [{ shape: [150 * 1024] }, { shape: [150 * 1024] }], { p: 0.1, seed: 5, offset: 44 })],
    ['adamw_step', (be) => run(be, 'adamw_step', [{ data: x1, shape: [150 * 1024] }, { data: g1, shape: [150 * 1024] }, { data: g1.map((v) => v / 10), shape: [150 * 1024] },
      { data: x1.map((v) => v * v), shape: [150 * 1024] }], [], { lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01, step: 7 })],
    ['bce_with_logits_backward', (be) => run(be, 'bce_with_logits_backward', [{ data: x1, shape: [150 * 1024] }, { data: g1.map((v) => (v + 1) / 2), shape: [150 * 1024] },
      { data: g1, shape: [150 * 1024] }], [{ shape: [150 * 1024] }], {})],
    ['random_normal', (be) => run(be, 'random_normal', [], [{ shape: [150 * 1024] }], { seed: 9, offset: 0, mean: 0, std: 1 })],
    ['sum columns (kept last dim)', (be) => run(be, 'sum', [{ data: x1, shape: [1200, 128] }], [{ shape: [128] }], { axes: [0], keepdims: false })],
    ['sum rows (reduced last dim)', (be) => run(be, 'sum', [{ data: x1, shape: [150, 4, 256] }], [{ shape: [150] }], { axes: [1, 2], keepdims: false })],
    ['sum int32 columns', (be) => run(be, 'sum', [{ data: xi, shape: [600, 256], dtype: 'int32' }], [{ shape: [256], dtype: 'int32' }], { axes: [0], keepdims: false })],
    ['sum of everything (chunked)', (be) => run(be, 'sum', [{ data: x1, shape: [150, 1024] }], [{ shape: [] }], { axes: [0, 1], keepdims: false })],
    ['sum int32 of everything (chunked)', (be) => run(be, 'sum', [{ data: xi.subarray(0, 153600 - 5), shape: [153600 - 5], dtype: 'int32' }], [{ shape: [], dtype: 'int32' }], { axes: [0], keepdims: false })],
    ['max + indices, middle axis', (be) => run(be, 'max', [{ data: x1, shape: [30, 40, 128] }], [{ shape: [30, 128] }, { shape: [30, 128], dtype: 'int32' }], { axis: 1, keepdims: false })],
    ['argmax int32 last axis', (be) => run(be, 'argmax', [{ data: xi, shape: [1200, 128], dtype: 'int32' }], [{ shape: [1200], dtype: 'int32' }], { axis: 1, keepdims: false })],
    ['cross_entropy', (be) => run(be, 'cross_entropy', [{ data: x1, shape: [48, 3200] }, { data: labels, shape: [48], dtype: 'int32' }], [{ shape: [48] }], { ignoreIndex: -100 })],
    ['cross_entropy_backward', (be) => run(be, 'cross_entropy_backward', [{ data: x1, shape: [48, 3200] }, { data: labels, shape: [48], dtype: 'int32' },
      { data: g1.subarray(0, 48), shape: [48] }], [{ shape: [48, 3200] }], { ignoreIndex: -100 })],
  ];
}

maybe('1 thread and 2 threads give bit-identical results for every threaded kernel', () => {
  const t1 = wasmOnly({ threads: 1, name: 'wasm-t1' });
  const t2 = wasmOnly({ threads: 2, name: 'wasm-t2' });
  for (const [name, f] of threadedCases()) {
    const a = f(t1), b = f(t2);
    assert.is(a.length, b.length);
    for (let k = 0; k < a.length; k++) {
      let diff = -1;
      for (let i = 0; i < a[k].length; i++) if (!Object.is(a[k][i], b[k][i])) { diff = i; break; }
      assert.is(diff, -1, `${name} output ${k}: first difference at ${diff}`);
    }
  }
});

maybe('a worker that dies makes the next threaded kernel throw (naming kernel and worker), then the pool restarts', async () => {
  seed = 99;
  const x = randData(150 * 1024, -4, 4);
  const want = run(wasmOnly({ threads: 1, name: 'wasm-kill-ref' }), 'exp', [{ data: x, shape: [150 * 1024] }], [{ shape: [150 * 1024] }], {})[0];
  for (const how of ['exit', 'terminate'] as const) {
    const be = wasmOnly({ threads: 2, name: `wasm-kill-${how}` });
    try {
      be.rt.killWorkerForTest(0, how);
      assert.is(be.rt.poolSize, 1);
      const expected = how === 'exit' ? /kernel unary_f32: worker 0 \(exit code 70\) died/ : /kernel unary_f32: worker 0 \(thread stopped\) died/;
      assert.throws(() => run(be, 'exp', [{ data: x, shape: [150 * 1024] }], [{ shape: [150 * 1024] }], {}), expected, how);
      assert.is(be.rt.poolSize, 0, 'the broken pool is dropped');
      const got = run(be, 'exp', [{ data: x, shape: [150 * 1024] }], [{ shape: [150 * 1024] }], {})[0];
      assert.is(be.rt.poolSize, 1, 'a fresh pool serves the next threaded call');
      assert.ok(got.every((v, i) => Object.is(v, want[i])), `${how}: results after the restart`);
    } finally {
      await be.rt.terminate();
    }
  }
});

maybe('a full sum over many chunks matches a float64 sum (and int32 exactly)', () => {
  seed = 4242;
  const be = wasmOnly({ threads: 2, name: 'wasm-fullsum' });
  for (const n of [16384, 16384 * 3 + 77, 100003]) {
    const x = randData(n, -1, 1.5);
    const [got] = run(be, 'sum', [{ data: x, shape: [n] }], [{ shape: [] }], { axes: [0], keepdims: false });
    const want = x.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(got[0] - want) <= 1e-6 * n, `n=${n}: ${got[0]} vs ${want}`);
    const xi = Int32Array.from(x, (v) => Math.round(v * 1000));
    const [gi] = run(be, 'sum', [{ data: xi, shape: [n], dtype: 'int32' }], [{ shape: [], dtype: 'int32' }], { axes: [0], keepdims: false });
    assert.is(gi[0], xi.reduce((a, b) => a + b, 0), `int32 n=${n}`);
  }
});

maybe('relaxed-SIMD and plain-SIMD builds agree', () => {
  const plain = wasmOnly({ threads: 1, relaxed: false, name: 'wasm-plain' });
  const relaxed = wasmOnly({ threads: 1, relaxed: true, name: 'wasm-relaxed' });
  assert.is(plain.relaxed, false);
  if (!relaxed.relaxed) { console.log('wasm.test: relaxed SIMD not supported by this runtime; comparing plain with plain'); }
  for (const [name, f] of threadedCases()) {
    const a = f(plain), b = f(relaxed);
    for (let k = 0; k < a.length; k++) {
      let worst = 0;
      for (let i = 0; i < a[k].length; i++) worst = Math.max(worst, Math.abs(a[k][i] - b[k][i]) / (1 + Math.abs(a[k][i])));
      assert.ok(worst < 2e-5, `${name} output ${k}: relative difference ${worst}`);
    }
  }
  // matmul really was computed (not all zeros)
  const m = threadedCases()[0][1](plain)[0];
  assert.ok(m.some((v) => v !== 0));
});

maybe('the single-memory builds (no SharedArrayBuffer, for browsers without isolation) match the shared ones bit for bit', () => {
  for (const relaxed of [false, true]) {
    const single = wasmOnly({ threads: 1, relaxed, shared: false, name: `wasm-single-${relaxed}` });
    const shared = wasmOnly({ threads: 1, relaxed, shared: true, name: `wasm-shared-${relaxed}` });
    assert.ok(!single.rt.build.endsWith('-mt') && shared.rt.build.endsWith('-mt'), `${single.rt.build} / ${shared.rt.build}`);
    for (const [name, f] of threadedCases()) {
      const a = f(single), b = f(shared);
      for (let k = 0; k < a.length; k++) assert.ok(a[k].every((v, i) => Object.is(v, b[k][i])), `${name} output ${k} (relaxed ${relaxed})`);
    }
  }
  assert.throws(() => wasmOnly({ threads: 2, shared: false, name: 'wasm-bad-shared' }), /needs shared memory/);
});

maybe('a missing build is reported as unavailable with the command that fixes it', () => {
  assert.throws(() => wasmOnly({ threads: 1, buildDir: '/nonexistent-aptune-build', name: 'wasm-missing' }),
    /^unavailable: WebAssembly kernels not built .*run npm run build:wasm/);
});

maybe('thread count: option and APTUNE_THREADS are validated', () => {
  assert.throws(() => wasmOnly({ threads: 0, name: 'wasm-bad' }), /threads must be a positive integer/);
  const old = process.env.APTUNE_THREADS;
  process.env.APTUNE_THREADS = 'two';
  try {
    assert.throws(() => wasmOnly({ name: 'wasm-bad2' }), /APTUNE_THREADS must be a positive integer/);
    process.env.APTUNE_THREADS = '3';
    assert.is(wasmOnly({ name: 'wasm-env' }).threads, 3);
  } finally {
    if (old === undefined) delete process.env.APTUNE_THREADS; else process.env.APTUNE_THREADS = old;
  }
});

(mod && !nativeWhy ? test : test.skip)('native CPU GEMM: bit-identical on 1 and 2 threads for every matmul split; used only above its size floor', () => {
  const t1 = mod!.createWasmBackend({ threads: 1, name: 'wasm-n1', nativeGemm: true });
  const t2 = mod!.createWasmBackend({ threads: 2, name: 'wasm-n2', nativeGemm: true });
  const w = wasmOnly({ threads: 1, name: 'wasm-n0' });
  assert.ok(t1.native && t2.native && !w.native);
  for (const [name, f] of threadedCases()) {
    if (!name.startsWith('matmul')) continue;
    const a = f(t1), b = f(t2), c = f(w);
    for (let k = 0; k < a.length; k++) {
      assert.ok(a[k].every((v, i) => Object.is(v, b[k][i])), `${name} output ${k}: 1 vs 2 native threads`);
      assert.ok(a[k].every((v, i) => Math.abs(v - c[k][i]) <= 1e-4 * (1 + Math.abs(v))), `${name} output ${k}: native vs wasm`);
    }
  }
  const old = process.env.APTUNE_NATIVE_CPU;
  process.env.APTUNE_NATIVE_CPU = '0';
  try {
    assert.is(mod!.createWasmBackend({ threads: 1, name: 'wasm-n-off' }).native, null, 'APTUNE_NATIVE_CPU=0 turns the default off');
    assert.match(mod!.nativeCpuGemmStatus().reason, /APTUNE_NATIVE_CPU=0/);
  } finally {
    if (old === undefined) delete process.env.APTUNE_NATIVE_CPU; else process.env.APTUNE_NATIVE_CPU = old;
  }
  assert.ok(mod!.createWasmBackend({ threads: 1, name: 'wasm-n-on' }).native || old === '0', 'on by default when the addon loads');
});

test.run();
