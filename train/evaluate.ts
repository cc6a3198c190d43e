// Evaluation of a VLModel on task batches (apt-spec §4): VQA score on a labelled split, NLVR2 accuracy routed by
// source table (nlvr2_dev -> dev, nlvr2_test1 -> test, any other table under its own name), and F30K retrieval
// recall (TR@K, IR@K, K = 1, 5, 10) by scoring EVERY (image, caption) pair of the split, as compute_irtr_recall,
// and VQA test predictions ([{question_id, answer}], argmax -> id2answer, unknown id -> "unknown") with their
// atomic JSON writer (the reference's vqa_submit file).
// Retrieval splits the forward at the backbone's embed() / forwardTokens() seam (models/backbone.ts): the image
// tokens of each image are computed ONCE (the reference ViLT reuses its image embedding the same way) and the text
// tokens of each caption chunk once for the whole split (or per image when they exceed `textCacheFloats`); only
// forwardTokens (the fusion, where every method acts) runs per (image, chunk), on the text columns up to the split's
// longest caption (train/batch.ts trimTextPadding: exact). `reuseEmbeddings: false` keeps the
// plain full forward per pair (the reference path the tests compare against).
// Does not: spread work over devices, or compute the official VQA accuracy.
// Invariants: every forward runs under noGrad inside a scope with the model in eval mode (restored afterwards);
// metrics are exact sums over samples (train/metrics.ts); the retrieval image set is the split's unique rows, each
// image taken unpadded from the batch it first appears in; embedding reuse relies on embed() computing text and
// image tokens independently of each other (true of ViLT and METER: an image tensor of batch 1 serves any number
// of captions), so it gives the same scores as the full forward up to float summation order.
import { noGrad, scope, tensor, type Tensor } from '../engine/index.ts';
import type { TokenInput, VLModel } from '../models/index.ts';
import type { TaskBatch } from '../data/task-batches.ts';
import type { TextBatch } from '../data/collate.ts';
import { pairBatch, toModelBatch } from './batch.ts';
import { KeyedMean, MeanMetric, accuracySum, argmaxRows, retrievalRecall, vqaScoreSum } from './metrics.ts';
import { textTensors, imageTensor, trimTextPadding } from './batch.ts';
import { writeFileAtomicSync } from '../data/formats/atomic.ts';

async function inEvalMode<R>(model: VLModel, fn: () => Promise<R>): Promise<R> {
  const was = model.backbone.training;
  model.eval();
  try { return await fn(); } finally { model.train(was); }
}

/**
 * VQA score (training definition, soft score of the argmax answer) over a labelled split; with `types` (question id
 * -> question type, TaskDataset.questionTypes: the synthetic tables' question_types column) also the score and count
 * of each type as `<type>_vqa_score` / `<type>_count` (a question without a type counts only in the total).
 */
export async function evaluateVqa(model: VLModel, batches: AsyncIterable<TaskBatch>, types?: ReadonlyMap<number, string> | null): Promise<{ vqa_score: number; count: number } & Record<string, number>> {
  if (model.task !== 'vqa') throw new Error(`evaluateVqa: the model's task is ${model.task}`);
  const m = new MeanMetric();
  const per = new KeyedMean();
  await inEvalMode(model, async () => {
    for await (const tb of batches) {
      const r = noGrad(() => scope(() => {
        const b = toModelBatch(tb, 'vqa');
        const lg = model.forward(b).logits;
        return { logits: lg.toArray(), targets: b.vqaTargets!.toArray(), B: lg.shape[0], C: lg.shape[1] };
      }));
      m.add(vqaScoreSum(r.logits, r.targets, r.B, r.C));
      if (!types) continue;
      for (let i = 0; i < r.B; i++) {
        const key = types.get(tb.vqa!.questionIds[i]);
        if (key !== undefined) per.add(key, vqaScoreSum(r.logits.subarray(i * r.C, (i + 1) * r.C), r.targets.subarray(i * r.C, (i + 1) * r.C), 1, r.C));
      }
    }
  });
  return { vqa_score: m.value, count: m.count, ...per.record('vqa_score') };
}

export function nlvr2Route(table: string): string {
  return table === 'nlvr2_dev' ? 'dev' : table === 'nlvr2_test1' ? 'test' : table;
}

