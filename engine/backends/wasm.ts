// The WebAssembly backend: storages in one linear memory owned by WasmRuntime, a kernel for every op of OP_NAMES
// (float32; int32 for every int32 variant of the conformance suite: arithmetic, comparisons, where, neg/abs/sign/relu,
// affine, sum, max/argmax, movement, fill), large kernels split across worker threads (reductions included).
// Does not: decide shapes (op-table.ts does; dispatch.ts allocates outputs), keep views of tensors, or read data back except in
// read(). float64 is not stored here (the reference backend does float64 gradient checks).
// Invariants:
// - A kernel only computes descriptors (coalesced shapes and element strides) on the host and calls one export of
//   engine/assembly (same name as the op, `grep layer_norm` finds both); outputs are written, never allocated.
// - Any split across threads (rows, columns, batches, element ranges) yields bit-identical results, because each
//   output element is computed by exactly one thread in a fixed order.
// - Indices are validated here (the kernels trust them) and a bad one raises an Error naming the op.
// - Byte addresses are unsigned (up to 4 GiB): typed views are indexed with `addr >>> 2`, never `addr >> 2` (signed:
//   negative above 2 GiB, where typed arrays silently drop writes and slice() reads from the end: issue 9's
//   out-of-bounds matmul). Element offsets and sizes inside one tensor stay below 2^30 and fit the kernels' i32.

import { registerBackend } from '../registry.ts';
import type { Backend, DType, Kernel, KernelTable, Storage, TensorRef, TypedArray } from '../backend.ts';
import { familyCodes, familyKernels, takesInt, type FamilyOp } from '../op-contract.ts';
import { WasmRuntime, splitRange, type RuntimeOptions } from './wasm-runtime.ts';
import { broadcastStridesChecked, coalesce, stridesOf } from '../shape.ts';
import { loadCpuAddon, nativeCpuGemmStatus, type CpuAddon } from './native-cpu.ts';
export { nativeCpuGemmStatus };
export { loadCpuAddonReason } from './native-cpu.ts';

export interface WasmStorage extends Storage {
  /** byte address in the linear memory */
  readonly ptr: number;
  readonly bytes: number;
  freed: boolean;
}

export interface WasmBackendOptions extends RuntimeOptions {
  /** backend name (default "wasm"); other names are for side-by-side instances in tests and benchmarks */
  name?: string;
  /** run matmul through the native CPU addon (native/cpu/) on this heap; default: when it loads and
   *  APTUNE_NATIVE_CPU is not 0. true throws if the addon is unavailable. */
  nativeGemm?: boolean;
}

const BINARY = familyCodes('binary'), UNARY = familyCodes('unary'), UNARY_BACKWARD = familyCodes('unary_backward');

/** Multiply-adds below which a matmul stays in WebAssembly even when the native GEMM is on (call overhead). */
const NATIVE_MIN_MACS = 1 << 15;
/** Elements below which dropout and bias + GELU stay in WebAssembly even when the native vector path is on. */
const NATIVE_MIN_ELEMENTS = 4096;
/** Elements per thread below which a kernel stays on the calling thread. */
const PAR_MIN = 1 << 15;
/** Elements per partial sum of a full reduction of at least 2 chunks (fixed, so results do not depend on the
 *  thread count): chunk sums in parallel, then the chunks and the tail added in order on the host. */
const SUM_CHUNK = 8192;
/** Rows per partial sum in layer_norm_backward (fixed, so results do not depend on the thread count). */
const LN_CHUNK = 64;
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

const contiguousStrides = stridesOf;
const broadcastStrides = (shape: readonly number[], out: readonly number[], op: string): number[] => broadcastStridesChecked(shape, out, `wasm ${op}`);

export class WasmBackend implements Backend {
  readonly name: string;
  readonly dtypes: readonly DType[] = ['float32', 'int32'];
  readonly rt: WasmRuntime;
  readonly kernels: KernelTable;
  private descPtr: number;
  private descCap = 1024; // i32 slots
  private tmps: { ptr: number; bytes: number }[] = [];
  private counterPtr: number;
  private scratch: { ptr: number; bytes: number }[] = [];
  private live = 0;
  /** the native CPU GEMM on this heap, or null (WebAssembly GEMM) */
  readonly native: CpuAddon | null;
  /** dropout and bias + GELU through the native addon too: it has their vector path (AVX-512 or AVX2) on this CPU */
  readonly nativeElementwise: boolean;

  constructor(opts: WasmBackendOptions = {}) {
    this.name = opts.name ?? 'wasm';
    this.rt = new WasmRuntime(opts);
    const st = nativeCpuGemmStatus();
    if (opts.nativeGemm === true && !loadCpuAddon().addon) throw new Error(`wasm backend: nativeGemm requested but ${loadCpuAddon().reason}`);
    this.native = (opts.nativeGemm ?? st.available) ? loadCpuAddon().addon : null;
    this.nativeElementwise = typeof this.native?.biasGelu === 'function' && this.native.isa() !== 'generic';
    this.descPtr = this.rt.malloc(this.descCap * 4);
    this.counterPtr = this.rt.malloc(64);
    this.kernels = this.makeKernels();
  }

  get threads(): number { return this.rt.threads; }
  get relaxed(): boolean { return this.rt.relaxed; }

  // ---- storage ----

  alloc(n: number, dtype: DType): WasmStorage {
    if (dtype !== 'float32' && dtype !== 'int32') throw new Error(`wasm backend: dtype ${dtype} is not supported (float32, int32)`);
    if (!Number.isInteger(n) || n < 0) throw new Error(`wasm backend: alloc of ${n} elements`);
    const bytes = n * 4;
    const ptr = bytes > 0 ? this.rt.malloc(bytes) : 0;
    this.live += bytes;
    return { backend: this.name, numel: n, dtype, ptr, bytes, freed: false };
  }

