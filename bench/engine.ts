// Engine benchmark (`npm run bench:engine [-- --json] [-- --quick]`): our WebAssembly backend beside
// @tensorflow/tfjs-backend-wasm measured in the same process on the same shapes:
//   1. matmul GFLOP/s, 768x768x768 and 1480x768x3072 ([M, K] @ [K, N]), one thread and all cores;
//   2. forward + backward of one pre-norm transformer block (hidden 768, 12 heads, MLP 3072, 185 tokens, batch 8),
//      ours through the engine's ops and autograd, tfjs through its public ops and tf.variableGrads.
// Prints ratios and the % of the 128-bit SIMD ceilings of ../shared/TOOLCHAIN.md and of the peak measured here by the
// module's simd_peak probe (FMA chains; in a plain-SIMD build the mul+add probe is latency-bound, a lower bound);
// --json prints one JSON object instead.
// Does not assert targets (they are reported), and does not use tfjs threads (its Node build has none).
// Invariants: every timing is a median (matmul also reports the best run) after warm-up runs (V8 tiers wasm up after the first calls); the load
// average is reported because the machine is shared.
import { loadavg, availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as E from '../engine/index.ts';
import { createWasmBackend, type WasmBackend } from '../engine/backends/wasm.ts';

const args = process.argv.slice(2);
const JSON_OUT = args.includes('--json');
const QUICK = args.includes('--quick');
const log = (...a: unknown[]) => { if (!JSON_OUT) console.log(...a); };
const CEIL_RELAXED = 57.5; // 128-bit FMA, one core (TOOLCHAIN.md)
const CEIL_PLAIN = 46; // 128-bit mul + add
const cores = availableParallelism();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
async function timeMs(fn: () => void | Promise<void>, warm: number, reps: number): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

// ---------------------------------------------------------------------------------------------------------------
// tfjs with the wasm backend, quietly (tfjs prints advice about tfjs-node on import)
type TF = typeof import('@tensorflow/tfjs');
async function loadTf(): Promise<TF> {
  const saved = { log: console.log, warn: console.warn, info: console.info };
  console.log = console.warn = console.info = () => {};
  try {
    const tf = (await import('@tensorflow/tfjs')) as TF;
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
    wasm.setWasmPaths(dist);
    if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: could not initialise the wasm backend');
    await tf.ready();
    return tf;
  } finally {
    Object.assign(console, saved);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// matmul

/** GFLOP/s of the module's simd_peak probe (register-only multiply-adds): this CPU's 128-bit ceiling for the build. */
function measuredPeak(be: WasmBackend): number {
  const f = be.rt.exports.simd_peak;
  const n = QUICK ? 5_000_000 : 20_000_000;
  let best = Infinity;
  for (let i = 0; i < 9; i++) { // a ceiling: the best run, not the median
    const t0 = performance.now();
    f(n, i);
    best = Math.min(best, performance.now() - t0);
  }
  return (64 * n) / best / 1e6;
}

const SHAPES: [number, number, number][] = [[768, 768, 768], [1480, 768, 3072]]; // M, K, N

/** Median ms of each fn, timed in rotation (fn0, fn1, ... each rep) so load changes on the shared machine hit all alike. */
async function timeInterleaved(fns: (() => void)[], warm: number, reps: number): Promise<{ med: number[]; best: number[] }> {
  for (let i = 0; i < warm; i++) for (const f of fns) f();
  const t: number[][] = fns.map(() => []);
  for (let r = 0; r < reps; r++) {
    fns.forEach((f, i) => {
      const t0 = performance.now();
      f();
      t[i].push(performance.now() - t0);
    });
  }
  return { med: t.map(median), best: t.map((x) => Math.min(...x)) };
}

/** GFLOP/s of [M, K] @ [K, N]: ours on one thread, ours on all cores, tfjs-wasm (one thread), interleaved. */
async function matmulRow(tf: TF, one: WasmBackend, all: WasmBackend, M: number, K: number, N: number): Promise<{ med: number[]; best: number[] }> {
  const a1 = E.randn([M, K], { backend: one }), b1 = E.randn([K, N], { backend: one });
  const aN = E.randn([M, K], { backend: all }), bN = E.randn([K, N], { backend: all });
  const ta = tf.randomNormal([M, K]), tb = tf.randomNormal([K, N]);
  const r = await timeInterleaved([
    () => { E.matmul(a1, b1).dispose(); },
    () => { E.matmul(aN, bN).dispose(); },
    () => { const c = tf.matMul(ta, tb); c.dataSync(); c.dispose(); },
  ], 3, QUICK ? 3 : 9);
  for (const t of [a1, b1, aN, bN]) t.dispose();
  ta.dispose(); tb.dispose();
  const gf = (2 * M * N * K) / 1e6;
  return { med: r.med.map((ms) => gf / ms), best: r.best.map((ms) => gf / ms) };
}

// ---------------------------------------------------------------------------------------------------------------
// transformer block: x + Attn(LN1(x)), then + MLP(LN2(.)); loss = mean(out); gradients for all weights and x

const B = 8, N = 185, D = 768, H = 12, DH = 64, F = 3072;
const PARAM_SHAPES: Record<string, number[]> = {
  ln1w: [D], ln1b: [D], qkvW: [3 * D, D], qkvB: [3 * D], projW: [D, D], projB: [D],
  ln2w: [D], ln2b: [D], fc1W: [F, D], fc1B: [F], fc2W: [D, F], fc2B: [D],
};
function initData(): Record<string, Float32Array> {
  let s = 42;
  const r = () => { s = (s * 16807) % 2147483647; return s / 2147483647 - 0.5; };
  const out: Record<string, Float32Array> = {};
  for (const [k, shape] of Object.entries({ ...PARAM_SHAPES, x: [B, N, D] })) {
    const n = shape.reduce((a, b) => a * b, 1);
    out[k] = Float32Array.from({ length: n }, () => (k.startsWith('ln') && k.endsWith('w') ? 1 : 0) + r() * 0.04);
  }
  return out;
}

function oursBlockStep(p: Record<string, E.Tensor>): number {
  return E.scope(() => {
    const x = p.x;
    const h1 = E.layerNorm(x, p.ln1w, p.ln1b, 1e-6);
    const qkv = E.permute(E.reshape(E.linear(h1, p.qkvW, p.qkvB), [B, N, 3, H, DH]), [2, 0, 3, 1, 4]); // [3, B, H, N, DH]
    const q = E.reshape(E.slice(qkv, 0, 0, 1), [B, H, N, DH]);
    const k = E.reshape(E.slice(qkv, 0, 1, 2), [B, H, N, DH]);
    const v = E.reshape(E.slice(qkv, 0, 2, 3), [B, H, N, DH]);
    const att = E.softmax(E.affine(E.matmul(q, k, { transB: true }), 1 / Math.sqrt(DH)), -1); // [B, H, N, N]
    const o = E.reshape(E.permute(E.matmul(att, v), [0, 2, 1, 3]), [B, N, D]);
    const x1 = E.add(x, E.linear(o, p.projW, p.projB));
    const h2 = E.layerNorm(x1, p.ln2w, p.ln2b, 1e-6);
    const out = E.add(x1, E.linear(E.gelu(E.linear(h2, p.fc1W, p.fc1B)), p.fc2W, p.fc2B));
    const loss = E.mean(out);
    loss.backward();
    const v0 = loss.item();
    for (const t of Object.values(p)) { t.grad?.dispose(); t.grad = null; }
    return v0;
  });
}

function tfBlockLoss(tf: TF, p: Record<string, import('@tensorflow/tfjs').Variable>): import('@tensorflow/tfjs').Scalar {
  const ln = (x: import('@tensorflow/tfjs').Tensor, w: import('@tensorflow/tfjs').Tensor, b: import('@tensorflow/tfjs').Tensor) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-6))), w), b);
  };
  const lin = (x: import('@tensorflow/tfjs').Tensor, w: import('@tensorflow/tfjs').Tensor, b: import('@tensorflow/tfjs').Tensor) =>
    tf.add(tf.reshape(tf.matMul(tf.reshape(x, [-1, x.shape[x.shape.length - 1]]), w, false, true), [...x.shape.slice(0, -1), w.shape[0]]), b);
  const x = p.x;
  const h1 = ln(x, p.ln1w, p.ln1b);
  const qkv = tf.transpose(tf.reshape(lin(h1, p.qkvW, p.qkvB), [B, N, 3, H, DH]), [2, 0, 3, 1, 4]);
  const [q, k, v] = tf.unstack(qkv, 0);
  const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(DH)));
  const o = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B, N, D]);
  const x1 = tf.add(x, lin(o, p.projW, p.projB));
  const h2 = ln(x1, p.ln2w, p.ln2b);
  const f1 = lin(h2, p.fc1W, p.fc1B);
  const gelu = tf.mul(tf.mul(f1, 0.5), tf.add(1, tf.erf(tf.mul(f1, Math.SQRT1_2))));
  const out = tf.add(x1, lin(gelu, p.fc2W, p.fc2B));
  return tf.mean(out) as import('@tensorflow/tfjs').Scalar;
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const load0 = loadavg()[0];
  const one = createWasmBackend({ threads: 1, name: 'wasm-bench-1' });
  const all = createWasmBackend({ threads: cores, name: 'wasm-bench-all' });
  const ceiling = one.relaxed ? CEIL_RELAXED : CEIL_PLAIN;
  const peak = measuredPeak(one);
  log(`aptune engine benchmark: build ${one.rt.build}, ${cores} cores, load average ${load0.toFixed(2)} at start`);
  log(`ceilings: TOOLCHAIN.md ${ceiling} GFLOP/s (Zen 4 @ 3.6 GHz); measured here (8 independent 128-bit ${one.relaxed ? 'FMA' : 'mul+add'} chains) ${peak.toFixed(1)} GFLOP/s`);
  const tf = await loadTf();
  log(`tfjs ${tf.version.tfjs} backend ${tf.getBackend()} (1 thread)`);

  const matmul: Record<string, unknown>[] = [];
  for (const [M, K, N] of SHAPES) {
    const res = await matmulRow(tf, one, all, M, K, N);
    const [o1, oN, t] = res.med;
    const [b1, bN, bt] = res.best;
    const row = {
      shape: `${M}x${K}x${N}`, ours1: o1, oursAll: oN, tfjs1: t,
      ratio1VsTfjs: o1 / t, scaling: oN / o1, pctCeiling1: (100 * o1) / ceiling, pctMeasuredPeak1: (100 * o1) / peak,
      tfjsPctMeasuredPeak: (100 * t) / peak,
      best: { ours1: b1, oursAll: bN, tfjs1: bt, ratio1VsTfjs: b1 / bt, scaling: bN / b1 },
    };
    matmul.push(row);
    log(`matmul ${row.shape} ([M,K]@[K,N]): ours 1 thread ${o1.toFixed(1)} GFLOP/s (${row.pctCeiling1.toFixed(0)}% of the ${ceiling} ceiling, ${row.pctMeasuredPeak1.toFixed(0)}% of the measured peak), ` +
      `${cores} threads ${oN.toFixed(1)} (x${row.scaling.toFixed(2)}); tfjs-wasm ${t.toFixed(1)}; ours/tfjs ${row.ratio1VsTfjs.toFixed(2)}x ` +
      `[best runs: ${b1.toFixed(1)} / ${bN.toFixed(1)} (x${(bN / b1).toFixed(2)}) / tfjs ${bt.toFixed(1)}]`);
  }

  // block forward + backward
  const data = initData();
  const reps = QUICK ? 2 : 3;
  const blockOurs = async (be: WasmBackend) => {
    const p: Record<string, E.Tensor> = {};
    for (const [k, d] of Object.entries(data)) p[k] = E.tensor(d, k === 'x' ? [B, N, D] : PARAM_SHAPES[k], { backend: be }).requiresGrad_(true).keep();
    let lossV = 0;
    const ms = await timeMs(() => { lossV = oursBlockStep(p); }, 1, reps);
    for (const t of Object.values(p)) t.dispose();
    return { ms, loss: lossV };
  };
  const b1 = await blockOurs(one);
  const bN = await blockOurs(all);
  const tp: Record<string, import('@tensorflow/tfjs').Variable> = {};
  for (const [k, d] of Object.entries(data)) tp[k] = tf.variable(tf.tensor(d, k === 'x' ? [B, N, D] : PARAM_SHAPES[k]), true, `bench_${k}`);
  let tfLoss = 0;
  const tfMs = await timeMs(() => {
    const { value, grads } = tf.variableGrads(() => tfBlockLoss(tf, tp), Object.values(tp));
    tfLoss = value.dataSync()[0];
    for (const g of Object.values(grads)) g.dataSync();
    value.dispose();
    tf.dispose(Object.values(grads));
  }, QUICK ? 0 : 1, 1); // tfjs takes tens of seconds per step: one warm-up, one timed run
  tf.dispose(Object.values(tp));
  const block = {
    shape: `B${B} N${N} D${D} H${H} MLP${F}`, ours1Ms: b1.ms, oursAllMs: bN.ms, tfjs1Ms: tfMs,
    speedup1VsTfjs: tfMs / b1.ms, speedupAllVsTfjs: tfMs / bN.ms, lossOurs: b1.loss, lossTfjs: tfLoss,
  };
  log(`block fwd+bwd (${block.shape}): ours 1 thread ${b1.ms.toFixed(0)} ms, ${cores} threads ${bN.ms.toFixed(0)} ms; ` +
    `tfjs-wasm ${tfMs.toFixed(0)} ms; tfjs/ours ${block.speedup1VsTfjs.toFixed(2)}x (1 thread), ${block.speedupAllVsTfjs.toFixed(2)}x (all cores); ` +
    `loss ours ${b1.loss.toPrecision(6)} tfjs ${tfLoss.toPrecision(6)}`);
  const load1 = loadavg()[0];
  log(`load average ${load1.toFixed(2)} at end (two-thread scaling is only meaningful on an idle machine)`);
  await one.rt.terminate();
  await all.rt.terminate();
  if (JSON_OUT) {
    console.log(JSON.stringify({
      build: one.rt.build, cores, loadavgStart: load0, loadavgEnd: load1, ceilingGflops: ceiling, measuredPeakGflops: peak, matmul, block,
      targets: {
        matmul1VsTfjs: 1.6, matmul2ThreadScaling: 1.8, blockFasterThanTfjs: true,
      },
    }, null, 1));
  }
}

await main();
