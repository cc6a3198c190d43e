// `apply`, the only path from the API to a kernel, and the types of the op table it dispatches through.
// apply checks inputs (disposed, same backend, dtypes, arity from op-contract.ts), allocates outputs from the op's
// shape rule, calls the backend kernel, checks (in test mode) that the kernel allocated nothing else, and records the
// graph node with the op's gradient rule.
// Does not: declare any op (op-contract.ts names them, op-table.ts gives their shape and gradient rules and installs
// the table here on import: the rules call the functional API, which calls apply, so the table is handed in rather
// than imported and engine/ has no import cycle), or implement kernels (engine/backends/*).

import { OutOfMemoryError, type Backend, type DType, type Kernel, type OpAttrs, type OpName } from './backend.ts';
import { OP_CONTRACT } from './op-contract.ts';
import { Tensor } from './tensor.ts';
import { backwardActive, isGradEnabled, record } from './autograd.ts';
import { backendByName, getBackend } from './registry.ts';
import { kernelChecks } from './memory.ts';
import { numel, shapeStr, type Shape } from './shape.ts';

export interface OutSpec {
  shape: number[];
  dtype: DType;
}
/** For creation ops (no inputs): the requested output. */
export interface CreateSpec {
  shape: readonly number[];
  dtype: DType;
}

export interface GradCtx<K extends OpName> {
  readonly attrs: OpAttrs[K];
  /** inputs (only those listed in `saves.inputs` may be read) */
  readonly inputs: readonly Tensor[];
  /** outputs (only those listed in `saves.outputs` may be read) */
  readonly outputs: readonly Tensor[];
  readonly inShapes: readonly Shape[];
  readonly inDtypes: readonly DType[];
}

export interface OpDef<K extends OpName> {
  /** shape + dtype rule; throws naming the op and the shapes at fault */
  infer(shapes: readonly Shape[], dtypes: readonly DType[], attrs: OpAttrs[K], create?: CreateSpec): OutSpec[];
  /** gradient rule: incoming output grads (null = zero) -> input grads (null = none); absent = not differentiable */
  grad?(c: GradCtx<K>, g: readonly (Tensor | null)[], needs: readonly boolean[]): (Tensor | null)[];
  /** tensors the gradient rule reads (kept alive by the graph node) */
  saves?: { inputs?: number[]; outputs?: number[] };
  /** when given, replaces `saves`: what the rule reads given which inputs need a gradient (e.g. matmul keeps A only
   *  for dB: a frozen weight's op saves nothing for it). The rule then sees only those needs (later changes of
   *  requiresGrad do not make it read what was not saved). */
  savesFor?(needs: readonly boolean[]): { inputs?: number[]; outputs?: number[] };
}

export type OpTable = { [K in OpName]: OpDef<K> };

let table: OpTable | null = null;

/** Called once by op-table.ts when it loads. */
export function installOpTable(t: OpTable): void {
  table = t;
}

export function resolveBackend(b: string | Backend): Backend {
  return typeof b === 'string' ? backendByName(b) : b;
}

function bytesOf(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}

/**
 * Run op `op` on `inputs`; returns its outputs (none for in-place ops). Creation ops pass `create`
 * (output shape/dtype/backend). The only path from the API to a kernel.
 */
