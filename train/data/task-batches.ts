// Task batches (apt-spec §4, §5.3, §5.4): a TaskDataset (tasks.ts) -> DataLoader (loader.ts) whose batches carry
// everything one training/eval step of a task needs, as plain typed arrays plus shapes:
//   images: one ImageBatch per image column (NLVR2: image_0 and image_1 padded to ONE shared size, as the
//     reference collate pads every image key of a batch to the max over all of them);
//   text: the item's text, ViLT-prefixed ("Does the images satisfy the description:" + text, no space) for
//     ViLT and not for METER, truncated and padded to max_length (40 ViLT; METER 50 VQA/NLVR2, 40 F30K);
//   falseTexts: F30K training draws `drawFalseText` (15) captions uniformly from the whole caption corpus
//     (the reference's index_mapper, own caption not excluded), NOT prefixed and NOT padded by the tokenizer;
//   every text batch of a step is collated into a zero-filled [B, L] array with one shared L (the reference
//     pads all text keys together through its MLM collator), attention mask from the tokenizer;
//   vqa: dense soft targets [B, numClasses] (0 except target[label] = score), with labels, scores, question ids;
//   nlvr2: labels [B] (True -> 1); f30k: image ids.
// Deliberately not here: tensors (the trainer wraps the arrays), MLM masking (unused in fine-tuning), ITM false
// images (METER's extra ITM loss; the trainer can draw them through `dataset.get`), the model's patch selection.
// Invariants: a batch is a pure function of (dataset, options, seed, epoch), whatever the concurrency: negatives
// come from a stream derived from the item seed (independent of the RandAugment draws, which use the item seed
// itself); a bad image is named by table file, column and LOCAL row, and with skipBadImages the item is dropped
// from its batch with one warning.
import {
  DataLoader, imageItemOf, imageProcessor, type ImageWorkerPool, type LoaderOptions, type ProcessContext, type SamplerOptions,
} from './loader.ts';
import { collateImages, collateTexts, maxImageSize, type ImageBatch, type TextBatch } from './collate.ts';
import type { ImageTensor, ImageTransform, Normalization, Resampler } from './images.ts';
import type { RandAugment } from './randaugment.ts';
import { targetMatrix } from './vqa.ts';
import { createRng, mixSeed } from './rng.ts';
import type { F30kItem, ModelFamily, Nlvr2Item, TaskDataset, TaskItem, VqaItem } from './tasks.ts';
import { VILT_TEXT_PREFIX, maxTextLength, type Encoding, type Tokenizer } from '../tokenizers/index.ts';

export interface TaskBatchOptions {
  model: ModelFamily;
  tokenizer: Tokenizer;
  /** pixelbert (ViLT) or clip (METER) transform. */
  transform: ImageTransform;
  /** RandAugment for training (null / absent: none). */
  augment?: RandAugment | null;
  /** Patch size of the patch mask (default 32 for pixelbert, 16 for clip). */
  patchSize?: number;
  /** Text max length incl. specials (default maxTextLength(model, task)). */
  maxLength?: number;
  /** Prefix of every positive text (default: the ViLT prefix for vilt, none for meter). */
  textPrefix?: string;
  /** Negative captions per item (default 15 for F30K train, else 0; spec draw_false_text). */
  drawFalseText?: number;
  /** VQA classes; required for VQA tables that carry labels (e.g. loadVqaVocab(...).numClasses). */
  numClasses?: number;
  normalization?: Normalization;
  resample?: Resampler;
  pool?: ImageWorkerPool;
}

export interface TaskLoaderOptions extends TaskBatchOptions, SamplerOptions,
  Pick<LoaderOptions<TaskItem, TaskSample, TaskBatch>, 'concurrency' | 'prefetch' | 'skipBadImages' | 'warn'> {}

/** A text batch with the raw strings it encodes. */
export interface TextBatchWithStrings extends TextBatch {
  texts: string[];
}

export interface TaskBatch {
  task: TaskDataset['task'];
  /** Dataset item indices in batch order (bad items skipped). */
  indices: number[];
  /** Source table name of each item (NLVR2 dev vs test1 routing). */
  tableNames: string[];
  images: ImageBatch[]; // per image column: data [B, 3, H, W]
  text: TextBatchWithStrings; // ids, mask [B, L]
  falseTexts: TextBatchWithStrings[]; // each [B, L] (same L as text)
  vqa?: { targets: Float32Array; numClasses: number; labels: number[][]; scores: number[][]; questionIds: number[]; answers: string[][] }; // targets [B, C]
  nlvr2?: { labels: Int32Array }; // [B]
  f30k?: { imageIds: string[] };
}

/** One processed item (before collation). */
export interface TaskSample {
  item: TaskItem;
  images: ImageTensor[];
  text: Encoding;
  textString: string;
  falseTexts: { text: string; encoding: Encoding }[];
}

const FALSE_TEXT_STREAM = 0xfa15e;

