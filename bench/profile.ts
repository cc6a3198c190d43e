// Per-op profile of one ViLT training step (`npm run bench:profile [-- --steps N] [-- --method M] [-- --model small|base]
// [-- --out FILE]`): kernel time per op and phase (forward / backward / optimiser) of the small ViLT VQA step of
// bench:train (hidden 256, 4 layers, batch 8, 185 tokens, AdamW) or of ViLT-B/32 (--model base, the same batch), on the wasm backend with the native CPU GEMM and with WebAssembly alone, each
// in a fresh child process with APTUNE_PROFILE=1 (engine/dispatch.ts's opt-in timer). Writes a markdown table
// (default bench/results/profile-vilt-step.md) so that fusions are chosen by measurement.
// Does not: time anything but kernels per op (the rest of the step, dispatch and JS, is the "host" line), or run
// threads unless APTUNE_THREADS says so (one thread by default here, so kernel times are not split across workers).
// Invariants: one warm-up step, then the sum over --steps steps divided by the step count; shares are of the step's
// wall time.
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../engine/index.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(name); return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt; };
const STEPS = Number(opt('--steps', '3'));
const METHOD = opt('--method', 'apt');
const MODEL = opt('--model', 'small');
if (MODEL !== 'small' && MODEL !== 'base') throw new Error(`bench:profile: --model must be small or base, got '${MODEL}'`);
const OUT = opt('--out', fileURLToPath(new URL(`./results/profile-vilt${MODEL === 'base' ? '-b' : ''}-step.md`, import.meta.url)));

interface Row { op: string; phase: 'fwd' | 'bwd'; calls: number; ms: number; shapes?: string }
interface Child { rows: Row[]; shapeRows: Row[]; stepMs: number[]; native: boolean; threads: number }

if (args[0] === '--child') {
  const native = args[1] === '1';
  process.env.APTUNE_NATIVE_CPU = native ? '1' : '0';
  const E = await import('../engine/index.ts');
  const { VILT_BASE } = await import('../models/index.ts');
  const { makeStep } = await import('./train-step.ts');
  const be = E.getBackend() as Backend & { native?: unknown; threads?: number };
  const config = MODEL === 'base' ? VILT_BASE : { ...VILT_BASE, hidden: 256, heads: 4, layers: 4, mlp: 1024 };
  const r = makeStep({ config, method: METHOD, batch: 8, textLen: 40, imageSize: 384, numAnswers: 3129 });
  r.step();
  E.profileOps(true);
  const stepMs: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const t0 = performance.now();
    r.step();
    stepMs.push(performance.now() - t0);
  }
  const rows = E.profileReport();
  E.profileOps(true, { shapes: true }); // one more step, split by input shapes (which call sites)
  r.step();
  const shapeRows = E.profileReport();
  E.profileOps(false);
  r.dispose();
  console.log('RESULT ' + JSON.stringify({ rows, shapeRows, stepMs, native: !!be.native, threads: be.threads ?? 1 } satisfies Child));
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
function child(native: boolean): Child | string {
  const env = { ...process.env, APTUNE_THREADS: process.env.APTUNE_THREADS ?? '1' };
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', native ? '1' : '0', '--steps', String(STEPS), '--method', METHOD, '--model', MODEL],
    { encoding: 'utf8', maxBuffer: 1 << 26, env });
  const line = /RESULT (.*)/.exec(r.stdout ?? '')?.[1];
  if (!line) return `failed (exit ${r.status}): ${((r.stderr ?? '') + (r.stdout ?? '')).trim().split('\n').slice(-3).join(' | ')}`;
  return JSON.parse(line) as Child;
}

/** Optimiser ops run outside backward() but are not forward work. */
const phaseOf = (r: Row) => (r.op.endsWith('_step') ? 'opt' : r.phase);

function table(c: Child): string {
  const step = c.stepMs.reduce((a, b) => a + b, 0) / STEPS;
  const kernels = c.rows.reduce((a, r) => a + r.ms, 0) / STEPS;
  const lines = ['| # | op | phase | calls/step | ms/step | share of step |', '|---:|---|---|---:|---:|---:|'];
  c.rows.forEach((r, i) => {
    const ms = r.ms / STEPS;
    lines.push(`| ${i + 1} | ${r.op} | ${phaseOf(r)} | ${r.calls / STEPS} | ${ms.toFixed(1)} | ${(100 * ms / step).toFixed(1)}% |`);
  });
  lines.push(`| | host (dispatch, autograd, JS; step minus kernels) | | | ${(step - kernels).toFixed(1)} | ${(100 * (step - kernels) / step).toFixed(1)}% |`);
  const byOp = new Map<string, number>();
  for (const r of c.rows) byOp.set(r.op, (byOp.get(r.op) ?? 0) + r.ms / STEPS);
  const nonGemm = [...byOp].filter(([op]) => op !== 'matmul').sort((a, b) => b[1] - a[1]);
  const sorted = [...c.stepMs].sort((a, b) => a - b);
  const shapeLines = ['| op | phase | input shapes | calls | ms | share of step |', '|---|---|---|---:|---:|---:|'];
  const stepOne = step; // the shape-split step is one more step of the same kind
  for (const r of c.shapeRows.filter((x) => x.op !== 'matmul').slice(0, 20)) {
    shapeLines.push(`| ${r.op} | ${phaseOf(r)} | ${r.shapes ?? ''} | ${r.calls} | ${r.ms.toFixed(1)} | ${(100 * r.ms / stepOne).toFixed(1)}% |`);
  }
  return [
    `Step: mean ${step.toFixed(0)} ms (min ${sorted[0].toFixed(0)}, max ${sorted[sorted.length - 1].toFixed(0)}) over ${STEPS} steps; kernels ${kernels.toFixed(0)} ms; matmul ${(byOp.get('matmul') ?? 0).toFixed(0)} ms (${(100 * (byOp.get('matmul') ?? 0) / step).toFixed(1)}%).`,
    '',
    `After GEMM, by op (both phases): ${nonGemm.slice(0, 8).map(([op, ms]) => `${op} ${(100 * ms / step).toFixed(1)}%`).join(', ')}.`,
    '',
    ...lines,
    '',
    'The 20 largest non-GEMM rows of one more step, by input shapes (which call sites):',
    '',
    ...shapeLines,
  ].join('\n');
}

const load0 = loadavg()[0];
const sides: [string, Child | string][] = [['native CPU GEMM', child(true)], ['WebAssembly alone', child(false)]];
const md = [
  `# Per-op profile of a ViLT training step`,
  '',
  `Generated by \`npm run bench:profile\` (bench/profile.ts) on ${new Date().toISOString().slice(0, 10)}: ${MODEL === 'base' ? 'ViLT-B/32 (hidden 768, 12 heads, 12 layers, MLP 3072)' : 'small ViLT (hidden 256, 4 heads, 4 layers, MLP 1024)'}, `
  + `VQA, method ${METHOD}, batch 8, 40 text + 145 image tokens, 384x384 images, 3129 answers; forward + backward + AdamW; wasm backend, `
  + `APTUNE_THREADS=${process.env.APTUNE_THREADS ?? '1'}; kernel wall time per op from APTUNE_PROFILE=1, ${STEPS} steps after one warm-up. `
  + `Load average ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end (shared machine: shares are more reliable than absolute times).`,
  '',
  ...sides.flatMap(([name, c]) => [`## ${name}`, '', typeof c === 'string' ? c : table(c), '']),
].join('\n');
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, md);
console.log(md);
