// THE op-conformance cases of every backend (DESIGN.md lesson 8: the same suite runs on every backend). Each case
// names an op of OP_NAMES, builds its inputs on the reference backend, and gives its attributes and tolerance;
// `runCase` runs it through the public `apply` on the reference and on the backend under test and compares, then
// calls the same kernel again directly with every input and output placed at a non-zero element offset inside a
// larger storage whose other elements hold a sentinel (kernels must honour TensorRef.offset, write every output
// element, and write nothing outside their views). test/engine/backends.test.ts runs the cases on every available
// backend (and `npm run test:gpu` on cuda, required); test/engine/cuda.test.ts reuses the matmul shapes for the
// host-side GEMM planning check; test/gpu/device.test.ts reuses them for the tf32/bf16 GEMM modes.
// Does not register tests (importing it is side-effect free apart from building the list).
// Invariants: case names are unique; a case's data depends only on its name (the generator is reseeded from the
// name before its inputs are built), so any subset runs in any order with the same numbers; tolerances are float32:
// rtol 1e-5 / atol 1e-5 unless a case says why it needs more (float32 accumulation over long sums where the
// reference accumulates in float64; transcendental approximations). Index outputs and int32 outputs match exactly.
import * as E from '../../engine/index.ts';
import {
  Generator, apply, backendByName, scope, tensor, type DType, type OpAttrs, type OpName, type Storage, type Tensor, type TensorRef,
  type TypedArray,
} from '../../engine/index.ts';
import { AdamW } from '../../train/optim.ts';
import { allclose, hostRandom, randomTensor } from '../helpers.ts';
import { familyOps, takesInt } from '../../engine/op-contract.ts';

export interface Case {
  op: OpName;
  name: string;
  /** inputs, created on the reference backend */
  inputs: () => Tensor[];
  attrs: OpAttrs[OpName];
  create?: { shape: number[]; dtype: 'float32' | 'int32' };
  rtol?: number;
  atol?: number;
  /** an int32 variant beyond the float32 contract: a backend outside INT32_COMPLETE may lack it (a visible skip) */
  optionalInt?: boolean;
}

/** Backends that claim every int32 variant below: for them an optionalInt case that fails is a failure. */
export const INT32_COMPLETE: ReadonlySet<string> = new Set(['ref', 'cuda', 'wasm', 'wasm-other-gemm']);

let rng = hostRandom(2024);
function reseed(name: string): void {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  rng = hostRandom(h);
}
const rt = (shape: number[], lo = -2, hi = 2) => randomTensor(shape, rng, { lo, hi, backend: 'ref' });
const ints = (shape: number[], hi: number, lo = 0) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Int32Array.from({ length: n }, () => lo + Math.floor(rng() * (hi - lo))), shape, { dtype: 'int32', backend: 'ref' });
};
const fixed = (values: number[], shape: number[], dtype: 'float32' | 'int32' = 'float32') =>
  tensor(dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values), shape, { dtype, backend: 'ref' });
/** values on a coarse grid, so comparisons see ties */
const grid = (shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, () => Math.floor(rng() * 5) - 2), shape, { backend: 'ref' });
};

const cases: Case[] = [];
const add = (op: OpName, name: string, inputs: () => Tensor[], attrs: object = {}, extra: Partial<Case> = {}) =>
  cases.push({ op, name, inputs, attrs: attrs as OpAttrs[OpName], ...extra });

