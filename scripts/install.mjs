// npm install hook: builds the WebAssembly kernels (required) and the native addons (optional, never fatal: the CPU GEMM
// with cmake + a C++ compiler, the CUDA addon also when nvcc exists).
import { spawnSync } from 'node:child_process';
const run = (script) => spawnSync(process.execPath, [script], { stdio: 'inherit' }).status ?? 1;
if (run(new URL('./build-wasm.mjs', import.meta.url).pathname) !== 0) process.exit(1);
run(new URL('./build-native.mjs', import.meta.url).pathname); // failures are warnings inside
