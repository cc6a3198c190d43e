// Test driver: type-checks, then runs every test/**/*.test.ts file with uvu (through tsx), one process per file,
// and ends with a plain "N passed, N failed" line carrying the real counts. Exit status is non-zero on any failure.
// --gpu: run only the GPU suite (test/gpu/), with APTUNE_BACKEND=cuda.  Extra args filter files by substring.
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

let files = walk(join(root, 'test')).filter((f) => gpu === relative(root, f).startsWith('test/gpu/'));
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
let passed = 0, failed = 0, skipped = 0, crashed = [];
const env = { ...process.env, ...(gpu ? { APTUNE_BACKEND: 'cuda' } : {}) };
for (const f of files) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', f], { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 28 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  process.stdout.write(`\n# ${relative(root, f)}\n` + out.replace(/\n+$/, '') + '\n');
  const total = /Total:\s+(\d+)/.exec(out), pass = /Passed:\s+(\d+)/.exec(out), skip = /Skipped:\s+(\d+)/.exec(out);
  const t = total ? +total[1] : 0, p = pass ? +pass[1] : 0, s = skip ? +skip[1] : 0;
  passed += p; skipped += s; failed += Math.max(0, t - p - s);
  if (r.status !== 0 && t - p - s <= 0) { failed += 1; crashed.push(relative(root, f)); }
  else if (!total) { failed += 1; crashed.push(relative(root, f)); }
}
if (crashed.length) console.log(`\nfiles that crashed or ran no uvu suite: ${crashed.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
