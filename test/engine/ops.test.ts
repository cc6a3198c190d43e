// Forward results of the ops on the reference backend against naive host expectations: random shapes,
// broadcasting, size-1 and odd sizes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { Tensor, setBackend, tensor } from '../../engine/index.ts';
import { allclose, hostRandom, leakGuard, randomTensor } from '../helpers.ts';

setBackend('ref');
const rng = hostRandom(11);
const rt = (shape: number[], lo = -2, hi = 2) => randomTensor(shape, rng, { lo, hi });
const arr = (t: Tensor) => Array.from(t.toArray());
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const strides = (s: readonly number[]) => { const st = s.map(() => 1); for (let i = s.length - 2; i >= 0; i--) st[i] = st[i + 1] * s[i + 1]; return st; };
const unravel = (i: number, s: readonly number[]) => { const st = strides(s); return s.map((d, k) => Math.floor(i / st[k]) % d); };
const at = (data: ArrayLike<number>, s: readonly number[], idx: number[]) => { const st = strides(s); let o = 0; idx.forEach((v, k) => { o += v * st[k]; }); return data[o]; };
/** naive broadcast read: element of `s` seen at out index `idx` */
const bread = (data: ArrayLike<number>, s: readonly number[], idx: number[]) => at(data, s, s.map((d, k) => (d === 1 ? 0 : idx[idx.length - s.length + k])));
const f32 = (x: number) => Math.fround(x);

const PAIRS: [number[], number[]][] = [
  [[5], [5]], [[2, 3], [3]], [[2, 1, 3], [4, 1]], [[1], [7]], [[], [2, 2]], [[7, 1], [1, 5]], [[3, 1, 1], [1, 2, 5]], [[1, 1], [1, 1]],
];
const BIN: [string, (a: number, b: number) => number][] = [
  ['add', (a, b) => a + b], ['sub', (a, b) => a - b], ['mul', (a, b) => a * b], ['div', (a, b) => a / b],
  ['maximum', Math.max], ['minimum', Math.min],
  ['eq', (a, b) => +(a === b)], ['ne', (a, b) => +(a !== b)], ['lt', (a, b) => +(a < b)], ['le', (a, b) => +(a <= b)],
  ['gt', (a, b) => +(a > b)], ['ge', (a, b) => +(a >= b)],
];

test('binary ops with broadcasting', leakGuard(() => E.scope(() => {
  for (const [sa, sb] of PAIRS) {
    const a = rt(sa), b = rt(sb);
    const ad = a.toArray(), bd = b.toArray();
    const out = E.broadcastShapes('t', sa, sb);
    for (const [name, f] of BIN) {
      const y = (E as unknown as Record<string, (x: Tensor, z: Tensor) => Tensor>)[name](a, b);
      assert.equal(y.shape, out, `${name} shape`);
      const exp = Array.from({ length: numel(out) }, (_, i) => { const idx = unravel(i, out); return f32(f(bread(ad, sa, idx), bread(bd, sb, idx))); });
      allclose(y, exp, { rtol: 0, atol: 0, msg: `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}` });
    }
    const p = E.pow(E.abs(a).add(0.1), b);
    const pexp = Array.from({ length: numel(out) }, (_, i) => { const idx = unravel(i, out); return Math.pow(f32(Math.abs(bread(ad, sa, idx)) + 0.1), bread(bd, sb, idx)); });
    allclose(p, pexp, { rtol: 1e-6, msg: 'pow' });
  }
})));

