// The native CPU dropout and bias + GELU (native/cpu/random.cc, gelu.cc; used by the wasm backend when the addon has
// an AVX-512 or AVX2 path). Dropout: the WebAssembly kernel's bits, which are the reference's (backends.test.ts), for offsets that are not multiples of 4,
// lengths with heads and tails, block counters that cross 2^32 inside one vector group, several p, 1 and 2 threads,
// on this CPU's vector path and (in a child process, APTUNE_NATIVE_ISA=avx2) on the AVX2 one; and the addon's
// range checks. bias + GELU and its backward: the WebAssembly kernel's values to float rounding over [-12, 12], the
// erf branch points and the exponential's underflow, rows with tails; the same bits on 1 and 2 threads. Skips (with a message) when the kernels or the addon are not built or the CPU has neither path.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { probeWasm } from '../helpers.ts';
import type { TensorRef } from '../../engine/backend.ts';

type WasmBackend = import('../../engine/backends/wasm.ts').WasmBackend;
const { mod, why } = await probeWasm('wasm');
const probe = mod && !mod.loadCpuAddonReason() ? mod.createWasmBackend({ threads: 1, name: 'nd-probe', nativeGemm: true }) : null;
const reason = !mod ? `wasm backend unavailable: ${why}` : mod.loadCpuAddonReason() || (probe!.nativeElementwise ? '' : 'the CPU addon has no AVX-512 or AVX2 dropout path here');
if (reason) console.log(`native-cpu-kernels.test: SKIPPED: ${reason}`);
const maybe = reason ? test.skip : test;

function dropout(be: WasmBackend, x: Float32Array, p: number, offset: number): [Float32Array, Float32Array] {
  const n = x.length, st = (len: number) => be.alloc(len, 'float32');
  const xs = st(n), ys = st(n), ms = st(n);
  be.write(xs, x);
  const r = (s: typeof xs): TensorRef => ({ storage: s, offset: 0, shape: [n], dtype: 'float32' });
  be.kernels.dropout([r(xs)], [r(ys), r(ms)], { p, seed: 0x1234_5678_9abc, offset });
  const out: [Float32Array, Float32Array] = [be.read(ys) as Float32Array, be.read(ms) as Float32Array];
  for (const s of [xs, ys, ms]) be.free(s);
  return out;
}

maybe(`native dropout: the WebAssembly kernel's bits on 1 and 2 threads (${process.env.APTUNE_NATIVE_ISA ?? 'default'} ISA)`, () => {
  const wasm = mod!.createWasmBackend({ threads: 1, name: 'nd-wasm', nativeGemm: false });
  const n1 = mod!.createWasmBackend({ threads: 1, name: 'nd-n1', nativeGemm: true });
  const n2 = mod!.createWasmBackend({ threads: 2, name: 'nd-n2', nativeGemm: true });
  assert.ok(!wasm.nativeElementwise && n1.nativeElementwise && n2.nativeElementwise);
  console.log(`native-cpu-kernels.test: vector path ${n1.native!.isa()}`);
  let s = 7;
  const cases: [number, number, number][] = [[4096, 0.1, 0], [4096 + 37, 1 / 3, 1], [65536 * 2 + 5, 0.5, 2], [70001, 0.05, 3],
    [5000, 0.7, 2 ** 34 - 22], [9000, 0.1, 2 ** 34 - 4 * 70 + 1], [300001, 0.25, 44], [8192, 0, 12]];
  for (const [n, p, off] of cases) {
    const x = Float32Array.from({ length: n }, () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 1073741824 - 1; });
    const [yw, mw] = dropout(wasm, x, p, off);
    for (const be of [n1, n2]) {
      const [y, m] = dropout(be, x, p, off);
      const bad = y.findIndex((v, i) => !Object.is(v, yw[i]) || !Object.is(m[i], mw[i]));
      assert.is(bad, -1, `n=${n} p=${p} offset=${off} on ${be.name}: element ${bad} differs`);
    }
    const kept = mw.filter((v) => v !== 0).length / n;
    assert.ok(Math.abs(kept - (1 - p)) < 0.05, `n=${n}: keep rate ${kept} for p=${p}`);
  }
});

