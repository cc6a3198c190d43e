// THE op table (DESIGN.md lessons 1-4) and the functional API built on it.
// For every op of OP_NAMES: arity, shape rule, dtype rule, which tensors its gradient reads, and its gradient
// rule written in terms of other ops (fused routines point at their *_backward op). `apply` is the only path
// from the API to a kernel: it checks inputs (disposed, same backend, dtypes), allocates outputs from the shape
// rule, calls the backend kernel, checks (in test mode) that the kernel allocated nothing else, records the graph.
// Does not: implement kernels (engine/backends/*), do double backward (backward kernels have no gradient rule
// unless listed), or make views except reshape/detach (which share storage, see tensor.ts).
// Conventions: scalar operands never become broadcast tensors on hot paths (x + 2 is `affine`); boolean masks are
// int32 tensors (nonzero = true); comparisons return 0/1 in the inputs' dtype; float -> int32 casts truncate.

import { OutOfMemoryError, type Backend, type DType, type Kernel, type OpAttrs, type OpName, type TypedArray } from './backend.ts';
import { Tensor, type NestedArray, type TensorOrScalar } from './tensor.ts';
import { backwardActive, isGradEnabled, noGrad, record } from './autograd.ts';
import { backendByName, getBackend } from './registry.ts';
import { kernelChecks } from './memory.ts';
import { defaultGenerator, type Generator } from './random.ts';
import {
  broadcastShapes, checkShape, normAxes, normAxis, numel, reducedShape, resolveReshape, sameShape, shapeStr, type Shape,
} from './shape.ts';

// ================================================================================================================
// The table
// ================================================================================================================

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
  /** number of inputs: exact, or [min, max] */
  arity: number | [number, number];
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

const binaryInfer = (op: string, float: boolean) => (s: readonly Shape[], d: readonly DType[]): OutSpec[] => {
  const dtype = sameDtypes(op, d);
  if (float) requireFloat(op, dtype);
  return [{ shape: broadcastShapes(op, s[0], s[1]), dtype }];
};
const unaryInfer = (op: string, float = true) => (s: readonly Shape[], d: readonly DType[]): OutSpec[] => {
  if (float) requireFloat(op, d[0]);
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
const compare = (op: string) => ({ arity: 2, infer: binaryInfer(op, false) });

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

function resizeInfer(op: string, s: Shape, outH: number, outW: number): number[] {
  if (s.length < 2) throw new Error(`${op}: input must be [..., H, W], got ${shapeStr(s)}`);
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1) {
    throw new Error(`${op}: invalid output size ${outH}x${outW}`);
  }
  return [...s.slice(0, -2), outH, outW];
}

/** Two-input products (mul, matmul): input 1 is read for input 0's gradient and input 0 for input 1's. */
const crossSaves = (n: readonly boolean[]): number[] => [...(n[1] ? [0] : []), ...(n[0] ? [1] : [])];

