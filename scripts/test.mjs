// Test driver: type-checks, checks the size budget (scripts/size.mjs), then runs every test/**/*.test.ts file with uvu (through tsx), one process per file,
// and ends with a plain "N passed, N failed" line carrying the real counts. Exit status is non-zero on any failure.
// --gpu: the GPU suite with CUDA required: the backend conformance suite (test/engine/backends.test.ts, on cuda only)
// plus the GPU-only files (test/gpu/), with APTUNE_BACKEND=cuda, APTUNE_CONFORMANCE_BACKENDS=cuda and
// APTUNE_REQUIRE_CUDA=1 (each overridable from the environment), so an unavailable CUDA fails with its reason.
// Extra args filter files by substring.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const gpu = args.includes('--gpu');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (name !== 'fixtures') out.push(...walk(p)); }
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

if (!gpu && !process.env.APTUNE_SKIP_TSC) {
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) { console.log('typecheck failed'); console.log('0 passed, 1 failed'); process.exit(1); }
}

if (!gpu && !process.env.APTUNE_SKIP_SIZE) {
  // the size budget (scripts/size.mjs, `npm run size`) is part of the suite: over budget counts as one failure
  const size = spawnSync(process.execPath, [join(root, 'scripts/size.mjs')], { stdio: 'inherit' });
  if (size.status !== 0) { console.log('size budget exceeded (npm run size)'); console.log('0 passed, 1 failed'); process.exit(1); }
}

const GPU_SHARED = ['test/engine/backends.test.ts']; // suites that run in both modes (on cuda only under --gpu)
let files = walk(join(root, 'test')).filter((f) => {
  const rel = relative(root, f);
  return gpu ? rel.startsWith('test/gpu/') || GPU_SHARED.includes(rel) : !rel.startsWith('test/gpu/');
});
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
let passed = 0, failed = 0, skipped = 0, crashed = [];
const gpuEnv = {
  APTUNE_BACKEND: process.env.APTUNE_BACKEND ?? 'cuda',
  APTUNE_CONFORMANCE_BACKENDS: process.env.APTUNE_CONFORMANCE_BACKENDS ?? 'cuda',
  APTUNE_REQUIRE_CUDA: process.env.APTUNE_REQUIRE_CUDA ?? '1',
};
const env = { ...process.env, ...(gpu ? gpuEnv : {}) };
let cudaMissing = '';
for (const f of files) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', f], { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 28 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  cudaMissing ||= /CUDA REQUIRED \(APTUNE_REQUIRE_CUDA=1\) but unavailable: [^\n]*/.exec(out)?.[0] ?? '';
  process.stdout.write(`\n# ${relative(root, f)}\n` + out.replace(/\n+$/, '') + '\n');
  const total = /Total:\s+(\d+)/.exec(out), pass = /Passed:\s+(\d+)/.exec(out), skip = /Skipped:\s+(\d+)/.exec(out);
  const t = total ? +total[1] : 0, p = pass ? +pass[1] : 0, s = skip ? +skip[1] : 0;
  // uvu's Total counts the tests that ran; test.skip ones are only in Skipped
  passed += p; skipped += s; failed += Math.max(0, t - p);
  if (r.status !== 0 && t - p <= 0) { failed += 1; crashed.push(relative(root, f)); }
  else if (!total) { failed += 1; crashed.push(relative(root, f)); }
}
if (cudaMissing) console.log(`\n${cudaMissing}`);
if (crashed.length) console.log(`\nfiles that crashed or ran no uvu suite: ${crashed.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
