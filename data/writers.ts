// Writers that build the §5.1 Arrow tables from the raw datasets in their official formats, as the reference's
// write_vqa.py / write_nlvr2.py / write_f30k_karpathy.py do, so no Python is needed:
//   VQAv2:  <root>/v2_OpenEnded_mscoco_{train2014,val2014,test2015,test-dev2015}_questions.json,
//           <root>/v2_mscoco_{train2014,val2014}_annotations.json, images <root>/{train2014,val2014,test2015}/*.jpg
//   NLVR2:  <root>/nlvr2/data/{train,dev,test1}.json, .../balanced/balanced_{dev,test1}.json,
//           .../unbalanced/unbalanced_{dev,test1}.json (JSON lines); images <root>/images/train/<directory>/<id>-img{0,1}.png
//           for train, <root>/<split>/<id>-img{0,1}.png otherwise
//   F30K:   <root>/karpathy/dataset_flickr30k.json, images <root>/flickr30k-images/*.jpg
// Does not: decode or check images (bytes are copied as they are), download anything.
// Deviations from the reference (listed for the README): the image order is a *seeded* shuffle of the sorted file
// list (the reference's random.shuffle is unseeded); optional inputs (VQA test/test-dev questions, NLVR2 balanced/
// unbalanced files) are skipped with a log line when absent instead of crashing; a missing image named by an
// annotation is an error naming the file. Everything else (vocabulary, labels, quirks, splits) follows the
// reference, including trainable_val = val minus its last 1,000 rows and rest_val = those 1,000 rows.
// Invariants: each table is streamed in batches to a temporary file and renamed into place when complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArrowTableWriter, VQAV2_LAYOUT, NLVR2_LAYOUT, F30K_LAYOUT } from './formats/arrow.ts';
import { buildAnswerVocab, labelsAndScores, type AnswerVocab } from './vqa.ts';
import { Rng } from './rng.ts';

export interface WriterOptions {
  /** Seed of the image-order shuffle (default 0). */
  seed?: number;
  /** Progress / notice lines (default: silent). */
  log?: (msg: string) => void;
  /** Record-batch size bound in bytes of image data (default 32 MiB). */
  batchBytes?: number;
}

function readJson(file: string): unknown {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw new Error(`${file}: cannot read: ${(e as Error).message}`); }
  try { return JSON.parse(text); } catch (e) { throw new Error(`${file}: invalid JSON: ${(e as Error).message}`); }
}

function readJsonLines(file: string): Record<string, unknown>[] {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw new Error(`${file}: cannot read: ${(e as Error).message}`); }
  const out: Record<string, unknown>[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try { out.push(JSON.parse(line)); } catch (e) { throw new Error(`${file}: line ${i + 1}: invalid JSON: ${(e as Error).message}`); }
  });
  return out;
}

function field<T>(obj: unknown, key: string, kind: 'string' | 'number' | 'array' | 'object', where: string): T {
  const v = (obj as Record<string, unknown> | null)?.[key];
  const ok = kind === 'array' ? Array.isArray(v) : kind === 'object' ? (typeof v === 'object' && v !== null) : typeof v === kind;
  if (!ok) throw new Error(`${where}: field "${key}" missing or not a ${kind}`);
  return v as T;
}

function listImages(dir: string, ext: RegExp): string[] {
  let names: string[];
  try { names = fs.readdirSync(dir); } catch (e) { throw new Error(`${dir}: cannot list image folder: ${(e as Error).message}`); }
  return names.filter((n) => ext.test(n)).sort();
}

function readImage(file: string, what: string): Uint8Array {
  try { return fs.readFileSync(file); } catch (e) { throw new Error(`${file}: cannot read image (${what}): ${(e as Error).message}`); }
}

