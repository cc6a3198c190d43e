// The shape backend: storages without memory and kernels that record work instead of computing it.
// It exists so that FLOPs can be measured from an actual forward pass of a full-size model (METER with 618 tokens)
// instantly and without allocating: models/accounting.ts runs a forward with and without a method and subtracts.
// Counting convention (fvcore style, spec §7.2): one multiply-add = one "flop".
//   matmul: batch * M * N * K MACs (batch = product of the output's broadcast batch dims);
//   layer_norm: 5 ops per element (affine), tallied per weight storage so a caller can attribute it to a module;
//   every other op: counted in the per-op tally (calls, output elements) but contributes 0 FLOPs.
// Does not: hold, produce or return data. `read` throws; `write` accepts and discards (tensor creation must work).
// Never auto-selected: it registers with the lowest priority and is used only when asked for by name.
// Invariants: alloc/free keep a virtual byte count (what the run WOULD have allocated) but allocatedBytes() is 0;
// the tally is only changed by kernel calls and reset().
import { registerBackend } from '../registry.ts';
import { OP_NAMES, type Backend, type DType, type KernelTable, type OpName, type Storage, type TensorRef, type TypedArray } from '../backend.ts';

export interface ShapeStorage extends Storage {
  readonly id: number;
}

export interface OpTally {
  calls: number;
  /** sum of output elements over the calls (inputs for in-place ops) */
  elements: number;
}

export interface WorkTally {
  /** multiply-adds of matmul (forward and backward kernels alike) */
  matmulMacs: number;
  /** layer_norm (forward) elements */
  layerNormElements: number;
  /** layer_norm elements keyed by the storage of the weight passed to the kernel */
  layerNormByWeight: Map<Storage, number>;
  ops: Map<OpName, OpTally>;
}

/** fvcore's LayerNorm cost with an affine transform: 5 ops per element. */
export const LAYER_NORM_OPS_PER_ELEMENT = 5;

const BYTES: Record<DType, number> = { float32: 4, float64: 8, int32: 4 };
const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export class ShapeBackend implements Backend {
  readonly name = 'shape';
  readonly dtypes: readonly DType[] = ['float32', 'float64', 'int32'];
  readonly kernels: KernelTable;
  tally: WorkTally = ShapeBackend.emptyTally();
  private nextId = 1;
  private virtualBytes = 0;
  private peakVirtual = 0;

  static emptyTally(): WorkTally {
    return { matmulMacs: 0, layerNormElements: 0, layerNormByWeight: new Map(), ops: new Map() };
  }

  constructor() {
    const table = {} as Record<OpName, (inputs: TensorRef[], outputs: TensorRef[], attrs: unknown) => void>;
    for (const op of OP_NAMES) table[op] = (inputs, outputs, attrs) => this.record(op, inputs, outputs, attrs);
    this.kernels = table as unknown as KernelTable;
  }

  /** Clears the tally (not the storages). */
  reset(): void {
    this.tally = ShapeBackend.emptyTally();
  }

  /** Runs fn with a fresh tally and returns what it recorded; the previous tally is restored afterwards. */
  measure<T>(fn: () => T): { result: T; tally: WorkTally } {
    const saved = this.tally;
    const fresh = ShapeBackend.emptyTally();
    this.tally = fresh;
    try {
      return { result: fn(), tally: fresh };
    } finally {
      this.tally = saved;
    }
  }

  private record(op: OpName, inputs: TensorRef[], outputs: TensorRef[], attrs: unknown): void {
    const t = this.tally;
    const els = outputs.length ? numelOf(outputs[0].shape) : inputs.length ? numelOf(inputs[0].shape) : 0;
    const o = t.ops.get(op);
    if (o) { o.calls++; o.elements += els; } else t.ops.set(op, { calls: 1, elements: els });
    if (op === 'matmul') {
      const a = inputs[0], out = outputs[0];
      if (!a || !out) throw new Error(`shape backend: matmul called with ${inputs.length} inputs / ${outputs.length} outputs`);
      const { transA } = attrs as { transA: boolean };
      const k = a.shape.length < 2 ? a.shape[0] : transA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
      t.matmulMacs += numelOf(out.shape) * k;
    } else if (op === 'layer_norm') {
      const x = inputs[0];
      const n = numelOf(x.shape);
      t.layerNormElements += n;
      const w = inputs[1]?.storage;
      if (w) t.layerNormByWeight.set(w, (t.layerNormByWeight.get(w) ?? 0) + n);
    }
  }

  alloc(numel: number, dtype: DType): ShapeStorage {
    if (!Number.isInteger(numel) || numel < 0) throw new Error(`shape backend: alloc of ${numel} elements`);
    this.virtualBytes += numel * BYTES[dtype];
    this.peakVirtual = Math.max(this.peakVirtual, this.virtualBytes);
    return { backend: this.name, numel, dtype, id: this.nextId++ };
  }

  free(storage: Storage): void {
    this.virtualBytes -= storage.numel * BYTES[storage.dtype];
  }

  /** Data written to the shape backend is discarded: it only tracks shapes. */
  write(storage: Storage, data: TypedArray, offset = 0): void {
    if (offset + data.length > storage.numel) {
      throw new Error(`shape backend: write of ${data.length} elements at offset ${offset} into a storage of ${storage.numel}`);
    }
  }

  read(storage: Storage, offset = 0, numel = storage.numel - offset): TypedArray {
    throw new Error(
      `shape backend holds no data: cannot read ${numel} ${storage.dtype} element(s) at offset ${offset}. ` +
        `It only records work (FLOP counting); run on 'ref', 'wasm' or 'cuda' to get values.`,
    );
  }

  /** No real memory is ever held. */
  allocatedBytes(): number {
    return 0;
  }

  /** Bytes the recorded run would hold now / at its peak on a real backend. */
  virtualAllocatedBytes(): { now: number; peak: number } {
    return { now: this.virtualBytes, peak: this.peakVirtual };
  }
}

/** Priority used when registering with the engine: lowest, never chosen automatically. */
export const SHAPE_BACKEND_PRIORITY = -1000;

let instance: ShapeBackend | null = null;
/** The process-wide shape backend (one tally per process; accounting uses measure()). */
export function shapeBackend(): ShapeBackend {
  return (instance ??= new ShapeBackend());
}

registerBackend('shape', () => shapeBackend(), SHAPE_BACKEND_PRIORITY);
