// `aptune compare` (and the engine of `npm start` and `aptune table --mini`): the miniature experiment's method
// comparison (shared/reference/synthetic-benchmark.md). For every method and seed it fine-tunes a backbone on one task
// with runTrain from the same pre-trained file, rebuilds the trained model from its method checkpoint and scores it
// on the task's *test* table (the synthetic vqav2_test carries answers and is opened as a labelled table; NLVR2
// test1; F30K test), and reports: updated parameters (method modules only), additional MACs per sample at the run's
// token count, the score mean, std and [min - max] over seeds, measured ms per optimizer step and the process's peak
// resident memory, beside the trivial floors of DIR/report.json (VQA: question-type prior = text-only floor,
// image-only 5-NN, majority answer; NLVR2: statement-type prior; retrieval: chance), labelled as floors.
// Accounting follows models/accounting.ts exactly (accountMethod with the run's own model config and token counts):
// params = elements of the parameters owned by the injected method modules ('full': every backbone parameter except
// task heads; classifier_only: 0); MACs = matmul MACs of a batch-1 forwardTokens with the method minus
// classifier_only, plus 5 ops per element of LayerNorms owned by the method; LoRA 0 by convention (mergeable), its
// unmerged cost kept beside it.
// Learning rates: with `lrGrid`, EVERY method gets its rate from the same grid, chosen on the validation table (VQA
// rest_val, NLVR2 dev, F30K val) after the same step budget with the first seed; the run at the chosen rate is that
// seed's result and the other seeds train at the chosen rate. Without a grid: --lr (default 5e-4, the reference's
// ViLT PETL rate) for every method except 'full' (--lr-full, default 1e-4). runTrain's §6.1 groups apply the head
// (and METER cross-modal) multipliers. RandAugment is OFF by default (colour / rotation / translation change the
// synthetic answers); --randaug turns it on.
// Does not: run methods in parallel or in child processes (runs are sequential in this process), gate on the
// backbone's pre-training quality (see `aptune pretrain`).
// Invariants: every run of a comparison uses the same data, backbone file, steps, batch size and text length; a row's
// scores are in seed order; --out files (compare.json, runs/<method>[-lr<lr>]-s<seed>/ each with run.json,
// metrics.jsonl and last.safetensors) are written atomically (temp + rename); progress goes to `log` (stderr in the
// CLI), results to stdout.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { noGrad, scope } from '../engine/index.ts';
import { METHOD_NAMES, type MeterConfig, type ViltConfig, type VLModel } from '../models/index.ts';
import { CONVENTION, accountMethod, type AccountMethod } from '../models/accounting.ts';
import { TaskDataset, type TaskName } from '../data/tasks.ts';
import { taskLoader, type TaskLoaderOptions } from '../data/task-batches.ts';
import { toModelBatch, type ModelTask } from '../train/batch.ts';
import { evaluateNlvr2, evaluateRetrieval, evaluateVqa } from '../train/evaluate.ts';
import { defaultHyper, pretrainConfigOf, rebuildFromCheckpoint, runTrain, type Backbone, type Preset, type RunConfig } from '../train/run.ts';
import { resolvePretrained } from '../train/pretrained.ts';
import { ensureDirSync, writeFileAtomicSync } from '../data/formats/atomic.ts';
import { UsageError } from '../train/usage-error.ts';
import { Progress, progressMode, type ProgressMode } from '../train/progress.ts';

export const DEFAULT_LR = 5e-4;
export const DEFAULT_LR_FULL = 1e-4;

