// THE backend conformance suite: every op of OP_NAMES, on random inputs (several shapes, broadcasting, odd sizes,
// every matmul transpose flag with batch broadcasting, masks for softmax), run on each available non-reference
// backend and compared with the reference backend; plus a tiny training run whose losses must match the reference.
// Tolerances: float32, rtol 1e-5 / atol 1e-5 unless a case says why it needs more (float32 accumulation over long
// sums where the reference accumulates in float64; transcendental approximations). Index outputs must match exactly.
// Skips with a visible message when no other backend is available.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { Generator, OP_NAMES, Tensor, apply, scope, tensor, type OpAttrs, type OpName } from '../../engine/index.ts';
import { AdamW } from '../../train/optim.ts';
import { allclose, backendsUnderTest, hostRandom, randomTensor } from '../helpers.ts';

interface Case {
  op: OpName;
  name: string;
  /** inputs, created on the reference backend */
  inputs: () => Tensor[];
  attrs: OpAttrs[OpName];
  create?: { shape: number[]; dtype: 'float32' | 'int32' };
  rtol?: number;
  atol?: number;
  /** an int32 variant beyond the float32 contract: a backend may lack it (reported as a visible skip line) */
  optionalInt?: boolean;
}

const rng = hostRandom(2024);
const rt = (shape: number[], lo = -2, hi = 2) => randomTensor(shape, rng, { lo, hi, backend: 'ref' });
const ints = (shape: number[], hi: number, lo = 0) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Int32Array.from({ length: n }, () => lo + Math.floor(rng() * (hi - lo))), shape, { backend: 'ref' });
};
/** values on a coarse grid, so comparisons see ties */
const grid = (shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, () => Math.floor(rng() * 5) - 2), shape, { backend: 'ref' });
};

const cases: Case[] = [];
const add = (op: OpName, name: string, inputs: () => Tensor[], attrs: object = {}, extra: Partial<Case> = {}) =>
  cases.push({ op, name, inputs, attrs: attrs as OpAttrs[OpName], ...extra });

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
add('where', 'where int cond broadcast', () => [ints([3, 1], 2), rt([3, 5]), rt([5])], {}, { rtol: 0, atol: 0 });
add('where', 'where float cond', () => [grid([2, 4, 3]), rt([4, 1]), rt([2, 4, 3])], {}, { rtol: 0, atol: 0 });
add('where', 'where large', () => [ints([200, 300], 2), rt([200, 300]), rt([1])], {}, { rtol: 0, atol: 0 });

const UNARY_SHAPES = [[37], [3, 65], [1], [], [129, 261]];
const unaryRange: Record<string, [number, number]> = { log: [0.05, 5], sqrt: [0, 5], rsqrt: [0.05, 5], exp: [-10, 10], tanh: [-6, 6], erf: [-4, 4], gelu: [-6, 6] };
for (const op of ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sign', 'tanh', 'sigmoid', 'relu', 'erf', 'gelu', 'quick_gelu'] as const) {
  const [lo, hi] = unaryRange[op] ?? [-5, 5];
  // erf / gelu / tanh: polynomial approximations in float32 are accurate to a few ulp, hence atol 1e-6 with rtol 1e-5
  for (const s of UNARY_SHAPES) add(op, `${op} ${JSON.stringify(s)}`, () => [rt(s, lo, hi)], {}, { rtol: 1e-5, atol: 1e-6 });
}
for (const op of ['gelu_backward', 'quick_gelu_backward'] as const) {
  for (const s of [[37], [4, 129], [100, 700]]) add(op, `${op} ${JSON.stringify(s)}`, () => [rt(s, -6, 6), rt(s)], {}, { rtol: 1e-5, atol: 1e-6 });
}
for (const s of [[37], [5, 3, 2], [200, 301]]) {
  add('affine', `affine ${JSON.stringify(s)}`, () => [rt(s)], { scale: -1.5, shift: 0.25 });
  for (const e of [2, 3, 0.5, -1]) add('pow_scalar', `pow_scalar ${e} ${JSON.stringify(s)}`, () => [rt(s, 0.2, 3)], { exponent: e }, { rtol: 2e-5 });
}
add('affine', 'affine int32', () => [ints([17], 100, -100)], { scale: 3, shift: -2 }, { rtol: 0, atol: 0, optionalInt: true });