// ---- elementwise ----------------------------------------------------------------------------------------------
const PAIRS: [number[], number[]][] = [
  [[37], [37]], [[3, 65], [65]], [[2, 1, 7], [5, 1]], [[1], [9, 3]], [[], [4, 4]], [[5, 1, 7], [1, 6, 1]], [[2, 3, 4, 5], [2, 1, 4, 1]],
  [[300, 257], [300, 257]], // large enough to be split across threads
  [[70, 1, 513], [1, 2, 513]],
];
for (const op of ['add', 'sub', 'mul', 'maximum', 'minimum'] as const) {
  for (const [a, b] of PAIRS) add(op, `${op} ${JSON.stringify(a)} ${JSON.stringify(b)}`, () => [rt(a), rt(b)]);
}
for (const [a, b] of PAIRS) add('div', `div ${JSON.stringify(a)} ${JSON.stringify(b)}`, () => [rt(a), rt(b, 0.5, 2)]);
for (const [a, b] of PAIRS.slice(0, 6)) {
  // pow: transcendental (exp/log) inside; 1e-5 relative is what a float32 powf gives
  add('pow', `pow ${JSON.stringify(a)} ${JSON.stringify(b)}`, () => [rt(a, 0.1, 3), rt(b, -2, 2)], {}, { rtol: 2e-5 });
}
for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const) {
  for (const [a, b] of PAIRS.slice(0, 7)) add(op, `${op} ${JSON.stringify(a)} ${JSON.stringify(b)}`, () => [grid(a), grid(b)], {}, { rtol: 0, atol: 0 });
}
// int32 arithmetic and comparisons (ids, masks); division by a nonzero divisor
for (const op of familyOps('binary').filter(takesInt)) {
  add(op, `${op} int32 [3,4] [4]`, () => [ints([3, 4], 5, -5), op === 'div' ? ints([4], 4, 1) : ints([4], 5, -5)], {}, { rtol: 0, atol: 0, optionalInt: true });
}
add('where', 'where int cond broadcast', () => [ints([3, 1], 2), rt([3, 5]), rt([5])], {}, { rtol: 0, atol: 0 });
add('where', 'where float cond', () => [grid([2, 4, 3]), rt([4, 1]), rt([2, 4, 3])], {}, { rtol: 0, atol: 0 });
add('where', 'where large', () => [ints([200, 300], 2), rt([200, 300]), rt([1])], {}, { rtol: 0, atol: 0 });
add('where', 'where int32 values', () => [ints([4], 2), ints([3, 4], 5, -5), ints([3, 1], 5, -5)], {}, { rtol: 0, atol: 0, optionalInt: true });

const UNARY_SHAPES = [[37], [3, 65], [1], [], [129, 261]];
const unaryRange: Record<string, [number, number]> = { log: [0.05, 5], sqrt: [0, 5], rsqrt: [0.05, 5], exp: [-10, 10], tanh: [-6, 6], erf: [-4, 4], gelu: [-6, 6] };
for (const op of familyOps('unary')) {
  const [lo, hi] = unaryRange[op] ?? [-5, 5];
  // erf / gelu / tanh: polynomial approximations in float32 are accurate to a few ulp, hence atol 1e-6 with rtol 1e-5
  for (const s of UNARY_SHAPES) add(op, `${op} ${JSON.stringify(s)}`, () => [rt(s, lo, hi)], {}, { rtol: 1e-5, atol: 1e-6 });
}
for (const op of familyOps('unary').filter(takesInt)) {
  add(op, `${op} int32`, () => [ints([17], 5, -5)], {}, { rtol: 0, atol: 0, optionalInt: true });
}
for (const op of familyOps('unary_backward')) {
  for (const s of [[37], [4, 129], [100, 700]]) add(op, `${op} ${JSON.stringify(s)}`, () => [rt(s, -6, 6), rt(s)], {}, { rtol: 1e-5, atol: 1e-6 });
}
for (const s of [[37], [5, 3, 2], [200, 301]]) {
  add('affine', `affine ${JSON.stringify(s)}`, () => [rt(s)], { scale: -1.5, shift: 0.25 });
  for (const e of [2, 3, 0.5, -1, -1.5]) add('pow_scalar', `pow_scalar ${e} ${JSON.stringify(s)}`, () => [rt(s, 0.2, 3)], { exponent: e }, { rtol: 2e-5 });
}
add('affine', 'affine int32', () => [ints([17], 100, -100)], { scale: 3, shift: -2 }, { rtol: 0, atol: 0, optionalInt: true });

