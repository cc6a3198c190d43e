// Parameter initialisers (normal, uniform, zeros, ones, constant, truncated normal) drawing from one seeded
// engine Generator, so a model built with the same seed has the same weights on every backend.
// Deliberately NOT here: torch's RNG stream (weights are never expected to equal torch's initial values;
// parity fixtures carry their own weights).
// Invariants: every initialiser returns a fresh float32 leaf tensor with requiresGrad=false (Module.registerParameter
// turns it on) and never reads data back to the host (initialisation runs on the shape-only backend too).
import { Generator, Tensor, full, randn, rand, zeros } from '../../engine/index.ts';

let current: Generator | undefined;

/** Runs fn with `g` as the generator used by every initialiser called inside it (re-entrant). */
export function withInitGenerator<T>(g: Generator, fn: () => T): T {
  const prev = current;
  current = g;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

function gen(): Generator | undefined {
  return current;
}

export function normal(shape: readonly number[], std = 1, mean = 0): Tensor {
  return randn([...shape], { generator: gen(), std, mean });
}

export function uniform(shape: readonly number[], low: number, high: number): Tensor {
  return rand([...shape], { generator: gen(), low, high });
}

export function zerosInit(shape: readonly number[]): Tensor {
  return zeros([...shape]);
}

export function constant(shape: readonly number[], value: number): Tensor {
  return full([...shape], value);
}

/**
 * N(mean, std) clamped to [a, b] (absolute bounds, torch trunc_normal_ defaults ±2). Every use here has std 0.02,
 * so the bounds sit 100σ out and clamping equals torch's redraw in distribution; clamping keeps initialisation free
 * of host reads (it must run on the shape-only backend for full-size accounting).
 */
export function truncNormal(shape: readonly number[], std = 1, mean = 0, a = -2, b = 2): Tensor {
  if (!(a < b)) throw new Error(`truncNormal: empty interval [${a}, ${b}]`);
  const t = randn([...shape], { generator: gen(), std, mean });
  const c = t.maximum(a).minimum(b);
  t.dispose();
  return c;
}
