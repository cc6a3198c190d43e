// Injection machinery shared by every parameter-efficient method (DESIGN.md lesson 9): the method contract
// (MethodDef: options with types, ranges and defaults, trainable rule, accounting facts, attachments at named
// insertion points), option validation, attaching modules / hooks / prompt tables at a backbone's declared points
// (petl/points.ts), and the §3.0 trainability rule.
// Deliberately NOT here: any method's maths (one file per method), the list of methods (registry.ts), any backbone:
// nothing here knows ViLT or METER, only the points a PetlHost declares.
// Invariants: a method attaches its modules as children of existing modules (so their names come from where they
// live, e.g. `transformer.blocks.3.attn.APT.mm_tokens`), never by copying the model; injection that attaches
// nothing, or a trainable substring that matches no parameter, raises; after applyTrainable exactly the
// parameters matching a trainable substring (minus the host's petlFrozen names) have requiresGrad.
// Attachment order (it fixes the init draws): hook attachments whose points have the same host modules go host by
// host (ViLT's adapter0 / adapter1 per block, LoRA's q / v per attention), otherwise point by point; a child name
// given to one host twice is numbered (adapter0, adapter1).
import { Module, type HookFn } from '../nn/module.ts';
import { uniform } from '../nn/init.ts';
import type { Tensor } from '../../engine/index.ts';
import { hookSite, offeredHooks, siteModules, type HookPointName, type PetlHost, type TokenPointName } from './points.ts';

export type { PetlHost } from './points.ts';
/** A backbone as injection sees it. */
export type Backbone = PetlHost;

export interface OptionSpec {
  readonly name: string;
  readonly type: 'int' | 'number' | 'bool';
  readonly default: number | boolean;
  readonly description: string;
  readonly min?: number;
  readonly max?: number;
}

/** Untyped resolved options (a method read by name at run time). */
export type MethodOptions = Record<string, number | boolean>;

type OptionValue<O extends OptionSpec> = O['type'] extends infer T ? (T extends 'bool' ? boolean : number) : never;
/** The options a method's callbacks get: every option, defaults filled in. */
export type ResolvedOptions<O extends readonly OptionSpec[]> = { readonly [K in O[number] as K['name']]: OptionValue<K> };
/** The options a caller may give (all optional); a method without options takes none. */
export type GivenOptions<O extends readonly OptionSpec[]> = O extends readonly [] ? Record<string, never> : { [K in O[number] as K['name']]?: OptionValue<K> };

/** A module attached at a hook point of every host module of that point. */
export interface HookAttachment<Opts> {
  at: HookPointName;
  /** local name under the host (numbered when one host gets it twice) */
  child: string;
  /** the module for one host, and the hook that runs it (x, ctx) -> x' */
  create(dim: number, o: Opts): { module: Module; hook: HookFn };
}

/** Prompt tables [rows, 1, P, D] read at a token point: one table per stream of the point, one row per host. */
export interface TokenAttachment<Opts> {
  at: TokenPointName;
  /** one stream: parameter `table` on the backbone; several: `<table>s.<k>` (k = stream) */
  table: string;
  tokens(o: Opts): number;
}

export interface MethodDef<O extends readonly OptionSpec[] = readonly OptionSpec[]> {
  name: string;
  description: string;
  /** types, ranges and defaults (the configuration behind the paper's table) */
  options: O;
  /** whether the variant replaces text position 0 by the learnable token4classifier (§1.4) */
  tokenForClassifier: boolean;
  /** the update merges into the frozen weights at inference (LoRA): no additional FLOPs by convention */
  mergeable: boolean;
  /** accounting of "updated parameters": the method's own modules, or every backbone parameter but the task heads */
  updatedParams: 'modules' | 'backbone';
  /** trainable set rule: substrings added to the §3.0 base list; [''] = every parameter */
  trainable(o: ResolvedOptions<O>): string[];
  hooks?: readonly HookAttachment<ResolvedOptions<O>>[];
  prompts?: TokenAttachment<ResolvedOptions<O>>;
  /** full tuning: gradients flow into the parts the backbone runs without gradient (METER's encoders) */
  encoderGrad?: boolean;
  /** row in the paper's table (its order); absent: not in the paper's table */
  paperRow?: number;
}

/** The erased method definition (the registry's element type). */
export type MethodSpec = MethodDef;

/** A method definition with its option types inferred from `options` (the callbacks get them typed). */
export function defineMethod<const N extends string, const O extends readonly OptionSpec[]>(d: MethodDef<O> & { name: N }): MethodDef<O> & { name: N } {
  return d;
}

/** §3.0 base list shared by every PETL / classifier-only variant. */
export const BASE_TRAINABLE = ['classifier', 'pooler', 'token_type_embeddings', 'rank_output'] as const;

/** "int >= 1", "number in [0, 0.99]", "bool": what an option accepts. */
export function describeOption(o: OptionSpec): string {
  if (o.type === 'bool') return 'true or false';
  const t = o.type === 'int' ? 'integer' : 'number';
  if (o.min !== undefined && o.max !== undefined) return `${t} in [${o.min}, ${o.max}]`;
  if (o.min !== undefined) return `${t} >= ${o.min}`;
  if (o.max !== undefined) return `${t} <= ${o.max}`;
  return t;
}