// ---- reductions: float32 accumulation vs float64 in the reference -> atol 1e-4 for long sums -------------------
const RED: [number[], number[]][] = [
  [[37], [0]], [[3, 65], [1]], [[3, 65], [0]], [[2, 3, 4, 5], [1, 3]], [[2, 3, 4, 5], [0, 1, 2, 3]], [[1, 7, 1], [0, 2]],
  [[64, 1000], [1]], [[1000, 64], [0]], [[3000, 64], [0]], [[7], []],
];
for (const [s, axes] of RED) {
  for (const keepdims of [false, true]) add('sum', `sum ${JSON.stringify(s)} axes ${JSON.stringify(axes)} keep=${keepdims}`, () => [rt(s)], { axes, keepdims }, { rtol: 1e-5, atol: 1e-4 });
}
add('sum', 'sum int32 axis 0', () => [ints([6, 5], 5, -5)], { axes: [0], keepdims: false }, { rtol: 0, atol: 0, optionalInt: true });
for (const [s, axis] of [[[37], 0], [[3, 65], 1], [[3, 65], 0], [[2, 3, 4, 5], 2], [[50, 1001], 1]] as [number[], number][]) {
  add('max', `max ${JSON.stringify(s)} axis ${axis}`, () => [rt(s)], { axis, keepdims: false }, { rtol: 0, atol: 0 });
  add('argmax', `argmax ${JSON.stringify(s)} axis ${axis}`, () => [rt(s)], { axis, keepdims: true }, { rtol: 0, atol: 0 });
}
add('max', 'max with ties returns the first index', () => [grid([6, 9])], { axis: 1, keepdims: true }, { rtol: 0, atol: 0 });
add('argmax', 'argmax with ties returns the first index', () => [grid([9, 6])], { axis: 0, keepdims: false }, { rtol: 0, atol: 0 });
add('argmax', 'argmax long rows [3,5000]', () => [rt([3, 5000])], { axis: 1, keepdims: false }, { rtol: 0, atol: 0 });
add('max', 'max propagates NaN at its first index', () => [fixed([1, NaN, 3, NaN, 2, 4, 4, 1, 0, 4], [2, 5])], { axis: 1, keepdims: false }, { rtol: 0, atol: 0 });
for (const axis of [0, 1, 2]) {
  add('max', `max int32 with ties axis ${axis}`, () => [ints([4, 5, 6], 3, -3)], { axis, keepdims: false }, { rtol: 0, atol: 0, optionalInt: true });
}

// ---- matmul: every flag combination, batch broadcasting (either side unbatched, size-1 batch axes on either side,
// groups), tile remainders, linear-layer folding; K up to 600 -> atol 1e-4 (float32 accumulation) -----------------
export const MM: [number[], number[], number, number, number][] = [
  [[], [], 1, 1, 1], [[], [], 37, 29, 19], [[], [], 67, 131, 45], [[3], [3], 5, 8, 7], [[2, 1], [3], 13, 17, 11],
  [[1], [4], 2, 9, 1], [[3], [], 6, 2, 4], [[2, 3], [2, 3], 9, 16, 9], [[], [], 128, 300, 96],
  [[], [3], 5, 6, 2], [[3, 1], [2], 4, 5, 6], [[2], [], 64, 96, 128], [[3, 2], [3, 1], 5, 6, 4],
  // several k-blocks (256 / 512), tile and panel edges of every GEMM (4x8, 6x16, 8x32): wasm and native CPU; the
  // native GEMM reads A in place when a thread's columns span at most 8 panels (N <= 256 on AVX-512, 128 on AVX2),
  // else packs it: both paths, with partial row tiles
  [[2], [2], 70, 600, 45], [[], [], 131, 530, 97], [[], [], 75, 530, 300], [[2], [], 37, 70, 290],
];
for (const [ba, bb, M, K, N] of MM) {
  for (const transA of [false, true]) for (const transB of [false, true]) {
    add('matmul', `matmul ${JSON.stringify(ba)}x${JSON.stringify(bb)} M${M} K${K} N${N} tA=${transA} tB=${transB}`,
      () => [rt([...ba, ...(transA ? [K, M] : [M, K])], -1, 1), rt([...bb, ...(transB ? [N, K] : [K, N])], -1, 1)],
      { transA, transB }, { rtol: 1e-5, atol: 1e-4 });
  }
}

