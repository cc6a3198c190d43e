// THE op contract (DESIGN.md lessons 1, 6, 7): the closed set of ops, declared once, with what every language needs
// of each: attributes (OpAttrs), arity, the dtypes of its main input, the numeric code of the elementwise families
// whose kernels switch on a code (AssemblyScript, CUDA), and the CUDA addon entry's argument list.
// scripts/gen-ops.ts generates from this file the AssemblyScript op codes (engine/assembly/op-codes.ts), the CUDA enum
// and entry lists (cuda/op_codes.cuh) and the addon's kernel declarations (the generated block of native/index.d.ts);
// test/engine/gen-ops.test.ts fails when a generated file differs from what this file gives.
// Does not: hold shape rules or gradient rules (engine/op-table.ts) or kernels (engine/backends/*).
// Invariants: pure data, imports nothing (the generator and every backend read it); a family's codes are
// the positions of its ops in declaration order, so the order of entries below is part of the contract.

/** Element types of tensors (backend.ts re-exports it; declared here so that this file imports nothing). */
export type DType = 'float32' | 'float64' | 'int32';

type NoAttrs = Record<string, never>;

/**
 * Attributes per op. Axes are normalised (non-negative) by the engine before they reach a kernel.
 * Random ops use a counter-based generator: element i of a draw with (seed, offset) is a pure function of
 * (seed, offset + i), so every backend produces the same numbers.
 */
export interface OpAttrs {
  add: NoAttrs; sub: NoAttrs; mul: NoAttrs; div: NoAttrs; pow: NoAttrs; maximum: NoAttrs; minimum: NoAttrs;
  eq: NoAttrs; ne: NoAttrs; lt: NoAttrs; le: NoAttrs; gt: NoAttrs; ge: NoAttrs;
  where: NoAttrs;
  neg: NoAttrs; exp: NoAttrs; log: NoAttrs; sqrt: NoAttrs; rsqrt: NoAttrs; abs: NoAttrs; sign: NoAttrs;
  tanh: NoAttrs; sigmoid: NoAttrs; relu: NoAttrs; erf: NoAttrs;
  /** gelu: exact erf form. gelu_backward(x, g) -> g * gelu'(x). */
  gelu: NoAttrs; gelu_backward: NoAttrs;
  /** quick_gelu: x * sigmoid(1.702 x). quick_gelu_backward(x, g). */
  quick_gelu: NoAttrs; quick_gelu_backward: NoAttrs;
  affine: { scale: number; shift: number };
  pow_scalar: { exponent: number };
  /** sum over `axes` (sorted, unique); keepdims keeps them as size 1. */
  sum: { axes: number[]; keepdims: boolean };
  /** max over one axis -> (values, int32 indices of the first maximum). */
  max: { axis: number; keepdims: boolean };
  argmax: { axis: number; keepdims: boolean };
  /** a [..., M, K] (or [..., K, M] if transA), b [..., K, N] (or [..., N, K] if transB) -> [..., M, N] */
  matmul: { transA: boolean; transB: boolean };
  /** softmax(x * scale [+ mask]) along the last axis (scale default 1: attention's 1/sqrt(dh) in the same pass).
   *  Optional 2nd input: additive float mask, broadcastable to x. softmax_backward(y, g) -> g_x (times scale). */
  softmax: { scale?: number }; softmax_backward: { scale?: number };
  log_softmax: { scale?: number }; log_softmax_backward: { scale?: number };
  /** layer_norm(x [.., D], weight [D], bias [D]) -> (y, mean [..], rstd [..]);
   *  layer_norm_backward(g, x, weight, mean, rstd) -> (dx, dweight, dbias). */
  layer_norm: { eps: number }; layer_norm_backward: NoAttrs;
  /** bias_gelu(x [.., D], bias [D]) -> gelu(x + bias) (exact erf form; a Linear's bias and its GELU in one pass, the
   *  sum x + bias never stored); bias_gelu_backward(x, bias, g) -> g * gelu'(x + bias), the gradient of x (and,
   *  summed over rows, of bias). */
  bias_gelu: NoAttrs; bias_gelu_backward: NoAttrs;
  /** dropout(x) -> (y, mask); mask holds 0 or 1/(1-p). */
  dropout: { p: number; seed: number; offset: number };
  /** cross_entropy(logits [B, C], labels int32 [B]) -> loss [B] (0 where label == ignoreIndex);
   *  cross_entropy_backward(logits, labels, g [B]) -> dlogits [B, C]. */
  cross_entropy: { ignoreIndex: number }; cross_entropy_backward: { ignoreIndex: number };
  /** bce_with_logits(x, target) -> elementwise loss (stable form); backward(x, target, g) -> dx. */
  bce_with_logits: NoAttrs; bce_with_logits_backward: NoAttrs;
  /** index_select(x, idx int32 [K]) along axis; index_add(g, idx) -> zeros of x's shape with g added at idx. */
  index_select: { axis: number }; index_add: { axis: number; size: number };
  /** gather(x, idx int32 same rank) along axis (torch.gather); scatter_add(g, idx) -> shape `shape`. */
  gather: { axis: number }; scatter_add: { axis: number; shape: number[] };
  permute: { perm: number[] };
  /** per-axis start and (exclusive) end, step 1 */
  slice: { starts: number[]; ends: number[] };
  /** per-axis [before, after] padding with a constant */
  pad: { pads: [number, number][]; value: number };
  /** n inputs joined along axis */
  concat: { axis: number };
  expand: { shape: number[] };
  cast: { dtype: DType };
  /** [..., H, W] -> [..., outH, outW] */
  resize_bilinear: { outH: number; outW: number; alignCorners: boolean };
  resize_bilinear_backward: { inH: number; inW: number; alignCorners: boolean };
  fill: { value: number };
  random_uniform: { seed: number; offset: number; low: number; high: number };
  random_normal: { seed: number; offset: number; mean: number; std: number };
  /** in place on (param, grad, m, v): HF AdamW, decay after the Adam step (spec §6.3). step is 1-based. */
  adamw_step: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number };
  /** in place on (param, grad[, momentumBuffer]) */
  sgd_step: { lr: number; momentum: number; weightDecay: number };
}

