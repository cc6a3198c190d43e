// Optimisers: AdamW exactly as HF transformers.AdamW (spec §6.3) and SGD with momentum (torch semantics), both
// with parameter groups (per-group lr / weightDecay), zeroGrad, step, and state that checkpoints can read and restore.
// Updates run in place through the engine's adamw_step / sgd_step ops, so every backend does them on device.
// Does not: schedule learning rates (train/schedule.ts sets group.lr each step), clip gradients, or own parameters.
// Invariants:
// - AdamW per parameter, t = that parameter's own step count (1-based, like HF):
//     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//     p -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)      (eps added BEFORE the bias correction)
//     p -= lr * wd * p                                              (decoupled decay AFTER the Adam step)
// - Parameters whose .grad is null are skipped (their step count does not advance).
// - Moment buffers are kept tensors (they survive scopes) on the parameter's backend and dtype.

import { Tensor, adamwStep, concat, div, full, minimum, noGrad, scope, sgdStep, zerosLike } from '../engine/index.ts';

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  weightDecay: number;
  /** lr given at construction (schedules multiply it) */
  readonly initialLr: number;
  name?: string;
}

export interface GroupSpec {
  params: Tensor[];
  lr?: number;
  weightDecay?: number;
  name?: string;
}

function buildGroups(params: Tensor[] | GroupSpec[], lr: number, weightDecay: number, who: string): ParamGroup[] {
  if (!Array.isArray(params)) throw new Error(`${who}: expected an array of Tensors or of parameter groups {params: Tensor[]}, got ${typeof params}`);
  const specs: GroupSpec[] = params.length > 0 && !(params[0] instanceof Tensor) ? (params as GroupSpec[]) : [{ params: params as Tensor[] }];
  specs.forEach((s, gi) => {
    if (!s || !Array.isArray((s as GroupSpec).params)) {
      const hint = Array.isArray(s) && s[1] instanceof Tensor ? ' (got [name, Tensor] pairs: pass the tensors, or models.parameterGroups(model, {lr}))' : '';
      throw new Error(`${who}: entry ${gi} is neither a Tensor nor a parameter group {params: Tensor[]}${hint}`);
    }
  });
  const seen = new Set<Tensor>();
  return specs.map((s, gi) => {
    for (const p of s.params) {
      if (!(p instanceof Tensor)) throw new Error(`${who}: group ${gi} holds a non-Tensor parameter`);
      if (seen.has(p)) throw new Error(`${who}: parameter ${p} appears in more than one group`);
      if (p.dtype === 'int32') throw new Error(`${who}: parameter ${p} is int32`);
      seen.add(p);
    }
    const glr = s.lr ?? lr;
    if (!(glr >= 0)) throw new Error(`${who}: group ${gi} has invalid lr ${glr}`);
    return { params: s.params.slice(), lr: glr, weightDecay: s.weightDecay ?? weightDecay, initialLr: glr, name: s.name };
  });
}

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface AdamWParamState {
  step: number;
  m: Tensor | null;
  v: Tensor | null;
}

export class AdamW {
  readonly groups: ParamGroup[];
  readonly betas: [number, number];
  readonly eps: number;
  private readonly state = new Map<Tensor, AdamWParamState>();

