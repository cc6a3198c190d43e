// What `aptune train` and `aptune eval` do, as functions (the CLI parses flags into RunOptions / EvalRunOptions):
// tokenizer (a vocab file, or a WordPiece vocabulary built from the text of the task's own tables and stored beside
// the checkpoint as vocab.txt), model (createModel with the tiny config sized to the tokenizer, or base), optional
// pre-trained backbone import, §6.3 optimiser groups and schedule, task loaders over the ViLT tables, the Trainer,
// and evaluation on the task's eval split (VQA val, NLVR2 dev + test1, F30K test), or VQA predictions written as
// a submission file. Training images get RandAugment(2, 9) before the pixelbert / clip transform (the reference's
// *_randaug configs; `randaug: false` turns it off); evaluation never augments. METER on F30K also draws one
// random other image per item for its ITM loss (§4.3; total loss = ITM + IRTR).
// Preset 'synth' (models/pretrain.ts VILT_SYNTH, method sizes SYNTH_METHOD_OPTIONS) is the ViLT of `aptune pretrain`;
// with --pretrained pointing at such a checkpoint (kind 'pretrain'), its vocabulary is used (written to OUT/vocab.txt)
// unless --vocab is given, and its model config must equal the run's.
// --model-config overrides (RunOptions.modelOverrides: aptune or Hugging Face names, models/config.ts) apply on top of
// the preset after it is sized to the tokenizer, and are stored in the run config so eval rebuilds the same model.
// The run directory gets run.json (options + resolved run config at the start, plus the summary of train/report.ts
// at the end). Display hooks: onRecord (each logged record), onStart (total steps), onEvalBatch (evaluation batches).
// Does not: multi-device runs, draw progress (the CLI's train/progress.ts does).
// The run configuration has one type (RunConfig) and one way back from a checkpoint (rebuildFromCheckpoint), shared by
// `eval` and the comparison's scoring (experiments/compare.ts).
// Invariants: the checkpoint's run config holds everything needed to rebuild the same model (backbone, task,
// method + options, resolved model config, numAnswers, seed, tokenizer path, text length, image size, pre-trained
// file), so `eval` needs only --data and --checkpoint; a config that does not match is an error naming the key;
// the model's clsTokenId (token4classifier's init) is the tokenizer's [CLS] / <s> id, whatever the preset;
// `train` opens only the task's tables of --data (others are named in the log); its checkpoint (one atomic file,
// every saveEvery steps / 30 min / at the end) is resumed with metrics.jsonl cut back to its step and no temporary
// file of an interrupted write left behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  createModel, parameterGroups, resolveModelConfigReport, type ModelConfigInput, METER_TINY, VILT_BASE, VILT_TINY, METER_BASE, TINY_METHOD_OPTIONS,
  DEFAULT_METHOD, isMethodName, type MeterConfig, type ViltConfig, type VLModel,
} from '../models/index.ts';
import { ArrowTableReader, LAYOUTS } from '../data/formats/arrow.ts';
import { TASK_TABLES, TaskDataset, loadVqaVocab, type Split, type TaskName } from '../data/tasks.ts';
import { taskLoader, type TaskBatch, type TaskLoaderOptions } from '../data/task-batches.ts';
import { clipTransform, pixelbertTransform } from '../data/images.ts';
import { RandAugment } from '../data/randaugment.ts';
import { BertTokenizer, buildWordPieceVocab, formatVocabTxt, loadTokenizer, maxTextLength, VILT_TEXT_PREFIX, type Tokenizer } from '../data/tokenizers/index.ts';
import { ensureDirSync, writeFileAtomicSync } from '../data/formats/atomic.ts';
import { AdamW } from './optim.ts';
import { PolynomialDecayWithWarmup, warmupSteps } from './schedule.ts';
import { Trainer, checkRunConfig, cleanCheckpointDir, truncateMetricsLog } from './trainer.ts';
import { toModelBatch, type ModelTask } from './batch.ts';
import { evaluateNlvr2, evaluateRetrieval, evaluateVqa, predictVqa, writeVqaSubmission } from './evaluate.ts';
import { importPretrained, loadCheckpoint, loadMethodCheckpoint } from './checkpoint.ts';
import { VILT_SYNTH, SYNTH_METHOD_OPTIONS, meterSynthConfig } from '../models/pretrain.ts';
import { sourceCommit } from './provenance.ts';
import { RUN_FILE, accountRun, mainScore, readRunFile, writeRunFile, type RunFile } from './report.ts';
import { resolvePretrained } from './pretrained.ts';

