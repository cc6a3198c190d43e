// Shared test helpers: allclose with a message naming the worst element, the list of non-reference backends under
// test (printing "skipping X: reason" for unavailable ones), a leak guard, a finite-difference gradient check, and
// `aptune` run as a child process that the kill tests can SIGKILL (spawnAptune).
// Does not register backends itself beyond importing engine/index.ts.

import { spawn } from 'node:child_process';
import { Tensor, backendStatus, liveTensors, noGrad, scope, tensor, type TypedArray } from '../engine/index.ts';

type Numeric = Tensor | ArrayLike<number> | unknown[] | number;

function toFlat(x: Numeric): { data: ArrayLike<number>; shape: readonly number[] | null } {
  if (x instanceof Tensor) return { data: x.toArray(), shape: x.shape };
  if (typeof x === 'number') return { data: [x], shape: null };
  if (Array.isArray(x)) return { data: (x as unknown[]).flat(Infinity as 1) as number[], shape: null };
  return { data: x as ArrayLike<number>, shape: null };
}

export interface CloseOpts {
  rtol?: number;
  atol?: number;
  msg?: string;
}

/**
 * Assert |a - e| <= atol + rtol * |e| elementwise (NaN matches NaN, infinities must match exactly). Shapes must match
 * when both are tensors. The error names the worst element (flat index), both values and the tolerance.
 */
export function allclose(actual: Numeric, expected: Numeric, opts: CloseOpts = {}): void {
  const rtol = opts.rtol ?? 1e-5, atol = opts.atol ?? 1e-6;
  const a = toFlat(actual), e = toFlat(expected);
  const label = opts.msg ? `${opts.msg}: ` : '';
  if (a.shape && e.shape && (a.shape.length !== e.shape.length || a.shape.some((d, i) => d !== e.shape![i]))) {
    throw new Error(`${label}shape [${a.shape}] != expected [${e.shape}]`);
  }
  if (a.data.length !== e.data.length) throw new Error(`${label}length ${a.data.length} != expected ${e.data.length}`);
  let worst = -1, worstExcess = 0, bad = 0;
  for (let i = 0; i < a.data.length; i++) {
    const av = a.data[i], ev = e.data[i];
    if (Number.isNaN(av) && Number.isNaN(ev)) continue;
    if (!Number.isFinite(ev) || !Number.isFinite(av)) {
      if (av !== ev) { bad++; if (worst < 0 || worstExcess !== Infinity) { worst = i; worstExcess = Infinity; } }
      continue;
    }
    const excess = Math.abs(av - ev) - (atol + rtol * Math.abs(ev));
    if (excess > 0) {
      bad++;
      if (excess > worstExcess || worst < 0) { worst = i; worstExcess = excess; }
    }
  }
  if (bad > 0) {
    const av = a.data[worst], ev = e.data[worst];
    throw new Error(`${label}${bad}/${a.data.length} elements differ; worst at [${worst}]: got ${av}, expected ${ev} ` +
      `(|diff| ${Math.abs(av - ev).toExponential(3)}, tol ${(atol + rtol * Math.abs(ev)).toExponential(3)}, rtol ${rtol}, atol ${atol})`);
  }
}

/**
 * Available computing backends other than the reference; prints a visible "skipping X: reason" line for each
 * unavailable one. Backends registered with a negative priority are auxiliary (never auto-selected, e.g. the
 * work-counting 'shape' backend, test doubles) and are not listed.
 */
export function backendsUnderTest(): string[] {
  const out: string[] = [];
  for (const s of backendStatus()) {
    if (s.name === 'ref' || s.priority < 0) continue;
    if (s.available) out.push(s.name);
    else console.log(`skipping ${s.name}: ${s.reason}`);
  }
  return out;
}

/** Run fn and throw if the live tensor count differs afterwards (fn's result is returned untouched). */
export function noLeaks<T>(fn: () => T, label = 'leak check'): T {
  const before = liveTensors();
  const r = fn();
  const after = liveTensors();
  if (after !== before) throw new Error(`${label}: live tensors ${before} -> ${after}`);
  return r;
}

/** Wrap a uvu test body so it fails if it leaks tensors. */
export function leakGuard(fn: () => void): () => void {
  return () => noLeaks(fn, 'test leaked tensors');
}