  free(s: Storage): void {
    const w = this.own(s, 'free');
    if (w.freed) throw new Error('wasm backend: storage freed twice');
    w.freed = true;
    this.live -= w.bytes;
    if (w.bytes > 0) this.rt.freeBlock(w.ptr, w.bytes);
  }

  write(s: Storage, data: TypedArray, offset = 0): void {
    const w = this.own(s, 'write');
    if (offset + data.length > w.numel) throw new Error(`wasm backend: write of ${data.length} at ${offset} overflows storage of ${w.numel}`);
    const base = (w.ptr >>> 2) + offset;
    if (w.dtype === 'int32') this.rt.i32.set(data instanceof Int32Array ? data : Int32Array.from(data), base);
    else this.rt.f32.set(data, base);
  }

  read(s: Storage, offset = 0, n?: number): TypedArray {
    const w = this.own(s, 'read');
    const count = n ?? w.numel - offset;
    if (offset + count > w.numel) throw new Error(`wasm backend: read of ${count} at ${offset} overflows storage of ${w.numel}`);
    const base = (w.ptr >>> 2) + offset;
    return w.dtype === 'int32' ? this.rt.i32.slice(base, base + count) : this.rt.f32.slice(base, base + count);
  }

  allocatedBytes(): number { return this.live; }

  private own(s: Storage, what: string): WasmStorage {
    if (s.backend !== this.name) throw new Error(`wasm backend: ${what} of a storage from backend "${s.backend}"`);
    const w = s as WasmStorage;
    if (w.freed) throw new Error(`wasm backend: ${what} of a freed storage`);
    return w;
  }

  // ---- helpers ----

  private p(t: TensorRef): number {
    const s = t.storage as WasmStorage;
    if (s.backend !== this.name) throw new Error(`wasm backend: tensor on backend "${s.backend}" passed to a wasm kernel`);
    if (s.freed) throw new Error('wasm backend: kernel input uses a freed storage');
    return s.ptr + t.offset * 4;
  }

  /** Write i32 arrays into the descriptor area; returns its address. */
  private desc(...arrays: number[][]): number {
    const n = arrays.reduce((a, b) => a + b.length, 0);
    if (n > this.descCap) {
      this.rt.freeBlock(this.descPtr, this.descCap * 4);
      this.descCap = n * 2;
      this.descPtr = this.rt.malloc(this.descCap * 4);
    }
    let k = this.descPtr >>> 2;
    const i32 = this.rt.i32;
    for (const a of arrays) for (const v of a) i32[k++] = v;
    return this.descPtr;
  }

  /** Temporary area number `slot` of at least `bytes` (valid until the next kernel call). */
  private tmp(bytes: number, slot = 0): number {
    const t = this.tmps[slot];
    if (t && t.bytes >= bytes) return t.ptr;
    if (t) this.rt.freeBlock(t.ptr, t.bytes);
    const nb = Math.max(bytes, 4096);
    this.tmps[slot] = { ptr: this.rt.malloc(nb), bytes: nb };
    return this.tmps[slot].ptr;
  }

  /** Per-thread scratch of at least `bytes` for thread t. */
  private threadScratch(t: number, bytes: number): number {
    const s = this.scratch[t];
    if (s && s.bytes >= bytes) return s.ptr;
    if (s) this.rt.freeBlock(s.ptr, s.bytes);
    const nb = Math.max(bytes, s ? s.bytes * 2 : 0);
    this.scratch[t] = { ptr: this.rt.malloc(nb), bytes: nb };
    return this.scratch[t].ptr;
  }

  /** Parts for a range [0, n) of rows each costing `rowCost` elements of work. */
  private parts(n: number, rowCost: number, align = 1): [number, number][] {
    const want = Math.min(this.rt.threads, Math.floor((n * rowCost) / PAR_MIN));
    return splitRange(n, Math.max(1, want), align);
  }

  private checkIndices(op: string, idx: TensorRef, limit: number): void {
    if (idx.dtype !== 'int32') throw new Error(`wasm ${op}: indices must be int32, got ${idx.dtype}`);
    const n = numel(idx.shape), base = this.p(idx) >>> 2, a = this.rt.i32;
    for (let i = 0; i < n; i++) {
      const v = a[base + i];
      if (v < 0 || v >= limit) throw new Error(`wasm ${op}: index ${v} at position ${i} out of range [0, ${limit})`);
    }
  }

  private f32only(op: string, ...ts: TensorRef[]): void {
    for (const t of ts) if (t.dtype !== 'float32') throw new Error(`wasm backend: op ${op} has no kernel for dtype ${t.dtype}`);
  }

  /** Strided 4-byte copy of a box `shape` from src (strides ss, element address sp) to dst (strides ds). */
  private copy(shape: readonly number[], sp: number, ss: number[], dp: number, ds: number[]): void {
    if (numel(shape) === 0) return;
    const c = coalesce(shape, [ss, ds]);
    const rank = c.shape.length;
    const d = this.desc(c.shape, c.strides[0], c.strides[1]);
    const rows = numel(c.shape.slice(0, -1));
    const parts = this.parts(rows, c.shape[rank - 1]);
    this.rt.dispatch('copy_strided', parts.map(([a, b]) => [sp, dp, rank, d, a, b]));
  }

  private elementwise(fn: string, n: number, args: (i0: number, i1: number) => number[]): void {
    if (n === 0) return;
    this.rt.dispatch(fn, this.parts(n, 1, 16).map(([a, b]) => args(a, b)));
  }

