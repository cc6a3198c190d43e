// backward(): the reverse-mode walk from a tensor through the graph that autograd.ts records.
// Invariants:
// - backward() accumulates into `.grad` of leaves that require grad (the new .grad replaces the old, which is
//   disposed; .grad is kept, i.e. survives scopes) and frees every intermediate gradient it creates.
// - Each node is released (its saved tensors dropped) as soon as it is processed; a released graph cannot be walked
//   again: a second backward() through it throws.
// Tensor.prototype.backward is installed by methods.ts.

import { scope } from './memory.ts';
import type { Node, Tensor } from './tensor.ts';
import { shapeStr, sameShape } from './shape.ts';
import { asBackwardPass } from './autograd.ts';
import * as F from './api.ts';

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

  asBackwardPass(() => {
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
  });
}
