// Module tree: registered parameters, buffers and children with dotted names (torch-compatible), train/eval
// mode, freezing by name, state dicts and named hook points where parameter-efficient methods attach.
// Deliberately NOT here: autograd, optimisers, checkpoint file formats (train/checkpoint.ts), method logic (petl/).
// Invariants:
// - A parameter's full name is the dotted path of registration names, exactly as torch's named_parameters()
//   prints it for the original model (DESIGN.md lesson 10); children registered later (injected methods) get
//   their names from where they are attached, never from a copy of the model.
// - loadStateDict copies values into the existing tensors (torch's copy_), so an optimiser built before loading
//   keeps working on the loaded weights; setParam (shape-changing post-load steps) replaces a tensor, and then
//   modules read it through param()/getters. Parameters and buffers are kept (exempt from every engine scope);
//   replaced ones are left to their other owners (never disposed here).
// - Hooks never change the shape of what they receive; sequence-extending methods use token sources instead.
import { Tensor, assign } from '../../engine/index.ts';

/** Same-shape transform run at a named point of a module's forward. `input` is the branch input (see module). */
export type HookFn = (x: Tensor, ctx: HookContext) => Tensor;
export interface HookContext {
  /** the tensor the branch started from (e.g. LN1(x) for ViLT attention, input_tensor for BertSelfOutput) */
  input?: Tensor;
}
/** Supplies extra tokens [B, P, D] at a named point (prompts). Placement is the backbone's business. */
export type TokenSourceFn = (batch: number) => Tensor;

export type NamePredicate = ((name: string) => boolean) | readonly string[] | string;

export function toPredicate(p: NamePredicate): (name: string) => boolean {
  if (typeof p === 'function') return p;
  const subs = typeof p === 'string' ? [p] : p;
  return (name) => subs.some((s) => name.includes(s));
}

export interface LoadResult {
  missing: string[];
  unexpected: string[];
}