test('scalar operands, comparisons with numbers, where and maskedFill', leakGuard(() => E.scope(() => {
  const a = tensor([[1, -2, 3], [0.5, 4, -6]]);
  allclose(a.add(1), [2, -1, 4, 1.5, 5, -5]);
  allclose(E.sub(10, a), [9, 12, 7, 9.5, 6, 16]);
  allclose(a.mul(-2), [-2, 4, -6, -1, -8, 12]);
  allclose(a.div(2), [0.5, -1, 1.5, 0.25, 2, -3]);
  allclose(a.gt(0.5), [1, 0, 1, 0, 1, 0]);
  allclose(a.maximum(0), [1, 0, 3, 0.5, 4, 0]);
  allclose(E.where(a.gt(0), a, tensor([10, 20, 30])), [1, 20, 3, 0.5, 4, 30]);
  const mask = tensor([[1, 0, 0], [0, 0, 1]], undefined, { dtype: 'int32' });
  allclose(a.maskedFill(mask, -9), [-9, -2, 3, 0.5, 4, -9]);
  const ints = tensor([7, -7, 5], undefined, { dtype: 'int32' });
  assert.equal(Array.from(E.div(ints, tensor([2, 2, 5], undefined, { dtype: 'int32' })).toArray()), [3, -3, 1]);
  assert.equal(ints.add(3).dtype, 'int32');
  assert.throws(() => ints.mul(0.5), /int32 tensor with non-integer scale/);
})));

test('unary ops against Math and known erf / gelu values', leakGuard(() => E.scope(() => {
  const x = rt([3, 7], -3, 3);
  const xd = x.toArray();
  const U: [string, (v: number) => number][] = [
    ['neg', (v) => -v], ['exp', Math.exp], ['abs', Math.abs], ['sign', Math.sign], ['tanh', Math.tanh],
    ['sigmoid', (v) => 1 / (1 + Math.exp(-v))], ['relu', (v) => Math.max(v, 0)], ['quickGelu', (v) => v / (1 + Math.exp(-1.702 * v))],
  ];
  for (const [name, f] of U) {
    const y = (x as unknown as Record<string, () => Tensor>)[name].call(x);
    allclose(y, Array.from(xd, (v) => f32(f(v))), { rtol: 1e-6, atol: 1e-7, msg: name });
  }
  const pos = rt([11], 0.1, 5);
  const pd = pos.toArray();
  allclose(pos.log(), Array.from(pd, Math.log), { msg: 'log' });
  allclose(pos.sqrt(), Array.from(pd, Math.sqrt), { msg: 'sqrt' });
  allclose(pos.rsqrt(), Array.from(pd, (v) => 1 / Math.sqrt(v)), { msg: 'rsqrt' });
  allclose(pos.pow(1.5), Array.from(pd, (v) => v ** 1.5), { msg: 'pow scalar' });
  const e = tensor([0, 0.5, 1, 2, -3, 4, 7], undefined, { dtype: 'float64' });
  allclose(e.erf(), [0, 0.5204998778130465, 0.8427007929497149, 0.9953222650189527, -0.9999779095030014, 0.9999999845827421, 1], { rtol: 1e-13, atol: 1e-15, msg: 'erf' });
  allclose(tensor([1, -1, 0, 3], undefined, { dtype: 'float64' }).gelu(), [0.8413447460685429, -0.15865525393145707, 0, 2.99595030590511], { rtol: 1e-12, msg: 'gelu' });
})));


