// Multi-head attention helpers shared by ViLT, CLIP, RoBERTa and the METER fusion layers: head split/merge,
// scaled dot-product attention with an additive key mask, and key-mask construction.
// Deliberately NOT here: projections and parameter names (each backbone owns its own modules so that names
// match its checkpoint), rotary/relative positions (none of our backbones use them).
// Invariants: q [B, H, Nq, dh], k/v [B, H, Nk, dh]; the additive mask broadcasts as [B, 1, 1, Nk]; masked keys
// receive `negative` before the softmax (ViLT -1e9 standing in for -inf, METER/HF -10000 exactly).
import { Tensor, scaledSoftmax, tensor } from '../../engine/index.ts';
import { Dropout } from './layers.ts';

// [B, N, H*dh] -> [B, H, N, dh]
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [B, N, D] = x.shape;
  if (D % heads !== 0) throw new Error(`splitHeads: width ${D} not divisible by ${heads} heads`);
  return x.reshape([B, N, heads, D / heads]).permute(0, 2, 1, 3);
}

// [B, H, N, dh] -> [B, N, H*dh]
export function mergeHeads(x: Tensor): Tensor {
  const [B, H, N, dh] = x.shape;
  return x.permute(0, 2, 1, 3).reshape([B, N, H * dh]);
}

/** softmax(q kᵀ · scale + mask) v, with optional dropout on the probabilities; the scale and the mask go into the
 *  softmax's one pass (the scaled scores are never stored). -> [B, H, Nq, dh] */
export function scaledDotProduct(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, scale: number, drop?: Dropout): Tensor {
  const scores = q.matmul(k, { transB: true }); // [B, H, Nq, Nk]
  let probs = scaledSoftmax(scores, scale, -1, mask ?? undefined);
  if (drop) probs = drop.forward(probs);
  return probs.matmul(v);
}

/**
 * Additive key mask [B, 1, 1, N] from 0/1 validity rows (host arrays or a tensor): 0 where valid, `negative`
 * where padded. Built on the host: masks are data, never differentiated.
 */
export function additiveKeyMask(valid: Tensor | number[][], negative: number): Tensor {
  const rows: number[][] = Array.isArray(valid) ? valid : (valid.toList() as number[][]);
  const B = rows.length;
  const N = B ? rows[0].length : 0;
  const out = new Float32Array(B * N);
  for (let b = 0; b < B; b++) {
    if (rows[b].length !== N) throw new Error(`additiveKeyMask: row ${b} has length ${rows[b].length}, expected ${N}`);
    for (let j = 0; j < N; j++) out[b * N + j] = rows[b][j] ? 0 : negative;
  }
  return tensor(out, [B, 1, 1, N]);
}