export type Preset = 'tiny' | 'base' | 'synth';

export type Backbone = 'vilt' | 'meter';

export interface RunOptions {
  data: string;
  task: ModelTask;
  backbone: Backbone;
  config?: Preset;
  /** model config on top of the preset (sized to the tokenizer): aptune or Hugging Face names (models/config.ts) */
  modelOverrides?: Record<string, unknown>;
  /** default DEFAULT_METHOD (models/petl/registry.ts) */
  method?: string;
  methodOptions?: Record<string, number | boolean>;
  pretrained?: string;
  epochs?: number;
  maxSteps?: number;
  batchSize?: number;
  accumulate?: number;
  lr?: number;
  out: string;
  resume?: string;
  /**
   * resume from OUT/last.safetensors when it holds this very run (run.json's options and every key of the
   * checkpoint's run config equal to this run's), else train afresh (a finished run trains nothing); the comparison's
   * runs use it so that a killed `compare` / `table --mini` picks up where it stopped
   */
  autoResume?: boolean;
  seed?: number;
  evalEvery?: number;
  evalEveryEpochs?: number;
  /** evaluate on the task's eval split (every evalEvery steps and at the end; default true); false: train only (a caller that scores the checkpoint itself) */
  evaluate?: boolean;
  /** checkpoint every N optimizer steps (default max(1, floor(maxSteps / 10)); 0: only at the end / on stop); also every 30 minutes */
  saveEvery?: number;
  vocab?: string;
  imageSize?: number;
  maxTextLen?: number;
  /** IRTR negatives per image (default 15) */
  negatives?: number;
  gradClip?: number;
  weightDecay?: number;
  /** RandAugment(2, 9) on training images (default true, the reference's *_randaug configs) */
  randaug?: boolean;
  log?: (line: string) => void;
  /** each record the trainer logs (train steps, evaluations); default: `log` of its JSON */
  onRecord?: (record: Record<string, unknown>) => void;
  /** called after each evaluation batch (progress display) */
  onEvalBatch?: (done: number, total: number) => void;
  /** called once before the first step with what a progress display and the run directory's run.json need */
  onStart?: (info: RunStartInfo) => void;
}

export interface RunStartInfo {
  /** the resolved run configuration (as stored in the checkpoint) */
  runConfig: Record<string, unknown>;
  maxSteps: number;
  /** optimizer steps per epoch */
  stepsPerEpoch: number;
  /** optimizer step the run starts from (resume) */
  startStep: number;
  trainableParams: number;
}

const TASK_DATA: Record<ModelTask, TaskName> = { vqa: 'vqa', nlvr2: 'nlvr2', irtr: 'f30k' };
const EVAL_SPLIT: Record<ModelTask, Split> = { vqa: 'val', nlvr2: 'val', irtr: 'test' };

/** §6.1 / §6.2 base LR and multipliers. */
export function defaultHyper(backbone: Backbone, task: ModelTask): { lr: number; lrMultHead: number; lrMultCrossModal: number } {
  if (backbone === 'vilt') return { lr: 5e-4, lrMultHead: task === 'vqa' ? 10 : 1, lrMultCrossModal: 1 };
  return { lr: task === 'vqa' ? 2.5e-5 : task === 'nlvr2' ? 1e-5 : 5e-5, lrMultHead: task === 'vqa' ? 50 : task === 'nlvr2' ? 10 : 5, lrMultCrossModal: 5 };
}

/**
 * Every text of the tables in `dir` (questions / captions / sentences) plus the ViLT prefix. With `tables` (names
 * without `.arrow`), only those are opened (each must exist); without, every table of a known layout, and files
 * of other names (e.g. ViLT's coco_caption_karpathy_*.arrow) are passed to `onSkip` unopened.
 */
