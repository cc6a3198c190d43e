// Table composition per task and split (apt-spec §5.2) and the dataset items of each task, enumerated as
// (row, text index) pairs exactly like the reference's index_mapper: one item per question / sentence / caption,
// rows in table order (tables concatenated in the listed order), texts in list order.
// Does not: decode or resize images (pass images.ts's decoder as `checkImage`; task-batches.ts runs the whole
// pipeline), tokenise, shuffle (callers pass an order), or depend on the engine.
// Invariants: every item names its source table (`tableName`) and global row; a missing table file, an empty
// table (any table of the train split; a whole split otherwise), a missing or mistyped column raise an Error naming file and column; F30K removes duplicate captions of an
// image keeping the first occurrence (the reference uses a Python set, whose order depends on the hash seed: the
// one deliberate deviation).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArrowTableReader, layoutForFile, asStringList, asNumberList, asNested, type LayoutSpec } from './formats/arrow.ts';
import { nlvr2Label, vocabFromLabelledAnswers } from './vqa.ts';

/** A bad image cell (null, empty, or rejected by the image checker); the message names table, column and row. */
export class BadImageError extends Error {
  constructor(message: string, readonly table: string, readonly column: string, readonly row: number) {
    super(message);
    this.name = 'BadImageError';
  }
}

export type ModelFamily = 'vilt' | 'meter';
export type TaskName = 'vqa' | 'nlvr2' | 'f30k';
export type Split = 'train' | 'val' | 'test';

/** Table names per model, task and split (spec §5.2). */
export const TASK_TABLES: Record<ModelFamily, Record<TaskName, Record<Split, readonly string[]>>> = {
  vilt: {
    vqa: { train: ['vqav2_train', 'vqav2_trainable_val'], val: ['vqav2_rest_val'], test: ['vqav2_test'] },
    nlvr2: { train: ['nlvr2_train'], val: ['nlvr2_dev', 'nlvr2_test1'], test: ['nlvr2_dev', 'nlvr2_test1'] },
    f30k: { train: ['f30k_caption_karpathy_train', 'f30k_caption_karpathy_val'], val: ['f30k_caption_karpathy_test'], test: ['f30k_caption_karpathy_test'] },
  },
  meter: {
    vqa: { train: ['vqav2_train', 'vqav2_val'], val: ['vqav2_val'], test: ['vqav2_test'] },
    nlvr2: { train: ['nlvr2_train'], val: ['nlvr2_dev', 'nlvr2_test1'], test: ['nlvr2_dev', 'nlvr2_test1'] },
    f30k: { train: ['f30k_caption_karpathy_train', 'f30k_caption_karpathy_val'], val: ['f30k_caption_karpathy_test'], test: ['f30k_caption_karpathy_test'] },
  },
};

export interface ComposeOptions {
  /** Remove duplicate texts within a row (F30K captions: true; VQA, NLVR2: false, as the reference). */
  removeDuplicate?: boolean;
  /** Byte budget of each table reader's small-column cache. */
  cacheBytes?: number;
  /** Refuse a table with no rows even when the split has other tables (the train split: never train on part of it silently). */
  requireRows?: boolean;
}

/** Several tables of one layout concatenated, with their items enumerated as (row, text index). */
export class ComposedTables {
  /** Global row -> (table, local row) via starts. */
  readonly rowStarts: number[];
  /** Texts per global row (deduplicated when requested). */
  readonly texts: string[][];
  /** items[2k] = global row, items[2k+1] = text index. */
  readonly items: Int32Array;

  private constructor(readonly tables: ArrowTableReader[], readonly layout: LayoutSpec, texts: string[][]) {
    this.rowStarts = [0];
    for (const t of tables) this.rowStarts.push(this.rowStarts[this.rowStarts.length - 1] + t.numRows);
    this.texts = texts;
    let n = 0;
    for (const ts of texts) n += ts.length;
    this.items = new Int32Array(2 * n);
    let k = 0;
    for (let r = 0; r < texts.length; r++) for (let j = 0; j < texts[r].length; j++) { this.items[k++] = r; this.items[k++] = j; }
  }