export function apply<K extends OpName>(op: K, inputs: readonly Tensor[], attrs: OpAttrs[K], create?: CreateSpec & { backend?: string | Backend }): Tensor[] {
  if (!table) throw new Error(`${op}: the op table is not installed (import engine/index.ts, which loads engine/op-table.ts)`);
  const def = table[op] as OpDef<K>;
  const arity = OP_CONTRACT[op].arity as number | readonly [number, number];
  const [lo, hi] = typeof arity === 'number' ? [arity, arity] : arity;
  if (inputs.length < lo || inputs.length > hi) throw new Error(`${op}: expected ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${inputs.length}`);
  const held = backwardActive();
  for (const t of inputs) {
    if (!(t instanceof Tensor)) throw new Error(`${op}: input is not a Tensor (${typeof t})`);
    t._check(op, held);
  }
  const backend = inputs.length ? inputs[0].backend : create?.backend ? resolveBackend(create.backend) : getBackend();
  for (const t of inputs) {
    if (t.backend !== backend) throw new Error(`${op}: tensors on two backends (${backend.name} and ${t.backend.name}); move one with .to()`);
  }
  const specs = def.infer(inputs.map((t) => t.shape), inputs.map((t) => t.dtype), attrs, create);
  const kernel = backend.kernels[op] as Kernel<K> | undefined;
  const mainDtype = inputs[0]?.dtype ?? specs[0]?.dtype ?? 'float32';
  if (!kernel) throw new Error(`${op}: backend ${backend.name} has no kernel for op ${op} (dtype ${mainDtype})`);
  for (const dt of [...inputs.map((t) => t.dtype), ...specs.map((s) => s.dtype)]) {
    if (!backend.dtypes.includes(dt)) throw new Error(`${op}: backend ${backend.name} does not support dtype ${dt}`);
  }
  const check = kernelChecks();
  const before = check ? backend.allocatedBytes() : 0;
  const outs: Tensor[] = [];
  try {
    for (const s of specs) outs.push(Tensor._alloc(backend, s.shape, s.dtype));
  } catch (e) {
    for (const o of outs) o.dispose();
    throw e instanceof OutOfMemoryError ? outOfMemory(op, backend, e, specs) : e;
  }
  const mid = check ? backend.allocatedBytes() : 0;
  const t0 = profile ? performance.now() : 0;
  try {
    kernel(inputs.map((t) => t._ref()), outs.map((t) => t._ref()), attrs);
  } catch (e) {
    for (const o of outs) o.dispose();
    if (e instanceof OutOfMemoryError) throw outOfMemory(op, backend, e, specs, ' (kernel scratch)');
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(msg.startsWith(`${op}`) ? msg : `${op} (backend ${backend.name}, dtype ${mainDtype}): ${msg}`);
  }
  if (profile) profileAdd(op, held, performance.now() - t0, profileShapes ? inputs.map((t) => shapeStr(t.shape)).join(' ') : '');
  if (check) {
    const after = backend.allocatedBytes();
    const need = specs.reduce((acc, s) => acc + numel(s.shape) * bytesOf(s.dtype), 0);
    if (after !== mid || mid - before < need) {
      for (const o of outs) o.dispose();
      throw new Error(`${op}: kernel check failed on backend ${backend.name}: outputs took ${mid - before} bytes (need ${need}), kernel left ${after - mid} bytes allocated`);
    }
  }
  if (def.grad && isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    const fwdNeeds = inputs.map((t) => t.requiresGrad);
    const saves = def.savesFor ? def.savesFor(fwdNeeds) : def.saves;
    const saveIn = saves?.inputs ?? [];
    const saveOut = saves?.outputs ?? [];
    const saved = [...saveIn.map((i) => inputs[i]), ...saveOut.map((i) => outs[i])].filter((t) => t !== undefined);
    const ctx: GradCtx<K> = {
      attrs, inputs: inputs.slice(), outputs: outs.slice(), inShapes: inputs.map((t) => t.shape), inDtypes: inputs.map((t) => t.dtype),
    };
    const rule = def.grad;
    record(op, inputs, outs, def.savesFor ? (g, needs) => rule(ctx, g, needs.map((x, i) => x && fwdNeeds[i])) : (g, needs) => rule(ctx, g, needs), saved);
  }
  return outs;
}

// ---- opt-in per-op timer (env APTUNE_PROFILE=1 or profileOps(true)); off: one null test per apply ---------------
/** One row of the per-op profile: op, phase (fwd: outside backward(); bwd: inside), calls and kernel milliseconds;
 *  with shapes on (APTUNE_PROFILE=shapes), one row per op, phase and input shapes.
 *  Times are host wall time around the kernel call: exact for synchronous backends (wasm, ref), launch time only on
 *  CUDA (asynchronous). */
export interface ProfileRow { op: string; phase: 'fwd' | 'bwd'; calls: number; ms: number; shapes?: string }
const envProfile = process.env.APTUNE_PROFILE;
let profile: Map<string, ProfileRow> | null = envProfile === '1' || envProfile === 'shapes' ? new Map() : null;
let profileShapes = envProfile === 'shapes';
function profileAdd(op: string, bwd: boolean, ms: number, shapes: string): void {
  const key = `${op} ${bwd} ${shapes}`;
  let r = profile!.get(key);
  if (!r) profile!.set(key, r = { op, phase: bwd ? 'bwd' : 'fwd', calls: 0, ms: 0, ...(shapes ? { shapes } : {}) });
  r.calls++;
  r.ms += ms;
}
/** Turns the per-op timer on (clearing it) or off. */
export function profileOps(on: boolean, opts: { shapes?: boolean } = {}): void {
  profile = on ? new Map() : null;
  profileShapes = !!opts.shapes;
}
/** The per-op rows since the timer was turned on (or last reset), largest time first. */
export function profileReport(reset = false): ProfileRow[] {
  const rows = profile ? [...profile.values()].sort((a, b) => b.ms - a.ms) : [];
  if (reset && profile) profile.clear();
  return rows;
}

/** The error a user sees when an op's outputs (or its kernel's scratch) do not fit: op, bytes, heap, ways out. */
function outOfMemory(op: string, backend: Backend, e: OutOfMemoryError, specs: readonly OutSpec[], what = ''): Error {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  const outs = specs.map((s) => `${shapeStr(s.shape)} ${s.dtype}`).join(', ');
  const err = new Error(`${op}: out of memory on backend ${backend.name}: ${mib(e.requested)} requested${what} for output ${outs}, `
    + `${mib(e.inUse)} in use of ${mib(e.capacity)}. Use a smaller batch (--batch-size), or keep the batch and split it into `
    + `micro-batches with gradient accumulation (--accumulate N), or a method that saves fewer activations. [${e.message}]`);
  (err as Error & { cause?: unknown }).cause = e;
  return err;
}

/** Tensor._alloc outside apply (tensor(), to()), with the same out-of-memory message. */
export function allocOrExplain(op: string, backend: Backend, shape: readonly number[], dtype: DType): Tensor {
  try {
    return Tensor._alloc(backend, shape, dtype);
  } catch (e) {
    throw e instanceof OutOfMemoryError ? outOfMemory(op, backend, e, [{ shape: shape.slice(), dtype }]) : e;
  }
}

export function apply1<K extends OpName>(op: K, inputs: readonly Tensor[], attrs: OpAttrs[K]): Tensor {
  return apply(op, inputs, attrs)[0];
}