export async function dataTexts(dir: string, opts: { tables?: readonly string[]; onSkip?: (file: string) => void } = {}): Promise<string[]> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir}: data directory not found`);
  let files: string[];
  if (opts.tables) {
    files = [...new Set(opts.tables)].map((n) => `${n}.arrow`);
    for (const f of files) if (!fs.existsSync(path.join(dir, f))) throw new Error(`${path.join(dir, f)}: table not found (needed: ${files.join(', ')} in ${dir})`);
  } else {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.arrow')).sort().filter((f) => {
      if (LAYOUTS.some((l) => f.startsWith(l.prefix))) return true;
      opts.onSkip?.(f);
      return false;
    });
    if (!files.length) throw new Error(`${dir}: no .arrow tables of a known layout in the data directory`);
  }
  const texts: string[] = [VILT_TEXT_PREFIX];
  for (const f of files) {
    const r = await ArrowTableReader.open(path.join(dir, f), { allowEmpty: true });
    try {
      const col = r.hasColumn('questions') ? 'questions' : r.hasColumn('caption') ? 'caption' : null;
      if (col) for (const v of await r.columnValues(col)) texts.push(...(v as string[]));
    } finally { await r.close(); }
  }
  return texts;
}

/** The tables a task reads for a backbone (train + val + test splits), and the folder's other .arrow files. */
export function taskTables(dir: string, backbone: Backbone, task: TaskName): { needed: string[]; unused: string[] } {
  const t = TASK_TABLES[backbone][task];
  const needed = [...new Set([...t.train, ...t.val, ...t.test])];
  const unused = fs.readdirSync(dir).filter((f) => f.endsWith('.arrow') && !needed.includes(f.slice(0, -'.arrow'.length))).sort();
  return { needed, unused };
}

/** The model config of a run: the preset, sized to the tokenizer (tiny), with clsTokenId = the tokenizer's [CLS] / <s>. */
export function resolveModelConfig(backbone: Backbone, preset: Preset, tok: Tokenizer, maxLen: number): ViltConfig | MeterConfig {
  if (preset === 'synth') {
    if (backbone === 'meter') return meterSynthConfig({ vocab: tok.vocabSize, padId: tok.padId, startId: tok.startId, maxTextLen: maxLen });
    return { ...VILT_SYNTH, vocab: tok.vocabSize, maxTextLen: maxLen, clsTokenId: tok.startId };
  }
  if (preset === 'base') {
    const c = backbone === 'vilt' ? VILT_BASE : METER_BASE;
    const vocab = backbone === 'vilt' ? (c as ViltConfig).vocab : (c as MeterConfig).roberta.vocab;
    if (tok.vocabSize > vocab) throw new Error(`the tokenizer has ${tok.vocabSize} tokens but the base ${backbone} text embedding has ${vocab}; pass the backbone's own vocabulary with --vocab`);
    return c.clsTokenId === tok.startId ? c : { ...c, clsTokenId: tok.startId };
  }
  if (backbone === 'vilt') return { ...VILT_TINY, vocab: tok.vocabSize, maxTextLen: maxLen, clsTokenId: tok.startId };
  return {
    ...METER_TINY, maxTextLen: maxLen, clsTokenId: tok.startId,
    roberta: { ...METER_TINY.roberta, vocab: tok.vocabSize, padIdx: tok.padId, maxPositions: maxLen + tok.padId + 2 },
  };
}

export function transformFor(backbone: Backbone, cfg: ViltConfig | MeterConfig, imageSize: number) {
  if (backbone === 'vilt') return pixelbertTransform(imageSize, undefined, (cfg as ViltConfig).patch);
  return clipTransform(imageSize);
}

/** The image size a run uses unless --image-size is given (ViLT tiny 4 x patch, synth the position grid x patch). */
export function defaultImageSize(backbone: Backbone, preset: Preset, cfg: ViltConfig | MeterConfig): number {
  if (backbone === 'meter') return (cfg as MeterConfig).clip.imageSize;
  if (preset === 'synth') return (cfg as ViltConfig).posGrid * (cfg as ViltConfig).patch;
  return preset === 'tiny' ? 4 * (cfg as ViltConfig).patch : 384;
}

/**
 * THE run configuration: what a method checkpoint stores (kind 'method') and run.json's `resolved`, written by runTrain
 * and read back by rebuildFromCheckpoint (aptune eval, the comparison's scoring) and train/report.ts. Everything needed
 * to rebuild the same model: backbone, task, method + options, resolved model config, answers, seed, tokenizer, text
 * length, image size, pre-trained file; then the training settings.
 */
export interface RunConfig {
  kind?: string;
  backbone: Backbone; task: ModelTask; method: string; methodOptions: Record<string, number | boolean>;
  modelConfig: ViltConfig | MeterConfig; numAnswers: number; preset: Preset; seed: number;
  /** tokenizer vocabulary file */
  vocab: string; maxTextLen: number; imageSize: number;
  /** IRTR negatives per image */
  negatives: number;
  modelOverrides?: Record<string, unknown>;
  /** absolute path of the pre-trained backbone file */
  pretrained?: string;
  lr?: number; batchSize?: number; accumulate?: number; maxSteps?: number; randaug?: boolean;
  /** optimizer step of a checkpoint */
  step?: number;
}