  /** Open `names` (without `.arrow`) from `dataDir`, validate them against their layout, read their text column. */
  static async open(dataDir: string, names: readonly string[], opts: ComposeOptions = {}): Promise<ComposedTables> {
    if (names.length === 0) throw new Error('ComposedTables.open: no table names given');
    const tables: ArrowTableReader[] = [];
    try {
      let layout: LayoutSpec | null = null;
      for (const name of names) {
        const file = path.join(dataDir, `${name}.arrow`);
        if (!fs.existsSync(file)) throw new Error(`${file}: table not found (needed: ${names.map((n) => n + '.arrow').join(', ')} in ${dataDir})`);
        const l = layoutForFile(file);
        if (layout && l !== layout) throw new Error(`${file}: layout ${l.name} differs from ${layout.name} of the other tables`);
        layout = l;
        const t = await ArrowTableReader.open(file, { layout: l, cacheBytes: opts.cacheBytes, allowEmpty: names.length > 1 });
        tables.push(t);
        if (opts.requireRows && t.numRows === 0) throw new Error(`${file}: table is empty (0 rows); the split reads ${names.map((n) => n + '.arrow').join(' + ')} and needs rows in each`);
      }
      if (tables.every((t) => t.numRows === 0)) throw new Error(`${tables.map((t) => t.file).join(' + ')}: every table is empty (0 rows)`);
      const texts: string[][] = [];
      for (const t of tables) {
        const col = await t.columnValues(layout!.textColumn);
        col.forEach((v, r) => {
          let ts = asStringList(v, t.file, layout!.textColumn, r);
          if (opts.removeDuplicate) ts = [...new Set(ts)];
          texts.push(ts);
        });
      }
      const composed = new ComposedTables(tables, layout!, texts);
      if (composed.length === 0) throw new Error(`${tables.map((t) => t.file).join(' + ')}: no items (every "${layout!.textColumn}" list is empty)`);
      return composed;
    } catch (e) {
      for (const t of tables) await t.close().catch(() => undefined);
      throw e;
    }
  }

  get numRows(): number { return this.texts.length; }
  get length(): number { return this.items.length / 2; }

  /** (global row, text index) of item i. */
  item(i: number): { row: number; textIndex: number } {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new Error(`item ${i} out of range (${this.length} items in ${this.tables.map((t) => t.name).join(' + ')})`);
    return { row: this.items[2 * i], textIndex: this.items[2 * i + 1] };
  }

  /** Table reader and local row of a global row. */
  locate(row: number): { table: ArrowTableReader; local: number } {
    if (!Number.isInteger(row) || row < 0 || row >= this.numRows) throw new Error(`row ${row} out of range (${this.numRows} rows)`);
    let t = 0;
    while (this.rowStarts[t + 1] <= row) t++;
    return { table: this.tables[t], local: row - this.rowStarts[t] };
  }

  /** Source table name of a global row. */
  tableName(row: number): string { return this.locate(row).table.name; }

  /** Every text in item order (the corpus false captions are drawn from). */
  corpus(): string[] { return this.texts.flat(); }

  async cell(row: number, column: string): Promise<unknown> {
    const { table, local } = this.locate(row);
    return table.cell(local, column);
  }

  /** Image bytes of a row; a null cell is an error naming table, column and row. */
  async image(row: number, column = this.layout.imageColumns[0]): Promise<Uint8Array> {
    const { table, local } = this.locate(row);
    const v = await table.binaryCell(local, column);
    if (!v || v.length === 0) throw new BadImageError(`${table.file}: column "${column}" row ${local}: empty or null image`, table.file, column, local);
    return v;
  }

  async close(): Promise<void> { for (const t of this.tables) await t.close(); }
}

// ---------------------------------------------------------------------------------------------------------------
// Task items

export interface VqaItem {
  index: number; row: number; textIndex: number; tableName: string;
  image: Uint8Array; text: string; questionId: number;
  /** empty for test tables */
  answers: string[]; labels: number[]; scores: number[];
}
export interface Nlvr2Item {
  index: number; row: number; textIndex: number; tableName: string;
  image0: Uint8Array; image1: Uint8Array; text: string; label: 0 | 1; identifier: string;
}
export interface F30kItem {
  index: number; row: number; textIndex: number; tableName: string;
  image: Uint8Array; text: string; imageId: string;
}
export type TaskItem = VqaItem | Nlvr2Item | F30kItem;

