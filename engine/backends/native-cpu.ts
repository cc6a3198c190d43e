// Loader of the native CPU addon (build/Release/aptune_cpu.node, native/cpu/): a float32 GEMM that the wasm backend
// calls on its own linear memory (no copies). Optional: without the addon (no compiler at install, a browser) or with
// APTUNE_NATIVE_CPU=0 the wasm backend runs its WebAssembly GEMM, and nativeCpuGemmStatus() says why.
// Does not: plan shapes (wasm.ts does; the addon range-checks every matrix against the heap).
// Invariants: loaded at most once per process; never throws (a failure is a reason string); env APTUNE_CPU_ADDON
// overrides the path (tests, packaging).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { CpuAddon } from '../../native/cpu/index.d.ts';

export type { CpuAddon };

/** Path of the built addon: env APTUNE_CPU_ADDON, else build/Release/aptune_cpu.node at the repository root. */
export function cpuAddonPath(): string {
  return process.env.APTUNE_CPU_ADDON ?? fileURLToPath(new URL('../../build/Release/aptune_cpu.node', import.meta.url));
}

let cache: { addon: CpuAddon | null; reason: string } | null = null;

/** The addon (ignoring APTUNE_NATIVE_CPU), or null with the reason it is missing. Never throws. */
export function loadCpuAddon(): { addon: CpuAddon | null; reason: string } {
  if (cache) return cache;
  const p = cpuAddonPath();
  if (!existsSync(p)) cache = { addon: null, reason: `native CPU addon not built (${p} missing; run \`npm run build:native\` with cmake and a C++ compiler)` };
  else {
    try {
      cache = { addon: createRequire(import.meta.url)(p) as CpuAddon, reason: '' };
    } catch (e) {
      cache = { addon: null, reason: `native CPU addon failed to load (${p}): ${(e as Error).message}` };
    }
  }
  return cache;
}

/** Whether the wasm backend uses the native GEMM by default: the addon loads and APTUNE_NATIVE_CPU is not 0. */
export function nativeCpuGemmStatus(): { available: boolean; reason: string; isa: string } {
  if (process.env.APTUNE_NATIVE_CPU === '0') return { available: false, reason: 'disabled by APTUNE_NATIVE_CPU=0', isa: '' };
  const { addon, reason } = loadCpuAddon();
  return addon ? { available: true, reason: '', isa: addon.isa() } : { available: false, reason, isa: '' };
}

/** '' when the addon loads (whatever APTUNE_NATIVE_CPU says), else why not. */
export function loadCpuAddonReason(): string {
  return loadCpuAddon().reason;
}