test('reductions: sum / mean over axes, max / argmax (first maximum)', leakGuard(() => E.scope(() => {
  for (const shape of [[5], [3, 4], [2, 3, 5], [1, 7, 1]]) {
    const x = rt(shape);
    const xd = x.toArray();
    const axesList: number[][] = [[], ...shape.map((_, i) => [i]), shape.length > 1 ? [0, shape.length - 1] : [0]];
    for (const axes of axesList) {
      for (const keep of [false, true]) {
        const ax = axes.length ? axes : shape.map((_, i) => i);
        const y = x.sum(axes.length ? axes : undefined, keep);
        const oshape = shape.flatMap((d, i) => (ax.includes(i) ? (keep ? [1] : []) : [d]));
        assert.equal(y.shape, oshape);
        const acc = new Float64Array(numel(oshape));
        for (let i = 0; i < xd.length; i++) {
          const idx = unravel(i, shape);
          const kidx = idx.map((v, k) => (ax.includes(k) ? 0 : v));
          const kshape = shape.map((d, k) => (ax.includes(k) ? 1 : d));
          acc[at(Array.from({ length: numel(kshape) }, (_, j) => j), kshape, kidx)] += xd[i];
        }
        allclose(y, acc, { rtol: 1e-6, msg: `sum ${JSON.stringify(shape)} axes ${JSON.stringify(axes)}` });
        const n = ax.reduce((a, k) => a * shape[k], 1);
        allclose(x.mean(axes.length ? axes : undefined, keep), Array.from(acc, (v) => v / n), { rtol: 1e-5, msg: 'mean' });
      }
    }
  }
  const t = tensor([[1, 5, 5, 2], [7, 0, 7, -1], [-3, -2, -5, -2]]);
  const { values, indices } = t.maxWithIndices(1);
  allclose(values, [5, 7, -2]);
  assert.equal(Array.from(indices.toArray()), [1, 0, 1]);
  assert.equal(indices.dtype, 'int32');
  assert.equal(Array.from(t.argmax(0).toArray()), [1, 0, 1, 0]);
  assert.equal(t.max(0, true).shape, [1, 4]);
  assert.equal(t.argmax(-1, true).shape, [3, 1]);
})));

function naiveMatmul(a: Tensor, b: Tensor, tA: boolean, tB: boolean): number[] {
  const ad = a.toArray(), bd = b.toArray();
  const M = tA ? a.shape[a.ndim - 1] : a.shape[a.ndim - 2], K = tA ? a.shape[a.ndim - 2] : a.shape[a.ndim - 1];
  const N = tB ? b.shape[b.ndim - 2] : b.shape[b.ndim - 1];
  const batch = E.broadcastShapes('mm', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out: number[] = [];
  for (let p = 0; p < numel(batch); p++) {
    const bi = unravel(p, batch);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = bread(ad, a.shape, [...bi, tA ? k : i, tA ? i : k]);
        const bv = bread(bd, b.shape, [...bi, tB ? j : k, tB ? k : j]);
        s += av * bv;
      }
      out.push(s);
    }
  }
  return out;
}

test('matmul: every transpose flag combination, batch broadcasting, odd sizes', leakGuard(() => E.scope(() => {
  const cases: [number[], number[], number, number, number][] = [
    // batchA, batchB, M, K, N
    [[], [], 1, 1, 1], [[], [], 3, 5, 7], [[2], [2], 4, 3, 5], [[2, 1], [3], 5, 7, 3], [[1], [4], 2, 9, 1], [[3], [], 6, 2, 4],
  ];
  for (const [ba, bb, M, K, N] of cases) {
    for (const tA of [false, true]) for (const tB of [false, true]) {
      const a = rt([...ba, ...(tA ? [K, M] : [M, K])]);
      const b = rt([...bb, ...(tB ? [N, K] : [K, N])]);
      const y = a.matmul(b, { transA: tA, transB: tB });
      assert.equal(y.shape, [...E.broadcastShapes('mm', ba, bb), M, N]);
      allclose(y, naiveMatmul(a, b, tA, tB), { rtol: 1e-5, atol: 1e-6, msg: `matmul ${JSON.stringify([ba, bb, M, K, N, tA, tB])}` });
    }
  }
  const x = rt([2, 3, 4]), w = rt([5, 4]), bias = rt([5]);
  const lin = E.linear(x, w, bias);
  const ref = naiveMatmul(x, w, false, true);
  const bd = bias.toArray();
  allclose(lin, ref.map((v, i) => v + bd[i % 5]), { rtol: 1e-5, msg: 'linear' });
  assert.equal(E.linear(rt([4]), w).shape, [5]);
})));

