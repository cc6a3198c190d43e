// Shared setup of the GPU suite: the CUDA backend under test, or a visible skip. Under scripts/gpu-check.sh
// (APTUNE_REQUIRE_CUDA=1) an unavailable CUDA backend is a failure, not a skip.
import { backendByName, backendStatus, type Backend } from '../../engine/index.ts';
import type { CudaBackend } from '../../engine/backends/cuda.ts';

export function cudaUnderTest(): CudaBackend | null {
  const st = backendStatus().find((s) => s.name === 'cuda');
  if (st?.available) return backendByName('cuda') as CudaBackend;
  const why = st ? st.reason : 'cuda backend not registered';
  if (process.env.APTUNE_REQUIRE_CUDA === '1') throw new Error(`APTUNE_REQUIRE_CUDA=1 but the cuda backend is unavailable: ${why}`);
  console.log(`skipping GPU suite: cuda unavailable: ${why}`);
  return null;
}

/** The peer for whole-model comparisons: wasm when available, else ref (printed). */
export function peerBackend(): Backend {
  const st = backendStatus();
  const name = st.find((s) => s.name === 'wasm' && s.available) ? 'wasm' : 'ref';
  if (name !== 'wasm') console.log('note: wasm backend unavailable; comparing with ref');
  return backendByName(name);
}
