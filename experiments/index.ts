// `aptune/experiments`: the synthetic experiments as a library: the synthetic benchmark generator and its cache,
// pre-training a small backbone on it (`aptune pretrain`), the method comparison (`aptune compare`), the miniature
// table (`aptune table --mini`), `npm start`, and the engine demo.
// Invariant: this file only re-exports; dependencies run experiments -> train -> models -> engine, and experiments
// -> data; nothing outside experiments/ imports it except the root index and the CLI's lazy `import()` of a command.
export { generateSynthetic, formatReport as formatSynthReport, runSynth, SYNTH_VERSION, SIZE_PRESETS, type SynthOptions, type SynthReport } from './synthetic.ts';
export { ensureSynthData, cacheRoot, DEFAULT_DATA_SEED } from './synth-cache.ts';
export { runPretrain, loadPretrainModel, evaluatePretrainFile, SYNTH_RECIPE, METER_SYNTH_RECIPE, PRETRAIN_GATES, type PretrainOptions, type PretrainResult } from './pretrain.ts';
export { runCompare, formatCompareTable, type CompareOptions, type CompareResult } from './compare.ts';
export { runMiniTable, formatMiniTable, MINI_CELLS, MINI_METHODS } from './mini-table.ts';
export { runStart, START_METHODS, START_STEPS } from './start.ts';
export { runDemo } from './demo.ts';
