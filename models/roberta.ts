// HF BERT/RoBERTa building blocks with HF parameter names (attention.self.query/key/value,
// attention.output.dense/LayerNorm, intermediate.dense, output.dense/LayerNorm) and the RoBERTa text encoder
// METER uses as `text_transformer` (embeddings with position ids counted from padding_idx + 1, LN eps 1e-5,
// 12 post-LN layers, pooler kept for checkpoint names). BertEmbeddings (positions 0..L-1) is ViLT's text
// embedding; RobertaEmbeddings only changes how positions are counted. The same BertAttention / BertOutput classes
// are reused by METER's BertCrossLayer (meter.ts), which is where PETL methods attach.
// Deliberately NOT here: tokenisation, the cross layer, relative positions, decoder caches.
// Invariants: masks are additive [B, 1, 1, Nk] (0 keep, -10000 pad) or null (nothing masked); post-LN:
// LN(dropout(dense(x)) + residual). Hook points: BertSelfAttention 'q' (input: query stream), 'v' (input: key/value
// source); BertSelfOutput 'dense_out' (before dropout; input: residual), 'post_ln' (after LN; input: residual);
// BertOutput 'dense_out' (input: residual).
import { Tensor, tensor } from '../engine/index.ts';
import { Module, ModuleList } from './nn/module.ts';
import { Dropout, Embedding, LayerNorm, Linear } from './nn/layers.ts';
import { mergeHeads, scaledDotProduct, splitHeads } from './nn/attention.ts';
import { Pooler } from './heads.ts';

export interface BertLayerConfig {
  hidden: number;
  heads: number;
  intermediate: number;
  lnEps: number;
  drop: number;
}

export class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dropout: Dropout;
  constructor(readonly cfg: BertLayerConfig) {
    super();
    this.query = this.registerModule('query', new Linear(cfg.hidden, cfg.hidden));
    this.key = this.registerModule('key', new Linear(cfg.hidden, cfg.hidden));
    this.value = this.registerModule('value', new Linear(cfg.hidden, cfg.hidden));
    this.dropout = this.registerModule('dropout', new Dropout(cfg.drop));
  }
  override hookPoints(): readonly string[] {
    return ['q', 'v'];
  }
  // h [B, Nq, D], kv [B, Nk, D] -> context [B, Nq, D]
  forward(h: Tensor, kv: Tensor, mask: Tensor | null): Tensor {
    const H = this.cfg.heads;
    const q = this.runHooks('q', this.query.forward(h), { input: h });
    const k = this.key.forward(kv);
    const v = this.runHooks('v', this.value.forward(kv), { input: kv });
    const ctx = scaledDotProduct(splitHeads(q, H), splitHeads(k, H), splitHeads(v, H), mask, 1 / Math.sqrt(this.cfg.hidden / H), this.dropout);
    return mergeHeads(ctx);
  }
}

/**
 * HF's post-LN output sub-module: LN(dropout(dense(x)) + residual), with hook 'dense_out' on the dense output and
 * 'post_ln' after the LayerNorm (a subclass lists which of the two it offers). Both hooks get the residual as input.
 */
abstract class PostLnOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;
  constructor(inDim: number, cfg: BertLayerConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(inDim, cfg.hidden));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(cfg.hidden, cfg.lnEps));
    this.dropout = this.registerModule('dropout', new Dropout(cfg.drop));
  }
  // x [B, N, inDim], residual [B, N, D] -> [B, N, D]
  forward(x: Tensor, residual: Tensor): Tensor {
    let d = this.dense.forward(x);
    d = this.runHooks('dense_out', d, { input: residual });
    const out = this.LayerNorm.forward(this.dropout.forward(d).add(residual));
    return this.runHooks('post_ln', out, { input: residual });
  }
}

/** The attention output (`attention.output`): where APT, Adapter and PA attach in METER. */
export class BertSelfOutput extends PostLnOutput {
  constructor(cfg: BertLayerConfig) {
    super(cfg.hidden, cfg);
  }
  override hookPoints(): readonly string[] {
    return ['dense_out', 'post_ln'];
  }
}

export class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertSelfOutput;
  constructor(cfg: BertLayerConfig) {
    super();
    this.self = this.registerModule('self', new BertSelfAttention(cfg));
    this.output = this.registerModule('output', new BertSelfOutput(cfg));
  }
  /** query stream h, key/value source kv (h itself for self-attention) */
  forward(h: Tensor, kv: Tensor, mask: Tensor | null): Tensor {
    return this.output.forward(this.self.forward(h, kv, mask), h);
  }
}

export class BertIntermediate extends Module {
  readonly dense: Linear;
  constructor(cfg: BertLayerConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(cfg.hidden, cfg.intermediate));
  }
  forward(x: Tensor): Tensor {
    return this.dense.forwardGelu(x);
  }
}

/** The FFN output (`output`, after `intermediate`). */
export class BertOutput extends PostLnOutput {
  constructor(cfg: BertLayerConfig) {
    super(cfg.intermediate, cfg);
  }
  override hookPoints(): readonly string[] {
    return ['dense_out'];
  }
}

/** HF BertLayer (self-attention + FFN, post-LN), as in RoBERTa's encoder. */
export class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertOutput;
  constructor(cfg: BertLayerConfig) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(cfg));
    this.intermediate = this.registerModule('intermediate', new BertIntermediate(cfg));
    this.output = this.registerModule('output', new BertOutput(cfg));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    const a = this.attention.forward(x, x, mask);
    return this.output.forward(this.intermediate.forward(a), a);
  }
}