test('softmax / logSoftmax along any axis, additive and boolean masks, fully masked rows', leakGuard(() => E.scope(() => {
  const x = rt([2, 3, 5], -3, 3);
  const xd = x.toArray();
  for (const axis of [0, 1, 2, -1]) {
    const ax = (axis + 3) % 3;
    const y = x.softmax(axis), ly = x.logSoftmax(axis);
    const exp: number[] = [], lexp: number[] = [];
    for (let i = 0; i < xd.length; i++) {
      const idx = unravel(i, x.shape);
      let mx = -Infinity;
      for (let k = 0; k < x.shape[ax]; k++) { const j = idx.slice(); j[ax] = k; mx = Math.max(mx, at(xd, x.shape, j)); }
      let s = 0;
      for (let k = 0; k < x.shape[ax]; k++) { const j = idx.slice(); j[ax] = k; s += Math.exp(at(xd, x.shape, j) - mx); }
      exp.push(Math.exp(xd[i] - mx) / s);
      lexp.push(xd[i] - mx - Math.log(s));
    }
    allclose(y, exp, { rtol: 1e-5, msg: `softmax axis ${axis}` });
    allclose(ly, lexp, { rtol: 1e-5, atol: 1e-6, msg: `logSoftmax axis ${axis}` });
  }
  const s = tensor([[1, 2, 3, 4], [4, 3, 2, 1]]);
  const add = tensor([0, 0, -1e9, 0]);
  const bool = tensor([[1, 1, 0, 1], [0, 0, 0, 0]], undefined, { dtype: 'int32' });
  const r1 = s.softmax(-1, add).toArray();
  assert.is(r1[2], 0);
  const e = [Math.exp(1), Math.exp(2), Math.exp(4)], z = e[0] + e[1] + e[2];
  allclose([r1[0], r1[1], r1[3]], [e[0] / z, e[1] / z, e[2] / z], { rtol: 1e-6 });
  const r2 = s.softmax(-1, bool);
  allclose(r2.slice(0, 0, 1), [[e[0] / z, e[1] / z, 0, e[2] / z]], { rtol: 1e-6, msg: 'boolean mask row' });
  allclose(r2.slice(0, 1, 2), [[0.25, 0.25, 0.25, 0.25]], { msg: 'fully masked row is uniform, not NaN' });
})));

test('layerNorm, crossEntropy, bceWithLogits against naive formulas', leakGuard(() => E.scope(() => {
  const x = rt([3, 2, 7]), w = rt([7]), b = rt([7]);
  const xd = x.toArray(), wd = w.toArray(), bd = b.toArray();
  const exp: number[] = [];
  for (let r = 0; r < 6; r++) {
    const row = Array.from(xd.slice(r * 7, r * 7 + 7));
    const m = row.reduce((a, v) => a + v, 0) / 7;
    const v = row.reduce((a, q) => a + (q - m) ** 2, 0) / 7;
    row.forEach((q, j) => exp.push(((q - m) / Math.sqrt(v + 1e-5)) * wd[j] + bd[j]));
  }
  allclose(E.layerNorm(x, w, b, 1e-5), exp, { rtol: 1e-5, atol: 1e-5, msg: 'layerNorm' });

  const logits = rt([4, 5], -3, 3);
  const ld = logits.toArray();
  const labels = tensor([4, -100, 0, 2], undefined, { dtype: 'int32' });
  const per = [4, -100, 0, 2].map((l, r) => {
    if (l === -100) return 0;
    const row = Array.from(ld.slice(r * 5, r * 5 + 5));
    const mx = Math.max(...row);
    return mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0)) - row[l];
  });
  allclose(E.crossEntropy(logits, labels, { reduction: 'none' }), per, { rtol: 1e-5, msg: 'CE none' });
  allclose(E.crossEntropy(logits, labels), [(per[0] + per[2] + per[3]) / 3], { rtol: 1e-5, msg: 'CE mean over non-ignored' });
  allclose(E.crossEntropy(logits, labels, { reduction: 'sum' }), [per[0] + per[2] + per[3]], { rtol: 1e-5, msg: 'CE sum' });
  assert.throws(() => E.crossEntropy(logits, tensor([5, 0, 0, 0], undefined, { dtype: 'int32' })), /index 5 at position 0 out of range/);

  const bx = tensor([-100, -2, 0, 0.5, 3, 100]), bt = tensor([0, 1, 0.5, 1, 0, 1]);
  const bxd = [-100, -2, 0, 0.5, 3, 100], btd = [0, 1, 0.5, 1, 0, 1];
  const bexp = bxd.map((v, i) => Math.max(v, 0) - v * btd[i] + Math.log1p(Math.exp(-Math.abs(v))));
  allclose(E.bceWithLogits(bx, bt, { reduction: 'none' }), bexp, { rtol: 1e-6, msg: 'bce stable at +-100' });
  allclose(E.bceWithLogits(bx, bt), [bexp.reduce((a, v) => a + v, 0) / 6], { rtol: 1e-6, msg: 'bce mean' });
})));

