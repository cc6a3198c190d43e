// Basic layers with torch parameter names and layouts: Linear (weight [out, in]), LayerNorm(eps), Embedding,
// Dropout (seeded through an engine Generator), GELU/Tanh/ReLU activations and Sequential (children 0..n-1).
// Deliberately NOT here: attention (attention.ts), model-specific blocks.
// Invariants: parameter names are 'weight' / 'bias' like torch; Dropout is the identity when !training or p == 0.
import { Generator, Tensor, dropout, embedding, isGradEnabled, layerNorm, linear, tensor, where } from '../../engine/index.ts';
import { Module } from './module.ts';
import { constant, normal, truncNormal, zerosInit } from './init.ts';

export type LinearInit = 'normal0.02' | 'trunc0.02' | 'zeros' | { std: number } | 'none';

export class Linear extends Module {
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; init?: LinearInit } = {}) {
    super();
    const init = opts.init ?? 'normal0.02';
    const shape = [outFeatures, inFeatures];
    let w: Tensor;
    if (init === 'zeros' || init === 'none') w = zerosInit(shape);
    else if (init === 'trunc0.02') w = truncNormal(shape, 0.02);
    else if (init === 'normal0.02') w = normal(shape, 0.02);
    else w = normal(shape, init.std);
    this.registerParameter('weight', w);
    if (opts.bias ?? true) this.registerParameter('bias', zerosInit([outFeatures]));
  }
  get weight(): Tensor {
    return this.param('weight');
  }
  get bias(): Tensor | undefined {
    return this.hasParam('bias') ? this.param('bias') : undefined;
  }
  // [..., in] -> [..., out]
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
  /** gelu(forward(x)) with the bias and the GELU in one op (bias_gelu: x Wᵀ + b is never stored) */
  forwardGelu(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias, 'gelu');
  }
}

export class LayerNorm extends Module {
  constructor(readonly dim: number, readonly eps: number) {
    super();
    this.registerParameter('weight', constant([dim], 1));
    this.registerParameter('bias', zerosInit([dim]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.param('weight'), this.param('bias'), this.eps);
  }
}

/** Embedding table; like torch's padding_idx, the padding row never receives gradient (its value is used). */
export class Embedding extends Module {
  readonly paddingIdx: number | undefined;
  constructor(readonly num: number, readonly dim: number, opts: { std?: number; paddingIdx?: number } = {}) {
    super();
    this.paddingIdx = opts.paddingIdx;
    const w = normal([num, dim], opts.std ?? 0.02);
    this.registerParameter('weight', w);
  }
  get weight(): Tensor {
    return this.param('weight');
  }
  // ids int32 [...] -> [..., dim]
  forward(ids: Tensor): Tensor {
    const w = this.weight;
    const out = embedding(w, ids);
    if (this.paddingIdx === undefined || !w.requiresGrad || !isGradEnabled()) return out;
    const raw = ids.toArray();
    const pad = this.paddingIdx;
    if (!raw.some((v) => v === pad)) return out;
    const isPad = tensor(Float32Array.from(raw, (v) => (v === pad ? 1 : 0)), [...ids.shape, 1]);
    return where(isPad, embedding(w.detach(), ids), out);
  }
}

/** Dropout whose masks come from `generator` (set per model by setDropoutGenerator) or the engine default. */
export class Dropout extends Module {
  generator: Generator | undefined;
  constructor(public p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, { training: true, generator: this.generator });
  }
}

export class GELU extends Module {
  forward(x: Tensor): Tensor {
    return x.gelu();
  }
}

/** Children named 0..n-1 like torch nn.Sequential; forward chains them. */
export class Sequential extends Module {
  readonly layers: { forward(x: Tensor): Tensor }[] = [];
  constructor(layers: (Module & { forward(x: Tensor): Tensor })[]) {
    super();
    layers.forEach((m, i) => {
      this.registerModule(String(i), m);
      this.layers.push(m);
    });
  }
  forward(x: Tensor): Tensor {
    for (const l of this.layers) x = l.forward(x);
    return x;
  }
}

/** Sets the dropout generator of every Dropout in the tree (one generator per model run). */
export function setDropoutGenerator(root: Module, g: Generator | undefined): void {
  for (const [, m] of root.namedModules()) if (m instanceof Dropout) m.generator = g;
}

/** Sets p of every Dropout in the tree (tests use 0 for determinism). */
export function setDropoutRate(root: Module, p: number): void {
  for (const [, m] of root.namedModules()) if (m instanceof Dropout) m.p = p;
}