  // ---- kernels ----

  private makeKernels(): KernelTable {
    const rt = this.rt;
    const binary = (op: FamilyOp<'binary'>): Kernel => (inputs, outputs) => {
      const [a, b] = inputs, out = outputs[0];
      const n = numel(out.shape);
      if (n === 0) return;
      if (a.dtype !== b.dtype) throw new Error(`wasm ${op}: dtypes ${a.dtype} and ${b.dtype} differ`);
      const fn = a.dtype === 'float32' ? 'binary_f32' : a.dtype === 'int32' && takesInt(op) ? 'binary_i32' : '';
      if (!fn) throw new Error(`wasm backend: op ${op} has no kernel for dtype ${a.dtype}`);
      if (fn === 'binary_i32' && op === 'div') {
        const bi = this.p(b) >>> 2, nb = numel(b.shape);
        for (let i = 0; i < nb; i++) if (rt.i32[bi + i] === 0) throw new Error('div: int32 division by zero');
      }
      const c = coalesce(out.shape, [broadcastStrides(a.shape, out.shape, op), broadcastStrides(b.shape, out.shape, op)]);
      const rank = c.shape.length;
      const d = this.desc(c.shape, c.strides[0], c.strides[1]);
      const rows = numel(c.shape.slice(0, -1));
      const pa = this.p(a), pb = this.p(b), po = this.p(out);
      rt.dispatch(fn, this.parts(rows, c.shape[rank - 1]).map(([r0, r1]) => [BINARY[op], pa, pb, po, rank, d, r0, r1]));
    };
    const unary = (op: FamilyOp<'unary'>): Kernel => (inputs, outputs) => {
      const x = inputs[0], out = outputs[0];
      const n = numel(out.shape);
      let fn = 'unary_f32';
      if (x.dtype === 'int32' && takesInt(op)) fn = 'unary_i32';
      else this.f32only(op, x);
      const px = this.p(x), po = this.p(out);
      this.elementwise(fn, n, (a, b) => [UNARY[op], px, po, a, b]);
    };

    const unary2 = (op: FamilyOp<'unary_backward'>): Kernel => (inputs, outputs) => {
      const [x, g] = inputs, out = outputs[0];
      this.f32only(op, x, g);
      if (numel(x.shape) !== numel(g.shape)) throw new Error(`wasm ${op}: x [${x.shape}] and grad [${g.shape}] differ`);
      const px = this.p(x), pg = this.p(g), po = this.p(out);
      this.elementwise('unary2_f32', numel(out.shape), (a, b) => [UNARY_BACKWARD[op], px, pg, po, a, b]);
    };

    const maxLike = (inputs: TensorRef[], vals: TensorRef | null, idx: TensorRef | null, axis: number, op: string) => {
      const x = inputs[0];
      if (x.dtype !== 'int32') this.f32only(op, x);
      const R = x.shape[axis];
      const outer = numel(x.shape.slice(0, axis)), inner = numel(x.shape.slice(axis + 1));
      if (outer * inner === 0) return;
      if (R === 0) throw new Error(`wasm ${op}: reduction over an empty axis ${axis} of [${x.shape}]`);
      const args = [this.p(x), vals ? this.p(vals) : 0, idx ? this.p(idx) : 0, vals ? 1 : 0, idx ? 1 : 0, R, inner];
      rt.dispatch(x.dtype === 'int32' ? 'max_i32' : 'max_f32', this.parts(outer * inner, R).map(([p0, p1]) => [...args, p0, p1]));
    };

    const softmaxLike = (log: number, op: string) => (inputs: TensorRef[], outputs: TensorRef[], attrs: { scale?: number }): void => {
      const x = inputs[0], mask = inputs[1], out = outputs[0];
      this.f32only(op, x, ...(mask ? [mask] : []));
      const D = x.shape[x.shape.length - 1] ?? 1;
      const rows = numel(x.shape.slice(0, -1));
      if (rows * D === 0) return;
      let d = 0, rank = 1, pm = 0;
      if (mask) {
        const ms = broadcastStrides(mask.shape, x.shape, op);
        const lead = x.shape.slice(0, -1);
        rank = lead.length + 1;
        d = this.desc([...lead, D], ms);
        pm = this.p(mask);
      }
      const px = this.p(x), po = this.p(out);
      const sc = attrs.scale ?? 1;
      rt.dispatch('softmax_f32', this.parts(rows, D * 8).map(([a, b]) => [px, pm, po, mask ? 1 : 0, log, D, rank, d, sc, a, b]));
    };

    const softmaxBw = (log: number, op: string) => (inputs: TensorRef[], outputs: TensorRef[], attrs: { scale?: number }): void => {
      const [y, g] = inputs, dx = outputs[0];
      this.f32only(op, y, g);
      const D = y.shape[y.shape.length - 1] ?? 1;
      const rows = numel(y.shape.slice(0, -1));
      if (rows * D === 0) return;
      const py = this.p(y), pg = this.p(g), pd = this.p(dx);
      const sc = attrs.scale ?? 1;
      rt.dispatch('softmax_backward_f32', this.parts(rows, D * 4).map(([a, b]) => [py, pg, pd, log, D, sc, a, b]));
    };

    const ceCheck = (op: string, logits: TensorRef, labels: TensorRef, ignore: number) => {
      if (logits.shape.length !== 2) throw new Error(`wasm ${op}: logits must be [B, C], got [${logits.shape}]`);
      const [B, C] = logits.shape;
      if (labels.dtype !== 'int32' || numel(labels.shape) !== B) throw new Error(`wasm ${op}: labels must be int32 [${B}], got ${labels.dtype} [${labels.shape}]`);
      const base = this.p(labels) >>> 2, a = rt.i32;
      for (let i = 0; i < B; i++) {
        const v = a[base + i];
        if (v !== ignore && (v < 0 || v >= C)) throw new Error(`wasm ${op}: label ${v} at row ${i} out of range [0, ${C})`);
      }
      return [B, C];
    };

    const planes = (t: TensorRef, op: string) => {
      if (t.shape.length < 2) throw new Error(`wasm ${op}: input must be [..., H, W], got [${t.shape}]`);
      const r = t.shape.length;
      return { P: numel(t.shape.slice(0, r - 2)), H: t.shape[r - 2], W: t.shape[r - 1] };
    };

    // x [rows, D] (+ bias [D]) split by rows; the backward also reads g
    const biasGelu = (op: 'bias_gelu' | 'bias_gelu_backward', inputs: TensorRef[], out: TensorRef): void => {
      const [x, b] = inputs;
      this.f32only(op, ...inputs);
      const D = x.shape[x.shape.length - 1], rows = numel(x.shape.slice(0, -1));
      if (rows * D === 0) return;
      if (numel(b.shape) !== D) throw new Error(`wasm ${op}: bias [${b.shape}] does not match last dim ${D}`);
      const [px, pb, pg, po] = [this.p(x), this.p(b), inputs[2] ? this.p(inputs[2]) : 0, this.p(out)]; // g = 0: forward
      // the native AVX-512 / AVX2 kernel: the same formulas on 16 / 8 lanes (agrees to float rounding)
      if (this.nativeElementwise && rows * D >= NATIVE_MIN_ELEMENTS && this.native!.biasGelu(this.rt.f32, px, pb, pg, po, rows, D, this.rt.threads)) return;
      const args = [px, pb, pg, po, D];
      rt.dispatch('bias_gelu_f32', this.parts(rows, D * 16).map(([r0, r1]) => [...args, r0, r1]));
    };

    const table = {
      ...familyKernels('binary', binary),
      ...familyKernels('unary', unary),
      where: (inputs, outputs) => {
        const [cnd, a, b] = inputs, out = outputs[0];
        if (numel(out.shape) === 0) return;
        const c = coalesce(out.shape, [cnd, a, b].map((t) => broadcastStrides(t.shape, out.shape, 'where')));
        const rank = c.shape.length;
        const d = this.desc(c.shape, ...c.strides);
        const rows = numel(c.shape.slice(0, -1));
        const args = [this.p(cnd), this.p(a), this.p(b), this.p(out), cnd.dtype === 'int32' ? 0 : 1, rank, d];
        rt.dispatch('where_32', this.parts(rows, c.shape[rank - 1]).map(([r0, r1]) => [...args, r0, r1]));
      },
      gelu_backward: unary2('gelu_backward'),
      quick_gelu_backward: unary2('quick_gelu_backward'),
      affine: (inputs, outputs, attrs) => {
        const x = inputs[0], out = outputs[0];
        if (x.dtype !== 'int32') this.f32only('affine', x);
        const px = this.p(x), po = this.p(out);
        this.elementwise(x.dtype === 'int32' ? 'affine_i32' : 'affine_f32', numel(out.shape), (a, b) => [px, po, attrs.scale, attrs.shift, a, b]);
      },
      pow_scalar: (inputs, outputs, attrs) => {
        const x = inputs[0], out = outputs[0];
        this.f32only('pow_scalar', x);
        const px = this.p(x), po = this.p(out);
        this.elementwise('pow_scalar_f32', numel(out.shape), (a, b) => [px, po, attrs.exponent, a, b]);
      },
      sum: (inputs, outputs, attrs) => {
        const x = inputs[0], out = outputs[0];
        if (x.dtype !== 'int32') this.f32only('sum', x);
        const on = numel(out.shape);
        if (on === 0) return;
        rt.exports.fill_32(this.p(out), 0, 0, on);
        if (numel(x.shape) === 0) return;
        const red = new Set(attrs.axes);
        const kept = x.shape.map((s, i) => (red.has(i) ? 1 : s));
        const ks = contiguousStrides(kept);
        const os = x.shape.map((_, i) => (red.has(i) ? 0 : ks[i]));
        const c = coalesce(x.shape, [contiguousStrides(x.shape), os]);
        const rank = c.shape.length, n = c.shape[rank - 1], rows = numel(c.shape.slice(0, -1));
        const args = [this.p(x), this.p(out), rank, this.desc(c.shape, c.strides[1])];
        // threads own disjoint outputs and add rows in the same order: columns of a kept last dim, or (last dim
        // reduced) blocks of a kept first dim; a single full reduction stays on one thread
        const fn = x.dtype === 'int32' ? 'sum_i32' : 'sum_f32';
        if (rank === 1 && c.strides[1][0] === 0 && n >= 2 * SUM_CHUNK) { this.fullSum(fn, this.p(x), this.p(out), n, x.dtype); return; }
        let parts: number[][];
        if (c.strides[1][rank - 1] !== 0) parts = this.parts(n, rows, 4).map(([c0, c1]) => [...args, 0, rows, c0, c1]);
        else if (rank > 1 && c.strides[1][0] !== 0) {
          const block = rows / c.shape[0];
          parts = this.parts(c.shape[0], block * n).map(([a, b]) => [...args, a * block, b * block, 0, n]);
        } else parts = [[...args, 0, rows, 0, n]];
        rt.dispatch(fn, parts);
      },
      max: (inputs, outputs, attrs) => maxLike(inputs, outputs[0], outputs[1] ?? null, attrs.axis, 'max'),
      argmax: (inputs, outputs, attrs) => maxLike(inputs, null, outputs[0], attrs.axis, 'argmax'),
      matmul: (inputs, outputs, attrs) => this.matmul(inputs[0], inputs[1], outputs[0], attrs.transA, attrs.transB),
      softmax: softmaxLike(0, 'softmax'),
      log_softmax: softmaxLike(1, 'log_softmax'),
      softmax_backward: softmaxBw(0, 'softmax_backward'),
      log_softmax_backward: softmaxBw(1, 'log_softmax_backward'),
      layer_norm: (inputs, outputs, attrs) => {
        const [x, w, b] = inputs, [y, mean, rstd] = outputs;
        this.f32only('layer_norm', x, w, b);
        const D = x.shape[x.shape.length - 1];
        const rows = numel(x.shape.slice(0, -1));
        if (rows * D === 0) return;
        if (numel(w.shape) !== D || numel(b.shape) !== D) throw new Error(`wasm layer_norm: weight [${w.shape}] / bias [${b.shape}] do not match last dim ${D}`);
        const args = [this.p(x), this.p(w), this.p(b), this.p(y), this.p(mean), this.p(rstd), D, attrs.eps];
        rt.dispatch('layer_norm_f32', this.parts(rows, D * 4).map(([r0, r1]) => [...args, r0, r1]));
      },
      layer_norm_backward: (inputs, outputs) => {
        const [g, x, w, mean, rstd] = inputs, [dx, dw, db] = outputs;
        this.f32only('layer_norm_backward', g, x, w, mean, rstd);
        const D = x.shape[x.shape.length - 1];
        const rows = numel(x.shape.slice(0, -1));
        if (D === 0) return;
        const base = [this.p(g), this.p(x), this.p(w), this.p(mean), this.p(rstd), this.p(dx)];
        // dw / db are summed per chunk of LN_CHUNK rows, then over chunks in order: the same bits on any thread count
        const nChunks = Math.ceil(rows / LN_CHUNK);
        if (nChunks <= 1) {
          rt.exports.layer_norm_backward_f32(...base, this.p(dw), this.p(db), D, 0, rows, 1);
          return;
        }
        const tp = this.tmp(nChunks * 2 * D * 4);
        rt.dispatch('layer_norm_backward_chunks_f32', this.parts(nChunks, LN_CHUNK * D * 6).map(([c0, c1]) => [...base, tp, D, rows, LN_CHUNK, c0, c1]));
        const f = rt.f32, dwI = this.p(dw) >>> 2, dbI = this.p(db) >>> 2, t0 = tp >>> 2;
        for (let j = 0; j < D; j++) {
          let sw = 0, sb = 0;
          for (let c = 0; c < nChunks; c++) { sw = Math.fround(sw + f[t0 + c * 2 * D + j]); sb = Math.fround(sb + f[t0 + (c * 2 + 1) * D + j]); }
          f[dwI + j] = sw; f[dbI + j] = sb;
        }
      },
      bias_gelu: (inputs, outputs) => biasGelu('bias_gelu', inputs, outputs[0]),
      bias_gelu_backward: (inputs, outputs) => biasGelu('bias_gelu_backward', inputs, outputs[0]),
      dropout: (inputs, outputs, attrs) => {
        const x = inputs[0], [y, mask] = outputs;
        this.f32only('dropout', x);
        if (!(attrs.p >= 0 && attrs.p < 1)) throw new Error(`wasm dropout: p must be in [0, 1), got ${attrs.p}`);
        const px = this.p(x), py = this.p(y), pm = this.p(mask), n = numel(x.shape);
        // the same bits either way; the native AVX-512 / AVX2 Philox runs about 5x the WebAssembly SIMD one
        if (this.nativeElementwise && n >= NATIVE_MIN_ELEMENTS) this.native!.dropout(this.rt.f32, px, py, pm, n, attrs.p, attrs.seed, attrs.offset, this.rt.threads);
        else this.elementwise('random_f32', n, (a, b) => [pm, 2, attrs.seed, attrs.offset, attrs.p, 0, px, py, a, b]);
      },
      random_uniform: (_i, outputs, attrs) => {
        const out = outputs[0];
        this.f32only('random_uniform', out);
        const po = this.p(out);
        this.elementwise('random_f32', numel(out.shape), (a, b) => [po, 0, attrs.seed, attrs.offset, attrs.low, attrs.high, 0, 0, a, b]);
      },
      random_normal: (_i, outputs, attrs) => {
        const out = outputs[0];
        this.f32only('random_normal', out);
        const po = this.p(out);
        this.elementwise('random_f32', numel(out.shape), (a, b) => [po, 1, attrs.seed, attrs.offset, attrs.mean, attrs.std, 0, 0, a, b]);
      },
      cross_entropy: (inputs, outputs, attrs) => {
        const [x, lab] = inputs;
        this.f32only('cross_entropy', x);
        const [B, C] = ceCheck('cross_entropy', x, lab, attrs.ignoreIndex);
        if (B === 0) return;
        const args = [this.p(x), this.p(lab), this.p(outputs[0]), C, attrs.ignoreIndex];
        rt.dispatch('cross_entropy_f32', this.parts(B, C * 4).map(([r0, r1]) => [...args, r0, r1]));
      },
      cross_entropy_backward: (inputs, outputs, attrs) => {
        const [x, lab, g] = inputs;
        this.f32only('cross_entropy_backward', x, g);
        const [B, C] = ceCheck('cross_entropy_backward', x, lab, attrs.ignoreIndex);
        if (B === 0) return;
        const args = [this.p(x), this.p(lab), this.p(g), this.p(outputs[0]), C, attrs.ignoreIndex];
        rt.dispatch('cross_entropy_backward_f32', this.parts(B, C * 8).map(([r0, r1]) => [...args, r0, r1]));
      },
      bce_with_logits: (inputs, outputs) => {
        const [x, t] = inputs;
        this.f32only('bce_with_logits', x, t);
        if (numel(x.shape) !== numel(t.shape)) throw new Error(`wasm bce_with_logits: input [${x.shape}] and target [${t.shape}] differ`);
        const px = this.p(x), pt = this.p(t), po = this.p(outputs[0]);
        this.elementwise('bce_with_logits_f32', numel(x.shape), (i0, i1) => [px, pt, po, i0, i1]);
      },
      bce_with_logits_backward: (inputs, outputs) => {
        const [x, t, g] = inputs;
        this.f32only('bce_with_logits_backward', x, t, g);
        if (numel(x.shape) !== numel(t.shape) || numel(x.shape) !== numel(g.shape)) {
          throw new Error(`wasm bce_with_logits_backward: input [${x.shape}], target [${t.shape}], grad [${g.shape}] differ`);
        }
        const px = this.p(x), pt = this.p(t), pg = this.p(g), po = this.p(outputs[0]);
        this.elementwise('bce_with_logits_backward_f32', numel(x.shape), (i0, i1) => [px, pt, pg, po, i0, i1]);
      },
      index_select: (inputs, outputs, attrs) => {
        const [x, idx] = inputs, out = outputs[0];
        const ax = attrs.axis, A = x.shape[ax];
        this.checkIndices('index_select', idx, A);
        const outer = numel(x.shape.slice(0, ax)), inner = numel(x.shape.slice(ax + 1)), K = numel(idx.shape);
        if (outer * inner * K === 0) return;
        rt.exports.index_select_32(this.p(x), this.p(idx), this.p(out), outer, A, K, inner);
      },
      index_add: (inputs, outputs, attrs) => {
        const [g, idx] = inputs, out = outputs[0];
        this.f32only('index_add', g);
        const ax = attrs.axis;
        this.checkIndices('index_add', idx, attrs.size);
        const outer = numel(g.shape.slice(0, ax)), inner = numel(g.shape.slice(ax + 1)), K = numel(idx.shape);
        if (numel(out.shape) === 0) return;
        rt.exports.index_add_f32(this.p(g), this.p(idx), this.p(out), outer, attrs.size, K, inner);
      },
      gather: (inputs, outputs, attrs) => {
        const [x, idx] = inputs, out = outputs[0];
        this.checkIndices('gather', idx, x.shape[attrs.axis]);
        const n = numel(idx.shape);
        if (n === 0) return;
        const d = this.desc([...idx.shape], contiguousStrides(x.shape));
        rt.exports.gather_32(this.p(x), this.p(idx), this.p(out), 0, idx.shape.length, attrs.axis, d, n);
      },
      scatter_add: (inputs, outputs, attrs) => {
        const [g, idx] = inputs, out = outputs[0];
        this.f32only('scatter_add', g);
        this.checkIndices('scatter_add', idx, attrs.shape[attrs.axis]);
        const on = numel(out.shape);
        if (on === 0) return;
        rt.exports.fill_32(this.p(out), 0, 0, on);
        const n = numel(idx.shape);
        if (n === 0) return;
        const d = this.desc([...idx.shape], contiguousStrides(out.shape));
        rt.exports.gather_32(this.p(out), this.p(idx), this.p(g), 1, idx.shape.length, attrs.axis, d, n);
      },
      permute: (inputs, outputs, attrs) => {
        const x = inputs[0], out = outputs[0];
        const xs = contiguousStrides(x.shape);
        this.copy(out.shape, this.p(x), attrs.perm.map((a) => xs[a]), this.p(out), contiguousStrides(out.shape));
      },
      slice: (inputs, outputs, attrs) => {
        const x = inputs[0], out = outputs[0];
        const xs = contiguousStrides(x.shape);
        const off = attrs.starts.reduce((acc, s, i) => acc + s * xs[i], 0);
        this.copy(out.shape, this.p(x) + off * 4, xs, this.p(out), contiguousStrides(out.shape));
      },
      expand: (inputs, outputs) => {
        const x = inputs[0], out = outputs[0];
        this.copy(out.shape, this.p(x), broadcastStrides(x.shape, out.shape, 'expand'), this.p(out), contiguousStrides(out.shape));
      },
      pad: (inputs, outputs, attrs) => {
        const x = inputs[0], out = outputs[0];
        const on = numel(out.shape);
        if (on === 0) return;
        const bits = x.dtype === 'int32' ? attrs.value | 0 : new Uint32Array(new Float32Array([attrs.value]).buffer)[0];
        const po = this.p(out);
        this.elementwise('fill_32', on, (a, b) => [po, bits, a, b]);
        // the part of x inside out (negative pads crop)
        const xs = contiguousStrides(x.shape), os = contiguousStrides(out.shape);
        let sOff = 0, dOff = 0;
        const box = x.shape.map((s, i) => {
          const [before, after] = attrs.pads[i] ?? [0, 0];
          const lo = Math.max(0, -before), hi = s + Math.min(0, after);
          sOff += lo * xs[i];
          dOff += Math.max(0, before) * os[i];
          return Math.max(0, hi - lo);
        });
        if (numel(box) > 0) this.copy(box, this.p(x) + sOff * 4, xs, po + dOff * 4, os);
      },
      concat: (inputs, outputs, attrs) => {
        const out = outputs[0], ax = attrs.axis;
        const os = contiguousStrides(out.shape);
        let at = 0;
        for (const x of inputs) {
          this.copy(x.shape, this.p(x), contiguousStrides(x.shape), this.p(out) + at * os[ax] * 4, os);
          at += x.shape[ax];
        }
      },
      cast: (inputs, outputs) => {
        const x = inputs[0], out = outputs[0];
        const n = numel(x.shape);
        if (n === 0) return;
        if (x.dtype === out.dtype) { this.copy([n], this.p(x), [1], this.p(out), [1]); return; }
        if (x.dtype === 'float32' && out.dtype === 'int32') rt.exports.cast_32(this.p(x), this.p(out), 0, n);
        else if (x.dtype === 'int32' && out.dtype === 'float32') rt.exports.cast_32(this.p(x), this.p(out), 1, n);
        else throw new Error(`wasm cast: ${x.dtype} -> ${out.dtype} not supported`);
      },
      resize_bilinear: (inputs, outputs, attrs) => {
        const x = inputs[0], out = outputs[0];
        this.f32only('resize_bilinear', x);
        const { P, H, W } = planes(x, 'resize_bilinear');
        if (P * attrs.outH * attrs.outW === 0) return;
        rt.exports.resize_bilinear_f32(this.p(x), this.p(out), 0, P, H, W, attrs.outH, attrs.outW, attrs.alignCorners ? 1 : 0);
      },
      resize_bilinear_backward: (inputs, outputs, attrs) => {
        const g = inputs[0], dx = outputs[0];
        this.f32only('resize_bilinear_backward', g);
        const { P, H, W } = planes(g, 'resize_bilinear_backward');
        const n = numel(dx.shape);
        if (n === 0) return;
        rt.exports.fill_32(this.p(dx), 0, 0, n);
        rt.exports.resize_bilinear_f32(this.p(dx), this.p(g), 1, P, attrs.inH, attrs.inW, H, W, attrs.alignCorners ? 1 : 0);
      },

      fill: (_i, outputs, attrs) => {
        const out = outputs[0];
        const bits = out.dtype === 'int32' ? attrs.value | 0 : new Uint32Array(new Float32Array([attrs.value]).buffer)[0];
        const po = this.p(out);
        this.elementwise('fill_32', numel(out.shape), (a, b) => [po, bits, a, b]);
      },
      adamw_step: (inputs, _o, a) => {
        const [p, g, m, v] = inputs;
        this.f32only('adamw_step', p, g, m, v);
        const n = numel(p.shape);
        if ([g, m, v].some((t) => numel(t.shape) !== n)) throw new Error(`wasm adamw_step: param, grad, m, v sizes differ`);
        const stepSize = a.lr * Math.sqrt(1 - a.beta2 ** a.step) / (1 - a.beta1 ** a.step);
        const pp = this.p(p), pg = this.p(g), pm = this.p(m), pv = this.p(v);
        this.elementwise('adamw_step_f32', n, (i0, i1) => [pp, pg, pm, pv, a.beta1, a.beta2, a.eps, stepSize, a.lr * a.weightDecay, i0, i1]);
      },
      sgd_step: (inputs, _o, a) => {
        const [p, g, buf] = inputs;
        this.f32only('sgd_step', p, g);
        const n = numel(p.shape);
        if (numel(g.shape) !== n || (buf && numel(buf.shape) !== n)) throw new Error(`wasm sgd_step: param, grad, buffer sizes differ`);
        const pp = this.p(p), pg = this.p(g), pb = buf ? this.p(buf) : 0;
        const useBuf = buf && a.momentum !== 0 ? 1 : 0; // like torch: no buffer update without momentum
        this.elementwise('sgd_step_f32', n, (i0, i1) => [pp, pg, pb, useBuf, a.lr, a.momentum, a.weightDecay, i0, i1]);
      },
    } satisfies KernelTable;
    return table;
  }

