// The Tensor handle: shape, dtype, a (refcounted) backend storage at an element offset, autograd links.
// Methods are thin PyTorch-flavoured wrappers over engine/ops.ts; this file does no arithmetic itself.
// Invariants:
// - Contiguous row-major data: element (i0..ik) lives at storage[offset + sum(i_j * stride_j)].
// - reshape/squeeze/unsqueeze/flatten/detach return a new Tensor SHARING the storage (refcount + 1); every other op
//   writes a fresh storage. Kernels never write into a shared storage except the in-place optimiser updates.
// - A disposed tensor raises on any use; toArray() is the only host read (Backend.read).

import type { Backend, DType, TensorRef, TypedArray } from './backend.ts';
import { disposeTensor, keepTensor, setTensorPredicate, trackTensor, type MemTensor, type Scope, type StorageHandle } from './memory.ts';
import { numel, shapeStr } from './shape.ts';
import type { Node } from './autograd.ts';
import { backward as runBackward } from './autograd.ts';
import * as F from './ops.ts';

let nextId = 1;

export type Scalar = number;
export type TensorOrScalar = Tensor | number;
export type NestedArray = number | boolean | NestedArray[];

export class Tensor implements MemTensor {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  readonly backend: Backend;
  requiresGrad = false;
  /** Accumulated gradient of a leaf that requires grad (kept: survives scopes; replaced on accumulation). */
  grad: Tensor | null = null;
  /** The graph node that produced this tensor (null for leaves and for tensors made under noGrad). */
  gradFn: Node | null = null;
  /** Which output of gradFn this tensor is. */
  _outIndex = 0;
  _handle: StorageHandle;
  readonly _offset: number;
  _disposed = false;
  _released = false;
  _graphRefs = 0;
  _scope: Scope | null = null;
  _kept = false;

  /** Internal: use the creation functions (tensor, zeros, ...) instead. Takes over one reference of `handle`. */
  constructor(handle: StorageHandle, offset: number, shape: readonly number[], dtype: DType) {
    this.id = nextId++;
    this._handle = handle;
    this._offset = offset;
    this.shape = Object.freeze(shape.slice());
    this.dtype = dtype;
    this.size = numel(shape);
    this.backend = handle.backend;
    trackTensor(this);
  }

  /** Internal: allocate an uninitialised tensor on `backend`. */
  static _alloc(backend: Backend, shape: readonly number[], dtype: DType): Tensor {
    if (!backend.dtypes.includes(dtype)) throw new Error(`backend ${backend.name} does not store dtype ${dtype}`);
    const storage = backend.alloc(numel(shape), dtype);
    return new Tensor({ storage, backend, refs: 1 }, 0, shape, dtype);
  }

  /** Internal: a new tensor sharing this one's storage with another shape of the same size. */
  _view(shape: readonly number[]): Tensor {
    this._check('view', true); // callers check user-visible disposal; backward may view graph-held tensors
    if (numel(shape) !== this.size) throw new Error(`view: cannot view ${shapeStr(this.shape)} as ${shapeStr(shape)}`);
    this._handle.refs++;
    return new Tensor(this._handle, this._offset, shape, this.dtype);
  }

