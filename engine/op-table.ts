// THE op table (DESIGN.md lessons 1-4): for every op of the contract (op-contract.ts: names, attributes, arity,
// dtypes, codes), its shape + dtype rule, which tensors its gradient reads, and its gradient rule written in terms of
// other ops through the functional API (fused routines point at their *_backward op). Installs itself into
// dispatch.ts on import (engine/index.ts imports it).
// Does not: implement kernels (engine/backends/*), do double backward (backward kernels have no gradient rule unless
// listed), or make views except reshape/detach (which share storage, see tensor.ts).
// Conventions: comparisons return 0/1 in the inputs' dtype; float -> int32 casts truncate.

import type { DType, OpName } from './backend.ts';
import type { Tensor } from './tensor.ts';
import { takesInt } from './op-contract.ts';
import { apply, installOpTable, type CreateSpec, type OpTable, type OutSpec } from './dispatch.ts';
import {
  affine, cast, div, exp, expand, ge, gt, le, log, matmul, mul, neg, pow, powScalar, reshape, sign, slice, sub, sumTo,
  where, zerosLike,
} from './api.ts';
import { broadcastShapes, checkShape, normAxis, reducedShape, resizedShape, sameShape, shapeStr, type Shape } from './shape.ts';

const FLOAT: readonly DType[] = ['float32', 'float64'];

function dtypeName(d: readonly DType[]): string {
  return d.join(', ');
}
function requireFloat(op: string, d: DType): void {
  if (!FLOAT.includes(d)) throw new Error(`${op}: expected a float tensor, got ${d}`);
}
function sameDtypes(op: string, dtypes: readonly DType[]): DType {
  for (const d of dtypes) if (d !== dtypes[0]) throw new Error(`${op}: dtype mismatch (${dtypeName(dtypes)})`);
  return dtypes[0];
}
function requireInt(op: string, what: string, d: DType): void {
  if (d !== 'int32') throw new Error(`${op}: ${what} must be int32, got ${d}`);
}

/** binary and unary families: float-only when the contract says so */
const binaryInfer = (op: OpName) => (s: readonly Shape[], d: readonly DType[]): OutSpec[] => {
  const dtype = sameDtypes(op, d);
  if (!takesInt(op)) requireFloat(op, dtype);
  return [{ shape: broadcastShapes(op, s[0], s[1]), dtype }];
};
const unaryInfer = (op: OpName) => (s: readonly Shape[], d: readonly DType[]): OutSpec[] => {
  if (!takesInt(op)) requireFloat(op, d[0]);
  return [{ shape: s[0].slice(), dtype: d[0] }];
};
/** (x, g) -> dx, both of x's shape */
const pairInfer = (op: string) => (s: readonly Shape[], d: readonly DType[]): OutSpec[] => {
  sameDtypes(op, d);
  requireFloat(op, d[0]);
  if (!sameShape(s[0], s[1])) throw new Error(`${op}: shapes ${shapeStr(s[0])} and ${shapeStr(s[1])} differ`);
  return [{ shape: s[0].slice(), dtype: d[0] }];
};
/** comparisons: 0/1 in the inputs' dtype, never differentiable */
const compare = (op: OpName) => ({ infer: binaryInfer(op) });

function matmulDims(op: string, a: Shape, b: Shape, tA: boolean, tB: boolean) {
  if (a.length < 2 || b.length < 2) {
    throw new Error(`${op}: both operands need rank >= 2, got ${shapeStr(a)} and ${shapeStr(b)}`);
  }
  const M = tA ? a[a.length - 1] : a[a.length - 2];
  const K = tA ? a[a.length - 2] : a[a.length - 1];
  const K2 = tB ? b[b.length - 1] : b[b.length - 2];
  const N = tB ? b[b.length - 2] : b[b.length - 1];
  if (K !== K2) {
    throw new Error(`${op}: inner dimensions differ: ${shapeStr(a)}${tA ? '^T' : ''} x ${shapeStr(b)}${tB ? '^T' : ''} (${K} vs ${K2})`);
  }
  const batch = broadcastShapes(op, a.slice(0, -2), b.slice(0, -2));
  return { M, K, N, batch };
}