export interface CompareOptions {
  data: string;
  /** a file, or a shipped preset name ('synth'; train/pretrained.ts) */
  pretrained?: string;
  /** model preset (default: the pretrain checkpoint's preset, else synth) */
  config?: Preset;
  /** default: the pretrain checkpoint's backbone, else vilt */
  backbone?: Backbone;
  /** default vqa */
  task?: ModelTask;
  methods: string[];
  seeds: number[];
  steps: number;
  batchSize?: number;
  /** lr of every method except full (default 5e-4); ignored with lrGrid */
  lr?: number;
  /** lr of 'full' (default 1e-4); ignored with lrGrid */
  lrFull?: number;
  /** per-method lr (wins over lr / lrFull; ignored with lrGrid) */
  lrs?: Readonly<Record<string, number>>;
  /** choose each method's lr from this grid on the validation table (first seed, same step budget) */
  lrGrid?: number[];
  /** text length (default: the pretrain checkpoint's, else runTrain's 40) */
  maxTextLen?: number;
  /** retrieval: random captions drawn per image as negatives (default 15, the reference's draw_false_text) */
  negatives?: number;
  randaug?: boolean;
  /** where runs and compare.json go; without it, runs go to a temp dir that is removed afterwards */
  out?: string;
  /** with out: a run whose directory holds its checkpoint resumes from it, a finished one is reused (runTrain autoResume) */
  resume?: boolean;
  log?: (line: string) => void;
  /**
   * Live display of each run (train/progress.ts): 'bar' redraws one line per run (a terminal), 'lines' prints a
   * status line about every 10% of a run, 'json' writes each record as a JSON line on stdout. Without it: a plain
   * log line every 10% of a run through `log` (library use).
   */
  progress?: ProgressMode;
  /** called after each method's row is complete (partial results for callers that write as they go) */
  onRow?: (row: CompareRow, partial: CompareResult) => void;
}

/** The trivial baselines of DIR/report.json (fractions in [0, 1]) for the compared task's test table. */
export interface Floors {
  source: string;
  /** VQA */
  questionTypePrior?: number;
  imageOnlyKnn?: number;
  majorityAnswer?: number;
  oracle?: number;
  /** NLVR2: most frequent truth value per statement type (fitted on train) */
  statementTypePrior?: number;
  /** retrieval: chance R@1 (1 / images for text->image, 1 / captions for image->text) */
  chanceIrR1?: number;
  chanceTrR1?: number;
}

export interface SeedResult {
  seed: number; lr: number;
  /** the task's primary test metric (VQA score, NLVR2 accuracy, mean of IR and TR R@1) */
  test: number; testCount: number;
  /** every test metric (vqa_score / accuracy / ir_r1, tr_r1, ...) */
  metrics: Record<string, number>;
  /** primary metric on the validation table (selection), null when not measured */
  val: number | null;
  steps: number; finalLoss: number; seconds: number;
  /** wall ms per optimizer step, steps 2..n (the first step's warm-up excluded) */
  msPerStep: number;
  /** peak resident set size of the process during the run (MB, sampled every step) */
  peakRssMb: number;
  /** the step an interrupted comparison resumed this run from (its run directory's checkpoint); absent: trained in one go */
  resumedAt?: number;
  runDir: string | null;
}

export interface CompareRow {
  method: string;
  options: Record<string, number | boolean>;
  /** the learning rate the seeds ran at (chosen from the grid when there is one) */
  lr: number;
  /** validation primary metric per grid rate (grid runs only) */
  lrSearch?: { lr: number; val: number }[];
  /** elements of the method's own modules (the paper's "updated parameters") */
  params: number;
  /** everything the optimiser updates (method + task head + token4classifier ...) */
  trainable: number;
  /** additional MACs per sample at `tokens` (LoRA: 0 by convention) */
  addMacs: number;
  unmergedMacs?: number;
  tokens: { text: number; image: number };
  seeds: SeedResult[];
  mean: number;
  /** sample standard deviation over seeds (0 for one seed) */
  std: number;
  min: number;
  max: number;
  msPerStep: number;
  peakRssMb: number;
}

export interface CompareResult {
  settings: {
    data: string; pretrained: string | null; backbone: Backbone; config: Preset; task: ModelTask; metric: string; steps: number; batchSize: number;
    lr: number; lrFull: number; lrs?: Record<string, number>; lrGrid: number[] | null; lrMultHead: number; seeds: number[]; randaug: boolean; maxTextLen: number; convention: string;
    /** retrieval only: negatives per image */
    negatives?: number;
  };
  floors: Floors | null;
  rows: CompareRow[];
}

/** Name of a task's primary metric. */
export function primaryMetricName(task: ModelTask): string {
  return task === 'vqa' ? 'VQA score' : task === 'nlvr2' ? 'NLVR2 accuracy' : 'retrieval R@1 (mean of IR and TR)';
}

