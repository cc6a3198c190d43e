// Collated typed-array batches (data/task-batches.ts TaskBatch) -> engine tensors in the models' Batch
// format (models/index.ts), on the current backend (or the one named):
//   vqa:   textIds int32 [B, L], textMasks float32 [B, L], image [B, 3, H, W], vqaTargets [B, C]
//   nlvr2: + image1 [B, 3, H, W] (the second image column), labels int32 [B]
//   irtr:  textIds / textMasks [B, 1 + K, L]: candidate 0 is the item's own caption, 1..K its drawn negatives;
//          with the loader's false images (drawFalseImage = 1, METER) also `itm`: the item's own caption [B, L]
//          against, per item, its own image (label 1) or its drawn other image (label 0), labels int32 [B]
//          (apt-spec §4.3: the models add the ITM loss through the frozen itm_score head).
// Also the evaluation pairs of F30K retrieval (one image against a block of captions).
// `trimPadding` drops the text columns that are padding in every row (trimTextPadding: exact up to float summation
// order); runTrain asks for it on retrieval, whose 1 + K captions per item are mostly the reference's max_length padding.
// Does not: draw the false images or the ITM labels (the loader does, seeded), move data between backends after
// creation, or keep tensors alive (callers create batches inside the step's scope).
// Invariants: every tensor is a fresh copy of the arrays (the loader may reuse nothing, but the engine never
// aliases caller memory); shapes are checked against the arrays and a mismatch names the field.
import { tensor, type Tensor } from '../engine/index.ts';
import type { Batch } from '../models/index.ts';
import type { TaskBatch } from '../data/task-batches.ts';
import type { ImageBatch, TextBatch } from '../data/collate.ts';

export type ModelTask = 'vqa' | 'nlvr2' | 'irtr';

function opts(backend?: string): { backend?: string } {
  return backend ? { backend } : {};
}

export function imageTensor(im: ImageBatch, backend?: string): Tensor {
  const [B, C, H, W] = im.shape;
  if (im.data.length !== B * C * H * W) throw new Error(`batch: image data has ${im.data.length} values for shape [${im.shape}]`);
  return tensor(im.data, [B, C, H, W], opts(backend)); // [B, 3, H, W]
}

/** ids int32 [B, L] and mask float32 [B, L]. */
export function textTensors(t: TextBatch, backend?: string): { ids: Tensor; mask: Tensor } {
  const [B, L] = t.shape;
  if (t.ids.length !== B * L || t.mask.length !== B * L) throw new Error(`batch: text ids/mask have ${t.ids.length}/${t.mask.length} values for shape [${B}, ${L}]`);
  return { ids: tensor(Int32Array.from(t.ids), [B, L], { dtype: 'int32', ...opts(backend) }), mask: tensor(Float32Array.from(t.mask), [B, L], opts(backend)) };
}

/**
 * The number of leading text columns that hold a real token in some row of `texts` ([B, L] each): 1 + the last
 * column whose mask is set anywhere (at least 1). The columns past it are padding in every row.
 */
export function textExtent(texts: readonly TextBatch[]): number {
  let n = 1;
  for (const t of texts) {
    const [B, L] = t.shape;
    for (let b = 0; b < B; b++) for (let l = L - 1; l >= n; l--) if (t.mask[b * L + l]) { n = l + 1; break; }
  }
  return n;
}

/**
 * `t` [B, L] without the trailing columns that are padding in every row: [B, textExtent]. Exact for the models (up
 * to float summation order): a padded column is a key every query masks out (-1e9 / -10000 before the softmax gives
 * a weight of exactly 0) and no output reads its own position (the poolers read column 0); text positions are
 * column indices, so the kept columns keep theirs.
 */
export function trimTextPadding(t: TextBatch): TextBatch {
  const [B, L] = t.shape, n = textExtent([t]);
  if (n === L) return t;
  const ids = new Int32Array(B * n), mask = new Int32Array(B * n);
  for (let b = 0; b < B; b++) { ids.set(t.ids.subarray(b * L, b * L + n), b * n); mask.set(t.mask.subarray(b * L, b * L + n), b * n); }
  return { ids, mask, shape: [B, n] };
}

/**
 * Stack the item's text and its K negatives into [B, 1 + K, L] (candidate 0 = the true caption); with `trim`, L is
 * the candidates' textExtent (trimTextPadding's columns) instead of their padded length.
 */
export function candidateTexts(texts: readonly TextBatch[], backend?: string, trim = false): { ids: Tensor; mask: Tensor } {
  const [B, L0] = texts[0].shape;
  const C = texts.length;
  texts.forEach((t, k) => { if (t.shape[0] !== B || t.shape[1] !== L0) throw new Error(`batch: candidate text ${k} has shape [${t.shape}], expected [${B}, ${L0}]`); });
  const L = trim ? textExtent(texts) : L0;
  const ids = new Int32Array(B * C * L), mask = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const src = b * L0, dst = (b * C + c) * L;
      for (let l = 0; l < L; l++) { ids[dst + l] = texts[c].ids[src + l]; mask[dst + l] = texts[c].mask[src + l]; }
    }
  }
  return { ids: tensor(ids, [B, C, L], { dtype: 'int32', ...opts(backend) }), mask: tensor(mask, [B, C, L], opts(backend)) };
}