maybe('native dropout: the addon refuses vectors outside the heap and p outside [0, 1)', () => {
  const be = mod!.createWasmBackend({ threads: 1, name: 'nd-range', nativeGemm: true });
  const heap = be.rt.f32, end = heap.length * 4;
  assert.throws(() => be.native!.dropout(heap, 0, 64, end - 64, 100, 0.1, 1, 0, 1), /cpu.dropout: a vector of 100 elements at \d+ reaches outside the heap/);
  assert.throws(() => be.native!.dropout(heap, 0, 64, 128, 10, 1, 1, 0, 1), /cpu.dropout: p must be in \[0, 1\)/);
  assert.throws(() => be.native!.dropout(heap, 2, 64, 128, 10, 0.1, 1, 0, 1), /4-byte aligned/);
});

maybe(`native bias + GELU: the WebAssembly kernel's values (${process.env.APTUNE_NATIVE_ISA ?? 'default'} ISA)`, () => {
  const wasm = mod!.createWasmBackend({ threads: 1, name: 'ng-wasm', nativeGemm: false });
  const n1 = mod!.createWasmBackend({ threads: 1, name: 'ng-n1', nativeGemm: true });
  const n2 = mod!.createWasmBackend({ threads: 2, name: 'ng-n2', nativeGemm: true });
  const special = [0, -0, 1e-20, Math.SQRT2, -Math.SQRT2, 1.4142, 1.4143, -13.3, -14, 9, 20, -20, 40, -40];
  let s = 11;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  for (const [rows, D] of [[128, 33], [5, 1000], [1480, 64], [3, 4099]] as [number, number][]) {
    const x = Float32Array.from({ length: rows * D }, (_, i) => (i < special.length ? special[i] : 24 * rnd() - 12));
    const b = Float32Array.from({ length: D }, () => rnd() - 0.5), g = Float32Array.from({ length: rows * D }, () => 2 * rnd() - 1);
    for (const op of ['bias_gelu', 'bias_gelu_backward'] as const) {
      const ins = op === 'bias_gelu' ? [x, b] : [x, b, g];
      const run = (be: WasmBackend) => {
        const st = ins.map((a) => { const t = be.alloc(a.length, 'float32'); be.write(t, a); return t; });
        const o = be.alloc(rows * D, 'float32');
        const r = (t: typeof o, shape: number[]): TensorRef => ({ storage: t, offset: 0, shape, dtype: 'float32' });
        be.kernels[op](st.map((t, i) => r(t, i === 1 ? [D] : [rows, D])), [r(o, [rows, D])], {});
        const out = be.read(o) as Float32Array;
        for (const t of [...st, o]) be.free(t);
        return out;
      };
      const w = run(wasm), a = run(n1), c = run(n2);
      assert.is(a.findIndex((v, i) => !Object.is(v, c[i])), -1, `${op} [${rows},${D}]: 1 vs 2 threads`);
      const bad = a.findIndex((v, i) => !(Math.abs(v - w[i]) <= 2e-6 * Math.max(1, Math.abs(w[i]))));
      assert.is(bad, -1, bad < 0 ? '' : `${op} [${rows},${D}] element ${bad} (x + b = ${x[bad] + b[bad % D]}): native ${a[bad]} vs WebAssembly ${w[bad]}`);
    }
  }
});

// the other vector path, in a child process (the ISA is chosen once per process)
(!reason && !process.env.APTUNE_NATIVE_ISA && probe!.native!.isa() === 'avx512' ? test : test.skip)('native dropout: the AVX2 path too (child process)', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { encoding: 'utf8', env: { ...process.env, APTUNE_NATIVE_ISA: 'avx2' } });
  assert.is(r.status, 0, `child failed: ${(r.stdout + r.stderr).slice(-2000)}`);
  assert.match(r.stdout, /vector path avx2/);
});

test.run();