  get ndim(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Internal: throw if unusable. `allowHeld` lets backward use disposed tensors a graph node still saves. */
  _check(op: string, allowHeld = false): void {
    if (this._released || (this._disposed && !allowHeld)) {
      throw new Error(`${op}: tensor #${this.id} ${shapeStr(this.shape)} ${this.dtype} has been disposed`);
    }
  }

  /** What a kernel sees. */
  _ref(): TensorRef {
    return { storage: this._handle.storage, offset: this._offset, shape: this.shape, dtype: this.dtype };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  toString(): string {
    return `Tensor(#${this.id} ${shapeStr(this.shape)} ${this.dtype} on ${this.backend.name}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- host access -------------------------------------------------------------------------------------------
  /** Synchronous host copy of the data (the only host read). */
  toArray(): TypedArray {
    this._check('toArray');
    return this.backend.read(this._handle.storage, this._offset, this.size);
  }
  /** Nested JS arrays (a number for a 0-d tensor). */
  toList(): NestedArray {
    const data = this.toArray();
    const shape = this.shape;
    if (shape.length === 0) return data[0];
    let pos = 0;
    const build = (d: number): NestedArray[] => {
      const out: NestedArray[] = [];
      for (let i = 0; i < shape[d]; i++) out.push(d === shape.length - 1 ? data[pos++] : build(d + 1));
      return out;
    };
    return build(0);
  }
  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor has ${this.size} elements (shape ${shapeStr(this.shape)}), expected 1`);
    return this.toArray()[0];
  }

  // ---- memory and autograd -------------------------------------------------------------------------------------
  dispose(): void {
    disposeTensor(this);
  }
  /** Exempt from every scope; returns this. */
  keep(): this {
    return keepTensor(this);
  }
  requiresGrad_(flag = true): this {
    if (flag && this.dtype === 'int32') throw new Error(`requiresGrad_: int32 tensors cannot require grad`);
    if (!flag && this.gradFn) throw new Error('requiresGrad_(false): only leaves can change requiresGrad; use detach()');
    this.requiresGrad = flag;
    return this;
  }
  /** Reverse-mode autograd from this tensor; a non-scalar needs a seed gradient of the same shape. */
  backward(seed?: Tensor): void {
    runBackward(this, seed);
  }
  /** Same data (shared storage), no graph. */
  detach(): Tensor {
    return F.detach(this);
  }
  clone(): Tensor {
    return F.clone(this);
  }
  to(backend: string | Backend): Tensor {
    return F.to(this, backend);
  }
  cast(dtype: DType): Tensor {
    return F.cast(this, dtype);
  }

  // ---- elementwise -----------------------------------------------------------------------------------------------
  add(o: TensorOrScalar): Tensor { return F.add(this, o); }
  sub(o: TensorOrScalar): Tensor { return F.sub(this, o); }
  mul(o: TensorOrScalar): Tensor { return F.mul(this, o); }
  div(o: TensorOrScalar): Tensor { return F.div(this, o); }
  pow(o: TensorOrScalar): Tensor { return F.pow(this, o); }
  maximum(o: TensorOrScalar): Tensor { return F.maximum(this, o); }
  minimum(o: TensorOrScalar): Tensor { return F.minimum(this, o); }
  eq(o: TensorOrScalar): Tensor { return F.eq(this, o); }
  ne(o: TensorOrScalar): Tensor { return F.ne(this, o); }
  lt(o: TensorOrScalar): Tensor { return F.lt(this, o); }
  le(o: TensorOrScalar): Tensor { return F.le(this, o); }
  gt(o: TensorOrScalar): Tensor { return F.gt(this, o); }
  ge(o: TensorOrScalar): Tensor { return F.ge(this, o); }
  neg(): Tensor { return F.neg(this); }
  exp(): Tensor { return F.exp(this); }
  log(): Tensor { return F.log(this); }
  sqrt(): Tensor { return F.sqrt(this); }
  rsqrt(): Tensor { return F.rsqrt(this); }
  abs(): Tensor { return F.abs(this); }
  sign(): Tensor { return F.sign(this); }
  tanh(): Tensor { return F.tanh(this); }
  sigmoid(): Tensor { return F.sigmoid(this); }
  relu(): Tensor { return F.relu(this); }
  gelu(): Tensor { return F.gelu(this); }
  quickGelu(): Tensor { return F.quickGelu(this); }
  erf(): Tensor { return F.erf(this); }
  /** this * scale + shift */
  affine(scale: number, shift = 0): Tensor { return F.affine(this, scale, shift); }
  /** masked fill: value where mask is nonzero. */
  maskedFill(mask: Tensor, value: number): Tensor { return F.maskedFill(this, mask, value); }

  // ---- reductions ------------------------------------------------------------------------------------------------
  sum(axes?: number | number[], keepdim = false): Tensor { return F.sum(this, axes, keepdim); }
  mean(axes?: number | number[], keepdim = false): Tensor { return F.mean(this, axes, keepdim); }
  max(axis: number, keepdim = false): Tensor { return F.max(this, axis, keepdim); }
  maxWithIndices(axis: number, keepdim = false): { values: Tensor; indices: Tensor } { return F.maxWithIndices(this, axis, keepdim); }
  argmax(axis: number, keepdim = false): Tensor { return F.argmax(this, axis, keepdim); }

  // ---- linear algebra --------------------------------------------------------------------------------------------
  matmul(o: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor { return F.matmul(this, o, opts); }

  // ---- movement --------------------------------------------------------------------------------------------------
  reshape(shape: readonly number[]): Tensor { return F.reshape(this, shape); }
  view(shape: readonly number[]): Tensor { return F.reshape(this, shape); }
  permute(...axes: number[]): Tensor { return F.permute(this, axes); }
  transpose(a: number, b: number): Tensor { return F.transpose(this, a, b); }
  unsqueeze(axis: number): Tensor { return F.unsqueeze(this, axis); }
  squeeze(axis?: number): Tensor { return F.squeeze(this, axis); }
  flatten(start = 0, end = -1): Tensor { return F.flatten(this, start, end); }
  slice(axis: number, start: number, end?: number): Tensor { return F.slice(this, axis, start, end); }
  expand(shape: readonly number[]): Tensor { return F.expand(this, shape); }
  softmax(axis = -1, mask?: Tensor): Tensor { return F.softmax(this, axis, mask); }
  logSoftmax(axis = -1, mask?: Tensor): Tensor { return F.logSoftmax(this, axis, mask); }
}

setTensorPredicate((v) => v instanceof Tensor);