export function validateOptions(spec: MethodDef, given: Record<string, unknown> = {}): MethodOptions {
  const out: MethodOptions = {};
  const known = new Set(spec.options.map((o) => o.name));
  for (const k of Object.keys(given)) {
    if (!known.has(k)) {
      throw new Error(`method '${spec.name}': unknown option '${k}' (options: ${[...known].join(', ') || 'none'})`);
    }
  }
  for (const o of spec.options) {
    const v = given[o.name] ?? o.default;
    const bad = (what: string) => new Error(`method '${spec.name}': option '${o.name}' must be ${what}, got ${JSON.stringify(v)} (allowed: ${describeOption(o)})`);
    if (o.type === 'bool') {
      if (typeof v !== 'boolean') throw bad('a boolean');
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw bad('a number');
      if (o.type === 'int' && !Number.isInteger(v)) throw bad('an integer');
      if (o.min !== undefined && v < o.min) throw bad(`>= ${o.min}`);
      if (o.max !== undefined && v > o.max) throw bad(`<= ${o.max}`);
    }
    out[o.name] = v as number | boolean;
  }
  return out;
}

function hostLabel(host: Module): string {
  return host.constructor.name;
}

/** The hook attachments of a method: modules registered under their hosts, hooks added. Returns the full names. */
export function attachHooks(host: PetlHost, method: string, list: readonly HookAttachment<MethodOptions>[], o: MethodOptions): string[] {
  const points = host.insertionPoints();
  const sites = list.map((a) => {
    const site = hookSite(points, a.at);
    if (!site) throw new Error(`method '${method}': ${hostLabel(host)} declares no insertion point '${a.at}' (it has: ${offeredHooks(points).join(', ') || 'none'})`);
    return siteModules(host, site).map(([n, m]) => ({ a, name: n, module: m, point: site.point }));
  });
  const sameHosts = sites.every((s) => s.length === sites[0].length && s.every((x, i) => x.module === sites[0][i].module));
  const order = sameHosts && sites.length ? sites[0].flatMap((_, i) => sites.map((s) => s[i])) : sites.flat();
  const uses = new Map<Module, Map<string, number>>();
  for (const x of order) {
    const u = uses.get(x.module) ?? new Map<string, number>();
    uses.set(x.module, u.set(x.a.child, (u.get(x.a.child) ?? 0) + 1));
  }
  const seen = new Map<Module, Map<string, number>>();
  return order.map((x) => {
    const k = seen.get(x.module) ?? new Map<string, number>();
    const i = k.get(x.a.child) ?? 0;
    seen.set(x.module, k.set(x.a.child, i + 1));
    const child = uses.get(x.module)!.get(x.a.child)! > 1 ? `${x.a.child}${i}` : x.a.child;
    const { module, hook } = x.a.create(host.hidden, o);
    x.module.registerModule(child, module);
    x.module.addHook(x.point, hook, method);
    return joinName(x.name, child);
  });
}

/** VPT-style prompt init bound v = sqrt(6 / (3·16·16 + D)) (a 16x16 patch, as the reference codes it). */
export function promptInitBound(dim: number): number {
  return Math.sqrt(6 / (3 * 16 * 16 + dim));
}

/** Rows `i` of a [n, 1, P, D] prompt table, broadcast to [B, P, D]. Reads the live parameter each call. */
export function promptRows(owner: Module, name: string, i: number, B: number): Tensor {
  const t = owner.param(name);
  const [, , P, D] = t.shape;
  return t.slice(0, i, i + 1).reshape([1, P, D]).expand([B, P, D]);
}

/**
 * Prompt tables [hosts, 1, P, D], Uniform(-v, v), one per stream of the token point (registered in stream order);
 * host i of stream k gets row i of table k as a token source. Returns the names injection reports.
 */
export function attachPrompts(host: PetlHost, method: string, a: TokenAttachment<MethodOptions>, o: MethodOptions): string[] {
  const streams = host.insertionPoints().tokens[a.at];
  if (!streams?.length) throw new Error(`method '${method}': ${hostLabel(host)} declares no token point '${a.at}'`);
  const P = a.tokens(o), D = host.hidden, v = promptInitBound(D);
  const single = streams.length === 1;
  const owner = single ? host : host.registerModule(`${a.table}s`, new Module());
  streams.forEach((site, k) => {
    const mods = siteModules(host, site);
    const table = single ? a.table : String(k);
    owner.registerParameter(table, uniform([mods.length, 1, P, D], -v, v));
    mods.forEach(([, m], i) => m.addTokenSource(site.point, (B) => promptRows(owner, table, i, B), method));
  });
  return [single ? a.table : `${a.table}s`];
}

export function joinName(a: string, b: string): string {
  return a ? `${a}.${b}` : b;
}

/**
 * §3.0: freeze everything, then unfreeze names containing a base or method substring; PETL variants keep the host's
 * petlFrozen names frozen. Raises if a method substring matches nothing. Returns trainable names.
 */
export function applyTrainable(model: PetlHost, method: MethodDef, opts: MethodOptions): string[] {
  const subs = method.trainable(opts);
  const all = subs.includes('');
  const names = model.namedParameters().map(([n]) => n);
  for (const s of subs) {
    if (s !== '' && !names.some((n) => n.includes(s))) {
      throw new Error(`method '${method.name}': trainable pattern '${s}' matched no parameter of the ${hostLabel(model)}`);
    }
  }
  const list = all ? [''] : [...BASE_TRAINABLE, ...subs];
  const excluded = all ? [] : model.petlFrozen;
  model.freeze();
  return model.unfreeze((n) => list.some((s) => n.includes(s)) && !excluded.some((e) => n.includes(e)));
}
