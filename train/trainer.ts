// A Lightning-like training loop over a VLModel (apt-spec §6.3): epochs / max optimizer steps, gradient
// accumulation (each micro-batch loss divided by the number of micro-batches, so the step sees the mean loss over
// the effective batch; the last micro-batches of an epoch step even when fewer, like PL), the lr schedule stepped
// once per optimizer step, optional grad-norm clipping, evaluation every N optimizer steps or epochs, a JSONL
// metric log, and training checkpoints written as ONE file, atomically (temporary + fsync + rename + directory
// fsync), every `checkpointEvery` steps, every `checkpointEveryMs` and at the end:
//   FILE   safetensors holding the trainable weights under their names (loadable by train/checkpoint.ts
//          loadMethodCheckpoint, which skips the rest), the AdamW moments under TRAIN_STATE_PREFIX + m./v. + name,
//          and in its metadata the run config, the loop position (step, epoch, batch in epoch) and `trainState`
//          (per-parameter Adam step counters, groups, scheduler step, dropout-generator state).
// Weights and state are one unit: a kill at any instant leaves the previous checkpoint or the new one, whole.
// Resume restores everything and continues exactly: the data order is a pure function of (seed, epoch), so the
// consumed micro-batches of the current epoch are skipped; truncateMetricsLog cuts the JSONL log back to the
// resumed step. Checkpoints of the earlier two-file layout (FILE + FILE.state) are still resumed. A stop request
// (SIGINT in the CLI) finishes the current optimizer step, writes the checkpoint and returns.
// Does not: build models, optimisers or loaders (the CLI does), or choose checkpoints by validation (the
// reference keeps the last).
// Invariants: every micro-batch and optimizer step runs inside an engine scope, so the live tensor count after a
// step equals the count before it (parameters, grads between micro-batches, and moment buffers excepted); only
// parameters that require grad are handed to the optimizer, so frozen weights never change; a checkpoint is one
// atomic file (weights + state + position), never a pair that a kill could tear.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Generator, noGrad, scope, type Tensor } from '../engine/index.ts';
import type { Batch, ForwardOutput, VLModel } from '../models/index.ts';
import { Dropout, setDropoutGenerator } from '../models/nn/layers.ts';
import { clipGradNorm, type AdamW } from './optim.ts';
import type { PolynomialDecayWithWarmup } from './schedule.ts';
import type { HostTensor } from '../data/formats/safetensors.ts';
import { TRAIN_STATE_PREFIX, fromHost, loadCheckpoint, loadMethodCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { removeStaleTemps, writeFileAtomicSync } from '../data/formats/atomic.ts';
import { accuracySum, vqaScoreSum } from './metrics.ts';

/** Where the training data comes from: one epoch of raw items, and the conversion to a Batch (run inside a scope). */
export interface TrainData<T> {
  epoch(epoch: number): AsyncIterable<T> | Iterable<T>;
  toBatch(item: T): Batch;
}

export interface TrainerOptions<T> {
  model: VLModel;
  optimizer: AdamW;
  scheduler?: PolynomialDecayWithWarmup;
  data: TrainData<T>;
  /** total optimizer steps (the schedule's T) */
  maxSteps: number;
  /** micro-batches per optimizer step (default 1) */
  accumulate?: number;
  /** clip the global grad norm to this value (default: no clipping) */
  gradClip?: number;
  /** evaluate every N optimizer steps (and at the end) when `evaluate` is given */
  evalEvery?: number;
  /** evaluate at the end of every N-th epoch */
  evalEveryEpochs?: number;
  evaluate?: () => Promise<Record<string, number>> | Record<string, number>;
  /** JSONL metric log (appended) */
  logFile?: string;
  /** checkpoint path written at the end, on stop, every `checkpointEvery` steps and every `checkpointEveryMs` */
  checkpoint?: string;
  checkpointEvery?: number;
  checkpointEveryMs?: number;
  /** run config stored in the checkpoint metadata (method, options, backbone, model config, task...) */
  runConfig?: Record<string, unknown>;
  /** called with each logged record (e.g. console output) */
  onLog?: (record: Record<string, unknown>) => void;
}

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  metric: number;
  gradNorm?: number;
}