// reductions: float32 accumulation vs float64 in the reference -> atol 1e-4 for long sums
const RED: [number[], number[]][] = [[[37], [0]], [[3, 65], [1]], [[3, 65], [0]], [[2, 3, 4, 5], [1, 3]], [[2, 3, 4, 5], [0, 1, 2, 3]], [[1, 7, 1], [0, 2]], [[64, 1000], [1]], [[1000, 64], [0]]];
for (const [s, axes] of RED) {
  for (const keepdims of [false, true]) add('sum', `sum ${JSON.stringify(s)} axes ${JSON.stringify(axes)} keep=${keepdims}`, () => [rt(s)], { axes, keepdims }, { rtol: 1e-5, atol: 1e-4 });
}
for (const [s, axis] of [[[37], 0], [[3, 65], 1], [[3, 65], 0], [[2, 3, 4, 5], 2], [[50, 1001], 1]] as [number[], number][]) {
  add('max', `max ${JSON.stringify(s)} axis ${axis}`, () => [rt(s)], { axis, keepdims: false }, { rtol: 0, atol: 0 });
  add('argmax', `argmax ${JSON.stringify(s)} axis ${axis}`, () => [rt(s)], { axis, keepdims: true }, { rtol: 0, atol: 0 });
}
add('max', 'max with ties returns the first index', () => [grid([6, 9])], { axis: 1, keepdims: true }, { rtol: 0, atol: 0 });
add('argmax', 'argmax with ties returns the first index', () => [grid([9, 6])], { axis: 0, keepdims: false }, { rtol: 0, atol: 0 });

// matmul: every flag combination, batch broadcasting, tile remainders; K up to 300 -> atol 1e-4 (float32 accumulation)
const MM: [number[], number[], number, number, number][] = [
  [[], [], 1, 1, 1], [[], [], 37, 29, 19], [[], [], 67, 131, 45], [[3], [3], 5, 8, 7], [[2, 1], [3], 13, 17, 11],
  [[1], [4], 2, 9, 1], [[3], [], 6, 2, 4], [[2, 3], [2, 3], 9, 16, 9], [[], [], 128, 300, 96],
];
for (const [ba, bb, M, K, N] of MM) {
  for (const transA of [false, true]) for (const transB of [false, true]) {
    add('matmul', `matmul ${JSON.stringify(ba)}x${JSON.stringify(bb)} M${M} K${K} N${N} tA=${transA} tB=${transB}`,
      () => [rt([...ba, ...(transA ? [K, M] : [M, K])], -1, 1), rt([...bb, ...(transB ? [N, K] : [K, N])], -1, 1)],
      { transA, transB }, { rtol: 1e-5, atol: 1e-4 });
  }
}

// fused routines
for (const s of [[7], [3, 37], [2, 4, 5, 129], [64, 1000]]) {
  add('softmax', `softmax ${JSON.stringify(s)}`, () => [rt(s, -5, 5)]);
  add('log_softmax', `log_softmax ${JSON.stringify(s)}`, () => [rt(s, -5, 5)]);
  add('softmax_backward', `softmax_backward ${JSON.stringify(s)}`, () => { const y = scope(() => E.softmax(rt(s))); return [y, rt(s)]; });
  add('log_softmax_backward', `log_softmax_backward ${JSON.stringify(s)}`, () => { const y = scope(() => E.logSoftmax(rt(s))); return [y, rt(s)]; });
}
add('softmax', 'softmax with [B,1,1,N] additive mask', () => [rt([2, 3, 4, 9], -5, 5), tensor(Float32Array.from({ length: 18 }, (_, i) => (i % 4 === 3 ? E.MASK_NEG : 0)), [2, 1, 1, 9], { backend: 'ref' })]);
add('softmax', 'softmax with full mask and a fully masked row', () => [rt([3, 5]), tensor([[0, 0, 0, 0, -1e4], [E.MASK_NEG, E.MASK_NEG, E.MASK_NEG, E.MASK_NEG, E.MASK_NEG], [0, 1, 2, 3, 4]], undefined, { backend: 'ref' })]);
add('log_softmax', 'log_softmax with [N] mask', () => [rt([4, 6]), rt([6], -3, 0)]);