  constructor(params: Tensor[] | GroupSpec[], opts: AdamWOptions) {
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    const [b1, b2] = this.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new Error(`AdamW: invalid betas [${b1}, ${b2}]`);
    if (!(this.eps >= 0)) throw new Error(`AdamW: invalid eps ${this.eps}`);
    this.groups = buildGroups(params, opts.lr, opts.weightDecay ?? 0, 'AdamW');
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        let s = this.state.get(p);
        if (!s) {
          s = { step: 0, m: null, v: null };
          this.state.set(p, s);
        }
        if (!s.m) s.m = zerosLike(p).keep();
        if (!s.v) s.v = zerosLike(p).keep();
        s.step++;
        adamwStep(p, p.grad, s.m, s.v, {
          lr: g.lr, beta1: this.betas[0], beta2: this.betas[1], eps: this.eps, weightDecay: g.weightDecay, step: s.step,
        });
      }
    }
  }

  /** Drop every parameter's gradient (set to null, disposing it). */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Per-parameter state in group order (for checkpoints); tensors are the live buffers, do not dispose them. */
  getState(): { groups: { lr: number; weightDecay: number; name?: string }[]; params: AdamWParamState[] } {
    return {
      groups: this.groups.map((g) => ({ lr: g.lr, weightDecay: g.weightDecay, name: g.name })),
      params: this.groups.flatMap((g) => g.params.map((p) => {
        const s = this.state.get(p);
        return s ? { ...s } : { step: 0, m: null, v: null };
      })),
    };
  }

  /** Restore state saved by getState (tensors are copied into fresh kept buffers). */
  loadState(st: { params: { step: number; m: Tensor | null; v: Tensor | null }[]; groups?: { lr: number; weightDecay: number }[] }): void {
    const flat = this.groups.flatMap((g) => g.params);
    if (st.params.length !== flat.length) throw new Error(`AdamW.loadState: ${st.params.length} entries for ${flat.length} parameters`);
    if (st.groups && st.groups.length !== this.groups.length) throw new Error(`AdamW.loadState: ${st.groups.length} groups for ${this.groups.length}`);
    st.groups?.forEach((g, i) => { this.groups[i].lr = g.lr; this.groups[i].weightDecay = g.weightDecay; });
    flat.forEach((p, i) => {
      const e = st.params[i];
      for (const [k, t] of [['m', e.m], ['v', e.v]] as const) {
        if (t && (t.shape.length !== p.shape.length || t.shape.some((d, j) => d !== p.shape[j]))) {
          throw new Error(`AdamW.loadState: ${k} of parameter ${i} has shape [${t.shape}], parameter has [${p.shape}]`);
        }
      }
      const old = this.state.get(p);
      old?.m?.dispose();
      old?.v?.dispose();
      const copy = (t: Tensor | null) => (t ? t.to(p.backend).cast(p.dtype).keep() : null);
      this.state.set(p, { step: e.step, m: copy(e.m), v: copy(e.v) });
    });
  }

  /** Free the moment buffers. */
  dispose(): void {
    for (const s of this.state.values()) {
      s.m?.dispose();
      s.v?.dispose();
    }
    this.state.clear();
  }
}

/**
 * torch.nn.utils.clip_grad_norm_: scale every .grad by min(1, maxNorm / (total + 1e-6)) where total is the L2 norm
 * over all gradients; computed on device (no host read). Returns the total norm as a 0-d tensor (caller disposes).
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): Tensor {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const withGrad = params.filter((p) => p.grad);
  return noGrad(() => scope(() => {
    if (withGrad.length === 0) return full([], 0);
    const sq = concat(withGrad.map((p) => p.grad!.mul(p.grad!).sum().reshape([1])), 0);
    const total = sq.sum().sqrt();
    const coef = minimum(div(maxNorm, total.add(1e-6)), 1);
    for (const p of withGrad) {
      const g = p.grad!.mul(coef);
      p.grad!.dispose();
      p.grad = g.keep();
    }
    return total;
  }));
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

/** torch.optim.SGD (dampening 0, no nesterov): d = g + wd p; buf = momentum buf + d; p -= lr buf. */
export class SGD {
  readonly groups: ParamGroup[];
  readonly momentum: number;
  private readonly buffers = new Map<Tensor, Tensor>();

  constructor(params: Tensor[] | GroupSpec[], opts: SGDOptions) {
    this.momentum = opts.momentum ?? 0;
    if (!(this.momentum >= 0)) throw new Error(`SGD: invalid momentum ${this.momentum}`);
    this.groups = buildGroups(params, opts.lr, opts.weightDecay ?? 0, 'SGD');
  }

  step(): void {
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        let buf: Tensor | null = null;
        if (this.momentum !== 0) {
          buf = this.buffers.get(p) ?? null;
          if (!buf) {
            buf = zerosLike(p).keep();
            this.buffers.set(p, buf);
          }
        }
        sgdStep(p, p.grad, buf, { lr: g.lr, momentum: this.momentum, weightDecay: g.weightDecay });
      }
    }
  }

  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Momentum buffers in group order (null where none yet). */
  getState(): { buffers: (Tensor | null)[] } {
    return { buffers: this.groups.flatMap((g) => g.params.map((p) => this.buffers.get(p) ?? null)) };
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