export const OPS: OpTable = {
  // ---- binary elementwise --------------------------------------------------------------------------------------
  add: {
    arity: 2, infer: binaryInfer('add', false),
    grad: (c, [g], n) => [n[0] ? sumTo(g!, c.inShapes[0]) : null, n[1] ? sumTo(g!, c.inShapes[1]) : null],
  },
  sub: {
    arity: 2, infer: binaryInfer('sub', false),
    grad: (c, [g], n) => [n[0] ? sumTo(g!, c.inShapes[0]) : null, n[1] ? sumTo(neg(g!), c.inShapes[1]) : null],
  },
  mul: {
    arity: 2, infer: binaryInfer('mul', false), savesFor: (n) => ({ inputs: crossSaves(n) }),
    grad: (c, [g], n) => [
      n[0] ? sumTo(mul(g!, c.inputs[1]), c.inShapes[0]) : null,
      n[1] ? sumTo(mul(g!, c.inputs[0]), c.inShapes[1]) : null,
    ],
  },
  div: {
    arity: 2, infer: binaryInfer('div', false), savesFor: (n) => ({ inputs: n[1] ? [0, 1] : n[0] ? [1] : [] }),
    grad: (c, [g], n) => {
      const [a, b] = c.inputs;
      return [
        n[0] ? sumTo(div(g!, b), c.inShapes[0]) : null,
        n[1] ? sumTo(neg(div(mul(g!, a), mul(b, b))), c.inShapes[1]) : null,
      ];
    },
  },
  pow: {
    arity: 2, infer: binaryInfer('pow', true), saves: { inputs: [0, 1], outputs: [0] },
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
    arity: 2, infer: binaryInfer('maximum', false), saves: { inputs: [0, 1] },
    grad: (c, [g], n) => {
      const m = ge(c.inputs[0], c.inputs[1]); // ties go to a
      const ga = mul(g!, m);
      return [n[0] ? sumTo(ga, c.inShapes[0]) : null, n[1] ? sumTo(sub(g!, ga), c.inShapes[1]) : null];
    },
  },
  minimum: {
    arity: 2, infer: binaryInfer('minimum', false), saves: { inputs: [0, 1] },
    grad: (c, [g], n) => {
      const m = le(c.inputs[0], c.inputs[1]); // ties go to a
      const ga = mul(g!, m);
      return [n[0] ? sumTo(ga, c.inShapes[0]) : null, n[1] ? sumTo(sub(g!, ga), c.inShapes[1]) : null];
    },
  },
  eq: compare('eq'), ne: compare('ne'), lt: compare('lt'), le: compare('le'), gt: compare('gt'), ge: compare('ge'),
  where: {
    arity: 3,
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
  neg: { arity: 1, infer: unaryInfer('neg', false), grad: (_c, [g]) => [neg(g!)] },
  exp: { arity: 1, infer: unaryInfer('exp'), saves: { outputs: [0] }, grad: (c, [g]) => [mul(g!, c.outputs[0])] },
  log: { arity: 1, infer: unaryInfer('log'), saves: { inputs: [0] }, grad: (c, [g]) => [div(g!, c.inputs[0])] },
  sqrt: {
    arity: 1, infer: unaryInfer('sqrt'), saves: { outputs: [0] },
    grad: (c, [g]) => [div(g!, affine(c.outputs[0], 2, 0))],
  },
  rsqrt: {
    arity: 1, infer: unaryInfer('rsqrt'), saves: { outputs: [0] },
    grad: (c, [g]) => [mul(g!, affine(powScalar(c.outputs[0], 3), -0.5, 0))],
  },
  abs: { arity: 1, infer: unaryInfer('abs', false), saves: { inputs: [0] }, grad: (c, [g]) => [mul(g!, sign(c.inputs[0]))] },
  sign: { arity: 1, infer: unaryInfer('sign', false), grad: (_c, [g]) => [zerosLike(g!)] },
  tanh: {
    arity: 1, infer: unaryInfer('tanh'), saves: { outputs: [0] },
    grad: (c, [g]) => { const y = c.outputs[0]; return [mul(g!, affine(mul(y, y), -1, 1))]; },
  },
  sigmoid: {
    arity: 1, infer: unaryInfer('sigmoid'), saves: { outputs: [0] },
    grad: (c, [g]) => { const y = c.outputs[0]; return [mul(g!, mul(y, affine(y, -1, 1)))]; },
  },
  relu: {
    arity: 1, infer: unaryInfer('relu', false), saves: { outputs: [0] },
    grad: (c, [g]) => [mul(g!, gt(c.outputs[0], 0))],
  },
  erf: {
    arity: 1, infer: unaryInfer('erf'), saves: { inputs: [0] },
    grad: (c, [g]) => { const x = c.inputs[0]; return [mul(g!, affine(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI), 0))]; },
  },
  gelu: {
    arity: 1, infer: unaryInfer('gelu'), saves: { inputs: [0] },
    grad: (c, [g]) => [apply('gelu_backward', [c.inputs[0], g!], {})[0]],
  },
  gelu_backward: { arity: 2, infer: pairInfer('gelu_backward') },
  quick_gelu: {
    arity: 1, infer: unaryInfer('quick_gelu'), saves: { inputs: [0] },
    grad: (c, [g]) => [apply('quick_gelu_backward', [c.inputs[0], g!], {})[0]],
  },
  quick_gelu_backward: { arity: 2, infer: pairInfer('quick_gelu_backward') },
  affine: {
    arity: 1,
    infer: (s, d, a) => {
      if (d[0] === 'int32' && (!Number.isInteger(a.scale) || !Number.isInteger(a.shift))) {
        throw new Error(`affine: int32 tensor with non-integer scale ${a.scale} / shift ${a.shift}; cast to float first`);
      }
      return [{ shape: s[0].slice(), dtype: d[0] }];
    },
    grad: (c, [g]) => [affine(g!, c.attrs.scale, 0)],
  },
  pow_scalar: {
    arity: 1, infer: unaryInfer('pow_scalar'), saves: { inputs: [0] },
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
    arity: 1,
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
    arity: 1,
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
    arity: 1,
    infer: (s, _d, a) => {
      normAxis('argmax', a.axis, s[0].length);
      if (s[0][a.axis] === 0) throw new Error(`argmax: cannot reduce an empty axis of ${shapeStr(s[0])}`);
      return [{ shape: reducedShape(s[0], [a.axis], a.keepdims), dtype: 'int32' }];
    },
  },

  // ---- matmul ------------------------------------------------------------------------------------------------------
  matmul: {
    arity: 2,
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
    arity: [1, 2],
    infer: (s, d) => softmaxInfer('softmax', s, d),
    saves: { outputs: [0] },
    grad: (c, [g], n) => {
      const gx = apply('softmax_backward', [c.outputs[0], g!], {})[0];
      return [gx, n.length > 1 && n[1] ? sumTo(gx, c.inShapes[1]) : null];
    },
  },
  softmax_backward: { arity: 2, infer: pairInfer('softmax_backward') },
  log_softmax: {
    arity: [1, 2],
    infer: (s, d) => softmaxInfer('log_softmax', s, d),
    saves: { outputs: [0] },
    grad: (c, [g], n) => {
      const gx = apply('log_softmax_backward', [c.outputs[0], g!], {})[0];
      return [gx, n.length > 1 && n[1] ? sumTo(gx, c.inShapes[1]) : null];
    },
  },
  log_softmax_backward: { arity: 2, infer: pairInfer('log_softmax_backward') },
  layer_norm: {
    arity: 3,
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
    arity: 5,
    infer: (s, d) => {
      const dtype = sameDtypes('layer_norm_backward', d);
      if (!sameShape(s[0], s[1])) throw new Error(`layer_norm_backward: g ${shapeStr(s[0])} and x ${shapeStr(s[1])} differ`);
      const D = s[1][s[1].length - 1];
      return [{ shape: s[1].slice(), dtype }, { shape: [D], dtype }, { shape: [D], dtype }];
    },
  },
  dropout: {
    arity: 1,
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
    arity: 2,
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
    arity: 3,
    infer: (s, d) => {
      requireInt('cross_entropy_backward', 'labels', d[1]);
      if (s[2].length !== 1 || s[2][0] !== s[0][0]) throw new Error(`cross_entropy_backward: g ${shapeStr(s[2])} must be [${s[0][0]}]`);
      return [{ shape: s[0].slice(), dtype: d[0] }];
    },
  },
  bce_with_logits: {
    arity: 2,
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
    arity: 3,
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
    arity: 2,
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
    arity: 2,
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
    arity: 2,
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
    arity: 2,
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
    arity: 1,
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
    arity: 1,
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
    arity: 1,
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
    arity: [1, Infinity],
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
    arity: 1,
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
    arity: 1,
    infer: (s, _d, a) => [{ shape: s[0].slice(), dtype: a.dtype }],
    grad: (c, [g]) => [FLOAT.includes(c.inDtypes[0]) ? cast(g!, c.inDtypes[0]) : null],
  },

  // ---- resizing ------------------------------------------------------------------------------------------------
  resize_bilinear: {
    arity: 1,
    infer: (s, d, a) => { requireFloat('resize_bilinear', d[0]); return [{ shape: resizeInfer('resize_bilinear', s[0], a.outH, a.outW), dtype: d[0] }]; },
    grad: (c, [g]) => {
      const s = c.inShapes[0];
      return [apply('resize_bilinear_backward', [g!], { inH: s[s.length - 2], inW: s[s.length - 1], alignCorners: c.attrs.alignCorners })[0]];
    },
  },
  resize_bilinear_backward: {
    arity: 1,
    infer: (s, d, a) => [{ shape: resizeInfer('resize_bilinear_backward', s[0], a.inH, a.inW), dtype: d[0] }],
    grad: (c, [g]) => {
      const s = c.inShapes[0];
      return [apply('resize_bilinear', [g!], { outH: s[s.length - 2], outW: s[s.length - 1], alignCorners: c.attrs.alignCorners })[0]];
    },
  },
  resize_bicubic: {
    arity: 1,
    infer: (s, d, a) => { requireFloat('resize_bicubic', d[0]); return [{ shape: resizeInfer('resize_bicubic', s[0], a.outH, a.outW), dtype: d[0] }]; },
  },

  // ---- creation ------------------------------------------------------------------------------------------------
  fill: { arity: 0, infer: (_s, _d, _a, c) => creationInfer('fill', c, false) },
  random_uniform: { arity: 0, infer: (_s, _d, _a, c) => creationInfer('random_uniform', c, true) },
  random_normal: { arity: 0, infer: (_s, _d, _a, c) => creationInfer('random_normal', c, true) },

  // ---- optimiser updates (in place, no outputs) ------------------------------------------------------------------
  adamw_step: {
    arity: 4,
    infer: (s, d, a) => {
      sameDtypes('adamw_step', d);
      requireFloat('adamw_step', d[0]);
      if (!s.every((x) => sameShape(x, s[0]))) throw new Error(`adamw_step: param/grad/m/v shapes differ: ${s.map(shapeStr).join(', ')}`);
      if (!(Number.isInteger(a.step) && a.step >= 1)) throw new Error(`adamw_step: step must be an integer >= 1, got ${a.step}`);
      return [];
    },
  },
  sgd_step: {
    arity: [2, 3],
    infer: (s, d) => {
      sameDtypes('sgd_step', d);
      requireFloat('sgd_step', d[0]);
      if (!s.every((x) => sameShape(x, s[0]))) throw new Error(`sgd_step: shapes differ: ${s.map(shapeStr).join(', ')}`);
      return [];
    },
  },
};