/** Elementwise families whose AssemblyScript and CUDA kernels switch on a numeric op code. */
export type OpFamily = 'binary' | 'unary' | 'unary_backward';

export interface OpSpec {
  /** number of inputs: exact, or [min, max] */
  readonly arity: number | readonly [number, number];
  /** dtypes the op is defined for (its main input): 'float' (float32, float64) or 'any' (int32 too); the shape rules
   *  of the elementwise families enforce it, fast backends read it for their int32 variants */
  readonly dtypes: 'float' | 'any';
  /** the code family, if any; the op's code is its position among the family's ops below */
  readonly family?: OpFamily;
  /**
   * The CUDA addon entry (native/addon.cc, declared in native/index.d.ts): its arguments as `name:kind` words, kinds
   * T = a tensor (handle, element offset), dt = dtype code (0 float32, 1 int32), dims = integer array, n = number,
   * b = boolean, T? = a tensor or none (handle -1); or `@entry` when the op goes through another entry.
   */
  readonly addon: string;
}

const BIN = 'dtype:dt out:T a:T b:T shape:dims aStrides:dims bStrides:dims';
const UN = 'dtype:dt out:T x:T n:n';
const binary = (dtypes: 'float' | 'any' = 'any') => ({ arity: 2, dtypes, family: 'binary', addon: BIN }) as const;
const unary = (dtypes: 'float' | 'any' = 'float') => ({ arity: 1, dtypes, family: 'unary', addon: UN }) as const;