// ---- fused routines (rows longer than a 1024-thread block included) ---------------------------------------------
for (const s of [[7], [3, 37], [2, 4, 5, 129], [64, 1000], [2, 2000]]) {
  add('softmax', `softmax ${JSON.stringify(s)}`, () => [rt(s, -5, 5)]);
  add('log_softmax', `log_softmax ${JSON.stringify(s)}`, () => [rt(s, -5, 5)]);
  add('softmax_backward', `softmax_backward ${JSON.stringify(s)}`, () => { const y = scope(() => E.softmax(rt(s))); return [y, rt(s)]; });
  add('log_softmax_backward', `log_softmax_backward ${JSON.stringify(s)}`, () => { const y = scope(() => E.logSoftmax(rt(s))); return [y, rt(s)]; });
}
add('softmax', 'softmax with [B,1,1,N] additive mask', () => [rt([2, 3, 4, 9], -5, 5), tensor(Float32Array.from({ length: 18 }, (_, i) => (i % 4 === 3 ? E.MASK_NEG : 0)), [2, 1, 1, 9], { backend: 'ref' })]);
add('softmax', 'softmax with full mask and a fully masked row', () => [rt([3, 5]), tensor([[0, 0, 0, 0, -1e4], [E.MASK_NEG, E.MASK_NEG, E.MASK_NEG, E.MASK_NEG, E.MASK_NEG], [0, 1, 2, 3, 4]], undefined, { backend: 'ref' })]);
const mask317 = () => fixed(Array.from({ length: 21 }, (_, i) => (i % 4 === 0 ? -1e9 : 0.5 * (i % 3))), [3, 1, 7]);
for (const op of ['softmax', 'log_softmax'] as const) {
  add(op, `${op} with [3,1,7] mask (-1e9 and soft biases)`, () => [rt([3, 4, 7], -5, 5), mask317()]);
  add(op, `${op} with [N] mask`, () => [rt([4, 6]), rt([6], -3, 0)]);
}

// scale fused in (attention's 1/sqrt(dh)): with a [B,1,1,N] mask, a per-row mask (stride 0 along the row), none
for (const op of ['softmax', 'log_softmax'] as const) {
  add(op, `${op} scale 0.125 with [B,1,1,N] mask`, () => [rt([2, 3, 5, 9], -20, 20), tensor(Float32Array.from({ length: 18 }, (_, i) => (i % 4 === 3 ? -1e9 : 0)), [2, 1, 1, 9], { backend: 'ref' })], { scale: 0.125 });
  add(op, `${op} scale 0.3 with [3,4,1] mask`, () => [rt([3, 4, 6], -5, 5), rt([3, 4, 1], -2, 0)], { scale: 0.3 });
  add(op, `${op} scale 2.5, no mask`, () => [rt([4, 37], -3, 3)], { scale: 2.5 });
  add(`${op}_backward`, `${op}_backward scale 0.125`, () => { const y = scope(() => apply(op, [rt([3, 37])], {})[0]); return [y, rt([3, 37])]; }, { scale: 0.125 });
}
for (const [rows, D] of [[[1], 7], [[3, 5], 37], [[2, 185], 256], [[4], 768], [[300], 33], [[3], 700]] as [number[], number][]) {
  const eps = 1e-5;
  add('layer_norm', `layer_norm ${JSON.stringify([...rows, D])}`, () => [rt([...rows, D], -3, 3), rt([D]), rt([D])], { eps }, { rtol: 1e-5, atol: 2e-5 });
  add('layer_norm_backward', `layer_norm_backward ${JSON.stringify([...rows, D])}`, () => {
    const x = rt([...rows, D], -3, 3), w = rt([D]);
    const [, m, r] = scope(() => apply('layer_norm', [x, w, rt([D])], { eps }));
    return [rt([...rows, D]), x, w, m, r];
  }, {}, { rtol: 1e-4, atol: 1e-4 }); // dweight/dbias sum over rows in float32
}
// bias + GELU: D a multiple of 4 (SIMD rows), D with a tail, one row; the backward at the same shapes
for (const [rows, D] of [[[1], 7], [[3, 5], 37], [[2, 185], 64], [[4], 1024], [[300], 33]] as [number[], number][]) {
  const tol = { rtol: 1e-5, atol: 1e-6 };
  add('bias_gelu', `bias_gelu ${JSON.stringify([...rows, D])}`, () => [rt([...rows, D], -5, 5), rt([D], -1, 1)], {}, tol);
  add('bias_gelu_backward', `bias_gelu_backward ${JSON.stringify([...rows, D])}`, () => [rt([...rows, D], -5, 5), rt([D], -1, 1), rt([...rows, D])], {}, tol);
}
// (offsets that are not multiples of 4, lengths with a head, 16-element SIMD steps and a tail, a p that float32 cannot
// represent, block counters crossing 2^32: the wasm kernel's SIMD path must give the scalar path's bits)
for (const [s, p, off] of [[[37], 0.1, 0], [[3, 65], 0.5, 12], [[5, 33], 0.3, 12], [[200, 301], 0.1, 1 << 20],
  [[7, 129], 1 / 3, 5], [[1, 1001], 0.7, 2 ** 34 - 22], [[2, 50], 0.05, 3]] as [number[], number, number][]) {
  add('dropout', `dropout ${JSON.stringify(s)} p=${p}`, () => [rt(s)], { p, seed: 1234, offset: off }, { rtol: 1e-6, atol: 0 });
}
for (const [B, C] of [[1, 2], [5, 37], [64, 3129]] as [number, number][]) {
  const labels = () => { const l = ints([B], C); const d = l.toArray(); if (B > 1) d[1] = -100; l.dispose(); return tensor(d, [B], { dtype: 'int32', backend: 'ref' }); };
  add('cross_entropy', `cross_entropy [${B},${C}]`, () => [rt([B, C], -8, 8), labels()], { ignoreIndex: -100 }, { rtol: 1e-5, atol: 1e-5 });
  add('cross_entropy_backward', `cross_entropy_backward [${B},${C}]`, () => [rt([B, C], -8, 8), labels(), rt([B])], { ignoreIndex: -100 });
}
// labels on both class boundaries (0 and C-1) next to an ignored row
const edgeLabels = () => fixed([0, 10, -100, 3, 5, 1], [6], 'int32');
add('cross_entropy', 'cross_entropy [6,11] boundary labels', () => [rt([6, 11], -4, 4), edgeLabels()], { ignoreIndex: -100 });
add('cross_entropy_backward', 'cross_entropy_backward [6,11] boundary labels', () => [rt([6, 11], -4, 4), edgeLabels(), rt([6])], { ignoreIndex: -100 });
for (const s of [[37], [8, 3129]]) {
  add('bce_with_logits', `bce_with_logits ${JSON.stringify(s)}`, () => [rt(s, -30, 30), rt(s, 0, 1)]);
  add('bce_with_logits_backward', `bce_with_logits_backward ${JSON.stringify(s)}`, () => [rt(s, -30, 30), rt(s, 0, 1), rt(s)]);
}