function softmaxInfer(op: string, s: readonly Shape[], d: readonly DType[]): OutSpec[] {
  requireFloat(op, d[0]);
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

// ================================================================================================================
// Dispatch
// ================================================================================================================

function resolveBackend(b: string | Backend): Backend {
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
  const def = OPS[op] as OpDef<K>;
  const [lo, hi] = typeof def.arity === 'number' ? [def.arity, def.arity] : def.arity;
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
  try {
    kernel(inputs.map((t) => t._ref()), outs.map((t) => t._ref()), attrs);
  } catch (e) {
    for (const o of outs) o.dispose();
    if (e instanceof OutOfMemoryError) throw outOfMemory(op, backend, e, specs, ' (kernel scratch)');
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(msg.startsWith(`${op}`) ? msg : `${op} (backend ${backend.name}, dtype ${mainDtype}): ${msg}`);
  }
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
function allocOrExplain(op: string, backend: Backend, shape: readonly number[], dtype: DType): Tensor {
  try {
    return Tensor._alloc(backend, shape, dtype);
  } catch (e) {
    throw e instanceof OutOfMemoryError ? outOfMemory(op, backend, e, [{ shape: shape.slice(), dtype }]) : e;
  }
}

function apply1<K extends OpName>(op: K, inputs: readonly Tensor[], attrs: OpAttrs[K]): Tensor {
  return apply(op, inputs, attrs)[0];
}

// ================================================================================================================
// Functional API
// ================================================================================================================

/** A 0-d tensor holding `v`, like `like` (dtype, backend). */
function scalarLike(v: number, like: Tensor): Tensor {
  return full([], v, { dtype: like.dtype, backend: like.backend });
}

/** Run a binary op where either side may be a JS number (made a 0-d tensor, disposed after). */
function binary(op: 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum' | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge', a: TensorOrScalar, b: TensorOrScalar): Tensor {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${op}: at least one operand must be a Tensor`);
  const other = (typeof a === 'number' ? b : a) as Tensor;
  const v = (typeof a === 'number' ? a : b) as number;
  if (typeof v === 'number' && other.dtype === 'int32' && !Number.isInteger(v)) {
    throw new Error(`${op}: int32 tensor with non-integer scalar ${v}; cast to float first`);
  }
  const ta = typeof a === 'number' ? scalarLike(a, b as Tensor) : a;
  const tb = typeof b === 'number' ? scalarLike(b, a as Tensor) : b;
  try {
    return apply1(op, [ta, tb], {});
  } finally {
    if (ta !== a) ta.dispose();
    if (tb !== b) tb.dispose();
  }
}

export function add(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return affine(a, 1, b);
  if (typeof a === 'number' && b instanceof Tensor) return affine(b, 1, a);
  return binary('add', a, b);
}
export function sub(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return affine(a, 1, -b);
  if (typeof a === 'number' && b instanceof Tensor) return affine(b, -1, a);
  return binary('sub', a, b);
}
export function mul(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return affine(a, b, 0);
  if (typeof a === 'number' && b instanceof Tensor) return affine(b, a, 0);
  return binary('mul', a, b);
}
export function div(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  if (typeof b === 'number' && a instanceof Tensor && a.dtype !== 'int32') return affine(a, 1 / b, 0);
  return binary('div', a, b);
}
export function pow(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return powScalar(a, b);
  return binary('pow', a, b);
}
export const maximum = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('maximum', a, b);
export const minimum = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('minimum', a, b);
export const eq = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('eq', a, b);
export const ne = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('ne', a, b);
export const lt = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('lt', a, b);
export const le = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('le', a, b);
export const gt = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('gt', a, b);
export const ge = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('ge', a, b);

/** x * scale + shift */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  return apply1('affine', [x], { scale, shift });
}
export function powScalar(x: Tensor, exponent: number): Tensor {
  return apply1('pow_scalar', [x], { exponent });
}

/** where(cond, a, b): a where cond is nonzero, else b; a/b may be numbers. Broadcasting. */
export function where(cond: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  const mk = (v: number) => (like ? scalarLike(v, like) : full([], v, { backend: cond.backend }));
  const ta = typeof a === 'number' ? mk(a) : a;
  const tb = typeof b === 'number' ? mk(b) : b;
  try {
    return apply1('where', [cond, ta, tb], {});
  } finally {
    if (ta !== a) ta.dispose();
    if (tb !== b) tb.dispose();
  }
}
/** x with `value` where mask is nonzero. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, value, x);
}

export const neg = (x: Tensor): Tensor => apply1('neg', [x], {});
export const exp = (x: Tensor): Tensor => apply1('exp', [x], {});
export const log = (x: Tensor): Tensor => apply1('log', [x], {});
export const sqrt = (x: Tensor): Tensor => apply1('sqrt', [x], {});
export const rsqrt = (x: Tensor): Tensor => apply1('rsqrt', [x], {});
export const abs = (x: Tensor): Tensor => apply1('abs', [x], {});
export const sign = (x: Tensor): Tensor => apply1('sign', [x], {});
export const tanh = (x: Tensor): Tensor => apply1('tanh', [x], {});
export const sigmoid = (x: Tensor): Tensor => apply1('sigmoid', [x], {});
export const relu = (x: Tensor): Tensor => apply1('relu', [x], {});
export const erf = (x: Tensor): Tensor => apply1('erf', [x], {});
/** GELU, exact erf form. */
export const gelu = (x: Tensor): Tensor => apply1('gelu', [x], {});
/** x * sigmoid(1.702 x) (CLIP) */
export const quickGelu = (x: Tensor): Tensor => apply1('quick_gelu', [x], {});

// ---- reductions --------------------------------------------------------------------------------------------------
export function sum(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  return apply1('sum', [x], { axes: normAxes('sum', axes, x.ndim), keepdims: keepdim });
}
export function mean(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  if (x.dtype === 'int32') throw new Error('mean: int32 tensor; cast to float first');
  const ax = normAxes('mean', axes, x.ndim);
  let n = 1;
  for (const a of ax) n *= x.shape[a];
  const s = apply1('sum', [x], { axes: ax, keepdims: keepdim });
  const m = affine(s, 1 / n, 0);
  s.dispose();
  return m;
}
export function maxWithIndices(x: Tensor, axis: number, keepdim = false): { values: Tensor; indices: Tensor } {
  const [values, indices] = apply('max', [x], { axis: normAxis('max', axis, x.ndim), keepdims: keepdim });
  return { values, indices };
}
/** Max values along one axis (gradient flows to the first maximum). */
export function max(x: Tensor, axis: number, keepdim = false): Tensor {
  const { values, indices } = maxWithIndices(x, axis, keepdim);
  indices.dispose();
  return values;
}
export function argmax(x: Tensor, axis: number, keepdim = false): Tensor {
  return apply1('argmax', [x], { axis: normAxis('argmax', axis, x.ndim), keepdims: keepdim });
}
/** Sum a broadcast gradient back to `shape` (inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new Error(`sumTo: cannot reduce ${shapeStr(g.shape)} to ${shapeStr(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
    else if (shape[i - lead] !== g.shape[i]) throw new Error(`sumTo: cannot reduce ${shapeStr(g.shape)} to ${shapeStr(shape)}`);
  }
  const s = apply1('sum', [g], { axes, keepdims: false });
  const r = reshape(s, shape);
  s.dispose();
  return r;
}

// ---- matmul ------------------------------------------------------------------------------------------------------
/** a [..., M, K] (transA: [..., K, M]) x b [..., K, N] (transB: [..., N, K]) -> [..., M, N]; batch dims broadcast. */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  return apply1('matmul', [a, b], { transA: !!opts.transA, transB: !!opts.transB });
}
/** x [..., in] W [out, in] (+ b [out]) -> [..., out]; W is used transposed in place (no copy). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.ndim !== 2) throw new Error(`linear: weight must be [out, in], got ${shapeStr(weight.shape)}`);
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new Error(`linear: input ${shapeStr(x.shape)} does not end in ${weight.shape[1]} (weight ${shapeStr(weight.shape)})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new Error(`linear: bias ${shapeStr(bias.shape)} must be [${weight.shape[0]}] (weight ${shapeStr(weight.shape)})`);
  }
  // one [rows, in] x [out, in]^T GEMM (views, no copies); its backward is then one GEMM per operand too
  const x2 = x.ndim === 2 ? x : reshape(x, [-1, weight.shape[1]]);
  const y = matmul(x2, weight, { transB: true });
  if (x2 !== x) x2.dispose();
  let out = y;
  if (bias) {
    out = add(y, bias);
    y.dispose();
  }
  if (x.ndim !== 2) {
    const r = reshape(out, [...x.shape.slice(0, -1), weight.shape[0]]);
    out.dispose();
    out = r;
  }
  return out;
}

/**
 * Patch unfolding for a convolution with kernel = stride = p (ViT patch embedding): x [B, C, H, W] ->
 * [B, (H/p)*(W/p), C*p*p], patches in row-major order, each flattened as (c, i, j) like a conv weight
 * [D, C, p, p] reshaped to [D, C*p*p]; so conv(x) == linear(unfoldPatches(x, p), w.reshape([D, -1]), b).
 */
export function unfoldPatches(x: Tensor, p: number): Tensor {
  if (x.ndim !== 4) throw new Error(`unfoldPatches: input must be [B, C, H, W], got ${shapeStr(x.shape)}`);
  const [B, C, H, W] = x.shape;
  if (!Number.isInteger(p) || p < 1 || H % p !== 0 || W % p !== 0) {
    throw new Error(`unfoldPatches: patch ${p} does not divide image ${H}x${W} (input ${shapeStr(x.shape)})`);
  }
  const v = reshape(x, [B, C, H / p, p, W / p, p]);
  const t = permute(v, [0, 2, 4, 1, 3, 5]); // [B, H/p, W/p, C, p, p]
  v.dispose();
  const r = reshape(t, [B, (H / p) * (W / p), C * p * p]);
  t.dispose();
  return r;
}

// ---- views (shared storage) ----------------------------------------------------------------------------------------
/** Same data, new shape (-1 allowed); shares storage (no copy). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x._check('reshape', backwardActive());
  const target = resolveReshape('reshape', x.shape, shape);
  const y = x._view(target);
  if (isGradEnabled() && x.requiresGrad) {
    const inShape = x.shape;
    record('reshape', [x], [y], ([g]) => [reshape(g!, inShape)], []);
  }
  return y;
}
/** Same data, no graph (shares storage). */
export function detach(x: Tensor): Tensor {
  x._check('detach');
  return x._view(x.shape);
}
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.ndim + 1);
  const s = x.shape.slice();
  s.splice(a, 0, 1);
  return reshape(x, s);
}
/** Remove size-1 axes (all, or the given one; a given axis of size != 1 is left as is, like torch). */
export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis('squeeze', axis, x.ndim);
  if (x.shape[a] !== 1) return reshape(x, x.shape);
  const s = x.shape.slice();
  s.splice(a, 1);
  return reshape(x, s);
}
export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis('flatten', start, x.ndim);
  const e = normAxis('flatten', end, x.ndim);
  if (e < s) throw new Error(`flatten: end axis ${end} before start axis ${start} for ${shapeStr(x.shape)}`);
  const shape = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