interface Built {
  model: VLModel; tok: Tokenizer; runConfig: RunConfig; loaderBase: Omit<TaskLoaderOptions, 'batchSize'>;
}

/** What build() needs: the identity part of a RunConfig before the model config is resolved, plus the data. */
type BuildInput = Pick<RunConfig, 'backbone' | 'task' | 'preset' | 'method' | 'methodOptions' | 'maxTextLen' | 'seed' | 'pretrained' | 'negatives' | 'modelOverrides'> & {
  data: string; vocabPath: string; tok: Tokenizer; imageSize?: number;
};

/** Build the model and the loader options from a run config (shared by train, resume and eval). */
async function build(rc: BuildInput, log: (s: string) => void): Promise<Built> {
  const presetConfig = resolveModelConfig(rc.backbone, rc.preset, rc.tok, rc.maxTextLen);
  const resolved = rc.modelOverrides ? resolveModelConfigReport(rc.backbone, rc.modelOverrides as ModelConfigInput, presetConfig) : null;
  if (resolved?.ignored.length) log(`model config: ignored keys without a model field: ${resolved.ignored.join(', ')}`);
  const modelConfig = resolved ? resolved.config : presetConfig;
  const numAnswers = rc.task === 'vqa' ? (await loadVqaVocab(rc.data, rc.backbone)).numClasses : 0;
  const model = createModel({ backbone: rc.backbone, config: modelConfig, task: rc.task, numAnswers, method: rc.method, methodOptions: rc.methodOptions, seed: rc.seed });
  if (rc.pretrained) {
    const pre = pretrainConfigOf(rc.pretrained);
    if (pre) { // an `aptune pretrain` checkpoint: the run must rebuild exactly its model
      for (const [k, v] of Object.entries(pre.modelConfig)) {
        if (JSON.stringify((modelConfig as unknown as Record<string, unknown>)[k]) !== JSON.stringify(v)) throw new Error(`${rc.pretrained}: pre-trained with modelConfig.${k} = ${JSON.stringify(v)}, this run has ${JSON.stringify((modelConfig as unknown as Record<string, unknown>)[k])} (use --config ${pre.preset} and its vocabulary)`);
      }
    }
    const rep = importPretrained(rc.pretrained, model);
    log(`pretrained ${rc.pretrained}: ${rep.loaded.length} tensors loaded, ${rep.missing.length} missing`);
  }
  const imageSize = rc.imageSize ?? defaultImageSize(rc.backbone, rc.preset, modelConfig);
  const runConfig: RunConfig = {
    backbone: rc.backbone, task: rc.task, method: model.method, methodOptions: model.methodOptions, modelConfig, numAnswers,
    preset: rc.preset, seed: rc.seed, vocab: rc.vocabPath, maxTextLen: rc.maxTextLen, imageSize, negatives: rc.negatives,
    ...(rc.modelOverrides ? { modelOverrides: rc.modelOverrides } : {}),
    ...(rc.pretrained ? { pretrained: path.resolve(rc.pretrained) } : {}),
  };
  const loaderBase: Omit<TaskLoaderOptions, 'batchSize'> = {
    model: rc.backbone, tokenizer: rc.tok, transform: transformFor(rc.backbone, modelConfig, imageSize), maxLength: rc.maxTextLen,
    numClasses: numAnswers || undefined, seed: rc.seed, concurrency: 4,
  };
  return { model, tok: rc.tok, runConfig, loaderBase };
}

/** The batches of `it`, calling tick(done, total) after each one is consumed (a progress display's hook). */
async function* counted<T>(it: AsyncIterable<T>, total: number, tick: (done: number, total: number) => void): AsyncGenerator<T> {
  let n = 0;
  for await (const x of it) { yield x; tick(++n, total); }
}

