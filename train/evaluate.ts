// Evaluation of a VLModel on task batches (apt-spec §4): VQA score on a labelled split, NLVR2 accuracy routed by
// source table (nlvr2_dev -> dev, nlvr2_test1 -> test, any other table under its own name), and F30K retrieval
// recall (TR@K, IR@K, K = 1, 5, 10) by scoring EVERY (image, caption) pair of the split, as compute_irtr_recall.
// Does not: write VQA submission files, spread work over devices, or reuse a per-image embedding (the reference
// ViLT does; the full pairwise scoring here is fine for small sets and quadratic in the split size).
// Invariants: every forward runs under noGrad inside a scope with the model in eval mode (restored afterwards);
// metrics are exact sums over samples (train/metrics.ts); the retrieval image set is the split's unique rows, each
// image taken unpadded from the batch it first appears in.
import { noGrad, scope } from '../engine/index.ts';
import type { VLModel } from '../models/index.ts';
import type { TaskBatch } from './data/task-batches.ts';
import type { TextBatch } from './data/collate.ts';
import { pairBatch, toModelBatch } from './batch.ts';
import { MeanMetric, accuracySum, retrievalRecall, vqaScoreSum } from './metrics.ts';

async function inEvalMode<R>(model: VLModel, fn: () => Promise<R>): Promise<R> {
  const was = model.backbone.training;
  model.eval();
  try { return await fn(); } finally { model.train(was); }
}

/** VQA score (training definition, soft score of the argmax answer) over a labelled split. */
export async function evaluateVqa(model: VLModel, batches: AsyncIterable<TaskBatch>): Promise<{ vqa_score: number; count: number }> {
  if (model.task !== 'vqa') throw new Error(`evaluateVqa: the model's task is ${model.task}`);
  const m = new MeanMetric();
  await inEvalMode(model, async () => {
    for await (const tb of batches) {
      m.add(noGrad(() => scope(() => {
        const b = toModelBatch(tb, 'vqa');
        const lg = model.forward(b).logits;
        return vqaScoreSum(lg.toArray(), b.vqaTargets!.toArray(), lg.shape[0], lg.shape[1]);
      })));
    }
  });
  return { vqa_score: m.value, count: m.count };
}

export function nlvr2Route(table: string): string {
  return table === 'nlvr2_dev' ? 'dev' : table === 'nlvr2_test1' ? 'test' : table;
}

/** NLVR2 accuracy overall and per routed table (dev / test). */
export async function evaluateNlvr2(model: VLModel, batches: AsyncIterable<TaskBatch>): Promise<Record<string, number>> {
  if (model.task !== 'nlvr2') throw new Error(`evaluateNlvr2: the model's task is ${model.task}`);
  const all = new MeanMetric();
  const per = new Map<string, MeanMetric>();
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
        const key = nlvr2Route(tb.tableNames[i]);
        if (!per.has(key)) per.set(key, new MeanMetric());
        per.get(key)!.add(r);
      }
    }
  });
  const out: Record<string, number> = { accuracy: all.value, count: all.count };
  for (const [k, m] of per) { out[`${k}_accuracy`] = m.value; out[`${k}_count`] = m.count; }
  return out;
}

/**
 * F30K recall: collects the split's images (unique rows) and captions from `batches` (un-shuffled, no negatives),
 * scores every (image, caption) pair with rank_output in caption chunks of `textChunk`, and applies
 * compute_irtr_recall. Returns tr_r1/5/10, ir_r1/5/10 and the set sizes.
 */
export async function evaluateRetrieval(model: VLModel, batches: AsyncIterable<TaskBatch>, opts: { textChunk?: number } = {}): Promise<Record<string, number>> {
  if (model.task !== 'irtr') throw new Error(`evaluateRetrieval: the model's task is ${model.task}`);
  const chunk = opts.textChunk ?? 64;
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
  await inEvalMode(model, async () => {
    images.forEach((im, i) => {
      const one = { data: im.data, shape: [1, ...im.shape] as [number, number, number, number] };
      for (let s = 0; s < N; s += chunk) {
        const n = Math.min(chunk, N - s);
        const row = noGrad(() => scope(() => model.forward(pairBatch(one, 0, texts, s, n)).logits.toArray())); // [1, n]
        scores.set(row, i * N + s);
      }
    });
  });
  const r = retrievalRecall(scores, imageIds, textImageIds, [1, 5, 10]);
  return {
    tr_r1: r.tr[1], tr_r5: r.tr[5], tr_r10: r.tr[10], ir_r1: r.ir[1], ir_r5: r.ir[5], ir_r10: r.ir[10],
    images: images.length, texts: N,
  };
}
