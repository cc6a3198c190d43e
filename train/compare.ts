// `aptune compare`: the miniature experiment's method comparison (shared/reference/synthetic-benchmark.md). For every
// method and seed it fine-tunes ViLT on VQA with runTrain from the same backbone (the --pretrained checkpoint when
// given), rebuilds the trained model from its method checkpoint, scores it on the VQA *test* split (the synthetic
// test table carries answers; vqav2_test is opened as a labelled table) and prints one table: updated parameters
// (method modules only), additional MACs per sample at the run's token count, VQA score mean and [min - max] over
// seeds, beside the trivial floors that `aptune synth` wrote to DIR/report.json (question-type prior = text-only
// floor, image-only 5-NN, majority answer), labelled as floors, not methods.
// Accounting follows models/accounting.ts exactly (same rule, same shape-backend mechanism), re-done here because
// accountMethod() only builds the full-size base presets: params = elements of the parameters owned by the injected
// method modules ('full': every backbone parameter except task heads; classifier_only: 0); MACs = matmul MACs of a
// batch-1 forwardTokens with the method minus the same model with classifier_only, plus 5 ops per element of
// LayerNorms owned by the method; LoRA is 0 by convention (mergeable), its unmerged cost is kept beside it.
// Learning rates: --lr (default 5e-4, the reference's lr for every ViLT PETL method) for all methods except 'full',
// which uses --lr-full (default 1e-4, the original ViLT fine-tuning lr); the VQA head always gets x10 (runTrain's
// §6.1 groups). RandAugment is OFF by default here (colour / rotation / translation ops change the answers of the
// synthetic questions); --randaug turns it on.
// Does not: run methods in parallel or in child processes (runs are sequential in this process), gate on the
// backbone's pre-training quality (see `aptune pretrain`), or tune hyper-parameters per method.
// Invariants: every run of a comparison uses the same data, backbone file, steps, batch size and text length; a row's
// scores are in seed order; --out files (compare.json, runs/<method>-s<seed>/) are written atomically (temp + rename);
// progress goes to `log` (stderr in the CLI), results to stdout.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { noGrad, scope } from '../engine/index.ts';
import { createModel, listMethods, type ViltConfig, type VLModel } from '../models/index.ts';
import { CONVENTION, accountMethod, type AccountMethod } from '../models/accounting.ts';
import { TaskDataset } from './data/tasks.ts';
import { taskLoader, type TaskLoaderOptions } from './data/task-batches.ts';
import { pixelbertTransform } from './data/images.ts';
import { loadTokenizer } from './tokenizers/index.ts';
import { toModelBatch } from './batch.ts';
import { evaluateVqa } from './evaluate.ts';
import { importPretrained, loadCheckpoint, loadMethodCheckpoint } from './checkpoint.ts';
import { defaultHyper, pretrainConfigOf, runTrain, type Preset } from './run.ts';
import { writeFileAtomicSync } from './atomic.ts';
import { UsageError } from './usage-error.ts';

export const DEFAULT_LR = 5e-4;
export const DEFAULT_LR_FULL = 1e-4;

export interface CompareOptions {
  data: string;
  pretrained?: string;
  /** model preset (default: the pretrain checkpoint's preset, else synth) */
  config?: Preset;
  methods: string[];
  seeds: number[];
  steps: number;
  batchSize?: number;
  /** lr of every method except full (default 5e-4) */
  lr?: number;
  /** lr of 'full' (default 1e-4) */
  lrFull?: number;
  /** text length (default: the pretrain checkpoint's, else runTrain's 40) */
  maxTextLen?: number;
  randaug?: boolean;
  /** where runs and compare.json go; without it, runs go to a temp dir that is removed afterwards */
  out?: string;
  log?: (line: string) => void;
}

/** The trivial baselines of DIR/report.json (VQA score on the test split, fractions in [0, 1]). */
export interface Floors {
  source: string;
  questionTypePrior: number;
  imageOnlyKnn: number;
  majorityAnswer?: number;
  oracle?: number;
}

export interface SeedResult { seed: number; test: number; testCount: number; val: number | null; steps: number; finalLoss: number; seconds: number }

export interface CompareRow {
  method: string;
  options: Record<string, number | boolean>;
  lr: number;
  /** elements of the method's own modules (the paper's "updated parameters") */
  params: number;
  /** everything the optimiser updates (method + VQA head + token4classifier ...) */
  trainable: number;
  /** additional MACs per sample at `tokens` (LoRA: 0 by convention) */
  addMacs: number;
  unmergedMacs?: number;
  tokens: { text: number; image: number };
  seeds: SeedResult[];
  mean: number;
  min: number;
  max: number;
}