async function evalSplit(model: VLModel, data: string, backbone: Backbone, task: ModelTask, base: Omit<TaskLoaderOptions, 'batchSize'>, batchSize: number, split: Split = EVAL_SPLIT[task], tick?: (done: number, total: number) => void): Promise<Record<string, number>> {
  const ds = await TaskDataset.open(data, backbone, TASK_DATA[task], split);
  try {
    if (ds.isTest) throw new Error(`the VQA ${split} tables have no answers to score; write predictions with --submit FILE`);
    const loader = taskLoader(ds, { ...base, batchSize, shuffle: false, drawFalseText: 0, drawFalseImage: 0, augment: null }); // eval never augments
    const batches = tick ? counted(loader.epoch(0), loader.length, tick) : loader.epoch(0);
    if (task === 'vqa') return { ...(await evaluateVqa(model, batches, await ds.questionTypes())) };
    if (task === 'nlvr2') return await evaluateNlvr2(model, batches);
    return await evaluateRetrieval(model, batches);
  } finally { await ds.close(); }
}

/**
 * losses: this call's steps only; finalLoss: the last logged step's (a resumed run's earlier steps included);
 * msPerStep: the run summary's; resumedAt: the step it resumed from (null: trained from step 0)
 */
export interface TrainResult { checkpoint: string; metricsFile: string; steps: number; losses: number[]; eval: Record<string, number> | null; finalLoss: number; msPerStep: number | null; resumedAt: number | null }

/**
 * Why OUT/last.safetensors is not this run ('' when it is): run.json must name the same source commit and hold the same
 * options (resume flags aside), and the checkpoint's config every key of this run's config (seed, rate, steps, batch,
 * method, model, pre-trained file). (A tree with uncommitted changes is "<sha>-dirty" whatever the changes.)
 */
function sameRunAs(out: string, checkpoint: string, options: Record<string, unknown>, runConfig: Record<string, unknown>, commit: string): string {
  const prev = readRunFile(out);
  if (!prev) return `no readable ${RUN_FILE} beside it`;
  if (prev.commit !== commit) return `trained by source ${prev.commit ?? 'unrecorded'}, this is ${commit}`;
  const strip = (x: Record<string, unknown>) => JSON.stringify({ ...x, resume: undefined, autoResume: undefined });
  if (strip(prev.options) !== strip(options)) return `${RUN_FILE} holds other options`;
  let cfg: Record<string, unknown>;
  try { cfg = loadCheckpoint(checkpoint).config as Record<string, unknown>; } catch (e) { return (e as Error).message; }
  const bad = Object.keys(runConfig).filter((k) => JSON.stringify(cfg[k]) !== JSON.stringify(runConfig[k]));
  return bad.length ? `its ${bad.join(', ')} differ${bad.length === 1 ? 's' : ''}` : '';
}

