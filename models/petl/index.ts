// Registry of the parameter-efficient methods: lookup by name, listMethods() for `aptune methods`, and
// injectMethod() = validate options, attach modules, apply the §3.0 trainable rule, fail loudly.
// Deliberately NOT here: method maths (one file per method), model construction (models/index.ts).
// Invariants: names are the CLI names (apt, deep_prompt, shallow_prompt, lora, adapter, parallel_adapter,
// classifier_only, full); a PETL method that attaches no module raises.
import { apt } from './apt.ts';
import { deepPrompt } from './deep_prompt.ts';
import { shallowPrompt } from './shallow_prompt.ts';
import { lora } from './lora.ts';
import { adapter } from './adapter.ts';
import { parallelAdapter } from './parallel_adapter.ts';
import { classifierOnly } from './classifier_only.ts';
import { full } from './full.ts';
import { applyTrainable, validateOptions, type Backbone, type MethodOptions, type MethodSpec, type OptionSpec } from './inject.ts';

export * from './inject.ts';
export { ApproximatePrompt } from './apt.ts';
export { LoraModule } from './lora.ts';
export { Adapter } from './adapter.ts';
export { ParallelAdapter } from './parallel_adapter.ts';

const METHODS: readonly MethodSpec[] = [apt, deepPrompt, shallowPrompt, lora, adapter, parallelAdapter, classifierOnly, full];

export type MethodName = 'apt' | 'deep_prompt' | 'shallow_prompt' | 'lora' | 'adapter' | 'parallel_adapter' | 'classifier_only' | 'full';

export function getMethod(name: string): MethodSpec {
  const m = METHODS.find((s) => s.name === name);
  if (!m) throw new Error(`unknown method '${name}' (available: ${METHODS.map((s) => s.name).join(', ')})`);
  return m;
}

export function listMethods(): { name: string; description: string; options: OptionSpec[] }[] {
  return METHODS.map((m) => ({ name: m.name, description: m.description, options: m.options.map((o) => ({ ...o })) }));
}

/** Sizes used by the tiny test presets (hidden 64). */
export const TINY_METHOD_OPTIONS: Record<MethodName, MethodOptions> = {
  apt: { tokens: 6, rank: 2 },
  deep_prompt: { tokens: 4 },
  shallow_prompt: { tokens: 4 },
  lora: { rank: 2 },
  adapter: { rank: 8 },
  parallel_adapter: { rank: 8, scale: 4 },
  classifier_only: {},
  full: {},
};

export interface InjectResult {
  method: string;
  options: MethodOptions;
  modules: string[];
  trainable: string[];
}

/** Attach `name` to the model; call after the heads exist (they take part in the trainable rule). */
export function injectMethod(model: Backbone, name: string, given: Record<string, unknown> = {}): InjectResult {
  const spec = getMethod(name);
  const options = validateOptions(spec, given);
  const modules = spec.inject(model, options);
  const attaches = spec.trainable(options).some((s) => s !== '');
  if (attaches && modules.length === 0) throw new Error(`method '${name}' found no attachment point in the ${model.kind} model`);
  if (spec.encoderGrad && model.kind === 'meter') model.encoderGrad = true;
  const trainable = applyTrainable(model, spec, options);
  return { method: name, options, modules, trainable };
}
