// The reference backend: plain TypeScript loops over JS typed arrays, the executable specification of every op.
// Its table is typed `KernelTable`, so a missing kernel fails tsc. Storage dtypes: float32, float64, int32.
// Deliberately slow and obvious: values are computed in float64 (JS numbers) and rounded once on store, so a
// single-op float32 kernel elsewhere (correctly rounded add/mul/div/sqrt) should match it exactly; reductions
// and matmul accumulate in float64. Does not allocate outputs (the engine does) nor read device memory.
// Semantics fixed here for every backend: float -> int32 casts truncate toward zero; int32 div truncates;
// comparisons give 0/1; max/argmax return the FIRST maximum (NaN counts as the maximum); index / label out of
// range throws naming the op, position and value.

import type { Backend, DType, KernelTable, Storage, TensorRef, TypedArray } from '../backend.ts';
import { registerBackend } from '../registry.ts';
import { familyKernels, type FamilyOp } from '../op-contract.ts';
import { broadcastStrides, numel, stridesOf, type Shape } from '../shape.ts';
import { normalBlock, uniformBlock } from '../random.ts';

interface RefStorage extends Storage {
  data: TypedArray;
  freed: boolean;
}

function makeArray(dtype: DType, n: number): TypedArray {
  return dtype === 'float32' ? new Float32Array(n) : dtype === 'float64' ? new Float64Array(n) : new Int32Array(n);
}
const BYTES: Record<DType, number> = { float32: 4, float64: 8, int32: 4 };

function arr(t: TensorRef): TypedArray {
  const s = t.storage as RefStorage;
  if (s.freed) throw new Error('ref: kernel got a freed storage');
  return s.data;
}

/** Calls visit(i, off) for every element i (row-major) of `shape`, off = base + sum_d index_d * strides[d]. */
function forEachStrided(shape: Shape, strides: readonly number[], base: number, visit: (i: number, off: number) => void): void {
  const n = numel(shape);
  const cur = new Array<number>(shape.length).fill(0);
  let off = base;
  for (let i = 0; i < n; i++) {
    visit(i, off);
    for (let d = shape.length - 1; d >= 0; d--) {
      cur[d]++;
      off += strides[d];
      if (cur[d] < shape[d]) break;
      off -= strides[d] * cur[d];
      cur[d] = 0;
    }
  }
}