/** The per-item `process` and batch `collate` of a task, for DataLoader. */
export function taskBatchFunctions(dataset: TaskDataset, o: TaskBatchOptions): {
  process: (item: TaskItem, ctx: ProcessContext) => Promise<TaskSample>;
  collate: (samples: TaskSample[], indices: number[]) => TaskBatch;
} {
  const task = dataset.task;
  const maxLength = o.maxLength ?? maxTextLength(o.model, task);
  const prefix = o.textPrefix ?? (o.model === 'vilt' ? VILT_TEXT_PREFIX : '');
  const nFalse = o.drawFalseText ?? (task === 'f30k' && dataset.split === 'train' ? 15 : 0);
  if (!(Number.isInteger(nFalse) && nFalse >= 0)) throw new Error(`task batches: drawFalseText must be a non-negative integer, got ${nFalse}`);
  const hasVqaLabels = task === 'vqa' && !dataset.isTest;
  if (hasVqaLabels && !(Number.isInteger(o.numClasses) && o.numClasses! > 0)) {
    throw new Error(`task batches: VQA ${dataset.split} batches need numClasses (the answer vocabulary size, e.g. loadVqaVocab)`);
  }
  const corpus = nFalse > 0 ? dataset.corpus() : [];
  const patchSize = o.patchSize ?? (o.transform.kind === 'pixelbert' ? 32 : 16);
  const images = imageProcessor(o.transform, o.augment ?? null, { normalization: o.normalization, resample: o.resample, pool: o.pool });

  const process = async (item: TaskItem, ctx: ProcessContext): Promise<TaskSample> => {
    const { table, local } = dataset.data.locate(item.row);
    const imageItem = imageItemOf(item, { file: table.file, row: local });
    const tensors = await images(imageItem, ctx);
    const textString = prefix + item.text;
    const text = o.tokenizer.encode(textString, { maxLength, truncation: true, padding: 'max_length' });
    const falseTexts: TaskSample['falseTexts'] = [];
    const draw = createRng(mixSeed(ctx.seed, FALSE_TEXT_STREAM)); // not ctx.rng: RandAugment draws from the item seed too
    for (let k = 0; k < nFalse; k++) {
      const t = corpus[Math.floor(draw.next() * corpus.length)];
      falseTexts.push({ text: t, encoding: o.tokenizer.encode(t, { maxLength, truncation: true }) });
    }
    return { item, images: tensors, text, textString, falseTexts };
  };

  const collate = (samples: TaskSample[], indices: number[]): TaskBatch => {
    const nImages = samples[0].images.length;
    const lists = Array.from({ length: nImages }, (_, c) => samples.map((s) => s.images[c]));
    const padTo = maxImageSize(...lists);
    let L = 0;
    for (const s of samples) {
      L = Math.max(L, s.text.ids.length);
      for (const f of s.falseTexts) L = Math.max(L, f.encoding.ids.length);
    }
    const batch: TaskBatch = {
      task, indices, tableNames: samples.map((s) => s.item.tableName),
      images: lists.map((l) => collateImages(l, patchSize, { padTo })),
      text: { ...collateTexts(samples.map((s) => s.text), { length: L }), texts: samples.map((s) => s.textString) },
      falseTexts: Array.from({ length: nFalse }, (_, k) => ({
        ...collateTexts(samples.map((s) => s.falseTexts[k].encoding), { length: L }),
        texts: samples.map((s) => s.falseTexts[k].text),
      })),
    };
    if (task === 'vqa') {
      const its = samples.map((s) => s.item as VqaItem);
      const labels = its.map((x) => x.labels), scores = its.map((x) => x.scores);
      let targets: Float32Array = new Float32Array(0);
      if (hasVqaLabels) {
        try { targets = targetMatrix(labels, scores, o.numClasses!); } catch (e) {
          const bad = its.find((x) => x.labels.some((l) => !(Number.isInteger(l) && l >= 0 && l < o.numClasses!)));
          throw new Error(`${bad ? `${bad.tableName} row ${bad.row} question ${bad.textIndex}: ` : ''}${(e as Error).message}`);
        }
      }
      batch.vqa = { targets, numClasses: o.numClasses ?? 0, labels, scores, questionIds: its.map((x) => x.questionId), answers: its.map((x) => x.answers) };
    } else if (task === 'nlvr2') {
      batch.nlvr2 = { labels: Int32Array.from(samples, (s) => (s.item as Nlvr2Item).label) };
    } else {
      batch.f30k = { imageIds: samples.map((s) => (s.item as F30kItem).imageId) };
    }
    return batch;
  };
  return { process, collate };
}

/** A DataLoader over a task dataset yielding TaskBatch (see the file comment). */
export function taskLoader(dataset: TaskDataset, o: TaskLoaderOptions): DataLoader<TaskItem, TaskSample, TaskBatch> {
  const { process, collate } = taskBatchFunctions(dataset, o);
  return new DataLoader<TaskItem, TaskSample, TaskBatch>({
    source: dataset, process, collate,
    batchSize: o.batchSize, shuffle: o.shuffle, seed: o.seed, dropLast: o.dropLast,
    concurrency: o.concurrency, prefetch: o.prefetch, skipBadImages: o.skipBadImages, warn: o.warn,
  });
}
