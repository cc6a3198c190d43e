// What ViLT and METER share as vision-language backbones (apt-spec §1.4, §2.2): the input/output types, the
// split of the one forward into embed() (ids and pixels -> modality tokens) and forwardTokens() (tokens ->
// features and cls_feats), the modality type rows, and the learnable `token4classifier` that replaces text
// position 0 in every PETL / classifier-only variant.
// Each backbone also declares its insertion points (insertionPoints(): which of its modules the methods hook).
// Deliberately NOT here: any layer of either model, heads, methods, checkpoint names.
// Invariants: infer(inp) is exactly forwardTokens(embed(inp)); forwardTokens is the whole trainable part of the
// forward (method token sources, blocks / fusion layers, poolers) and reads no tensor data, so the accounting
// (accounting.ts) measures the real forward by calling it on the shape backend with zero tokens.
import { Tensor, concat, noGrad } from '../engine/index.ts';
import { Module } from './nn/module.ts';
import type { Embedding } from './nn/layers.ts';
import { normal } from './nn/init.ts';
import type { InsertionPoints, PetlHost } from './petl/points.ts';

export interface BackboneInput {
  textIds: Tensor; // int32 [B, L]
  textMasks: Tensor; // [B, L] 0/1
  image: Tensor; // [B, 3, H, W]
  /** modality type row for the image (1, or 2 for NLVR2's second image) */
  imageTypeIdx?: number;
}

export interface BackboneOutput {
  textFeats: Tensor; // [B, L(+prompts), D]
  imageFeats: Tensor; // [B, Nv(+prompts), D]
  clsFeats: Tensor; // [B, D] (ViLT) / [B, 2D] (METER)
}

/**
 * The token-level input of a backbone: what embed() returns and forwardTokens() takes. Modality type rows are
 * already added and token4classifier is already in place.
 */
export interface TokenInput {
  text: Tensor; // [B, Lt, D]
  image: Tensor; // [B, Li, D]
  /** 0/1 validity rows [B][Lt]; null = every token valid */
  textMask: number[][] | null;
  /** 0/1 validity rows [B][Li]; null = every token valid */
  imageMask: number[][] | null;
}

export abstract class VLBackbone extends Module implements PetlHost {
  abstract readonly kind: 'vilt' | 'meter';
  /** where methods attach: the named insertion points (petl/points.ts) as module paths of this backbone */
  abstract insertionPoints(): InsertionPoints;
  /** names every PETL method keeps frozen (none unless the backbone says so) */
  readonly petlFrozen: readonly string[] = [];
  /** full tuning: gradients reach the parts this backbone otherwise runs without gradient (METER's encoders) */
  encoderGrad = false;
  /** the modality type table (2 rows; 3 for NLVR2) */
  abstract token_type_embeddings: Embedding;
  /** width D of the tokens forwardTokens takes */
  abstract get hidden(): number;
  /** width of cls_feats */
  abstract get clsDim(): number;
  /** Inputs -> modality tokens (text and image encoders, token4classifier, type rows). */
  abstract embed(inp: BackboneInput): TokenInput;
  /** Modality tokens -> features: method token sources, the blocks / fusion layers, final norm, pooler(s). */
  abstract forwardTokens(tok: TokenInput): BackboneOutput;
  /** Text-embedding output [1, 1, D] for the classifier token id at position 0 (the init of token4classifier). */
  protected abstract embedClassifierId(): Tensor;

  infer(inp: BackboneInput): BackboneOutput {
    return this.forwardTokens(this.embed(inp));
  }

  /** Adds the learnable `token4classifier` [1, 1, D] (PETL variants), initialised by initTokenForClassifier. */
  addTokenForClassifier(): void {
    if (this.hasParam('token4classifier')) return;
    // the draw keeps the init generator's stream identical whether or not the value is overwritten below
    this.registerParameter('token4classifier', normal([1, 1, this.hidden], 0.02));
    this.initTokenForClassifier();
  }

  /**
   * token4classifier := text embedding of the classifier id at position 0, computed in eval mode without
   * gradient (the reference bakes one random dropout mask into it; we do not). Call again after loading
   * pre-trained weights. Every module's train/eval flag is restored afterwards.
   */
  initTokenForClassifier(): void {
    if (!this.hasParam('token4classifier')) return;
    const flags = this.namedModules().map(([, m]) => [m, m.training] as const);
    this.train(false);
    try {
      const e = noGrad(() => this.embedClassifierId());
      this.setParam('token4classifier', e.clone());
    } finally {
      for (const [m, f] of flags) m.training = f;
    }
  }

  /** Text position 0 := token4classifier when the variant has one (§1.4, §2.2 step 3). t [B, L, D] */
  protected placeTokenForClassifier(t: Tensor): Tensor {
    if (!this.hasParam('token4classifier')) return t;
    const [B, L, D] = t.shape;
    return concat([this.param('token4classifier').expand([B, 1, D]), t.slice(1, 1, L)], 1);
  }

  /** Text gets type row 0, the image row k. t [B, Lt, D], v [B, Li, D] */
  protected addModalityTypes(t: Tensor, v: Tensor, k: number): [Tensor, Tensor] {
    const tt = this.token_type_embeddings.weight;
    return [t.add(tt.slice(0, 0, 1)), v.add(tt.slice(0, k, k + 1))];
  }

  /** Raises unless the type table has a row for image type k. */
  protected checkImageType(k: number): void {
    const rows = this.token_type_embeddings.weight.shape[0];
    if (!Number.isInteger(k) || k < 0 || k >= rows) {
      throw new Error(`${this.kind === 'vilt' ? 'ViLT' : 'METER'}: image type index ${k} is outside the ${rows}-row modality type table`);
    }
  }

  /** Raises unless both token tensors are [B, *, hidden] with the same B. */
  protected checkTokens(tok: TokenInput): void {
    const { text, image } = tok;
    const D = this.hidden;
    if (text.ndim !== 3 || image.ndim !== 3 || text.shape[2] !== D || image.shape[2] !== D || text.shape[0] !== image.shape[0]) {
      throw new Error(`${this.kind}: forwardTokens needs text [B, Lt, ${D}] and image [B, Li, ${D}], got [${text.shape}] and [${image.shape}]`);
    }
  }
}

/** Validity rows for `n` tokens per row: the given ones, or all ones when null. */
export function validRows(rows: number[][] | null, batch: number, n: number): number[][] {
  return rows ?? Array.from({ length: batch }, () => new Array<number>(n).fill(1));
}