/** Offsets into `inShape`'s (contiguous) data for every element of `outShape` under broadcasting. */
function bcastIndex(inShape: Shape, outShape: Shape): Int32Array {
  const idx = new Int32Array(numel(outShape));
  forEachStrided(outShape, broadcastStrides(inShape, outShape), 0, (i, off) => { idx[i] = off; });
  return idx;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// ---- scalar math ---------------------------------------------------------------------------------------------------

/** erf to ~1e-15: series with positive terms for |x| < 3, continued fraction for erfc beyond. */
export function erfScalar(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  let r: number;
  if (ax < 3) {
    // erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
    let term = ax;
    let s = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x2) / (2 * n + 1);
      s += term;
      if (term < s * 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * s;
  } else if (ax < 6.5) {
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated bottom-up
    let f = ax;
    for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  } else r = 1;
  return x < 0 ? -r : r;
}
const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
function sigmoidScalar(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}
/** out[i] = f(x[i] + bias[i % D], i) over x [.., D]; the sum is rounded to the storage dtype first (as add then gelu). */
function biasGeluRows(inputs: TensorRef[], o: TensorRef, f: (h: number, i: number) => number): void {
  const [x, b] = inputs;
  const X = arr(x), Bv = arr(b), O = arr(o);
  const D = x.shape[x.shape.length - 1], n = numel(x.shape);
  const round = x.dtype === 'float32' ? Math.fround : (v: number) => v;
  for (let i = 0; i < n; i++) O[o.offset + i] = f(round(X[x.offset + i] + Bv[b.offset + (i % D)]), i);
}
function geluScalar(x: number): number {
  return 0.5 * x * (1 + erfScalar(x * SQRT1_2));
}
function geluGrad(x: number): number {
  return 0.5 * (1 + erfScalar(x * SQRT1_2)) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI;
}
function quickGeluGrad(x: number): number {
  const s = sigmoidScalar(1.702 * x);
  return s + 1.702 * x * s * (1 - s);
}

// ---- generic kernels -------------------------------------------------------------------------------------------------

function binaryKernel(f: (a: number, b: number) => number, intF?: (a: number, b: number) => number) {
  return (inputs: TensorRef[], outputs: TensorRef[]): void => {
    const [a, b] = inputs;
    const o = outputs[0];
    const A = arr(a), B = arr(b), O = arr(o);
    const fn = o.dtype === 'int32' && intF ? intF : f;
    const n = numel(o.shape);
    const ao = a.offset, bo = b.offset, oo = o.offset;
    if (sameShape(a.shape, o.shape) && sameShape(b.shape, o.shape)) {
      for (let i = 0; i < n; i++) O[oo + i] = fn(A[ao + i], B[bo + i]);
      return;
    }
    const ia = bcastIndex(a.shape, o.shape), ib = bcastIndex(b.shape, o.shape);
    for (let i = 0; i < n; i++) O[oo + i] = fn(A[ao + ia[i]], B[bo + ib[i]]);
  };
}

function unaryKernel(f: (x: number) => number) {
  return (inputs: TensorRef[], outputs: TensorRef[]): void => {
    const X = arr(inputs[0]), O = arr(outputs[0]);
    const xo = inputs[0].offset, oo = outputs[0].offset;
    const n = numel(outputs[0].shape);
    for (let i = 0; i < n; i++) O[oo + i] = f(X[xo + i]);
  };
}

/** (x, g) -> g * f'(x) */
function pairKernel(f: (x: number, g: number) => number) {
  return (inputs: TensorRef[], outputs: TensorRef[]): void => {
    const X = arr(inputs[0]), G = arr(inputs[1]), O = arr(outputs[0]);
    const xo = inputs[0].offset, go = inputs[1].offset, oo = outputs[0].offset;
    const n = numel(outputs[0].shape);
    for (let i = 0; i < n; i++) O[oo + i] = f(X[xo + i], G[go + i]);
  };
}

/** [outer, axis, inner] decomposition of a shape around one axis. */
function around(shape: Shape, axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}

function maxAlong(x: TensorRef, axis: number, vals: TypedArray | null, vo: number, idxs: TypedArray, io: number): void {
  const X = arr(x);
  const [outer, A, inner] = around(x.shape, axis);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const base = x.offset + o * A * inner + j;
      let best = X[base], bi = 0;
      for (let a = 1; a < A; a++) {
        const v = X[base + a * inner];
        if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
          best = v;
          bi = a;
        }
      }
      const k = o * inner + j;
      if (vals) vals[vo + k] = best;
      idxs[io + k] = bi;
    }
  }
}

function checkIndex(op: string, v: number, size: number, pos: number): void {
  if (!(v >= 0 && v < size)) throw new Error(`${op}: index ${v} at position ${pos} out of range [0, ${size})`);
}

// resize helpers: per output coordinate, the source taps and weights (torch upsample semantics)
function bilinearTaps(inSize: number, outSize: number, align: boolean): { i0: Int32Array; i1: Int32Array; w1: Float64Array } {
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), w1 = new Float64Array(outSize);
  for (let d = 0; d < outSize; d++) {
    let src: number;
    if (align) src = outSize > 1 ? (d * (inSize - 1)) / (outSize - 1) : 0;
    else src = Math.max(((d + 0.5) * inSize) / outSize - 0.5, 0);
    const f = Math.min(Math.floor(src), inSize - 1);
    i0[d] = f;
    i1[d] = Math.min(f + 1, inSize - 1);
    w1[d] = src - f;
  }
  return { i0, i1, w1 };
}
function softmaxRows(inputs: TensorRef[], outputs: TensorRef[], log: boolean, scale = 1): void {
  const x = inputs[0], o = outputs[0];
  const X = arr(x), O = arr(o);
  const D = x.shape[x.shape.length - 1];
  const rows = D === 0 ? 0 : numel(x.shape) / D;
  const mask = inputs[1];
  const M = mask ? arr(mask) : null;
  const mi = mask ? bcastIndex(mask.shape, x.shape) : null;
  const row = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let j = 0; j < D; j++) {
      const k = r * D + j;
      const v = X[x.offset + k] * scale + (M ? M[mask!.offset + mi![k]] : 0);
      row[j] = v;
      if (v > mx) mx = v;
    }
    let s = 0;
    for (let j = 0; j < D; j++) s += Math.exp(row[j] - mx);
    // (row - mx) first: with masked values near -1e30, mx + log(s) would lose log(s)
    const ls = Math.log(s);
    for (let j = 0; j < D; j++) O[o.offset + r * D + j] = log ? row[j] - mx - ls : Math.exp(row[j] - mx) / s;
  }
}