export async function runTrain(o: RunOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const log = o.log ?? ((s: string) => console.log(s));
  if (o.pretrained) o = { ...o, pretrained: resolvePretrained(o.pretrained, o.backbone) };
  const pre = o.pretrained ? pretrainConfigOf(o.pretrained) : null;
  const preset = o.config ?? ((pre?.preset as Preset | undefined) ?? 'base');
  const method = o.method ?? DEFAULT_METHOD;
  const seed = o.seed ?? 0;
  const taskName = TASK_DATA[o.task];
  if (!fs.existsSync(o.data) || !fs.statSync(o.data).isDirectory()) throw new Error(`${o.data}: data directory not found`);
  ensureDirSync(o.out, '--out');
  const { needed, unused } = taskTables(o.data, o.backbone, taskName);
  if (unused.length) log(`data ${o.data}: task ${o.task} reads ${needed.map((n) => n + '.arrow').join(', ')}; not opened: ${unused.join(', ')}`);
  const maxTextLen = o.maxTextLen ?? pre?.modelConfig.maxTextLen ?? maxTextLength(o.backbone, taskName);
  let tok: Tokenizer, vocabPath: string;
  if (o.vocab) { tok = loadTokenizer(o.vocab); vocabPath = path.resolve(o.vocab); }
  else if (pre) { // the vocabulary the backbone was pre-trained with, carried in its checkpoint
    vocabPath = path.resolve(o.out, 'vocab.txt');
    const vocab = new Map(pre.vocab.map((t, i) => [t, i] as [string, number]));
    writeFileAtomicSync(vocabPath, formatVocabTxt(vocab));
    tok = new BertTokenizer(vocab, {}, vocabPath);
  } else {
    vocabPath = path.resolve(o.out, 'vocab.txt');
    if (o.resume && fs.existsSync(vocabPath)) tok = BertTokenizer.fromVocabTxt(vocabPath);
    else {
      const t = TASK_TABLES[o.backbone][taskName];
      const vocab = buildWordPieceVocab(await dataTexts(o.data, { tables: [...t.train, ...t.val] })); // the task's own texts
      writeFileAtomicSync(vocabPath, formatVocabTxt(vocab));
      tok = new BertTokenizer(vocab, {}, vocabPath);
    }
  }
  const presetOptions = preset === 'tiny' ? TINY_METHOD_OPTIONS : preset === 'synth' ? SYNTH_METHOD_OPTIONS : null;
  const methodOptions = { ...(presetOptions && isMethodName(method) ? presetOptions[method] : {}), ...(o.methodOptions ?? {}) };
  const negatives = o.negatives ?? 15;
  const b = await build({ data: o.data, backbone: o.backbone, task: o.task, preset, method, methodOptions, vocabPath, tok, maxTextLen, imageSize: o.imageSize, seed, pretrained: o.pretrained, negatives, modelOverrides: o.modelOverrides }, log);
  const batchSize = o.batchSize ?? 32, accumulate = o.accumulate ?? 1;
  const train = await TaskDataset.open(o.data, o.backbone, taskName, 'train');
  try {
    const randaug = o.randaug ?? true;
    const loader = taskLoader(train, {
      ...b.loaderBase, batchSize, shuffle: true, drawFalseText: o.task === 'irtr' ? negatives : 0,
      drawFalseImage: o.task === 'irtr' && o.backbone === 'meter' ? 1 : 0, // METER's ITM loss (§4.3); ViLT's is off
      augment: randaug ? new RandAugment(2, 9) : null,
    });
    const epochs = o.epochs ?? 10;
    const maxSteps = o.maxSteps ?? Math.max(1, Math.floor((loader.length * epochs) / accumulate));
    const hyper = defaultHyper(o.backbone, o.task);
    const lr = o.lr ?? hyper.lr;
    const groups = parameterGroups(b.model, { lr, weightDecay: o.weightDecay ?? 0.01, lrMultHead: hyper.lrMultHead, lrMultCrossModal: hyper.lrMultCrossModal });
    const optimizer = new AdamW(groups, { lr, betas: [0.9, 0.98], eps: 1e-8 });
    const scheduler = new PolynomialDecayWithWarmup(optimizer, { totalSteps: maxSteps, warmupSteps: warmupSteps(maxSteps) });
    const checkpoint = path.join(o.out, 'last.safetensors');
    const metricsFile = path.join(o.out, 'metrics.jsonl');
    const runConfig = { ...b.runConfig, lr, batchSize, accumulate, maxSteps, randaug };
    const { log: _l, onRecord: _r, onStart: _s, onEvalBatch: _e, ...options } = o;
    const stale = cleanCheckpointDir(checkpoint, metricsFile, path.join(o.out, 'vocab.txt'), path.join(o.out, RUN_FILE), path.join(o.out, 'report.html')); // temporaries of a killed run
    if (stale.length) log(`removed ${stale.length} temporary file(s) left by an interrupted run: ${stale.join(', ')}`);
    let resume = o.resume, previous: RunFile | null = null;
    const commit = sourceCommit();
    if (o.autoResume && !resume && fs.existsSync(checkpoint)) {
      const why = sameRunAs(o.out, checkpoint, options, runConfig, commit);
      if (why) log(`${checkpoint}: not resumed (${why}); training afresh`);
      else { resume = checkpoint; previous = readRunFile(o.out); }
    }
    if (!resume) fs.rmSync(metricsFile, { force: true }); // a fresh run starts a fresh log; a resumed one appends
    const saveEvery = o.saveEvery ?? Math.max(1, Math.floor(maxSteps / 10));
    const trainer = new Trainer<TaskBatch>({
      model: b.model, optimizer, scheduler, maxSteps, accumulate, gradClip: o.gradClip,
      // retrieval drops the text columns that are padding in all of a batch's 1 + K captions (exact up to float
      // summation order; a synthetic caption is a quarter of max_length); VQA and NLVR2 keep the reference's padding
      data: { epoch: (e) => loader.epoch(e), toBatch: (tb) => toModelBatch(tb, o.task, undefined, { trimPadding: o.task === 'irtr' }) },
      evalEvery: o.evalEvery, evalEveryEpochs: o.evalEveryEpochs, evaluate: o.evaluate === false ? undefined : () => evalSplit(b.model, o.data, o.backbone, o.task, b.loaderBase, batchSize, undefined, o.onEvalBatch),
      logFile: metricsFile, checkpoint, runConfig, checkpointEvery: saveEvery || undefined, checkpointEveryMs: saveEvery === 0 ? undefined : 30 * 60 * 1000,
      onLog: o.onRecord ?? ((r) => log(JSON.stringify(r))),
    });
    if (resume) {
      trainer.loadCheckpoint(resume);
      const cut = truncateMetricsLog(metricsFile, trainer.step, trainer.evalStateKnown ? trainer.lastEvalStep : undefined);
      if (cut) log(`metrics.jsonl: ${cut} record(s) after step ${trainer.step} removed (logged after the checkpoint)`);
      log(`resumed ${resume} at step ${trainer.step} (epoch ${trainer.epoch}, batch ${trainer.batchInEpoch})${trainer.step >= maxSteps ? ': finished, nothing to train' : ''}`);
    }
    const nTrain = b.model.trainableParameters().reduce((s, [, p]) => s + p.size, 0);
    log(`train ${o.backbone}/${preset} ${o.task} method ${b.model.method}: ${nTrain} trainable parameters, ${maxSteps} optimizer steps (warmup ${warmupSteps(maxSteps)}), batch ${batchSize} x ${accumulate}, RandAugment ${randaug ? 'on' : 'off'}${o.task === 'irtr' && o.backbone === 'meter' ? ', loss IRTR + ITM' : ''}`);
    const runFile: RunFile = { command: 'train', started: previous?.started ?? new Date().toISOString(), commit, options, resolved: runConfig };
    writeRunFile(o.out, runFile); // the resolved configuration; the summary is added at the end
    o.onStart?.({ runConfig, maxSteps, stepsPerEpoch: Math.max(1, Math.ceil(loader.length / accumulate)), startStep: trainer.step, trainableParams: nTrain });
    const onSig = () => { log('SIGINT: finishing the current step, then writing the checkpoint'); trainer.requestStop(); };
    process.once('SIGINT', onSig);
    let hist;
    const startStep = trainer.step, tFit = performance.now();
    try { hist = await trainer.fit(); } finally { process.removeListener('SIGINT', onSig); }
    const fitMs = performance.now() - tFit;
    const records = [...fs.readFileSync(metricsFile, 'utf8').trim().split('\n')].map((l) => JSON.parse(l) as Record<string, number | string>);
    const evalRec = records.filter((r) => r.type === 'eval').pop() ?? null;
    const finalLoss = records.filter((r) => r.type === 'train').pop()?.loss; // (a resumed run's earlier steps included)
    const msPerStep = trainer.step > startStep ? fitMs / (trainer.step - startStep) : previous?.summary?.msPerStep ?? null; // (a finished run resumed: the time of its steps)
    writeRunFile(o.out, { ...runFile, summary: {
      method: b.model.method, task: o.task, backbone: o.backbone, score: mainScore(o.task, evalRec), steps: trainer.step, trainableParams: nTrain,
      ...accountRun(runConfig), msPerStep, peakRssBytes: process.resourceUsage().maxRSS * 1024, wallSeconds: (performance.now() - t0) / 1000, finished: trainer.step >= maxSteps,
    } });
    return {
      checkpoint, metricsFile, steps: trainer.step, losses: hist.map((h) => h.loss), eval: evalRec as Record<string, number> | null,
      finalLoss: typeof finalLoss === 'number' ? finalLoss : NaN, msPerStep, resumedAt: resume ? startStep : null,
    };
  } finally { await train.close(); }
}