/** Every op, in code order within each family. */
export const OP_CONTRACT = {
  // elementwise binary, numpy broadcasting: out = f(a, b)
  add: binary(), sub: binary(), mul: binary(), div: binary(), pow: binary('float'), maximum: binary(), minimum: binary(),
  // comparisons, broadcasting, output 0/1 in the inputs' dtype (no gradient)
  eq: binary(), ne: binary(), lt: binary(), le: binary(), gt: binary(), ge: binary(),
  // where(cond, a, b), broadcasting; cond is nonzero-true
  where: { arity: 3, dtypes: 'any', addon: 'dtype:dt condDtype:dt out:T cond:T a:T b:T shape:dims condStrides:dims aStrides:dims bStrides:dims' },
  // elementwise unary over n contiguous elements; int32 only for neg, abs, sign, relu
  neg: unary('any'), exp: unary(), log: unary(), sqrt: unary(), rsqrt: unary(), abs: unary('any'), sign: unary('any'),
  tanh: unary(), sigmoid: unary(), relu: unary('any'), erf: unary(), gelu: unary(), quick_gelu: unary(),
  // (x, g) -> g * f'(x)
  gelu_backward: { arity: 2, dtypes: 'float', family: 'unary_backward', addon: 'out:T x:T g:T n:n' },
  quick_gelu_backward: { arity: 2, dtypes: 'float', family: 'unary_backward', addon: 'out:T x:T g:T n:n' },
  // x * scale + shift, and x ** exponent (scalars as attributes: no scalar tensors on hot paths)
  affine: { arity: 1, dtypes: 'any', addon: 'dtype:dt out:T x:T n:n scale:n shift:n' },
  pow_scalar: { arity: 1, dtypes: 'float', addon: 'out:T x:T n:n exponent:n' },
  // reductions
  sum: { arity: 1, dtypes: 'any', addon: 'dtype:dt out:T x:T outerShape:dims outerStrides:dims innerShape:dims innerStrides:dims' },
  max: { arity: 1, dtypes: 'any', addon: 'dtype:dt values:T? indices:T x:T outerShape:dims outerStrides:dims axisSize:n axisStride:n' },
  argmax: { arity: 1, dtypes: 'any', addon: '@max' },
  // batched matmul with numpy broadcasting over batch dims and transpose flags on the last two axes
  matmul: { arity: 2, dtypes: 'float', addon: 'out:T a:T b:T M:n N:n K:n transA:b transB:b aOffsets:dims bOffsets:dims batch:n strideA:n strideB:n' },
  // fused routines with their backward kernels
  softmax: { arity: [1, 2], dtypes: 'float', addon: 'out:T x:T rows:n D:n mask:T? maskRowShape:dims maskRowStrides:dims maskColStride:n scale:n' },
  softmax_backward: { arity: 2, dtypes: 'float', addon: 'out:T y:T g:T rows:n D:n scale:n' },
  log_softmax: { arity: [1, 2], dtypes: 'float', addon: 'out:T x:T rows:n D:n mask:T? maskRowShape:dims maskRowStrides:dims maskColStride:n scale:n' },
  log_softmax_backward: { arity: 2, dtypes: 'float', addon: 'out:T y:T g:T rows:n D:n scale:n' },
  layer_norm: { arity: 3, dtypes: 'float', addon: 'y:T mean:T rstd:T x:T weight:T bias:T R:n D:n eps:n' },
  layer_norm_backward: { arity: 5, dtypes: 'float', addon: 'dx:T dweight:T dbias:T g:T x:T weight:T mean:T rstd:T R:n D:n' },
  bias_gelu: { arity: 2, dtypes: 'float', addon: 'out:T x:T bias:T R:n D:n' },
  bias_gelu_backward: { arity: 3, dtypes: 'float', addon: 'out:T x:T bias:T g:T R:n D:n' },
  dropout: { arity: 1, dtypes: 'float', addon: 'y:T mask:T x:T n:n p:n seed:n offset:n' },
  cross_entropy: { arity: 2, dtypes: 'float', addon: 'loss:T logits:T labels:T B:n C:n ignoreIndex:n' },
  cross_entropy_backward: { arity: 3, dtypes: 'float', addon: 'dlogits:T logits:T labels:T g:T B:n C:n ignoreIndex:n' },
  bce_with_logits: { arity: 2, dtypes: 'float', addon: 'out:T x:T target:T n:n' },
  bce_with_logits_backward: { arity: 3, dtypes: 'float', addon: 'out:T x:T target:T g:T n:n' },
  // gathers and their scatter-add adjoints
  index_select: { arity: 2, dtypes: 'any', addon: 'dtype:dt out:T x:T idx:T O:n A:n I:n K:n' },
  index_add: { arity: 2, dtypes: 'any', addon: 'dtype:dt out:T g:T idx:T O:n size:n I:n K:n' },
  gather: { arity: 2, dtypes: 'any', addon: 'dtype:dt out:T x:T idx:T idxShape:dims xStrides:dims axisStride:n axisSize:n xNumel:n' },
  scatter_add: { arity: 2, dtypes: 'any', addon: 'dtype:dt out:T g:T idx:T idxShape:dims outStrides:dims axisStride:n axisSize:n outNumel:n' },
  // movement (copies)
  permute: { arity: 1, dtypes: 'any', addon: '@copy_strided' },
  slice: { arity: 1, dtypes: 'any', addon: '@copy_strided' },
  pad: { arity: 1, dtypes: 'any', addon: 'out:T x:T outShape:dims inShape:dims before:dims valueBits:n' },
  concat: { arity: [1, Infinity], dtypes: 'any', addon: '@copy_strided' },
  expand: { arity: 1, dtypes: 'any', addon: '@copy_strided' },
  cast: { arity: 1, dtypes: 'any', addon: 'from:dt to:dt out:T x:T n:n' },
  // resizing of [..., H, W] maps (position tables)
  resize_bilinear: { arity: 1, dtypes: 'float', addon: 'out:T x:T P:n H:n W:n outH:n outW:n alignCorners:b' },
  resize_bilinear_backward: { arity: 1, dtypes: 'float', addon: 'gx:T g:T P:n inH:n inW:n outH:n outW:n alignCorners:b' },
  // creation
  fill: { arity: 0, dtypes: 'any', addon: 'dtype:dt out:T n:n value:n' },
  random_uniform: { arity: 0, dtypes: 'float', addon: 'dtype:dt out:T n:n seed:n offset:n low:n high:n' },
  random_normal: { arity: 0, dtypes: 'float', addon: 'dtype:dt out:T n:n seed:n offset:n mean:n std:n' },
  // optimiser updates, in place (no outputs)
  adamw_step: { arity: 4, dtypes: 'float', addon: 'param:T grad:T m:T v:T n:n lr:n beta1:n beta2:n eps:n weightDecay:n stepSize:n' },
  sgd_step: { arity: [2, 3], dtypes: 'float', addon: 'param:T grad:T buf:T? n:n lr:n momentum:n weightDecay:n' },
} as const satisfies { readonly [K in keyof OpAttrs]: OpSpec };