// ---- gathers ----------------------------------------------------------------------------------------------------
add('index_select', 'index_select rows (embedding)', () => [rt([50, 33]), ints([77], 50)], { axis: 0 }, { rtol: 0, atol: 0 });
add('index_select', 'index_select middle axis', () => [rt([3, 10, 7]), ints([12], 10)], { axis: 1 }, { rtol: 0, atol: 0 });
add('index_select', 'index_select int32 table', () => [ints([6, 2], 100, -100), ints([4], 6)], { axis: 0 }, { rtol: 0, atol: 0, optionalInt: true });
add('index_add', 'index_add rows with repeats', () => [rt([77, 33]), ints([77], 50)], { axis: 0, size: 50 }, { rtol: 1e-5, atol: 1e-5 });
add('index_add', 'index_add middle axis with repeats', () => [rt([5, 3, 3]), fixed([1, 1, 3], [3], 'int32')], { axis: 1, size: 4 });
add('index_add', 'index_add last axis', () => [rt([3, 4, 12]), ints([12], 5)], { axis: 2, size: 5 });
add('gather', 'gather axis 1', () => [rt([4, 9, 3]), ints([4, 5, 3], 9)], { axis: 1 }, { rtol: 0, atol: 0 });
add('gather', 'gather axis 0 smaller index', () => [rt([6, 5]), ints([3, 4], 6)], { axis: 0 }, { rtol: 0, atol: 0 });
add('scatter_add', 'scatter_add axis 1', () => [rt([4, 5, 3]), ints([4, 5, 3], 9)], { axis: 1, shape: [4, 9, 3] });
add('scatter_add', 'scatter_add axis 0', () => [rt([3, 4]), ints([3, 4], 6)], { axis: 0, shape: [6, 5] });