/** The arithmetic of the binary family: float (JS numbers), and int32 where it differs. Also the host emulation of
 *  the CUDA addon (test/engine/cuda-plan.test.ts) computes with these. */
export const BINARY_SCALAR: { readonly [K in FamilyOp<'binary'>]: readonly [(a: number, b: number) => number, ((a: number, b: number) => number)?] } = {
  add: [(a, b) => a + b],
  sub: [(a, b) => a - b],
  mul: [(a, b) => a * b, (a, b) => Math.imul(a, b)],
  div: [(a, b) => a / b, (a, b) => {
    if (b === 0) throw new Error('div: int32 division by zero');
    return Math.trunc(a / b);
  }],
  pow: [(a, b) => Math.pow(a, b)],
  maximum: [(a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b))],
  minimum: [(a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b))],
  eq: [(a, b) => (a === b ? 1 : 0)],
  ne: [(a, b) => (a !== b ? 1 : 0)],
  lt: [(a, b) => (a < b ? 1 : 0)],
  le: [(a, b) => (a <= b ? 1 : 0)],
  gt: [(a, b) => (a > b ? 1 : 0)],
  ge: [(a, b) => (a >= b ? 1 : 0)],
};

/** The arithmetic of the unary family (int32 inputs go through the same functions and are stored truncated). */
export const UNARY_SCALAR: { readonly [K in FamilyOp<'unary'>]: (x: number) => number } = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN),
  tanh: Math.tanh,
  sigmoid: sigmoidScalar,
  relu: (x) => (x > 0 ? x : x === x ? 0 : NaN),
  erf: erfScalar,
  gelu: geluScalar,
  quick_gelu: (x) => x * sigmoidScalar(1.702 * x),
};

/** The arithmetic of the unary backward family: (x, g) -> g * f'(x). */
export const UNARY_BACKWARD_SCALAR: { readonly [K in FamilyOp<'unary_backward'>]: (x: number, g: number) => number } = {
  gelu_backward: (x, g) => g * geluGrad(x),
  quick_gelu_backward: (x, g) => g * quickGeluGrad(x),
};

// ---- the table -------------------------------------------------------------------------------------------------------