for (const [rows, D] of [[[1], 7], [[3, 5], 37], [[2, 185], 256], [[4], 768]] as [number[], number][]) {
  const eps = 1e-5;
  add('layer_norm', `layer_norm ${JSON.stringify([...rows, D])}`, () => [rt([...rows, D], -3, 3), rt([D]), rt([D])], { eps }, { rtol: 1e-5, atol: 2e-5 });
  add('layer_norm_backward', `layer_norm_backward ${JSON.stringify([...rows, D])}`, () => {
    const x = rt([...rows, D], -3, 3), w = rt([D]);
    const [, m, r] = scope(() => apply('layer_norm', [x, w, rt([D])], { eps }));
    return [rt([...rows, D]), x, w, m, r];
  }, {}, { rtol: 1e-4, atol: 1e-4 }); // dweight/dbias sum over rows in float32
}
for (const [s, p, off] of [[[37], 0.1, 0], [[3, 65], 0.5, 12], [[200, 301], 0.1, 1 << 20]] as [number[], number, number][]) {
  add('dropout', `dropout ${JSON.stringify(s)} p=${p}`, () => [rt(s)], { p, seed: 1234, offset: off }, { rtol: 1e-6, atol: 0 });
}
for (const [B, C] of [[1, 2], [5, 37], [64, 3129]] as [number, number][]) {
  const labels = () => { const l = ints([B], C); const d = l.toArray(); if (B > 1) d[1] = -100; l.dispose(); return tensor(d, [B], { dtype: 'int32', backend: 'ref' }); };
  add('cross_entropy', `cross_entropy [${B},${C}]`, () => [rt([B, C], -8, 8), labels()], { ignoreIndex: -100 }, { rtol: 1e-5, atol: 1e-5 });
  add('cross_entropy_backward', `cross_entropy_backward [${B},${C}]`, () => [rt([B, C], -8, 8), labels(), rt([B])], { ignoreIndex: -100 });
}
for (const s of [[37], [8, 3129]]) {
  add('bce_with_logits', `bce_with_logits ${JSON.stringify(s)}`, () => [rt(s, -30, 30), rt(s, 0, 1)]);
  add('bce_with_logits_backward', `bce_with_logits_backward ${JSON.stringify(s)}`, () => [rt(s, -30, 30), rt(s, 0, 1), rt(s)]);
}

// gathers
add('index_select', 'index_select rows (embedding)', () => [rt([50, 33]), ints([77], 50)], { axis: 0 }, { rtol: 0, atol: 0 });
add('index_select', 'index_select middle axis', () => [rt([3, 10, 7]), ints([12], 10)], { axis: 1 }, { rtol: 0, atol: 0 });
add('index_add', 'index_add rows with repeats', () => [rt([77, 33]), ints([77], 50)], { axis: 0, size: 50 }, { rtol: 1e-5, atol: 1e-5 });
add('index_add', 'index_add last axis', () => [rt([3, 4, 12]), ints([12], 5)], { axis: 2, size: 5 });
add('gather', 'gather axis 1', () => [rt([4, 9, 3]), ints([4, 5, 3], 9)], { axis: 1 }, { rtol: 0, atol: 0 });
add('gather', 'gather axis 0 smaller index', () => [rt([6, 5]), ints([3, 4], 6)], { axis: 0 }, { rtol: 0, atol: 0 });
add('scatter_add', 'scatter_add axis 1', () => [rt([4, 5, 3]), ints([4, 5, 3], 9)], { axis: 1, shape: [4, 9, 3] });
add('scatter_add', 'scatter_add axis 0', () => [rt([3, 4]), ints([3, 4], 6)], { axis: 0, shape: [6, 5] });