/** Deterministic host random numbers for tests (mulberry32). */
export function hostRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random float tensor with values in [lo, hi) from a host generator. */
export function randomTensor(shape: readonly number[], rng: () => number, opts: { dtype?: 'float32' | 'float64'; lo?: number; hi?: number; backend?: string } = {}): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const lo = opts.lo ?? -1, hi = opts.hi ?? 1;
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * rng();
  return tensor(opts.dtype === 'float64' ? data : Float32Array.from(data), shape.slice(), { dtype: opts.dtype ?? 'float32', backend: opts.backend });
}

/**
 * Central finite-difference gradient check in float64. `f` maps the inputs to any tensor; the checked scalar is
 * sum(f(x) * R) with a fixed random R. `wrt` lists the input indices to check (default: every float input).
 */
export function gradcheck(name: string, f: (xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; rtol?: number; atol?: number; wrt?: number[] } = {}): void {
  const eps = opts.eps ?? 1e-6, rtol = opts.rtol ?? 1e-5, atol = opts.atol ?? 1e-7;
  const wrt = opts.wrt ?? inputs.map((t, i) => (t.dtype === 'float64' ? i : -1)).filter((i) => i >= 0);
  for (const i of wrt) if (inputs[i].dtype !== 'float64') throw new Error(`gradcheck ${name}: input ${i} must be float64`);
  noLeaks(() => scope(() => {
    const rng = hostRandom(1234);
    const leaves = inputs.map((t, i) => (wrt.includes(i) ? t.clone().requiresGrad_() : t));
    const out = f(leaves);
    const R = randomTensor(out.shape, rng, { dtype: 'float64' });
    const loss = out.mul(R).sum();
    loss.backward();
    const Rh = R.toArray();
    const evalAt = (xs: Tensor[]): number => noGrad(() => scope(() => {
      const o = f(xs).toArray();
      let s = 0;
      for (let k = 0; k < o.length; k++) s += o[k] * Rh[k];
      return s;
    }));
    for (const i of wrt) {
      const g = leaves[i].grad;
      const analytic: ArrayLike<number> = g ? g.toArray() : new Float64Array(inputs[i].size);
      const base = inputs[i].toArray() as TypedArray;
      const numeric = new Float64Array(base.length);
      for (let j = 0; j < base.length; j++) {
        const plus = Float64Array.from(base), minus = Float64Array.from(base);
        plus[j] += eps;
        minus[j] -= eps;
        const xsP = inputs.slice(), xsM = inputs.slice();
        xsP[i] = tensor(plus, inputs[i].shape.slice(), { dtype: 'float64', backend: inputs[i].backend });
        xsM[i] = tensor(minus, inputs[i].shape.slice(), { dtype: 'float64', backend: inputs[i].backend });
        numeric[j] = (evalAt(xsP) - evalAt(xsM)) / (2 * eps);
        xsP[i].dispose();
        xsM[i].dispose();
      }
      allclose(analytic, numeric, { rtol, atol, msg: `gradcheck ${name}, input ${i}` });
    }
    for (const l of leaves) if (l.grad) { l.grad.dispose(); l.grad = null; }
  }), `gradcheck ${name}`);
}

/** The wasm backend module, or null with the reason it cannot run here (a test file then skips visibly). */
export async function probeWasm(label: string): Promise<{ mod: typeof import('../engine/backends/wasm.ts') | null; why: string }> {
  try {
    const mod = await import('../engine/backends/wasm.ts');
    mod.createWasmBackend({ threads: 1, name: `wasm-probe-${label}` });
    return { mod, why: '' };
  } catch (e) {
    return { mod: null, why: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * `node bin/aptune.js ARGS` in the repository root with extra environment (APTUNE_FAULT_ATOMIC for the kill tests),
 * SIGKILLed after killAfterMs when given; resolves with its exit code or signal, wall ms and stdout + stderr.
 */
export function spawnAptune(args: string[], o: { env?: Record<string, string>; killAfterMs?: number } = {}): Promise<{ code: number | null; signal: string | null; ms: number; log: string }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/aptune.js', ...args], { cwd: new URL('..', import.meta.url).pathname, env: { ...process.env, ...(o.env ?? {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => { log += d; });
    child.stderr.on('data', (d) => { log += d; });
    const timer = o.killAfterMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), o.killAfterMs);
    child.on('exit', (code, signal) => { if (timer) clearTimeout(timer); resolve({ code, signal, ms: Date.now() - t0, log }); });
  });
}
