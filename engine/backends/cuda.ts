// The CUDA backend: storages are device buffers held by integer handles in the native addon (native/, cuda/), and
// every op of OP_NAMES has a kernel (float32; int32 where an op moves, compares or produces indices).
// Does not: decide shapes (op-table.ts does; dispatch.ts allocates outputs), compute on the host, or read device memory except in
// read(). float64 is not stored here. GEMMs go to cuBLAS (fp32, or tf32 / bf16 with fp32 accumulation: option
// `gemm` or env APTUNE_CUDA_GEMM); fp32 master weights are untouched by the mode.
// Invariants:
// - A kernel only plans on the host (coalesced shapes, element strides, GEMM batches) and calls the addon entry of
//   the same name (`grep layer_norm` finds TS, C++ and CUDA); outputs are written, never allocated.
// - All work is queued on one stream; read() is the only synchronisation. Index / label / int32-division errors
//   found by kernels are raised by the next read() (the reference backend raises them at the op).
// - The factory throws "unavailable: <reason>" (addon not built, no driver, no device, cuBLAS not found), so
//   selection falls back to wasm/ref.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { registerBackend } from '../registry.ts';
import type { Backend, DType, KernelTable, OpAttrs, Storage, TensorRef, TypedArray } from '../backend.ts';
import type { CudaAddon, CudaMemoryStats, CudaProbe, DTypeCode } from '../../native/index.d.ts';
import { broadcastStridesChecked, coalesce, stridesOf } from '../shape.ts';
import { familyKernels, takesInt, type FamilyOp } from '../op-contract.ts';

export type GemmMode = 'fp32' | 'tf32' | 'bf16';
const GEMM_CODE: Record<GemmMode, 0 | 1 | 2> = { fp32: 0, tf32: 1, bf16: 2 };

export interface CudaStorage extends Storage {
  readonly handle: number;
  freed: boolean;
}

export interface CudaBackendOptions {
  /** backend name (default "cuda") */
  name?: string;
  /** GEMM precision; default env APTUNE_CUDA_GEMM, else fp32 */
  gemm?: GemmMode;
}

// ---- addon loading -------------------------------------------------------------------------------------------------

/** Path of the built addon: env APTUNE_CUDA_ADDON, else build/Release/aptune_cuda.node at the package root (two
 *  folders up from engine/backends/ in a checkout, three from dist/engine/backends/ in an installed package). */
export function addonPath(): string {
  if (process.env.APTUNE_CUDA_ADDON) return process.env.APTUNE_CUDA_ADDON;
  const up = import.meta.url.endsWith('.ts') ? '../../' : '../../../';
  return fileURLToPath(new URL(`${up}build/Release/aptune_cuda.node`, import.meta.url));
}

let addonCache: { addon: CudaAddon | null; error: string } | null = null;

/** Loads the addon once; returns null with the reason if it is not built or does not load. Never throws. */
export function loadAddon(): { addon: CudaAddon | null; error: string } {
  if (addonCache) return addonCache;
  const p = addonPath();
  if (!existsSync(p)) {
    addonCache = { addon: null, error: `CUDA addon not built (${p} missing; build it with \`npx aptune build-native\` (\`npm run build:native\` in a checkout) on a machine with cmake, a C++ compiler and nvcc)` };
  } else {
    try {
      addonCache = { addon: createRequire(import.meta.url)(p) as CudaAddon, error: '' };
    } catch (e) {
      addonCache = { addon: null, error: `CUDA addon failed to load (${p}): ${(e as Error).message}` };
    }
  }
  return addonCache;
}

/** The addon's device probe, or null with the reason when the addon is missing. Never throws. */
export function cudaProbe(): { probe: CudaProbe | null; reason: string } {
  const { addon, error } = loadAddon();
  if (!addon) return { probe: null, reason: error };
  const probe = addon.probe();
  return { probe, reason: probe.available ? '' : probe.reason };
}

// ---- host planning (pure functions; unit-tested on every machine) -----------------------------------------------

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

export { coalesce };
export const contiguousStrides = stridesOf;
/** Strides of `shape` read as broadcast to `out` (0 on broadcast axes); throws naming the op. */
export const broadcastStridesTo = (shape: readonly number[], out: readonly number[], op: string): number[] => broadcastStridesChecked(shape, out, `cuda ${op}`);

