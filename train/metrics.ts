// Task metrics of apt-spec §4 on host arrays: the training VQA score (soft score of the argmax answer), NLVR2
// accuracy (also per source table: dev vs test1), and image-text retrieval recall TR@K / IR@K from an
// images x texts score matrix as the reference's compute_irtr_recall defines them.
// Does not: run models (train/evaluate.ts), or compute the official VQA accuracy (data/vqa.ts has it).
// Invariants: inputs are row-major typed arrays with explicit sizes, checked against each other; top-K is a stable
// descending order (among equal scores the lower index ranks first, a deterministic choice where torch.topk leaves
// the order unspecified); K larger than the candidate set is clamped to the set size (torch.topk would raise).
// Running averages (MeanMetric) are exact sums divided by counts, never averages of batch averages.

/** Row-wise argmax of [rows, cols] (first maximum wins, like torch.argmax on CPU). */
export function argmaxRows(values: ArrayLike<number>, rows: number, cols: number): Int32Array {
  if (values.length !== rows * cols) throw new Error(`argmaxRows: ${values.length} values for [${rows}, ${cols}]`);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (values[r * cols + c] > values[r * cols + best]) best = c;
    out[r] = best;
  }
  return out;
}

/** Training VQA score (§4.1) summed over a batch: sum_b targets[b, argmax_c logits[b, c]]; with the sample count. */
export function vqaScoreSum(logits: ArrayLike<number>, targets: ArrayLike<number>, batch: number, numClasses: number): { sum: number; count: number } {
  if (targets.length !== batch * numClasses) throw new Error(`vqaScore: targets have ${targets.length} values, expected [${batch}, ${numClasses}]`);
  const best = argmaxRows(logits, batch, numClasses);
  let sum = 0;
  for (let b = 0; b < batch; b++) sum += targets[b * numClasses + best[b]];
  return { sum, count: batch };
}

/** Correct predictions of [B, C] logits against labels [B]; with the sample count. */
export function accuracySum(logits: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): { sum: number; count: number } {
  const B = labels.length;
  const best = argmaxRows(logits, B, numClasses);
  let sum = 0;
  for (let b = 0; b < B; b++) if (best[b] === labels[b]) sum++;
  return { sum, count: B };
}

/** An exact running mean (sum / count); keyed variants route samples by name (e.g. the NLVR2 source table). */
export class MeanMetric {
  sum = 0;
  count = 0;
  add(x: { sum: number; count: number } | number, count = 1): this {
    if (typeof x === 'number') { this.sum += x * count; this.count += count; } else { this.sum += x.sum; this.count += x.count; }
    return this;
  }
  get value(): number { return this.count ? this.sum / this.count : 0; }
  reset(): void { this.sum = 0; this.count = 0; }
}

/** Exact running means routed by key (NLVR2's source table, a VQA question type). */
export class KeyedMean {
  readonly byKey = new Map<string, MeanMetric>();
  add(key: string, x: { sum: number; count: number } | number): this {
    (this.byKey.get(key) ?? this.byKey.set(key, new MeanMetric()).get(key)!).add(x);
    return this;
  }
  /** `<key>_<name>` (the mean) and `<key>_count` of every key, keys in sorted order. */
  record(name: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, m] of [...this.byKey].sort(([a], [b]) => a.localeCompare(b))) { out[`${k}_${name}`] = m.value; out[`${k}_count`] = m.count; }
    return out;
  }
}

/** Indices of the top `k` values of `get(0..n-1)`, descending, ties to the lower index. */
function topK(n: number, k: number, get: (i: number) => number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => { const d = get(b) - get(a); return d !== 0 && !Number.isNaN(d) ? d : a - b; });
  return idx.slice(0, Math.min(k, n));
}

export interface RecallResult {
  /** text retrieval: per image, does the top-K of its row hold a caption of that image (mean over images) */
  tr: Record<number, number>;
  /** image retrieval: per caption, is its image among the top-K rows of its column (mean over captions) */
  ir: Record<number, number>;
}

/**
 * compute_irtr_recall (§4.3) from scores [nImages, nTexts] (rows = images, columns = texts), the image id of each
 * row `imageIds` [nImages] and of each column's caption `textImageIds` [nTexts]. Returns TR@K and IR@K for each K.
 */
export function retrievalRecall(scores: ArrayLike<number>, imageIds: ArrayLike<number | string>, textImageIds: ArrayLike<number | string>, ks: readonly number[] = [1, 5, 10]): RecallResult {
  const nI = imageIds.length, nT = textImageIds.length;
  if (scores.length !== nI * nT) throw new Error(`retrievalRecall: ${scores.length} scores for ${nI} images x ${nT} texts`);
  if (nI === 0 || nT === 0) throw new Error(`retrievalRecall: empty score matrix (${nI} images x ${nT} texts)`);
  for (const k of ks) if (!(Number.isInteger(k) && k >= 1)) throw new Error(`retrievalRecall: K must be a positive integer, got ${k}`);
  const kMax = Math.max(...ks);
  const tr: Record<number, number> = {}, ir: Record<number, number> = {};
  // rank of the first hit among the top-kMax (Infinity when none): hit@K <=> rank < K
  const rowHit: number[] = [];
  for (let i = 0; i < nI; i++) {
    const top = topK(nT, kMax, (j) => scores[i * nT + j]);
    const r = top.findIndex((j) => textImageIds[j] === imageIds[i]);
    rowHit.push(r < 0 ? Infinity : r);
  }
  const colHit: number[] = [];
  for (let j = 0; j < nT; j++) {
    const top = topK(nI, kMax, (i) => scores[i * nT + j]);
    const r = top.findIndex((i) => imageIds[i] === textImageIds[j]);
    colHit.push(r < 0 ? Infinity : r);
  }
  for (const k of ks) {
    tr[k] = rowHit.filter((r) => r < k).length / nI;
    ir[k] = colHit.filter((r) => r < k).length / nT;
  }
  return { tr, ir };
}
