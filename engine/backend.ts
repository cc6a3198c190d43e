// The backend contract: a backend is storage plus a kernel table keyed by op name (DESIGN.md lessons 2, 6, 7).
// Invariants:
// - Every op of the closed set OP_NAMES has exactly one name used in TS, AssemblyScript, C++ and CUDA
//   (`grep layer_norm` finds all four). ops.ts declares each op's shape rule and gradient rule once.
// - Kernels never allocate their outputs: the engine allocates them from the op's shape rule and passes them in.
//   In-place ops (the optimiser steps) write into their inputs and have no outputs.
// - Tensors are contiguous, row-major; a TensorRef may view a storage at an element offset.
// - No kernel reads device data back to the host; only Backend.read does, and only when the user asks.
// - The reference backend's table is typed `KernelTable` (all ops, checked by tsc); fast backends are
//   `Partial<KernelTable>` and the engine raises one error naming op, backend and dtype for a missing kernel.

export type DType = 'float32' | 'float64' | 'int32';
export type TypedArray = Float32Array | Float64Array | Int32Array;

/** A backend's memory cannot hold an allocation. `apply` (ops.ts) rethrows it as an Error naming the op, the bytes
 *  requested and in use, and the ways out (a smaller batch, gradient accumulation). */
export class OutOfMemoryError extends Error {
  constructor(message: string, readonly requested: number, readonly inUse: number, readonly capacity: number) {
    super(message);
    this.name = 'OutOfMemoryError';
  }
}

/** Opaque handle to backend memory. Backends extend it with their own fields (array, pointer, handle). */
export interface Storage {
  readonly backend: string;
  readonly numel: number;
  readonly dtype: DType;
}

/** What a kernel sees of a tensor: its storage, element offset, shape and dtype. */
export interface TensorRef {
  readonly storage: Storage;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** The closed set of ops. Attributes of each op are given in OpAttrs. */
export const OP_NAMES = [
  // elementwise binary, numpy broadcasting: out = f(a, b)
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum',
  // comparisons, broadcasting, output float 0/1 of the inputs' dtype (no gradient)
  'eq', 'ne', 'lt', 'le', 'gt', 'ge',
  // where(cond, a, b), broadcasting; cond is nonzero-true
  'where',
  // elementwise unary
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sign', 'tanh', 'sigmoid', 'relu', 'erf',
  'gelu', 'gelu_backward', 'quick_gelu', 'quick_gelu_backward',
  // x * scale + shift, and x ** exponent (scalars as attributes: no scalar tensors on hot paths)
  'affine', 'pow_scalar',
  // reductions
  'sum', 'max', 'argmax',
  // batched matmul with numpy broadcasting over batch dims and transpose flags on the last two axes
  'matmul',
  // fused routines with their backward kernels
  'softmax', 'softmax_backward', 'log_softmax', 'log_softmax_backward',
  'layer_norm', 'layer_norm_backward',
  'dropout',
  'cross_entropy', 'cross_entropy_backward',
  'bce_with_logits', 'bce_with_logits_backward',
  // gathers and their scatter-add adjoints
  'index_select', 'index_add', 'gather', 'scatter_add',
  // movement (copies)
  'permute', 'slice', 'pad', 'concat', 'expand', 'cast',
  // resizing of [..., H, W] maps (position tables)
  'resize_bilinear', 'resize_bilinear_backward', 'resize_bicubic',
  // creation
  'fill', 'random_uniform', 'random_normal',
  // optimiser updates, in place
  'adamw_step', 'sgd_step',
] as const;

export type OpName = (typeof OP_NAMES)[number];

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
  /** softmax(x [+ mask]) along the last axis. Optional 2nd input: additive float mask, broadcastable to x.
   *  softmax_backward(y, g) -> g_x. */
  softmax: NoAttrs; softmax_backward: NoAttrs;
  log_softmax: NoAttrs; log_softmax_backward: NoAttrs;
  /** layer_norm(x [.., D], weight [D], bias [D]) -> (y, mean [..], rstd [..]);
   *  layer_norm_backward(g, x, weight, mean, rstd) -> (dx, dweight, dbias). */
  layer_norm: { eps: number }; layer_norm_backward: NoAttrs;
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
  /** bicubic (a = -0.75, like torch), align_corners false, for checkpoint position tables; no gradient */
  resize_bicubic: { outH: number; outW: number; alignCorners: boolean };
  fill: { value: number };
  random_uniform: { seed: number; offset: number; low: number; high: number };
  random_normal: { seed: number; offset: number; mean: number; std: number };
  /** in place on (param, grad, m, v): HF AdamW, decay after the Adam step (spec §6.3). step is 1-based. */
  adamw_step: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number };
  /** in place on (param, grad[, momentumBuffer]) */
  sgd_step: { lr: number; momentum: number; weightDecay: number };
}

export type Kernel<K extends OpName = OpName> = (inputs: TensorRef[], outputs: TensorRef[], attrs: OpAttrs[K]) => void;
export type KernelTable = { [K in OpName]: Kernel<K> };

export interface Backend {
  readonly name: string;
  /** dtypes this backend stores */
  readonly dtypes: readonly DType[];
  alloc(numel: number, dtype: DType): Storage;
  free(storage: Storage): void;
  /** host -> backend, at an element offset */
  write(storage: Storage, data: TypedArray, offset?: number): void;
  /** backend -> host; synchronous (a device backend waits for its stream here and only here) */
  read(storage: Storage, offset?: number, numel?: number): TypedArray;
  readonly kernels: Partial<KernelTable>;
  /** bytes currently allocated, for leak checks and benchmarks */
  allocatedBytes(): number;
}