export interface IterateOptions {
  /** Called on every image (e.g. images.ts decodeRGB); a throw marks the item bad. */
  checkImage?: (bytes: Uint8Array, where: { table: string; column: string; row: number }) => unknown | Promise<unknown>;
  /** Skip a bad item with a warning instead of stopping (default false). */
  skipBadImages?: boolean;
  /** Where warnings go (default console.warn). */
  warn?: (msg: string) => void;
}

export class TaskDataset {
  private constructor(readonly task: TaskName, readonly split: Split, readonly data: ComposedTables, readonly isTest: boolean) {}

  /** Open the tables of a task and split for a model family (spec §5.2). */
  static async open(dataDir: string, model: ModelFamily, task: TaskName, split: Split, opts: { tables?: readonly string[]; cacheBytes?: number } = {}): Promise<TaskDataset> {
    const names = opts.tables ?? TASK_TABLES[model][task][split];
    const data = await ComposedTables.open(dataDir, names, { removeDuplicate: task === 'f30k', cacheBytes: opts.cacheBytes, requireRows: split === 'train' });
    const want = task === 'vqa' ? 'vqav2' : task;
    if (data.layout.name !== want) {
      await data.close();
      throw new Error(`task ${task} needs ${want} tables, got ${data.layout.name} (${names.join(', ')})`);
    }
    return new TaskDataset(task, split, data, task === 'vqa' && split === 'test');
  }

  get length(): number { return this.data.length; }
  corpus(): string[] { return this.data.corpus(); }

  /**
   * VQA: question id -> question type from the tables' optional `question_types` column (list<string>, one per
   * question of the row, as `aptune synth` writes it); null when no table of the split has the column. A row whose
   * type list does not match its question ids, or an id given two types, is an error naming the file and row.
   */
  async questionTypes(): Promise<Map<number, string> | null> {
    if (this.task !== 'vqa') return null;
    const out = new Map<number, string>();
    let any = false;
    for (const t of this.data.tables) {
      if (!t.hasColumn('question_types')) continue;
      any = true;
      const ids = await t.columnValues('question_id'), types = await t.columnValues('question_types');
      for (let r = 0; r < ids.length; r++) {
        const qi = asNumberList(ids[r], t.file, 'question_id', r), ty = asStringList(types[r], t.file, 'question_types', r);
        if (qi.length !== ty.length) throw new Error(`${t.file}: column "question_types" row ${r}: ${ty.length} types for ${qi.length} question ids`);
        qi.forEach((q, k) => {
          const had = out.get(q);
          if (had !== undefined && had !== ty[k]) throw new Error(`${t.file}: column "question_types" row ${r}: question ${q} is "${ty[k]}" here and "${had}" in an earlier row`);
          out.set(q, ty[k]);
        });
      }
    }
    return any ? out : null;
  }

  async get(i: number): Promise<TaskItem> {
    const { row, textIndex } = this.data.item(i);
    const { table, local } = this.data.locate(row);
    const base = { index: i, row, textIndex, tableName: table.name, text: this.data.texts[row][textIndex] };
    if (this.task === 'vqa') {
      const qids = asNumberList(await table.cell(local, 'question_id'), table.file, 'question_id', local);
      if (textIndex >= qids.length) throw new Error(`${table.file}: column "question_id" row ${local}: ${qids.length} ids for ${this.data.texts[row].length} questions`);
      let answers: string[] = [], labels: number[] = [], scores: number[] = [];
      if (!this.isTest) {
        const A = asNested(await table.cell(local, 'answers'), table.file, 'answers', local, asStringList);
        const L = asNested(await table.cell(local, 'answer_labels'), table.file, 'answer_labels', local, asNumberList);
        const S = asNested(await table.cell(local, 'answer_scores'), table.file, 'answer_scores', local, asNumberList);
        answers = A[textIndex] ?? []; labels = L[textIndex] ?? []; scores = S[textIndex] ?? [];
        if (labels.length !== scores.length) throw new Error(`${table.file}: row ${local} question ${textIndex}: ${labels.length} answer_labels but ${scores.length} answer_scores`);
      }
      return { ...base, image: await this.data.image(row), questionId: qids[textIndex], answers, labels, scores };
    }
    if (this.task === 'nlvr2') {
      const ans = asStringList(await table.cell(local, 'answers'), table.file, 'answers', local);
      if (textIndex >= ans.length) throw new Error(`${table.file}: column "answers" row ${local}: ${ans.length} answers for ${this.data.texts[row].length} sentences`);
      const label = nlvr2Label(ans[textIndex], `${table.file}: column "answers" row ${local} item ${textIndex}`);
      return {
        ...base, label, identifier: String(await table.cell(local, 'identifier')),
        image0: await this.data.image(row, 'image_0'), image1: await this.data.image(row, 'image_1'),
      };
    }
    return { ...base, image: await this.data.image(row), imageId: String(await table.cell(local, 'image_id')) };
  }

