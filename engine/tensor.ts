// The Tensor handle: shape, dtype, a (refcounted) backend storage at an element offset, autograd links.
// Its op methods (add, matmul, backward, ...) are declared here (TensorMethods) and installed by methods.ts as thin
// wrappers over the functional API (api.ts), so this file imports no op and does no arithmetic itself.
// Invariants:
// - Contiguous row-major data: element (i0..ik) lives at storage[offset + sum(i_j * stride_j)].
// - reshape/squeeze/unsqueeze/flatten/detach return a new Tensor SHARING the storage (refcount + 1); every other op
//   writes a fresh storage. Kernels never write into a shared storage except the in-place optimiser updates.
// - A disposed tensor raises on any use; toArray() is the only host read (Backend.read).

import type { Backend, DType, TensorRef, TypedArray } from './backend.ts';
import {
  disposeTensor, graphDrop, graphHold, keepTensor, setTensorPredicate, trackTensor, type GraphNodeLike, type MemTensor, type Scope,
  type StorageHandle,
} from './memory.ts';
import { numel, shapeStr } from './shape.ts';

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

}

// ---- graph nodes (recorded by autograd.ts, walked by backward.ts) ----------------------------------------------------

export type BackwardFn = (grads: (Tensor | null)[], needs: boolean[]) => (Tensor | null)[];

export class Node implements GraphNodeLike {
  released = false;
  /** outputs that carry this node as gradFn and are not disposed */
  liveOutputs = 0;
  /** edges from live nodes that consume one of this node's outputs */
  consumers = 0;
  /** set while a backward() pass owns this node: refcount cascades must not release it before it is processed */
  walking = false;
  constructor(
    readonly name: string,
    readonly inputs: readonly Tensor[],
    readonly nOut: number,
    readonly backwardFn: BackwardFn,
    readonly saved: readonly Tensor[],
  ) {
    for (const t of saved) graphHold(t);
    for (const t of inputs) if (t.gradFn) t.gradFn.consumers++;
  }
  outputDisposed(): void {
    this.liveOutputs--;
    this.maybeRelease();
  }
  private maybeRelease(): void {
    if (!this.released && !this.walking && this.liveOutputs <= 0 && this.consumers <= 0) this.release();
  }
  /** Drop the saved tensors; producers lose one consumer each (and may be released in turn). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.saved) graphDrop(t);
    // iterative cascade (graphs can be thousands of nodes deep)
    const stack: Node[] = [this];
    while (stack.length) {
      const n = stack.pop()!;
      for (const t of n.inputs) {
        const p = t.gradFn;
        if (!p) continue;
        p.consumers--;
        if (!p.released && !p.walking && p.liveOutputs <= 0 && p.consumers <= 0) {
          p.released = true;
          for (const st of p.saved) graphDrop(st);
          stack.push(p);
        }
      }
    }
  }
}

/** The op methods of a Tensor (installed on Tensor.prototype by methods.ts). */
export interface TensorMethods {
  /** Reverse-mode autograd from this tensor; a non-scalar needs a seed gradient of the same shape. */
  backward(seed?: Tensor): void;
  /** Same data (shared storage), no graph. */
  detach(): Tensor;
  clone(): Tensor;
  to(backend: string | Backend): Tensor;
  cast(dtype: DType): Tensor;
  // ---- elementwise -----------------------------------------------------------------------------------------------
  add(o: TensorOrScalar): Tensor;
  sub(o: TensorOrScalar): Tensor;
  mul(o: TensorOrScalar): Tensor;
  div(o: TensorOrScalar): Tensor;
  pow(o: TensorOrScalar): Tensor;
  maximum(o: TensorOrScalar): Tensor;
  minimum(o: TensorOrScalar): Tensor;
  eq(o: TensorOrScalar): Tensor;
  ne(o: TensorOrScalar): Tensor;
  lt(o: TensorOrScalar): Tensor;
  le(o: TensorOrScalar): Tensor;
  gt(o: TensorOrScalar): Tensor;
  ge(o: TensorOrScalar): Tensor;
  neg(): Tensor;
  exp(): Tensor;
  log(): Tensor;
  sqrt(): Tensor;
  rsqrt(): Tensor;
  abs(): Tensor;
  sign(): Tensor;
  tanh(): Tensor;
  sigmoid(): Tensor;
  relu(): Tensor;
  gelu(): Tensor;
  quickGelu(): Tensor;
  erf(): Tensor;
  /** this * scale + shift */
  affine(scale: number, shift?: number): Tensor;
  /** masked fill: value where mask is nonzero. */
  maskedFill(mask: Tensor, value: number): Tensor;
  // ---- reductions ------------------------------------------------------------------------------------------------
  sum(axes?: number | number[], keepdim?: boolean): Tensor;
  mean(axes?: number | number[], keepdim?: boolean): Tensor;
  max(axis: number, keepdim?: boolean): Tensor;
  maxWithIndices(axis: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  argmax(axis: number, keepdim?: boolean): Tensor;
  // ---- linear algebra --------------------------------------------------------------------------------------------
  matmul(o: Tensor, opts?: { transA?: boolean; transB?: boolean }): Tensor;
  // ---- movement --------------------------------------------------------------------------------------------------
  reshape(shape: readonly number[]): Tensor;
  view(shape: readonly number[]): Tensor;
  permute(...axes: number[]): Tensor;
  transpose(a: number, b: number): Tensor;
  unsqueeze(axis: number): Tensor;
  squeeze(axis?: number): Tensor;
  flatten(start?: number, end?: number): Tensor;
  slice(axis: number, start: number, end?: number): Tensor;
  expand(shape: readonly number[]): Tensor;
  softmax(axis?: number, mask?: Tensor): Tensor;
  logSoftmax(axis?: number, mask?: Tensor): Tensor;
}
export interface Tensor extends TensorMethods {}

setTensorPredicate((v) => v instanceof Tensor);
