// The WebAssembly runtime behind the wasm backend: loads the AssemblyScript kernels (engine/assembly/build/*.wasm),
// owns the linear memory with a host-side allocator, and runs kernels split across a worker_threads pool that
// shares that memory.
// Does not: know about ops or shapes (backends/wasm.ts does), or let kernels allocate.
// Invariants:
// - The host owns every byte above the module's heap_base: blocks are 64-byte aligned, sizes rounded to classes,
//   freed blocks go to an exact-size free list (or lower the bump pointer when on top), memory grows in pages.
// - Typed views (f32, i32, u8) are re-created after every grow; nothing else grows the memory (kernels never do).
// - Build choice: relaxed SIMD when the runtime validates it (after setting V8's flag) unless disabled; the shared-
//   memory (-mt) build whenever SharedArrayBuffer exists, so any thread count runs the same code.
// - dispatch(fn, parts) runs parts[0] on the calling thread and parts[i] on worker i-1, then waits for all of them
//   (Atomics.wait/notify on a control block); a part is the argument list of one kernel call. Workers are unref'd
//   (they never keep the process alive) and started on the first dispatch with more than one part.
// Environment: APTUNE_THREADS (thread count, default the core count), APTUNE_WASM_RELAXED=0 (plain SIMD build),
// APTUNE_WASM_LIFTOFF=1 (keep V8's baseline-first tiering). Node only (fs, worker_threads, Atomics.wait on the
// main thread); the .wasm builds themselves also run in browsers (non-shared builds without cross-origin isolation).

import { readFileSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

// The slice of the WebAssembly JS API used here (tsconfig's lib has no WebAssembly declarations).
interface WasmMemory { readonly buffer: ArrayBuffer | SharedArrayBuffer; grow(pages: number): number }
interface WasmModule { readonly __brand?: 'WasmModule' }
interface WasmApi {
  Module: { new(bytes: Uint8Array): WasmModule; exports(m: WasmModule): { name: string; kind: string }[] };
  Instance: new (m: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  validate(bytes: Uint8Array): boolean;
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const BUILD_DIR = new URL('../assembly/build/', import.meta.url);
const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit (asconfig maximumMemory)

export interface RuntimeOptions {
  /** worker count including the calling thread; default env APTUNE_THREADS, else the core count */
  threads?: number;
  /** use the relaxed-SIMD build when the runtime supports it (default true; env APTUNE_WASM_RELAXED=0 disables) */
  relaxed?: boolean;
  /** shared memory (-mt build; required for threads > 1); default: whenever SharedArrayBuffer exists */
  shared?: boolean;
  /** folder holding the built .wasm files (default engine/assembly/build/ next to this file) */
  buildDir?: string | URL;
}

export type Exports = Record<string, (...args: number[]) => number>;

let relaxedFlagSet = false;
let tierFlagSet = false;

function setV8Flag(flag: string): void {
  try {
    (require('node:v8') as typeof import('node:v8')).setFlagsFromString(flag);
  } catch { /* not Node, or the flag is unknown: harmless */ }
}

function enableRelaxedFlag(): void {
  if (relaxedFlagSet) return;
  setV8Flag('--experimental-wasm-relaxed-simd'); // validate() then decides
  relaxedFlagSet = true;
}

/** Compile wasm with the optimising tier up front (V8 otherwise starts in Liftoff and tiers up on a background
 *  thread, which a loaded machine starves: kernels then run 2-4x slower for seconds). Env APTUNE_WASM_LIFTOFF=1
 *  keeps V8's default. Process-wide: it also applies to wasm modules compiled later. */
function eagerTierUp(): void {
  if (tierFlagSet || process.env.APTUNE_WASM_LIFTOFF === '1') return;
  setV8Flag('--no-liftoff');
  tierFlagSet = true;
}

export function defaultThreads(): number {
  const env = process.env.APTUNE_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`APTUNE_THREADS must be a positive integer, got "${env}"`);
    return n;
  }
  return Math.max(1, availableParallelism());
}

function loadBytes(file: string, dir: URL): Uint8Array {
  const url = new URL(file, dir);
  if (!existsSync(url)) {
    throw new Error(`unavailable: WebAssembly kernels not built (${url.pathname} missing): run npm run build:wasm`);
  }
  return readFileSync(url);
}

// Worker body (CommonJS, eval'd): instantiate the shared module on the shared memory, then serve calls.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctrlBuf, argBuf, index, names, relaxed } = workerData;
if (relaxed) require('node:v8').setFlagsFromString('--experimental-wasm-relaxed-simd');
const ctrl = new Int32Array(ctrlBuf);
const args = new Float64Array(argBuf, index * ${32 * 8}, 32);
const base = index * 16;
let fns;
try {
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  fns = names.map((n) => inst.exports[n]);
  Atomics.store(ctrl, base + 3, 1);
} catch (e) {
  Atomics.store(ctrl, base + 3, -1);
}
Atomics.notify(ctrl, base + 3);
let seq = 0;
while (fns) {
  Atomics.wait(ctrl, base, seq);
  seq = Atomics.load(ctrl, base);
  if (Atomics.load(ctrl, base + 6) === 1) break;
  const f = fns[ctrl[base + 2]];
  const n = ctrl[base + 4];
  const a = new Array(n);
  for (let i = 0; i < n; i++) a[i] = args[i];
  try { f.apply(null, a); } catch (e) { Atomics.store(ctrl, base + 5, 1); }
  Atomics.store(ctrl, base + 1, seq);
  Atomics.notify(ctrl, base + 1);
}
`;

export class WasmRuntime {
  readonly exports: Exports;
  readonly memory: WasmMemory;
  readonly relaxed: boolean;
  readonly shared: boolean;
  readonly threads: number;
  readonly build: string;
  f32!: Float32Array;
  i32!: Int32Array;
  u32!: Uint32Array;
  u8!: Uint8Array;
  private readonly module: WasmModule;
  private top: number;
  private readonly freeLists = new Map<number, number[]>();
  private used = 0;
  // thread pool
  private workers: Worker[] = [];
  private ctrl: Int32Array | null = null;
  private argsView: Float64Array | null = null;
  private seq: number[] = [];
  private readonly fnIndex = new Map<string, number>();
  private readonly fnNames: string[];

  constructor(opts: RuntimeOptions = {}) {
    const threads = opts.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`wasm backend: threads must be a positive integer, got ${threads}`);
    this.threads = threads;
    this.shared = opts.shared ?? typeof SharedArrayBuffer !== 'undefined';
    if (threads > 1 && !this.shared) throw new Error('wasm backend: threads > 1 needs shared memory (SharedArrayBuffer)');
    const suffix = this.shared ? '-mt' : '';
    const dir = opts.buildDir === undefined ? BUILD_DIR
      : opts.buildDir instanceof URL ? opts.buildDir : pathToFileURL(opts.buildDir.endsWith('/') ? opts.buildDir : opts.buildDir + '/');
    const wantRelaxed = (opts.relaxed ?? process.env.APTUNE_WASM_RELAXED !== '0');
    let relaxed = false;
    let bytes: Uint8Array | null = null;
    if (wantRelaxed) {
      enableRelaxedFlag();
      const b = loadBytes(`relaxed${suffix}.wasm`, dir);
      if (WebAssembly.validate(b)) { bytes = b; relaxed = true; }
    }
    if (!bytes) bytes = loadBytes(`simd${suffix}.wasm`, dir);
    if (!WebAssembly.validate(bytes)) throw new Error('unavailable: this runtime does not support WebAssembly SIMD');
    this.relaxed = relaxed;
    this.build = `${relaxed ? 'relaxed' : 'simd'}${suffix}`;
    eagerTierUp();
    this.module = new WebAssembly.Module(bytes);
    this.memory = this.shared
      ? new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES, shared: true })
      : new WebAssembly.Memory({ initial: 32 });
    const inst = new WebAssembly.Instance(this.module, { env: { memory: this.memory } });
    this.exports = inst.exports as unknown as Exports;
    this.fnNames = WebAssembly.Module.exports(this.module).filter((e) => e.kind === 'function').map((e) => e.name);
    this.fnNames.forEach((n, i) => this.fnIndex.set(n, i));
    this.refreshViews();
    this.top = this.exports.heap_base();
  }

  /** Re-create the typed views over the (possibly grown) memory. */
  private refreshViews(): void {
    const buf = this.memory.buffer;
    this.f32 = new Float32Array(buf);
    this.i32 = new Int32Array(buf);
    this.u32 = new Uint32Array(buf);
    this.u8 = new Uint8Array(buf);
  }

  /** Size class of a request: 64-byte granules up to 4 KiB, then 8 classes per power of two. */
  static sizeClass(bytes: number): number {
    if (bytes <= 4096) return Math.max(64, Math.ceil(bytes / 64) * 64);
    const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
    return Math.ceil(bytes / step) * step;
  }

  /** Allocate `bytes` (rounded to a size class); returns a 64-byte aligned byte address. */
  malloc(bytes: number): number {
    const size = WasmRuntime.sizeClass(bytes);
    const list = this.freeLists.get(size);
    if (list && list.length) { this.used += size; return list.pop()!; }
    const end = this.top + size;
    if (end > this.memory.buffer.byteLength) {
      const need = Math.ceil((end - this.memory.buffer.byteLength) / PAGE);
      const cur = this.memory.buffer.byteLength / PAGE;
      const grow = Math.min(MAX_PAGES - cur, Math.max(need, Math.ceil(cur / 4)));
      if (grow < need) throw new Error(`wasm backend: out of memory allocating ${bytes} bytes (heap ${this.memory.buffer.byteLength} bytes, limit 4 GiB)`);
      this.memory.grow(grow);
      this.refreshViews();
    }
    const p = this.top;
    this.top = end;
    this.used += size;
    return p;
  }

  freeBlock(ptr: number, bytes: number): void {
    const size = WasmRuntime.sizeClass(bytes);
    this.used -= size;
    if (ptr + size === this.top) { this.top = ptr; return; }
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, (list = []));
    list.push(ptr);
  }

  /** Bytes handed out and not freed (size classes included). */
  usedBytes(): number { return this.used; }
  /** Current linear-memory size in bytes. */
  heapBytes(): number { return this.memory.buffer.byteLength; }

  // ---- threads ----

  private startPool(): void {
    const n = this.threads - 1;
    const ctrlBuf = new SharedArrayBuffer(n * 16 * 4);
    const argBuf = new SharedArrayBuffer(n * 32 * 8);
    this.ctrl = new Int32Array(ctrlBuf);
    for (let i = 0; i < n; i++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: this.module, memory: this.memory, ctrlBuf, argBuf, index: i, names: this.fnNames, relaxed: this.relaxed },
      });
      w.unref();
      this.workers.push(w);
      this.seq.push(0);
    }
    for (let i = 0; i < n; i++) {
      const slot = i * 16 + 3;
      const deadline = Date.now() + 30000;
      while (Atomics.load(this.ctrl, slot) === 0) {
        if (Date.now() > deadline) throw new Error(`wasm backend: worker ${i} did not start within 30 s`);
        Atomics.wait(this.ctrl, slot, 0, 100);
      }
      if (this.ctrl[slot] !== 1) throw new Error(`wasm backend: worker ${i} failed to instantiate the kernels`);
    }
    this.argsView = new Float64Array(argBuf);
  }

  /** Run kernel `fn` once per part (argument list): part 0 here, the others on workers; returns when all are done. */
  dispatch(fn: string, parts: number[][]): void {
    const f = this.exports[fn];
    if (!f) throw new Error(`wasm backend: kernel export "${fn}" missing from ${this.build}.wasm`);
    if (parts.length === 0) return;
    if (parts.length === 1 || this.threads === 1) {
      for (const p of parts) f(...p);
      return;
    }
    if (parts.length > this.threads) throw new Error(`wasm backend: ${parts.length} parts for ${this.threads} threads`);
    if (!this.ctrl) this.startPool();
    const ctrl = this.ctrl!, args = this.argsView!;
    const id = this.fnIndex.get(fn)!;
    for (let w = 1; w < parts.length; w++) {
      const base = (w - 1) * 16, p = parts[w];
      if (p.length > 32) throw new Error(`wasm backend: kernel ${fn} takes more than 32 arguments`);
      for (let i = 0; i < p.length; i++) args[(w - 1) * 32 + i] = p[i];
      ctrl[base + 2] = id;
      ctrl[base + 4] = p.length;
      ctrl[base + 5] = 0;
      this.seq[w - 1] = (this.seq[w - 1] + 1) | 0;
      Atomics.store(ctrl, base, this.seq[w - 1]);
      Atomics.notify(ctrl, base, 1);
    }
    let error: unknown = null;
    try { f(...parts[0]); } catch (e) { error = e; }
    for (let w = 1; w < parts.length; w++) {
      const slot = (w - 1) * 16 + 1, want = this.seq[w - 1];
      let d: number;
      while ((d = Atomics.load(ctrl, slot)) !== want) Atomics.wait(ctrl, slot, d, 1000);
      if (ctrl[slot + 4] === 1 && !error) error = new Error(`wasm backend: kernel ${fn} trapped in worker ${w - 1}`);
    }
    if (error) throw error instanceof Error ? new Error(`wasm backend: kernel ${fn} failed: ${error.message}`) : error;
  }

  /** Stop the workers (the runtime stays usable single-threaded until the next threaded dispatch restarts them). */
  async terminate(): Promise<void> {
    const ws = this.workers;
    if (this.ctrl) {
      for (let i = 0; i < ws.length; i++) {
        Atomics.store(this.ctrl, i * 16 + 6, 1);
        Atomics.add(this.ctrl, i * 16, 1);
        Atomics.notify(this.ctrl, i * 16);
      }
    }
    this.workers = [];
    this.ctrl = null;
    this.argsView = null;
    this.seq = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

/** Split [0, n) into at most `parts` contiguous ranges whose boundaries are multiples of `align`. */
export function splitRange(n: number, parts: number, align = 1): [number, number][] {
  const units = Math.ceil(n / align);
  const p = Math.max(1, Math.min(parts, units));
  const out: [number, number][] = [];
  for (let i = 0; i < p; i++) {
    const a = Math.min(n, Math.floor((units * i) / p) * align);
    const b = Math.min(n, Math.floor((units * (i + 1)) / p) * align);
    if (b > a) out.push([a, b]);
  }
  return out;
}