// ---- movement (copies) ---------------------------------------------------------------------------------------------
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  const perm = axes.map((a) => normAxis('permute', a, x.ndim));
  return apply1('permute', [x], { perm });
}
export function transpose(x: Tensor, a: number, b: number): Tensor {
  const perm = Array.from({ length: x.ndim }, (_, i) => i);
  const i = normAxis('transpose', a, x.ndim), j = normAxis('transpose', b, x.ndim);
  perm[i] = j;
  perm[j] = i;
  return apply1('permute', [x], { perm });
}
/** x[start:end] along axis (Python-style negative indices, clamped). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const ax = normAxis('slice', axis, x.ndim);
  const dim = x.shape[ax];
  const norm = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
  const st = norm(start);
  const en = Math.max(st, end === undefined ? dim : norm(end));
  const starts = x.shape.map(() => 0);
  const ends = x.shape.slice();
  starts[ax] = st;
  ends[ax] = en;
  return apply1('slice', [x], { starts, ends });
}
/** Broadcast to `shape` (numpy broadcast_to; -1 keeps a dimension); copies. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.ndim;
  const target = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  if (sameShape(target, x.shape)) return reshape(x, target);
  return apply1('expand', [x], { shape: target });
}
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('concat: no tensors');
  return apply1('concat', tensors, { axis: normAxis('concat', axis, tensors[0].ndim) });
}
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('stack: no tensors');
  const ax = normAxis('stack', axis, tensors[0].ndim + 1);
  const us = tensors.map((t) => unsqueeze(t, ax));
  const r = concat(us, ax);
  for (const u of us) u.dispose();
  return r;
}
/**
 * Constant padding. `pads` holds [before, after] pairs; fewer pairs than axes pad the LAST axes
 * (pads[0] is the first padded axis), e.g. pad(x [B, N, D], [[1, 0], [0, 0]]) adds one row at the front of N.
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  if (pads.length > x.ndim) throw new Error(`pad: ${pads.length} pairs for a tensor of rank ${x.ndim}`);
  const full: [number, number][] = x.shape.map(() => [0, 0]);
  pads.forEach((p, i) => { full[x.ndim - pads.length + i] = [p[0], p[1]]; });
  return apply1('pad', [x], { pads: full, value });
}
export function cast(x: Tensor, dtype: DType): Tensor {
  return apply1('cast', [x], { dtype });
}
/** A copy with its own storage (differentiable). */
export function clone(x: Tensor): Tensor {
  return apply1('cast', [x], { dtype: x.dtype });
}
/**
 * In-place copy of src's values into dst (torch's `copy_`), keeping dst's identity: what optimisers and modules hold
 * sees the new values. Same shape required; src is cast to dst's dtype (float -> int32 truncates) and moved through
 * the host when it lives on another backend. dst must be a leaf (a parameter, buffer or created tensor), not the
 * output of a recorded op. Not differentiable, and never recorded.
 */