// ---- movement ---------------------------------------------------------------------------------------------------
const PERMS: [number[], number[]][] = [[[3, 5], [1, 0]], [[2, 185, 12, 64], [0, 2, 1, 3]], [[2, 3, 4, 5], [3, 1, 0, 2]], [[7, 1, 9], [2, 0, 1]], [[4, 6, 8, 2, 3], [0, 3, 1, 4, 2]], [[3, 4], [0, 1]]];
for (const [s, perm] of PERMS) add('permute', `permute ${JSON.stringify(s)} ${JSON.stringify(perm)}`, () => [rt(s)], { perm }, { rtol: 0, atol: 0 });
add('permute', 'permute int32', () => [ints([3, 4, 5], 100)], { perm: [2, 0, 1] }, { rtol: 0, atol: 0, optionalInt: true });
add('slice', 'slice middle', () => [rt([4, 9, 7])], { starts: [1, 2, 0], ends: [3, 9, 5] }, { rtol: 0, atol: 0 });
add('slice', 'slice cls token', () => [rt([2, 185, 64])], { starts: [0, 0, 0], ends: [2, 1, 64] }, { rtol: 0, atol: 0 });
add('slice', 'slice int32', () => [ints([10, 3], 50)], { starts: [2, 1], ends: [9, 3] }, { rtol: 0, atol: 0, optionalInt: true });
add('pad', 'pad', () => [rt([3, 4, 5])], { pads: [[1, 0], [0, 2], [3, 1]], value: -0.5 }, { rtol: 0, atol: 0 });
add('pad', 'pad int32', () => [ints([2, 2, 3], 5, -5)], { pads: [[0, 0], [2, 0], [0, 1]], value: 7 }, { rtol: 0, atol: 0, optionalInt: true });
add('concat', 'concat 3 inputs middle axis', () => [rt([2, 3, 5]), rt([2, 1, 5]), rt([2, 7, 5])], { axis: 1 }, { rtol: 0, atol: 0 });
add('concat', 'concat 3 inputs last axis', () => [rt([2, 3, 4]), rt([2, 3, 5]), rt([2, 3, 6])], { axis: 2 }, { rtol: 0, atol: 0 });
add('concat', 'concat axis 0', () => [rt([1, 64]), rt([184, 64])], { axis: 0 }, { rtol: 0, atol: 0 });
add('concat', 'concat int32 last axis', () => [ints([3, 2], 9), ints([3, 5], 9)], { axis: 1 }, { rtol: 0, atol: 0, optionalInt: true });
add('expand', 'expand', () => [rt([3, 1, 5])], { shape: [2, 3, 4, 5] }, { rtol: 0, atol: 0 });
add('expand', 'expand scalar', () => [rt([])], { shape: [7, 3] }, { rtol: 0, atol: 0 });
add('cast', 'cast float32 -> int32 (truncation)', () => [rt([50], -20, 20)], { dtype: 'int32' }, { rtol: 0, atol: 0 });
add('cast', 'cast int32 -> float32', () => [ints([50], 1000, -1000)], { dtype: 'float32' }, { rtol: 0, atol: 0 });
add('cast', 'cast float32 -> float32 (clone)', () => [rt([3, 7])], { dtype: 'float32' }, { rtol: 0, atol: 0 });

// ---- resizing (bilinear of position tables; bicubic is a host function, ops.test.ts) -------------------------------------------------------------
for (const alignCorners of [true, false]) {
  add('resize_bilinear', `resize_bilinear up align=${alignCorners}`, () => [rt([2, 12, 12])], { outH: 19, outW: 24, alignCorners });
  add('resize_bilinear', `resize_bilinear down align=${alignCorners}`, () => [rt([3, 1, 9, 7])], { outH: 4, outW: 5, alignCorners });
  add('resize_bilinear', `resize_bilinear up H down W align=${alignCorners}`, () => [rt([2, 3, 5, 7])], { outH: 9, outW: 4, alignCorners });
  add('resize_bilinear_backward', `resize_bilinear_backward align=${alignCorners}`, () => [rt([2, 19, 24])], { inH: 12, inW: 12, alignCorners });
  add('resize_bilinear_backward', `resize_bilinear_backward up H down W align=${alignCorners}`, () => [rt([2, 3, 9, 4])], { inH: 5, inW: 7, alignCorners });
}