/** The two-file layout's state file (read for old checkpoints only). */
export function statePathFor(file: string): string {
  return file.endsWith('.safetensors') ? file.slice(0, -'.safetensors'.length) + '.state.safetensors' : file + '.state';
}

/** The keys that must agree between a checkpoint and the run that loads it. */
export const RUN_IDENTITY_KEYS = ['backbone', 'task', 'method', 'methodOptions', 'modelConfig', 'numAnswers'] as const;

/** Throws naming every identity key whose value differs between the checkpoint's config and the run's. */
export function checkRunConfig(file: string, found: unknown, expected: Record<string, unknown>): void {
  if (!found || typeof found !== 'object') throw new Error(`${file}: the checkpoint has no run config (not written by aptune train)`);
  const f = found as Record<string, unknown>;
  const bad: string[] = [];
  for (const k of RUN_IDENTITY_KEYS) {
    if (!(k in expected)) continue;
    const a = JSON.stringify(f[k]), b = JSON.stringify(expected[k]);
    if (a !== b) bad.push(`${k}: checkpoint ${a ?? 'missing'}, this run ${b}`);
  }
  if (bad.length) throw new Error(`${file}: checkpoint is from another method/config (${bad.join('; ')})`);
}

/** The training metric of one micro-batch as (sum, count): VQA score, NLVR2 accuracy, IRTR top-1 of the true caption. */
export function batchMetric(model: VLModel, out: ForwardOutput, batch: Batch): { sum: number; count: number } {
  const lg = out.logits;
  const [B, C] = lg.shape;
  if (model.task === 'vqa') return vqaScoreSum(lg.toArray(), batch.vqaTargets!.toArray(), B, C);
  if (model.task === 'irtr') return accuracySum(lg.toArray(), new Int32Array(B), C);
  return accuracySum(lg.toArray(), batch.labels!.toArray(), C);
}

function dropoutGenerator(model: VLModel): Generator | undefined {
  for (const [, m] of model.backbone.namedModules()) if (m instanceof Dropout && m.generator) return m.generator;
  return undefined;
}

export class Trainer<T> {
  step = 0;
  epoch = 0;
  /** micro-batches of the current epoch already consumed */
  batchInEpoch = 0;
  readonly history: StepRecord[] = [];
  private stopRequested = false;
  private names: Map<Tensor, string>;
  private lastSave = Date.now();
  /** the step of the last logged evaluation (-1: none); saved with the position, so that a resumed run neither
   *  repeats an evaluation its checkpoint already follows nor keeps one logged after the checkpoint */
  lastEvalStep = -1;

  constructor(readonly o: TrainerOptions<T>) {
    const acc = o.accumulate ?? 1;
    if (!(Number.isInteger(acc) && acc >= 1)) throw new Error(`trainer: accumulate must be an integer >= 1, got ${acc}`);
    if (!(Number.isInteger(o.maxSteps) && o.maxSteps >= 1)) throw new Error(`trainer: maxSteps must be an integer >= 1, got ${o.maxSteps}`);
    this.names = new Map(o.model.trainableParameters().map(([n, p]) => [p, n]));
    for (const g of o.optimizer.groups) for (const p of g.params) {
      if (!this.names.has(p)) throw new Error('trainer: the optimizer holds a parameter that is not trainable in the model');
    }
  }

  /** Finish the current optimizer step, write the checkpoint and return from fit(). */
  requestStop(): void { this.stopRequested = true; }
  get stopped(): boolean { return this.stopRequested; }

  private get accumulate(): number { return this.o.accumulate ?? 1; }

  /** One micro-batch: forward, loss / accumulate, backward (grads accumulate in .grad). Returns loss and metric. */
  private micro(item: T): { loss: number; metric: { sum: number; count: number } } {
    return scope(() => {
      const batch = this.o.data.toBatch(item);
      const { loss, out } = this.o.model.loss(batch);
      const value = loss.item();
      loss.div(this.accumulate).backward();
      const metric = batchMetric(this.o.model, out, batch);
      return { loss: value, metric };
    }, 'train-micro');
  }

