// Installs the op methods of Tensor (declared in tensor.ts as TensorMethods) on Tensor.prototype: thin wrappers over
// the functional API (api.ts) and backward (backward.ts). Loaded by engine/index.ts.
// Invariant: tsc checks that every method of TensorMethods is installed (the literal below is typed by it).

import type { Backend, DType } from './backend.ts';
import { Tensor, type TensorMethods, type TensorOrScalar } from './tensor.ts';
import { backward } from './backward.ts';
import * as F from './api.ts';

const methods: TensorMethods & ThisType<Tensor> = {
  /** Reverse-mode autograd from this tensor; a non-scalar needs a seed gradient of the same shape. */
  backward(seed?: Tensor): void {
    backward(this, seed);
  },
  /** Same data (shared storage), no graph. */
  detach(): Tensor {
    return F.detach(this);
  },
  clone(): Tensor {
    return F.clone(this);
  },
  to(backend: string | Backend): Tensor {
    return F.to(this, backend);
  },
  cast(dtype: DType): Tensor {
    return F.cast(this, dtype);
  },

  // ---- elementwise -----------------------------------------------------------------------------------------------
  add(o: TensorOrScalar): Tensor { return F.add(this, o); },
  sub(o: TensorOrScalar): Tensor { return F.sub(this, o); },
  mul(o: TensorOrScalar): Tensor { return F.mul(this, o); },
  div(o: TensorOrScalar): Tensor { return F.div(this, o); },
  pow(o: TensorOrScalar): Tensor { return F.pow(this, o); },
  maximum(o: TensorOrScalar): Tensor { return F.maximum(this, o); },
  minimum(o: TensorOrScalar): Tensor { return F.minimum(this, o); },
  eq(o: TensorOrScalar): Tensor { return F.eq(this, o); },
  ne(o: TensorOrScalar): Tensor { return F.ne(this, o); },
  lt(o: TensorOrScalar): Tensor { return F.lt(this, o); },
  le(o: TensorOrScalar): Tensor { return F.le(this, o); },
  gt(o: TensorOrScalar): Tensor { return F.gt(this, o); },
  ge(o: TensorOrScalar): Tensor { return F.ge(this, o); },
  neg(): Tensor { return F.neg(this); },
  exp(): Tensor { return F.exp(this); },
  log(): Tensor { return F.log(this); },
  sqrt(): Tensor { return F.sqrt(this); },
  rsqrt(): Tensor { return F.rsqrt(this); },
  abs(): Tensor { return F.abs(this); },
  sign(): Tensor { return F.sign(this); },
  tanh(): Tensor { return F.tanh(this); },
  sigmoid(): Tensor { return F.sigmoid(this); },
  relu(): Tensor { return F.relu(this); },
  gelu(): Tensor { return F.gelu(this); },
  quickGelu(): Tensor { return F.quickGelu(this); },
  erf(): Tensor { return F.erf(this); },
  /** this * scale + shift */
  affine(scale: number, shift = 0): Tensor { return F.affine(this, scale, shift); },
  /** masked fill: value where mask is nonzero. */
  maskedFill(mask: Tensor, value: number): Tensor { return F.maskedFill(this, mask, value); },

  // ---- reductions ------------------------------------------------------------------------------------------------
  sum(axes?: number | number[], keepdim = false): Tensor { return F.sum(this, axes, keepdim); },
  mean(axes?: number | number[], keepdim = false): Tensor { return F.mean(this, axes, keepdim); },
  max(axis: number, keepdim = false): Tensor { return F.max(this, axis, keepdim); },
  maxWithIndices(axis: number, keepdim = false): { values: Tensor; indices: Tensor } { return F.maxWithIndices(this, axis, keepdim); },
  argmax(axis: number, keepdim = false): Tensor { return F.argmax(this, axis, keepdim); },

  // ---- linear algebra --------------------------------------------------------------------------------------------
  matmul(o: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor { return F.matmul(this, o, opts); },

  // ---- movement --------------------------------------------------------------------------------------------------
  reshape(shape: readonly number[]): Tensor { return F.reshape(this, shape); },
  view(shape: readonly number[]): Tensor { return F.reshape(this, shape); },
  permute(...axes: number[]): Tensor { return F.permute(this, axes); },
  transpose(a: number, b: number): Tensor { return F.transpose(this, a, b); },
  unsqueeze(axis: number): Tensor { return F.unsqueeze(this, axis); },
  squeeze(axis?: number): Tensor { return F.squeeze(this, axis); },
  flatten(start = 0, end = -1): Tensor { return F.flatten(this, start, end); },
  slice(axis: number, start: number, end?: number): Tensor { return F.slice(this, axis, start, end); },
  expand(shape: readonly number[]): Tensor { return F.expand(this, shape); },
  softmax(axis = -1, mask?: Tensor): Tensor { return F.softmax(this, axis, mask); },
  logSoftmax(axis = -1, mask?: Tensor): Tensor { return F.logSoftmax(this, axis, mask); },
};

Object.assign(Tensor.prototype, methods);