test('gathers: indexSelect, embedding, indexAdd, gather, scatterAdd; bad indices throw', leakGuard(() => E.scope(() => {
  const x = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);
  const idx = tensor([3, 0, 3], undefined, { dtype: 'int32' });
  assert.equal(E.indexSelect(x, idx, 0).toList(), [[10, 11, 12], [1, 2, 3], [10, 11, 12]]);
  assert.equal(E.indexSelect(x, tensor([2, 2], undefined, { dtype: 'int32' }), 1).toList(), [[3, 3], [6, 6], [9, 9], [12, 12]]);
  const ids = tensor([[1, 1], [0, 3]], undefined, { dtype: 'int32' });
  assert.equal(E.embedding(x, ids).toList(), [[[4, 5, 6], [4, 5, 6]], [[1, 2, 3], [10, 11, 12]]]);
  assert.equal(E.indexAdd(tensor([[1, 1], [2, 2], [3, 3]]), tensor([1, 1, 0], undefined, { dtype: 'int32' }), 0, 3).toList(), [[3, 3], [3, 3], [0, 0]]);
  const gi = tensor([[0, 0], [2, 1]], undefined, { dtype: 'int32' });
  const g3 = tensor([[1, 2, 3], [4, 5, 6]]);
  assert.equal(E.gather(g3, gi, 1).toList(), [[1, 1], [6, 5]]);
  assert.equal(E.scatterAdd(tensor([[1, 2], [3, 4]]), gi, 1, [2, 3]).toList(), [[3, 0, 0], [0, 4, 3]]);
  assert.throws(() => E.indexSelect(x, tensor([4], undefined, { dtype: 'int32' }), 0), /index_select: index 4 at position 0 out of range \[0, 4\)/);
  assert.throws(() => E.embedding(x, tensor([-1], undefined, { dtype: 'int32' })), /out of range/);
})));