export class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();
  private readonly _hooks = new Map<string, { owner: string; fn: HookFn }[]>();
  private readonly _tokenSources = new Map<string, { owner: string; fn: TokenSourceFn }[]>();

  /** Hook points this module class offers (documentation and injection validation). */
  hookPoints(): readonly string[] {
    return [];
  }

  registerParameter(name: string, t: Tensor): Tensor {
    checkLocalName(name, this);
    if (!t.requiresGrad) t.requiresGrad_(true);
    this._params.set(name, t.keep());
    return t;
  }

  registerBuffer(name: string, t: Tensor): Tensor {
    checkLocalName(name, this);
    this._buffers.set(name, t.keep());
    return t;
  }

  registerModule<M extends Module>(name: string, m: M): M {
    checkLocalName(name, this);
    this._children.set(name, m);
    return m;
  }

  child<M extends Module = Module>(name: string): M {
    const m = this._children.get(name);
    if (!m) throw new Error(`${this.constructor.name}: no child module '${name}'`);
    return m as M;
  }

  param(name: string): Tensor {
    const t = this._params.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter '${name}'`);
    return t;
  }

  hasParam(name: string): boolean {
    return this._params.has(name);
  }

  buffer(name: string): Tensor {
    const t = this._buffers.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no buffer '${name}'`);
    return t;
  }

  /** Replace a parameter (same shape required unless allowShapeChange); keeps its requiresGrad flag. */
  setParam(name: string, t: Tensor, opts: { allowShapeChange?: boolean } = {}): void {
    const old = this.param(name);
    if (!opts.allowShapeChange && !sameShape(old.shape, t.shape)) {
      throw new Error(`setParam ${name}: shape [${t.shape}] does not match [${old.shape}]`);
    }
    const flag = old.requiresGrad;
    const fresh = t.requiresGrad === flag && !t.gradFn ? t : t.detach().requiresGrad_(flag);
    this._params.set(name, fresh.keep());
  }

  /** Depth-first, parents before children, registration order (torch's named_modules order). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(join(prefix, n)));
    return out;
  }

  /** torch order: own parameters first, then children's. */
  namedParameters(prefix = ''): [string, Tensor][] {
    return this.slots('param', prefix).map(([n, owner, local]) => [n, owner._params.get(local)!]);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    return this.slots('buffer', prefix).map(([n, owner, local]) => [n, owner._buffers.get(local)!]);
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  trainableParameters(): [string, Tensor][] {
    return this.namedParameters().filter(([, p]) => p.requiresGrad);
  }

  getSubmodule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) m = m.child(part);
    return m;
  }

  train(flag = true): this {
    for (const [, m] of this.namedModules()) m.training = flag;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets requiresGrad=false on every parameter whose full name matches; returns the names matched. */
  freeze(pred: NamePredicate = () => true): string[] {
    return this.setRequiresGrad(pred, false);
  }

  unfreeze(pred: NamePredicate = () => true): string[] {
    return this.setRequiresGrad(pred, true);
  }

  private setRequiresGrad(pred: NamePredicate, flag: boolean): string[] {
    const f = toPredicate(pred);
    const hit: string[] = [];
    for (const [name, owner, local] of this.slots('param')) {
      if (!f(name)) continue;
      const t = owner._params.get(local)!;
      if (t.requiresGrad !== flag) {
        // a tensor produced by an op cannot simply flip its flag; parameters are leaves
        t.requiresGrad_(flag);
      }
      hit.push(name);
    }
    return hit;
  }

  /** [full name, owning module, local name] of every parameter (or buffer) in the tree, torch order. */
  private slots(kind: 'param' | 'buffer', prefix = ''): [string, Module, string][] {
    const out: [string, Module, string][] = [];
    for (const n of (kind === 'param' ? this._params : this._buffers).keys()) out.push([join(prefix, n), this, n]);
    for (const [n, c] of this._children) out.push(...c.slots(kind, join(prefix, n)));
    return out;
  }

  /** Parameters then buffers, torch-style names. The tensors are the live ones (not copies). */
  stateDict(opts: { buffers?: boolean } = {}): Map<string, Tensor> {
    const m = new Map<string, Tensor>();
    for (const [n, p] of this.namedParameters()) m.set(n, p);
    if (opts.buffers !== false) for (const [n, b] of this.namedBuffers()) m.set(n, b);
    return m;
  }

  /**
   * Loads tensors by name. Shape mismatch always raises, naming the tensor. strict (default true) raises when
   * anything is missing or unexpected; otherwise both lists are returned. Values are copied into the existing
   * tensors (identity, requiresGrad and backend kept); the source tensors stay the caller's.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const src = state instanceof Map ? state : new Map(Object.entries(state));
    const slots = [...this.slots('param').map((s) => [...s, true] as const), ...this.slots('buffer').map((s) => [...s, false] as const)];
    const table = (owner: Module, isParam: boolean) => (isParam ? owner._params : owner._buffers);
    const known = new Set<string>();
    const missing: string[] = [];
    for (const [name, owner, local, isParam] of slots) {
      known.add(name);
      const t = src.get(name);
      if (!t) { missing.push(name); continue; }
      const cur = table(owner, isParam).get(local)!;
      if (!sameShape(cur.shape, t.shape)) {
        throw new Error(`loadStateDict: shape mismatch for '${name}': checkpoint has [${t.shape}], model expects [${cur.shape}]`);
      }
      if (t.dtype !== cur.dtype) {
        throw new Error(`loadStateDict: dtype mismatch for '${name}': checkpoint has ${t.dtype}, model expects ${cur.dtype}`);
      }
    }
    const unexpected = [...src.keys()].filter((k) => !known.has(k));
    if (strict && (missing.length || unexpected.length)) {
      const list = (a: string[]) => (a.length ? ` [${a.slice(0, 8).join(', ')}${a.length > 8 ? ', ...' : ''}]` : '');
      throw new Error(`loadStateDict (strict): ${missing.length} missing key(s)${list(missing)}, ${unexpected.length} unexpected key(s)${list(unexpected)}`);
    }
    for (const [name, owner, local, isParam] of slots) {
      const t = src.get(name);
      if (t) assign(table(owner, isParam).get(local)!, t);
    }
    return { missing, unexpected };
  }

  // ---- hook points ----

  /** Attach a same-shape transform at `point`; `owner` names the method (attachedHooks lists it). */
  addHook(point: string, fn: HookFn, owner = 'anonymous'): void {
    this.checkHookPoint(point);
    const list = this._hooks.get(point) ?? [];
    list.push({ owner, fn });
    this._hooks.set(point, list);
  }

  /** Attach a supplier of extra tokens at `point` (where they go is the module's forward's business). */
  addTokenSource(point: string, fn: TokenSourceFn, owner = 'anonymous'): void {
    this.checkHookPoint(point);
    const list = this._tokenSources.get(point) ?? [];
    list.push({ owner, fn });
    this._tokenSources.set(point, list);
  }

  private checkHookPoint(point: string): void {
    if (!this.hookPoints().includes(point)) {
      throw new Error(`${this.constructor.name} has no hook point '${point}' (available: ${this.hookPoints().join(', ') || 'none'})`);
    }
  }

  protected runHooks(point: string, x: Tensor, ctx: HookContext = {}): Tensor {
    const list = this._hooks.get(point);
    if (!list) return x;
    for (const h of list) x = h.fn(x, ctx);
    return x;
  }

  /** The tokens of every source at `point`, in attachment order ([] when none). [B, P, D] each */
  protected tokenSources(point: string, batch: number): Tensor[] {
    return (this._tokenSources.get(point) ?? []).map((s) => s.fn(batch));
  }

  /** Hooks and token sources attached to this module (not its children), as 'point<-owner'. */
  attachedHooks(): string[] {
    const out: string[] = [];
    for (const [p, l] of this._hooks) for (const h of l) out.push(`${p}<-${h.owner}`);
    for (const [p, l] of this._tokenSources) for (const h of l) out.push(`${p}<-${h.owner}`);
    return out;
  }
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

function checkLocalName(name: string, m: Module): void {
  if (!name || name.includes('.')) throw new Error(`${m.constructor.name}: invalid registration name '${name}'`);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A list of children named 0..n-1 (torch ModuleList / Sequential naming). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];
  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }
  push(m: M): void {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new Error(`ModuleList: index ${i} out of range (length ${this.items.length})`);
    return m;
  }
}
