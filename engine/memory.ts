// Explicit memory management: refcounted storages, scopes that free temporaries, keep, dispose, the live count,
// leak checks, and the test mode in which every kernel call must allocate exactly its outputs.
// Does not allocate storages itself (tensor.ts does, through the backend) and knows nothing about ops.
// Invariants:
// - A storage is freed exactly once, when the last tensor holding it releases it (reshape/detach share storages).
// - A tensor holds its storage until it is disposed AND no graph node saves it (graphRefs == 0); liveTensors()
//   counts tensors still holding storage, so a released graph and freed temporaries bring it back to its start.
// - scope(fn) disposes every tensor created inside that is neither returned (found by walking arrays / plain
//   objects / Maps of the result) nor kept; returned tensors move to the enclosing scope.
// - Graph nodes are refcounted: a node lives while one of its outputs is undisposed or a live node consumes one of
//   them; when the count reaches zero it is released (its saved tensors dropped) and the release cascades to its
//   producers. So a graph nobody can reach any more (forward in a scope without backward, an eval forward outside
//   noGrad whose outputs are disposed) frees its activations at once.
// - Tensors created outside every scope are never disposed automatically.

import type { Backend, Storage } from './backend.ts';

export interface StorageHandle {
  readonly storage: Storage;
  readonly backend: Backend;
  refs: number;
}

/** What memory.ts needs of a graph node (autograd.ts implements it). */
export interface GraphNodeLike {
  released: boolean;
  /** one of this node's outputs was disposed */
  outputDisposed(): void;
}

/** What memory.ts needs of a tensor (tensor.ts implements it). */
export interface MemTensor {
  _handle: StorageHandle;
  _disposed: boolean;
  _released: boolean;
  _graphRefs: number;
  _scope: Scope | null;
  _kept: boolean;
  gradFn: GraphNodeLike | null;
}

export class Scope {
  readonly tensors = new Set<MemTensor>();
  constructor(readonly parent: Scope | null, readonly name: string) {}
}

let current: Scope | null = null;
let live = 0;
let testMode = process.env.APTUNE_CHECK_KERNELS === '1';

export function currentScope(): Scope | null {
  return current;
}

/** Called by tensor.ts for every new tensor (it already holds one reference to its storage handle). */
export function trackTensor(t: MemTensor): void {
  live++;
  if (current) {
    current.tensors.add(t);
    t._scope = current;
  }
}

function releaseStorage(t: MemTensor): void {
  if (t._released) return;
  t._released = true;
  live--;
  const h = t._handle;
  h.refs--;
  if (h.refs === 0) h.backend.free(h.storage);
  else if (h.refs < 0) throw new Error('memory: storage released twice (internal error)');
}

/** Dispose a tensor: it becomes unusable; its storage is freed once no graph node saves it. Idempotent. */
export function disposeTensor(t: MemTensor): void {
  if (t._disposed) return;
  t._disposed = true;
  if (t._scope) {
    t._scope.tensors.delete(t);
    t._scope = null;
  }
  if (t._graphRefs === 0) releaseStorage(t);
  t.gradFn?.outputDisposed();
}

/** A graph node saves a tensor for backward. */
export function graphHold(t: MemTensor): void {
  t._graphRefs++;
}

/** A graph node drops a saved tensor. */
export function graphDrop(t: MemTensor): void {
  t._graphRefs--;
  if (t._graphRefs < 0) throw new Error('memory: graph reference dropped twice (internal error)');
  if (t._graphRefs === 0 && t._disposed) releaseStorage(t);
}

/** Exempt a tensor from every scope (it must be disposed by hand). Returns it. */
export function keepTensor<T extends MemTensor>(t: T): T {
  if (t._scope) {
    t._scope.tensors.delete(t);
    t._scope = null;
  }
  t._kept = true;
  return t;
}

function collectTensors(x: unknown, out: Set<MemTensor>, seen: Set<unknown>, isTensor: (v: unknown) => boolean): void {
  if (x === null || typeof x !== 'object' || seen.has(x)) return;
  seen.add(x);
  if (isTensor(x)) {
    out.add(x as MemTensor);
    return;
  }
  if (Array.isArray(x)) {
    for (const v of x) collectTensors(v, out, seen, isTensor);
  } else if (x instanceof Map) {
    for (const v of x.values()) collectTensors(v, out, seen, isTensor);
  } else if (Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x)) collectTensors(v, out, seen, isTensor);
  }
}

let isTensorFn: (v: unknown) => boolean = () => false;
/** tensor.ts registers its instanceof test (avoids an import cycle). */
export function setTensorPredicate(f: (v: unknown) => boolean): void {
  isTensorFn = f;
}

/**
 * Run fn in a new scope; every tensor created inside that is not part of the result (or kept) is disposed when
 * it returns or throws. fn must be synchronous.
 */
export function scope<T>(fn: () => T, name = 'scope'): T {
  const s = new Scope(current, name);
  current = s;
  let result: T;
  let ok = false;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new Error(`scope(${name}): fn returned a Promise; scopes are synchronous (await outside, scope inside)`);
    }
    ok = true;
  } finally {
    current = s.parent;
    const keep = new Set<MemTensor>();
    if (ok) collectTensors(result!, keep, new Set(), isTensorFn);
    endScope(s, keep);
  }
  return result!;
}

function endScope(s: Scope, survivors: Set<MemTensor>): void {
  const parent = s.parent;
  for (const t of s.tensors) {
    if (survivors.has(t)) {
      t._scope = parent;
      if (parent) parent.tensors.add(t);
    } else {
      t._scope = null;
      disposeTensor(t); // releases graph nodes nobody can reach any more (refcounts)
    }
  }
  s.tensors.clear();
}

/** Number of tensors currently holding backend storage (user tensors, graph-saved tensors, kept tensors). */
export function liveTensors(): number {
  return live;
}

/** Turn on/off the check that each kernel call allocates exactly its outputs (also APTUNE_CHECK_KERNELS=1). */
export function setKernelChecks(on: boolean): void {
  testMode = on;
}
export function kernelChecks(): boolean {
  return testMode;
}

/**
 * Run fn and throw if it leaves live tensors or backend bytes behind (fn's result, if tensors, is disposed first
 * unless `allowResult`). Returns fn's result.
 */
export function checkLeaks<T>(fn: () => T, backendsToWatch: readonly Backend[] = [], label = 'checkLeaks'): T {
  const before = live;
  const bytes = backendsToWatch.map((b) => b.allocatedBytes());
  const r = fn();
  const after = live;
  if (after !== before) throw new Error(`${label}: ${after - before} tensor(s) leaked (live ${before} -> ${after})`);
  backendsToWatch.forEach((b, i) => {
    const now = b.allocatedBytes();
    if (now !== bytes[i]) throw new Error(`${label}: backend ${b.name} leaked ${now - bytes[i]} bytes`);
  });
  return r;
}