const kernels: KernelTable = {
  ...familyKernels('binary', (op) => binaryKernel(...BINARY_SCALAR[op])),
  where: (inputs, outputs) => {
    const [c, a, b] = inputs;
    const o = outputs[0];
    const C = arr(c), A = arr(a), B = arr(b), O = arr(o);
    const n = numel(o.shape);
    const ic = bcastIndex(c.shape, o.shape), ia = bcastIndex(a.shape, o.shape), ib = bcastIndex(b.shape, o.shape);
    for (let i = 0; i < n; i++) O[o.offset + i] = C[c.offset + ic[i]] !== 0 ? A[a.offset + ia[i]] : B[b.offset + ib[i]];
  },

  ...familyKernels('unary', (op) => unaryKernel(UNARY_SCALAR[op])),
  ...familyKernels('unary_backward', (op) => pairKernel(UNARY_BACKWARD_SCALAR[op])),
  affine: (inputs, outputs, a) => unaryKernel((x) => x * a.scale + a.shift)(inputs, outputs),
  pow_scalar: (inputs, outputs, a) => unaryKernel((x) => Math.pow(x, a.exponent))(inputs, outputs),

  sum: (inputs, outputs, a) => {
    const x = inputs[0], o = outputs[0];
    const X = arr(x), O = arr(o);
    const keepShape = x.shape.map((d, i) => (a.axes.includes(i) ? 1 : d));
    const outN = numel(keepShape);
    const acc = new Float64Array(outN);
    const idx = bcastIndex(keepShape, x.shape); // maps each input element to its output slot
    const n = numel(x.shape);
    for (let i = 0; i < n; i++) acc[idx[i]] += X[x.offset + i];
    for (let i = 0; i < outN; i++) O[o.offset + i] = acc[i];
  },
  max: (inputs, outputs, a) => maxAlong(inputs[0], a.axis, arr(outputs[0]), outputs[0].offset, arr(outputs[1]), outputs[1].offset),
  argmax: (inputs, outputs, a) => maxAlong(inputs[0], a.axis, null, 0, arr(outputs[0]), outputs[0].offset),

  matmul: (inputs, outputs, attrs) => {
    const [a, b] = inputs;
    const o = outputs[0];
    const A = arr(a), B = arr(b), O = arr(o);
    const tA = attrs.transA, tB = attrs.transB;
    const M = o.shape[o.shape.length - 2], N = o.shape[o.shape.length - 1];
    const K = tA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
    const batch = o.shape.slice(0, -2);
    const nb = numel(batch);
    const ia = bcastIndex(a.shape.slice(0, -2), batch), ib = bcastIndex(b.shape.slice(0, -2), batch);
    const acc = new Float64Array(N);
    // element strides of A[i,k] and B[k,j]
    const aI = tA ? 1 : K, aK = tA ? M : 1, bK = tB ? 1 : N, bJ = tB ? K : 1;
    for (let p = 0; p < nb; p++) {
      const ao = a.offset + ia[p] * M * K, bo = b.offset + ib[p] * K * N, oo = o.offset + p * M * N;
      for (let i = 0; i < M; i++) {
        acc.fill(0);
        for (let k = 0; k < K; k++) {
          const av = A[ao + i * aI + k * aK];
          const bb = bo + k * bK;
          for (let j = 0; j < N; j++) acc[j] += av * B[bb + j * bJ];
        }
        for (let j = 0; j < N; j++) O[oo + i * N + j] = acc[j];
      }
    }
  },

  softmax: (inputs, outputs, a) => softmaxRows(inputs, outputs, false, a.scale),
  softmax_backward: (inputs, outputs, a) => {
    const sc = a.scale ?? 1;
    const [y, g] = inputs, o = outputs[0];
    const Y = arr(y), G = arr(g), O = arr(o);
    const D = y.shape[y.shape.length - 1];
    const rows = D === 0 ? 0 : numel(y.shape) / D;
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += Y[y.offset + r * D + j] * G[g.offset + r * D + j];
      for (let j = 0; j < D; j++) {
        const yv = Y[y.offset + r * D + j];
        O[o.offset + r * D + j] = sc * yv * (G[g.offset + r * D + j] - s);
      }
    }
  },
  log_softmax: (inputs, outputs, a) => softmaxRows(inputs, outputs, true, a.scale),
  log_softmax_backward: (inputs, outputs, a) => {
    const sc = a.scale ?? 1;
    const [y, g] = inputs, o = outputs[0];
    const Y = arr(y), G = arr(g), O = arr(o);
    const D = y.shape[y.shape.length - 1];
    const rows = D === 0 ? 0 : numel(y.shape) / D;
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += G[g.offset + r * D + j];
      for (let j = 0; j < D; j++) {
        O[o.offset + r * D + j] = sc * (G[g.offset + r * D + j] - Math.exp(Y[y.offset + r * D + j]) * s);
      }
    }
  },
  bias_gelu: (inputs, outputs) => biasGeluRows(inputs, outputs[0], (h) => geluScalar(h)),
  bias_gelu_backward: (inputs, outputs) => {
    const g = inputs[2], G = arr(g);
    biasGeluRows(inputs, outputs[0], (h, i) => G[g.offset + i] * geluGrad(h));
  },
  layer_norm: (inputs, outputs, a) => {
    const [x, w, b] = inputs;
    const [y, mo, ro] = outputs;
    const X = arr(x), W = arr(w), Bv = arr(b), Y = arr(y), MO = arr(mo), RO = arr(ro);
    const D = x.shape[x.shape.length - 1];
    const rows = D === 0 ? 0 : numel(x.shape) / D;
    for (let r = 0; r < rows; r++) {
      const base = x.offset + r * D;
      let m = 0;
      for (let j = 0; j < D; j++) m += X[base + j];
      m /= D;
      let v = 0;
      for (let j = 0; j < D; j++) {
        const d = X[base + j] - m;
        v += d * d;
      }
      v /= D;
      const rs = 1 / Math.sqrt(v + a.eps);
      for (let j = 0; j < D; j++) {
        Y[y.offset + r * D + j] = (X[base + j] - m) * rs * W[w.offset + j] + Bv[b.offset + j];
      }
      MO[mo.offset + r] = m;
      RO[ro.offset + r] = rs;
    }
  },
  layer_norm_backward: (inputs, outputs) => {
    const [g, x, w, mean, rstd] = inputs;
    const [dx, dw, db] = outputs;
    const G = arr(g), X = arr(x), W = arr(w), MN = arr(mean), RS = arr(rstd);
    const DX = arr(dx), DW = arr(dw), DB = arr(db);
    const D = x.shape[x.shape.length - 1];
    const rows = D === 0 ? 0 : numel(x.shape) / D;
    const accW = new Float64Array(D), accB = new Float64Array(D);
    const xhat = new Float64Array(D), dxh = new Float64Array(D);
    for (let r = 0; r < rows; r++) {
      const m = MN[mean.offset + r], rs = RS[rstd.offset + r];
      let s1 = 0, s2 = 0;
      for (let j = 0; j < D; j++) {
        const gv = G[g.offset + r * D + j];
        xhat[j] = (X[x.offset + r * D + j] - m) * rs;
        dxh[j] = gv * W[w.offset + j];
        s1 += dxh[j];
        s2 += dxh[j] * xhat[j];
        accW[j] += gv * xhat[j];
        accB[j] += gv;
      }
      s1 /= D;
      s2 /= D;
      for (let j = 0; j < D; j++) DX[dx.offset + r * D + j] = rs * (dxh[j] - s1 - xhat[j] * s2);
    }
    for (let j = 0; j < D; j++) {
      DW[dw.offset + j] = accW[j];
      DB[db.offset + j] = accB[j];
    }
  },
  dropout: (inputs, outputs, a) => {
    const x = inputs[0], [y, m] = outputs;
    const X = arr(x), Y = arr(y), Mk = arr(m);
    const n = numel(x.shape);
    const u = new Float64Array(n);
    uniformBlock(a.seed, a.offset, n, u);
    const scale = 1 / (1 - a.p);
    for (let i = 0; i < n; i++) {
      Mk[m.offset + i] = u[i] >= a.p ? scale : 0;
      Y[y.offset + i] = X[x.offset + i] * Mk[m.offset + i];
    }
  },
  cross_entropy: (inputs, outputs, a) => {
    const [lg, lb] = inputs, o = outputs[0];
    const L = arr(lg), Lb = arr(lb), O = arr(o);
    const [B, C] = lg.shape;
    for (let r = 0; r < B; r++) {
      const label = Lb[lb.offset + r];
      if (label === a.ignoreIndex) {
        O[o.offset + r] = 0;
        continue;
      }
      checkIndex('cross_entropy (label)', label, C, r);
      const base = lg.offset + r * C;
      let mx = -Infinity;
      for (let j = 0; j < C; j++) if (L[base + j] > mx) mx = L[base + j];
      let s = 0;
      for (let j = 0; j < C; j++) s += Math.exp(L[base + j] - mx);
      O[o.offset + r] = mx + Math.log(s) - L[base + label];
    }
  },
  cross_entropy_backward: (inputs, outputs, a) => {
    const [lg, lb, g] = inputs, o = outputs[0];
    const L = arr(lg), Lb = arr(lb), G = arr(g), O = arr(o);
    const [B, C] = lg.shape;
    for (let r = 0; r < B; r++) {
      const label = Lb[lb.offset + r];
      const base = lg.offset + r * C, ob = o.offset + r * C;
      if (label === a.ignoreIndex) {
        for (let j = 0; j < C; j++) O[ob + j] = 0;
        continue;
      }
      checkIndex('cross_entropy_backward (label)', label, C, r);
      let mx = -Infinity;
      for (let j = 0; j < C; j++) if (L[base + j] > mx) mx = L[base + j];
      let s = 0;
      for (let j = 0; j < C; j++) s += Math.exp(L[base + j] - mx);
      const gv = G[g.offset + r];
      for (let j = 0; j < C; j++) O[ob + j] = gv * (Math.exp(L[base + j] - mx) / s - (j === label ? 1 : 0));
    }
  },
  bce_with_logits: (inputs, outputs) => {
    const [x, t] = inputs, o = outputs[0];
    const X = arr(x), T = arr(t), O = arr(o);
    const n = numel(x.shape);
    for (let i = 0; i < n; i++) {
      const v = X[x.offset + i];
      O[o.offset + i] = Math.max(v, 0) - v * T[t.offset + i] + Math.log1p(Math.exp(-Math.abs(v)));
    }
  },
  bce_with_logits_backward: (inputs, outputs) => {
    const [x, t, g] = inputs, o = outputs[0];
    const X = arr(x), T = arr(t), G = arr(g), O = arr(o);
    const n = numel(x.shape);
    for (let i = 0; i < n; i++) O[o.offset + i] = G[g.offset + i] * (sigmoidScalar(X[x.offset + i]) - T[t.offset + i]);
  },

  index_select: (inputs, outputs, a) => {
    const [x, idx] = inputs, o = outputs[0];
    const X = arr(x), I = arr(idx), O = arr(o);
    const [outer, A, inner] = around(x.shape, a.axis);
    const K = idx.shape[0];
    for (let k = 0; k < K; k++) checkIndex('index_select', I[idx.offset + k], A, k);
    for (let p = 0; p < outer; p++) {
      for (let k = 0; k < K; k++) {
        const src = x.offset + (p * A + I[idx.offset + k]) * inner;
        const dst = o.offset + (p * K + k) * inner;
        for (let j = 0; j < inner; j++) O[dst + j] = X[src + j];
      }
    }
  },
  index_add: (inputs, outputs, a) => {
    const [g, idx] = inputs, o = outputs[0];
    const G = arr(g), I = arr(idx), O = arr(o);
    const [outer, K, inner] = around(g.shape, a.axis);
    const S = a.size;
    const n = numel(o.shape);
    const acc = new Float64Array(n);
    for (let k = 0; k < K; k++) checkIndex('index_add', I[idx.offset + k], S, k);
    for (let p = 0; p < outer; p++) {
      for (let k = 0; k < K; k++) {
        const src = g.offset + (p * K + k) * inner;
        const dst = (p * S + I[idx.offset + k]) * inner;
        for (let j = 0; j < inner; j++) acc[dst + j] += G[src + j];
      }
    }
    for (let i = 0; i < n; i++) O[o.offset + i] = acc[i];
  },
  gather: (inputs, outputs, a) => {
    const [x, idx] = inputs, o = outputs[0];
    const X = arr(x), I = arr(idx), O = arr(o);
    const xs = stridesOf(x.shape);
    const sh = idx.shape;
    const n = numel(sh);
    const cur = new Array<number>(sh.length).fill(0);
    for (let i = 0; i < n; i++) {
      const v = I[idx.offset + i];
      checkIndex('gather', v, x.shape[a.axis], i);
      let off = 0;
      for (let d = 0; d < sh.length; d++) off += (d === a.axis ? v : cur[d]) * xs[d];
      O[o.offset + i] = X[x.offset + off];
      for (let d = sh.length - 1; d >= 0; d--) {
        if (++cur[d] < sh[d]) break;
        cur[d] = 0;
      }
    }
  },
  scatter_add: (inputs, outputs, a) => {
    const [g, idx] = inputs, o = outputs[0];
    const G = arr(g), I = arr(idx), O = arr(o);
    const os = stridesOf(o.shape);
    const sh = idx.shape;
    const n = numel(sh);
    const acc = new Float64Array(numel(o.shape));
    const cur = new Array<number>(sh.length).fill(0);
    for (let i = 0; i < n; i++) {
      const v = I[idx.offset + i];
      checkIndex('scatter_add', v, o.shape[a.axis], i);
      let off = 0;
      for (let d = 0; d < sh.length; d++) off += (d === a.axis ? v : cur[d]) * os[d];
      acc[off] += G[g.offset + i];
      for (let d = sh.length - 1; d >= 0; d--) {
        if (++cur[d] < sh[d]) break;
        cur[d] = 0;
      }
    }
    for (let i = 0; i < acc.length; i++) O[o.offset + i] = acc[i];
  },

  permute: (inputs, outputs, a) => {
    const x = inputs[0], o = outputs[0];
    const X = arr(x), O = arr(o);
    const xs = stridesOf(x.shape);
    forEachStrided(o.shape, a.perm.map((p) => xs[p]), 0, (i, off) => { O[o.offset + i] = X[x.offset + off]; });
  },
  slice: (inputs, outputs, a) => {
    const x = inputs[0], o = outputs[0];
    const X = arr(x), O = arr(o);
    const xs = stridesOf(x.shape);
    let base = 0;
    for (let d = 0; d < xs.length; d++) base += a.starts[d] * xs[d];
    forEachStrided(o.shape, xs, base, (i, off) => { O[o.offset + i] = X[x.offset + off]; });
  },
  pad: (inputs, outputs, a) => {
    const x = inputs[0], o = outputs[0];
    const X = arr(x), O = arr(o);
    O.fill(a.value, o.offset, o.offset + numel(o.shape));
    const os = stridesOf(o.shape);
    let base = 0;
    for (let d = 0; d < os.length; d++) base += a.pads[d][0] * os[d];
    forEachStrided(x.shape, os, base, (i, off) => { O[o.offset + off] = X[x.offset + i]; });
  },
  concat: (inputs, outputs, a) => {
    const o = outputs[0];
    const O = arr(o);
    const [outer, total, inner] = around(o.shape, a.axis);
    let at = 0;
    for (const x of inputs) {
      const X = arr(x);
      const A = x.shape[a.axis];
      for (let p = 0; p < outer; p++) {
        const src = x.offset + p * A * inner;
        const dst = o.offset + (p * total + at) * inner;
        for (let j = 0; j < A * inner; j++) O[dst + j] = X[src + j];
      }
      at += A;
    }
  },
  expand: (inputs, outputs) => {
    const x = inputs[0], o = outputs[0];
    const X = arr(x), O = arr(o);
    const idx = bcastIndex(x.shape, o.shape);
    for (let i = 0; i < idx.length; i++) O[o.offset + i] = X[x.offset + idx[i]];
  },
  cast: (inputs, outputs, a) => {
    const x = inputs[0], o = outputs[0];
    const X = arr(x), O = arr(o);
    const n = numel(x.shape);
    const toInt = a.dtype === 'int32' && x.dtype !== 'int32';
    for (let i = 0; i < n; i++) O[o.offset + i] = toInt ? Math.trunc(X[x.offset + i]) : X[x.offset + i];
  },

  resize_bilinear: (inputs, outputs, a) => {
    const x = inputs[0], o = outputs[0];
    const X = arr(x), O = arr(o);
    const H = x.shape[x.shape.length - 2], W = x.shape[x.shape.length - 1];
    const planes = H * W === 0 ? 0 : numel(x.shape) / (H * W);
    const ty = bilinearTaps(H, a.outH, a.alignCorners), tx = bilinearTaps(W, a.outW, a.alignCorners);
    for (let p = 0; p < planes; p++) {
      const xb = x.offset + p * H * W, ob = o.offset + p * a.outH * a.outW;
      for (let i = 0; i < a.outH; i++) {
        const y0 = ty.i0[i], y1 = ty.i1[i], wy = ty.w1[i];
        for (let j = 0; j < a.outW; j++) {
          const x0 = tx.i0[j], x1 = tx.i1[j], wx = tx.w1[j];
          const top = X[xb + y0 * W + x0] * (1 - wx) + X[xb + y0 * W + x1] * wx;
          const bot = X[xb + y1 * W + x0] * (1 - wx) + X[xb + y1 * W + x1] * wx;
          O[ob + i * a.outW + j] = top * (1 - wy) + bot * wy;
        }
      }
    }
  },
  resize_bilinear_backward: (inputs, outputs, a) => {
    const g = inputs[0], o = outputs[0];
    const G = arr(g), O = arr(o);
    const oh = g.shape[g.shape.length - 2], ow = g.shape[g.shape.length - 1];
    const H = a.inH, W = a.inW;
    const planes = H * W === 0 ? 0 : numel(o.shape) / (H * W);
    const ty = bilinearTaps(H, oh, a.alignCorners), tx = bilinearTaps(W, ow, a.alignCorners);
    const acc = new Float64Array(H * W);
    for (let p = 0; p < planes; p++) {
      acc.fill(0);
      const gb = g.offset + p * oh * ow;
      for (let i = 0; i < oh; i++) {
        const y0 = ty.i0[i], y1 = ty.i1[i], wy = ty.w1[i];
        for (let j = 0; j < ow; j++) {
          const x0 = tx.i0[j], x1 = tx.i1[j], wx = tx.w1[j];
          const v = G[gb + i * ow + j];
          acc[y0 * W + x0] += v * (1 - wy) * (1 - wx);
          acc[y0 * W + x1] += v * (1 - wy) * wx;
          acc[y1 * W + x0] += v * wy * (1 - wx);
          acc[y1 * W + x1] += v * wy * wx;
        }
      }
      for (let k = 0; k < H * W; k++) O[o.offset + p * H * W + k] = acc[k];
    }
  },


  fill: (_inputs, outputs, a) => {
    const o = outputs[0];
    arr(o).fill(a.value, o.offset, o.offset + numel(o.shape));
  },
  random_uniform: (_inputs, outputs, a) => {
    const o = outputs[0], O = arr(o);
    const n = numel(o.shape);
    const u = new Float64Array(n);
    uniformBlock(a.seed, a.offset, n, u);
    for (let i = 0; i < n; i++) O[o.offset + i] = a.low + (a.high - a.low) * u[i];
  },
  random_normal: (_inputs, outputs, a) => {
    const o = outputs[0], O = arr(o);
    const n = numel(o.shape);
    const z = new Float64Array(n);
    normalBlock(a.seed, a.offset, n, z);
    for (let i = 0; i < n; i++) O[o.offset + i] = a.mean + a.std * z[i];
  },

  adamw_step: (inputs, _outputs, a) => {
    const [p, g, m, v] = inputs;
    const P = arr(p), G = arr(g), Mm = arr(m), V = arr(v);
    const n = numel(p.shape);
    const bc1 = 1 - Math.pow(a.beta1, a.step), bc2 = 1 - Math.pow(a.beta2, a.step);
    const stepSize = (a.lr * Math.sqrt(bc2)) / bc1;
    const decay = a.lr * a.weightDecay;
    for (let i = 0; i < n; i++) {
      const gv = G[g.offset + i];
      Mm[m.offset + i] = a.beta1 * Mm[m.offset + i] + (1 - a.beta1) * gv;
      V[v.offset + i] = a.beta2 * V[v.offset + i] + (1 - a.beta2) * gv * gv;
      const mv = Mm[m.offset + i], vv = V[v.offset + i];
      P[p.offset + i] = P[p.offset + i] - (stepSize * mv) / (Math.sqrt(vv) + a.eps);
      if (decay !== 0) P[p.offset + i] = P[p.offset + i] - decay * P[p.offset + i];
    }
  },
  sgd_step: (inputs, _outputs, a) => {
    const [p, g, buf] = inputs;
    const P = arr(p), G = arr(g), Bf = buf ? arr(buf) : null;
    const n = numel(p.shape);
    for (let i = 0; i < n; i++) {
      let d = G[g.offset + i] + a.weightDecay * P[p.offset + i];
      if (Bf && a.momentum !== 0) {
        Bf[buf!.offset + i] = a.momentum * Bf[buf!.offset + i] + d;
        d = Bf[buf!.offset + i];
      }
      P[p.offset + i] = P[p.offset + i] - a.lr * d;
    }
  },
};