export interface RobertaConfig extends BertLayerConfig {
  vocab: number;
  layers: number;
  /** rows of the position table (max positions + padding_idx + 1: 514 for roberta-base) */
  maxPositions: number;
  padIdx: number;
  typeVocab: number;
}

export const ROBERTA_BASE: RobertaConfig = Object.freeze({
  vocab: 50265, hidden: 768, layers: 12, heads: 12, intermediate: 3072, maxPositions: 514, padIdx: 1, typeVocab: 1,
  lnEps: 1e-5, drop: 0.1,
});

export const ROBERTA_TINY: RobertaConfig = Object.freeze({
  vocab: 64, hidden: 64, layers: 2, heads: 4, intermediate: 256, maxPositions: 18, padIdx: 1, typeVocab: 1,
  lnEps: 1e-5, drop: 0,
});

/** What a BERT-style text embedding needs (RobertaConfig satisfies it; ViLT maps its own config onto it). */
export interface TextEmbeddingConfig {
  vocab: number;
  hidden: number;
  /** rows of the position table */
  maxPositions: number;
  typeVocab: number;
  /** padding id: its word row (and, for RoBERTa, its position row) gets no gradient */
  padIdx: number;
  lnEps: number;
  drop: number;
}

/**
 * HF BertEmbeddings (ViLT's `text_embeddings`): word + type row 0 + position, LayerNorm, dropout. Positions are
 * 0..L-1 (the first L rows of the table, broadcast over the batch).
 */
export class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;
  constructor(readonly ecfg: TextEmbeddingConfig, opts: { paddedPositions?: boolean } = {}) {
    super();
    const { vocab, hidden, maxPositions, padIdx } = ecfg;
    this.word_embeddings = this.registerModule('word_embeddings', new Embedding(vocab, hidden, { paddingIdx: padIdx }));
    this.position_embeddings = this.registerModule('position_embeddings', new Embedding(maxPositions, hidden, opts.paddedPositions ? { paddingIdx: padIdx } : {}));
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new Embedding(ecfg.typeVocab, hidden));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(hidden, ecfg.lnEps));
    this.dropout = this.registerModule('dropout', new Dropout(ecfg.drop));
    this.registerBuffer('position_ids', tensor(Int32Array.from({ length: maxPositions }, (_, i) => i), [1, maxPositions], { dtype: 'int32' }));
  }
  /** Position embeddings to add to [B, L, D] word embeddings: rows 0..L-1 as [L, D]. */
  protected positions(ids: Tensor, _hostIds?: ArrayLike<number>): Tensor {
    const L = ids.shape[1];
    if (L > this.ecfg.maxPositions) throw new Error(`text embeddings: text length ${L} exceeds the ${this.ecfg.maxPositions}-row position table (max_text_len)`);
    return this.position_embeddings.weight.slice(0, 0, L);
  }
  // ids int32 [B, L] -> [B, L, D]; hostIds: the same ids on the host, when the caller has them (no read-back)
  forward(ids: Tensor, hostIds?: ArrayLike<number>): Tensor {
    if (ids.ndim !== 2) throw new Error(`text embeddings: ids must be [B, L], got [${ids.shape}]`);
    let e = this.word_embeddings.forward(ids);
    e = e.add(this.token_type_embeddings.weight.slice(0, 0, 1)); // the type id is always 0
    e = e.add(this.positions(ids, hostIds));
    return this.dropout.forward(this.LayerNorm.forward(e));
  }
}

/** RoBERTa embeddings: BertEmbeddings whose positions count non-pad tokens from padIdx + 1 (pads get padIdx). */
export class RobertaEmbeddings extends BertEmbeddings {
  constructor(readonly cfg: RobertaConfig) {
    super(cfg, { paddedPositions: true });
  }
  /** HF create_position_ids_from_input_ids: padIdx + cumulative count of non-pad tokens; pads get padIdx. */
  positionIds(ids: Tensor, hostIds?: ArrayLike<number>): Tensor {
    const [B, L] = ids.shape;
    const src = hostIds ?? ids.toArray();
    const out = new Int32Array(B * L);
    const pad = this.cfg.padIdx;
    for (let b = 0; b < B; b++) {
      let c = 0;
      for (let j = 0; j < L; j++) {
        const t = src[b * L + j];
        if (t !== pad) c++;
        out[b * L + j] = t !== pad ? c + pad : pad;
        if (out[b * L + j] >= this.cfg.maxPositions) {
          throw new Error(`RoBERTa embeddings: position ${out[b * L + j]} exceeds the ${this.cfg.maxPositions}-row table (text too long)`);
        }
      }
    }
    return tensor(out, [B, L], { dtype: 'int32' });
  }
  protected override positions(ids: Tensor, hostIds?: ArrayLike<number>): Tensor {
    return this.position_embeddings.forward(this.positionIds(ids, hostIds));
  }
}

export class RobertaModel extends Module {
  readonly embeddings: RobertaEmbeddings;
  readonly encoder: Module & { layer: ModuleList<BertLayer> };
  readonly pooler: Pooler;
  constructor(readonly cfg: RobertaConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new RobertaEmbeddings(cfg));
    const enc = new Module() as Module & { layer: ModuleList<BertLayer> };
    enc.layer = enc.registerModule('layer', new ModuleList(Array.from({ length: cfg.layers }, () => new BertLayer(cfg))));
    this.encoder = this.registerModule('encoder', enc);
    this.pooler = this.registerModule('pooler', new Pooler(cfg.hidden));
  }
  /** Encoder layers over given embeddings (METER runs embeddings and layers separately). [B, L, D] */
  encode(emb: Tensor, mask: Tensor | null): Tensor {
    let x = emb;
    for (const l of this.encoder.layer.items) x = l.forward(x, mask);
    return x;
  }
}
