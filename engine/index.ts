// Public API of the engine: everything models/ and train/ import comes from here.
// Does not define anything itself; it re-exports and registers the backends (one import line each).
// Invariants: importing this module installs the op table (op-table.ts, into dispatch.ts) and Tensor's op methods
// (methods.ts), and registers every backend compiled into the tree; selection happens lazily on the first tensor
// (registry.ts: APTUNE_BACKEND, else highest priority available). Import the engine through this file.

export { Tensor } from './tensor.ts';
export type { NestedArray, TensorOrScalar } from './tensor.ts';
export type { Backend, DType, OpName, OpAttrs, Storage, TensorRef, TypedArray, Kernel, KernelTable } from './backend.ts';
export { OP_NAMES, OutOfMemoryError } from './backend.ts';
export { OPS } from './op-table.ts';
export { apply, profileOps, profileReport } from './dispatch.ts';
export type { ProfileRow } from './dispatch.ts';
export {
  add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, where, maskedFill, affine, powScalar,
  neg, exp, log, sqrt, rsqrt, abs, sign, tanh, sigmoid, relu, erf, gelu, biasGelu, quickGelu,
  sum, mean, max, maxWithIndices, argmax, sumTo,
  matmul, linear, unfoldPatches,
  reshape, detach, unsqueeze, squeeze, flatten, permute, transpose, slice, expand, concat, stack, pad, cast, clone, to, assign,
  indexSelect, indexAdd, gather, scatterAdd, embedding,
  softmax, scaledSoftmax, logSoftmax, layerNorm, dropout, crossEntropy, bceWithLogits, resizeBilinear, resizeBicubic, MASK_NEG,
  tensor, full, zeros, ones, zerosLike, onesLike, fullLike, randn, rand, arange,
  adamwStep, sgdStep,
} from './api.ts';
export type { CreateOpts, RandOpts } from './api.ts';
export type { OpDef, OpTable, GradCtx } from './dispatch.ts';
import './methods.ts'; // installs Tensor's op methods
export { noGrad, enableGrad, isGradEnabled } from './autograd.ts';
export { scope, liveTensors, checkLeaks, setKernelChecks, kernelChecks } from './memory.ts';
export { Generator, manualSeed, defaultGenerator, philox } from './random.ts';
export { registerBackend, setBackend, getBackend, backends, backendStatus, backendByName } from './registry.ts';
export { broadcastShapes, shapeStr, numel } from './shape.ts';

import type { Tensor as T } from './tensor.ts';
import { keepTensor } from './memory.ts';
/** Exempt a tensor from every scope (dispose it by hand). */
export function keep<X extends T>(t: X): X {
  return keepTensor(t);
}
/** Dispose tensors (arrays and plain objects of tensors are walked). */
export function dispose(x: unknown): void {
  if (x === null || typeof x !== 'object') return;
  if (Array.isArray(x)) for (const v of x) dispose(v);
  else if ((x as T).dispose instanceof Function && 'shape' in (x as object)) (x as T).dispose();
  else if (Object.getPrototypeOf(x) === Object.prototype) for (const v of Object.values(x as object)) dispose(v);
}

// --- backend registrations: one import line per backend ---
import './backends/ref.ts';
import './backends/wasm.ts';
import './backends/cuda.ts';
// --- end of backend registrations ---
