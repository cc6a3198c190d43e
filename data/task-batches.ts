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
//   nlvr2: labels [B] (True -> 1); f30k: image ids;
//   falseImages / itmLabels (only with drawFalseImage > 0, METER's F30K ITM loss, §4.3): per item a random OTHER
//     image drawn uniformly over the items (the reference's get_false_image over index_mapper; we redraw when it
//     hits the item's own row), transformed (and augmented) like the item's own image and padded to the batch's
//     shared size; itmLabels [B] = floor(B/2) ones and the rest zeros in a random order (1 = keep the own image).
// Deliberately not here: tensors (the trainer wraps the arrays; train/batch.ts builds the ITM sub-batch from
// falseImages + itmLabels), MLM masking (unused in fine-tuning), the model's patch selection.
// Invariants: a batch is a pure function of (dataset, options, seed, epoch), whatever the concurrency: negatives
// come from a stream derived from the item seed (independent of the RandAugment draws, which use the item seed
// itself; false images and ITM labels have their own derived streams, so turning them on changes no other
// draw); a bad image is named by table file, column and LOCAL row, and with skipBadImages the item is dropped
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
import { VILT_TEXT_PREFIX, maxTextLength, type Encoding, type Tokenizer } from './tokenizers/index.ts';

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
  /** Random other images per item for the ITM loss (0 or 1; default 0; spec draw_false_image). */
  drawFalseImage?: number;
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
  /** drawFalseImage > 0: one ImageBatch per draw, [B, 3, H, W] padded like `images` */
  falseImages?: ImageBatch[];
  /** drawFalseImage > 0: ITM labels [B], 1 = the item's own image, 0 = falseImages[0]; half ones, seeded order */
  itmLabels?: Int32Array;
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
  /** drawFalseImage > 0: the drawn other images */
  falseImages?: ImageTensor[];
  /** the item seed (ITM label order of a batch derives from its items' seeds) */
  seed?: number;
}

const FALSE_TEXT_STREAM = 0xfa15e;
const FALSE_IMAGE_STREAM = 0xfa151;
const ITM_LABEL_STREAM = 0x17a1;

/** ITM labels of a batch (§4.3): floor(B/2) ones then zeros, shuffled by a Fisher-Yates draw from `seed`. */
export function itmLabelOrder(batch: number, seed: number): Int32Array {
  const labels = new Int32Array(batch);
  labels.fill(1, 0, Math.floor(batch / 2));
  const rng = createRng(mixSeed(seed, ITM_LABEL_STREAM));
  for (let i = batch - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = labels[i]; labels[i] = labels[j]; labels[j] = t;
  }
  return labels;
}

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
  const nFalseImage = o.drawFalseImage ?? 0;
  if (nFalseImage !== 0 && nFalseImage !== 1) throw new Error(`task batches: drawFalseImage must be 0 or 1, got ${nFalseImage}`);
  if (nFalseImage > 0 && task === 'nlvr2') throw new Error('task batches: drawFalseImage needs a single-image task (vqa, f30k), not nlvr2');
  if (nFalseImage > 0 && dataset.data.numRows < 2) throw new Error(`task batches: drawFalseImage needs at least 2 images, the ${dataset.split} tables have ${dataset.data.numRows}`);
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
    const sample: TaskSample = { item, images: tensors, text, textString, falseTexts, seed: ctx.seed };
    if (nFalseImage > 0) {
      const pick = createRng(mixSeed(ctx.seed, FALSE_IMAGE_STREAM));
      let row = item.row;
      for (let tries = 0; row === item.row && tries < 64; tries++) row = dataset.data.item(Math.floor(pick.next() * dataset.length)).row;
      if (row === item.row) row = (item.row + 1) % dataset.data.numRows; // every item drawn was of this image: the next row
      const where = dataset.data.locate(row);
      const bytes = await dataset.data.image(row);
      sample.falseImages = await images({ images: [bytes], imageColumns: ['image'], row: where.local, file: where.table.file },
        { ...ctx, seed: mixSeed(ctx.seed, FALSE_IMAGE_STREAM, 1) });
    }
    return sample;
  };

  const collate = (samples: TaskSample[], indices: number[]): TaskBatch => {
    const nImages = samples[0].images.length;
    const lists = Array.from({ length: nImages }, (_, c) => samples.map((s) => s.images[c]));
    const falseLists = nFalseImage > 0 ? [samples.map((s) => s.falseImages![0])] : [];
    const padTo = maxImageSize(...lists, ...falseLists); // the reference pads every image key of a batch together
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
    if (nFalseImage > 0) {
      batch.falseImages = falseLists.map((l) => collateImages(l, patchSize, { padTo }));
      batch.itmLabels = itmLabelOrder(samples.length, mixSeed(...samples.map((s) => s.seed ?? 0)));
    }
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