export interface ReducePlan {
  outerShape: number[];
  outerStrides: number[];
  innerShape: number[];
  innerStrides: number[];
}

/** sum over `axes` of a contiguous `shape`: kept axes (output order) and reduced axes with their input strides. */
export function planReduce(shape: readonly number[], axes: readonly number[]): ReducePlan {
  const xs = contiguousStrides(shape);
  const keep = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const red = shape.map((_, i) => i).filter((i) => axes.includes(i));
  const o = coalesce(keep.map((i) => shape[i]), [keep.map((i) => xs[i])]);
  const r = coalesce(red.map((i) => shape[i]), [red.map((i) => xs[i])]);
  return { outerShape: o.shape, outerStrides: o.strides[0], innerShape: r.shape, innerStrides: r.strides[0] };
}

export interface MatmulPlan {
  M: number;
  N: number;
  K: number;
  /** element offsets (relative to each operand's TensorRef offset) of the first matrix of each batch group */
  aOffsets: number[];
  bOffsets: number[];
  /** GEMMs per group and their element strides (0 = broadcast operand) */
  batch: number;
  strideA: number;
  strideB: number;
}

/**
 * Maps a broadcasting batched matmul onto strided-batched GEMMs: the last (coalesced) batch axis becomes the
 * cuBLAS batch, the other batch axes become groups. When B is shared by every batch and A is not transposed, the
 * batch folds into M (one large GEMM, the linear-layer case).
 */
export function planMatmul(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[], transA: boolean, transB: boolean): MatmulPlan {
  const M = outShape[outShape.length - 2], N = outShape[outShape.length - 1];
  const K = transA ? aShape[aShape.length - 2] : aShape[aShape.length - 1];
  const kb = transB ? bShape[bShape.length - 1] : bShape[bShape.length - 2];
  if (kb !== K) throw new Error(`cuda matmul: inner sizes differ (a [${aShape}], b [${bShape}], transA ${transA}, transB ${transB})`);
  const batchShape = outShape.slice(0, -2);
  const sa = broadcastStridesTo(aShape.slice(0, -2), batchShape, 'matmul').map((s) => s * M * K);
  const sb = broadcastStridesTo(bShape.slice(0, -2), batchShape, 'matmul').map((s) => s * K * N);
  const so = contiguousStrides(batchShape).map((s) => s * M * N);
  const c = coalesce(batchShape, [sa, sb, so]);
  const nb = numel(c.shape);
  if (nb <= 1) return { M, N, K, aOffsets: [0], bOffsets: [0], batch: 1, strideA: 0, strideB: 0 };
  const last = c.shape.length - 1;
  const batch = c.shape[last], strideA = c.strides[0][last], strideB = c.strides[1][last];
  const outer = c.shape.slice(0, last);
  if (outer.length === 0 && strideB === 0 && !transA && strideA === M * K) {
    return { M: M * batch, N, K, aOffsets: [0], bOffsets: [0], batch: 1, strideA: 0, strideB: 0 };
  }
  const aOffsets: number[] = [], bOffsets: number[] = [];
  const L = numel(outer);
  const cur = new Array<number>(outer.length).fill(0);
  for (let l = 0; l < L; l++) {
    let oa = 0, ob = 0;
    for (let d = 0; d < outer.length; d++) {
      oa += cur[d] * c.strides[0][d];
      ob += cur[d] * c.strides[1][d];
    }
    aOffsets.push(oa);
    bOffsets.push(ob);
    for (let d = outer.length - 1; d >= 0; d--) {
      if (++cur[d] < outer[d]) break;
      cur[d] = 0;
    }
  }
  return { M, N, K, aOffsets, bOffsets, batch, strideA, strideB };
}

/** [outer, axis, inner] sizes of a shape around one axis. */
export function around(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}

/** The 4-byte pattern of `value` stored in `dtype` (for pad). */
export function valueBits(value: number, dtype: DType): number {
  const buf = new ArrayBuffer(4);
  if (dtype === 'int32') new Int32Array(buf)[0] = value;
  else new Float32Array(buf)[0] = value;
  return new Uint32Array(buf)[0];
}

// ---- the backend ---------------------------------------------------------------------------------------------------

const NONE: [number, number] = [-1, 0];