export interface EvalRunOptions {
  data: string; task: ModelTask; checkpoint: string; batchSize?: number; vocab?: string; out?: string;
  /** tables to evaluate (default: VQA val, NLVR2 dev + test1, F30K test); VQA test needs `submit` */
  split?: Split;
  /** VQA: write the split's predictions as [{question_id, answer}] JSON to this file (atomically) */
  submit?: string;
  log?: (s: string) => void;
  /** called after each evaluation batch (progress display) */
  onEvalBatch?: (done: number, total: number) => void;
}

export interface Rebuilt extends Built { rc: RunConfig }

/**
 * THE way back from a method checkpoint to its model: reads the run config (kind 'method'), checks it against `task`
 * when given, opens its tokenizer (or `vocab`), rebuilds the model exactly as runTrain built it (preset sized to the
 * tokenizer, overrides, answers of `data`, pre-trained file) and refuses a rebuilt config that differs from the stored
 * one (naming the key), then loads the checkpoint's trainable weights. Serves aptune eval and the comparison's scoring.
 */
export async function rebuildFromCheckpoint(checkpoint: string, o: { data: string; task?: ModelTask; vocab?: string; log?: (s: string) => void }): Promise<Rebuilt> {
  const log = o.log ?? (() => undefined);
  const rc = loadCheckpoint(checkpoint).config as RunConfig | null;
  if (!rc || rc.kind !== 'method' || !rc.backbone || !rc.task) throw new Error(`${checkpoint}: not a method checkpoint written by aptune train (no run config)`);
  if (o.task) checkRunConfig(checkpoint, rc, { task: o.task });
  if (!fs.existsSync(o.data) || !fs.statSync(o.data).isDirectory()) throw new Error(`${o.data}: data directory not found`);
  const vocabPath = o.vocab ?? rc.vocab;
  if (!fs.existsSync(vocabPath)) throw new Error(`${checkpoint}: its tokenizer ${vocabPath} is missing (pass --vocab)`);
  const tok = loadTokenizer(vocabPath);
  const b = await build({ ...rc, data: o.data, vocabPath, tok }, log);
  checkRunConfig(checkpoint, rc, b.runConfig as unknown as Record<string, unknown>);
  loadMethodCheckpoint(checkpoint, b.model.backbone);
  return { ...b, rc };
}