/** Addon entries that are not ops (several ops go through them). */
export const ADDON_SHARED_ENTRIES = {
  /** permute, slice, expand, concat */
  copy_strided: 'out:T x:T shape:dims outStrides:dims xStrides:dims',
} as const;

export type OpName = keyof typeof OP_CONTRACT;

/** The closed set of ops, in contract order. */
export const OP_NAMES = Object.keys(OP_CONTRACT) as readonly OpName[];

// tsc: OpAttrs and OP_CONTRACT name the same ops (the `satisfies` above checks one direction, this the other)
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameOps: Same<keyof OpAttrs, OpName> = true;
void sameOps;

/** The ops of a code family, in code order. */
export function familyOps(family: OpFamily): OpName[] {
  return OP_NAMES.filter((op) => (OP_CONTRACT[op] as OpSpec).family === family);
}

/** op -> numeric code within its family (the codes AssemblyScript and CUDA switch on). */
export function familyCodes(family: OpFamily): Readonly<Record<string, number>> {
  return Object.freeze(Object.fromEntries(familyOps(family).map((op, i) => [op, i])));
}

/** The ops of a code family, as a type. */
export type FamilyOp<F extends OpFamily> = { [K in OpName]: (typeof OP_CONTRACT)[K] extends { family: F } ? K : never }[OpName];

/** One kernel per op of a family, made by `make` (for a backend's table literal, whose completeness tsc checks). */
export function familyKernels<F extends OpFamily, V>(family: F, make: (op: FamilyOp<F>) => V): { [K in FamilyOp<F>]: V } {
  return Object.fromEntries(familyOps(family).map((op) => [op, make(op as FamilyOp<F>)])) as { [K in FamilyOp<F>]: V };
}

/** Does the op take int32 main inputs? */
export function takesInt(op: OpName): boolean {
  return OP_CONTRACT[op].dtypes === 'any';
}

export type AddonArgKind = 'T' | 'T?' | 'dt' | 'dims' | 'n' | 'b';
export interface AddonArg { readonly name: string; readonly kind: AddonArgKind }

/** Every CUDA addon kernel entry with its argument list, in contract order (shared entries last). */
export function addonEntries(): ReadonlyMap<string, { args: AddonArg[]; ops: OpName[] }> {
  const out = new Map<string, { args: AddonArg[]; ops: OpName[] }>();
  const parse = (sig: string): AddonArg[] => sig.split(/\s+/).map((w) => {
    const [name, kind] = w.split(':');
    if (!['T', 'T?', 'dt', 'dims', 'n', 'b'].includes(kind)) throw new Error(`op contract: bad addon argument "${w}"`);
    return { name, kind: kind as AddonArgKind };
  });
  for (const op of OP_NAMES) {
    const sig: string = OP_CONTRACT[op].addon;
    if (!sig.startsWith('@')) out.set(op, { args: parse(sig), ops: [op] });
  }
  for (const [entry, sig] of Object.entries(ADDON_SHARED_ENTRIES)) out.set(entry, { args: parse(sig), ops: [] });
  for (const op of OP_NAMES) {
    const sig: string = OP_CONTRACT[op].addon;
    if (!sig.startsWith('@')) continue;
    const e = out.get(sig.slice(1));
    if (!e) throw new Error(`op contract: ${op} goes through unknown addon entry ${sig}`);
    e.ops.push(op);
  }
  return out;
}
