// `npm run build` (and `prepack`): the package's build. Compiles the AssemblyScript kernels (scripts/build-wasm.mjs),
// compiles the TypeScript library to dist/ (JavaScript + .d.ts + source maps, tsconfig.build.json, relative `.ts`
// imports rewritten to `.js` by TypeScript's rewriteRelativeImportExtensions) and copies the four kernels to
// dist/engine/assembly/build/, where the compiled wasm runtime looks for them (same relative path as in the sources),
// and native/index.d.ts to dist/native/ (the addon's declarations, which dist/engine/backends/cuda.d.ts imports).
// Does not: build the native addon (scripts/build-native.mjs, `npx aptune build-native`).
// Invariants: dist/ is deleted first, so it never holds files of deleted sources; exit status non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const KERNELS = ['simd.wasm', 'relaxed.wasm', 'simd-mt.wasm', 'relaxed-mt.wasm'];
const t0 = Date.now();
const step = (what, args) => {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) { console.error(`build: ${what} failed (exit ${r.status})`); process.exit(1); }
};

step('WebAssembly kernels', [join(root, 'scripts/build-wasm.mjs')]);
rmSync(join(root, 'dist'), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
step('tsc', [tsc, '-p', join(root, 'tsconfig.build.json')]);
const to = join(root, 'dist/engine/assembly/build');
mkdirSync(to, { recursive: true });
for (const k of KERNELS) {
  const from = join(root, 'engine/assembly/build', k);
  if (!existsSync(from)) { console.error(`build: ${from} missing after build-wasm`); process.exit(1); }
  copyFileSync(from, join(to, k));
}
// the addon's declarations, imported as a type by engine/backends/cuda.ts (../../native/index.d.ts from dist/engine/backends)
mkdirSync(join(root, 'dist/native'), { recursive: true });
copyFileSync(join(root, 'native/index.d.ts'), join(root, 'dist/native/index.d.ts'));
// the CPU GEMM addon's declarations, imported as a type by engine/backends/native-cpu.ts
mkdirSync(join(root, 'dist/native/cpu'), { recursive: true });
copyFileSync(join(root, 'native/cpu/index.d.ts'), join(root, 'dist/native/cpu/index.d.ts'));
console.log(`build: dist/ (JavaScript, declarations, source maps, ${KERNELS.length} WebAssembly kernels) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
