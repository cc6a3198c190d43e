// The contract between backbones and methods: the named insertion points a backbone declares (which of its modules a
// method hooks, and at which of their local hook points) and what a backbone offers the injection (PetlHost).
// A method names only insertion points ('attn.q', 'attn.out', 'layer.kv', ...); each backbone maps them to module
// paths of its own tree (models/vilt.ts, models/meter.ts), so a new backbone takes every method by declaring its points.
// Deliberately NOT here: any method (petl/<method>.ts), the registry (petl/registry.ts), attaching (petl/inject.ts).
// A backbone declares its hooks by host modules: the module paths and, for each point they offer, the hosts' own
// hook point.
// Invariants: paths are dotted module names with `*` standing for one name segment or part of one
// ('cross_modal_*_layers.*.attention.self'); '' is the backbone itself; the modules of a point are taken in
// namedModules (torch named_modules) order; every hook keeps the shape of what it receives (nn/module.ts).
import type { Module } from '../nn/module.ts';

/**
 * Same-shape hook points. Each hook gets the sub-block tensor `x` and returns its replacement; `ctx.input` is the
 * tensor the branch started from, as stated per point.
 */
export const HOOK_POINTS = {
  'attn.q': 'query projection output; input: the query stream',
  'attn.v': 'value projection output; input: the key/value source (the other stream in cross-attention)',
  'attn.out': "attention output projection, before its dropout; input: the attention sub-block's input (ViLT LN1(x), METER the residual)",
  'attn.parallel': 'end of the attention sub-block, where a parallel branch adds; input: as attn.out',
  'attn.branch': 'the attention branch as it is added to the residual stream (sequential adapter)',
  'ffn.branch': 'the FFN branch as it is added to the residual stream (sequential adapter)',
} as const;
export type HookPointName = keyof typeof HOOK_POINTS;

/** Token points: extra tokens [B, P, D] supplied per stream (prompts). */
export const TOKEN_POINTS = {
  'layer.kv': 'per layer, extra keys/values of that layer only (deep prompt); one table row per layer',
  input: 'once, extra tokens carried through every layer from the first (shallow prompt); one table row',
} as const;
export type TokenPointName = keyof typeof TOKEN_POINTS;

/** Where a point lives in one backbone: the host modules (path patterns) and the hosts' local hook point. */
export interface PointSite {
  paths: readonly string[];
  /** the host module's own hook point (Module.hookPoints()) */
  point: string;
}

/** Host modules (path patterns) and the insertion points they offer: point name -> the hosts' local hook point. */
export interface HookHosts {
  paths: readonly string[];
  offers: Partial<Record<HookPointName, string>>;
}

export interface InsertionPoints {
  /** by host modules; a point is offered by one entry */
  hooks: readonly HookHosts[];
  /** one site per token stream (ViLT one sequence; METER text and image): stream k reads row(s) of table k */
  tokens: Partial<Record<TokenPointName, readonly PointSite[]>>;
}

/** The site of hook point `at` in a declaration, or undefined when the backbone does not offer it. */
export function hookSite(ip: InsertionPoints, at: HookPointName): PointSite | undefined {
  const h = ip.hooks.find((x) => x.offers[at] !== undefined);
  return h && { paths: h.paths, point: h.offers[at]! };
}

/** Every hook point a declaration offers. */
export function offeredHooks(ip: InsertionPoints): HookPointName[] {
  return ip.hooks.flatMap((h) => Object.keys(h.offers) as HookPointName[]);
}

/** What injection needs of a backbone (VLBackbone implements it; any Module tree can). */
export interface PetlHost extends Module {
  /** width D of the tokens the hooked modules see */
  readonly hidden: number;
  insertionPoints(): InsertionPoints;
  /** name substrings every PETL method keeps frozen (METER's encoders), [] for none */
  readonly petlFrozen: readonly string[];
  /** set by methods that train everything: gradients reach parts the backbone otherwise runs without gradient */
  encoderGrad: boolean;
}

/** `*` = one name segment or part of one; '' = the root. */
export function pathMatcher(paths: readonly string[]): (name: string) => boolean {
  const res = paths.map((p) => new RegExp('^' + p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^.]+') + '$'));
  return (name) => res.some((r) => r.test(name));
}

/** The modules of a site, in namedModules order. */
export function siteModules(root: Module, site: PointSite): [string, Module][] {
  const match = pathMatcher(site.paths);
  return root.namedModules().filter(([n]) => match(n));
}