test('movement: permute, transpose, slice, pad, concat, stack, expand, reshape views', leakGuard(() => E.scope(() => {
  const x = rt([2, 3, 4]);
  const xd = x.toArray();
  const p = x.permute(2, 0, 1);
  assert.equal(p.shape, [4, 2, 3]);
  allclose(p, Array.from({ length: 24 }, (_, i) => { const [c, a, b] = unravel(i, [4, 2, 3]); return at(xd, [2, 3, 4], [a, b, c]); }), { rtol: 0, atol: 0 });
  const sl = x.slice(2, 1, -1);
  allclose(sl, Array.from({ length: 12 }, (_, i) => { const [a, b, c] = unravel(i, [2, 3, 2]); return at(xd, [2, 3, 4], [a, b, c + 1]); }), { rtol: 0, atol: 0 });
  assert.equal(x.slice(1, -1).shape, [2, 1, 4]);
  assert.equal(x.slice(0, 5, 9).shape, [0, 3, 4]);
  const t = tensor([[1, 2], [3, 4]]);
  assert.equal(E.pad(t, [[1, 0], [0, 2]], 9).toList(), [[9, 9, 9, 9], [1, 2, 9, 9], [3, 4, 9, 9]]);
  assert.equal(E.pad(t, [[1, 1]]).toList(), [[0, 1, 2, 0], [0, 3, 4, 0]]);
  assert.equal(E.concat([t, tensor([[5], [6]])], 1).toList(), [[1, 2, 5], [3, 4, 6]]);
  assert.equal(E.concat([t, tensor([[7, 8]])], 0).toList(), [[1, 2], [3, 4], [7, 8]]);
  assert.equal(E.stack([t, t], 2).shape, [2, 2, 2]);
  assert.equal(tensor([[1], [2]]).expand([2, 2, 3]).toList(), [[[1, 1, 1], [2, 2, 2]], [[1, 1, 1], [2, 2, 2]]]);
  assert.equal(tensor([1, 2, 3]).expand([2, -1]).toList(), [[1, 2, 3], [1, 2, 3]]);
  assert.equal(x.transpose(0, 2).shape, [4, 3, 2]);
  assert.equal(x.reshape([4, -1]).shape, [4, 6]);
  assert.equal(x.flatten(1).shape, [2, 12]);
  assert.equal(x.unsqueeze(-1).shape, [2, 3, 4, 1]);
  assert.equal(rt([1, 3, 1]).squeeze().shape, [3]);
  assert.equal(rt([1, 3, 1]).squeeze(0).shape, [3, 1]);
  assert.equal(E.arange(5).toList(), [0, 1, 2, 3, 4]);
  assert.equal(E.arange(2, 8, 3, { dtype: 'int32' }).toList(), [2, 5]);
  assert.equal(tensor([1.7, -1.7, 2.5]).cast('int32').toList(), [1, -1, 2]);
})));

test('unfoldPatches + linear equals a stride-p convolution (patch embedding)', leakGuard(() => E.scope(() => {
  const [B, C, H, W, p, D] = [2, 3, 4, 6, 2, 5];
  const x = rt([B, C, H, W]), w = rt([D, C, p, p]), b = rt([D]);
  const xd = x.toArray(), wd = w.toArray(), bd = b.toArray();
  const y = E.linear(E.unfoldPatches(x, p), w.reshape([D, -1]), b);
  assert.equal(y.shape, [B, (H / p) * (W / p), D]);
  const exp: number[] = [];
  for (let bi = 0; bi < B; bi++) for (let pi = 0; pi < H / p; pi++) for (let pj = 0; pj < W / p; pj++) for (let d = 0; d < D; d++) {
    let s = bd[d];
    for (let c = 0; c < C; c++) for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) {
      s += at(xd, [B, C, H, W], [bi, c, pi * p + i, pj * p + j]) * at(wd, [D, C, p, p], [d, c, i, j]);
    }
    exp.push(s);
  }
  allclose(y, exp, { rtol: 1e-5, atol: 1e-6 });
  assert.throws(() => E.unfoldPatches(x, 4), /patch 4 does not divide image 4x6/);
})));

