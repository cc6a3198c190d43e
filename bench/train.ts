// Training-step benchmark (`npm run bench:train [-- --json] [-- --quick] [-- --steps N] [-- --no-peer]`): ms per
// ViLT VQA training step (forward, loss, backward, AdamW; batch 8, 40 text + 145 image tokens = 185, 384x384 images,
// 3129 answers) for APT, deep prompt, LoRA and classifier-only, on a small ViLT (hidden 256, 4 layers) and ViLT-B/32
// (--quick: the small one only), aptune with the native CPU GEMM and with WebAssembly alone, beside PyTorch CPU on the
// same shapes (bench/train_peer.py, Debian's python3-torch + libopenblas0-pthread) at its best thread setting (tried per
// model on its APT step: OMP 1 + OpenBLAS 1 / OMP 2 + OpenBLAS 1 / OMP 1 + OpenBLAS 2). Reports ratios to PyTorch, peak
// memory (aptune: heap bytes in use at the peak and process max RSS; PyTorch: process max RSS) and APT's extra time
// over classifier-only as a fraction of deep prompt's. Targets (reported, never asserted): <= 1.2x PyTorch with the
// native GEMM, <= 1.7x with WebAssembly alone; APT's extra time <= 25% of deep prompt's.
// Does not: time in-process (each (config, method, side) runs in a fresh child process, so peak memory is per step and
// one run cannot warm or fragment another), or hide a missing peer (it prints how to install it and skips it).
// Invariants: every time shown is a median of --steps timed steps after one warm-up step, except APT's extra fraction,
// which uses each method's fastest step (a difference of medians is dominated by a shared machine's noise); compare
// ratios from one run; the load average at the start and end is printed.
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as E from '../engine/index.ts';
import { VILT_BASE, type ViltConfig } from '../models/index.ts';
import { makeStep } from './train-step.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(name); return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt; };
const JSON_OUT = args.includes('--json');
const QUICK = args.includes('--quick');
const NO_PEER = args.includes('--no-peer');
const STEPS = Number(opt('--steps', '2'));
const METHODS = opt('--methods', 'apt,deep_prompt,lora,classifier_only').split(',');
const PYTHON = process.env.APTUNE_BENCH_PYTHON ?? '/usr/bin/python3';
const log = (...a: unknown[]) => { if (!JSON_OUT) console.log(...a); };

const CONFIGS: Record<string, ViltConfig> = {
  small: { ...VILT_BASE, hidden: 256, heads: 4, layers: 4, mlp: 1024 },
  base: VILT_BASE,
};

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

// ---- child: one (config, method, gemm) in this process ----------------------------------------------------------
if (args[0] === '--child') {
  const [, config, method, native] = args;
  process.env.APTUNE_NATIVE_CPU = native === '1' ? '1' : '0';
  const be = E.getBackend() as E.Backend & { rt?: { peakBytes(): number; resetPeak(): void }; native?: unknown };
  const r = makeStep({ config: CONFIGS[config], method, batch: 8, textLen: 40, imageSize: 384, numAnswers: 3129 });
  be.rt?.resetPeak();
  const ms: number[] = [];
  for (let s = 0; s < 1 + STEPS; s++) {
    const t0 = performance.now();
    r.step();
    if (s > 0) ms.push(performance.now() - t0);
  }
  const out = { ms, heapPeakMB: be.rt ? be.rt.peakBytes() / 2 ** 20 : null, maxRssMB: process.resourceUsage().maxRSS / 1024,
    backend: be.name, native: !!be.native, threads: (be as unknown as { threads?: number }).threads ?? null };
  r.dispose();
  console.log('RESULT ' + JSON.stringify(out));
  process.exit(0);
}

// ---- parent ------------------------------------------------------------------------------------------------------
interface Side { ms: number; /** the fastest timed step */ minMs: number; rssMB: number; heapMB?: number | null }
const self = fileURLToPath(import.meta.url);

function runAptune(config: string, method: string, native: boolean): Side | string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', config, method, native ? '1' : '0', '--steps', String(STEPS)],
    { encoding: 'utf8', maxBuffer: 1 << 26, env: process.env });
  const line = /RESULT (.*)/.exec(r.stdout ?? '')?.[1];
  if (!line) return `failed (exit ${r.status}): ${((r.stderr ?? '') + (r.stdout ?? '')).trim().split('\n').slice(-3).join(' | ')}`;
  const o = JSON.parse(line);
  if (native && !o.native) return 'native CPU GEMM unavailable (npm run build:native)';
  return { ms: median(o.ms), minMs: Math.min(...o.ms), rssMB: o.maxRssMB, heapMB: o.heapPeakMB };
}

const THREAD_SETTINGS: [number, number][] = [[1, 1], [2, 1], [1, 2]];
function runPeer(config: string, methods: string[], omp: number, blas: number): Record<string, Side> | string {
  const r = spawnSync(PYTHON, [fileURLToPath(new URL('./train_peer.py', import.meta.url)), '--config', config, '--methods', methods.join(','), '--steps', String(STEPS)],
    { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, OMP_NUM_THREADS: String(omp), OPENBLAS_NUM_THREADS: String(blas), MKL_NUM_THREADS: String(blas) } });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const o = JSON.parse(line);
    const res: Record<string, Side> = {};
    for (const [m, v] of Object.entries(o.results as Record<string, { ms: number[]; maxrss_mb: number }>)) res[m] = { ms: median(v.ms), minMs: Math.min(...v.ms), rssMB: v.maxrss_mb };
    return res;
  } catch {
    return `failed (exit ${r.status}): ${((r.stderr ?? '') + (r.stdout ?? '')).trim().split('\n').slice(-2).join(' | ')}`;
  }
}

