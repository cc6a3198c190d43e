// THE registry of parameter-efficient methods: every method's typed definition (options with types, ranges and
// defaults; mergeability; trainable rule; accounting facts; insertion points) under its CLI name, and what derives
// from it: METHOD_NAMES, DEFAULT_METHOD, PAPER_METHODS (the paper's table rows), ACCOUNTED_METHODS (the accounting's
// rows), the per-method option types (MethodOptionsFor<'lora'>), getMethod / listMethods, and injectMethod = validate
// options, attach at the host's insertion points, apply the §3.0 trainable rule, fail loudly.
// Deliberately NOT here: method maths (one file per method), model construction (models/index.ts), any backbone.
// Invariants: a METHODS key equals its definition's name (checked by the compiler); a PETL method that attaches no
// module raises; the default method is written here only.
import { apt } from './apt.ts';
import { deepPrompt } from './deep_prompt.ts';
import { shallowPrompt } from './shallow_prompt.ts';
import { lora } from './lora.ts';
import { adapter } from './adapter.ts';
import { parallelAdapter } from './parallel_adapter.ts';
import { classifierOnly } from './classifier_only.ts';
import { full } from './full.ts';
import {
  applyTrainable, attachHooks, attachPrompts, describeOption, validateOptions,
  type GivenOptions, type MethodDef, type MethodOptions, type OptionSpec, type PetlHost,
} from './inject.ts';

/** Every method, by CLI name, in the order `aptune methods` lists them. */
export const METHODS = {
  apt, deep_prompt: deepPrompt, shallow_prompt: shallowPrompt, lora, adapter, parallel_adapter: parallelAdapter,
  classifier_only: classifierOnly, full,
} as const;
export type MethodName = keyof typeof METHODS;
// compile-time check: each key is its definition's name (a wrong key makes this a type error naming it)
type MisnamedKeys = { [K in MethodName]: (typeof METHODS)[K]['name'] extends K ? never : K }[MethodName];
const keysAreNames: [MisnamedKeys] extends [never] ? true : MisnamedKeys = true;
void keysAreNames;

export const METHOD_NAMES = Object.keys(METHODS) as MethodName[];
/** The method of `aptune train`, createModel and the CLI when none is named. */
export const DEFAULT_METHOD = 'apt' satisfies MethodName;

const DEFS = METHODS as unknown as Record<string, MethodDef>;
/** The methods of the paper's table, in its row order (accounting, the miniature table). */
export const PAPER_METHODS = METHOD_NAMES.filter((n) => DEFS[n].paperRow !== undefined).sort((a, b) => DEFS[a].paperRow! - DEFS[b].paperRow!);
/** The accounting's rows: the paper's table, then every other method. */
export const ACCOUNTED_METHODS: readonly MethodName[] = [...PAPER_METHODS, ...METHOD_NAMES.filter((n) => !PAPER_METHODS.includes(n))];

/** The options each method takes (all optional: defaults are the paper's table configuration). */
export type MethodOptionsMap = { [M in MethodName]: GivenOptions<(typeof METHODS)[M]['options']> };
export type TypedMethodName = MethodName;
/** e.g. MethodOptionsFor<'lora'> = { rank?: number; dropout?: number; scale?: number } */
export type MethodOptionsFor<M extends MethodName> = MethodOptionsMap[M];
/** Options for a method name known at compile time; a plain `string` method (e.g. read from a CLI flag) takes any
 *  record and is validated at run time only. */
export type MethodOptionsOf<M extends string> = M extends MethodName ? MethodOptionsFor<M> : Record<string, unknown>;

export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(METHODS, name);
}

export function getMethod(name: string): MethodDef {
  if (!isMethodName(name)) throw new Error(`unknown method '${name}' (available: ${METHOD_NAMES.join(', ')})`);
  return DEFS[name];
}

export interface MethodInfo {
  name: string; description: string; mergeable: boolean;
  /** the insertion points it uses (petl/points.ts; each backbone maps them to its modules) */
  points: string[];
  options: (OptionSpec & { allowed: string })[];
}

export function listMethods(): MethodInfo[] {
  return METHOD_NAMES.map((n) => DEFS[n]).map((m) => ({
    name: m.name, description: m.description, mergeable: m.mergeable,
    points: [...(m.hooks ?? []).map((h) => h.at), ...(m.prompts ? [m.prompts.at] : [])],
    options: m.options.map((o) => ({ ...o, allowed: describeOption(o) })),
  }));
}

export interface InjectResult {
  method: string;
  options: MethodOptions;
  modules: string[];
  trainable: string[];
}

/** Attach `name` to the host; call after the heads exist (they take part in the trainable rule). */
export function injectMethod(host: PetlHost, name: string, given: Record<string, unknown> = {}): InjectResult {
  const spec = getMethod(name);
  const options = validateOptions(spec, given);
  const modules = [
    ...(spec.prompts ? attachPrompts(host, name, spec.prompts, options) : []),
    ...(spec.hooks ? attachHooks(host, name, spec.hooks, options) : []),
  ];
  const attaches = spec.trainable(options).some((s) => s !== '');
  if (attaches && modules.length === 0) throw new Error(`method '${name}' found no attachment point in the ${host.constructor.name}`);
  if (spec.encoderGrad) host.encoderGrad = true;
  const trainable = applyTrainable(host, spec, options);
  return { method: name, options, modules, trainable };
}
