// The functional API (PyTorch-flavoured) over `apply`: arithmetic with scalar operands, reductions, matmul and
// linear, views (reshape, squeeze, ... share storage), movement copies, gathers, fused routines (softmax, layer norm,
// dropout, losses, resizing), creation (tensor, full, randn, ...), and the in-place optimiser updates.
// Does not: know shape or gradient rules (op-table.ts) or kernels; it only prepares attributes and calls apply.
// Conventions: scalar operands never become broadcast tensors on hot paths (x + 2 is `affine`); boolean masks are
// int32 tensors (nonzero = true); comparisons return 0/1 in the inputs' dtype; float -> int32 casts truncate.

import type { Backend, DType, Kernel, OpAttrs, TypedArray } from './backend.ts';
import { Tensor, type NestedArray, type TensorOrScalar } from './tensor.ts';
import { backwardActive, isGradEnabled, noGrad, record } from './autograd.ts';
import { allocOrExplain, apply, apply1, resolveBackend } from './dispatch.ts';
import { getBackend } from './registry.ts';
import { defaultGenerator, type Generator } from './random.ts';
import { checkShape, normAxes, normAxis, numel, resizedShape, resolveReshape, sameShape, shapeStr, type Shape } from './shape.ts';


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
/** gelu(x + bias) for x [..., D], bias [D], in one pass (x + bias is never stored). */
export const biasGelu = (x: Tensor, bias: Tensor): Tensor => apply1('bias_gelu', [x, bias], {});
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
/** x [..., in] W [out, in] (+ b [out]) -> [..., out]; W is used transposed in place (no copy). With activation
 *  'gelu', gelu(x Wᵀ + b) with the bias and the GELU fused in one op (bias_gelu). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, activation?: 'gelu'): Tensor {
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
  if (bias || activation) {
    out = activation ? (bias ? biasGelu(y, bias) : gelu(y)) : add(y, bias!);
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
function softmaxLike(op: 'softmax' | 'log_softmax', x: Tensor, axis: number, mask?: Tensor, scale = 1): Tensor {
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
    const attrs = scale === 1 ? {} : { scale };
    if (ax === last) return apply1(op, m ? [x, m] : [x], attrs);
    // move the axis last, run, move back
    const xt = transpose(x, ax, last);
    let mt: Tensor | undefined;
    if (m) {
      const me = expand(m, x.shape);
      mt = transpose(me, ax, last);
      me.dispose();
    }
    const y = apply1(op, mt ? [xt, mt] : [xt], attrs);
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
/** softmax(x * scale + mask) along axis in one op (attention scores: the scaled scores are never stored). */
export function scaledSoftmax(x: Tensor, scale: number, axis = -1, mask?: Tensor): Tensor {
  return softmaxLike('softmax', x, axis, mask, scale);
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
/**
 * [..., H, W] -> [..., outH, outW], torch interpolate(mode='bicubic') (a = -0.75, taps clamped to the border); no
 * gradient. A plain function, not an op: its one use resizes a position table once, at checkpoint import, so it
 * computes on the host in float64 (rounded once on store, like the reference backend) and returns a new tensor on
 * x's backend and dtype.
 */
export function resizeBicubic(x: Tensor, outH: number, outW: number, alignCorners = false): Tensor {
  x._check('resize_bicubic');
  if (x.dtype === 'int32') throw new Error(`resize_bicubic: expected a float tensor, got ${x.dtype}`);
  const shape = resizedShape('resize_bicubic', x.shape, outH, outW);
  const H = x.shape[x.ndim - 2], W = x.shape[x.ndim - 1];
  const planes = H * W === 0 ? 0 : x.size / (H * W);
  const X = x.toArray();
  const O = x.dtype === 'float64' ? new Float64Array(numel(shape)) : new Float32Array(numel(shape));
  const ty = cubicTaps(H, outH, alignCorners), tx = cubicTaps(W, outW, alignCorners);
  for (let p = 0; p < planes; p++) {
    const xb = p * H * W, ob = p * outH * outW;
    for (let i = 0; i < outH; i++) {
      for (let j = 0; j < outW; j++) {
        let s = 0;
        for (let ky = 0; ky < 4; ky++) {
          let r = 0;
          const row = xb + ty.idx[i * 4 + ky] * W;
          for (let kx = 0; kx < 4; kx++) r += X[row + tx.idx[j * 4 + kx]] * tx.w[j * 4 + kx];
          s += r * ty.w[i * 4 + ky];
        }
        O[ob + i * outW + j] = s;
      }
    }
  }
  return tensor(O, shape, { dtype: x.dtype, backend: x.backend });
}

/** Source rows and weights of the 4 cubic-convolution taps (a = -0.75) of each output position along one axis. */
function cubicTaps(inSize: number, outSize: number, align: boolean): { idx: Int32Array; w: Float64Array } {
  const A = -0.75;
  const cc1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const cc2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  const idx = new Int32Array(outSize * 4), w = new Float64Array(outSize * 4);
  for (let d = 0; d < outSize; d++) {
    const src = align ? (outSize > 1 ? (d * (inSize - 1)) / (outSize - 1) : 0) : ((d + 0.5) * inSize) / outSize - 0.5;
    const f = Math.floor(src);
    const t = src - f;
    const ws = [cc2(t + 1), cc1(t), cc1(1 - t), cc2(2 - t)];
    for (let k = 0; k < 4; k++) {
      idx[d * 4 + k] = Math.min(Math.max(f - 1 + k, 0), inSize - 1);
      w[d * 4 + k] = ws[k];
    }
  }
  return { idx, w };
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
