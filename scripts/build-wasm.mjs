// Builds the AssemblyScript kernels (engine/assembly/) into engine/assembly/build/ with asc, per asconfig.json:
// simd.wasm, relaxed.wasm (single memory) and simd-mt.wasm, relaxed-mt.wasm (shared memory, for worker threads).
// Runs scripts/gen-ops.ts first in a checkout (the op codes in engine/assembly/op-codes.ts).
// Does not: download anything or build the CUDA addon. Fails (exit 1) with asc's diagnostics if a target fails.
// Invariants: the four targets compile the same sources; they run as parallel asc processes so the build takes seconds.
// Incremental: when every output is newer than every kernel source, asconfig.json and this script, nothing is run
// (--force rebuilds anyway).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// In a checkout, first regenerate what the op contract gives (scripts/gen-ops.ts writes only files that differ).
if (existsSync(join(root, 'scripts/gen-ops.ts'))) {
  const g = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/gen-ops.ts')], { cwd: root, stdio: 'inherit' });
  if (g.status !== 0) { console.error('build-wasm: scripts/gen-ops.ts failed'); process.exit(1); }
}
const config = JSON.parse(readFileSync(join(root, 'asconfig.json'), 'utf8'));
const targets = Object.keys(config.targets);
const outputs = targets.map((t) => join(root, config.targets[t].outFile));
const sources = [join(root, 'asconfig.json'), fileURLToPath(import.meta.url),
  ...readdirSync(join(root, 'engine/assembly')).filter((f) => f.endsWith('.ts')).map((f) => join(root, 'engine/assembly', f))];
if (!process.argv.includes('--force') && outputs.every(existsSync)) {
  const newestSource = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  if (Math.min(...outputs.map((f) => statSync(f).mtimeMs)) > newestSource) {
    console.log('build-wasm: kernels up to date');
    process.exit(0);
  }
}
let asc;
try {
  asc = join(dirname(fileURLToPath(import.meta.resolve('assemblyscript/package.json'))), 'bin', 'asc.js');
} catch {
  console.error('build-wasm: assemblyscript is not installed (run npm install)');
  process.exit(1);
}
mkdirSync(join(root, 'engine/assembly/build'), { recursive: true });
const t0 = Date.now();
const results = await Promise.all(targets.map((t) => new Promise((resolve) => {
  const p = spawn(process.execPath, [asc, '--config', 'asconfig.json', '--target', t], { cwd: root, stdio: ['ignore', 'inherit', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  p.on('close', (code) => resolve({ t, code, err }));
})));
let failed = 0;
for (const r of results) {
  if (r.code !== 0) { failed++; console.error(`build-wasm: target ${r.t} failed\n${r.err}`); }
}
if (failed) process.exit(1);
console.log(`build-wasm: ${targets.map((t) => config.targets[t].outFile).join(', ')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
