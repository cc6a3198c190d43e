// Task heads, losses and metrics of apt-spec §4 with the reference names: Pooler (dense + tanh on token 0),
// vqa_classifier.{0,1,3}, nlvr2_classifier.{0,1,3}, itm_score.fc, rank_output; VQA BCE x numClasses, VQA score,
// cross-entropy for NLVR2 / ITM / IRTR (target index 0 among 1 + K candidates).
// Deliberately NOT here: running the backbone twice (models/index.ts), data loading, evaluation loops.
// Invariants: heads init Normal(0, 0.02) weights, zero biases, LayerNorm(eps 1e-5) weight 1 bias 0; head hidden
// width is 2 * hidden for both backbones; logits are float32 [B, C].
import { Tensor, bceWithLogits, crossEntropy } from '../engine/index.ts';
import { Module } from './nn/module.ts';
import { GELU, LayerNorm, Linear, Sequential } from './nn/layers.ts';

export class Pooler extends Module {
  readonly dense: Linear;
  constructor(hidden: number) {
    super();
    this.dense = this.registerModule('dense', new Linear(hidden, hidden));
  }
  // [B, N, D] -> [B, D]
  forward(x: Tensor): Tensor {
    const [B, , D] = x.shape;
    return this.dense.forward(x.slice(1, 0, 1).reshape([B, D])).tanh();
  }
}

/** Linear(in -> 2h) -> LayerNorm(2h) -> GELU -> Linear(2h -> out), children named 0..3 like the reference. */
export function classifierMlp(inDim: number, hidden2: number, out: number): Sequential {
  return new Sequential([new Linear(inDim, hidden2), new LayerNorm(hidden2, 1e-5), new GELU(), new Linear(hidden2, out)]);
}

export class ItmHead extends Module {
  readonly fc: Linear;
  constructor(inDim: number) {
    super();
    this.fc = this.registerModule('fc', new Linear(inDim, 2));
  }
  forward(cls: Tensor): Tensor {
    return this.fc.forward(cls);
  }
}

/** BCEWithLogits(mean over B*C) * C: summed over classes, averaged over the batch (§4.1). */
export function vqaLoss(logits: Tensor, targets: Tensor): Tensor {
  if (logits.ndim !== 2 || targets.shape[0] !== logits.shape[0] || targets.shape[1] !== logits.shape[1]) {
    throw new Error(`vqaLoss: logits [${logits.shape}] and targets [${targets.shape}] must both be [B, numAnswers]`);
  }
  return bceWithLogits(logits, targets, { reduction: 'mean' }).mul(logits.shape[1]);
}

/** Row-wise argmax of logits [B, C] on the host (first maximum wins). */
function argmaxRows(logits: Tensor): number[] {
  const [B, C] = logits.shape;
  const lg = logits.toArray();
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (lg[b * C + c] > lg[b * C + best]) best = c;
    out.push(best);
  }
  return out;
}

/** Training VQA score: mean over samples of target[argmax(logits)] (soft score, §4.1). */
export function vqaScore(logits: Tensor, targets: Tensor): number {
  const C = logits.shape[1];
  const tg = targets.toArray();
  const best = argmaxRows(logits);
  return best.length ? best.reduce((s, c, b) => s + tg[b * C + c], 0) / best.length : 0;
}

export function ceLoss(logits: Tensor, labels: Tensor): Tensor {
  if (labels.dtype !== 'int32') throw new Error(`ceLoss: labels must be int32, got ${labels.dtype}`);
  return crossEntropy(logits, labels, { reduction: 'mean' });
}

export function accuracy(logits: Tensor, labels: Tensor): number {
  const lb = labels.toArray();
  const best = argmaxRows(logits);
  return best.length ? best.filter((c, b) => c === lb[b]).length / best.length : 0;
}