  /** out[0] = sum of n contiguous elements at px (n >= 2 SUM_CHUNK): [chunks, SUM_CHUNK] row sums split across
   *  threads into a temporary, the tail summed into out, then chunk sums and tail added in order here. */
  private fullSum(fn: string, px: number, po: number, n: number, dtype: DType): void {
    const rt = this.rt;
    const nc = Math.floor(n / SUM_CHUNK), rem = n - nc * SUM_CHUNK;
    const tp = this.tmp(nc * 4);
    rt.exports.fill_32(tp, 0, 0, nc);
    const d = this.desc([nc, SUM_CHUNK], [1, 0]);
    rt.dispatch(fn, this.parts(nc, SUM_CHUNK).map(([a, b]) => [px, tp, 2, d, a, b, 0, SUM_CHUNK]));
    if (rem > 0) rt.exports[fn](px + nc * SUM_CHUNK * 4, po, 1, this.desc([rem], [0]), 0, 1, 0, rem); // out was zeroed
    const view = dtype === 'int32' ? rt.i32 : rt.f32, t0 = tp >>> 2;
    const add = dtype === 'int32' ? (a: number, b: number) => (a + b) | 0 : (a: number, b: number) => Math.fround(a + b);
    let acc = 0;
    for (let c = 0; c < nc; c++) acc = add(acc, view[t0 + c]);
    view[po >>> 2] = add(acc, view[po >>> 2]);
  }

