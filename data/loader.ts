// A generic data loader: item source (random access) -> sampler (seeded shuffle, drop_last) -> per-item
// processing run concurrently (a FIFO promise pool) with a prefetch depth in batches -> collate.
// Image work can run in the main thread (sharp's decode/resize still uses libvips threads) or on all cores
// through ImageWorkerPool (worker_threads running the same runImageTask).
// Determinism: the order of indices depends only on (seed, epoch); each item's seed is mixSeed(seed, epoch,
// position in the epoch), never completion order or thread, so a batch is identical for any concurrency,
// prefetch depth or pool size.
// Deliberately not here: Arrow reading (tasks.ts datasets plug in through ItemSource; task-batches.ts wires
// them), tokenisation (the caller's `process`).
// Invariants: every yielded batch holds items in sampler order; a skipped bad item is dropped from its batch
// (never replaced by a random one, unlike the reference) and reported once through `warn`.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { ImageDecodeError, type ImageTensor, type ImageTransform, type Normalization, type Resampler } from './images.ts';
import type { RandAugment } from './randaugment.ts';
import { createRng, mixSeed, type RandomSource } from './rng.ts';
import { runImageTask, type ImageTask } from './image-task.ts';

/** Random access to dataset items (e.g. one (row, text index) pair of an Arrow table). */
export interface ItemSource<T> {
  readonly length: number;
  get(index: number): T | Promise<T>;
}

export interface SamplerOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
}

/** Batches of indices for one epoch: a seeded Fisher-Yates shuffle (or identity), cut into batches. */
export function sampleBatches(length: number, epoch: number, opts: SamplerOptions): number[][] {
  const { batchSize } = opts;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`sampler: batchSize must be a positive integer, got ${batchSize}`);
  if (!(Number.isInteger(length) && length >= 0)) throw new Error(`sampler: dataset length must be a non-negative integer, got ${length}`);
  const order = Array.from({ length }, (_, i) => i);
  if (opts.shuffle) {
    const rng = createRng(mixSeed(opts.seed ?? 0, epoch, 0x5eed));
    for (let i = length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      const t = order[i]; order[i] = order[j]; order[j] = t;
    }
  }
  const batches: number[][] = [];
  for (let s = 0; s < length; s += batchSize) {
    const b = order.slice(s, s + batchSize);
    if (b.length < batchSize && opts.dropLast) break;
    batches.push(b);
  }
  return batches;
}

export interface ProcessContext {
  /** Dataset index of the item. */
  index: number;
  /** Position of the item in this epoch's order. */
  position: number;
  epoch: number;
  /** Item seed, mixSeed(loader seed, epoch, position). */
  seed: number;
  /** Item-private PRNG, createRng(seed). */
  rng: RandomSource;
}

export interface LoaderOptions<T, P, B> extends SamplerOptions {
  source: ItemSource<T>;
  process: (item: T, ctx: ProcessContext) => P | Promise<P>;
  collate: (items: P[], indices: number[]) => B;
  /** Items processed at once (default 4). */
  concurrency?: number;
  /** Batches prepared ahead of the consumer (default 2). */
  prefetch?: number;
  /** Drop items with a bad image instead of failing (see isBadImage). */
  skipBadImages?: boolean;
  /** Which errors count as a bad image; default: ImageDecodeError, or an error named 'BadImageError' (tasks.ts). */
  isBadImage?: (e: unknown) => boolean;
  warn?: (message: string) => void;
}

function isBadImageError(e: unknown): boolean {
  return e instanceof ImageDecodeError || (e instanceof Error && e.name === 'BadImageError');
}

/** FIFO limiter: at most `n` tasks run at once, started in call order. */
function limiter(n: number): <R>(task: () => Promise<R>) => Promise<R> {
  let active = 0;
  const queue: (() => void)[] = [];
  const next = (): void => {
    if (active >= n || queue.length === 0) return;
    active++;
    queue.shift()!();
  };
  return <R>(task: () => Promise<R>): Promise<R> =>
    new Promise<R>((resolve, reject) => {
      queue.push(() => {
        task().then(resolve, reject).finally(() => { active--; next(); });
      });
      next();
    });
}

export class DataLoader<T, P, B> {
  private readonly opts: LoaderOptions<T, P, B>;