function peerMissing(): string {
  const r = spawnSync(PYTHON, ['-c', 'import torch, ctypes.util, sys; print(torch.__version__); sys.exit(0 if ctypes.util.find_library("openblas") else 3)'], { encoding: 'utf8' });
  if (r.error || r.status === 1 || r.status === null) return `no PyTorch at ${PYTHON}`;
  if (r.status === 3) return 'PyTorch without OpenBLAS (the reference BLAS runs at ~6 GFLOP/s)';
  return r.status === 0 ? '' : `PyTorch check failed (exit ${r.status})`;
}

const t0 = Date.now();
const load0 = loadavg()[0];
const configs = QUICK ? ['small'] : ['small', 'base'];
log(`bench:train: ${availableParallelism()} cores, load ${load0.toFixed(2)}; aptune ${E.getBackend().name} backend, ${(E.getBackend() as unknown as { threads?: number }).threads ?? '?'} threads; ${STEPS} timed steps after 1 warm-up, medians`);
const why = NO_PEER ? 'skipped (--no-peer)' : peerMissing();
if (why) log(`PyTorch peer SKIPPED: ${why}. Install it with: apt-get update && apt-get install -y python3-torch libopenblas0-pthread (then run with ${PYTHON}, or set APTUNE_BENCH_PYTHON)`);

// the peer's best thread setting per model, on that model's APT step (the best setting differs between sizes)
function bestSetting(config: string): { best: [number, number] | null; tried: { omp: number; openblas: number; ms: number | null }[] } {
  let best: [number, number] | null = null, bestMs = Infinity;
  const tried: { omp: number; openblas: number; ms: number | null }[] = [];
  for (const [omp, blas] of THREAD_SETTINGS) {
    const r = runPeer(config, ['apt'], omp, blas);
    const ms = typeof r === 'string' ? null : r.apt.ms;
    tried.push({ omp, openblas: blas, ms });
    if (ms !== null && ms < bestMs) { bestMs = ms; best = [omp, blas]; }
  }
  log(`PyTorch thread settings on the ${config} APT step: ${tried.map((s) => `OMP ${s.omp} + OpenBLAS ${s.openblas}: ${s.ms === null ? 'failed' : s.ms.toFixed(0) + ' ms'}`).join('; ')}; best: OMP ${best?.[0]} + OpenBLAS ${best?.[1]}`);
  return { best, tried };
}

const report: Record<string, unknown> = { cores: availableParallelism(), loadStart: load0, steps: STEPS, peerSkipped: why || null, peerThreadSettings: {}, peerBest: {}, configs: {} };
for (const config of configs) {
  const cfg = CONFIGS[config];
  log(`\n== ViLT ${config === 'base' ? 'B/32' : 'small'} (hidden ${cfg.hidden}, ${cfg.layers} layers), batch 8, 185 tokens ==`);
  const { best, tried } = why ? { best: null, tried: [] } : bestSetting(config);
  (report.peerThreadSettings as Record<string, unknown>)[config] = tried;
  (report.peerBest as Record<string, unknown>)[config] = best && { omp: best[0], openblas: best[1] };
  let peer: Record<string, Side> = {};
  if (best) {
    for (const m of METHODS) { // one process per method: per-method peak memory
      const r = runPeer(config, [m], best[0], best[1]);
      if (typeof r === 'string') log(`PyTorch ${m}: ${r}`); else peer = { ...peer, ...r };
    }
  }
  const rows: Record<string, { native: Side | string; wasm: Side | string; torch: Side | null }> = {};
  for (const m of METHODS) rows[m] = { native: runAptune(config, m, true), wasm: runAptune(config, m, false), torch: peer[m] ?? null };
  const fmt = (s: Side | string | null, tms?: number) => {
    if (s === null) return 'n/a';
    if (typeof s === 'string') return s;
    return `${s.ms.toFixed(0)} ms${tms ? ` (${(s.ms / tms).toFixed(2)}x)` : ''}, rss ${s.rssMB.toFixed(0)} MB${s.heapMB ? `, heap peak ${s.heapMB.toFixed(0)} MiB` : ''}`;
  };
  for (const m of METHODS) {
    const r = rows[m], tms = r.torch?.ms;
    log(`${m.padEnd(16)} native: ${fmt(r.native, tms)} | wasm: ${fmt(r.wasm, tms)} | PyTorch: ${fmt(r.torch)}`);
  }
  const extra = (side: 'native' | 'wasm' | 'torch') => {
    // from each method's fastest step: the difference of two medians of a few steps is dominated by a shared machine's noise
    const ms = (m: string) => { const s = rows[m]?.[side]; return s && typeof s !== 'string' ? s.minMs : NaN; };
    return (ms('apt') - ms('classifier_only')) / (ms('deep_prompt') - ms('classifier_only'));
  };
  if (METHODS.includes('apt') && METHODS.includes('deep_prompt') && METHODS.includes('classifier_only')) {
    log(`APT extra time over classifier-only / deep prompt's (fastest steps): native ${(100 * extra('native')).toFixed(0)}%, wasm ${(100 * extra('wasm')).toFixed(0)}%, PyTorch ${(100 * extra('torch')).toFixed(0)}% (target <= 25%)`);
  }
  (report.configs as Record<string, unknown>)[config] = { rows, aptExtraFraction: { native: extra('native'), wasm: extra('wasm'), torch: extra('torch') } };
}
report.loadEnd = loadavg()[0];
report.seconds = (Date.now() - t0) / 1000;
log(`\nload ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}; ${((Date.now() - t0) / 1000).toFixed(0)} s. Targets (not asserted): native <= 1.2x PyTorch, wasm <= 1.7x; APT extra <= 25% of deep prompt's.`);
if (JSON_OUT) console.log(JSON.stringify(report, null, 1));