function dtypeCode(t: TensorRef, op: string, floatOnly = false): DTypeCode {
  if (t.dtype === 'float32') return 0;
  if (t.dtype === 'int32' && !floatOnly) return 1;
  throw new Error(`cuda ${op}: dtype ${t.dtype} is not supported${floatOnly ? ' (float32 only)' : ' (float32, int32)'}`);
}

export class CudaBackend implements Backend {
  readonly name: string;
  readonly dtypes: readonly DType[] = ['float32', 'int32'];
  readonly kernels: KernelTable;
  readonly probe: CudaProbe;
  private readonly A: CudaAddon;
  private live = 0;

  constructor(addon: CudaAddon, probe: CudaProbe, opts: CudaBackendOptions = {}) {
    this.A = addon;
    this.probe = probe;
    this.name = opts.name ?? 'cuda';
    this.setGemmMode(opts.gemm ?? parseGemmEnv());
    this.kernels = this.makeKernels();
  }

  setGemmMode(mode: GemmMode): void {
    const code = GEMM_CODE[mode];
    if (code === undefined) throw new Error(`cuda: gemm mode must be fp32, tf32 or bf16, got ${String(mode)}`);
    this.A.setGemmMode(code);
  }

  gemmMode(): GemmMode {
    return (['fp32', 'tf32', 'bf16'] as const)[this.A.gemmMode()];
  }

  /** Device memory statistics of the caching allocator (bytes). */
  memoryStats(): CudaMemoryStats {
    return this.A.memoryStats();
  }
  resetPeak(): void {
    this.A.resetPeak();
  }
  /** Returns cached device blocks to the driver. */
  emptyCache(): void {
    this.A.emptyCache();
  }
  /** Waits for all queued work (benchmarks); raises device-side errors like read(). */
  synchronize(): void {
    this.A.synchronize();
  }

  // ---- storage ----

  alloc(n: number, dtype: DType): CudaStorage {
    if (dtype !== 'float32' && dtype !== 'int32') throw new Error(`cuda backend: dtype ${dtype} is not supported (float32, int32)`);
    if (!Number.isInteger(n) || n < 0) throw new Error(`cuda backend: alloc of ${n} elements`);
    const handle = this.A.alloc(n * 4);
    this.live += n * 4;
    return { backend: this.name, numel: n, dtype, handle, freed: false };
  }

  free(s: Storage): void {
    const c = this.own(s, 'free');
    if (c.freed) throw new Error('cuda backend: storage freed twice');
    this.A.free(c.handle);
    c.freed = true;
    this.live -= c.numel * 4;
  }

  write(s: Storage, data: TypedArray, offset = 0): void {
    const c = this.own(s, 'write');
    if (offset + data.length > c.numel) throw new Error(`cuda backend: write of ${data.length} at ${offset} overflows storage of ${c.numel}`);
    if (data.length === 0) return;
    const src = c.dtype === 'int32' ? (data instanceof Int32Array ? data : Int32Array.from(data)) : data instanceof Float32Array ? data : Float32Array.from(data);
    this.A.upload(c.handle, offset, src);
  }

  read(s: Storage, offset = 0, n?: number): TypedArray {
    const c = this.own(s, 'read');
    const count = n ?? c.numel - offset;
    if (offset < 0 || count < 0 || offset + count > c.numel) throw new Error(`cuda backend: read of ${count} at ${offset} overflows storage of ${c.numel}`);
    const out = c.dtype === 'int32' ? new Int32Array(count) : new Float32Array(count);
    if (count > 0) this.A.download(c.handle, offset, out);
    else this.A.synchronize();
    return out;
  }

  allocatedBytes(): number {
    return this.live;
  }

  private own(s: Storage, what: string): CudaStorage {
    if (s.backend !== this.name) throw new Error(`cuda backend: ${what} of a storage from backend "${s.backend}"`);
    const c = s as CudaStorage;
    if (c.freed && what !== 'free') throw new Error(`cuda backend: ${what} of a freed storage`);
    return c;
  }

  /** (handle, element offset) of a kernel operand; throws for a freed or foreign storage. */
  private t(r: TensorRef, op: string): [number, number] {
    const c = this.own(r.storage, op);
    return [c.handle, r.offset];
  }

  // ---- kernels ----