// ---- creation (random ops are bit-exact for uniforms; normals differ only through float64 libm ulps) ------------
add('fill', 'fill', () => [], { value: 2.5 }, { create: { shape: [3, 33], dtype: 'float32' }, rtol: 0, atol: 0 });
add('fill', 'fill int32', () => [], { value: -7 }, { create: { shape: [5], dtype: 'int32' }, rtol: 0, atol: 0, optionalInt: true });
add('random_uniform', 'random_uniform (bit-exact)', () => [], { seed: 77, offset: 5, low: -0.5, high: 2 }, { create: { shape: [301, 7], dtype: 'float32' }, rtol: 0, atol: 0 });
add('random_uniform', 'random_uniform large seed', () => [], { seed: 2 ** 40 + 3, offset: 2 ** 33, low: 0, high: 1 }, { create: { shape: [65], dtype: 'float32' }, rtol: 0, atol: 0 });
add('random_normal', 'random_normal', () => [], { seed: 5, offset: 3, mean: 0.5, std: 0.02 }, { create: { shape: [1001], dtype: 'float32' }, rtol: 0, atol: 1e-6 });
add('random_normal', 'random_normal std 1', () => [], { seed: 0, offset: 0, mean: 0, std: 1 }, { create: { shape: [64, 65], dtype: 'float32' }, rtol: 0, atol: 2e-6 });
add('random_normal', 'random_normal large seed, mean 1 std 2', () => [], { seed: 2 ** 40 + 3, offset: 4, mean: 1, std: 2 }, { create: { shape: [999], dtype: 'float32' }, rtol: 0, atol: 2e-6 });

// ---- optimiser updates (in place; the mutated inputs are compared) -------------------------------------------------
for (const s of [[37], [129, 65]]) {
  add('adamw_step', `adamw_step ${JSON.stringify(s)}`, () => [rt(s), rt(s), rt(s, -0.1, 0.1), rt(s, 0, 0.1)],
    { lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01, step: 3 }, { rtol: 1e-5, atol: 1e-6 });
  add('sgd_step', `sgd_step momentum ${JSON.stringify(s)}`, () => [rt(s), rt(s), rt(s)], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }, { rtol: 1e-5, atol: 1e-6 });
  add('sgd_step', `sgd_step plain ${JSON.stringify(s)}`, () => [rt(s), rt(s)], { lr: 0.1, momentum: 0, weightDecay: 0 }, { rtol: 1e-5, atol: 1e-6 });
}

/** Every conformance case (names unique; inputs built lazily, on the reference backend). */
export const CASES: readonly Case[] = cases;

/** Build a case's inputs (on ref) from its name-seeded generator. The caller owns (disposes) them. */
export function caseInputs(c: Case): Tensor[] {
  reseed(c.name);
  return c.inputs();
}

/** Input shapes of a case (its inputs are built and freed). */
export function caseInputShapes(c: Case): number[][] {
  return scope(() => caseInputs(c).map((t) => t.shape.slice()));
}

const PAD = 5;
const SENTINEL: Record<'float32' | 'int32', number> = { float32: -12345.5, int32: -0x1234567 };

/** Copy host data into a fresh storage of `backend`, `PAD` sentinel elements on both sides; returns the view. */
function paddedRef(backend: ReturnType<typeof backendByName>, shape: readonly number[], dtype: DType, data: TypedArray | null): TensorRef {
  const n = shape.reduce((a, b) => a * b, 1);
  const host = dtype === 'int32' ? new Int32Array(n + 2 * PAD) : new Float32Array(n + 2 * PAD);
  host.fill(SENTINEL[dtype as 'float32' | 'int32']);
  if (data) host.set(data, PAD);
  const storage: Storage = backend.alloc(n + 2 * PAD, dtype);
  backend.write(storage, host, 0);
  return { storage, offset: PAD, shape: shape.slice(), dtype };
}

/**
 * Run case `c` on `backend` and on the reference through `apply`, compare every output (in-place ops: the mutated
 * inputs) within the case's tolerance (int32 outputs exactly), then (offsets) repeat the kernel call directly
 * with offset views in sentinel-padded storages (outputs filled with the sentinel too) and check the same values
 * and that the padding is untouched. Throws an Error naming the case, backend and output on a mismatch.
 */
