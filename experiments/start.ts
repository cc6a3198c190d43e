// `npm start` (= `aptune start`): the product's main job on the embedded default. It generates the synthetic
// benchmark into the cache folder if needed (experiments/synth-cache.ts), takes the shipped ViLT backbone
// (pretrained/vilt-synth.safetensors, train/pretrained.ts) and runs `aptune compare` (experiments/compare.ts, nothing is
// re-implemented here) for APT, deep prompt, LoRA and classifier-only on synthetic VQA, one seed, with live progress
// lines on stderr; then prints the comparison table (VQA test score beside the question-type prior and image-only
// floors, updated params, additional MACs, ms/step, peak memory), where the runs are and the total wall time.
// Invariants: the same defaults every time (steps, methods, seed, lr), so two runs on one machine print the same
// scores; results go to stdout, progress to stderr.
import * as path from 'node:path';
import { runCompare, formatCompareTable, parseMethods } from './compare.ts';
import { ensureSynthData } from './synth-cache.ts';
import { pretrainedPath } from '../train/pretrained.ts';
import type { ProgressMode } from '../train/progress.ts';

export const START_METHODS = 'apt,deep_prompt,lora,classifier_only';
export const START_STEPS = 400;
/**
 * Learning rates of the start run: the comparison's default 5e-4 (head x10) for every method but deep prompt, which
 * gets 2e-3: its fresh prompts perturb the frozen backbone from step 0 (scripts/init-disruption.ts), and on the
 * validation split the rate moved deep prompt by 9.6 points against APT's 2.2 (README, "A fair comparison").
 */
export const START_LRS: Readonly<Record<string, number>> = Object.freeze({ deep_prompt: 2e-3 });

export interface StartOptions { steps?: number; methods?: string; seed?: number; out?: string; log?: (s: string) => void; progress?: ProgressMode }

export async function runStart(o: StartOptions = {}): Promise<number> {
  const log = o.log ?? ((s: string) => console.error(s));
  const t0 = performance.now();
  const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
  const data = await ensureSynthData({ log: (s) => log(`${stamp()} ${s}`) });
  const pretrained = pretrainedPath('synth', 'vilt');
  const out = path.resolve(o.out ?? path.join('runs', 'start'));
  const methods = parseMethods(o.methods ?? START_METHODS);
  const steps = o.steps ?? START_STEPS;
  log(`${stamp()} aptune start: ${methods.join(', ')} on synthetic VQA (${data}) from ${pretrained}, ${steps} steps each, seed ${o.seed ?? 0}; runs -> ${out}`);
  const r = await runCompare({ data, pretrained, methods, seeds: [o.seed ?? 0], steps, out, lrs: START_LRS, log: (s) => log(`${stamp()} ${s}`), progress: o.progress });
  console.log(formatCompareTable(r));
  console.log(`runs written to ${path.join(out, 'runs')} (one directory per method: run.json, metrics.jsonl, last.safetensors); table: ${path.join(out, 'compare.json')}`);
  console.log(`total wall time ${((performance.now() - t0) / 1000).toFixed(0)} s. The full miniature table: aptune table --mini --seeds 0,1,2 --out results/`);
  return 0;
}
