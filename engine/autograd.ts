// Reverse-mode autograd: graph nodes, the grad mode (noGrad), and backward().
// Does not know any op's gradient (ops.ts gives each node its backward closure) and does no higher-order autograd
// (backward runs under noGrad).
// Invariants:
// - A node saves (graphHold) exactly the tensors its backward closure reads; they stay alive after the user or a
//   scope disposes them, and are dropped when the node is released: once backward() has processed it, or when no
//   live tensor can reach it any more (refcount = undisposed outputs + live consumer nodes; release cascades).
// - backward() accumulates into `.grad` of leaves that require grad (the new .grad replaces the old, which is
//   disposed; .grad is kept, i.e. survives scopes) and frees every intermediate gradient it creates.
// - A released graph cannot be walked again: a second backward() through it throws.

import { graphDrop, graphHold, scope, type GraphNodeLike } from './memory.ts';
import type { Tensor } from './tensor.ts';
import { shapeStr, sameShape } from './shape.ts';
import * as F from './ops.ts';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn with graph recording off (results do not require grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Run fn with graph recording on (inside a noGrad region). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

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

/**
 * Record a node producing `outputs` from `inputs` if grad mode is on and some input requires grad; marks the
 * float outputs requiresGrad. `saved` are the tensors the backward closure reads.
 */
export function record(name: string, inputs: readonly Tensor[], outputs: readonly Tensor[], backwardFn: BackwardFn, saved: readonly Tensor[]): void {
  if (!gradEnabled) return;
  if (!inputs.some((t) => t.requiresGrad)) return;
  const node = new Node(name, inputs, outputs.length, backwardFn, saved);
  outputs.forEach((o, i) => {
    if (o.dtype === 'int32') return;
    o.requiresGrad = true;
    o.gradFn = node;
    o._outIndex = i;
    node.liveOutputs++;
  });
}

let inBackward = 0;
/** True while backward() runs (ops may then read disposed tensors a node still saves). */
export function backwardActive(): boolean {
  return inBackward > 0;
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (!sameShape(leaf.shape, g.shape)) {
    throw new Error(`backward: gradient shape ${shapeStr(g.shape)} does not match tensor shape ${shapeStr(leaf.shape)} (internal error)`);
  }
  if (g.dtype !== leaf.dtype) {
    const c = F.cast(g, leaf.dtype);
    g.dispose();
    g = c;
  }
  if (leaf.grad) {
    const sum = F.add(leaf.grad, g);
    leaf.grad.dispose();
    g.dispose();
    leaf.grad = sum.keep();
  } else {
    // the gradient might share storage with a tensor the user still holds (e.g. the seed): copy to own it
    leaf.grad = g.keep();
  }
}

/** Reverse-mode pass from `root`. */
export function backward(root: Tensor, seed?: Tensor): void {
  root._check('backward');
  if (!root.requiresGrad) throw new Error(`backward: tensor ${shapeStr(root.shape)} does not require grad (no graph to walk)`);
  if (seed) {
    seed._check('backward(seed)');
    if (!sameShape(seed.shape, root.shape)) {
      throw new Error(`backward: seed shape ${shapeStr(seed.shape)} does not match tensor shape ${shapeStr(root.shape)}`);
    }
    if (seed.backend !== root.backend) throw new Error(`backward: seed on backend ${seed.backend.name}, tensor on ${root.backend.name}`);
  } else if (root.size !== 1) {
    throw new Error(`backward: tensor of shape ${shapeStr(root.shape)} is not a scalar; pass a seed gradient of that shape`);
  }
  if (root.gradFn?.released) throw new Error(`backward: the graph of this tensor was already released (backward called twice, or its scope ended)`);

  const prevGrad = gradEnabled;
  gradEnabled = false;
  inBackward++;
  try {
    scope(() => {
      // the seed is copied so that accumulating into .grad never aliases a user tensor
      const g0 = seed ? F.clone(seed) : F.onesLike(root);
      if (!root.gradFn) {
        accumulateLeaf(root, g0);
        return;
      }
      // topological order (iterative DFS, post-order)
      const order: Node[] = [];
      const visited = new Set<Node>();
      const stack: [Node, number][] = [[root.gradFn, 0]];
      visited.add(root.gradFn);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const [n, i] = top;
        if (i < n.inputs.length) {
          top[1]++;
          const p = n.inputs[i].gradFn;
          if (p && !visited.has(p)) {
            if (p.released) throw new Error(`backward: part of the graph (${p.name}) was already released (backward called twice, or its scope ended)`);
            visited.add(p);
            stack.push([p, 0]);
          }
        } else {
          order.push(n);
          stack.pop();
        }
      }
      for (const n of order) n.walking = true;
      const pending = new Map<Node, (Tensor | null)[]>();
      pending.set(root.gradFn, Array.from({ length: root.gradFn.nOut }, (_, i) => (i === root._outIndex ? g0 : null)));
      try {
        for (let k = order.length - 1; k >= 0; k--) {
          const n = order[k];
          const gs = pending.get(n);
          pending.delete(n);
          if (!gs || gs.every((g) => g === null)) {
            n.release();
            continue;
          }
          const needs = n.inputs.map((t) => t.requiresGrad);
          const ins = scope(() => n.backwardFn(gs, needs), `backward:${n.name}`);
          n.release(); // its saved activations are no longer needed: free them now, not at the end (peak memory)
          // a rule may pass an incoming gradient through, or return one tensor for two inputs: own each once
          // (clone duplicates before any is consumed: accumulating the first may dispose it)
          const consumed = new Set<Tensor>();
          const owned = ins.map((g) => {
            if (!g) return null;
            if (consumed.has(g)) return F.clone(g);
            consumed.add(g);
            return g;
          });
          owned.forEach((g, i) => {
            if (!g) return;
            const inp = n.inputs[i];
            if (!inp.requiresGrad) {
              g.dispose();
              return;
            }
            if (!sameShape(g.shape, inp.shape)) {
              throw new Error(`backward: ${n.name} produced a gradient of shape ${shapeStr(g.shape)} for input ${i} of shape ${shapeStr(inp.shape)} (internal error)`);
            }
            const p = inp.gradFn;
            if (!p) {
              accumulateLeaf(inp, g);
              return;
            }
            let slot = pending.get(p);
            if (!slot) {
              slot = new Array(p.nOut).fill(null);
              pending.set(p, slot);
            }
            const prev = slot[inp._outIndex];
            if (prev) {
              slot[inp._outIndex] = F.add(prev, g);
              prev.dispose();
              g.dispose();
            } else slot[inp._outIndex] = g;
          });
          for (const g of gs) if (g && !consumed.has(g)) g.dispose();
        }
      } finally {
        for (const gs of pending.values()) for (const g of gs) g?.dispose();
        for (const n of order) {
          n.walking = false;
          n.release();
        }
      }
    }, 'backward');
  } finally {
    inBackward--;
    gradEnabled = prevGrad;
  }
}