/** NLVR2 accuracy overall and per routed table (dev / test). */
export async function evaluateNlvr2(model: VLModel, batches: AsyncIterable<TaskBatch>): Promise<Record<string, number>> {
  if (model.task !== 'nlvr2') throw new Error(`evaluateNlvr2: the model's task is ${model.task}`);
  const all = new MeanMetric();
  const per = new KeyedMean();
  await inEvalMode(model, async () => {
    for await (const tb of batches) {
      const pred = noGrad(() => scope(() => {
        const b = toModelBatch(tb, 'nlvr2');
        const lg = model.forward(b).logits;
        return { logits: lg.toArray(), C: lg.shape[1] };
      }));
      const labels = tb.nlvr2!.labels;
      for (let i = 0; i < labels.length; i++) {
        const r = accuracySum(pred.logits.subarray(i * pred.C, (i + 1) * pred.C), labels.subarray(i, i + 1), pred.C);
        all.add(r);
        per.add(nlvr2Route(tb.tableNames[i]), r);
      }
    }
  });
  return { accuracy: all.value, count: all.count, ...per.record('accuracy') };
}

export interface RetrievalOptions {
  /** captions per forward (default 64, the reference's text batch) */
  textChunk?: number;
  /** reuse image and text tokens across pairs (default true); false = full forward per (image, chunk) */
  reuseEmbeddings?: boolean;
  /** cache every caption chunk's text tokens when N x L x D <= this many floats (default 2^27 = 512 MB) */
  textCacheFloats?: number;
}

export interface RetrievalScores {
  scores: Float32Array; // [images, texts]
  imageIds: string[];
  textImageIds: string[];
}

/**
 * Scores of every (image, caption) pair of a split: collects the images (unique rows) and captions from `batches`
 * (un-shuffled, no negatives) and scores them with rank_output in caption chunks of `textChunk`.
 */
export async function retrievalScores(model: VLModel, batches: AsyncIterable<TaskBatch>, opts: RetrievalOptions = {}): Promise<RetrievalScores> {
  if (model.task !== 'irtr') throw new Error(`evaluateRetrieval: the model's task is ${model.task}`);
  const chunk = opts.textChunk ?? 64;
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new Error(`evaluateRetrieval: textChunk must be a positive integer, got ${chunk}`);
  const images: { data: Float32Array; shape: [number, number, number] }[] = [];
  const imageIds: string[] = [];
  const seen = new Map<string, number>();
  const encs: { ids: Int32Array; mask: Int32Array }[] = [];
  const textImageIds: string[] = [];
  for await (const tb of batches) {
    const ib = tb.images[0];
    const [, C, H, W] = ib.shape;
    const [B, L] = tb.text.shape;
    for (let b = 0; b < B; b++) {
      const id = tb.f30k!.imageIds[b];
      if (!seen.has(id)) {
        const { height: h, width: w } = ib.sizes[b];
        const data = new Float32Array(C * h * w);
        for (let c = 0; c < C; c++) for (let y = 0; y < h; y++) {
          const src = ((b * C + c) * H + y) * W;
          data.set(ib.data.subarray(src, src + w), (c * h + y) * w);
        }
        seen.set(id, images.length);
        images.push({ data, shape: [C, h, w] });
        imageIds.push(id);
      }
      encs.push({ ids: tb.text.ids.slice(b * L, (b + 1) * L), mask: tb.text.mask.slice(b * L, (b + 1) * L) });
      textImageIds.push(id);
    }
  }
  if (!images.length) throw new Error('evaluateRetrieval: the split yielded no items');
  const L = Math.max(...encs.map((e) => e.ids.length));
  const N = encs.length;
  const texts: TextBatch = { ids: new Int32Array(N * L), mask: new Int32Array(N * L), shape: [N, L] };
  encs.forEach((e, i) => { texts.ids.set(e.ids, i * L); texts.mask.set(e.mask, i * L); });
  const scores = new Float32Array(images.length * N); // [images, texts]
  const one = (im: (typeof images)[number]) => ({ data: im.data, shape: [1, ...im.shape] as [number, number, number, number] });
  await inEvalMode(model, async () => {
    if (opts.reuseEmbeddings === false) {
      images.forEach((im, i) => {
        for (let s = 0; s < N; s += chunk) {
          const n = Math.min(chunk, N - s);
          const row = noGrad(() => scope(() => model.forward(pairBatch(one(im), 0, texts, s, n)).logits.toArray())); // [1, n]
          scores.set(row, i * N + s);
        }
      });
    } else {
      noGrad(() => scope(() => reusedScores(model, images.map(one), texts, chunk, opts.textCacheFloats ?? 2 ** 27, scores), 'eval-retrieval'));
    }
  });
  return { scores, imageIds, textImageIds };
}