// movement
const PERMS: [number[], number[]][] = [[[3, 5], [1, 0]], [[2, 185, 12, 64], [0, 2, 1, 3]], [[2, 3, 4, 5], [3, 1, 0, 2]], [[7, 1, 9], [2, 0, 1]], [[4, 6, 8, 2, 3], [0, 3, 1, 4, 2]]];
for (const [s, perm] of PERMS) add('permute', `permute ${JSON.stringify(s)} ${JSON.stringify(perm)}`, () => [rt(s)], { perm }, { rtol: 0, atol: 0 });
add('permute', 'permute int32', () => [ints([3, 4, 5], 100)], { perm: [2, 0, 1] }, { rtol: 0, atol: 0, optionalInt: true });
add('slice', 'slice middle', () => [rt([4, 9, 7])], { starts: [1, 2, 0], ends: [3, 9, 5] }, { rtol: 0, atol: 0 });
add('slice', 'slice cls token', () => [rt([2, 185, 64])], { starts: [0, 0, 0], ends: [2, 1, 64] }, { rtol: 0, atol: 0 });
add('slice', 'slice int32', () => [ints([10, 3], 50)], { starts: [2, 1], ends: [9, 3] }, { rtol: 0, atol: 0, optionalInt: true });
add('pad', 'pad', () => [rt([3, 4, 5])], { pads: [[1, 0], [0, 2], [3, 1]], value: -0.5 }, { rtol: 0, atol: 0 });
add('concat', 'concat 3 inputs middle axis', () => [rt([2, 3, 5]), rt([2, 1, 5]), rt([2, 7, 5])], { axis: 1 }, { rtol: 0, atol: 0 });
add('concat', 'concat axis 0', () => [rt([1, 64]), rt([184, 64])], { axis: 0 }, { rtol: 0, atol: 0 });
add('concat', 'concat int32 last axis', () => [ints([3, 2], 9), ints([3, 5], 9)], { axis: 1 }, { rtol: 0, atol: 0, optionalInt: true });
add('expand', 'expand', () => [rt([3, 1, 5])], { shape: [2, 3, 4, 5] }, { rtol: 0, atol: 0 });
add('expand', 'expand scalar', () => [rt([])], { shape: [7, 3] }, { rtol: 0, atol: 0 });
add('cast', 'cast float32 -> int32 (truncation)', () => [rt([50], -20, 20)], { dtype: 'int32' }, { rtol: 0, atol: 0 });
add('cast', 'cast int32 -> float32', () => [ints([50], 1000, -1000)], { dtype: 'float32' }, { rtol: 0, atol: 0 });
add('cast', 'cast float32 -> float32 (clone)', () => [rt([3, 7])], { dtype: 'float32' }, { rtol: 0, atol: 0 });

// resizing (bilinear / bicubic of position tables)
for (const alignCorners of [true, false]) {
  add('resize_bilinear', `resize_bilinear up align=${alignCorners}`, () => [rt([2, 12, 12])], { outH: 19, outW: 24, alignCorners });
  add('resize_bilinear', `resize_bilinear down align=${alignCorners}`, () => [rt([3, 1, 9, 7])], { outH: 4, outW: 5, alignCorners });
  add('resize_bilinear_backward', `resize_bilinear_backward align=${alignCorners}`, () => [rt([2, 19, 24])], { inH: 12, inW: 12, alignCorners });
  add('resize_bicubic', `resize_bicubic up align=${alignCorners}`, () => [rt([4, 7, 7])], { outH: 12, outW: 10, alignCorners });
  add('resize_bicubic', `resize_bicubic down align=${alignCorners}`, () => [rt([1, 24, 24])], { outH: 9, outW: 13, alignCorners });
}

// creation
add('fill', 'fill', () => [], { value: 2.5 }, { create: { shape: [3, 33], dtype: 'float32' }, rtol: 0, atol: 0 });
add('fill', 'fill int32', () => [], { value: -7 }, { create: { shape: [5], dtype: 'int32' }, rtol: 0, atol: 0, optionalInt: true });
add('random_uniform', 'random_uniform (bit-exact)', () => [], { seed: 77, offset: 5, low: -0.5, high: 2 }, { create: { shape: [301, 7], dtype: 'float32' }, rtol: 0, atol: 0 });
add('random_uniform', 'random_uniform large seed', () => [], { seed: 2 ** 40 + 3, offset: 2 ** 33, low: 0, high: 1 }, { create: { shape: [65], dtype: 'float32' }, rtol: 0, atol: 0 });
add('random_normal', 'random_normal', () => [], { seed: 5, offset: 3, mean: 0.5, std: 0.02 }, { create: { shape: [1001], dtype: 'float32' }, rtol: 0, atol: 1e-6 });
add('random_normal', 'random_normal std 1', () => [], { seed: 0, offset: 0, mean: 0, std: 1 }, { create: { shape: [64, 65], dtype: 'float32' }, rtol: 0, atol: 2e-6 });

// optimiser updates (in place; the mutated inputs are compared)
for (const s of [[37], [129, 65]]) {
  add('adamw_step', `adamw_step ${JSON.stringify(s)}`, () => [rt(s), rt(s), rt(s, -0.1, 0.1), rt(s, 0, 0.1)],
    { lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01, step: 3 }, { rtol: 1e-5, atol: 1e-6 });
  add('sgd_step', `sgd_step momentum ${JSON.stringify(s)}`, () => [rt(s), rt(s), rt(s)], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }, { rtol: 1e-5, atol: 1e-6 });
  add('sgd_step', `sgd_step plain ${JSON.stringify(s)}`, () => [rt(s), rt(s)], { lr: 0.1, momentum: 0, weightDecay: 0 }, { rtol: 1e-5, atol: 1e-6 });
}

