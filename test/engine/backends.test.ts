// THE backend conformance suite (DESIGN.md lesson 8): every case of test/engine/conformance.ts (every op of OP_NAMES,
// several shapes, broadcasting, odd sizes, int32 variants, in-place ops, masks, ties, NaN) on each available
// non-reference backend against the reference backend, through `apply` and again with offset views; plus a tiny
// training run whose losses must match the reference. The reference's own kernels are run with offset views too.
// Backends: every available non-reference backend, or the comma list APTUNE_CONFORMANCE_BACKENDS. With
// APTUNE_REQUIRE_CUDA=1 (set by `npm run test:gpu`) an unavailable cuda backend is a failing test, not a skip;
// otherwise an unavailable backend prints a visible "skipping" line.
// Int32 variants (optionalInt) are skipped with a visible line on a backend that lacks them, unless the backend is in
// INT32_COMPLETE (ref, cuda, wasm), where they are required.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { OP_NAMES, backendByName, backendStatus } from '../../engine/index.ts';
import { allclose, backendsUnderTest } from '../helpers.ts';
import { CASES, INT32_COMPLETE, runCase, trainLosses, type Case } from './conformance.ts';

test('the conformance cases cover every op of OP_NAMES, with unique names', () => {
  const have = new Set(CASES.map((c) => c.op));
  assert.equal(OP_NAMES.filter((op) => !have.has(op)), []);
  const names = CASES.map((c) => c.name);
  assert.equal(names.filter((n, i) => names.indexOf(n) !== i), [], 'duplicate case names');
});

/** Runs every case on `backend`; returns the failure lines (int32 variants a backend lacks are printed and skipped). */
function runAll(backend: string, offsets: boolean): string[] {
  const failures: string[] = [];
  E.setKernelChecks(true); // every kernel call through apply must allocate exactly its outputs (no leaked scratch)
  try {
    for (const c of CASES as Case[]) {
      try {
        runCase(c, backend, { offsets });
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (c.optionalInt && !INT32_COMPLETE.has(backend) && /no kernel for|does not support dtype int32|int32 is not supported|\(float32 only\)/.test(msg)) {
          console.log(`skipping case "${c.name}" on ${backend}: ${msg.split('\n')[0]}`);
          continue;
        }
        failures.push(`- ${c.name}: ${msg.split('\n')[0]}`);
      }
    }
  } finally {
    E.setKernelChecks(false);
  }
  return failures;
}

test(`ref: every kernel honours offset views and writes only its outputs (${CASES.length} cases)`, () => {
  const failures = runAll('ref', true);
  assert.ok(failures.length === 0, `${failures.length}/${CASES.length} cases fail on ref:\n${failures.join('\n')}`);
});

// The wasm backend's matmul runs on the native CPU GEMM when the addon is built (unless APTUNE_NATIVE_CPU=0): the
// cases also run on a second wasm instance with the other GEMM ("wasm-other-gemm"), so both are checked in one run.
try {
  const w = await import('../../engine/backends/wasm.ts');
  const st = w.nativeCpuGemmStatus();
  if (st.available || w.loadCpuAddonReason() === '') {
    const be = w.createWasmBackend({ name: 'wasm-other-gemm', nativeGemm: !st.available });
    E.registerBackend('wasm-other-gemm', () => be, 1);
    console.log(`wasm: GEMM ${st.available ? `native (${st.isa})` : 'WebAssembly'}; wasm-other-gemm: ${be.native ? `native (${be.native.isa()})` : 'WebAssembly'}`);
  } else console.log(`wasm: native CPU GEMM not checked: ${st.reason}`);
} catch (e) {
  console.log(`wasm-other-gemm not registered: ${(e as Error).message.split('\n')[0]}`);
}

const only = process.env.APTUNE_CONFORMANCE_BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean);
let targets = backendsUnderTest();
if (only) {
  for (const name of only) if (!backendStatus().some((s) => s.name === name)) throw new Error(`APTUNE_CONFORMANCE_BACKENDS: backend "${name}" is not registered`);
  targets = targets.filter((b) => only.includes(b));
}
const cudaMissing = process.env.APTUNE_REQUIRE_CUDA === '1' && !targets.includes('cuda');
if (cudaMissing) {
  const st = backendStatus().find((s) => s.name === 'cuda');
  const why = !st ? 'the cuda backend is not registered' : st.available ? 'excluded by APTUNE_CONFORMANCE_BACKENDS' : st.reason;
  console.log(`CUDA REQUIRED (APTUNE_REQUIRE_CUDA=1) but unavailable: ${why}`);
  test('cuda conformance: CUDA is required (APTUNE_REQUIRE_CUDA=1) and available', () => {
    assert.unreachable(`APTUNE_REQUIRE_CUDA=1 but the cuda backend is unavailable: ${why}`);
  });
}
if (targets.length === 0 && !cudaMissing) {
  console.log('skipping backend conformance: no non-reference backend is available');
  test.skip('backend conformance (no non-reference backend available)', () => {});
}
for (const b of targets) {
  test(`${b}: every op matches the reference, also through offset views (${CASES.length} cases)`, () => {
    // GEMM in full float32 for conformance (the tf32/bf16 modes are checked in test/gpu/device.test.ts)
    (backendByName(b) as { setGemmMode?: (m: 'fp32') => void }).setGemmMode?.('fp32');
    const live = E.liveTensors();
    const failures = runAll(b, true);
    assert.is(E.liveTensors(), live, 'the cases leave no live tensors');
    assert.ok(failures.length === 0, `${failures.length}/${CASES.length} cases fail on ${b}:\n${failures.join('\n')}`);
  });
  test(`${b}: a tiny training run (dropout, layer norm, AdamW) matches the reference losses`, () => {
    const r = trainLosses('ref');
    const t = trainLosses(b);
    allclose(t.losses, r.losses, { rtol: 1e-4, atol: 1e-5, msg: `losses on ${b}` });
    allclose(t.w, r.w, { rtol: 1e-4, atol: 1e-5, msg: `weights after training on ${b}` });
    assert.ok(r.losses[3] < r.losses[0], 'the reference run learns');
  });
}

test.run();
