// METER-CLIP-ViT-B/16 + RoBERTa-base (apt-spec §2): frozen CLIP visual tower and RoBERTa encoder, the two
// cross-modal transforms, modality type embeddings, num_top_layer co-attention BertCrossLayers per stream
// (post-LN eps 1e-12: self-attention, cross-attention, FFN; both streams read the previous x and y), two poolers,
// cls_feats = [text pooler; image pooler] (2D), as a VLBackbone (backbone.ts): embed() runs the encoders and
// transforms, forwardTokens() the fusion. Parameter names equal METER's checkpoint.
// Deliberately NOT here: heads (heads.ts), PETL modules (petl/), checkpoint loading.
// Invariants: text mask additive -10000 (HF extended mask), the image mask is all ones (null); token sources:
// BertCrossLayer 'cross_kv' tokens are PREPENDED to the other stream (deep prompt, §3.2); MeterModel
// 'fusion_text' / 'fusion_image' tokens are PREPENDED to x / y before layer 1 (shallow prompt, §3.3).
// Encoders run without gradient unless `encoderGrad` (full tuning) is set.
// Insertion points (METER_POINTS, petl/points.ts): the fusion layers only; PETL methods keep the encoders frozen.
import { Tensor, concat, tensor, zeros } from '../engine/index.ts';
import { Module, ModuleList } from './nn/module.ts';
import { Embedding, Linear } from './nn/layers.ts';
import { additiveKeyMask } from './nn/attention.ts';
import { BertAttention, BertIntermediate, BertOutput, RobertaModel, ROBERTA_BASE, ROBERTA_TINY, type BertLayerConfig, type RobertaConfig } from './roberta.ts';
import { ClipModel, CLIP_B16, CLIP_TINY, type ClipConfig } from './clip.ts';
import { Pooler } from './heads.ts';
import type { InsertionPoints } from './petl/points.ts';
import { VLBackbone, type BackboneInput, type BackboneOutput, type TokenInput } from './backbone.ts';

export interface MeterConfig {
  /** fusion width (= hidden_size) */
  hidden: number;
  heads: number;
  /** num_top_layer: cross layers per stream */
  fusionLayers: number;
  intermediate: number;
  /** the fusion layers' BertConfig default eps */
  fusionLnEps: number;
  drop: number;
  maxTextLen: number;
  /** RoBERTa <s> */
  clsTokenId: number;
  clip: ClipConfig;
  roberta: RobertaConfig;
}

export const METER_BASE: MeterConfig = Object.freeze({
  hidden: 768, heads: 12, fusionLayers: 6, intermediate: 3072, fusionLnEps: 1e-12, drop: 0.1, maxTextLen: 50, clsTokenId: 0,
  clip: CLIP_B16, roberta: ROBERTA_BASE,
});

export const METER_TINY: MeterConfig = Object.freeze({
  hidden: 64, heads: 4, fusionLayers: 2, intermediate: 256, fusionLnEps: 1e-12, drop: 0, maxTextLen: 16, clsTokenId: 0,
  clip: CLIP_TINY, roberta: ROBERTA_TINY,
});

const NEG = -10000;

const FUSION = 'cross_modal_*_layers.*';
const SELF_ATTN = [`${FUSION}.attention.self`, `${FUSION}.crossattention.self`];
const ATTN_OUT = [`${FUSION}.attention.output`, `${FUSION}.crossattention.output`];
/** Where methods attach in METER (module paths and their local hook points): the fusion layers. */
export const METER_POINTS: InsertionPoints = Object.freeze({
  hooks: [
    { paths: SELF_ATTN, offers: { 'attn.q': 'q', 'attn.v': 'v' } },
    // APT and the sequential adapter both act on the dense output, before dropout; PA after the post-LN
    { paths: ATTN_OUT, offers: { 'attn.out': 'dense_out', 'attn.branch': 'dense_out', 'attn.parallel': 'post_ln' } },
    { paths: [`${FUSION}.output`], offers: { 'ffn.branch': 'dense_out' } },
  ],
  tokens: {
    // stream 0 (prompts.0) is read by the image layers' cross-attention, stream 1 by the text layers' (§3.2)
    'layer.kv': [{ paths: ['cross_modal_image_layers.*'], point: 'cross_kv' }, { paths: ['cross_modal_text_layers.*'], point: 'cross_kv' }],
    input: [{ paths: [''], point: 'fusion_text' }, { paths: [''], point: 'fusion_image' }],
  },
});