/** Build a reference backend instance (tests may build a private one). */
export function createRefBackend(name = 'ref'): Backend {
  let bytes = 0;
  return {
    name,
    dtypes: ['float32', 'float64', 'int32'],
    kernels,
    alloc(numelN: number, dtype: DType): Storage {
      const s: RefStorage = { backend: name, numel: numelN, dtype, data: makeArray(dtype, numelN), freed: false };
      bytes += numelN * BYTES[dtype];
      return s;
    },
    free(storage: Storage): void {
      const s = storage as RefStorage;
      if (s.freed) throw new Error('ref: storage freed twice');
      s.freed = true;
      bytes -= s.numel * BYTES[s.dtype];
    },
    write(storage: Storage, data: TypedArray, offset = 0): void {
      const s = storage as RefStorage;
      if (s.freed) throw new Error('ref: write to a freed storage');
      if (offset + data.length > s.numel) throw new Error(`ref: write of ${data.length} at ${offset} overflows storage of ${s.numel}`);
      s.data.set(data, offset);
    },
    read(storage: Storage, offset = 0, n?: number): TypedArray {
      const s = storage as RefStorage;
      if (s.freed) throw new Error('ref: read of a freed storage');
      const count = n ?? s.numel - offset;
      return s.data.slice(offset, offset + count);
    },
    allocatedBytes: () => bytes,
  };
}

/** The reference table, for backends that reuse some reference kernels on host memory (none today). */
export const refKernels: KernelTable = kernels;

registerBackend('ref', () => createRefBackend('ref'), 0);