export function assign(dst: Tensor, src: Tensor): void {
  dst._check('assign');
  src._check('assign');
  if (!sameShape(dst.shape, src.shape)) throw new Error(`assign: source ${shapeStr(src.shape)} and destination ${shapeStr(dst.shape)} differ in shape`);
  if (dst.gradFn) throw new Error(`assign: destination ${shapeStr(dst.shape)} is the output of a recorded op; assign into leaves only`);
  if (src.backend === dst.backend) {
    const kernel = dst.backend.kernels.cast as Kernel<'cast'> | undefined;
    if (!kernel) throw new Error(`assign: backend ${dst.backend.name} has no kernel for op cast (dtype ${src.dtype})`);
    kernel([src._ref()], [dst._ref()], { dtype: dst.dtype });
    return;
  }
  const host = src.toArray();
  const data = dst.dtype === 'float32' ? (host instanceof Float32Array ? host : Float32Array.from(host))
    : dst.dtype === 'float64' ? Float64Array.from(host) : Int32Array.from(host, Math.trunc);
  dst.backend.write(dst._handle.storage, data, dst._offset);
}
/** Copy to another backend (through the host); differentiable. Same backend: a view (shared storage). */
export function to(x: Tensor, backend: string | Backend): Tensor {
  x._check('to');
  const target = resolveBackend(backend);
  if (target === x.backend) return reshape(x, x.shape);
  const data = x.toArray();
  const y = allocOrExplain('to', target, x.shape, x.dtype);
  target.write(y._handle.storage, data, y._offset);
  if (isGradEnabled() && x.requiresGrad) {
    const src = x.backend.name;
    record('to', [x], [y], ([g]) => [to(g!, src)], []);
  }
  return y;
}

