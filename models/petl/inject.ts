// Injection machinery shared by every parameter-efficient method (DESIGN.md lesson 9): the method contract,
// option validation, walking named modules to find attachment targets, attaching a child module plus its hook
// (attachChild), and the §3.0 trainability rule.
// Deliberately NOT here: any method's maths (one file per method), task heads.
// Invariants: a method attaches its modules as children of existing modules (so their names come from where they
// live, e.g. `transformer.blocks.3.attn.APT.mm_tokens`), never by copying the model; injection that attaches
// nothing, or a trainable substring that matches no parameter, raises; after applyTrainable exactly the
// parameters matching a trainable substring (minus the METER encoder exclusions) have requiresGrad.
import type { HookFn, Module } from '../nn/module.ts';
import type { ViltModel } from '../vilt.ts';
import type { MeterModel } from '../meter.ts';

export type Backbone = ViltModel | MeterModel;

export interface OptionSpec {
  name: string;
  type: 'int' | 'number' | 'bool';
  default: number | boolean;
  description: string;
  min?: number;
  max?: number;
}

export type MethodOptions = Record<string, number | boolean>;

export interface MethodSpec {
  name: string;
  description: string;
  /** defaults = the configuration behind the paper's table */
  options: readonly OptionSpec[];
  /** whether the variant replaces text position 0 by the learnable token4classifier (§1.4) */
  tokenForClassifier: boolean;
  /** substrings added to the base trainable list (§3.0); [''] = everything */
  trainable(opts: MethodOptions): string[];
  /** attaches the method's modules; returns the full names of the attached modules */
  inject(model: Backbone, opts: MethodOptions): string[];
  /** full tuning: gradients flow into the (otherwise no_grad) METER encoders */
  encoderGrad?: boolean;
}

/** §3.0 base list shared by every PETL / classifier-only variant. */
export const BASE_TRAINABLE = ['classifier', 'pooler', 'token_type_embeddings', 'rank_output'] as const;
/** METER additionally freezes every name containing these (PETL variants only). */
export const METER_FROZEN = ['text_transformer', 'vit_model'] as const;

export function validateOptions(spec: MethodSpec, given: Record<string, unknown> = {}): MethodOptions {
  const out: MethodOptions = {};
  const known = new Set(spec.options.map((o) => o.name));
  for (const k of Object.keys(given)) {
    if (!known.has(k)) {
      throw new Error(`method '${spec.name}': unknown option '${k}' (options: ${[...known].join(', ') || 'none'})`);
    }
  }
  for (const o of spec.options) {
    const v = given[o.name] ?? o.default;
    if (o.type === 'bool') {
      if (typeof v !== 'boolean') throw new Error(`method '${spec.name}': option '${o.name}' must be a boolean, got ${JSON.stringify(v)}`);
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`method '${spec.name}': option '${o.name}' must be a number, got ${JSON.stringify(v)}`);
      if (o.type === 'int' && !Number.isInteger(v)) throw new Error(`method '${spec.name}': option '${o.name}' must be an integer, got ${v}`);
      if (o.min !== undefined && v < o.min) throw new Error(`method '${spec.name}': option '${o.name}' must be >= ${o.min}, got ${v}`);
      if (o.max !== undefined && v > o.max) throw new Error(`method '${spec.name}': option '${o.name}' must be <= ${o.max}, got ${v}`);
    }
    out[o.name] = v as number | boolean;
  }
  return out;
}

/** Every named module that is an instance of `cls` and whose name satisfies `where`. */
export function findModules<T extends Module>(root: Module, cls: abstract new (...a: never[]) => T, where: (name: string) => boolean = () => true): [string, T][] {
  return root.namedModules().filter(([n, m]) => m instanceof cls && where(n)) as [string, T][];
}

/** Names under METER's fusion stack (where METER methods attach). */
export function inFusion(name: string): boolean {
  return name.startsWith('cross_modal_text_layers.') || name.startsWith('cross_modal_image_layers.');
}

export function joinName(a: string, b: string): string {
  return a ? `${a}.${b}` : b;
}

/**
 * Registers `module` as child `child` of the named target and attaches hook(module) at the target's hook point
 * `point`, owned by `method`. Returns the child's full name (what InjectResult.modules lists).
 */
export function attachChild<C extends Module>(method: string, [name, target]: [string, Module], child: string, module: C, point: string, hook: (m: C) => HookFn): string {
  target.registerModule(child, module);
  target.addHook(point, hook(module), method);
  return joinName(name, child);
}

/**
 * §3.0: freeze everything, then unfreeze names containing a base or method substring; METER PETL variants keep
 * text_transformer / vit_model frozen. Raises if a method substring matches nothing. Returns trainable names.
 */
export function applyTrainable(model: Backbone, method: MethodSpec, opts: MethodOptions): string[] {
  const subs = method.trainable(opts);
  const all = subs.includes('');
  const names = model.namedParameters().map(([n]) => n);
  for (const s of subs) {
    if (s !== '' && !names.some((n) => n.includes(s))) {
      throw new Error(`method '${method.name}': trainable pattern '${s}' matched no parameter of the ${model.kind} model`);
    }
  }
  const list = all ? [''] : [...BASE_TRAINABLE, ...subs];
  const excluded = !all && model.kind === 'meter' ? METER_FROZEN : [];
  model.freeze();
  return model.unfreeze((n) => list.some((s) => n.includes(s)) && !excluded.some((e) => n.includes(e)));
}