export function runCase(c: Case, backend: string, opts: { offsets?: boolean } = {}): void {
  scope(() => {
    const ins = caseInputs(c);
    const host = ins.map((t) => t.toArray().slice() as TypedArray); // before the reference runs: in-place ops mutate
    const moved = ins.map((t) => (t.backend.name === backend ? t.clone() : t.to(backend))); // own copies (in-place ops)
    const refOut = apply(c.op, ins, c.attrs as never, c.create ? { ...c.create, backend: 'ref' } : undefined);
    const out = apply(c.op, moved, c.attrs as never, c.create ? { ...c.create, backend } : undefined);
    const tol = { rtol: c.rtol ?? 1e-5, atol: c.atol ?? 1e-5 };
    const inplace = refOut.length === 0;
    const wants = inplace ? ins : refOut;
    const gots = inplace ? moved : out;
    wants.forEach((want, i) => {
      const got = gots[i];
      if (got.shape.length !== want.shape.length || got.shape.some((d, k) => d !== want.shape[k])) {
        throw new Error(`${c.name} on ${backend}: output ${i} shape [${got.shape}] != reference [${want.shape}]`);
      }
      if (got.dtype !== want.dtype) throw new Error(`${c.name} on ${backend}: output ${i} dtype ${got.dtype} != reference ${want.dtype}`);
      const exact = want.dtype === 'int32';
      allclose(got.toArray(), want.toArray(), { ...(exact ? { rtol: 0, atol: 0 } : tol), msg: `${c.name} on ${backend}, output ${i}` });
    });
    if (!opts.offsets) return;
    const be = backendByName(backend);
    const kernel = be.kernels[c.op] as ((i: TensorRef[], o: TensorRef[], a: unknown) => void) | undefined;
    if (!kernel) throw new Error(`${c.name}: backend ${backend} has no kernel for ${c.op}`);
    const inRefs = ins.map((t, i) => paddedRef(be, t.shape, t.dtype, host[i]));
    const outRefs = refOut.map((t) => paddedRef(be, t.shape, t.dtype, null));
    try {
      kernel(inRefs, outRefs, c.attrs);
      // outputs against the reference; inputs: mutated like the reference's (in place) or untouched (bit for bit)
      const checks: { r: TensorRef; what: string; want: ArrayLike<number>; exact: boolean }[] = [
        ...outRefs.map((r, k) => ({ r, what: `output ${k}`, want: refOut[k].toArray(), exact: r.dtype === 'int32' })),
        ...inRefs.map((r, k) => ({ r, what: `input ${k}`, want: inplace ? ins[k].toArray() : host[k], exact: !inplace || r.dtype === 'int32' })),
      ];
      for (const { r, what, want, exact } of checks) {
        const n = r.shape.reduce((a, b) => a * b, 1);
        const all = be.read(r.storage, 0, n + 2 * PAD);
        const label = `${c.name} on ${backend} with views at element offset ${PAD}, ${what}`;
        const s = SENTINEL[r.dtype as 'float32' | 'int32'];
        for (let j = 0; j < PAD; j++) {
          if (all[j] !== s || all[PAD + n + j] !== s) throw new Error(`${label}: the kernel wrote outside its view`);
        }
        allclose(all.subarray(PAD, PAD + n), want, { ...(exact ? { rtol: 0, atol: 0 } : tol), msg: label });
      }
    } finally {
      for (const r of [...inRefs, ...outRefs]) be.free(r.storage);
    }
  });
}

/** A tiny MLP trained 4 AdamW steps with dropout: per-step losses and final first-layer weights. */
export function trainLosses(backend: string): { losses: number[]; w: Float32Array } {
  return scope(() => {
    const gen = new Generator(3);
    const mk = (s: number[], std: number) => E.randn(s, { generator: gen, std, backend }).requiresGrad_();
    const w1 = mk([16, 8], 0.3), b1 = E.zeros([16], { backend }).requiresGrad_(), w2 = mk([4, 16], 0.3);
    const x = E.randn([10, 8], { generator: gen, backend }); // [10, 8]
    const y = tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1], undefined, { dtype: 'int32', backend });
    const ln = E.ones([16], { backend }), lb = E.zeros([16], { backend });
    const opt = new AdamW([{ params: [w1, w2], weightDecay: 0.01 }, { params: [b1], weightDecay: 0 }], { lr: 1e-2, betas: [0.9, 0.98] });
    const losses: number[] = [];
    const dgen = new Generator(11);
    for (let s = 0; s < 4; s++) {
      losses.push(scope(() => {
        opt.zeroGrad();
        const h = E.dropout(E.layerNorm(E.linear(x, w1, b1), ln, lb).gelu(), 0.1, { training: true, generator: dgen }); // [10, 16]
        const loss = E.crossEntropy(E.linear(h, w2).softmax(-1).add(1e-3).log(), y);
        loss.backward();
        opt.step();
        return loss.item();
      }));
    }
    const w = Float32Array.from(w1.toArray());
    opt.zeroGrad();
    opt.dispose();
    return { losses, w };
  });
}
