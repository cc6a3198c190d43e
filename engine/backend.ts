// The backend contract: a backend is storage plus a kernel table keyed by op name (DESIGN.md lessons 2, 6, 7).
// Invariants:
// - Every op of the closed set OP_NAMES (op-contract.ts) has exactly one name used in TS, AssemblyScript, C++ and
//   CUDA (`grep layer_norm` finds all four). op-table.ts declares each op's shape rule and gradient rule once.
// - Kernels never allocate their outputs: the engine allocates them from the op's shape rule and passes them in.
//   In-place ops (the optimiser steps) write into their inputs and have no outputs.
// - Tensors are contiguous, row-major; a TensorRef may view a storage at an element offset.
// - No kernel reads device data back to the host; only Backend.read does, and only when the user asks.
// - Every backend's table is a `KernelTable` literal (all ops, checked by tsc); `Backend.kernels` stays
//   `Partial<KernelTable>` so that the engine raises one error naming op, backend and dtype for a missing kernel.

import type { DType } from './op-contract.ts';
export type { DType } from './op-contract.ts';
export type TypedArray = Float32Array | Float64Array | Int32Array;

/** A backend's memory cannot hold an allocation. `apply` (dispatch.ts) rethrows it as an Error naming the op, the bytes
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

// The closed set of ops and their attributes are declared in op-contract.ts (with arity, dtypes, op codes and the
// CUDA addon's argument lists); re-exported here because every backend imports this file.
import type { OpAttrs, OpName } from './op-contract.ts';
export { OP_NAMES } from './op-contract.ts';
export type { OpAttrs, OpName } from './op-contract.ts';

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