  private makeKernels(): KernelTable {
    const A = this.A;
    const t = (r: TensorRef, op: string) => this.t(r, op);

    const binary = (op: FamilyOp<'binary'>) =>
      (inputs: TensorRef[], outputs: TensorRef[]): void => {
        const [a, b] = inputs, o = outputs[0];
        const n = numel(o.shape);
        if (n === 0) return;
        const dt = dtypeCode(o, op);
        if (a.dtype !== o.dtype || b.dtype !== o.dtype) throw new Error(`cuda ${op}: dtypes ${a.dtype}, ${b.dtype} -> ${o.dtype} differ`);
        const c = coalesce(o.shape, [broadcastStridesTo(a.shape, o.shape, op), broadcastStridesTo(b.shape, o.shape, op)]);
        A[op](dt, ...t(o, op), ...t(a, op), ...t(b, op), c.shape, c.strides[0], c.strides[1]);
      };

    const unary = (op: FamilyOp<'unary'>) =>
      (inputs: TensorRef[], outputs: TensorRef[]): void => {
        const x = inputs[0], o = outputs[0];
        const n = numel(o.shape);
        if (n === 0) return;
        const dt = dtypeCode(o, op, !takesInt(op));
        A[op](dt, ...t(o, op), ...t(x, op), n);
      };

    const pair = (op: FamilyOp<'unary_backward'>) => (inputs: TensorRef[], outputs: TensorRef[]): void => {
      const [x, g] = inputs, o = outputs[0];
      const n = numel(o.shape);
      if (n === 0) return;
      dtypeCode(o, op, true);
      A[op](...t(o, op), ...t(x, op), ...t(g, op), n);
    };

    const softmaxK = (op: 'softmax' | 'log_softmax') => (inputs: TensorRef[], outputs: TensorRef[], a: { scale?: number }): void => {
      const sc = a.scale ?? 1;
      const x = inputs[0], o = outputs[0], mask = inputs[1];
      dtypeCode(x, op, true);
      const D = x.shape[x.shape.length - 1];
      const n = numel(x.shape);
      if (n === 0) return;
      const rows = n / D;
      if (!mask) {
        A[op](...t(o, op), ...t(x, op), rows, D, ...NONE, [rows], [0], 0, sc);
        return;
      }
      dtypeCode(mask, op, true);
      const ms = broadcastStridesTo(mask.shape, x.shape, op);
      const lead = x.shape.slice(0, -1);
      const c = coalesce(lead, [ms.slice(0, -1)]);
      A[op](...t(o, op), ...t(x, op), rows, D, ...t(mask, op), c.shape, c.strides[0], ms[ms.length - 1], sc);
    };

    const softmaxBack = (op: 'softmax_backward' | 'log_softmax_backward') => (inputs: TensorRef[], outputs: TensorRef[], a: { scale?: number }): void => {
      const [y, g] = inputs, o = outputs[0];
      dtypeCode(y, op, true);
      const D = y.shape[y.shape.length - 1];
      const n = numel(y.shape);
      if (n === 0) return;
      A[op](...t(o, op), ...t(y, op), ...t(g, op), n / D, D, a.scale ?? 1);
    };

    const maxK = (values: TensorRef | null, indices: TensorRef, x: TensorRef, axis: number, op: string): void => {
      const dt = dtypeCode(x, op);
      if (numel(indices.shape) === 0) return;
      if (x.shape[axis] === 0) throw new Error(`cuda ${op}: reduction over an empty axis ${axis} of [${x.shape}]`);
      const xs = contiguousStrides(x.shape);
      const keep = x.shape.map((_, i) => i).filter((i) => i !== axis);
      const c = coalesce(keep.map((i) => x.shape[i]), [keep.map((i) => xs[i])]);
      A.max(dt, ...(values ? t(values, op) : NONE), ...t(indices, op), ...t(x, op), c.shape, c.strides[0], x.shape[axis], xs[axis]);
    };

    const copyInto = (o: TensorRef, x: TensorRef, shape: readonly number[], oStrides: number[], xStrides: number[], oBase: number, xBase: number, op: string): void => {
      if (numel(shape) === 0) return;
      const c = coalesce(shape, [oStrides, xStrides]);
      const [oh, oo] = t(o, op), [xh, xo] = t(x, op);
      A.copy_strided(oh, oo + oBase, xh, xo + xBase, c.shape, c.strides[0], c.strides[1]);
    };

    const resize = (op: 'resize_bilinear') => (inputs: TensorRef[], outputs: TensorRef[], a: OpAttrs['resize_bilinear']): void => {
      const x = inputs[0], o = outputs[0];
      dtypeCode(x, op, true);
      const H = x.shape[x.shape.length - 2], W = x.shape[x.shape.length - 1];
      if (numel(o.shape) === 0 || H * W === 0) return;
      A[op](...t(o, op), ...t(x, op), numel(x.shape) / (H * W), H, W, a.outH, a.outW, a.alignCorners);
    };

    const randomK = (op: 'random_uniform' | 'random_normal') => (outputs: TensorRef[], seed: number, offset: number, p0: number, p1: number): void => {
      const o = outputs[0];
      const n = numel(o.shape);
      if (n === 0) return;
      A[op](dtypeCode(o, op), ...t(o, op), n, seed, offset, p0, p1);
    };

    const table: KernelTable = {
      ...familyKernels('binary', binary),
      ...familyKernels('unary', unary),
      ...familyKernels('unary_backward', pair),
      where: (inputs, outputs) => {
        const [c, a, b] = inputs, o = outputs[0];
        const n = numel(o.shape);
        if (n === 0) return;
        const dt = dtypeCode(o, 'where');
        if (a.dtype !== o.dtype || b.dtype !== o.dtype) throw new Error(`cuda where: dtypes ${a.dtype}, ${b.dtype} -> ${o.dtype} differ`);
        const co = coalesce(o.shape, [broadcastStridesTo(c.shape, o.shape, 'where'), broadcastStridesTo(a.shape, o.shape, 'where'), broadcastStridesTo(b.shape, o.shape, 'where')]);
        A.where(dt, dtypeCode(c, 'where'), ...t(o, 'where'), ...t(c, 'where'), ...t(a, 'where'), ...t(b, 'where'), co.shape, co.strides[0], co.strides[1], co.strides[2]);
      },
      affine: (inputs, outputs, a) => {
        const x = inputs[0], o = outputs[0];
        const n = numel(o.shape);
        if (n === 0) return;
        A.affine(dtypeCode(o, 'affine'), ...t(o, 'affine'), ...t(x, 'affine'), n, a.scale, a.shift);
      },
      pow_scalar: (inputs, outputs, a) => {
        const x = inputs[0], o = outputs[0];
        const n = numel(o.shape);
        if (n === 0) return;
        dtypeCode(o, 'pow_scalar', true);
        A.pow_scalar(...t(o, 'pow_scalar'), ...t(x, 'pow_scalar'), n, a.exponent);
      },

      sum: (inputs, outputs, a) => {
        const x = inputs[0], o = outputs[0];
        if (numel(o.shape) === 0) return;
        const dt = dtypeCode(x, 'sum');
        const p = planReduce(x.shape, a.axes);
        A.sum(dt, ...t(o, 'sum'), ...t(x, 'sum'), p.outerShape, p.outerStrides, p.innerShape, p.innerStrides);
      },
      max: (inputs, outputs, a) => maxK(outputs[0], outputs[1], inputs[0], a.axis, 'max'),
      argmax: (inputs, outputs, a) => maxK(null, outputs[0], inputs[0], a.axis, 'argmax'),

      matmul: (inputs, outputs, attrs) => {
        const [a, b] = inputs, o = outputs[0];
        dtypeCode(a, 'matmul', true);
        dtypeCode(b, 'matmul', true);
        if (numel(o.shape) === 0) return;
        const p = planMatmul(a.shape, b.shape, o.shape, attrs.transA, attrs.transB);
        A.matmul(...t(o, 'matmul'), ...t(a, 'matmul'), ...t(b, 'matmul'), p.M, p.N, p.K, attrs.transA, attrs.transB, p.aOffsets, p.bOffsets, p.batch, p.strideA, p.strideB);
      },

      softmax: softmaxK('softmax'), softmax_backward: softmaxBack('softmax_backward'),
      log_softmax: softmaxK('log_softmax'), log_softmax_backward: softmaxBack('log_softmax_backward'),
      layer_norm: (inputs, outputs, a) => {
        const [x, w, b] = inputs, [y, m, r] = outputs;
        dtypeCode(x, 'layer_norm', true);
        const D = x.shape[x.shape.length - 1];
        const n = numel(x.shape);
        if (n === 0) return;
        A.layer_norm(...t(y, 'layer_norm'), ...t(m, 'layer_norm'), ...t(r, 'layer_norm'), ...t(x, 'layer_norm'), ...t(w, 'layer_norm'), ...t(b, 'layer_norm'), n / D, D, a.eps);
      },
      layer_norm_backward: (inputs, outputs) => {
        const [g, x, w, m, r] = inputs, [dx, dw, db] = outputs;
        dtypeCode(x, 'layer_norm_backward', true);
        const D = x.shape[x.shape.length - 1];
        const R = D === 0 ? 0 : numel(x.shape) / D;
        if (D === 0) return;
        const op = 'layer_norm_backward';
        A.layer_norm_backward(...t(dx, op), ...t(dw, op), ...t(db, op), ...t(g, op), ...t(x, op), ...t(w, op), ...t(m, op), ...t(r, op), R, D);
      },
      bias_gelu: (inputs, outputs) => {
        const [x, b] = inputs, o = outputs[0], op = 'bias_gelu';
        dtypeCode(x, op, true);
        const D = x.shape[x.shape.length - 1], n = numel(x.shape);
        if (n === 0) return;
        if (numel(b.shape) !== D) throw new Error(`cuda ${op}: bias [${b.shape}] does not match last dim ${D}`);
        A.bias_gelu(...t(o, op), ...t(x, op), ...t(b, op), n / D, D);
      },
      bias_gelu_backward: (inputs, outputs) => {
        const [x, b, g] = inputs, o = outputs[0], op = 'bias_gelu_backward';
        dtypeCode(x, op, true);
        const D = x.shape[x.shape.length - 1], n = numel(x.shape);
        if (n === 0) return;
        if (numel(b.shape) !== D) throw new Error(`cuda ${op}: bias [${b.shape}] does not match last dim ${D}`);
        A.bias_gelu_backward(...t(o, op), ...t(x, op), ...t(b, op), ...t(g, op), n / D, D);
      },
      dropout: (inputs, outputs, a) => {
        const x = inputs[0], [y, m] = outputs;
        dtypeCode(x, 'dropout', true);
        const n = numel(x.shape);
        if (n === 0) return;
        A.dropout(...t(y, 'dropout'), ...t(m, 'dropout'), ...t(x, 'dropout'), n, a.p, a.seed, a.offset);
      },
      cross_entropy: (inputs, outputs, a) => {
        const [lg, lb] = inputs, o = outputs[0];
        dtypeCode(lg, 'cross_entropy', true);
        if (lb.dtype !== 'int32') throw new Error(`cuda cross_entropy: labels must be int32, got ${lb.dtype}`);
        const [B, C] = lg.shape;
        if (B === 0) return;
        A.cross_entropy(...t(o, 'cross_entropy'), ...t(lg, 'cross_entropy'), ...t(lb, 'cross_entropy'), B, C, a.ignoreIndex);
      },
      cross_entropy_backward: (inputs, outputs, a) => {
        const [lg, lb, g] = inputs, o = outputs[0];
        dtypeCode(lg, 'cross_entropy_backward', true);
        if (lb.dtype !== 'int32') throw new Error(`cuda cross_entropy_backward: labels must be int32, got ${lb.dtype}`);
        const [B, C] = lg.shape;
        if (B * C === 0) return;
        const op = 'cross_entropy_backward';
        A.cross_entropy_backward(...t(o, op), ...t(lg, op), ...t(lb, op), ...t(g, op), B, C, a.ignoreIndex);
      },
      bce_with_logits: (inputs, outputs) => {
        const [x, tg] = inputs, o = outputs[0];
        dtypeCode(x, 'bce_with_logits', true);
        const n = numel(x.shape);
        if (numel(tg.shape) !== n) throw new Error(`cuda bce_with_logits: target [${tg.shape}] and input [${x.shape}] differ in size`);
        if (n === 0) return;
        A.bce_with_logits(...t(o, 'bce_with_logits'), ...t(x, 'bce_with_logits'), ...t(tg, 'bce_with_logits'), n);
      },
      bce_with_logits_backward: (inputs, outputs) => {
        const [x, tg, g] = inputs, o = outputs[0];
        dtypeCode(x, 'bce_with_logits_backward', true);
        const n = numel(x.shape);
        if (numel(tg.shape) !== n || numel(g.shape) !== n) throw new Error(`cuda bce_with_logits_backward: input [${x.shape}], target [${tg.shape}] and grad [${g.shape}] differ in size`);
        if (n === 0) return;
        const op = 'bce_with_logits_backward';
        A.bce_with_logits_backward(...t(o, op), ...t(x, op), ...t(tg, op), ...t(g, op), n);
      },

      index_select: (inputs, outputs, a) => {
        const [x, idx] = inputs, o = outputs[0];
        if (idx.dtype !== 'int32') throw new Error(`cuda index_select: indices must be int32, got ${idx.dtype}`);
        const [O, Ax, I] = around(x.shape, a.axis);
        const K = idx.shape[0];
        if (O * K * I === 0) return;
        A.index_select(dtypeCode(x, 'index_select'), ...t(o, 'index_select'), ...t(x, 'index_select'), ...t(idx, 'index_select'), O, Ax, I, K);
      },
      index_add: (inputs, outputs, a) => {
        const [g, idx] = inputs, o = outputs[0];
        if (idx.dtype !== 'int32') throw new Error(`cuda index_add: indices must be int32, got ${idx.dtype}`);
        const [O, K, I] = around(g.shape, a.axis);
        if (numel(o.shape) === 0) return;
        A.index_add(dtypeCode(g, 'index_add'), ...t(o, 'index_add'), ...t(g, 'index_add'), ...t(idx, 'index_add'), O, a.size, I, K);
      },
      gather: (inputs, outputs, a) => {
        const [x, idx] = inputs, o = outputs[0];
        if (idx.dtype !== 'int32') throw new Error(`cuda gather: indices must be int32, got ${idx.dtype}`);
        if (idx.shape.length !== x.shape.length) throw new Error(`cuda gather: index rank ${idx.shape.length} differs from input rank ${x.shape.length}`);
        if (numel(idx.shape) === 0) return;
        const xs = contiguousStrides(x.shape);
        const st = xs.map((s, d) => (d === a.axis ? 0 : s));
        A.gather(dtypeCode(x, 'gather'), ...t(o, 'gather'), ...t(x, 'gather'), ...t(idx, 'gather'), [...idx.shape], st, xs[a.axis], x.shape[a.axis], numel(x.shape));
      },
      scatter_add: (inputs, outputs, a) => {
        const [g, idx] = inputs, o = outputs[0];
        if (idx.dtype !== 'int32') throw new Error(`cuda scatter_add: indices must be int32, got ${idx.dtype}`);
        const on = numel(o.shape);
        if (on === 0) return;
        const os = contiguousStrides(o.shape);
        const st = os.map((s, d) => (d === a.axis ? 0 : s));
        A.scatter_add(dtypeCode(g, 'scatter_add'), ...t(o, 'scatter_add'), ...t(g, 'scatter_add'), ...t(idx, 'scatter_add'), [...idx.shape], st, os[a.axis], o.shape[a.axis], on);
      },

      permute: (inputs, outputs, a) => {
        const x = inputs[0], o = outputs[0];
        dtypeCode(x, 'permute');
        const xs = contiguousStrides(x.shape);
        copyInto(o, x, o.shape, contiguousStrides(o.shape), a.perm.map((p) => xs[p]), 0, 0, 'permute');
      },
      slice: (inputs, outputs, a) => {
        const x = inputs[0], o = outputs[0];
        dtypeCode(x, 'slice');
        const xs = contiguousStrides(x.shape);
        let base = 0;
        for (let d = 0; d < xs.length; d++) base += a.starts[d] * xs[d];
        copyInto(o, x, o.shape, contiguousStrides(o.shape), xs, 0, base, 'slice');
      },
      pad: (inputs, outputs, a) => {
        const x = inputs[0], o = outputs[0];
        const n = numel(o.shape);
        if (n === 0) return;
        dtypeCode(x, 'pad');
        A.pad(...t(o, 'pad'), ...t(x, 'pad'), [...o.shape], [...x.shape], a.pads.map((p) => p[0]), valueBits(a.value, o.dtype));
      },
      concat: (inputs, outputs, a) => {
        const o = outputs[0];
        dtypeCode(o, 'concat');
        const os = contiguousStrides(o.shape);
        let at = 0;
        for (const x of inputs) {
          if (x.dtype !== o.dtype) throw new Error(`cuda concat: input dtype ${x.dtype} differs from output ${o.dtype}`);
          copyInto(o, x, x.shape, os, contiguousStrides(x.shape), at * os[a.axis], 0, 'concat');
          at += x.shape[a.axis];
        }
      },
      expand: (inputs, outputs) => {
        const x = inputs[0], o = outputs[0];
        dtypeCode(x, 'expand');
        copyInto(o, x, o.shape, contiguousStrides(o.shape), broadcastStridesTo(x.shape, o.shape, 'expand'), 0, 0, 'expand');
      },
      cast: (inputs, outputs) => {
        const x = inputs[0], o = outputs[0];
        const n = numel(o.shape);
        if (n === 0) return;
        A.cast(dtypeCode(x, 'cast'), dtypeCode(o, 'cast'), ...t(o, 'cast'), ...t(x, 'cast'), n);
      },

      resize_bilinear: resize('resize_bilinear'),
      resize_bilinear_backward: (inputs, outputs, a) => {
        const g = inputs[0], o = outputs[0];
        dtypeCode(g, 'resize_bilinear_backward', true);
        const oh = g.shape[g.shape.length - 2], ow = g.shape[g.shape.length - 1];
        const planes = a.inH * a.inW === 0 ? 0 : numel(o.shape) / (a.inH * a.inW);
        if (numel(o.shape) === 0) return;
        A.resize_bilinear_backward(...t(o, 'resize_bilinear_backward'), ...t(g, 'resize_bilinear_backward'), planes, a.inH, a.inW, oh, ow, a.alignCorners);
      },

      fill: (_inputs, outputs, a) => {
        const o = outputs[0];
        const n = numel(o.shape);
        if (n === 0) return;
        A.fill(dtypeCode(o, 'fill'), ...t(o, 'fill'), n, a.value);
      },
      random_uniform: (_inputs, outputs, a) => randomK('random_uniform')(outputs, a.seed, a.offset, a.low, a.high),
      random_normal: (_inputs, outputs, a) => randomK('random_normal')(outputs, a.seed, a.offset, a.mean, a.std),

      adamw_step: (inputs, _outputs, a) => {
        const [p, g, m, v] = inputs;
        dtypeCode(p, 'adamw_step', true);
        const n = numel(p.shape);
        if (n === 0) return;
        const bc1 = 1 - Math.pow(a.beta1, a.step), bc2 = 1 - Math.pow(a.beta2, a.step);
        const stepSize = (a.lr * Math.sqrt(bc2)) / bc1;
        const op = 'adamw_step';
        A.adamw_step(...t(p, op), ...t(g, op), ...t(m, op), ...t(v, op), n, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, stepSize);
      },
      sgd_step: (inputs, _outputs, a) => {
        const [p, g, buf] = inputs;
        dtypeCode(p, 'sgd_step', true);
        const n = numel(p.shape);
        if (n === 0) return;
        A.sgd_step(...t(p, 'sgd_step'), ...t(g, 'sgd_step'), ...(buf ? t(buf, 'sgd_step') : NONE), n, a.lr, a.momentum, a.weightDecay);
      },
    };
    return table;
  }
}

function parseGemmEnv(): GemmMode {
  const v = process.env.APTUNE_CUDA_GEMM;
  if (v === undefined || v === '') return 'fp32';
  if (v === 'fp32' || v === 'tf32' || v === 'bf16') return v;
  throw new Error(`APTUNE_CUDA_GEMM must be fp32, tf32 or bf16, got "${v}"`);
}

/** Builds a CUDA backend; throws "unavailable: <reason>" when the addon, the driver, a device or cuBLAS is missing. */
export function createCudaBackend(opts: CudaBackendOptions = {}): CudaBackend {
  const { addon, error } = loadAddon();
  if (!addon) throw new Error(`unavailable: ${error}`);
  const probe = addon.probe();
  if (!probe.available) throw new Error(`unavailable: ${probe.reason}`);
  return new CudaBackend(addon, probe, opts);
}

registerBackend('cuda', () => createCudaBackend(), 100);