  private optimizerStep(): number | undefined {
    return scope(() => {
      let norm: number | undefined;
      if (this.o.gradClip) norm = clipGradNorm(this.o.optimizer.groups.flatMap((g) => g.params), this.o.gradClip).item();
      this.o.optimizer.step();
      this.o.optimizer.zeroGrad();
      this.o.scheduler?.step();
      return norm;
    }, 'train-step');
  }

  private log(rec: Record<string, unknown>): void {
    if (this.o.logFile) {
      fs.mkdirSync(path.dirname(this.o.logFile), { recursive: true });
      fs.appendFileSync(this.o.logFile, JSON.stringify(rec) + '\n');
    }
    this.o.onLog?.(rec);
  }

  async runEval(): Promise<Record<string, number> | null> {
    if (!this.o.evaluate) return null;
    const m = this.o.model;
    m.eval();
    try {
      const r = await this.o.evaluate();
      this.log({ type: 'eval', step: this.step, epoch: this.epoch, ...r });
      return r;
    } finally { m.train(); }
  }

  /** Train until maxSteps optimizer steps (or a stop request). Returns the per-step records of this call. */
  async fit(): Promise<StepRecord[]> {
    const o = this.o;
    const out: StepRecord[] = [];
    o.model.train();
    while (this.step < o.maxSteps && !this.stopRequested) {
      let skip = this.batchInEpoch;
      let losses: number[] = [], msum = 0, mcount = 0;
      let anyInEpoch = false;
      const items = o.data.epoch(this.epoch);
      for await (const item of items as AsyncIterable<T>) {
        anyInEpoch = true;
        if (skip > 0) { skip--; continue; }
        const r = this.micro(item);
        losses.push(r.loss); msum += r.metric.sum; mcount += r.metric.count;
        this.batchInEpoch++;
        if (losses.length === this.accumulate) {
          out.push(this.finishStep(losses, msum, mcount));
          losses = []; msum = 0; mcount = 0;
          if (await this.afterStep()) { this.lastEvalStep = this.step; }
          if (this.step >= o.maxSteps || this.stopRequested) break;
        }
      }
      if (!anyInEpoch) throw new Error(`trainer: epoch ${this.epoch} yielded no batches`);
      if (losses.length > 0) { // epoch ended inside an accumulation window: PL steps on the last batch
        out.push(this.finishStep(losses, msum, mcount));
        if (await this.afterStep()) this.lastEvalStep = this.step;
      }
      if (this.step >= o.maxSteps || this.stopRequested) break; // position (epoch, batchInEpoch) kept for resume
      if (o.evaluate && o.evalEveryEpochs && (this.epoch + 1) % o.evalEveryEpochs === 0 && this.lastEvalStep !== this.step) {
        await this.runEval();
        this.lastEvalStep = this.step;
      }
      this.epoch++;
      this.batchInEpoch = 0;
    }
    if (o.evaluate && this.lastEvalStep !== this.step && !this.stopRequested) { // (a run resumed from its final
      await this.runEval(); //  checkpoint, killed before its summary, does not evaluate the same weights twice)
      this.lastEvalStep = this.step;
    }
    if (o.checkpoint) this.saveCheckpoint(o.checkpoint);
    return out;
  }

  private finishStep(losses: number[], msum: number, mcount: number): StepRecord {
    const lr = this.o.optimizer.groups[0]?.lr ?? 0;
    const gradNorm = this.optimizerStep();
    this.step++;
    const rec: StepRecord = { step: this.step, epoch: this.epoch, loss: losses.reduce((s, x) => s + x, 0) / losses.length, lr, metric: mcount ? msum / mcount : 0 };
    if (gradNorm !== undefined) rec.gradNorm = gradNorm;
    this.history.push(rec);
    this.log({ type: 'train', ...rec });
    return rec;
  }

  /** Periodic eval / checkpoint; returns true when an eval ran. */
  private async afterStep(): Promise<boolean> {
    const o = this.o;
    let evaluated = false;
    if (o.evaluate && o.evalEvery && this.step % o.evalEvery === 0) { await this.runEval(); evaluated = true; }
    const due = (o.checkpointEvery && this.step % o.checkpointEvery === 0) || (o.checkpointEveryMs && Date.now() - this.lastSave >= o.checkpointEveryMs);
    if (o.checkpoint && due && this.step < o.maxSteps && !this.stopRequested) this.saveCheckpoint(o.checkpoint);
    return evaluated;
  }