  /** a [..., M, K] (or [..., K, M] if transA) @ b [..., K, N] (or [..., N, K]) -> c [..., M, N], batch dims broadcast. */
  private matmul(a: TensorRef, b: TensorRef, c: TensorRef, transA: boolean, transB: boolean): void {
    this.f32only('matmul', a, b);
    if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`wasm matmul: operands must have >= 2 dims, got [${a.shape}] and [${b.shape}]`);
    const ra = a.shape.length, rb = b.shape.length, rc = c.shape.length;
    const M = transA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transB ? b.shape[rb - 1] : b.shape[rb - 2];
    const N = transB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (K !== Kb) throw new Error(`wasm matmul: inner dims differ: [${a.shape}]${transA ? 'ᵀ' : ''} @ [${b.shape}]${transB ? 'ᵀ' : ''}`);
    if (c.shape[rc - 2] !== M || c.shape[rc - 1] !== N) throw new Error(`wasm matmul: output [${c.shape}] is not [..., ${M}, ${N}]`);
    const batchShape = c.shape.slice(0, -2);
    const batch = numel(batchShape);
    if (batch * M * N === 0) return;
    const sa = broadcastStrides(a.shape.slice(0, -2), batchShape, 'matmul');
    const sb = broadcastStrides(b.shape.slice(0, -2), batchShape, 'matmul');
    const offs = this.tmp(batch * 12);
    const i32 = this.rt.i32, o0 = offs >>> 2;
    const bs = contiguousStrides(batchShape);
    for (let t = 0; t < batch; t++) {
      let rem = t, oa = 0, ob = 0;
      for (let d = 0; d < batchShape.length; d++) {
        const q = Math.floor(rem / bs[d]);
        rem -= q * bs[d];
        oa += q * sa[d]; ob += q * sb[d];
      }
      i32[o0 + 3 * t] = oa * M * K;
      i32[o0 + 3 * t + 1] = ob * K * N;
      i32[o0 + 3 * t + 2] = t * M * N;
    }
    const pa = this.p(a), pb = this.p(b), pc = this.p(c);
    const ta = transA ? 1 : 0, tb = transB ? 1 : 0;
    const T = Math.min(this.rt.threads, Math.max(1, Math.floor((batch * M * N * K) / (1 << 17))));
    if (this.native && batch * M * N * K >= NATIVE_MIN_MACS) {
      // in place on this heap; the wasm workers sleep meanwhile, so T native threads use the same cores
      this.native.gemm(this.rt.f32, pa, pb, pc, offs, batch, M, N, K, ta, tb, T);
      return;
    }
    const sbytes = (cols: number) => this.rt.exports.matmul_scratch_bytes(cols);
    let parts: number[][];
    if (T <= 1 || K === 0) {
      parts = [[pa, pb, pc, offs, 0, batch, M, N, K, ta, tb, 0, M, 0, N, this.threadScratch(0, sbytes(N))]];
    } else if (batch >= 2 * T) { // whole matrices per thread
      parts = splitRange(batch, T).map(([b0, b1], t) => [pa, pb, pc, offs, b0, b1, M, N, K, ta, tb, 0, M, 0, N, this.threadScratch(t, sbytes(N))]);
    } else if (Math.ceil(M / this.rt.exports.matmul_mc()) < 2 * T && N >= 64 * T) { // few row blocks: columns per thread
      parts = splitRange(N, T, 8).map(([n0, n1], t) => [pa, pb, pc, offs, 0, batch, M, N, K, ta, tb, 0, M, n0, n1, this.threadScratch(t, sbytes(n1 - n0))]);
    } else { // large products: shared packed B per k-block, row blocks claimed dynamically
      this.matmulShared(pa, pb, pc, offs, batch, M, N, K, ta, tb, T);
      return;
    }
    this.rt.dispatch('matmul_f32', parts);
  }

  /** Per batch and k-block: threads claim chunks of 8-column B panels to pack, then MC-row blocks of C to compute. */
  private matmulShared(pa: number, pb: number, pc: number, offs: number, batch: number, M: number, N: number, K: number,
    ta: number, tb: number, T: number): void {
    const ex = this.rt.exports;
    const KC = ex.matmul_kc(), MC = ex.matmul_mc();
    const np = Math.ceil(N / 8);
    const packedB = this.tmp(KC * np * 8 * 4, 1);
    const scratch = Array.from({ length: T }, (_, t) => this.threadScratch(t, (MC * KC + 64) * 4 + 64));
    const offsCopy = Array.from(this.rt.i32.subarray(offs >>> 2, (offs >>> 2) + 3 * batch));
    const ctr = this.counterPtr; // [0]: row blocks, [1]: B panel chunks
    const chunk = Math.max(2, Math.ceil(np / (4 * T)));
    for (let bi = 0; bi < batch; bi++) {
      const a = pa + offsCopy[3 * bi] * 4, b = pb + offsCopy[3 * bi + 1] * 4, c = pc + offsCopy[3 * bi + 2] * 4;
      for (let p0 = 0; p0 < K; p0 += KC) {
        const kc = Math.min(KC, K - p0);
        Atomics.store(this.rt.i32, (ctr >>> 2) + 1, 0);
        this.rt.dispatch('matmul_pack_b_claim', scratch.map(() => [b, tb, N, K, p0, kc, ctr + 4, chunk, packedB]));
        Atomics.store(this.rt.i32, ctr >>> 2, 0);
        this.rt.dispatch('matmul_blocks', scratch.map((s) => [a, ta, M, N, K, p0, kc, p0 > 0 ? 1 : 0, packedB, c, ctr, s]));
      }
    }
  }
}

/** A new, independent wasm backend (its own memory and workers); the registry holds the default one. */
export function createWasmBackend(opts: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackend(opts);
}

registerBackend('wasm', () => new WasmBackend(), 50);