test('resizeBilinear (align corners and half-pixel) and resizeBicubic', leakGuard(() => E.scope(() => {
  const line = tensor([[0, 1]]);
  allclose(E.resizeBilinear(line, 1, 3, true), [0, 0.5, 1]);
  allclose(E.resizeBilinear(line, 1, 4, false), [0, 0.25, 0.75, 1]);
  const img = rt([2, 3, 5]);
  allclose(E.resizeBilinear(img, 3, 5, true), img, { rtol: 0, atol: 1e-7, msg: 'identity align' });
  allclose(E.resizeBilinear(img, 3, 5, false), img, { rtol: 0, atol: 1e-7, msg: 'identity half-pixel' });
  allclose(E.resizeBicubic(img, 3, 5, false), img, { rtol: 0, atol: 1e-6, msg: 'bicubic identity' });
  // bicubic on a linear ramp reproduces the ramp inside (cubic convolution is exact on linear functions)
  const ramp = tensor(Float32Array.from({ length: 8 }, (_, i) => i), [1, 8]);
  const up = E.resizeBicubic(ramp, 1, 15, true).toArray();
  for (let j = 2; j < 13; j++) assert.ok(Math.abs(up[j] - j * 0.5) < 1e-5, `ramp at ${j}: ${up[j]}`);
  // a host function: the same values on every backend, in the input's dtype and on its backend
  for (const be of ['ref', 'wasm']) {
    if (!E.backends().includes(be)) continue;
    for (const ac of [false, true]) {
      const x = rt([2, 7, 6]).to(be);
      const y = E.resizeBicubic(x, 12, 4, ac);
      assert.equal([y.shape, y.dtype, y.backend.name], [[2, 12, 4], 'float32', be]);
      assert.equal(Array.from(y.toArray()), Array.from(E.resizeBicubic(x.to('ref'), 12, 4, ac).toArray()));
    }
  }
  assert.throws(() => E.resizeBicubic(tensor([1, 2], [2], { dtype: 'float32' }), 2, 2), /resize_bicubic: input must be \[\.\.\., H, W\]/);
  // 2x2 -> 3x3 align corners: the centre is the mean
  allclose(E.resizeBilinear(tensor([[[1, 2], [3, 4]]]), 3, 3, true).slice(1, 1, 2).slice(2, 1, 2), [2.5]);
})));

test('creation: tensor from nested arrays and typed arrays, full, rand/randn ranges, item, toList', leakGuard(() => E.scope(() => {
  assert.equal(tensor([[1, 2], [3, 4]]).shape, [2, 2]);
  assert.equal(tensor(new Int32Array([1, 2, 3])).dtype, 'int32');
  assert.equal(tensor(new Float64Array(6), [2, 3]).dtype, 'float64');
  assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
  assert.throws(() => tensor([1, 2, 3], [2, 2]), /3 values do not fill shape \[2,2\]/);
  assert.is(E.full([], 3.5).item(), 3.5);
  assert.equal(E.zeros([2, 0]).shape, [2, 0]);
  const u = E.rand([1000], { low: 2, high: 3, generator: new E.Generator(1) }).toArray();
  assert.ok(u.every((v) => v >= 2 && v < 3));
  const n = Array.from(E.randn([4000], { generator: new E.Generator(2), mean: 1, std: 2 }).toArray());
  const m = n.reduce((a, v) => a + v, 0) / n.length;
  const sd = Math.sqrt(n.reduce((a, v) => a + (v - m) ** 2, 0) / n.length);
  assert.ok(Math.abs(m - 1) < 0.1 && Math.abs(sd - 2) < 0.1, `randn mean ${m} std ${sd}`);
})));

test('assign copies into the destination in place (identity kept), casts, crosses backends, and refuses bad targets', leakGuard(() => E.scope(() => {
  const dst = tensor([[1, 2], [3, 4]]);
  const view = dst.reshape([4]); // shares dst's storage: sees the new values
  E.assign(dst, tensor([[5, 6], [7, 8]], undefined, { dtype: 'float64' }));
  allclose(dst, [[5, 6], [7, 8]]);
  allclose(view, [5, 6, 7, 8]);
  const other = E.backends().find((b) => b !== 'ref' && b !== 'shape' && E.backendStatus().find((s) => s.name === b)?.available);
  if (other) {
    E.assign(dst, tensor([[9, 10], [11, 12]], undefined, { backend: other }));
    allclose(dst, [[9, 10], [11, 12]]);
  }
  const ints = tensor([0, 0], undefined, { dtype: 'int32' });
  E.assign(ints, tensor([2.9, -1.5]));
  assert.equal(Array.from(ints.toArray()), [2, -1]);
  assert.throws(() => E.assign(dst, tensor([1, 2, 3, 4])), /assign: source \[4\] and destination \[2,2\] differ in shape/);
  const w = tensor([1, 2], undefined, { requiresGrad: true });
  assert.throws(() => E.assign(w.mul(2), tensor([0, 0])), /output of a recorded op/);
})));

test.run();