test('the conformance cases cover every op of OP_NAMES', () => {
  const have = new Set(cases.map((c) => c.op));
  assert.equal(OP_NAMES.filter((op) => !have.has(op)), []);
});

function runCase(c: Case, backend: string): void {
  scope(() => {
    const ins = c.inputs();
    const moved = ins.map((t) => t.to(backend)); // before the reference runs: in-place ops mutate their inputs
    const refOut = apply(c.op, ins, c.attrs as never, c.create ? { ...c.create, backend: 'ref' } : undefined);
    const out = apply(c.op, moved, c.attrs as never, c.create ? { ...c.create, backend } : undefined);
    const tol = { rtol: c.rtol ?? 1e-5, atol: c.atol ?? 1e-5 };
    // in-place ops: compare the mutated inputs; others: every output
    const pairs: [Tensor, Tensor][] = refOut.length ? refOut.map((r, i) => [out[i], r]) : ins.map((r, i) => [moved[i], r]);
    pairs.forEach(([got, want], i) => {
      assert.equal(got.shape, want.shape, `${c.name}: output ${i} shape`);
      assert.is(got.dtype, want.dtype, `${c.name}: output ${i} dtype`);
      const exact = want.dtype === 'int32';
      allclose(got.toArray(), want.toArray(), { ...(exact ? { rtol: 0, atol: 0 } : tol), msg: `${c.name} on ${backend}, output ${i}` });
    });
  });
}

/** A tiny MLP trained 4 AdamW steps with dropout: per-step losses and final weights must match the reference. */
function trainLosses(backend: string): { losses: number[]; w: Float32Array } {
  return scope(() => {
    const gen = new Generator(3);
    const mk = (s: number[], std: number) => E.randn(s, { generator: gen, std, backend }).requiresGrad_();
    const w1 = mk([16, 8], 0.3), b1 = E.zeros([16], { backend }).requiresGrad_(), w2 = mk([4, 16], 0.3);
    const x = E.randn([10, 8], { generator: gen, backend });
    const y = tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1], undefined, { dtype: 'int32', backend });
    const ln = E.ones([16], { backend }), lb = E.zeros([16], { backend });
    const opt = new AdamW([{ params: [w1, w2], weightDecay: 0.01 }, { params: [b1], weightDecay: 0 }], { lr: 1e-2, betas: [0.9, 0.98] });
    const losses: number[] = [];
    const dgen = new Generator(11);
    for (let s = 0; s < 4; s++) {
      losses.push(scope(() => {
        opt.zeroGrad();
        const h = E.dropout(E.layerNorm(E.linear(x, w1, b1), ln, lb).gelu(), 0.1, { training: true, generator: dgen });
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

const targets = backendsUnderTest();
if (targets.length === 0) {
  console.log('skipping backend conformance: no non-reference backend is available');
  test.skip('backend conformance (no non-reference backend available)', () => {});
}
for (const b of targets) {
  test(`${b}: every op matches the reference (${cases.length} cases)`, () => {
    const failures: string[] = [];
    E.setKernelChecks(true); // every kernel call must allocate exactly its outputs (no leaked scratch)
    const live = E.liveTensors();
    for (const c of cases) {
      try {
        runCase(c, b);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (c.optionalInt && /no kernel for dtype int32|does not support dtype int32/.test(msg)) {
          console.log(`skipping case "${c.name}" on ${b}: ${msg.split('\n')[0]}`);
          continue;
        }
        failures.push(`- ${c.name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      }
    }
    E.setKernelChecks(false);
    assert.is(E.liveTensors(), live, 'the cases leave no live tensors');
    assert.ok(failures.length === 0, `${failures.length}/${cases.length} cases fail on ${b}:\n${failures.join('\n')}`);
  });
  test(`${b}: a tiny training run (dropout, layer norm, AdamW) matches the reference losses`, () => {
    const r = trainLosses('ref');
    const t = trainLosses(b);
    allclose(t.losses, r.losses, { rtol: 1e-4, atol: 1e-5, msg: `losses on ${b}` });
    allclose(t.w, r.w, { rtol: 1e-4, atol: 1e-5, msg: `weights after training on ${b}` });
    assert.ok(r.losses[3] < r.losses[0], 'the reference run learns');
  });
}

test.run();