// ---- gathers ---------------------------------------------------------------------------------------------------------
export function indexSelect(x: Tensor, idx: Tensor, axis = 0): Tensor {
  return apply1('index_select', [x, idx], { axis: normAxis('index_select', axis, x.ndim) });
}
/** zeros with x's shape except `size` along axis, with src added at rows idx (adjoint of indexSelect). */
export function indexAdd(src: Tensor, idx: Tensor, axis: number, size: number): Tensor {
  return apply1('index_add', [src, idx], { axis: normAxis('index_add', axis, src.ndim), size });
}
/** torch.gather */
export function gather(x: Tensor, idx: Tensor, axis: number): Tensor {
  return apply1('gather', [x, idx], { axis: normAxis('gather', axis, x.ndim) });
}
/** zeros(shape).scatter_add(axis, idx, src) */
export function scatterAdd(src: Tensor, idx: Tensor, axis: number, shape: readonly number[]): Tensor {
  return apply1('scatter_add', [src, idx], { axis: normAxis('scatter_add', axis, src.ndim), shape: shape.slice() });
}
/** weight [V, D], ids int32 [...] -> [..., D] */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  if (weight.ndim !== 2) throw new Error(`embedding: weight must be [V, D], got ${shapeStr(weight.shape)}`);
  if (ids.dtype !== 'int32') throw new Error(`embedding: ids must be int32, got ${ids.dtype}`);
  const flat = reshape(ids, [ids.size]);
  const rows = indexSelect(weight, flat, 0);
  flat.dispose();
  const out = reshape(rows, [...ids.shape, weight.shape[1]]);
  rows.dispose();
  return out;
}

// ---- fused routines ----------------------------------------------------------------------------------------------
/** Large negative used for masked positions of a boolean mask (exp underflows to exactly 0; no NaN on full rows). */
export const MASK_NEG = -1e30;