function primary(task: ModelTask, m: Record<string, number>): number {
  return task === 'vqa' ? m.vqa_score : task === 'nlvr2' ? m.accuracy : (m.ir_r1 + m.tr_r1) / 2;
}

/** Reads the floors from DIR/report.json; null when the file is absent; a malformed field is an error naming it. */
export function readFloors(dataDir: string, task: ModelTask = 'vqa'): Floors | null {
  const file = path.join(dataDir, 'report.json');
  if (!fs.existsSync(file)) return null;
  let j: unknown;
  try { j = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) { throw new Error(`${file}: not JSON (${(e as Error).message})`); }
  const rep = j as { vqa?: { testBaselines?: Record<string, unknown> }; nlvr2?: Record<string, unknown>; tables?: Record<string, { rows: number; items: number }> };
  const num = (obj: Record<string, unknown>, where: string, k: string, required: boolean): number | undefined => {
    const v = obj[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw new Error(`${file}: ${where}.${k} must be a number in [0, 1], got ${JSON.stringify(v)}`);
    return v;
  };
  if (task === 'nlvr2') {
    if (!rep.nlvr2 || typeof rep.nlvr2 !== 'object') throw new Error(`${file}: no nlvr2 section (not a report of aptune synth?)`);
    return { source: file, statementTypePrior: num(rep.nlvr2, 'nlvr2', 'statementTypePriorTest', true) };
  }
  if (task === 'irtr') {
    const t = rep.tables?.f30k_caption_karpathy_test;
    if (!t || !(t.rows > 0) || !(t.items > 0)) throw new Error(`${file}: no tables.f30k_caption_karpathy_test rows/items`);
    return { source: file, chanceIrR1: 1 / t.rows, chanceTrR1: 1 / t.items };
  }
  const b = rep.vqa?.testBaselines;
  if (!b || typeof b !== 'object') throw new Error(`${file}: no vqa.testBaselines (not a report of aptune synth?)`);
  const w = 'vqa.testBaselines';
  return {
    source: file, questionTypePrior: num(b, w, 'questionTypePrior', true)!, imageOnlyKnn: num(b, w, 'imageOnlyKnn', true)!,
    majorityAnswer: num(b, w, 'majorityAnswer', false), oracle: num(b, w, 'oracle', false),
  };
}

/**
 * models/accounting.ts's params and additional MACs (its rule and mechanism: method modules only; a batch-1
 * forwardTokens on the shape backend, minus classifier_only) for this run's model config and token counts.
 */
export function accountRun(backbone: Backbone, cfg: ViltConfig | MeterConfig, method: string, methodOptions: Record<string, unknown>, tokens: { text: number; image: number }): { params: number; addMacs: number; unmergedMacs?: number } {
  const row = accountMethod(backbone, method as AccountMethod, { config: cfg, tokens, options: methodOptions });
  return row.unmergedFlops !== undefined ? { params: row.params, addMacs: row.flops, unmergedMacs: row.unmergedFlops } : { params: row.params, addMacs: row.flops };
}

/** accountRun for ViLT (kept for callers of the ViLT-only comparison). */
export function accountVilt(cfg: ViltConfig, method: string, methodOptions: Record<string, unknown>, tokens: { text: number; image: number }): { params: number; addMacs: number; unmergedMacs?: number } {
  return accountRun('vilt', cfg, method, methodOptions, tokens);
}

const TASK_DATA: Record<ModelTask, TaskName> = { vqa: 'vqa', nlvr2: 'nlvr2', irtr: 'f30k' };

/** The labelled table a split of the comparison scores on (the synthetic vqav2_test has answers). */
export function comparisonTable(task: ModelTask, split: 'val' | 'test'): string {
  if (task === 'vqa') return split === 'val' ? 'vqav2_rest_val' : 'vqav2_test';
  if (task === 'nlvr2') return split === 'val' ? 'nlvr2_dev' : 'nlvr2_test1';
  return split === 'val' ? 'f30k_caption_karpathy_val' : 'f30k_caption_karpathy_test';
}

/**
 * Rebuild a trained model from its method checkpoint (rebuildFromCheckpoint, as aptune eval) and score it on one
 * labelled table of its task; also the run's token counts from a real embed of one item.
 */
export async function scoreRun(ckpt: string, data: string, batchSize: number, table: string): Promise<{ model: VLModel; rc: RunConfig; metrics: Record<string, number>; score: number; count: number; tokens: { text: number; image: number } }> {
  const { model, rc, loaderBase } = await rebuildFromCheckpoint(ckpt, { data });
  const ds = await TaskDataset.open(data, rc.backbone, TASK_DATA[rc.task], 'val', { tables: [table] }); // opened as a labelled split
  try {
    const opts: TaskLoaderOptions = { ...loaderBase, batchSize, shuffle: false, drawFalseText: 0, drawFalseImage: 0, augment: null }; // as runTrain's eval loader
    let tokens: { text: number; image: number } | null = null;
    for await (const tb of taskLoader(ds, { ...opts, batchSize: 1, drawFalseText: rc.task === 'irtr' ? 1 : 0 }).epoch(0)) { // the run's token counts, from a real embed
      tokens = noGrad(() => scope(() => {
        const b = toModelBatch(tb, rc.task);
        const t = model.backbone.embed({ textIds: b.textIds.ndim === 3 ? b.textIds.slice(1, 0, 1).reshape([1, -1]) : b.textIds, textMasks: b.textMasks.ndim === 3 ? b.textMasks.slice(1, 0, 1).reshape([1, -1]) : b.textMasks, image: b.image, imageTypeIdx: 1 });
        return { text: t.text.shape[1], image: t.image.shape[1] };
      }));
      break;
    }
    if (!tokens) throw new Error(`${data}: ${table} has no items`);
    const batches = taskLoader(ds, opts).epoch(0);
    const metrics = rc.task === 'vqa' ? { ...(await evaluateVqa(model, batches, await ds.questionTypes())) } : rc.task === 'nlvr2' ? await evaluateNlvr2(model, batches) : await evaluateRetrieval(model, batches);
    const count = rc.task === 'vqa' ? metrics.count : rc.task === 'nlvr2' ? metrics.count : metrics.texts;
    return { model, rc, metrics, score: primary(rc.task, metrics), count, tokens };
  } finally { await ds.close(); }
}

/** scoreRun on a VQA table (default vqav2_test). */
export async function scoreVqaTable(ckpt: string, data: string, batchSize: number, table = 'vqav2_test'): Promise<{ model: VLModel; rc: RunConfig; score: number; count: number; tokens: { text: number; image: number } }> {
  return scoreRun(ckpt, data, batchSize, table);
}

function mean(a: number[]): number { return a.reduce((s, x) => s + x, 0) / a.length; }
/** Sample standard deviation (n - 1); 0 for fewer than two values. */
export function std(a: number[]): number {
  if (a.length < 2) return 0;
  const m = mean(a);
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1));
}