/**
 * Rebuild the model from a method checkpoint (rebuildFromCheckpoint) and evaluate the task's eval split (or
 * `split`); with `submit` (VQA), write the split's predictions and return their count (plus the score when the
 * split is labelled).
 */
export async function runEval(o: EvalRunOptions): Promise<Record<string, number>> {
  const log = o.log ?? ((s: string) => console.log(s));
  const b = await rebuildFromCheckpoint(o.checkpoint, { data: o.data, task: o.task, vocab: o.vocab, log });
  const rc = b.rc;
  const split = o.split ?? EVAL_SPLIT[rc.task];
  let r: Record<string, number> = {};
  if (o.submit) {
    if (rc.task !== 'vqa') throw new Error(`--submit writes VQA predictions; the checkpoint's task is ${rc.task}`);
    const ds = await TaskDataset.open(o.data, rc.backbone, 'vqa', split);
    try {
      const vocab = await loadVqaVocab(o.data, rc.backbone);
      const batches = taskLoader(ds, { ...b.loaderBase, batchSize: o.batchSize ?? 32, shuffle: false, drawFalseText: 0, drawFalseImage: 0, augment: null }).epoch(0);
      const preds = await predictVqa(b.model, batches, vocab.id2answer);
      writeVqaSubmission(o.submit, preds);
      log(`wrote ${preds.length} answers to ${o.submit}`);
      r.submitted = preds.length;
    } finally { await ds.close(); }
    if (split !== 'test') r = { ...r, ...(await evalSplit(b.model, o.data, rc.backbone, rc.task, b.loaderBase, o.batchSize ?? 32, split, o.onEvalBatch)) };
  } else {
    r = await evalSplit(b.model, o.data, rc.backbone, rc.task, b.loaderBase, o.batchSize ?? 32, split, o.onEvalBatch);
  }
  if (o.out) writeFileAtomicSync(o.out, JSON.stringify({ checkpoint: o.checkpoint, task: rc.task, split, step: rc.step, ...r }, null, 2) + '\n');
  return r;
}

/** The config of an `aptune pretrain` checkpoint (kind 'pretrain': model config + vocabulary), or null for any other weights file. */
export function pretrainConfigOf(file: string): { preset: string; backbone: Backbone; modelConfig: ViltConfig | MeterConfig; vocab: string[] } | null {
  if (!/\.safetensors$/i.test(file) || !fs.existsSync(file)) return null;
  let cfg: unknown;
  try { cfg = loadCheckpoint(file).config; } catch { return null; } // not an aptune checkpoint: an import
  const c = cfg as { kind?: unknown; preset?: unknown; modelConfig?: unknown; vocab?: unknown } | null;
  if (!c || c.kind !== 'pretrain') return null;
  if (!Array.isArray(c.vocab) || typeof c.modelConfig !== 'object' || !c.modelConfig) throw new Error(`${file}: pretrain checkpoint without its vocab / modelConfig`);
  return { preset: String(c.preset), backbone: (c as { backbone?: Backbone }).backbone ?? 'vilt', modelConfig: c.modelConfig as ViltConfig | MeterConfig, vocab: c.vocab as string[] };
}
