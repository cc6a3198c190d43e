// Reverse-mode autograd state: record() (graph nodes are tensor.ts's Node), the grad mode (noGrad) and the backward flag. The walk itself
// is backward.ts (it runs ops, and ops record here: keeping the walk apart keeps engine/ free of import cycles).
// Does not know any op's gradient (op-table.ts gives each node its backward closure) and does no higher-order
// autograd (backward runs under noGrad).
// Invariants:
// - A node saves (graphHold) exactly the tensors its backward closure reads; they stay alive after the user or a
//   scope disposes them, and are dropped when the node is released: once backward() has processed it, or when no
//   live tensor can reach it any more (refcount = undisposed outputs + live consumer nodes; release cascades).

import { Node, type BackwardFn, type Tensor } from './tensor.ts';

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

/** For backward.ts: run `fn` as a backward pass (grad mode off, backwardActive() true), restoring both after. */
export function asBackwardPass<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  inBackward++;
  try {
    return fn();
  } finally {
    inBackward--;
    gradEnabled = prev;
  }
}
