// The wasm backend anywhere in its 4 GiB heap (issue 9): every conformance case with all tensors placed above 2 GiB
// and again in the last ~200 MiB below 4 GiB; running out of memory is an Error naming the op, the bytes and the ways
// out, after which the backend still computes correctly; a ViLT-B/32 batch-8 training step (2 of the 12 layers: the
// same shapes as the full model) whose activations straddle the 2 GiB boundary gives the same losses, bit for bit,
// as the same step low in the heap.
// How the heap is pushed: a fresh backend allocates one large block first (never touched, so it costs address space,
// not RAM); every later allocation lies above it. Runs with the native CPU GEMM on and off when the addon has it.
// Does not time anything. Skips (with a message) when the wasm kernels are not built.
import { probeWasm } from '../helpers.ts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { registerBackend, setBackend, backendByName } from '../../engine/index.ts';
import { CASES, runCase } from './conformance.ts';
import { VILT_BASE } from '../../models/index.ts';
import { makeStep } from '../../bench/train-step.ts';

type WasmBackend = import('../../engine/backends/wasm.ts').WasmBackend;
const { mod, why } = await probeWasm('heap');
if (!mod) console.log(`heap.test: SKIPPED, wasm backend unavailable: ${why}`);
const maybe = mod ? test : test.skip;

const GiB = 2 ** 30, MiB = 2 ** 20;

/** A wasm backend registered as `name` whose next allocations start at byte `at` (or just above). */
function pushed(name: string, at: number, opts: { nativeGemm?: boolean } = {}): WasmBackend {
  const be = mod!.createWasmBackend({ name, ...opts });
  if (at > 0) be.rt.pushHeapForTest(at);
  registerBackend(name, () => be, -1);
  return be;
}
function addrOf(t: E.Tensor): number {
  return (t as unknown as { _handle: { storage: { ptr: number } } })._handle.storage.ptr;
}

const gemmModes: { label: string; nativeGemm: boolean }[] = [{ label: 'wasm GEMM', nativeGemm: false }];
if (mod && mod.loadCpuAddonReason() === '') gemmModes.push({ label: 'native GEMM', nativeGemm: true });
else if (mod) console.log(`heap.test: native CPU GEMM cases skipped: ${mod.loadCpuAddonReason()}`);

for (const { label, nativeGemm } of gemmModes) {
  for (const [where, at] of [['above 2 GiB', 2 * GiB + MiB], ['near 4 GiB', 4 * GiB - 200 * MiB]] as const) {
    maybe(`every conformance case on wasm with its tensors ${where} (${label})`, () => {
      const name = `wasm-${where.replace(/ /g, '')}-${nativeGemm ? 'n' : 'w'}`;
      const be = pushed(name, at, { nativeGemm });
      assert.is(be.native !== null, nativeGemm);
      const probe = E.zeros([4], { backend: name });
      assert.ok(addrOf(probe) >= at, `tensors are placed at or above ${at} (got ${addrOf(probe)})`);
      probe.dispose();
      const failures: string[] = [];
      for (const c of CASES) {
        try { runCase(c, name, { offsets: true }); } catch (e) { failures.push(`- ${c.name}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`); }
      }
      assert.ok(failures.length === 0, `${failures.length}/${CASES.length} cases fail ${where}:\n${failures.join('\n')}`);
      assert.ok(be.rt.highWaterBytes() <= 4 * GiB);
    });
  }
}

maybe('out of memory is an Error naming the op, the bytes and the ways out; the backend keeps working', () => {
  const name = 'wasm-oom';
  const be = pushed(name, 4 * GiB - 64 * MiB);
  const x = E.randn([1024, 1024], { backend: name, generator: new E.Generator(1) }); // 4 MiB
  let msg = '';
  try { E.zeros([32 * 1024 * 1024], { backend: name }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /^fill: out of memory on backend wasm-oom: 128\.0 MiB requested for output \[33554432\] float32/);
  assert.match(msg, /in use of 4096\.0 MiB/);
  assert.match(msg, /--batch-size/);
  assert.match(msg, /--accumulate/);
  // a matmul whose output does not fit: [4096, 16] @ [16, 4096] -> [4096, 4096] = 64 MiB
  const a = E.randn([4096, 16], { backend: name, generator: new E.Generator(2) }), b = E.randn([16, 4096], { backend: name, generator: new E.Generator(3) });
  msg = '';
  try { E.matmul(a, b); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /^matmul: out of memory on backend wasm-oom: 64\.0 MiB requested for output \[4096,4096\] float32/);
  E.dispose([a, b]);
  // still correct afterwards
  const y = E.matmul(x.slice(0, 0, 8), x.slice(1, 0, 8)); // [8, 8]
  const want = E.matmul(x.slice(0, 0, 8).to('ref'), x.slice(1, 0, 8).to('ref'));
  const got = y.toArray() as Float32Array, w = want.toArray() as Float32Array;
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(got[i] - w[i]) < 1e-3, `element ${i}: ${got[i]} vs ${w[i]}`);
  E.dispose([x, y, want]);
  assert.ok(be.rt.usedBytes() > 64 * MiB, 'the pad is still allocated');
});

maybe('a ViLT-B/32 batch-8 APT training step (2 layers) straddling 2 GiB matches the same step low in the heap', () => {
  const spec = { config: { ...VILT_BASE, layers: 2 }, method: 'apt', batch: 8, textLen: 40, imageSize: 384, numAnswers: 3129 };
  const losses = (name: string) => {
    setBackend(name);
    const r = makeStep(spec);
    try { return [r.step(), r.step()]; } finally { r.dispose(); }
  };
  pushed('wasm-low', 0);
  const low = losses('wasm-low');
  const be = pushed('wasm-straddle', 2 * GiB - 96 * MiB);
  be.rt.resetPeak();
  const high = losses('wasm-straddle');
  assert.ok(be.rt.highWaterBytes() > 2 * GiB + 64 * MiB, `the step reached above 2 GiB (high water ${be.rt.highWaterBytes()})`);
  assert.equal(high, low);
  assert.ok(Number.isFinite(low[0]) && low[1] !== low[0], 'the step trains');
  void backendByName;
});

test.run();