export class BertCrossLayer extends Module {
  readonly attention: BertAttention;
  readonly crossattention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertOutput;
  constructor(cfg: BertLayerConfig) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(cfg));
    this.crossattention = this.registerModule('crossattention', new BertAttention(cfg));
    this.intermediate = this.registerModule('intermediate', new BertIntermediate(cfg));
    this.output = this.registerModule('output', new BertOutput(cfg));
  }
  override hookPoints(): readonly string[] {
    return ['cross_kv'];
  }
  /** h [B, Ns, D] own stream, o [B, No, D] other stream; masks additive or null. */
  forward(h: Tensor, o: Tensor, mask: Tensor | null, otherMask: Tensor | null): Tensor {
    const B = h.shape[0];
    const extra = this.tokenSources('cross_kv', B);
    if (extra.length) {
      const No = o.shape[1];
      o = concat([...extra, o], 1);
      const P = o.shape[1] - No;
      if (otherMask) otherMask = concat([zeros([B, 1, 1, P]), otherMask], 3);
    }
    const a1 = this.attention.forward(h, h, mask);
    const a2 = this.crossattention.forward(a1, o, otherMask);
    return this.output.forward(this.intermediate.forward(a2), a2);
  }
}

export class MeterModel extends VLBackbone {
  readonly kind = 'meter' as const;
  readonly cross_modal_text_transform: Linear;
  readonly cross_modal_image_transform: Linear;
  token_type_embeddings: Embedding;
  readonly vit_model: ClipModel;
  readonly text_transformer: RobertaModel;
  readonly cross_modal_image_layers: ModuleList<BertCrossLayer>;
  readonly cross_modal_text_layers: ModuleList<BertCrossLayer>;
  readonly cross_modal_image_pooler: Pooler;
  readonly cross_modal_text_pooler: Pooler;
  /** PETL methods never train the encoders (§3.0) */
  override readonly petlFrozen = ['text_transformer', 'vit_model'] as const;
  constructor(readonly cfg: MeterConfig, opts: { typeRows?: number } = {}) {
    super();
    const D = cfg.hidden;
    if (cfg.roberta.hidden !== D) {
      throw new Error(`METER config: the RoBERTa width (${cfg.roberta.hidden}) must equal the fusion width hidden (${D}): ` +
        'token4classifier, an input-level RoBERTa embedding, replaces text position 0 after cross_modal_text_transform (apt-spec §2.2 step 3)');
    }
    this.cross_modal_text_transform = this.registerModule('cross_modal_text_transform', new Linear(cfg.roberta.hidden, D));
    this.cross_modal_image_transform = this.registerModule('cross_modal_image_transform', new Linear(cfg.clip.width, D));
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new Embedding(opts.typeRows ?? 2, D));
    this.vit_model = this.registerModule('vit_model', new ClipModel(cfg.clip));
    this.text_transformer = this.registerModule('text_transformer', new RobertaModel(cfg.roberta));
    const lc: BertLayerConfig = { hidden: D, heads: cfg.heads, intermediate: cfg.intermediate, lnEps: cfg.fusionLnEps, drop: cfg.drop };
    const mk = () => new ModuleList(Array.from({ length: cfg.fusionLayers }, () => new BertCrossLayer(lc)));
    this.cross_modal_image_layers = this.registerModule('cross_modal_image_layers', mk());
    this.cross_modal_text_layers = this.registerModule('cross_modal_text_layers', mk());
    this.cross_modal_image_pooler = this.registerModule('cross_modal_image_pooler', new Pooler(D));
    this.cross_modal_text_pooler = this.registerModule('cross_modal_text_pooler', new Pooler(D));
  }
  get hidden(): number {
    return this.cfg.hidden;
  }
  get clsDim(): number {
    return 2 * this.cfg.hidden;
  }
  override hookPoints(): readonly string[] {
    return ['fusion_text', 'fusion_image'];
  }
  insertionPoints(): InsertionPoints {
    return METER_POINTS;
  }

  protected embedClassifierId(): Tensor {
    const host = Int32Array.from([this.cfg.clsTokenId]);
    return this.text_transformer.embeddings.forward(tensor(host, [1, 1], { dtype: 'int32' }), host);
  }

  /**
   * §2.2 steps 1-4: RoBERTa (embeddings + encoder) and CLIP, each without gradient unless `encoderGrad`, the two
   * cross-modal transforms, text position 0 := token4classifier, modality types. The image is all valid.
   */
  embed(inp: BackboneInput): TokenInput {
    const { textIds, image } = inp;
    const k = inp.imageTypeIdx ?? 1;
    const L = textIds.shape[1];
    if (L > this.cfg.maxTextLen) throw new Error(`METER: text length ${L} exceeds max_text_len ${this.cfg.maxTextLen}`);
    this.checkImageType(k);
    const textRows = inp.textMasks.toList() as number[][];
    let temb = this.text_transformer.embeddings.forward(textIds);
    if (!this.encoderGrad) temb = temb.detach();
    let t = this.text_transformer.encode(temb, additiveKeyMask(textRows, NEG));
    t = this.cross_modal_text_transform.forward(t);
    let vfeat = this.vit_model.forward(image);
    if (!this.encoderGrad) vfeat = vfeat.detach();
    const v = this.cross_modal_image_transform.forward(vfeat);
    const [text, img] = this.addModalityTypes(this.placeTokenForClassifier(t), v, k);
    return { text, image: img, textMask: textRows, imageMask: null };
  }

  /**
   * §2.2 steps 5-6: 'fusion_text' / 'fusion_image' token sources (shallow prompt, all valid) prepended to x / y,
   * then the co-attention layers (both streams read the previous x and y) and the two poolers on token 0.
   * Additive masks -10000; a stream whose rows are null is not masked.
   */
  forwardTokens(tok: TokenInput): BackboneOutput {
    this.checkTokens(tok);
    const B = tok.text.shape[0];
    let [x, xMask] = prependSources(this.tokenSources('fusion_text', B), tok.text, tok.textMask);
    let [y, yMask] = prependSources(this.tokenSources('fusion_image', B), tok.image, tok.imageMask);
    for (let i = 0; i < this.cfg.fusionLayers; i++) {
      const x1 = this.cross_modal_text_layers.at(i).forward(x, y, xMask, yMask);
      const y1 = this.cross_modal_image_layers.at(i).forward(y, x, yMask, xMask);
      x = x1;
      y = y1;
    }
    const cls = concat([this.cross_modal_text_pooler.forward(x), this.cross_modal_image_pooler.forward(y)], 1);
    return { textFeats: x, imageFeats: y, clsFeats: cls };
  }
}

/** [...sources; x] and its additive mask (sources valid; null when rows are null). x [B, N, D] */
function prependSources(sources: Tensor[], x: Tensor, rows: number[][] | null): [Tensor, Tensor | null] {
  if (!sources.length) return [x, rows ? additiveKeyMask(rows, NEG) : null];
  const out = concat([...sources, x], 1);
  const P = out.shape[1] - x.shape[1];
  return [out, rows ? additiveKeyMask(rows.map((r) => [...new Array<number>(P).fill(1), ...r]), NEG) : null];
}