/** int32 masks are boolean keep-masks (nonzero = keep -> 0, zero -> MASK_NEG); float masks are additive. */
function softmaxLike(op: 'softmax' | 'log_softmax', x: Tensor, axis: number, mask?: Tensor): Tensor {
  const ax = normAxis(op, axis, x.ndim);
  let m: Tensor | undefined;
  let zero: Tensor | undefined;
  if (mask) {
    if (mask.dtype === 'int32') {
      zero = scalarLike(0, x);
      m = where(mask, zero, MASK_NEG);
    } else if (mask.dtype !== x.dtype) {
      throw new Error(`${op}: mask dtype ${mask.dtype} differs from input dtype ${x.dtype} (use int32 for a boolean mask)`);
    } else m = mask;
  }
  const last = x.ndim - 1;
  try {
    if (ax === last) return apply1(op, m ? [x, m] : [x], {});
    // move the axis last, run, move back
    const xt = transpose(x, ax, last);
    let mt: Tensor | undefined;
    if (m) {
      const me = expand(m, x.shape);
      mt = transpose(me, ax, last);
      me.dispose();
    }
    const y = apply1(op, mt ? [xt, mt] : [xt], {});
    xt.dispose();
    mt?.dispose();
    const r = transpose(y, ax, last);
    y.dispose();
    return r;
  } finally {
    zero?.dispose();
    if (m && m !== mask) m.dispose();
  }
}
/** softmax along axis; mask: float = additive, int32 = boolean keep-mask (0 -> excluded); broadcast to x. */
export function softmax(x: Tensor, axis = -1, mask?: Tensor): Tensor {
  return softmaxLike('softmax', x, axis, mask);
}
export function logSoftmax(x: Tensor, axis = -1, mask?: Tensor): Tensor {
  return softmaxLike('log_softmax', x, axis, mask);
}

/** Layer norm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias (biased variance). */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const D = x.shape[x.ndim - 1];
  const w = weight ?? full([D], 1, { dtype: x.dtype, backend: x.backend });
  const b = bias ?? full([D], 0, { dtype: x.dtype, backend: x.backend });
  const [y, m, r] = apply('layer_norm', [x, w, b], { eps });
  m.dispose();
  r.dispose();
  if (w !== weight) w.dispose();
  if (b !== bias) b.dispose();
  return y;
}

/** Inverted dropout with the counter-based generator; identity (same tensor) when !training or p == 0. */
export function dropout(x: Tensor, p: number, opts: { training?: boolean; generator?: Generator } = {}): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (opts.training === false || p === 0) return x;
  const gen = opts.generator ?? defaultGenerator();
  const { seed, offset } = gen.next(x.size);
  const [y, mask] = apply('dropout', [x], { p, seed, offset });
  mask.dispose();
  return y;
}

type Reduction = 'mean' | 'sum' | 'none';
function reduce(loss: Tensor, reduction: Reduction, op: string): Tensor {
  if (reduction === 'none') return loss;
  if (reduction !== 'sum' && reduction !== 'mean') throw new Error(`${op}: unknown reduction ${String(reduction)}`);
  const r = reduction === 'sum' ? sum(loss) : mean(loss);
  loss.dispose();
  return r;
}

/**
 * logits [..., C], labels int32 [...] -> per-row loss, or its mean over rows whose label != ignoreIndex
 * (torch semantics: NaN if every row is ignored), or its sum.
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: { ignoreIndex?: number; reduction?: Reduction } = {}): Tensor {
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  if (labels.dtype !== 'int32') throw new Error(`crossEntropy: labels must be int32, got ${labels.dtype}`);
  if (logits.ndim < 2 || !sameShape(logits.shape.slice(0, -1), labels.shape)) {
    throw new Error(`crossEntropy: logits ${shapeStr(logits.shape)} and labels ${shapeStr(labels.shape)} do not match ([..., C] and [...])`);
  }
  const C = logits.shape[logits.ndim - 1];
  const l2 = logits.ndim === 2 ? logits : reshape(logits, [-1, C]);
  const y2 = labels.ndim === 1 ? labels : reshape(labels, [-1]);
  const loss = apply1('cross_entropy', [l2, y2], { ignoreIndex });
  if (l2 !== logits) l2.dispose();
  if (y2 !== labels) y2.dispose();
  if (reduction === 'none') {
    if (labels.ndim === 1) return loss;
    const r = reshape(loss, labels.shape);
    loss.dispose();
    return r;
  }
  if (reduction === 'sum') return reduce(loss, 'sum', 'crossEntropy');
  if (reduction !== 'mean') throw new Error(`crossEntropy: unknown reduction ${String(reduction)}`);
  const total = sum(loss);
  loss.dispose();
  const count = noGrad(() => {
    const valid = ne(labels, ignoreIndex);
    const vf = cast(valid, logits.dtype);
    valid.dispose();
    const c = sum(vf);
    vf.dispose();
    return c;
  });
  const r = div(total, count);
  total.dispose();
  count.dispose();
  return r;
}

/** Numerically stable binary cross-entropy on logits; x and target of the same shape. */
export function bceWithLogits(x: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  const loss = apply1('bce_with_logits', [x, target], {});
  return reduce(loss, opts.reduction ?? 'mean', 'bceWithLogits');
}

/** [..., H, W] -> [..., outH, outW], torch interpolate(mode='bilinear'). */
export function resizeBilinear(x: Tensor, outH: number, outW: number, alignCorners = false): Tensor {
  return apply1('resize_bilinear', [x], { outH, outW, alignCorners });
}
/** [..., H, W] -> [..., outH, outW], torch interpolate(mode='bicubic') (a = -0.75); no gradient. */
export function resizeBicubic(x: Tensor, outH: number, outW: number, alignCorners = false): Tensor {
  return apply1('resize_bicubic', [x], { outH, outW, alignCorners });
}

// ================================================================================================================
// Creation
// ================================================================================================================

export interface CreateOpts {
  dtype?: DType;
  /** backend name or instance; default getBackend() */
  backend?: string | Backend;
  requiresGrad?: boolean;
}