/** Two-input products (mul, matmul): input 1 is read for input 0's gradient and input 0 for input 1's. */
const crossSaves = (n: readonly boolean[]): number[] => [...(n[1] ? [0] : []), ...(n[0] ? [1] : [])];


export const OPS: OpTable = {
  // ---- binary elementwise --------------------------------------------------------------------------------------
  add: {
    infer: binaryInfer('add'),
    grad: (c, [g], n) => [n[0] ? sumTo(g!, c.inShapes[0]) : null, n[1] ? sumTo(g!, c.inShapes[1]) : null],
  },
  sub: {
    infer: binaryInfer('sub'),
    grad: (c, [g], n) => [n[0] ? sumTo(g!, c.inShapes[0]) : null, n[1] ? sumTo(neg(g!), c.inShapes[1]) : null],
  },
  mul: {
    infer: binaryInfer('mul'), savesFor: (n) => ({ inputs: crossSaves(n) }),
    grad: (c, [g], n) => [
      n[0] ? sumTo(mul(g!, c.inputs[1]), c.inShapes[0]) : null,
      n[1] ? sumTo(mul(g!, c.inputs[0]), c.inShapes[1]) : null,
    ],
  },
  div: {
    infer: binaryInfer('div'), savesFor: (n) => ({ inputs: n[1] ? [0, 1] : n[0] ? [1] : [] }),
    grad: (c, [g], n) => {
      const [a, b] = c.inputs;
      return [
        n[0] ? sumTo(div(g!, b), c.inShapes[0]) : null,
        n[1] ? sumTo(neg(div(mul(g!, a), mul(b, b))), c.inShapes[1]) : null,
      ];
    },
  },
  pow: {
    infer: binaryInfer('pow'), saves: { inputs: [0, 1], outputs: [0] },
    grad: (c, [g], n) => {
      const [a, b] = c.inputs;
      const out = c.outputs[0];
      return [
        n[0] ? sumTo(mul(g!, mul(b, pow(a, affine(b, 1, -1)))), c.inShapes[0]) : null,
        n[1] ? sumTo(where(gt(a, 0), mul(g!, mul(out, log(a))), 0), c.inShapes[1]) : null,
      ];
    },
  },
  maximum: {
    infer: binaryInfer('maximum'), saves: { inputs: [0, 1] },
    grad: (c, [g], n) => {
      const m = ge(c.inputs[0], c.inputs[1]); // ties go to a
      const ga = mul(g!, m);
      return [n[0] ? sumTo(ga, c.inShapes[0]) : null, n[1] ? sumTo(sub(g!, ga), c.inShapes[1]) : null];
    },
  },
  minimum: {
    infer: binaryInfer('minimum'), saves: { inputs: [0, 1] },
    grad: (c, [g], n) => {
      const m = le(c.inputs[0], c.inputs[1]); // ties go to a
      const ga = mul(g!, m);
      return [n[0] ? sumTo(ga, c.inShapes[0]) : null, n[1] ? sumTo(sub(g!, ga), c.inShapes[1]) : null];
    },
  },
  eq: compare('eq'), ne: compare('ne'), lt: compare('lt'), le: compare('le'), gt: compare('gt'), ge: compare('ge'),
  where: {
    infer: (s, d) => {
      const dtype = sameDtypes('where', [d[1], d[2]]);
      return [{ shape: broadcastShapes('where', s[0], s[1], s[2]), dtype }];
    },
    saves: { inputs: [0] },
    grad: (c, [g], n) => {
      const cond = c.inputs[0];
      return [
        null,
        n[1] ? sumTo(where(cond, g!, 0), c.inShapes[1]) : null,
        n[2] ? sumTo(where(cond, 0, g!), c.inShapes[2]) : null,
      ];
    },
  },

  // ---- unary elementwise ---------------------------------------------------------------------------------------
  neg: { infer: unaryInfer('neg'), grad: (_c, [g]) => [neg(g!)] },
  exp: { infer: unaryInfer('exp'), saves: { outputs: [0] }, grad: (c, [g]) => [mul(g!, c.outputs[0])] },
  log: { infer: unaryInfer('log'), saves: { inputs: [0] }, grad: (c, [g]) => [div(g!, c.inputs[0])] },
  sqrt: {
    infer: unaryInfer('sqrt'), saves: { outputs: [0] },
    grad: (c, [g]) => [div(g!, affine(c.outputs[0], 2, 0))],
  },
  rsqrt: {
    infer: unaryInfer('rsqrt'), saves: { outputs: [0] },
    grad: (c, [g]) => [mul(g!, affine(powScalar(c.outputs[0], 3), -0.5, 0))],
  },
  abs: { infer: unaryInfer('abs'), saves: { inputs: [0] }, grad: (c, [g]) => [mul(g!, sign(c.inputs[0]))] },
  sign: { infer: unaryInfer('sign'), grad: (_c, [g]) => [zerosLike(g!)] },
  tanh: {
    infer: unaryInfer('tanh'), saves: { outputs: [0] },
    grad: (c, [g]) => { const y = c.outputs[0]; return [mul(g!, affine(mul(y, y), -1, 1))]; },
  },
  sigmoid: {
    infer: unaryInfer('sigmoid'), saves: { outputs: [0] },
    grad: (c, [g]) => { const y = c.outputs[0]; return [mul(g!, mul(y, affine(y, -1, 1)))]; },
  },
  relu: {
    infer: unaryInfer('relu'), saves: { outputs: [0] },
    grad: (c, [g]) => [mul(g!, gt(c.outputs[0], 0))],
  },
  erf: {
    infer: unaryInfer('erf'), saves: { inputs: [0] },
    grad: (c, [g]) => { const x = c.inputs[0]; return [mul(g!, affine(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI), 0))]; },
  },
  gelu: {
    infer: unaryInfer('gelu'), saves: { inputs: [0] },
    grad: (c, [g]) => [apply('gelu_backward', [c.inputs[0], g!], {})[0]],
  },
  gelu_backward: { infer: pairInfer('gelu_backward') },
  quick_gelu: {
    infer: unaryInfer('quick_gelu'), saves: { inputs: [0] },
    grad: (c, [g]) => [apply('quick_gelu_backward', [c.inputs[0], g!], {})[0]],
  },
  quick_gelu_backward: { infer: pairInfer('quick_gelu_backward') },
  affine: {
    infer: (s, d, a) => {
      if (d[0] === 'int32' && (!Number.isInteger(a.scale) || !Number.isInteger(a.shift))) {
        throw new Error(`affine: int32 tensor with non-integer scale ${a.scale} / shift ${a.shift}; cast to float first`);
      }
      return [{ shape: s[0].slice(), dtype: d[0] }];
    },
    grad: (c, [g]) => [affine(g!, c.attrs.scale, 0)],
  },
  pow_scalar: {
    infer: unaryInfer('pow_scalar'), saves: { inputs: [0] },
    grad: (c, [g]) => {
      const e = c.attrs.exponent;
      if (e === 0) return [zerosLike(g!)];
      if (e === 1) return [g];
      if (e === 2) return [affine(mul(g!, c.inputs[0]), 2, 0)];
      return [mul(g!, affine(powScalar(c.inputs[0], e - 1), e, 0))];
    },
  },

  // ---- reductions ----------------------------------------------------------------------------------------------
  sum: {
    infer: (s, d, a) => {
      for (let i = 0; i < a.axes.length; i++) {
        if (a.axes[i] < 0 || a.axes[i] >= s[0].length || (i > 0 && a.axes[i] <= a.axes[i - 1])) {
          throw new Error(`sum: axes ${JSON.stringify(a.axes)} must be sorted, unique, within rank ${s[0].length}`);
        }
      }
      return [{ shape: reducedShape(s[0], a.axes, a.keepdims), dtype: d[0] }];
    },
    grad: (c, [g]) => {
      const keep = reducedShape(c.inShapes[0], c.attrs.axes, true);
      return [expand(reshape(g!, keep), c.inShapes[0])];
    },
  },
  max: {
    infer: (s, d, a) => {
      normAxis('max', a.axis, s[0].length);
      if (s[0][a.axis] === 0) throw new Error(`max: cannot reduce an empty axis of ${shapeStr(s[0])}`);
      const shape = reducedShape(s[0], [a.axis], a.keepdims);
      return [{ shape, dtype: d[0] }, { shape: shape.slice(), dtype: 'int32' }];
    },
    saves: { outputs: [1] },
    grad: (c, [g]) => {
      const keep = reducedShape(c.inShapes[0], [c.attrs.axis], true);
      const idx = reshape(c.outputs[1], keep);
      return [apply('scatter_add', [reshape(g!, keep), idx], { axis: c.attrs.axis, shape: c.inShapes[0].slice() })[0]];
    },
  },
  argmax: {
    infer: (s, _d, a) => {
      normAxis('argmax', a.axis, s[0].length);
      if (s[0][a.axis] === 0) throw new Error(`argmax: cannot reduce an empty axis of ${shapeStr(s[0])}`);
      return [{ shape: reducedShape(s[0], [a.axis], a.keepdims), dtype: 'int32' }];
    },
  },

  // ---- matmul ------------------------------------------------------------------------------------------------------
  matmul: {
    infer: (s, d, a) => {
      const dtype = sameDtypes('matmul', d);
      requireFloat('matmul', dtype);
      const { M, N, batch } = matmulDims('matmul', s[0], s[1], a.transA, a.transB);
      return [{ shape: [...batch, M, N], dtype }];
    },
    savesFor: (n) => ({ inputs: crossSaves(n) }),
    grad: (c, [g], n) => {
      const [a, b] = c.inputs;
      const { transA: tA, transB: tB } = c.attrs;
      let da: Tensor | null = null;
      let db: Tensor | null = null;
      if (n[0]) {
        // dA = g B^T; stored transposed when transA
        da = !tA ? matmul(g!, b, { transB: !tB }) : matmul(b, g!, { transA: tB, transB: true });
        da = sumTo(da, c.inShapes[0]);
      }
      if (n[1]) {
        if (c.inShapes[1].length === 2 && c.inShapes[0].length > 2 && !tA) {
          // b shared across a's batch (x [..., M, K] @ W): fold the batch into M, one GEMM, no [batch, K, N] temporary
          const K = c.inShapes[0][c.inShapes[0].length - 1];
          const N = g!.shape[g!.ndim - 1];
          const a2 = reshape(a, [-1, K]), g2 = reshape(g!, [-1, N]);
          db = !tB ? matmul(a2, g2, { transA: true }) : matmul(g2, a2, { transA: true });
        } else {
          // dB = A^T g; stored transposed when transB
          db = !tB ? matmul(a, g!, { transA: !tA }) : matmul(g!, a, { transA: true, transB: tA });
          db = sumTo(db, c.inShapes[1]);
        }
      }
      return [da, db];
    },
  },

  // ---- fused routines ----------------------------------------------------------------------------------------------
  softmax: {
    infer: (s, d, a) => softmaxInfer('softmax', s, d, a.scale),
    saves: { outputs: [0] },
    grad: (c, [g], n) => softmaxGrad('softmax_backward', c.outputs[0], g!, c.attrs.scale ?? 1, c.inShapes, n),
  },
  softmax_backward: { infer: pairInfer('softmax_backward') },
  log_softmax: {
    infer: (s, d, a) => softmaxInfer('log_softmax', s, d, a.scale),
    saves: { outputs: [0] },
    grad: (c, [g], n) => softmaxGrad('log_softmax_backward', c.outputs[0], g!, c.attrs.scale ?? 1, c.inShapes, n),
  },
  log_softmax_backward: { infer: pairInfer('log_softmax_backward') },
  layer_norm: {
    infer: (s, d, a) => {
      const dtype = sameDtypes('layer_norm', d);
      requireFloat('layer_norm', dtype);
      const x = s[0];
      if (x.length < 1) throw new Error(`layer_norm: input must have rank >= 1, got ${shapeStr(x)}`);
      const D = x[x.length - 1];
      if (s[1].length !== 1 || s[1][0] !== D || s[2].length !== 1 || s[2][0] !== D) {
        throw new Error(`layer_norm: weight ${shapeStr(s[1])} and bias ${shapeStr(s[2])} must be [${D}] for input ${shapeStr(x)}`);
      }
      if (!(a.eps >= 0)) throw new Error(`layer_norm: eps must be >= 0, got ${a.eps}`);
      const rows = x.slice(0, -1);
      return [{ shape: x.slice(), dtype }, { shape: rows, dtype }, { shape: rows.slice(), dtype }];
    },
    saves: { inputs: [0, 1], outputs: [1, 2] },
    grad: (c, [g]) => {
      if (!g) return [null, null, null]; // mean / rstd outputs carry no gradient
      const [dx, dw, db] = apply('layer_norm_backward', [g, c.inputs[0], c.inputs[1], c.outputs[1], c.outputs[2]], {});
      return [dx, dw, db];
    },
  },
  layer_norm_backward: {
    infer: (s, d) => {
      const dtype = sameDtypes('layer_norm_backward', d);
      if (!sameShape(s[0], s[1])) throw new Error(`layer_norm_backward: g ${shapeStr(s[0])} and x ${shapeStr(s[1])} differ`);
      const D = s[1][s[1].length - 1];
      return [{ shape: s[1].slice(), dtype }, { shape: [D], dtype }, { shape: [D], dtype }];
    },
  },
  bias_gelu: {
    infer: (s, d) => {
      const dtype = sameDtypes('bias_gelu', d);
      requireFloat('bias_gelu', dtype);
      const x = s[0];
      if (x.length < 1 || s[1].length !== 1 || s[1][0] !== x[x.length - 1]) {
        throw new Error(`bias_gelu: bias ${shapeStr(s[1])} must be [${x[x.length - 1] ?? '?'}] for input ${shapeStr(x)}`);
      }
      return [{ shape: x.slice(), dtype }];
    },
    saves: { inputs: [0, 1] },
    grad: (c, [g], n) => {
      const dx = apply('bias_gelu_backward', [c.inputs[0], c.inputs[1], g!], {})[0];
      return [n[0] ? dx : null, n[1] ? sumTo(dx, c.inShapes[1]) : null];
    },
  },
  bias_gelu_backward: {
    infer: (s, d) => {
      const dtype = sameDtypes('bias_gelu_backward', d);
      const x = s[0];
      if (!sameShape(x, s[2]) || s[1].length !== 1 || s[1][0] !== x[x.length - 1]) {
        throw new Error(`bias_gelu_backward: x ${shapeStr(x)}, bias ${shapeStr(s[1])} and g ${shapeStr(s[2])} do not match`);
      }
      return [{ shape: x.slice(), dtype }];
    },
  },
  dropout: {
    infer: (s, d, a) => {
      requireFloat('dropout', d[0]);
      if (!(a.p >= 0 && a.p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${a.p}`);
      return [{ shape: s[0].slice(), dtype: d[0] }, { shape: s[0].slice(), dtype: d[0] }];
    },
    // saves nothing: the mask is drawn again from (seed, offset) and applied to g by the same kernel (g * mask, the
    // same float product as mul), so a training step does not keep one float mask per dropout layer
    grad: (c, [g]) => {
      if (!g) return [null];
      const [dx, mask] = apply('dropout', [g], c.attrs);
      mask.dispose();
      return [dx];
    },
  },
  cross_entropy: {
    infer: (s, d) => {
      requireFloat('cross_entropy', d[0]);
      requireInt('cross_entropy', 'labels', d[1]);
      if (s[0].length !== 2 || s[1].length !== 1 || s[1][0] !== s[0][0]) {
        throw new Error(`cross_entropy: logits must be [B, C] and labels [B], got ${shapeStr(s[0])} and ${shapeStr(s[1])}`);
      }
      return [{ shape: [s[0][0]], dtype: d[0] }];
    },
    saves: { inputs: [0, 1] },
    grad: (c, [g]) => [apply('cross_entropy_backward', [c.inputs[0], c.inputs[1], g!], { ignoreIndex: c.attrs.ignoreIndex })[0], null],
  },
  cross_entropy_backward: {
    infer: (s, d) => {
      requireInt('cross_entropy_backward', 'labels', d[1]);
      if (s[2].length !== 1 || s[2][0] !== s[0][0]) throw new Error(`cross_entropy_backward: g ${shapeStr(s[2])} must be [${s[0][0]}]`);
      return [{ shape: s[0].slice(), dtype: d[0] }];
    },
  },
  bce_with_logits: {
    infer: (s, d) => {
      const dtype = sameDtypes('bce_with_logits', d);
      requireFloat('bce_with_logits', dtype);
      if (!sameShape(s[0], s[1])) throw new Error(`bce_with_logits: logits ${shapeStr(s[0])} and targets ${shapeStr(s[1])} differ`);
      return [{ shape: s[0].slice(), dtype }];
    },
    savesFor: (n) => ({ inputs: n[0] ? [0, 1] : n[1] ? [0] : [] }),
    grad: (c, [g], n) => [
      n[0] ? apply('bce_with_logits_backward', [c.inputs[0], c.inputs[1], g!], {})[0] : null,
      n[1] ? neg(mul(g!, c.inputs[0])) : null,
    ],
  },
  bce_with_logits_backward: {
    infer: (s, d) => {
      sameDtypes('bce_with_logits_backward', d);
      if (!sameShape(s[0], s[1]) || !sameShape(s[0], s[2])) {
        throw new Error(`bce_with_logits_backward: shapes ${s.map(shapeStr).join(', ')} differ`);
      }
      return [{ shape: s[0].slice(), dtype: d[0] }];
    },
  },

  // ---- gathers ---------------------------------------------------------------------------------------------------
  index_select: {
    infer: (s, d, a) => {
      requireInt('index_select', 'indices', d[1]);
      if (s[1].length !== 1) throw new Error(`index_select: indices must be 1-D, got ${shapeStr(s[1])}`);
      normAxis('index_select', a.axis, s[0].length);
      const shape = s[0].slice();
      shape[a.axis] = s[1][0];
      return [{ shape, dtype: d[0] }];
    },
    saves: { inputs: [1] },
    grad: (c, [g]) => [apply('index_add', [g!, c.inputs[1]], { axis: c.attrs.axis, size: c.inShapes[0][c.attrs.axis] })[0], null],
  },
  index_add: {
    infer: (s, d, a) => {
      requireInt('index_add', 'indices', d[1]);
      normAxis('index_add', a.axis, s[0].length);
      if (s[1].length !== 1 || s[1][0] !== s[0][a.axis]) {
        throw new Error(`index_add: indices ${shapeStr(s[1])} must be [${s[0][a.axis]}] for source ${shapeStr(s[0])} axis ${a.axis}`);
      }
      const shape = s[0].slice();
      shape[a.axis] = a.size;
      return [{ shape, dtype: d[0] }];
    },
    saves: { inputs: [1] },
    grad: (c, [g]) => [apply('index_select', [g!, c.inputs[1]], { axis: c.attrs.axis })[0], null],
  },
  gather: {
    infer: (s, d, a) => {
      requireInt('gather', 'indices', d[1]);
      const [x, idx] = s;
      normAxis('gather', a.axis, x.length);
      if (idx.length !== x.length || idx.some((v, i) => i !== a.axis && v > x[i])) {
        throw new Error(`gather: indices ${shapeStr(idx)} incompatible with input ${shapeStr(x)} along axis ${a.axis}`);
      }
      return [{ shape: idx.slice(), dtype: d[0] }];
    },
    saves: { inputs: [1] },
    grad: (c, [g]) => [apply('scatter_add', [g!, c.inputs[1]], { axis: c.attrs.axis, shape: c.inShapes[0].slice() })[0], null],
  },
  scatter_add: {
    infer: (s, d, a) => {
      requireInt('scatter_add', 'indices', d[1]);
      checkShape('scatter_add', a.shape);
      if (!sameShape(s[0], s[1]) || s[0].length !== a.shape.length || s[0].some((v, i) => i !== a.axis && v > a.shape[i])) {
        throw new Error(`scatter_add: source ${shapeStr(s[0])} / indices ${shapeStr(s[1])} incompatible with output ${shapeStr(a.shape)}`);
      }
      return [{ shape: a.shape.slice(), dtype: d[0] }];
    },
    saves: { inputs: [1] },
    grad: (c, [g]) => [apply('gather', [g!, c.inputs[1]], { axis: c.attrs.axis })[0], null],
  },

  // ---- movement ------------------------------------------------------------------------------------------------
  permute: {
    infer: (s, d, a) => {
      const nd = s[0].length;
      const ok = a.perm.length === nd && new Set(a.perm).size === nd && a.perm.every((p) => Number.isInteger(p) && p >= 0 && p < nd);
      if (!ok) throw new Error(`permute: ${JSON.stringify(a.perm)} is not a permutation of the axes of ${shapeStr(s[0])}`);
      return [{ shape: a.perm.map((p) => s[0][p]), dtype: d[0] }];
    },
    grad: (c, [g]) => {
      const inv = new Array<number>(c.attrs.perm.length);
      c.attrs.perm.forEach((p, i) => { inv[p] = i; });
      return [apply('permute', [g!], { perm: inv })[0]];
    },
  },
  slice: {
    infer: (s, d, a) => {
      const x = s[0];
      if (a.starts.length !== x.length || a.ends.length !== x.length) {
        throw new Error(`slice: starts/ends must have one entry per axis of ${shapeStr(x)}`);
      }
      const shape = x.map((dim, i) => {
        const st = a.starts[i], en = a.ends[i];
        if (!(Number.isInteger(st) && Number.isInteger(en) && st >= 0 && st <= en && en <= dim)) {
          throw new Error(`slice: range [${st}, ${en}) invalid for axis ${i} of ${shapeStr(x)}`);
        }
        return en - st;
      });
      return [{ shape, dtype: d[0] }];
    },
    grad: (c, [g]) => {
      const pads = c.inShapes[0].map((dim, i) => [c.attrs.starts[i], dim - c.attrs.ends[i]] as [number, number]);
      return [apply('pad', [g!], { pads, value: 0 })[0]];
    },
  },
  pad: {
    infer: (s, d, a) => {
      const x = s[0];
      if (a.pads.length !== x.length) throw new Error(`pad: need one [before, after] pair per axis of ${shapeStr(x)}`);
      const shape = x.map((dim, i) => {
        const [b, e] = a.pads[i];
        if (!(Number.isInteger(b) && Number.isInteger(e) && b >= 0 && e >= 0)) {
          throw new Error(`pad: invalid padding [${b}, ${e}] for axis ${i} of ${shapeStr(x)}`);
        }
        return dim + b + e;
      });
      return [{ shape, dtype: d[0] }];
    },
    grad: (c, [g]) => {
      const starts = c.attrs.pads.map((p) => p[0]);
      const ends = c.inShapes[0].map((dim, i) => c.attrs.pads[i][0] + dim);
      return [apply('slice', [g!], { starts, ends })[0]];
    },
  },
  concat: {
    infer: (s, d, a) => {
      const dtype = sameDtypes('concat', d);
      const first = s[0];
      const ax = a.axis;
      if (ax < 0 || ax >= first.length) throw new Error(`concat: axis ${ax} out of range for ${shapeStr(first)}`);
      let total = 0;
      for (const t of s) {
        if (t.length !== first.length || t.some((v, i) => i !== ax && v !== first[i])) {
          throw new Error(`concat: shapes ${s.map(shapeStr).join(', ')} differ outside axis ${ax}`);
        }
        total += t[ax];
      }
      const shape = first.slice();
      shape[ax] = total;
      return [{ shape, dtype }];
    },
    grad: (c, [g], n) => {
      const ax = c.attrs.axis;
      let start = 0;
      return c.inShapes.map((s, i) => {
        const st = start;
        start += s[ax];
        return n[i] ? slice(g!, ax, st, st + s[ax]) : null;
      });
    },
  },
  expand: {
    infer: (s, d, a) => {
      const x = s[0];
      const target = a.shape;
      const ok = target.length >= x.length && x.every((v, i) => {
        const t = target[target.length - x.length + i];
        return v === t || v === 1;
      });
      if (!ok) throw new Error(`expand: cannot expand ${shapeStr(x)} to ${shapeStr(target)}`);
      checkShape('expand', target);
      return [{ shape: target.slice(), dtype: d[0] }];
    },
    grad: (c, [g]) => [sumTo(g!, c.inShapes[0])],
  },
  cast: {
    infer: (s, _d, a) => [{ shape: s[0].slice(), dtype: a.dtype }],
    grad: (c, [g]) => [FLOAT.includes(c.inDtypes[0]) ? cast(g!, c.inDtypes[0]) : null],
  },

  // ---- resizing ------------------------------------------------------------------------------------------------
  resize_bilinear: {
    infer: (s, d, a) => { requireFloat('resize_bilinear', d[0]); return [{ shape: resizedShape('resize_bilinear', s[0], a.outH, a.outW), dtype: d[0] }]; },
    grad: (c, [g]) => {
      const s = c.inShapes[0];
      return [apply('resize_bilinear_backward', [g!], { inH: s[s.length - 2], inW: s[s.length - 1], alignCorners: c.attrs.alignCorners })[0]];
    },
  },
  resize_bilinear_backward: {
    infer: (s, d, a) => [{ shape: resizedShape('resize_bilinear_backward', s[0], a.inH, a.inW), dtype: d[0] }],
    grad: (c, [g]) => {
      const s = c.inShapes[0];
      return [apply('resize_bilinear', [g!], { outH: s[s.length - 2], outW: s[s.length - 1], alignCorners: c.attrs.alignCorners })[0]];
    },
  },


  // ---- creation ------------------------------------------------------------------------------------------------
  fill: { infer: (_s, _d, _a, c) => creationInfer('fill', c, false) },
  random_uniform: { infer: (_s, _d, _a, c) => creationInfer('random_uniform', c, true) },
  random_normal: { infer: (_s, _d, _a, c) => creationInfer('random_normal', c, true) },

  // ---- optimiser updates (in place, no outputs) ------------------------------------------------------------------
  adamw_step: {
    infer: (s, d, a) => {
      sameDtypes('adamw_step', d);
      requireFloat('adamw_step', d[0]);
      if (!s.every((x) => sameShape(x, s[0]))) throw new Error(`adamw_step: param/grad/m/v shapes differ: ${s.map(shapeStr).join(', ')}`);
      if (!(Number.isInteger(a.step) && a.step >= 1)) throw new Error(`adamw_step: step must be an integer >= 1, got ${a.step}`);
      return [];
    },
  },
  sgd_step: {
    infer: (s, d) => {
      sameDtypes('sgd_step', d);
      requireFloat('sgd_step', d[0]);
      if (!s.every((x) => sameShape(x, s[0]))) throw new Error(`sgd_step: shapes differ: ${s.map(shapeStr).join(', ')}`);
      return [];
    },
  },
};

/** d/dx = scale * g_s, d/dmask = g_s, with g_s the backward of the plain softmax: one kernel when the mask needs no
 *  gradient (it scales), two ops otherwise. */
function softmaxGrad(op: 'softmax_backward' | 'log_softmax_backward', y: Tensor, g: Tensor, scale: number, inShapes: readonly Shape[], n: readonly boolean[]): (Tensor | null)[] {
  const needMask = n.length > 1 && n[1];
  if (!needMask) return [apply(op, [y, g], { scale })[0], null];
  const gs = apply(op, [y, g], {})[0];
  return [n[0] ? (scale === 1 ? gs : affine(gs, scale, 0)) : null, sumTo(gs, inShapes[1])];
}

function softmaxInfer(op: string, s: readonly Shape[], d: readonly DType[], scale: number | undefined): OutSpec[] {
  requireFloat(op, d[0]);
  if (scale !== undefined && !Number.isFinite(scale)) throw new Error(`${op}: scale must be finite, got ${scale}`);
  if (s[0].length < 1) throw new Error(`${op}: input must have rank >= 1`);
  if (s.length > 1) {
    if (d[1] !== d[0]) throw new Error(`${op}: additive mask dtype ${d[1]} differs from input dtype ${d[0]}`);
    const b = broadcastShapes(op, s[0], s[1]);
    if (!sameShape(b, s[0])) throw new Error(`${op}: mask ${shapeStr(s[1])} does not broadcast to input ${shapeStr(s[0])}`);
  }
  return [{ shape: s[0].slice(), dtype: d[0] }];
}

function creationInfer(op: string, c: CreateSpec | undefined, float: boolean): OutSpec[] {
  if (!c) throw new Error(`${op}: creation op called without an output spec`);
  checkShape(op, c.shape);
  if (float) requireFloat(op, c.dtype);
  return [{ shape: c.shape.slice(), dtype: c.dtype }];
}


installOpTable(OPS);