  /** Write FILE: trainable weights, optimizer moments, run config and loop position, as one atomic file. */
  saveCheckpoint(file: string): void {
    const tensors = new Map<string, Tensor>(this.o.model.backbone.trainableParameters());
    if (!tensors.size) throw new Error(`${file}: the model has no trainable parameters to save`);
    const opt = optimizerStateOf(this.o.optimizer, this.names);
    for (const [k, t] of opt.tensors) tensors.set(k, t);
    const gen = dropoutGenerator(this.o.model);
    const position = { step: this.step, epoch: this.epoch, batchInEpoch: this.batchInEpoch };
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    saveCheckpoint(file, tensors, {
      kind: 'method', ...(this.o.runConfig ?? {}), ...position,
      trainState: { lastEvalStep: this.lastEvalStep, adamSteps: opt.adamSteps, groups: opt.groups, schedulerStep: this.o.scheduler?.step_ ?? null, dropoutGenerator: gen ? gen.state() : null },
    });
    fs.rmSync(statePathFor(file), { force: true }); // a state file of the old two-file layout is now stale
    this.lastSave = Date.now();
  }

  /** Restore weights, optimizer, scheduler, generator and loop position from a checkpoint (or an old pair). */
  loadCheckpoint(file: string): void {
    const ck = loadCheckpoint(file);
    const config = ck.config;
    if (this.o.runConfig) checkRunConfig(file, config, this.o.runConfig);
    type State = { step: number; epoch: number; batchInEpoch: number; lastEvalStep?: number; adamSteps: Record<string, number>; schedulerStep: number | null; dropoutGenerator: { seed: number; offset: number } | null; groups: { lr: number; weightDecay: number }[] };
    const cfg = config as { step?: number; epoch?: number; batchInEpoch?: number; trainState?: Omit<State, 'step' | 'epoch' | 'batchInEpoch'> };
    let sc: State, stateFile: string, stateTensors: Map<string, HostTensor>;
    if (cfg.trainState) { // one file: weights + state
      if (!Number.isSafeInteger(cfg.step) || !Number.isSafeInteger(cfg.epoch) || !Number.isSafeInteger(cfg.batchInEpoch)) throw new Error(`${file}: training checkpoint without a valid loop position`);
      sc = { ...cfg.trainState, step: cfg.step!, epoch: cfg.epoch!, batchInEpoch: cfg.batchInEpoch! };
      stateFile = file;
      stateTensors = trainStateTensors(ck.tensors);
    } else { // the earlier two-file layout
      stateFile = statePathFor(file);
      if (!fs.existsSync(stateFile)) throw new Error(`${file}: cannot resume: the checkpoint holds no training state and ${stateFile} is missing`);
      const st = loadCheckpoint(stateFile);
      sc = st.config as State;
      stateTensors = st.tensors;
      if (sc?.step !== cfg.step) throw new Error(`${stateFile}: training state is at step ${sc?.step}, the weights ${file} at step ${cfg.step}`);
    }
    restoreOptimizerState(this.o.optimizer, this.names, stateTensors, sc, stateFile); // (checked before the weights change)
    loadMethodCheckpoint(file, this.o.model.backbone); // (loadStateDict copies into the existing tensors: the optimizer's parameters are the loaded ones)
    if (this.o.scheduler && sc.schedulerStep !== null) this.o.scheduler.setStep(sc.schedulerStep);
    if (sc.dropoutGenerator) setDropoutGenerator(this.o.model.backbone, Generator.fromState(sc.dropoutGenerator));
    this.step = sc.step; this.epoch = sc.epoch; this.batchInEpoch = sc.batchInEpoch;
    this.lastEvalStep = Number.isSafeInteger(sc.lastEvalStep) ? sc.lastEvalStep! : -1;
    this.evalStateKnown = sc.lastEvalStep !== undefined;
  }

  /** whether the loaded checkpoint recorded its last evaluation (checkpoints before 2026-12-07 did not) */
  evalStateKnown = true;
}

/**
 * The optimizer's state for a checkpoint: its moments as tensors `<TRAIN_STATE_PREFIX>m.<name>` / `v.<name>`, the
 * step counter of each parameter by name, and the groups' rates and decays. `names`: parameter -> its model name.
 */