function finish(t: Tensor, opts: CreateOpts): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function typedFor(dtype: DType, n: number): TypedArray {
  return dtype === 'float32' ? new Float32Array(n) : dtype === 'float64' ? new Float64Array(n) : new Int32Array(n);
}

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0];
  }
  return shape;
}

/** A tensor from nested arrays or a TypedArray (dtype inferred from the TypedArray, else float32). */
export function tensor(data: NestedArray | TypedArray | readonly number[], shape?: readonly number[], opts: CreateOpts = {}): Tensor {
  let flat: ArrayLike<number>;
  let dtype: DType = opts.dtype ?? 'float32';
  let s: number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as TypedArray;
    if (!opts.dtype) dtype = data instanceof Float64Array ? 'float64' : data instanceof Int32Array ? 'int32' : 'float32';
    s = shape ? shape.slice() : [(data as TypedArray).length];
  } else {
    const inferred = inferShape(data as NestedArray);
    const out: number[] = [];
    const walk = (v: NestedArray, d: number): void => {
      if (Array.isArray(v)) {
        if (d >= inferred.length || v.length !== inferred[d]) throw new Error(`tensor: ragged nested array (expected shape ${shapeStr(inferred)})`);
        for (const e of v) walk(e, d + 1);
      } else {
        if (d !== inferred.length) throw new Error(`tensor: ragged nested array (expected shape ${shapeStr(inferred)})`);
        out.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
      }
    };
    walk(data as NestedArray, 0);
    flat = out;
    s = shape ? shape.slice() : inferred;
  }
  checkShape('tensor', s);
  if (numel(s) !== flat.length) throw new Error(`tensor: ${flat.length} values do not fill shape ${shapeStr(s)}`);
  const backend = opts.backend ? resolveBackend(opts.backend) : getBackend();
  const t = allocOrExplain('tensor', backend, s, dtype);
  const buf = typedFor(dtype, flat.length);
  for (let i = 0; i < flat.length; i++) buf[i] = flat[i];
  backend.write(t._handle.storage, buf, t._offset);
  return finish(t, opts);
}

export function full(shape: readonly number[], value: number, opts: CreateOpts = {}): Tensor {
  if (opts.dtype === 'int32' && !Number.isInteger(value) && Number.isFinite(value)) {
    throw new Error(`full: non-integer value ${value} for an int32 tensor`);
  }
  const t = apply('fill', [], { value }, { shape, dtype: opts.dtype ?? 'float32', backend: opts.backend })[0];
  return finish(t, opts);
}
export const zeros = (shape: readonly number[], opts: CreateOpts = {}): Tensor => full(shape, 0, opts);
export const ones = (shape: readonly number[], opts: CreateOpts = {}): Tensor => full(shape, 1, opts);
export const zerosLike = (x: Tensor): Tensor => full(x.shape, 0, { dtype: x.dtype, backend: x.backend });
export const onesLike = (x: Tensor): Tensor => full(x.shape, 1, { dtype: x.dtype, backend: x.backend });
export const fullLike = (x: Tensor, v: number): Tensor => full(x.shape, v, { dtype: x.dtype, backend: x.backend });

export interface RandOpts extends CreateOpts {
  generator?: Generator;
}
/** Normal(mean, std) from the counter-based generator (default: the global one, see manualSeed). */
export function randn(shape: readonly number[], opts: RandOpts & { mean?: number; std?: number } = {}): Tensor {
  const gen = opts.generator ?? defaultGenerator();
  const { seed, offset } = gen.next(numel(shape));
  const t = apply('random_normal', [], { seed, offset, mean: opts.mean ?? 0, std: opts.std ?? 1 }, { shape, dtype: opts.dtype ?? 'float32', backend: opts.backend })[0];
  return finish(t, opts);
}
/** Uniform [low, high) from the counter-based generator. */
export function rand(shape: readonly number[], opts: RandOpts & { low?: number; high?: number } = {}): Tensor {
  const gen = opts.generator ?? defaultGenerator();
  const { seed, offset } = gen.next(numel(shape));
  const t = apply('random_uniform', [], { seed, offset, low: opts.low ?? 0, high: opts.high ?? 1 }, { shape, dtype: opts.dtype ?? 'float32', backend: opts.backend })[0];
  return finish(t, opts);
}
/** [start, end) with step; arange(n) = [0, n). float32 unless opts.dtype (use int32 for ids). */
export function arange(startOrN: number, end?: number, step = 1, opts: CreateOpts = {}): Tensor {
  const start = end === undefined ? 0 : startOrN;
  const stop = end === undefined ? startOrN : end;
  if (step === 0) throw new Error('arange: step must be nonzero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const dtype = opts.dtype ?? 'float32';
  const buf = typedFor(dtype, n);
  for (let i = 0; i < n; i++) buf[i] = start + i * step;
  return tensor(buf, [n], { ...opts, dtype });
}

// ================================================================================================================
// In-place optimiser updates (used by train/optim.ts)
// ================================================================================================================

/** HF AdamW step in place on (param, grad, m, v); spec §6.3. */
export function adamwStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, a: OpAttrs['adamw_step']): void {
  noGrad(() => apply('adamw_step', [param, grad, m, v], a));
}
/** SGD (torch semantics: coupled weight decay, momentum buffer) in place on (param, grad[, buf]). */
export function sgdStep(param: Tensor, grad: Tensor, buf: Tensor | null, a: OpAttrs['sgd_step']): void {
  noGrad(() => apply('sgd_step', buf ? [param, grad, buf] : [param, grad], a));
}