async function writeAll(writers: ArrowTableWriter[], body: () => Promise<void>): Promise<void> {
  try {
    await body();
    for (const w of writers) await w.close();
  } catch (e) {
    for (const w of writers) await w.abort();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// VQAv2

interface QEntry { question: string; labels?: number[]; scores?: number[] }

/** COCO image id from a file name like COCO_val2014_000000123456.jpg. */
export function cocoImageId(fileName: string): number {
  const last = fileName.split('_').pop() ?? '';
  const id = Number.parseInt(last.slice(0, -4), 10);
  if (!Number.isFinite(id)) throw new Error(`${fileName}: cannot parse a COCO image id from the file name`);
  return id;
}

export interface VqaWriteResult { vocab: AnswerVocab; rows: Record<string, number> }

/** Build vqav2_{train,val,trainable_val,rest_val,test,test-dev}.arrow from the official VQAv2 files. */
export async function writeVqaV2(root: string, outDir: string, opts: WriterOptions & { restValRows?: number; minAnswerCount?: number } = {}): Promise<VqaWriteResult> {
  const log = opts.log ?? (() => undefined);
  const qfile = (s: string) => path.join(root, `v2_OpenEnded_mscoco_${s}_questions.json`);
  const afile = (s: string) => path.join(root, `v2_mscoco_${s}_annotations.json`);
  const splits: { split: string; q: string; folder: string; required: boolean }[] = [
    { split: 'train', q: 'train2014', folder: 'train2014', required: true },
    { split: 'val', q: 'val2014', folder: 'val2014', required: true },
    { split: 'test', q: 'test2015', folder: 'test2015', required: false },
    { split: 'test-dev', q: 'test-dev2015', folder: 'test2015', required: false },
  ];
  const annotations = new Map<string, Map<number, Map<number, QEntry>>>();
  for (const s of splits) {
    const f = qfile(s.q);
    if (!s.required && !fs.existsSync(f)) { log(`${f} not found: skipping vqav2_${s.split}`); continue; }
    const qs = field<unknown[]>(readJson(f), 'questions', 'array', f);
    const byImage = new Map<number, Map<number, QEntry>>();
    qs.forEach((q, i) => {
      const where = `${f}: questions[${i}]`;
      const iid = field<number>(q, 'image_id', 'number', where);
      const qid = field<number>(q, 'question_id', 'number', where);
      const text = field<string>(q, 'question', 'string', where);
      let m = byImage.get(iid);
      if (!m) byImage.set(iid, (m = new Map()));
      m.set(qid, { question: text });
    });
    annotations.set(s.split, byImage);
  }
  const annots: Record<string, unknown[]> = {};
  for (const s of ['train2014', 'val2014']) annots[s] = field<unknown[]>(readJson(afile(s)), 'annotations', 'array', afile(s));

  const major: string[] = [];
  for (const s of ['train2014', 'val2014']) annots[s].forEach((a, i) => major.push(field<string>(a, 'multiple_choice_answer', 'string', `${afile(s)}: annotations[${i}]`)));
  const vocab = buildAnswerVocab(major, opts.minAnswerCount ?? 9);
  log(`answer vocabulary: ${vocab.label2ans.length} answers (count >= ${opts.minAnswerCount ?? 9})`);

  for (const [split, s] of [['train', 'train2014'], ['val', 'val2014']] as const) {
    const byImage = annotations.get(split)!;
    annots[s].forEach((a, i) => {
      const where = `${afile(s)}: annotations[${i}]`;
      const iid = field<number>(a, 'image_id', 'number', where);
      const qid = field<number>(a, 'question_id', 'number', where);
      const raw = field<unknown[]>(a, 'answers', 'array', where).map((x, j) => field<string>(x, 'answer', 'string', `${where}.answers[${j}]`));
      const e = byImage.get(iid)?.get(qid);
      if (!e) throw new Error(`${where}: question ${qid} of image ${iid} is not in ${qfile(s)}`);
      Object.assign(e, labelsAndScores(raw, vocab));
    });
    // drop questions without a label, then images without questions
    for (const [iid, qs] of byImage) {
      for (const [qid, e] of qs) if (!e.labels || e.labels.length === 0) qs.delete(qid);
      if (qs.size === 0) byImage.delete(iid);
    }
  }

  const rng = new Rng(opts.seed ?? 0);
  const rows: Record<string, number> = {};
  const restValRows = opts.restValRows ?? 1000;
  for (const s of splits) {
    const byImage = annotations.get(s.split);
    if (!byImage) continue;
    const folder = path.join(root, s.folder);
    const files = rng.fork(s.split).shuffle(listImages(folder, /\.jpg$/i)).filter((n) => byImage.has(cocoImageId(n)));
    log(`vqav2_${s.split}: ${files.length} images with questions (of ${byImage.size} annotated images)`);
    const isTest = s.split.startsWith('test');
    const mk = (name: string) => new ArrowTableWriter(path.join(outDir, `${name}.arrow`), VQAV2_LAYOUT.columns, { batchBytes: opts.batchBytes });
    const main = mk(`vqav2_${s.split}`);
    const extra = s.split === 'val' ? [mk('vqav2_trainable_val'), mk('vqav2_rest_val')] : [];
    await writeAll([main, ...extra], async () => {
      for (let r = 0; r < files.length; r++) {
        const iid = cocoImageId(files[r]);
        const qs = [...byImage.get(iid)!.entries()];
        const row = {
          image: readImage(path.join(folder, files[r]), `image ${iid}`),
          questions: qs.map(([, e]) => e.question),
          answers: isTest ? [] : qs.map(([, e]) => e.labels!.map((l) => vocab.label2ans[l])),
          answer_labels: isTest ? [] : qs.map(([, e]) => e.labels!),
          answer_scores: isTest ? [] : qs.map(([, e]) => e.scores!),
          image_id: iid,
          question_id: qs.map(([qid]) => qid),
          split: s.split,
        };
        await main.append(row);
        if (extra.length) await (r < files.length - restValRows ? extra[0] : extra[1]).append(row);
      }
    });
    rows[`vqav2_${s.split}`] = files.length;
    if (extra.length) {
      rows.vqav2_trainable_val = Math.max(0, files.length - restValRows);
      rows.vqav2_rest_val = Math.min(files.length, restValRows);
    }
  }
  return { vocab, rows };
}

// ---------------------------------------------------------------------------------------------------------------
// NLVR2

export const NLVR2_SPLITS = ['train', 'dev', 'test1', 'balanced_dev', 'balanced_test1', 'unbalanced_dev', 'unbalanced_test1'] as const;

/** Build nlvr2_{train,dev,test1,balanced_*,unbalanced_*}.arrow from the official NLVR2 JSON-lines files. */
export async function writeNlvr2(root: string, outDir: string, opts: WriterOptions = {}): Promise<Record<string, number>> {
  const log = opts.log ?? (() => undefined);
  const dataDir = path.join(root, 'nlvr2', 'data');
  const fileOf = (s: string) => s.startsWith('balanced') ? path.join(dataDir, 'balanced', `${s}.json`)
    : s.startsWith('unbalanced') ? path.join(dataDir, 'unbalanced', `${s}.json`) : path.join(dataDir, `${s}.json`);
  const rows: Record<string, number> = {};
  for (const split of NLVR2_SPLITS) {
    const f = fileOf(split);
    const required = split === 'train' || split === 'dev' || split === 'test1';
    if (!fs.existsSync(f)) {
      if (required) throw new Error(`${f}: NLVR2 file not found`);
      log(`${f} not found: skipping nlvr2_${split}`);
      continue;
    }
    const groups = new Map<string, Record<string, unknown>[]>();
    readJsonLines(f).forEach((r, i) => {
      const id = field<string>(r, 'identifier', 'string', `${f}: line ${i + 1}`);
      const key = id.split('-').slice(0, -1).join('-');
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(r);
    });
    const w = new ArrowTableWriter(path.join(outDir, `nlvr2_${split}.arrow`), NLVR2_LAYOUT.columns, { batchBytes: opts.batchBytes });
    await writeAll([w], async () => {
      for (const [iden, g] of groups) {
        const where = `${f}: identifier ${iden}`;
        const texts = g.map((r) => field<string>(r, 'sentence', 'string', where));
        const labels = g.map((r) => {
          const l = r.label;
          const s = typeof l === 'boolean' ? (l ? 'True' : 'False') : String(l);
          if (s !== 'True' && s !== 'False') throw new Error(`${where}: label ${JSON.stringify(l)} is not True/False`);
          return s;
        });
        const base = iden.startsWith('train')
          ? path.join(root, 'images', 'train', String(field<string | number>(g[0], 'directory', typeof g[0].directory === 'number' ? 'number' : 'string', where)), iden)
          : path.join(root, iden.split('-')[0], iden);
        await w.append({
          image_0: readImage(`${base}-img0.png`, where), image_1: readImage(`${base}-img1.png`, where),
          questions: texts, answers: labels, identifier: iden,
        });
      }
    });
    rows[`nlvr2_${split}`] = groups.size;
    log(`nlvr2_${split}: ${groups.size} image pairs`);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Flickr30k (Karpathy split)

/** Build f30k_caption_karpathy_{train,val,test}.arrow from dataset_flickr30k.json and the image folder. */
export async function writeF30kKarpathy(root: string, outDir: string, opts: WriterOptions = {}): Promise<Record<string, number>> {
  const log = opts.log ?? (() => undefined);
  const jf = path.join(root, 'karpathy', 'dataset_flickr30k.json');
  const images = field<unknown[]>(readJson(jf), 'images', 'array', jf);
  const captions = new Map<string, string[]>();
  const splitOf = new Map<string, string>();
  images.forEach((im, i) => {
    const where = `${jf}: images[${i}]`;
    const name = field<string>(im, 'filename', 'string', where);
    splitOf.set(name, field<string>(im, 'split', 'string', where));
    let c = captions.get(name);
    if (!c) captions.set(name, (c = []));
    field<unknown[]>(im, 'sentences', 'array', where).forEach((s, j) => c!.push(field<string>(s, 'raw', 'string', `${where}.sentences[${j}]`)));
  });
  const folder = path.join(root, 'flickr30k-images');
  const files = new Rng(opts.seed ?? 0).shuffle(listImages(folder, /\.jpg$/i)).filter((n) => captions.has(n));
  log(`f30k: ${files.length} images with captions (${captions.size} annotated)`);
  const writers = new Map<string, ArrowTableWriter>();
  const rows: Record<string, number> = {};
  for (const s of ['train', 'val', 'test']) {
    writers.set(s, new ArrowTableWriter(path.join(outDir, `f30k_caption_karpathy_${s}.arrow`), F30K_LAYOUT.columns, { batchBytes: opts.batchBytes }));
    rows[`f30k_caption_karpathy_${s}`] = 0;
  }
  await writeAll([...writers.values()], async () => {
    for (const name of files) {
      const split = splitOf.get(name)!;
      const w = writers.get(split);
      if (!w) continue; // the reference writes only train/val/test
      await w.append({ image: readImage(path.join(folder, name), name), caption: captions.get(name)!, image_id: name, split });
      rows[`f30k_caption_karpathy_${split}`]++;
    }
  });
  return rows;
}