export interface CompareResult {
  settings: {
    data: string; pretrained: string | null; config: Preset; task: 'vqa'; steps: number; batchSize: number; lr: number; lrFull: number;
    lrMultHead: number; seeds: number[]; randaug: boolean; maxTextLen: number; convention: string;
  };
  floors: Floors | null;
  rows: CompareRow[];
}

/** Reads the floors from DIR/report.json; null when the file is absent; a malformed file is an error naming the field. */
export function readFloors(dataDir: string): Floors | null {
  const file = path.join(dataDir, 'report.json');
  if (!fs.existsSync(file)) return null;
  let j: unknown;
  try { j = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) { throw new Error(`${file}: not JSON (${(e as Error).message})`); }
  const b = (j as { vqa?: { testBaselines?: Record<string, unknown> } })?.vqa?.testBaselines;
  if (!b || typeof b !== 'object') throw new Error(`${file}: no vqa.testBaselines (not a report of aptune synth?)`);
  const num = (k: string, required: boolean): number | undefined => {
    const v = b[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw new Error(`${file}: vqa.testBaselines.${k} must be a number in [0, 1], got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    source: file, questionTypePrior: num('questionTypePrior', true)!, imageOnlyKnn: num('imageOnlyKnn', true)!,
    majorityAnswer: num('majorityAnswer', false), oracle: num('oracle', false),
  };
}

/**
 * models/accounting.ts's params and additional MACs (its rule and mechanism: method modules only; a batch-1
 * forwardTokens on the shape backend, minus classifier_only) for this run's ViLT config and token counts.
 */
export function accountVilt(cfg: ViltConfig, method: string, methodOptions: Record<string, unknown>, tokens: { text: number; image: number }): { params: number; addMacs: number; unmergedMacs?: number } {
  const row = accountMethod('vilt', method as AccountMethod, { config: cfg, tokens, options: methodOptions });
  return row.unmergedFlops !== undefined ? { params: row.params, addMacs: row.flops, unmergedMacs: row.unmergedFlops } : { params: row.params, addMacs: row.flops };
}

interface MethodRunConfig {
  kind?: string; backbone: string; task: string; method: string; methodOptions: Record<string, number | boolean>; modelConfig: ViltConfig;
  numAnswers: number; seed: number; vocab: string; maxTextLen: number; imageSize: number; pretrained?: string;
}

/**
 * Rebuild a trained model from its method checkpoint (as runEval does) and score it on one VQA table (default
 * vqav2_test, opened as a labelled table); also the run's token counts from a real embed of one question.
 */
export async function scoreVqaTable(ckpt: string, data: string, batchSize: number, table = 'vqav2_test'): Promise<{ model: VLModel; rc: MethodRunConfig; score: number; count: number; tokens: { text: number; image: number } }> {
  const rc = loadCheckpoint(ckpt).config as MethodRunConfig;
  if (!rc || rc.kind !== 'method' || rc.backbone !== 'vilt' || rc.task !== 'vqa') throw new Error(`${ckpt}: not a ViLT VQA method checkpoint`);
  const tok = loadTokenizer(rc.vocab);
  const model = createModel({ backbone: 'vilt', config: rc.modelConfig, task: 'vqa', numAnswers: rc.numAnswers, method: rc.method, methodOptions: rc.methodOptions, seed: rc.seed });
  if (rc.pretrained) importPretrained(rc.pretrained, model);
  loadMethodCheckpoint(ckpt, model.backbone);
  // the test table opened as a labelled split: the synthetic vqav2_test has answers (real VQAv2's does not)
  const ds = await TaskDataset.open(data, 'vilt', 'vqa', 'val', { tables: [table] });
  try {
    const opts: TaskLoaderOptions = { // as runTrain's eval loader
      model: 'vilt', tokenizer: tok, transform: pixelbertTransform(rc.imageSize, undefined, rc.modelConfig.patch), maxLength: rc.maxTextLen,
      numClasses: rc.numAnswers, seed: rc.seed, concurrency: 4, batchSize, shuffle: false, drawFalseText: 0, drawFalseImage: 0, augment: null,
    };
    let tokens: { text: number; image: number } | null = null;
    for await (const tb of taskLoader(ds, { ...opts, batchSize: 1 }).epoch(0)) { // the run's token counts, from a real embed
      tokens = noGrad(() => scope(() => {
        const b = toModelBatch(tb, 'vqa');
        const t = model.backbone.embed({ textIds: b.textIds, textMasks: b.textMasks, image: b.image, imageTypeIdx: 1 });
        return { text: t.text.shape[1], image: t.image.shape[1] };
      }));
      break;
    }
    if (!tokens) throw new Error(`${data}: ${table} has no questions`);
    const r = await evaluateVqa(model, taskLoader(ds, opts).epoch(0));
    return { model, rc, score: r.vqa_score, count: r.count, tokens };
  } finally { await ds.close(); }
}

function mean(a: number[]): number { return a.reduce((s, x) => s + x, 0) / a.length; }

/** Validates method names against the registry (a UsageError names the bad one); 'all' = every method. */
export function parseMethods(v: string): string[] {
  const known = listMethods().map((m) => m.name);
  const ms = v === 'all' ? known : v.split(',').map((s) => s.trim()).filter(Boolean);
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
  parseMethods(o.methods.join(','));
  const floors = readFloors(o.data);
  const pre = o.pretrained ? pretrainConfigOf(o.pretrained) : null;
  if (o.pretrained && !fs.existsSync(o.pretrained)) throw new Error(`${o.pretrained}: pre-trained checkpoint not found`);
  const config: Preset = o.config ?? ((pre?.preset as Preset | undefined) ?? 'synth');
  const maxTextLen = o.maxTextLen ?? pre?.modelConfig.maxTextLen ?? 40;
  const batchSize = o.batchSize ?? 32;
  const lr = o.lr ?? DEFAULT_LR, lrFull = o.lrFull ?? DEFAULT_LR_FULL;
  const randaug = o.randaug ?? false;
  const hyper = defaultHyper('vilt', 'vqa');
  const tmpRoot = o.out ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-compare-'));
  const root = o.out ?? tmpRoot!;
  const result: CompareResult = {
    settings: {
      data: path.resolve(o.data), pretrained: o.pretrained ? path.resolve(o.pretrained) : null, config, task: 'vqa', steps: o.steps, batchSize,
      lr, lrFull, lrMultHead: hyper.lrMultHead, seeds: [...o.seeds], randaug, maxTextLen, convention: CONVENTION,
    },
    floors, rows: [],
  };
  if (!o.pretrained) log('compare: no --pretrained: every method starts from a random backbone (frozen methods cannot be told apart)');
  const total = o.methods.length * o.seeds.length;
  let k = 0;
  try {
    for (const method of o.methods) {
      const mlr = method === 'full' ? lrFull : lr;
      const seeds: SeedResult[] = [];
      let acct: Pick<CompareRow, 'options' | 'params' | 'trainable' | 'addMacs' | 'unmergedMacs' | 'tokens'> | null = null;
      for (const seed of o.seeds) {
        k++;
        const tag = `[${k}/${total} ${method} seed ${seed}]`;
        const every = Math.max(1, Math.floor(o.steps / 10));
        const runLog = (line: string) => {
          if (line.startsWith('{')) {
            try {
              const r = JSON.parse(line) as Record<string, unknown>;
              if (r.type === 'train') { if ((r.step as number) % every === 0 || r.step === o.steps) log(`${tag} step ${r.step}/${o.steps} loss ${(r.loss as number).toFixed(4)}`); return; }
              if (r.type === 'eval') { log(`${tag} val vqa_score ${(100 * (r.vqa_score as number)).toFixed(2)}% (${r.count} questions)`); return; }
            } catch { /* not a record: print as is */ }
          }
          log(`${tag} ${line}`);
        };
        const t0 = performance.now();
        const tr = await runTrain({
          data: o.data, task: 'vqa', backbone: 'vilt', config, method, pretrained: o.pretrained, maxSteps: o.steps, batchSize, lr: mlr,
          seed, maxTextLen, randaug, out: path.join(root, 'runs', `${method}-s${seed}`), log: runLog,
        });
        const ev = await scoreVqaTable(tr.checkpoint, o.data, batchSize);
        const seconds = (performance.now() - t0) / 1000;
        log(`${tag} test vqa_score ${(100 * ev.score).toFixed(2)}% (${ev.count} questions, ${seconds.toFixed(1)} s)`);
        seeds.push({ seed, test: ev.score, testCount: ev.count, val: typeof tr.eval?.vqa_score === 'number' ? tr.eval.vqa_score : null, steps: tr.steps, finalLoss: tr.losses[tr.losses.length - 1], seconds });
        if (!acct) {
          const a = accountVilt(ev.rc.modelConfig, method, ev.rc.methodOptions, ev.tokens);
          const trainable = ev.model.trainableParameters().reduce((s, [, p]) => s + p.size, 0);
          acct = { options: { ...ev.rc.methodOptions }, params: a.params, trainable, addMacs: a.addMacs, ...(a.unmergedMacs !== undefined ? { unmergedMacs: a.unmergedMacs } : {}), tokens: ev.tokens };
        }
        for (const p of ev.model.parameters()) p.dispose(); // the rebuilt model is not used again (storages may be native)
      }
      const sc = seeds.map((s) => s.test);
      result.rows.push({ method, lr: mlr, ...acct!, seeds, mean: mean(sc), min: Math.min(...sc), max: Math.max(...sc) });
      if (o.out) writeFileAtomicSync(path.join(o.out, 'compare.json'), JSON.stringify(result, null, 2) + '\n'); // partial results survive a crash
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

/** The comparison table, floors below the methods, labelled. */
export function formatCompareTable(r: CompareResult): string {
  const s = r.settings;
  const lines: string[] = [];
  const tk = r.rows[0]?.tokens;
  lines.push(`VQA score on the synthetic test split (${r.rows[0]?.seeds[0]?.testCount ?? '?'} questions): ViLT/${s.config} ${s.pretrained ? `from ${s.pretrained}` : 'from a RANDOM backbone (no --pretrained)'}`);
  lines.push(`  ${s.steps} steps, batch ${s.batchSize}, lr ${s.lr} (full: ${s.lrFull}), VQA head x${s.lrMultHead}, RandAugment ${s.randaug ? 'on' : 'off'}, seeds ${s.seeds.join(',')}`);
  const head = ['method', 'updated params', 'trainable', 'add. MACs/sample', 'VQA mean', '[min - max]', 'per seed'];
  const body = r.rows.map((row) => [
    row.method, int(row.params), int(row.trainable),
    row.unmergedMacs !== undefined ? `${int(row.addMacs)} (unmerged ${int(row.unmergedMacs)})` : int(row.addMacs),
    pct(row.mean), `[${(100 * row.min).toFixed(2)} - ${(100 * row.max).toFixed(2)}]`, row.seeds.map((x) => (100 * x.test).toFixed(2)).join(' '),
  ]);
  const floorRows: string[][] = [];
  if (r.floors) {
    const f = r.floors;
    floorRows.push(['floor: question-type prior (text only)', '', '', '', pct(f.questionTypePrior), '', '']);
    floorRows.push(['floor: image-only 5-NN (question ignored)', '', '', '', pct(f.imageOnlyKnn), '', '']);
    if (f.majorityAnswer !== undefined) floorRows.push(['floor: majority answer', '', '', '', pct(f.majorityAnswer), '', '']);
    if (f.oracle !== undefined) floorRows.push(['ceiling: oracle reading the scene', '', '', '', pct(f.oracle), '', '']);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length), ...floorRows.map((b) => (i === 0 ? 0 : b[i].length))));
  const right = new Set([1, 2, 3, 4]);
  const fmt = (c: string[]) => '  ' + c.map((x, i) => (right.has(i) ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join('  ').trimEnd();
  lines.push(fmt(head), ...body.map(fmt));
  if (floorRows.length) {
    lines.push(`  -- floors from ${r.floors!.source} (no training; same test split) --`);
    const w0 = widths[0] + 2 + widths[1] + 2 + widths[2] + 2 + widths[3];
    for (const f of floorRows) lines.push('  ' + f[0].padEnd(w0) + '  ' + f[4].padStart(widths[4]));
  } else lines.push('  (no floors: the data directory has no report.json from aptune synth)');
  if (tk) lines.push(`MACs per sample at ${tk.text} text + ${tk.image} image = ${tk.text + tk.image} tokens (the run's), batch 1.`);
  lines.push(`Updated params = the method's own modules; trainable adds the VQA head and token4classifier.`);
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
    randaug: o.randaug === true, out: typeof o.out === 'string' ? o.out : undefined, log: (s) => console.error(s),
  });
  console.log(o.json ? JSON.stringify(r) : formatCompareTable(r));
  return 0;
}
