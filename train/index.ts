// `aptune/train`: the training side as a library: the trainer loop, `aptune train` / `aptune eval` as functions,
// optimisers and the schedule, metrics, evaluation, checkpoints, the run report and the progress reporter the CLI
// uses. The synthetic experiments (`aptune pretrain`, `aptune compare`) are `aptune/experiments` (experiments/index.ts).
// Invariant: this file only re-exports; dependencies run train -> models -> engine and train -> data, never
// train -> experiments.
export { Trainer, evalForward, batchMetric, statePathFor, type TrainData, type TrainerOptions, type StepRecord } from './trainer.ts';
export { runTrain, runEval, defaultHyper, type RunOptions, type EvalRunOptions, type TrainResult, type Preset, type Backbone } from './run.ts';
export { AdamW, SGD, clipGradNorm, type AdamWOptions, type ParamGroup, type GroupSpec } from './optim.ts';
export { PolynomialDecayWithWarmup, warmupSteps, polyLr } from './schedule.ts';
export { MeanMetric, KeyedMean, vqaScoreSum, accuracySum, retrievalRecall, argmaxRows } from './metrics.ts';
export { evaluateVqa, evaluateNlvr2, evaluateRetrieval, predictVqa, writeVqaSubmission } from './evaluate.ts';
export * as checkpoint from './checkpoint.ts';
export * as safetensors from '../data/formats/safetensors.ts';
export { writeReport, renderReport, readRun, writeRunFile, lineChart, type RunData, type RunFile, type RunSummary } from './report.ts';
export { Progress, progressMode, type ProgressMode, type ProgressOptions } from './progress.ts';
