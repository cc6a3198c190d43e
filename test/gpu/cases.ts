// Kernel-level conformance cases shared by the GPU suite (test/gpu/ops.test.ts) and the CPU plan tests: each case
// names an op, its input data (generated on the host from a fixed seed), its output shapes and attributes, and the
// tolerance against the reference backend. Running a case talks only to Backend.alloc/write/kernels/read, so it
// checks the kernels themselves, independent of ops.ts.
// Invariants: every op of OP_NAMES has at least one case (checked by ops.test.ts); data is deterministic.

import type { Backend, DType, OpAttrs, OpName, TensorRef, TypedArray } from '../../engine/backend.ts';
import { hostRandom } from '../helpers.ts';

export interface CaseInput {
  shape: number[];
  dtype?: 'float32' | 'int32';
  /** uniform range for floats (default [-2, 2)); for int32 the integer range [lo, hi) (default [-5, 5)) */
  lo?: number;
  hi?: number;
  /** explicit values (overrides the random range) */
  values?: number[];
}
export interface CaseOutput {
  shape: number[];
  dtype?: 'float32' | 'int32';
}
export interface KernelCase {
  name: string;
  op: OpName;
  ins: CaseInput[];
  outs: CaseOutput[];
  attrs: OpAttrs[OpName];
  rtol?: number;
  atol?: number;
  /** in-place op: compare the inputs after the call instead of outputs */
  inplace?: boolean;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export function caseData(c: KernelCase, seed = 1): TypedArray[] {
  const rng = hostRandom(seed + c.name.length * 7919);
  return c.ins.map((inp) => {
    const n = numel(inp.shape);
    if (inp.dtype === 'int32') {
      const lo = inp.lo ?? -5, hi = inp.hi ?? 5;
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = inp.values ? inp.values[i] : lo + Math.floor((hi - lo) * rng());
      return a;
    }
    const lo = inp.lo ?? -2, hi = inp.hi ?? 2;
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = inp.values ? inp.values[i] : lo + (hi - lo) * rng();
    return a;
  });
}

/**
 * Runs a case on `backend` with `data` at a non-zero storage offset (so kernels must honour TensorRef.offset);
 * returns the outputs (or the in-place inputs) read back, and frees everything.
 */
export function runCase(backend: Backend, c: KernelCase, data: TypedArray[]): TypedArray[] {
  const PAD = 3;
  const refs: TensorRef[] = [];
  const mk = (shape: number[], dtype: DType, values?: TypedArray): TensorRef => {
    const storage = backend.alloc(numel(shape) + PAD, dtype);
    if (values) backend.write(storage, values, PAD);
    const r: TensorRef = { storage, offset: PAD, shape, dtype };
    refs.push(r);
    return r;
  };
  try {
    const ins = c.ins.map((inp, i) => mk(inp.shape, inp.dtype ?? 'float32', data[i]));
    const outs = c.outs.map((o) => mk(o.shape, o.dtype ?? 'float32'));
    const kernel = backend.kernels[c.op] as ((i: TensorRef[], o: TensorRef[], a: unknown) => void) | undefined;
    if (!kernel) throw new Error(`${backend.name} has no kernel for ${c.op}`);
    kernel(ins, outs, c.attrs);
    const which = c.inplace ? ins : outs;
    return which.map((r) => backend.read(r.storage, r.offset, numel(r.shape)));
  } finally {
    for (const r of refs) backend.free(r.storage);
  }
}

const F = (shape: number[], lo?: number, hi?: number): CaseInput => ({ shape, lo, hi });
const I = (shape: number[], lo?: number, hi?: number, values?: number[]): CaseInput => ({ shape, dtype: 'int32', lo, hi, values });
const O = (shape: number[]): CaseOutput => ({ shape });
const OI = (shape: number[]): CaseOutput => ({ shape, dtype: 'int32' });
const bshape = (a: number[], b: number[]) => {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    out.push(x === 1 ? y : x);
  }
  return out;
};

const BINARY = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
const UNARY = ['neg', 'exp', 'tanh', 'sigmoid', 'relu', 'erf', 'gelu', 'quick_gelu', 'abs', 'sign'] as const;