/** The embedding-reuse scoring of retrievalScores (runs inside its noGrad scope); fills scores [images, texts]. */
function reusedScores(model: VLModel, images: { data: Float32Array; shape: readonly [number, number, number, number] }[], padded: TextBatch, chunk: number, cacheFloats: number, scores: Float32Array): void {
  // the split's trailing all-pad columns dropped (exact); one width for every chunk, so equal captions score equal
  // bit for bit wherever they sit (duplicate captions tie, and the tie breaks by index as in the padded forward)
  const texts = trimTextPadding(padded);
  const bb = model.backbone;
  const rank = bb.child('rank_output') as unknown as { forward(x: Tensor): Tensor };
  const [N, L] = texts.shape;
  const rows = (s: number, n: number): TextBatch => ({ ids: texts.ids.subarray(s * L, (s + n) * L), mask: texts.mask.subarray(s * L, (s + n) * L), shape: [n, L] });
  const textTokens = (s: number, n: number, image: Tensor) => {
    const t = textTensors(rows(s, n));
    const e = bb.embed({ textIds: t.ids, textMasks: t.mask, image, imageTypeIdx: 1 }); // text [n, L, D]; image part unused
    return { s, n, text: e.text, mask: e.textMask };
  };
  const starts: number[] = [];
  for (let s = 0; s < N; s += chunk) starts.push(s);
  const cache = N * L * bb.hidden <= cacheFloats;
  const cached = cache ? scope(() => {
    const probe = tensor(images[0].data, [...images[0].shape]); // [1, 3, H, W]
    return starts.map((s) => scope(() => textTokens(s, Math.min(chunk, N - s), probe)));
  }, 'eval-text-tokens') : null;
  images.forEach((im, i) => scope(() => {
    const img = tensor(im.data, [...im.shape]); // [1, 3, H, W]
    const t0 = textTensors(rows(0, 1)); // any caption: only the image tokens are used
    const e = bb.embed({ textIds: t0.ids, textMasks: t0.mask, image: img, imageTypeIdx: 1 });
    const [, Li, D] = e.image.shape; // image tokens [1, Li, D], computed once per image
    starts.forEach((s, k) => {
      const row = scope(() => {
        const c = cached ? cached[k] : textTokens(s, Math.min(chunk, N - s), img);
        const tok: TokenInput = {
          text: c.text, image: e.image.expand([c.n, Li, D]), textMask: c.mask,
          imageMask: e.imageMask ? Array.from({ length: c.n }, () => e.imageMask![0]) : null,
        };
        return rank.forward(bb.forwardTokens(tok).clsFeats).toArray(); // [n, 1]
      });
      scores.set(row, i * N + s);
    });
  }, 'eval-image'));
}

/**
 * F30K recall (compute_irtr_recall) over retrievalScores: tr_r1/5/10, ir_r1/5/10 and the set sizes.
 */
export async function evaluateRetrieval(model: VLModel, batches: AsyncIterable<TaskBatch>, opts: RetrievalOptions = {}): Promise<Record<string, number>> {
  const { scores, imageIds, textImageIds } = await retrievalScores(model, batches, opts);
  const r = retrievalRecall(scores, imageIds, textImageIds, [1, 5, 10]);
  return {
    tr_r1: r.tr[1], tr_r5: r.tr[5], tr_r10: r.tr[10], ir_r1: r.ir[1], ir_r5: r.ir[5], ir_r10: r.ir[10],
    images: imageIds.length, texts: textImageIds.length,
  };
}

export interface VqaPrediction { question_id: number; answer: string }

/**
 * VQA predictions of a split (labelled or test): per question the argmax answer id -> id2answer (the caller's
 * vocabulary maps an unknown id to "unknown"), in batch order, as the reference's vqa_submit entries.
 */
export async function predictVqa(model: VLModel, batches: AsyncIterable<TaskBatch>, id2answer: (id: number) => string): Promise<VqaPrediction[]> {
  if (model.task !== 'vqa') throw new Error(`predictVqa: the model's task is ${model.task}`);
  const out: VqaPrediction[] = [];
  await inEvalMode(model, async () => {
    for await (const tb of batches) {
      if (!tb.vqa) throw new Error(`predictVqa: a ${tb.task} batch has no VQA question ids`);
      const best = noGrad(() => scope(() => {
        const t = textTensors(tb.text);
        const lg = model.forward({ textIds: t.ids, textMasks: t.mask, image: imageTensor(tb.images[0]) }).logits; // [B, C]
        return argmaxRows(lg.toArray(), lg.shape[0], lg.shape[1]);
      }));
      best.forEach((id, b) => out.push({ question_id: tb.vqa!.questionIds[b], answer: id2answer(id) }));
    }
  });
  return out;
}

/** Writes `[{question_id, answer}, ...]` JSON atomically (temp file + rename). */
export function writeVqaSubmission(file: string, preds: readonly VqaPrediction[]): void {
  for (const [i, p] of preds.entries()) {
    if (!Number.isFinite(p.question_id) || typeof p.answer !== 'string') throw new Error(`writeVqaSubmission: entry ${i} is not {question_id: number, answer: string}`);
  }
  writeFileAtomicSync(file, JSON.stringify(preds.map((p) => ({ question_id: p.question_id, answer: p.answer }))));
}