export function optimizerStateOf(optimizer: AdamW, names: Map<Tensor, string>): { tensors: [string, Tensor][]; adamSteps: Record<string, number>; groups: { lr: number; weightDecay: number }[] } {
  const st = optimizer.getState();
  const tensors: [string, Tensor][] = [];
  const adamSteps: Record<string, number> = {};
  optimizer.groups.flatMap((g) => g.params).forEach((p, i) => {
    const n = names.get(p);
    if (n === undefined) throw new Error('optimizer state: a parameter of the optimizer has no name in the model');
    const s = st.params[i];
    adamSteps[n] = s.step;
    if (s.m) tensors.push([`${TRAIN_STATE_PREFIX}m.${n}`, s.m]);
    if (s.v) tensors.push([`${TRAIN_STATE_PREFIX}v.${n}`, s.v]);
  });
  return { tensors, adamSteps, groups: st.groups };
}

/** The training-state tensors of a one-file checkpoint, TRAIN_STATE_PREFIX removed (`m.<name>`, `v.<name>`). */
export function trainStateTensors(tensors: Map<string, HostTensor>): Map<string, HostTensor> {
  return new Map([...tensors].filter(([k]) => k.startsWith(TRAIN_STATE_PREFIX)).map(([k, v]) => [k.slice(TRAIN_STATE_PREFIX.length), v]));
}

/** Load what optimizerStateOf saved (stateTensors: the `m.` / `v.` tensors, prefix removed); errors name `where`. */
export function restoreOptimizerState(optimizer: AdamW, names: Map<Tensor, string>, stateTensors: Map<string, HostTensor>, sc: { adamSteps?: Record<string, number>; groups?: { lr: number; weightDecay: number }[] }, where: string): void {
  if (!sc.adamSteps || typeof sc.adamSteps !== 'object' || !Array.isArray(sc.groups)) throw new Error(`${where}: training state lacks the optimizer's step counters or groups`);
  const steps = sc.adamSteps;
  const made: Tensor[] = [];
  const get = (k: string): Tensor | null => {
    const h = stateTensors.get(k);
    if (!h) return null;
    const t = fromHost(h);
    made.push(t);
    return t;
  };
  try {
    optimizer.loadState({
      groups: sc.groups,
      params: optimizer.groups.flatMap((g) => g.params).map((p) => {
        const n = names.get(p)!;
        if (!(n in steps)) throw new Error(`${where}: no optimizer state for '${n}'`);
        return { step: steps[n], m: get(`m.${n}`), v: get(`v.${n}`) };
      }),
    });
  } finally { for (const t of made) t.dispose(); }
}

/** Evaluate `fn` with the model in eval mode and no gradients, inside a scope (nothing leaks). */
export function evalForward<R>(model: VLModel, fn: () => R): R {
  return noGrad(() => scope(fn, 'eval'));
}

/**
 * Cut a JSONL metric log back to `step`: records with a step beyond it (logged after the checkpoint a run resumes
 * from) and a torn last line (a kill during the append) are dropped; rewritten atomically, only when it changed.
 * With `lastEvalStep` (the checkpoint's) an evaluation record at `step` itself is kept only when the checkpoint
 * followed it (an end-of-epoch or final evaluation logged after the step's checkpoint is run again on resume).
 * Returns the number of lines removed.
 */
export function truncateMetricsLog(file: string, step: number, lastEvalStep?: number): number {
  if (!fs.existsSync(file)) return 0;
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length);
  const keep = lines.filter((l) => {
    try {
      const r = JSON.parse(l) as { step?: unknown; type?: unknown };
      if (typeof r.step !== 'number' || r.step > step) return false;
      return !(r.type === 'eval' && r.step === step && lastEvalStep !== undefined && lastEvalStep !== step);
    } catch { return false; }
  });
  if (keep.length !== lines.length) writeFileAtomicSync(file, keep.map((l) => l + '\n').join(''));
  return lines.length - keep.length;
}

/** Remove what a killed run left beside its files (checkpoint, log, vocabulary): temporaries of interrupted atomic writes. */
export function cleanCheckpointDir(...files: string[]): string[] {
  return files.flatMap((f) => removeStaleTemps(f));
}
