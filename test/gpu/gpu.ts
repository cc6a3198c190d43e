// Shared setup of the GPU-only files (test/gpu/*.test.ts): the CUDA backend under test, or a visible skip.
// With APTUNE_REQUIRE_CUDA=1 (set by `npm run test:gpu` and scripts/gpu-check.sh) an unavailable CUDA backend is a
// failing test that names the reason, not a skip. Op conformance on cuda is test/engine/backends.test.ts.
// Does not: run tests itself beyond that one placeholder (skip or failure) per file.
import { test } from 'uvu';
import { backendByName, backendStatus, type Backend } from '../../engine/index.ts';
import type { CudaBackend } from '../../engine/backends/cuda.ts';

/** The cuda backend, or null after registering a skipped (or, when required, a failing) test named after `suite`. */
export function cudaUnderTest(suite: string): CudaBackend | null {
  const st = backendStatus().find((s) => s.name === 'cuda');
  if (st?.available) return backendByName('cuda') as CudaBackend;
  const why = st ? st.reason : 'the cuda backend is not registered';
  if (process.env.APTUNE_REQUIRE_CUDA === '1') {
    console.log(`CUDA REQUIRED (APTUNE_REQUIRE_CUDA=1) but unavailable: ${why}`);
    test(`${suite}: CUDA is required (APTUNE_REQUIRE_CUDA=1) and available`, () => {
      throw new Error(`APTUNE_REQUIRE_CUDA=1 but the cuda backend is unavailable: ${why}`);
    });
  } else {
    console.log(`skipping ${suite}: cuda unavailable: ${why}`);
    test.skip(`${suite} (cuda unavailable)`, () => {});
  }
  return null;
}

/** The peer for whole-model comparisons: wasm when available, else ref (printed). */
export function peerBackend(): Backend {
  const st = backendStatus();
  const name = st.find((s) => s.name === 'wasm' && s.available) ? 'wasm' : 'ref';
  if (name !== 'wasm') console.log('note: wasm backend unavailable; comparing with ref');
  return backendByName(name);
}