  constructor(opts: LoaderOptions<T, P, B>) {
    const c = opts.concurrency ?? 4, p = opts.prefetch ?? 2;
    if (!(Number.isInteger(c) && c >= 1)) throw new Error(`DataLoader: concurrency must be an integer >= 1, got ${c}`);
    if (!(Number.isInteger(p) && p >= 0)) throw new Error(`DataLoader: prefetch must be an integer >= 0, got ${p}`);
    sampleBatches(0, 0, opts); // validates batchSize
    this.opts = opts;
  }

  get length(): number {
    const n = this.opts.source.length, bs = this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(n / bs) : Math.ceil(n / bs);
  }

  /** Batches of one epoch, in order. */
  async *epoch(epoch = 0): AsyncGenerator<B> {
    const o = this.opts;
    const batches = sampleBatches(o.source.length, epoch, o);
    const limit = limiter(o.concurrency ?? 4);
    const depth = (o.prefetch ?? 2) + 1;
    const seed = o.seed ?? 0;
    const warn = o.warn ?? ((m: string) => console.warn(m));
    let position = 0;
    const starts = batches.map((b) => { const s = position; position += b.length; return s; });

    const runBatch = (k: number): Promise<B | null> => {
      const idx = batches[k];
      const tasks = idx.map((index, j) => limit(async () => {
        const pos = starts[k] + j;
        const itemSeed = mixSeed(seed, epoch, pos, 0xa11);
        const ctx: ProcessContext = { index, position: pos, epoch, seed: itemSeed, rng: createRng(itemSeed) };
        try {
          return { ok: true as const, value: await o.process(await o.source.get(index), ctx) };
        } catch (e) {
          if (o.skipBadImages && (o.isBadImage ?? isBadImageError)(e)) {
            warn(`skipping item ${index}: ${(e as Error).message}`);
            return { ok: false as const };
          }
          throw e;
        }
      }));
      return Promise.all(tasks).then((res) => {
        const items: P[] = [], kept: number[] = [];
        res.forEach((r, j) => { if (r.ok) { items.push(r.value); kept.push(idx[j]); } });
        return items.length ? o.collate(items, kept) : null;
      });
    };

    const pending: Promise<B | null>[] = [];
    let started = 0;
    const fill = (): void => {
      while (started < batches.length && pending.length < depth) {
        const p = runBatch(started++);
        p.catch(() => undefined); // handled when awaited; avoids an unhandled rejection while queued
        pending.push(p);
      }
    };
    fill();
    while (pending.length) {
      const b = await pending.shift()!;
      fill();
      if (b !== null) yield b;
    }
  }
}

/** An item carrying encoded images (one per image column: 'image', or 'image_0' and 'image_1'). */
export interface ImageItem {
  images: readonly Uint8Array[];
  /** Column names for error messages (default 'image' / 'image_<k>'). */
  imageColumns?: readonly string[];
  /** Table row for error messages. */
  row?: number;
  file?: string;
}

/**
 * Adapts a task item ({image} or NLVR2's {image0, image1}) to an ImageItem. Errors name `where` when given (the
 * table file and the row local to it, as task-batches.ts passes), else the item's tableName and (global) row.
 */
export function imageItemOf(
  item: { image?: Uint8Array; image0?: Uint8Array; image1?: Uint8Array; row?: number; tableName?: string },
  where?: { file: string; row: number },
): ImageItem {
  const file = where ? where.file : item.tableName, row = where ? where.row : item.row;
  if (item.image0 !== undefined || item.image1 !== undefined) {
    if (!item.image0 || !item.image1) throw new Error(`imageItemOf: NLVR2 item at row ${row} needs both image0 and image1`);
    return { images: [item.image0, item.image1], imageColumns: ['image_0', 'image_1'], row, file };
  }
  if (!item.image) throw new Error(`imageItemOf: item at row ${row} has no image`);
  return { images: [item.image], imageColumns: ['image'], row, file };
}

interface PoolJob {
  id: number;
  task: ImageTask;
  resolve: (t: ImageTensor[]) => void;
  reject: (e: Error) => void;
}

// Workers start from JS that imports the worker module beside this file: image-worker.ts in the sources (after
// registering tsx: a .ts entry is not loadable as is), image-worker.js in the compiled package (dist/).
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './image-worker.ts' : './image-worker.js', import.meta.url).href;

function workerBoot(): string {
  let tsx: string | null = null;
  if (FROM_SOURCE) try { tsx = import.meta.resolve('tsx/esm/api'); } catch { tsx = null; }
  return tsx
    ? `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL)}); })`
    : `import(${JSON.stringify(WORKER_URL)})`;
}

