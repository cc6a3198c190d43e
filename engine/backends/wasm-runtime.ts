// The WebAssembly runtime behind the wasm backend: loads the AssemblyScript kernels (engine/assembly/build/*.wasm),
// owns the linear memory with a host-side allocator, and runs kernels split across a worker_threads pool that
// shares that memory.
// Does not: know about ops or shapes (backends/wasm.ts does), or let kernels allocate.
// Invariants:
// - The host owns every byte above the module's heap_base: blocks are 64-byte aligned. Small requests (<= 256 KiB,
//   rounded to size classes) come from 1 MiB slabs and return to exact-size free lists; large ones (64 KiB granules)
//   from an address-ordered free list (best fit, split, coalesced with both neighbours on free; a free block that
//   reaches the top lowers it), else the top, growing the memory in pages up to 4 GiB. Exhaustion throws
//   WasmOutOfMemory (requested bytes, bytes in use, heap size); dispatch.ts turns it into an error naming the op.
// - Addresses are unsigned numbers below 2^32: typed views are indexed with `addr >>> 2` (a signed `>> 2` turns an
//   address above 2 GiB negative, and typed arrays silently drop such writes and read from the end in slice()).
// - Typed views (f32, i32, u8) are re-created after every grow; nothing else grows the memory (kernels never do).
// - Build choice: relaxed SIMD when the runtime validates it (after setting V8's flag) unless disabled; the shared-
//   memory (-mt) build whenever SharedArrayBuffer exists, so any thread count runs the same code.
// - dispatch(fn, parts) runs parts[0] on the calling thread and parts[i] on worker i-1, then waits for all of them
//   (Atomics.wait/notify on a control block); a part is the argument list of one kernel call. Workers are unref'd
//   (they never keep the process alive) and started on the first dispatch with more than one part.
// - A worker that dies (process.exit, an uncaught error, terminate(), out of memory) never leaves dispatch() waiting:
//   the main thread waits in bounded slices and sees the death either through the flag the worker's process 'exit'
//   handler writes into its control block, or (terminate, OOM: no JS runs) through the native worker handle reporting
//   the thread stopped (loopIdleTime() === -1; Node internals, feature-detected). It then waits for the other
//   workers, drops the pool (the next threaded dispatch starts a fresh one) and throws an Error naming the kernel
//   and the worker. Worker 'exit'/'error' events cannot be used: they need the event loop the main thread blocks.
// Environment: APTUNE_THREADS (thread count, default the core count), APTUNE_WASM_RELAXED=0 (plain SIMD build),
// APTUNE_WASM_LIFTOFF=1 (keep V8's baseline-first tiering). Node only (fs, worker_threads, Atomics.wait on the
// main thread); the .wasm builds themselves also run in browsers (non-shared builds without cross-origin isolation).

import { readFileSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { OutOfMemoryError } from '../backend.ts';

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
/** Requests above this are "large": 64 KiB granules from the coalescing free list; smaller ones come from slabs. */
const LARGE_MIN = 256 * 1024;
const LARGE_GRAIN = 65536;
const SLAB = 1 << 20;

/** The linear memory cannot hold a request: carries the numbers an out-of-memory message needs. */
export class WasmOutOfMemory extends OutOfMemoryError {
  constructor(requested: number, inUse: number, readonly heap: number, readonly largestFree: number) {
    super(`wasm backend: out of memory: ${fmtBytes(requested)} requested, ${fmtBytes(inUse)} in use of the 4 GiB heap `
      + `(linear memory ${fmtBytes(heap)}, largest free block ${fmtBytes(largestFree)})`, requested, inUse, MAX_PAGES * PAGE);
    this.name = 'WasmOutOfMemory';
  }
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${n} bytes`;
}

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

// Control block, CTRL_SLOTS i32 per worker: sequence numbers of the posted and of the finished call, kernel index,
// start state (1 ready, -1 failed), argument count, trap flag, command, death flag, exit code.
const CTRL_SLOTS = 16;
const SEQ = 0, DONE = 1, FN = 2, STARTED = 3, NARGS = 4, TRAPPED = 5, CMD = 6, DEAD = 7, EXIT_CODE = 8;
/** commands in the CMD slot: stop serving; exit the thread on the next call (test hook for a dying worker) */
const CMD_STOP = 1, CMD_EXIT = 2;
/** ms between liveness checks while waiting for a worker */
const WAIT_SLICE_MS = 50;

// Worker body (CommonJS, eval'd): instantiate the shared module on the shared memory, then serve calls.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctrlBuf, argBuf, index, names, relaxed } = workerData;
if (relaxed) require('node:v8').setFlagsFromString('--experimental-wasm-relaxed-simd');
const ctrl = new Int32Array(ctrlBuf);
const args = new Float64Array(argBuf, index * ${32 * 8}, 32);
const base = index * ${CTRL_SLOTS};
process.on('exit', (code) => {
  Atomics.store(ctrl, base + ${EXIT_CODE}, code | 0);
  Atomics.store(ctrl, base + ${DEAD}, 1);
  Atomics.notify(ctrl, base + ${DONE});
});
let fns;
try {
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  fns = names.map((n) => inst.exports[n]);
  Atomics.store(ctrl, base + ${STARTED}, 1);
} catch (e) {
  Atomics.store(ctrl, base + ${STARTED}, -1);
}
Atomics.notify(ctrl, base + ${STARTED});
let seq = 0;
while (fns) {
  Atomics.wait(ctrl, base + ${SEQ}, seq);
  seq = Atomics.load(ctrl, base + ${SEQ});
  const cmd = Atomics.load(ctrl, base + ${CMD});
  if (cmd === ${CMD_STOP}) break;
  if (cmd === ${CMD_EXIT}) process.exit(70);
  const f = fns[ctrl[base + ${FN}]];
  const n = ctrl[base + ${NARGS}];
  const a = new Array(n);
  for (let i = 0; i < n; i++) a[i] = args[i];
  try { f.apply(null, a); } catch (e) { Atomics.store(ctrl, base + ${TRAPPED}, 1); }
  Atomics.store(ctrl, base + ${DONE}, seq);
  Atomics.notify(ctrl, base + ${DONE});
}
`;

/** The native handle's "is this thread stopped" query, if this Node exposes it (internal: feature-detected). */
function stoppedProbe(w: Worker): (() => boolean) | null {
  try {
    const sym = Object.getOwnPropertySymbols(w).find((k) => k.description === 'kHandle');
    const h = sym ? (w as unknown as Record<symbol, { loopIdleTime?: () => number } | null>)[sym] : null;
    if (!h || typeof h.loopIdleTime !== 'function') return null;
    return () => {
      const cur = (w as unknown as Record<symbol, { loopIdleTime(): number } | null>)[sym!];
      return !cur || cur.loopIdleTime() === -1;
    };
  } catch {
    return null;
  }
}

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
  private readonly largeFree: { ptr: number; size: number }[] = [];
  private slabPos = 0;
  private slabEnd = 0;
  private used = 0;
  private peak = 0;
  private highWater = 0;
  // thread pool
  private workers: Worker[] = [];
  private probes: ((() => boolean) | null)[] = [];
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
    this.highWater = this.top;
  }

  /** Re-create the typed views over the (possibly grown) memory. */
  private refreshViews(): void {
    const buf = this.memory.buffer;
    this.f32 = new Float32Array(buf);
    this.i32 = new Int32Array(buf);
    this.u32 = new Uint32Array(buf);
    this.u8 = new Uint8Array(buf);
  }

  /** Size class of a small request (<= LARGE_MIN): 64-byte granules up to 4 KiB, then 8 classes per power of two. */
  static sizeClass(bytes: number): number {
    if (bytes <= 4096) return Math.max(64, Math.ceil(bytes / 64) * 64);
    if (bytes > LARGE_MIN) return Math.ceil(bytes / LARGE_GRAIN) * LARGE_GRAIN;
    const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
    return Math.ceil(bytes / step) * step;
  }

  /**
   * Allocate `bytes`; returns a 64-byte aligned byte address (an unsigned number below 2^32: index typed views with
   * `addr >>> 2`, never `>> 2`). Small requests come from SLAB-sized slabs with exact-size free lists; large ones
   * (> LARGE_MIN, 64 KiB granules) from an address-ordered free list (best fit, split, coalesced on free) or the top.
   * Throws WasmOutOfMemory when the 4 GiB linear memory cannot hold the request.
   */
  malloc(bytes: number): number {
    const size = WasmRuntime.sizeClass(bytes);
    let p: number;
    if (size > LARGE_MIN) p = this.mallocLarge(size, bytes);
    else {
      const list = this.freeLists.get(size);
      if (list && list.length) p = list.pop()!;
      else {
        if (this.slabPos + size > this.slabEnd) {
          const slab = Math.max(SLAB, size);
          this.slabPos = this.mallocLarge(slab, bytes);
          this.slabEnd = this.slabPos + slab;
        }
        p = this.slabPos;
        this.slabPos += size;
      }
    }
    this.used += size;
    if (this.used > this.peak) this.peak = this.used;
    return p;
  }

  private mallocLarge(size: number, requested: number): number {
    // best fit among the free large blocks
    let best = -1;
    for (let i = 0; i < this.largeFree.length; i++) {
      const f = this.largeFree[i];
      if (f.size >= size && (best < 0 || f.size < this.largeFree[best].size)) { best = i; if (f.size === size) break; }
    }
    if (best >= 0) {
      const f = this.largeFree[best];
      const p = f.ptr;
      if (f.size === size) this.largeFree.splice(best, 1);
      else { f.ptr += size; f.size -= size; }
      return p;
    }
    // a free block ending at the top is extended rather than left behind
    const last = this.largeFree[this.largeFree.length - 1];
    let start = this.top;
    if (last && last.ptr + last.size === this.top) { start = last.ptr; this.largeFree.pop(); }
    const end = start + size;
    if (end > this.memory.buffer.byteLength) {
      const cur = this.memory.buffer.byteLength / PAGE;
      const need = Math.ceil((end - this.memory.buffer.byteLength) / PAGE);
      const grow = Math.min(MAX_PAGES - cur, Math.max(need, Math.ceil(cur / 4)));
      let ok = grow >= need;
      if (ok) {
        try { this.memory.grow(grow); } catch {
          try { this.memory.grow(need); } catch { ok = false; }
        }
      }
      if (!ok) {
        if (start !== this.top) this.largeFree.push({ ptr: start, size: this.top - start });
        throw new WasmOutOfMemory(requested, this.used, this.memory.buffer.byteLength, this.largestFree());
      }
      this.refreshViews();
    }
    this.top = end;
    if (end > this.highWater) this.highWater = end;
    return start;
  }

  freeBlock(ptr: number, bytes: number): void {
    const size = WasmRuntime.sizeClass(bytes);
    this.used -= size;
    if (size <= LARGE_MIN) {
      let list = this.freeLists.get(size);
      if (!list) this.freeLists.set(size, (list = []));
      list.push(ptr);
      return;
    }
    // insert in address order and coalesce with both neighbours; a block reaching the top lowers it
    const fl = this.largeFree;
    let lo = 0, hi = fl.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (fl[m].ptr < ptr) lo = m + 1; else hi = m; }
    let blk = { ptr, size };
    if (lo > 0 && fl[lo - 1].ptr + fl[lo - 1].size === ptr) { blk = fl[lo - 1]; blk.size += size; lo--; fl.splice(lo, 1); }
    if (lo < fl.length && blk.ptr + blk.size === fl[lo].ptr) { blk.size += fl[lo].size; fl.splice(lo, 1); }
    if (blk.ptr + blk.size === this.top) { this.top = blk.ptr; return; }
    fl.splice(lo, 0, blk);
  }

  private largestFree(): number {
    let m = MAX_PAGES * PAGE - this.top;
    for (const f of this.largeFree) m = Math.max(m, f.size);
    return m;
  }

  /**
   * Test hook (heap tests, benchmarks of placement): make every later allocation lie at or above byte `at` by
   * allocating one untouched block below it (address space, not RAM) and retiring the current slab and the small
   * free lists (their blocks are abandoned, not reused). Returns the pad's address.
   */
  pushHeapForTest(at: number): number {
    this.slabPos = this.slabEnd = 0;
    this.freeLists.clear();
    const pad = Math.max(LARGE_MIN + LARGE_GRAIN, at - this.top);
    return this.malloc(pad);
  }

  /** Bytes handed out and not freed (size classes included). */
  usedBytes(): number { return this.used; }
  /** Highest usedBytes() since the start or the last resetPeak(). */
  peakBytes(): number { return this.peak; }
  resetPeak(): void { this.peak = this.used; }
  /** Current linear-memory size in bytes. */
  heapBytes(): number { return this.memory.buffer.byteLength; }
  /** One past the highest byte ever handed out (the part of the memory that was touched). */
  highWaterBytes(): number { return this.highWater; }

  // ---- threads ----

  private startPool(): void {
    const n = this.threads - 1;
    const ctrlBuf = new SharedArrayBuffer(n * CTRL_SLOTS * 4);
    const argBuf = new SharedArrayBuffer(n * 32 * 8);
    this.ctrl = new Int32Array(ctrlBuf);
    for (let i = 0; i < n; i++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: this.module, memory: this.memory, ctrlBuf, argBuf, index: i, names: this.fnNames, relaxed: this.relaxed },
      });
      w.unref();
      // an uncaught error in a worker would otherwise become one in this process; dispatch reports the death
      w.on('error', () => {});
      this.workers.push(w);
      this.probes.push(stoppedProbe(w));
      this.seq.push(0);
    }
    for (let i = 0; i < n; i++) {
      const slot = i * CTRL_SLOTS + STARTED;
      const deadline = Date.now() + 30000;
      while (Atomics.load(this.ctrl, slot) === 0) {
        if (Date.now() > deadline) throw new Error(`wasm backend: worker ${i} did not start within 30 s`);
        if (this.isDead(i)) throw new Error(`wasm backend: worker ${i} died while starting`);
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
      const base = (w - 1) * CTRL_SLOTS, p = parts[w];
      if (p.length > 32) throw new Error(`wasm backend: kernel ${fn} takes more than 32 arguments`);
      for (let i = 0; i < p.length; i++) args[(w - 1) * 32 + i] = p[i];
      ctrl[base + FN] = id;
      ctrl[base + NARGS] = p.length;
      ctrl[base + TRAPPED] = 0;
      this.seq[w - 1] = (this.seq[w - 1] + 1) | 0;
      Atomics.store(ctrl, base + SEQ, this.seq[w - 1]);
      Atomics.notify(ctrl, base + SEQ, 1);
    }
    let error: unknown = null;
    try { f(...parts[0]); } catch (e) { error = e; }
    const dead: string[] = [];
    for (let w = 1; w < parts.length; w++) {
      const base = (w - 1) * CTRL_SLOTS, slot = base + DONE, want = this.seq[w - 1];
      let d: number;
      while ((d = Atomics.load(ctrl, slot)) !== want) {
        // a dead worker never finishes: check after every slice (and at once when its exit handler notified)
        if (Atomics.wait(ctrl, slot, d, WAIT_SLICE_MS) !== 'not-equal' && Atomics.load(ctrl, slot) !== want && this.isDead(w - 1)) {
          dead.push(ctrl[base + DEAD] === 1 ? `worker ${w - 1} (exit code ${ctrl[base + EXIT_CODE]})` : `worker ${w - 1} (thread stopped)`);
          break;
        }
      }
      if (ctrl[base + TRAPPED] === 1 && !error) error = new Error(`wasm backend: kernel ${fn} trapped in worker ${w - 1}`);
    }
    if (dead.length) {
      void this.terminate(); // drop the pool: the next threaded dispatch starts fresh workers
      throw new Error(`wasm backend: kernel ${fn}: ${dead.join(', ')} died before finishing its part; `
        + 'the outputs of this call are incomplete (the worker pool is restarted on the next threaded call)');
    }
    if (error) throw error instanceof Error ? new Error(`wasm backend: kernel ${fn} failed: ${error.message}`) : error;
  }

  /** Whether worker i is gone: its exit handler flagged it, or (once it has started: before, the native handle
   *  has no environment yet and reads as stopped) the thread is stopped. */
  private isDead(i: number): boolean {
    if (!this.ctrl) return false;
    if (Atomics.load(this.ctrl, i * CTRL_SLOTS + DEAD) === 1) return true;
    return Atomics.load(this.ctrl, i * CTRL_SLOTS + STARTED) === 1 && (this.probes[i]?.() ?? false);
  }

  /** Number of pool workers currently started (0 before the first threaded dispatch). */
  get poolSize(): number { return this.workers.length; }

  /**
   * Test hook: make pool worker i die. 'exit': it calls process.exit(70) when its next call arrives (its exit handler
   * runs); 'terminate': Worker.terminate() now (no JS runs in it any more). Starts the pool if needed.
   */
  killWorkerForTest(i: number, how: 'exit' | 'terminate'): void {
    if (!this.ctrl) this.startPool();
    if (!(i >= 0 && i < this.workers.length)) throw new Error(`wasm backend: no pool worker ${i} (pool of ${this.workers.length})`);
    if (how === 'exit') { Atomics.store(this.ctrl!, i * CTRL_SLOTS + CMD, CMD_EXIT); return; }
    void this.workers[i].terminate();
    // terminate() only requests the stop: wait until the thread is gone, so the next call cannot race it
    const deadline = Date.now() + 5000, nap = new Int32Array(new SharedArrayBuffer(4));
    while (!this.isDead(i)) {
      if (Date.now() > deadline) throw new Error(`wasm backend: worker ${i} did not stop within 5 s of terminate()`);
      Atomics.wait(nap, 0, 0, 5);
    }
  }

  /** Stop the workers (the runtime stays usable single-threaded until the next threaded dispatch restarts them). */
  async terminate(): Promise<void> {
    const ws = this.workers;
    if (this.ctrl) {
      for (let i = 0; i < ws.length; i++) {
        Atomics.store(this.ctrl, i * CTRL_SLOTS + CMD, CMD_STOP);
        Atomics.add(this.ctrl, i * CTRL_SLOTS + SEQ, 1);
        Atomics.notify(this.ctrl, i * CTRL_SLOTS + SEQ);
      }
    }
    this.workers = [];
    this.probes = [];
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