export function kernelCases(): KernelCase[] {
  const cs: KernelCase[] = [];
  const push = (c: KernelCase) => cs.push(c);
  const pairs: [number[], number[]][] = [[[5], [5]], [[2, 3, 4], [3, 1]], [[4, 1, 6], [1, 5, 1]], [[], [3]], [[3000], [3000]]];
  for (const op of BINARY) {
    for (const [a, b] of pairs) {
      const hiB = op === 'div' ? 3 : 2, loB = op === 'div' ? 0.5 : -2;
      push({ name: `${op} ${JSON.stringify(a)} ${JSON.stringify(b)}`, op, ins: [F(a), F(b, loB, hiB)], outs: [O(bshape(a, b))], attrs: {} as never, rtol: 1e-6, atol: 1e-7 });
    }
    const divI = op === 'div';
    push({ name: `${op} int32`, op, ins: [I([3, 4]), divI ? I([4], 1, 4) : I([4])], outs: [OI([3, 4])], attrs: {} as never, rtol: 0, atol: 0 });
  }
  push({ name: 'pow', op: 'pow', ins: [F([3, 4], 0.1, 3), F([4], -2, 2)], outs: [O([3, 4])], attrs: {}, rtol: 2e-6 });
  push({ name: 'where float cond', op: 'where', ins: [{ shape: [2, 3, 1], values: [0, 1, 1, 0, 0, 1] }, F([3, 4]), F([2, 1, 4])], outs: [O([2, 3, 4])], attrs: {}, rtol: 0, atol: 0 });
  push({ name: 'where int cond', op: 'where', ins: [I([4], 0, 2), I([3, 4]), I([3, 1])], outs: [OI([3, 4])], attrs: {}, rtol: 0, atol: 0 });
  for (const op of UNARY) push({ name: op, op, ins: [F([3, 7, 5], -4, 4)], outs: [O([3, 7, 5])], attrs: {} as never, rtol: 3e-6, atol: 1e-6 });
  for (const op of ['log', 'sqrt', 'rsqrt'] as const) push({ name: op, op, ins: [F([6, 9], 0.05, 5)], outs: [O([6, 9])], attrs: {} as never, rtol: 2e-6, atol: 1e-7 });
  for (const op of ['neg', 'abs', 'sign', 'relu'] as const) push({ name: `${op} int32`, op, ins: [I([17])], outs: [OI([17])], attrs: {} as never, rtol: 0, atol: 0 });
  for (const op of ['gelu_backward', 'quick_gelu_backward'] as const) push({ name: op, op, ins: [F([4, 33], -4, 4), F([4, 33])], outs: [O([4, 33])], attrs: {} as never, rtol: 3e-6, atol: 1e-6 });
  push({ name: 'affine', op: 'affine', ins: [F([5, 6])], outs: [O([5, 6])], attrs: { scale: 1.5, shift: -0.25 }, rtol: 1e-6, atol: 1e-7 });
  push({ name: 'affine int32', op: 'affine', ins: [I([9])], outs: [OI([9])], attrs: { scale: 2, shift: 3 }, rtol: 0, atol: 0 });
  for (const e of [2, 3, 0.5, -1.5]) push({ name: `pow_scalar ${e}`, op: 'pow_scalar', ins: [F([7, 3], 0.1, 3)], outs: [O([7, 3])], attrs: { exponent: e }, rtol: 2e-6 });

  const sums: [number[], number[]][] = [[[4, 5, 6], [1]], [[4, 5, 6], [0, 2]], [[4, 5, 6], [2]], [[4, 5, 6], [0, 1, 2]], [[3000, 64], [0]], [[64, 3000], [1]], [[7], []]];
  for (const [s, axes] of sums) {
    const out = s.filter((_, i) => !axes.includes(i));
    // float32 partial sums (tree / atomics) against a float64 reference: the absolute error grows like sqrt(R)
    const R = s.filter((_, i) => axes.includes(i)).reduce((a, b) => a * b, 1);
    push({ name: `sum ${JSON.stringify(s)} ${JSON.stringify(axes)}`, op: 'sum', ins: [F(s)], outs: [O(out)], attrs: { axes, keepdims: false }, rtol: 1e-5, atol: 2e-6 * Math.sqrt(R) + 1e-6 });
  }
  push({ name: 'sum int32', op: 'sum', ins: [I([6, 5])], outs: [OI([5])], attrs: { axes: [0], keepdims: false }, rtol: 0, atol: 0 });
  for (const axis of [0, 1, 2]) {
    const s = [4, 5, 6];
    const out = s.filter((_, i) => i !== axis);
    push({ name: `max axis ${axis}`, op: 'max', ins: [I(s, -3, 3)], outs: [OI(out), OI(out)], attrs: { axis, keepdims: false }, rtol: 0, atol: 0 });
    push({ name: `max float axis ${axis}`, op: 'max', ins: [F(s)], outs: [O(out), OI(out)], attrs: { axis, keepdims: false }, rtol: 0, atol: 0 });
    push({ name: `argmax axis ${axis}`, op: 'argmax', ins: [F(s)], outs: [OI(out)], attrs: { axis, keepdims: false }, rtol: 0, atol: 0 });
  }
  push({ name: 'max NaN first', op: 'max', ins: [{ shape: [2, 5], values: [1, NaN, 3, NaN, 2, 4, 4, 1, 0, 4] }], outs: [O([2]), OI([2])], attrs: { axis: 1, keepdims: false }, rtol: 0, atol: 0 });
  push({ name: 'argmax long rows', op: 'argmax', ins: [F([3, 5000])], outs: [OI([3])], attrs: { axis: 1, keepdims: false }, rtol: 0, atol: 0 });

  const mm: [number[], number[], boolean, boolean][] = [
    [[7, 8], [8, 9], false, false], [[8, 7], [8, 9], true, false], [[7, 8], [9, 8], false, true], [[8, 7], [9, 8], true, true],
    [[2, 3, 5, 4], [4, 6], false, false], [[3, 1, 4, 5], [2, 5, 6], false, false], [[4, 5, 6], [4, 6, 7], false, false],
    [[5, 6], [3, 6, 2], false, false], [[2, 64, 96], [128, 96], false, true], [[3, 2, 6, 5], [3, 1, 6, 4], true, false],
  ];
  for (const [a, b, tA, tB] of mm) {
    const M = tA ? a[a.length - 1] : a[a.length - 2], N = tB ? b[b.length - 2] : b[b.length - 1];
    const batch = bshape(a.slice(0, -2), b.slice(0, -2));
    push({ name: `matmul ${JSON.stringify(a)}${tA ? 'T' : ''} x ${JSON.stringify(b)}${tB ? 'T' : ''}`, op: 'matmul', ins: [F(a, -1, 1), F(b, -1, 1)], outs: [O([...batch, M, N])], attrs: { transA: tA, transB: tB }, rtol: 1e-5, atol: 1e-5 });
  }

  for (const op of ['softmax', 'log_softmax'] as const) {
    push({ name: `${op}`, op, ins: [F([3, 4, 7], -5, 5)], outs: [O([3, 4, 7])], attrs: {}, rtol: 1e-5, atol: 1e-6 });
    push({ name: `${op} mask [3,1,7]`, op, ins: [F([3, 4, 7], -5, 5), { shape: [3, 1, 7], values: Array.from({ length: 21 }, (_, i) => (i % 4 === 0 ? -1e9 : 0.5 * (i % 3))) }], outs: [O([3, 4, 7])], attrs: {}, rtol: 1e-5, atol: 1e-6 });
    push({ name: `${op} mask [7]`, op, ins: [F([2, 7]), F([7])], outs: [O([2, 7])], attrs: {}, rtol: 1e-5, atol: 1e-6 });
    push({ name: `${op} long rows`, op, ins: [F([2, 1500], -8, 8)], outs: [O([2, 1500])], attrs: {}, rtol: 1e-5, atol: 1e-6 });
  }
  for (const op of ['softmax_backward', 'log_softmax_backward'] as const) {
    push({ name: op, op, ins: [F([5, 9], op === 'softmax_backward' ? 0 : -4, op === 'softmax_backward' ? 0.3 : -0.1), F([5, 9])], outs: [O([5, 9])], attrs: {}, rtol: 1e-5, atol: 1e-6 });
    push({ name: `${op} long`, op, ins: [F([2, 2000], -3, 0), F([2, 2000])], outs: [O([2, 2000])], attrs: {}, rtol: 1e-4, atol: 2e-4 });
  }
  for (const [R, D] of [[6, 10], [3, 700], [300, 33]]) {
    push({ name: `layer_norm ${R}x${D}`, op: 'layer_norm', ins: [F([R, D], -3, 3), F([D]), F([D])], outs: [O([R, D]), O([R]), O([R])], attrs: { eps: 1e-5 }, rtol: 1e-5, atol: 1e-5 });
    push({ name: `layer_norm_backward ${R}x${D}`, op: 'layer_norm_backward', ins: [F([R, D]), F([R, D], -3, 3), F([D]), F([R], -1, 1), F([R], 0.5, 2)], outs: [O([R, D]), O([D]), O([D])], attrs: {}, rtol: 1e-4, atol: 1e-4 });
  }
  push({ name: 'dropout', op: 'dropout', ins: [F([5, 33])], outs: [O([5, 33]), O([5, 33])], attrs: { p: 0.3, seed: 7, offset: 12 }, rtol: 0, atol: 0 });
  for (const C of [11, 3000]) {
    const labels = [0, C - 1, -100, 3, 5, 1];
    push({ name: `cross_entropy C=${C}`, op: 'cross_entropy', ins: [F([6, C], -4, 4), I([6], 0, 0, labels)], outs: [O([6])], attrs: { ignoreIndex: -100 }, rtol: 1e-5, atol: 1e-5 });
    push({ name: `cross_entropy_backward C=${C}`, op: 'cross_entropy_backward', ins: [F([6, C], -4, 4), I([6], 0, 0, labels), F([6])], outs: [O([6, C])], attrs: { ignoreIndex: -100 }, rtol: 1e-5, atol: 1e-6 });
  }
  push({ name: 'bce_with_logits', op: 'bce_with_logits', ins: [F([4, 9], -6, 6), F([4, 9], 0, 1)], outs: [O([4, 9])], attrs: {}, rtol: 1e-5, atol: 1e-6 });
  push({ name: 'bce_with_logits_backward', op: 'bce_with_logits_backward', ins: [F([4, 9], -6, 6), F([4, 9], 0, 1), F([4, 9])], outs: [O([4, 9])], attrs: {}, rtol: 1e-5, atol: 1e-6 });

  push({ name: 'index_select axis 1', op: 'index_select', ins: [F([5, 4, 3]), I([3], 0, 0, [3, 0, 3])], outs: [O([5, 3, 3])], attrs: { axis: 1 }, rtol: 0, atol: 0 });
  push({ name: 'index_select axis 0 int32', op: 'index_select', ins: [I([6, 2]), I([4], 0, 6)], outs: [OI([4, 2])], attrs: { axis: 0 }, rtol: 0, atol: 0 });
  push({ name: 'index_add', op: 'index_add', ins: [F([5, 3, 3]), I([3], 0, 0, [1, 1, 3])], outs: [O([5, 4, 3])], attrs: { axis: 1, size: 4 }, rtol: 1e-6, atol: 1e-6 });
  push({ name: 'gather axis 1', op: 'gather', ins: [F([4, 5]), I([4, 3], 0, 5)], outs: [O([4, 3])], attrs: { axis: 1 }, rtol: 0, atol: 0 });
  push({ name: 'gather axis 0', op: 'gather', ins: [F([4, 5]), I([2, 5], 0, 4)], outs: [O([2, 5])], attrs: { axis: 0 }, rtol: 0, atol: 0 });
  push({ name: 'scatter_add', op: 'scatter_add', ins: [F([4, 3]), I([4, 3], 0, 5)], outs: [O([4, 5])], attrs: { axis: 1, shape: [4, 5] }, rtol: 1e-6, atol: 1e-6 });

  push({ name: 'permute 0231', op: 'permute', ins: [F([2, 3, 4, 5])], outs: [O([2, 4, 5, 3])], attrs: { perm: [0, 2, 3, 1] }, rtol: 0, atol: 0 });
  push({ name: 'permute 3120 int32', op: 'permute', ins: [I([2, 3, 4, 5])], outs: [OI([5, 3, 2, 4])], attrs: { perm: [3, 1, 0, 2] }, rtol: 0, atol: 0 });
  push({ name: 'permute identity', op: 'permute', ins: [F([3, 4])], outs: [O([3, 4])], attrs: { perm: [0, 1] }, rtol: 0, atol: 0 });
  push({ name: 'slice', op: 'slice', ins: [F([4, 6, 5])], outs: [O([2, 6, 2])], attrs: { starts: [1, 0, 2], ends: [3, 6, 4] }, rtol: 0, atol: 0 });
  push({ name: 'pad', op: 'pad', ins: [F([3, 4])], outs: [O([6, 7])], attrs: { pads: [[1, 2], [0, 3]], value: -1.5 }, rtol: 0, atol: 0 });
  push({ name: 'pad int32', op: 'pad', ins: [I([2, 2, 3])], outs: [OI([2, 4, 4])], attrs: { pads: [[0, 0], [2, 0], [0, 1]], value: 7 }, rtol: 0, atol: 0 });
  for (const axis of [0, 1, 2]) {
    const shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]].map((s, k) => s.map((d, i) => (i === axis ? d + k : d)));
    const out = shapes[0].map((d, i) => (i === axis ? shapes.reduce((a, s) => a + s[i], 0) : d));
    push({ name: `concat axis ${axis}`, op: 'concat', ins: shapes.map((s) => F(s)), outs: [O(out)], attrs: { axis }, rtol: 0, atol: 0 });
  }
  push({ name: 'expand', op: 'expand', ins: [F([3, 1, 4])], outs: [O([2, 3, 5, 4])], attrs: { shape: [2, 3, 5, 4] }, rtol: 0, atol: 0 });
  push({ name: 'cast float->int32', op: 'cast', ins: [F([20], -50, 50)], outs: [OI([20])], attrs: { dtype: 'int32' }, rtol: 0, atol: 0 });
  push({ name: 'cast int32->float', op: 'cast', ins: [I([20], -1000, 1000)], outs: [O([20])], attrs: { dtype: 'float32' }, rtol: 0, atol: 0 });

  for (const ac of [false, true]) {
    push({ name: `resize_bilinear ac=${ac}`, op: 'resize_bilinear', ins: [F([2, 3, 5, 7])], outs: [O([2, 3, 9, 4])], attrs: { outH: 9, outW: 4, alignCorners: ac }, rtol: 1e-6, atol: 1e-6 });
    push({ name: `resize_bilinear_backward ac=${ac}`, op: 'resize_bilinear_backward', ins: [F([2, 3, 9, 4])], outs: [O([2, 3, 5, 7])], attrs: { inH: 5, inW: 7, alignCorners: ac }, rtol: 1e-5, atol: 1e-6 });
    push({ name: `resize_bicubic ac=${ac}`, op: 'resize_bicubic', ins: [F([1, 2, 6, 6])], outs: [O([1, 2, 9, 11])], attrs: { outH: 9, outW: 11, alignCorners: ac }, rtol: 1e-5, atol: 1e-6 });
  }
  push({ name: 'fill', op: 'fill', ins: [], outs: [O([3, 5])], attrs: { value: 2.5 }, rtol: 0, atol: 0 });
  push({ name: 'fill int32', op: 'fill', ins: [], outs: [OI([7])], attrs: { value: -3 }, rtol: 0, atol: 0 });
  push({ name: 'random_uniform', op: 'random_uniform', ins: [], outs: [O([1001])], attrs: { seed: 5, offset: 8, low: -1, high: 3 }, rtol: 0, atol: 0 });
  push({ name: 'random_uniform big seed', op: 'random_uniform', ins: [], outs: [O([257])], attrs: { seed: 2 ** 40 + 3, offset: 2 ** 33, low: 0, high: 1 }, rtol: 0, atol: 0 });
  push({ name: 'random_normal', op: 'random_normal', ins: [], outs: [O([999])], attrs: { seed: 2 ** 40 + 3, offset: 4, mean: 1, std: 2 }, rtol: 0, atol: 1e-6 });
  push({ name: 'adamw_step', op: 'adamw_step', ins: [F([257]), F([257]), F([257], -0.1, 0.1), F([257], 0, 0.05)], outs: [], attrs: { lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01, step: 3 }, rtol: 1e-6, atol: 1e-9, inplace: true });
  push({ name: 'sgd_step momentum', op: 'sgd_step', ins: [F([100]), F([100]), F([100])], outs: [], attrs: { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 }, rtol: 1e-6, atol: 1e-9, inplace: true });
  push({ name: 'sgd_step plain', op: 'sgd_step', ins: [F([100]), F([100])], outs: [], attrs: { lr: 0.1, momentum: 0, weightDecay: 0 }, rtol: 1e-6, atol: 1e-9, inplace: true });
  return cs;
}