/** Validates method names against the registry (a UsageError names the bad one); 'all' = every method. */
export function parseMethods(v: string): string[] {
  const known: readonly string[] = METHOD_NAMES;
  const ms = v === 'all' ? [...known] : v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!ms.length) throw new UsageError('--methods is empty');
  for (const m of ms) if (!known.includes(m)) throw new UsageError(`unknown method '${m}' (methods: ${known.join(', ')}, or all)`);
  if (new Set(ms).size !== ms.length) throw new UsageError(`--methods lists a method twice: ${v}`);
  return ms;
}

export function parseSeeds(v: string): number[] {
  const s = v.split(',').map((x) => x.trim());
  for (const x of s) if (!/^\d+$/.test(x) || !Number.isSafeInteger(Number(x))) throw new UsageError(`--seeds must be non-negative integers separated by commas, got '${v}'`);
  const n = s.map(Number);
  if (new Set(n).size !== n.length) throw new UsageError(`--seeds lists a seed twice: ${v}`);
  return n;
}

export async function runCompare(o: CompareOptions): Promise<CompareResult> {
  const log = o.log ?? ((s: string) => console.error(s));
  if (!fs.existsSync(o.data) || !fs.statSync(o.data).isDirectory()) throw new Error(`${o.data}: data directory not found`);
  if (!o.methods.length) throw new Error('compare: no methods');
  if (!o.seeds.length) throw new Error('compare: no seeds');
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`compare: steps must be a positive integer, got ${o.steps}`);
  if (o.lrGrid && (!o.lrGrid.length || o.lrGrid.some((x) => !(x > 0)))) throw new Error('compare: the lr grid needs positive rates');
  parseMethods(o.methods.join(','));
  const task = o.task ?? 'vqa';
  const floors = readFloors(o.data, task);
  const pretrained = o.pretrained ? resolvePretrained(o.pretrained, o.backbone ?? 'vilt') : undefined;
  if (pretrained && !fs.existsSync(pretrained)) throw new Error(`${pretrained}: pre-trained checkpoint not found`);
  const pre = pretrained ? pretrainConfigOf(pretrained) : null;
  const backbone: Backbone = o.backbone ?? pre?.backbone ?? 'vilt';
  if (pre && pre.backbone !== backbone) throw new Error(`${pretrained}: a ${pre.backbone} backbone, the comparison asks for ${backbone}`);
  const config: Preset = o.config ?? ((pre?.preset as Preset | undefined) ?? 'synth');
  const maxTextLen = o.maxTextLen ?? pre?.modelConfig.maxTextLen ?? 40;
  const batchSize = o.batchSize ?? 32;
  const lr = o.lr ?? DEFAULT_LR, lrFull = o.lrFull ?? DEFAULT_LR_FULL;
  const randaug = o.randaug ?? false;
  const negatives = o.negatives ?? 15;
  if (!(Number.isInteger(negatives) && negatives >= 1)) throw new Error(`compare: negatives must be a positive integer, got ${negatives}`);
  const hyper = defaultHyper(backbone, task);
  const tmpRoot = o.out ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-compare-'));
  const root = o.out ?? tmpRoot!;
  if (o.out) ensureDirSync(o.out, '--out');
  const result: CompareResult = {
    settings: {
      data: path.resolve(o.data), pretrained: pretrained ? path.resolve(pretrained) : null, backbone, config, task, metric: primaryMetricName(task), steps: o.steps, batchSize,
      lr, lrFull, ...(o.lrs ? { lrs: { ...o.lrs } } : {}), lrGrid: o.lrGrid ? [...o.lrGrid] : null, lrMultHead: hyper.lrMultHead, seeds: [...o.seeds], randaug, maxTextLen, convention: CONVENTION,
      ...(task === 'irtr' ? { negatives } : {}),
    },
    floors, rows: [],
  };
  if (!pretrained) log('compare: no --pretrained: every method starts from a random backbone (frozen methods cannot be told apart)');
  const grid = o.lrGrid ?? null;
  const total = o.methods.length * ((grid ? grid.length : 1) + o.seeds.length - 1);
  let k = 0;
  /**
   * One training run, and with `withVal` its validation score (a grid's selection run); the test table is scored by
   * testOf, for a seed run and for the chosen selection run only.
   */
  const cell = async (method: string, seed: number, mlr: number, withVal: boolean) => {
    k++;
    const tag = `[${k}/${total} ${backbone} ${task} ${method} lr ${mlr} seed ${seed}]`;
    const every = Math.max(1, Math.floor(o.steps / 10));
    let firstStepAt = 0, lastStepAt = 0, nSteps = 0, peakRss = process.memoryUsage().rss;
    const bar = o.progress ? new Progress({ mode: o.progress, total: o.steps, every, label: tag }) : null;
    const say = (s: string) => { if (bar) bar.message(s); else log(`${tag} ${s}`); };
    const runLog = (line: string) => {
      if (line.startsWith('{')) {
        try {
          const r = JSON.parse(line) as Record<string, unknown>;
          if (r.type === 'train') {
            const now = performance.now();
            if (nSteps === 0) firstStepAt = now;
            lastStepAt = now; nSteps++;
            peakRss = Math.max(peakRss, process.memoryUsage().rss);
            if (bar) bar.record(r);
            else if ((r.step as number) % every === 0 || r.step === o.steps) log(`${tag} step ${r.step}/${o.steps} loss ${(r.loss as number).toFixed(4)}`);
            return;
          }
          if (r.type === 'eval') return; // the comparison scores its own tables below
        } catch { /* not a record: print as is */ }
      }
      say(line);
    };
    const t0 = performance.now();
    const runDir = path.join(root, 'runs', grid ? `${method}-lr${mlr}-s${seed}` : `${method}-s${seed}`);
    let tr: Awaited<ReturnType<typeof runTrain>>, val: Awaited<ReturnType<typeof scoreRun>> | null;
    try {
      tr = await runTrain({
        data: o.data, task, backbone, config, method, pretrained, maxSteps: o.steps, batchSize, lr: mlr,
        seed, maxTextLen, randaug, negatives, out: runDir, log: runLog, autoResume: !!(o.out && o.resume), // --resume: a killed comparison goes on where it stopped
        evaluate: task === 'vqa', // VQA: its eval split (val) is a seed run's val figure; NLVR2 / retrieval: the tables are scored below, once
      });
      val = withVal ? await scoreRun(tr.checkpoint, o.data, batchSize, comparisonTable(task, 'val')) : null;
      if (val) { for (const p of val.model.parameters()) p.dispose(); say(`val ${(100 * val.score).toFixed(2)}`); }
    } finally { bar?.finish(); }
    const seconds = (performance.now() - t0) / 1000;
    const sr: SeedResult = {
      seed, lr: mlr, test: NaN, testCount: 0, metrics: {}, // testOf fills these
      val: val ? val.score : task === 'vqa' && typeof tr.eval?.vqa_score === 'number' ? tr.eval.vqa_score : null, // else runTrain's own eval (VQA: the val split)
      steps: tr.steps, finalLoss: tr.finalLoss, seconds,
      msPerStep: nSteps > 1 ? (lastStepAt - firstStepAt) / (nSteps - 1) : tr.msPerStep ?? NaN, // (a resumed finished run: its recorded time)
      peakRssMb: peakRss / 2 ** 20, runDir: o.out ? runDir : null, ...(tr.resumedAt !== null ? { resumedAt: tr.resumedAt } : {}),
    };
    return { sr, checkpoint: tr.checkpoint, tag };
  };
  /** the test table of a run (its SeedResult completed in place; its seconds include the scoring) */
  const testOf = async (c: { sr: SeedResult; checkpoint: string; tag: string }) => {
    const t0 = performance.now();
    const ev = await scoreRun(c.checkpoint, o.data, batchSize, comparisonTable(task, 'test'));
    c.sr.test = ev.score; c.sr.testCount = ev.count; c.sr.metrics = ev.metrics; c.sr.seconds += (performance.now() - t0) / 1000;
    log(`${c.tag} test ${primaryMetricName(task)} ${(100 * ev.score).toFixed(2)} (${ev.count} items, ${c.sr.seconds.toFixed(1)} s)`);
    return ev;
  };
  try {
    for (const method of o.methods) {
      const seeds: SeedResult[] = [];
      let acct: Pick<CompareRow, 'options' | 'params' | 'trainable' | 'addMacs' | 'unmergedMacs' | 'tokens'> | null = null;
      const account = (ev: Awaited<ReturnType<typeof scoreRun>>) => {
        if (acct) return;
        const a = accountRun(backbone, ev.rc.modelConfig, method, ev.rc.methodOptions, ev.tokens);
        const trainable = ev.model.trainableParameters().reduce((s, [, p]) => s + p.size, 0);
        acct = { options: { ...ev.rc.methodOptions }, params: a.params, trainable, addMacs: a.addMacs, ...(a.unmergedMacs !== undefined ? { unmergedMacs: a.unmergedMacs } : {}), tokens: ev.tokens };
      };
      let mlr = o.lrs?.[method] ?? (method === 'full' ? lrFull : lr);
      let lrSearch: { lr: number; val: number }[] | undefined;
      let first: SeedResult | null = null;
      if (grid) { // same grid, same budget, first seed, chosen on the validation table
        lrSearch = [];
        let best = -Infinity, chosen: Awaited<ReturnType<typeof cell>> | null = null;
        for (const g of grid) {
          const c = await cell(method, o.seeds[0], g, true);
          lrSearch.push({ lr: g, val: c.sr.val! });
          if (c.sr.val! > best) { best = c.sr.val!; mlr = g; chosen = c; }
        }
        log(`[${backbone} ${task} ${method}] lr chosen on ${comparisonTable(task, 'val')}: ${mlr} (${lrSearch.map((x) => `${x.lr}: ${(100 * x.val).toFixed(2)}`).join(', ')})`);
        const ev = await testOf(chosen!); // only the chosen rate's run sees the test table
        account(ev);
        for (const p of ev.model.parameters()) p.dispose();
        first = chosen!.sr;
      }
      for (const seed of o.seeds) {
        if (first && seed === o.seeds[0]) { seeds.push(first); continue; }
        const c = await cell(method, seed, mlr, false);
        const ev = await testOf(c);
        account(ev);
        for (const p of ev.model.parameters()) p.dispose(); // the rebuilt model is not used again (storages may be native)
        seeds.push(c.sr);
      }
      const sc = seeds.map((s) => s.test);
      const ms = seeds.map((s) => s.msPerStep).filter((x) => Number.isFinite(x));
      result.rows.push({
        method, lr: mlr, ...(lrSearch ? { lrSearch } : {}), ...acct!, seeds, mean: mean(sc), std: std(sc), min: Math.min(...sc), max: Math.max(...sc),
        msPerStep: ms.length ? mean(ms) : NaN, peakRssMb: Math.max(...seeds.map((s) => s.peakRssMb)),
      });
      if (o.out) writeFileAtomicSync(path.join(o.out, 'compare.json'), JSON.stringify(result, null, 2) + '\n'); // partial results survive a crash
      o.onRow?.(result.rows[result.rows.length - 1], result);
    }
  } finally {
    if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
  }
  if (o.out) {
    writeFileAtomicSync(path.join(o.out, 'compare.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileAtomicSync(path.join(o.out, 'compare.txt'), formatCompareTable(result) + '\n');
  }
  return result;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const int = (x: number) => x.toLocaleString('en-US');

/** Floor rows of a task: [label, value]. */
export function floorRows(f: Floors | null): [string, number][] {
  if (!f) return [];
  const out: [string, number][] = [];
  if (f.questionTypePrior !== undefined) out.push(['floor: question-type prior (text only)', f.questionTypePrior]);
  if (f.imageOnlyKnn !== undefined) out.push(['floor: image-only 5-NN (question ignored)', f.imageOnlyKnn]);
  if (f.majorityAnswer !== undefined) out.push(['floor: majority answer', f.majorityAnswer]);
  if (f.oracle !== undefined) out.push(['ceiling: oracle reading the scene', f.oracle]);
  if (f.statementTypePrior !== undefined) out.push(['floor: statement-type prior (text only)', f.statementTypePrior]);
  if (f.chanceIrR1 !== undefined) out.push(['floor: chance text->image R@1', f.chanceIrR1]);
  if (f.chanceTrR1 !== undefined) out.push(['floor: chance image->text R@1', f.chanceTrR1]);
  return out;
}

/** The comparison table, floors below the methods, labelled. */
export function formatCompareTable(r: CompareResult): string {
  const s = r.settings;
  const lines: string[] = [];
  const tk = r.rows[0]?.tokens;
  lines.push(`${s.metric ?? 'VQA score'} on the synthetic test split (${r.rows[0]?.seeds[0]?.testCount ?? '?'} items): ${s.backbone ?? 'vilt'}/${s.config} ${s.pretrained ? `from ${s.pretrained}` : 'from a RANDOM backbone (no --pretrained)'}`);
  lines.push(`  ${s.steps} steps, batch ${s.batchSize}, ${s.lrGrid ? `lr per method chosen on the validation table from {${s.lrGrid.join(', ')}}` : `lr ${s.lr} (full: ${s.lrFull}${s.lrs ? Object.entries(s.lrs).map(([m, v]) => `, ${m}: ${v}`).join('') : ''})`}, head x${s.lrMultHead}, RandAugment ${s.randaug ? 'on' : 'off'}${s.negatives !== undefined ? `, ${s.negatives} negative captions per image` : ''}, seeds ${s.seeds.join(',')}`);
  const head = ['method', 'lr', 'updated params', 'trainable', 'add. MACs/sample', 'mean ± std', '[min - max]', 'per seed', 'ms/step', 'peak RSS MB'];
  const body = r.rows.map((row) => [
    row.method, String(row.lr), int(row.params), int(row.trainable),
    row.unmergedMacs !== undefined ? `${int(row.addMacs)} (unmerged ${int(row.unmergedMacs)})` : int(row.addMacs),
    `${pct(row.mean)} ± ${(100 * (row.std ?? 0)).toFixed(2)}`, `[${(100 * row.min).toFixed(2)} - ${(100 * row.max).toFixed(2)}]`, row.seeds.map((x) => (100 * x.test).toFixed(2)).join(' '),
    Number.isFinite(row.msPerStep) ? row.msPerStep.toFixed(0) : '-', Number.isFinite(row.peakRssMb) ? row.peakRssMb.toFixed(0) : '-',
  ]);
  const floors = floorRows(r.floors);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const right = new Set([1, 2, 3, 4, 5, 8, 9]);
  const fmt = (c: string[]) => '  ' + c.map((x, i) => (right.has(i) ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join('  ').trimEnd();
  lines.push(fmt(head), ...body.map(fmt));
  if (floors.length) {
    lines.push(`  -- floors from ${r.floors!.source} (no training; same test split) --`);
    const w0 = widths.slice(0, 5).reduce((a, w) => a + w + 2, 0) - 2;
    for (const [label, v] of floors) lines.push('  ' + label.padEnd(w0) + '  ' + pct(v).padStart(widths[5]));
  } else lines.push('  (no floors: the data directory has no report.json from aptune synth)');
  if (tk) lines.push(`MACs per sample at ${tk.text} text + ${tk.image} image = ${tk.text + tk.image} tokens (the run's), batch 1.`);
  lines.push(`Updated params = the method's own modules; trainable adds the task head and token4classifier. ms/step: wall time per optimizer step (step 1 excluded); peak RSS: the process's resident memory, sampled every step.`);
  lines.push('Convention: ' + s.convention);
  return lines.join('\n');
}

/** `aptune compare` after the CLI parsed the flags (values are strings; flags true). Returns the exit status. */
export async function compareCommand(o: Record<string, string | boolean>): Promise<number> {
  if (typeof o.data !== 'string') throw new UsageError('compare needs --data DIR (see aptune compare --help)');
  const pos = (name: string): number | undefined => {
    const v = o[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < 1) throw new UsageError(`--${name} must be a positive integer, got '${String(v)}'`);
    return Number(v);
  };
  const real = (name: string): number | undefined => {
    const v = o[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got '${String(v)}'`);
    return n;
  };
  const task = (o.task as string | undefined) ?? 'vqa';
  if (task !== 'vqa') throw new UsageError(`--task: only vqa is compared (the synthetic floors are VQA's), got '${task}'`);
  const config = o.config as string | undefined;
  if (config !== undefined && config !== 'tiny' && config !== 'synth' && config !== 'base') throw new UsageError(`--config must be tiny, synth or base, got '${config}'`);
  const methods = parseMethods(typeof o.methods === 'string' ? o.methods : 'all');
  const seeds = parseSeeds(typeof o.seeds === 'string' ? o.seeds : '0,1,2');
  const r = await runCompare({
    data: o.data, pretrained: typeof o.pretrained === 'string' ? o.pretrained : undefined, config: config as Preset | undefined, methods, seeds,
    steps: pos('steps') ?? 600, batchSize: pos('batch-size'), lr: real('lr'), lrFull: real('lr-full'), maxTextLen: pos('max-text-len'),
    randaug: o.randaug === true, out: typeof o.out === 'string' ? o.out : undefined, resume: o.resume === true, log: (s) => console.error(s),
    progress: o.json === true ? undefined : progressMode(false), // --json: stdout is the result alone
  });
  console.log(o.json ? JSON.stringify(r) : formatCompareTable(r));
  return 0;
}
