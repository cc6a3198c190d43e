// npm install hook, for a checkout and for an installed package alike.
// In a checkout (engine/assembly/ sources present): builds the WebAssembly kernels (required: exit 1 on failure).
// In an installed package: the kernels ship prebuilt in dist/, so there is nothing to compile for the CPU.
// Then, in both: tries the native addons (the CPU GEMM with cmake + a C++ compiler, the CUDA addon also when nvcc exists) (scripts/build-native.mjs; never fatal, one line when a tool is missing),
// unless APTUNE_SKIP_NATIVE=1. npm may not run this hook for a dependency at all (npm 11 with scripts disallowed,
// --ignore-scripts): nothing else depends on it; `npx aptune build-native` builds the addon by hand.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (script) => spawnSync(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], { stdio: 'inherit' }).status ?? 1;
if (existsSync(`${root}/engine/assembly/index.ts`)) {
  if (run('./build-wasm.mjs') !== 0) process.exit(1);
} else if (!existsSync(`${root}/dist/engine/assembly/build/simd.wasm`)) {
  console.log('aptune: WARNING: the prebuilt WebAssembly kernels are missing from this package (dist/engine/assembly/build/); only the ref backend will work');
}
if (process.env.APTUNE_SKIP_NATIVE === '1') console.log('aptune: native addon skipped (APTUNE_SKIP_NATIVE=1); build it later with `npx aptune build-native`');
else run('./build-native.mjs'); // failures are warnings inside