  /**
   * Items in `order` (default 0..length-1). With `checkImage`, each image is checked; a failure (or a null/empty image
   * cell) either stops with a BadImageError naming table, column and row, or (skipBadImages) is reported through
   * `warn` and the item skipped. Other errors always stop.
   */
  async *iterate(order?: ArrayLike<number>, opts: IterateOptions = {}): AsyncGenerator<TaskItem> {
    const n = order ? order.length : this.length;
    const warn = opts.warn ?? ((m: string) => console.warn(m));
    for (let k = 0; k < n; k++) {
      const i = order ? order[k] : k;
      let item: TaskItem;
      try {
        item = await this.get(i);
        if (opts.checkImage) {
          const imgs: [string, Uint8Array][] = 'image0' in item
            ? [['image_0', item.image0], ['image_1', item.image1]] : [['image', (item as VqaItem | F30kItem).image]];
          const { table, local } = this.data.locate(item.row);
          for (const [column, bytes] of imgs) {
            try { await opts.checkImage(bytes, { table: table.file, column, row: local }); } catch (e) {
              const msg = (e as Error).message ?? String(e);
              throw new BadImageError(msg.includes(table.file) ? msg : `${table.file}: column "${column}" row ${local}: bad image: ${msg}`, table.file, column, local);
            }
          }
        }
      } catch (e) {
        if (opts.skipBadImages && e instanceof BadImageError) { warn(`skipping item ${i}: ${(e as Error).message}`); continue; }
        throw e;
      }
      yield item;
    }
  }

  async close(): Promise<void> { await this.data.close(); }
}

/**
 * The VQA answer vocabulary as the reference datamodule recovers it: (answer, label) pairs from the `answers` and
 * `answer_labels` columns of the train and val tables of `model`; numClasses = max label + 1; unknown ids ->
 * "unknown". (Reading only those two columns, batch by batch.)
 */
export async function loadVqaVocab(dataDir: string, model: ModelFamily): Promise<ReturnType<typeof vocabFromLabelledAnswers>> {
  const names = [...new Set([...TASK_TABLES[model].vqa.train, ...TASK_TABLES[model].vqa.val])];
  const pairs: [string, number][] = [];
  for (const name of names) {
    const file = path.join(dataDir, `${name}.arrow`);
    if (!fs.existsSync(file)) throw new Error(`${file}: table not found (needed for the VQA answer vocabulary)`);
    const t = await ArrowTableReader.open(file, { allowEmpty: true });
    try {
      const A = await t.columnValues('answers');
      const L = await t.columnValues('answer_labels');
      for (let r = 0; r < A.length; r++) {
        const a = asNested(A[r], t.file, 'answers', r, asStringList), l = asNested(L[r], t.file, 'answer_labels', r, asNumberList);
        a.forEach((qa, k) => qa.forEach((x, j) => {
          if (l[k]?.[j] === undefined) throw new Error(`${t.file}: row ${r} question ${k}: answers and answer_labels differ in length`);
          pairs.push([x, l[k][j]]);
        }));
      }
    } finally { await t.close(); }
  }
  const v = vocabFromLabelledAnswers(pairs);
  if (v.numClasses <= 0) throw new Error(`${names.map((n) => n + '.arrow').join(', ')} in ${dataDir}: no labelled answers`);
  return v;
}