/**
 * worker_threads running runImageTask, one item at a time per worker. Workers are referenced only while they
 * have work, so an idle pool never keeps the process alive; close() ends them.
 */
export class ImageWorkerPool {
  readonly size: number;
  private readonly workers: Worker[] = [];
  private readonly busy: (PoolJob | null)[] = [];
  private readonly dead: (Error | null)[] = [];
  private readonly ready: Promise<void>[] = [];
  private readonly queue: PoolJob[] = [];
  private nextId = 0;
  private closed = false;

  constructor(size = availableParallelism()) {
    if (!(Number.isInteger(size) && size >= 1)) throw new Error(`ImageWorkerPool: size must be an integer >= 1, got ${size}`);
    this.size = size;
    const boot = workerBoot();
    for (let w = 0; w < size; w++) {
      const worker = new Worker(boot, { eval: true });
      this.workers.push(worker);
      this.busy.push(null);
      this.dead.push(null);
      this.ready.push(new Promise<void>((resolve, reject) => {
        const onReady = (m: { ready?: boolean }): void => { if (m && m.ready) { worker.off('message', onReady); resolve(); } };
        worker.on('message', onReady);
        worker.once('error', reject);
      }));
      worker.on('message', (m: { id?: number; ok?: boolean; tensors?: ImageTensor[]; message?: string; decode?: boolean; detail?: string; where?: { file?: string; row?: number; column?: string } }) => {
        const job = this.busy[w];
        if (m.id === undefined || !job || job.id !== m.id) return;
        this.busy[w] = null;
        if (m.ok) job.resolve(m.tensors!);
        else job.reject(m.decode ? new ImageDecodeError(m.where, m.detail ?? String(m.message)) : new Error(m.message));
        this.pump();
      });
      const die = (e: Error): void => {
        if (this.dead[w]) return;
        this.dead[w] = e;
        const job = this.busy[w];
        this.busy[w] = null;
        if (job) job.reject(e);
        if (this.dead.every((x) => x)) for (const q of this.queue.splice(0)) q.reject(e);
      };
      worker.on('error', die);
      worker.on('exit', (code) => { if (!this.closed) die(new Error(`ImageWorkerPool: worker ${w} exited with code ${code}`)); });
      worker.unref();
    }
    this.ready.forEach((p) => p.catch(() => undefined));
  }

  run(task: ImageTask): Promise<ImageTensor[]> {
    if (this.closed) return Promise.reject(new Error('ImageWorkerPool: run() after close()'));
    if (this.dead.every((x) => x)) return Promise.reject(this.dead[0]!);
    return new Promise<ImageTensor[]>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (let w = 0; w < this.workers.length; w++) {
      if (this.dead[w]) continue;
      if (this.busy[w] === null && this.queue.length) {
        const job = this.queue.shift()!;
        this.busy[w] = job;
        this.workers[w].ref();
        this.ready[w].then(() => this.workers[w].postMessage({ id: job.id, task: job.task }), (e: Error) => { this.busy[w] = null; job.reject(e); });
      } else if (this.busy[w] === null) {
        this.workers[w].unref();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('ImageWorkerPool closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export interface ImageProcessorOptions {
  normalization?: Normalization;
  resample?: Resampler;
  /** Run the image work on these worker threads instead of the main thread (same results). */
  pool?: ImageWorkerPool;
}

/**
 * Per-item image processing for DataLoader: each image of the item through `transform`, with RandAugment
 * (training) drawn from the item's seed. Errors name file, row and column.
 */
export function imageProcessor(
  transform: ImageTransform, augment?: RandAugment | null, opts: ImageProcessorOptions = {},
): (item: ImageItem, ctx: ProcessContext) => Promise<ImageTensor[]> {
  return (item, ctx) => {
    const task: ImageTask = {
      images: item.images.map((b) => (b instanceof Uint8Array ? b : new Uint8Array(b))),
      where: item.images.map((_, k) => ({
        file: item.file, row: item.row ?? ctx.index,
        column: item.imageColumns?.[k] ?? (item.images.length === 1 ? 'image' : `image_${k}`),
      })),
      transform,
      augment: augment ? { n: augment.n, m: augment.m, ops: augment.ops } : null,
      normalization: opts.normalization,
      resample: opts.resample,
      seed: ctx.seed,
    };
    return opts.pool ? opts.pool.run(task) : runImageTask(task);
  };
}