export interface ModelBatchOptions {
  /** drop the text columns that are padding in every row (trimTextPadding; exact up to float summation order) */
  trimPadding?: boolean;
}

/** A TaskBatch as the models' Batch for `task` (F30K batches serve the irtr task). */
export function toModelBatch(b: TaskBatch, task: ModelTask, backend?: string, o: ModelBatchOptions = {}): Batch {
  const want = task === 'irtr' ? 'f30k' : task;
  if (b.task !== want) throw new Error(`batch: a ${b.task} batch cannot feed task ${task} (needs ${want})`);
  const trim = o.trimPadding === true;
  if (task === 'irtr') {
    if (b.falseTexts.length === 0) throw new Error('batch: an irtr training batch needs negative captions (drawFalseText > 0)');
    const t = candidateTexts([b.text, ...b.falseTexts], backend, trim);
    const out: Batch = { textIds: t.ids, textMasks: t.mask, image: imageTensor(b.images[0], backend) };
    if (b.falseImages?.length && b.itmLabels) out.itm = itmBatch(b, backend, trim);
    return out;
  }
  const t = textTensors(trim ? trimTextPadding(b.text) : b.text, backend);
  const out: Batch = { textIds: t.ids, textMasks: t.mask, image: imageTensor(b.images[0], backend) };
  if (task === 'vqa') {
    if (!b.vqa || b.vqa.targets.length === 0) throw new Error('batch: VQA batch without targets (a test table has no answers)');
    out.vqaTargets = tensor(b.vqa.targets, [b.indices.length, b.vqa.numClasses], opts(backend)); // [B, C]
  } else {
    if (b.images.length < 2) throw new Error('batch: NLVR2 batch needs two image columns');
    if (!b.nlvr2) throw new Error('batch: NLVR2 batch without labels');
    out.image1 = imageTensor(b.images[1], backend);
    out.labels = tensor(Int32Array.from(b.nlvr2.labels), [b.nlvr2.labels.length], { dtype: 'int32', ...opts(backend) });
  }
  return out;
}

/**
 * F30K evaluation: one image (row `i` of an ImageBatch, [3, H, W]) against `n` captions (rows of a [N, L] text
 * batch from `start`), as an irtr Batch with B = 1 and 1 + K = n candidates: textIds [1, n, L].
 */
export function pairBatch(images: { data: Float32Array; shape: readonly [number, number, number, number] }, i: number, texts: TextBatch, start: number, n: number, backend?: string): Batch {
  const [, C, H, W] = images.shape;
  const [N, L] = texts.shape;
  if (start < 0 || start + n > N) throw new Error(`batch: captions ${start}..${start + n} out of range (${N})`);
  const img = images.data.slice(i * C * H * W, (i + 1) * C * H * W);
  const ids = Int32Array.from(texts.ids.subarray(start * L, (start + n) * L));
  const mask = Float32Array.from(texts.mask.subarray(start * L, (start + n) * L));
  return {
    textIds: tensor(ids, [1, n, L], { dtype: 'int32', ...opts(backend) }),
    textMasks: tensor(mask, [1, n, L], opts(backend)),
    image: tensor(img, [1, C, H, W], opts(backend)),
  };
}

/**
 * The ITM sub-batch of an F30K training batch (§4.3): text = the item's own caption [B, L]; image = the item's
 * own image where itmLabels[b] = 1, its drawn other image (falseImages[0]) where 0; labels int32 [B].
 */
export function itmBatch(b: TaskBatch, backend?: string, trim = false): Batch {
  const own = b.images[0], other = b.falseImages?.[0], labels = b.itmLabels;
  if (!other || !labels) throw new Error('batch: an ITM sub-batch needs falseImages and itmLabels (drawFalseImage = 1)');
  const [B, C, H, W] = own.shape;
  if (other.shape.join() !== own.shape.join()) throw new Error(`batch: false images [${other.shape}] and images [${own.shape}] must share one padded shape`);
  if (labels.length !== B) throw new Error(`batch: ${labels.length} ITM labels for a batch of ${B}`);
  const n = C * H * W;
  const data = new Float32Array(B * n);
  for (let i = 0; i < B; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new Error(`batch: ITM label ${i} is ${labels[i]}, expected 0 or 1`);
    data.set((labels[i] ? own : other).data.subarray(i * n, (i + 1) * n), i * n);
  }
  const t = textTensors(trim ? trimTextPadding(b.text) : b.text, backend);
  return {
    textIds: t.ids, textMasks: t.mask,
    image: tensor(data, [B, C, H, W], opts(backend)), // [B, 3, H, W]
    labels: tensor(Int32Array.from(labels), [B], { dtype: 'int32', ...opts(backend) }),
  };
}
