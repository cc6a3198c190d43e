// Pre-training heads for a small ViLT (synthetic-benchmark.md "Pre-training a backbone that actually grounds"):
// `mlm_score` with ViLT's MLMHead names (transform.dense, transform.LayerNorm eps 1e-12, decoder [vocab, hidden]
// without bias, and its own `mlm_score.bias` [vocab]), the ITM head `itm_score.fc` (heads.ts ItmHead, reused), and
// the image-text contrastive parts, which ViLT does not have: `itc_text_proj`, `itc_image_proj` (Linear D -> P) and
// the learnable temperature `itc_logit_scale` ([1], log scale, CLIP init log(1/0.07), exp clamped to <= 100).
// Also the 'synth' model preset (hidden 128, 4 layers, 4 heads, MLP 512, patch 16, dropout 0) and the helpers that
// run the shared layers on one modality (text-only / image-only passes); contrastive embeddings are the projected
// token 0 of each pass (text [CLS], image cls_token; 'mean' of the valid tokens is the alternative), centred on the
// batch (see itcEmbed).
// METER (kind 'meter'): the same heads on a small METER (meterSynthConfig: CLIP-style image encoder, RoBERTa-style
// text encoder, co-attention fusion); the contrastive embeddings are token 0 of the unimodal encoders (RoBERTa <s> /
// [CLS], CLIP class token after ln_post), as in CLIP, projected from the encoders' own widths; MLM reads the fusion's
// text stream, ITM the fusion's cls_feats [text pooler; image pooler].
// Deliberately NOT here: objectives, masking, data, the training loop (experiments/pretrain.ts).
// Invariants: heads are registered on the backbone itself, so their names are top-level like the reference's
// (`mlm_score.*`, `itm_score.*`); single-modality passes run exactly the blocks + final norm of forwardTokens.
import { Tensor, noGrad, tensor } from '../engine/index.ts';
import { Module } from './nn/module.ts';
import { LayerNorm, Linear } from './nn/layers.ts';
import { constant, zerosInit } from './nn/init.ts';
import { additiveKeyMask } from './nn/attention.ts';
import { ItmHead } from './heads.ts';
import { VILT_TINY, type ViltConfig, type ViltModel } from './vilt.ts';
import { METER_TINY, type MeterConfig, type MeterModel } from './meter.ts';
import type { VLBackbone } from './backbone.ts';
import type { MethodName } from './petl/index.ts';
import type { MethodOptions } from './petl/inject.ts';

/** The 'synth' preset of the miniature experiment; vocab, maxTextLen and clsTokenId come from the tokenizer. */
export const VILT_SYNTH: ViltConfig = Object.freeze({
  ...VILT_TINY, hidden: 128, heads: 4, layers: 4, mlp: 512, patch: 16, posGrid: 3, drop: 0,
});

/**
 * The 'synth' METER: fusion width 128, 4 heads, 2 co-attention layers per stream, FFN 512; a CLIP-style image tower
 * of width 128 with 2 blocks (CLIP `layers` 3, METER builds layers - 1) on 16-pixel patches of 48-pixel images (the
 * ViLT synth grid); a RoBERTa-style text encoder of 2 layers, width 128, sized to the tokenizer (vocab, pad id,
 * positions maxTextLen + pad + 2). Dropout 0. About the ViLT synth's compute per sample.
 */
export function meterSynthConfig(t: { vocab: number; padId: number; startId: number; maxTextLen: number }): MeterConfig {
  return {
    ...METER_TINY, hidden: 128, heads: 4, fusionLayers: 2, intermediate: 512, drop: 0, maxTextLen: t.maxTextLen, clsTokenId: t.startId,
    clip: { width: 128, heads: 4, layers: 3, patch: 16, imageSize: 48, lnEps: 1e-5, textStub: null },
    roberta: { vocab: t.vocab, hidden: 128, layers: 2, heads: 4, intermediate: 512, maxPositions: t.maxTextLen + t.padId + 2, padIdx: t.padId, typeVocab: 1, lnEps: 1e-5, drop: 0 },
  };
}

/**
 * Method sizes scaled to hidden 128 (synthetic-benchmark.md): deep prompt 16 tokens per layer, APT M=16 h=4,
 * LoRA r=4, adapter and scaled parallel adapter r=16 (scale 4); shallow prompt 16 tokens.
 */
export const SYNTH_METHOD_OPTIONS: Record<MethodName, MethodOptions> = {
  apt: { tokens: 16, rank: 4 },
  deep_prompt: { tokens: 16 },
  shallow_prompt: { tokens: 16 },
  lora: { rank: 4 },
  adapter: { rank: 16 },
  parallel_adapter: { rank: 16, scale: 4 },
  classifier_only: {},
  full: {},
};

/** BertPredictionHeadTransform + decoder, as ViLT's MLMHead (not weight-tied). x [B, L, D] -> [B, L, vocab] */
export class MlmHead extends Module {
  readonly transform: Module & { dense: Linear; LayerNorm: LayerNorm };
  readonly decoder: Linear;
  constructor(hidden: number, vocab: number) {
    super();
    const t = new Module() as Module & { dense: Linear; LayerNorm: LayerNorm };
    t.dense = t.registerModule('dense', new Linear(hidden, hidden));
    t.LayerNorm = t.registerModule('LayerNorm', new LayerNorm(hidden, 1e-12));
    this.transform = this.registerModule('transform', t);
    this.decoder = this.registerModule('decoder', new Linear(hidden, vocab, { bias: false }));
    this.registerParameter('bias', zerosInit([vocab]));
  }
  forward(x: Tensor): Tensor {
    const h = this.transform.LayerNorm.forward(this.transform.dense.forward(x).gelu());
    return this.decoder.forward(h).add(this.param('bias'));
  }
}

/** CLIP's initial logit scale: log(1 / 0.07). */
export const ITC_INIT_LOG_SCALE = Math.log(1 / 0.07);
export const ITC_MAX_SCALE = 100;

/** The contrastive scale exp(itc_logit_scale), clamped to <= 100 (as CLIP). */
export function itcScale(bb: Module): Tensor {
  return bb.param('itc_logit_scale').exp().minimum(ITC_MAX_SCALE);
}

/**
 * What the contrastive projection reads: 'cls' = token 0 of the single-modality pass (text [CLS], image
 * cls_token), 'mean' = the mean of the valid tokens. Why 'cls' is the default: with the batch-centred loss and
 * 'mean', nothing made token 0 depend on the sample (the centring removes the common component for free). Measured
 * on the 48 px corpus after 1,500 steps: the joint pass's token 0 had a relative batch spread of 0.12 (0.72 after
 * the uncentred loss), the ITM gradient reaching the blocks was 600x smaller than the contrastive one, the ITM head
 * on the pooler of token 0 stayed dead and held-out ITM sat at chance (0.51) while retrieval reached R@1 0.91.
 * Reading token 0 makes the contrastive loss teach the text [CLS] to summarise the caption, which the ITM pass
 * builds on (1,000 more steps: spread 0.20, gradient ratio 13x, ITM rising).
 */
export type ItcPool = 'cls' | 'mean';
/**
 * The image side's pooling: an ItcPool, or 'flat': the projection reads all N image tokens flattened (Linear
 * N * D -> P), so every token position has its own weights and an object's content and its cell combine linearly in
 * the embedding (fixed-size images only: every token must be valid). Measured on the ViLT synth (seed 0, one run each):
 * text->image R@1 0.591 against 0.536 from token 0, on position captions 0.340 against 0.225.
 */
export type ItcImagePool = ItcPool | 'flat';

export interface PretrainHeads {
  mlm: MlmHead;
  itm: ItmHead;
  textProj: Linear;
  imageProj: Linear;
  pool: ItcPool;
  /** the image side's pooling (default `pool`) */
  imagePool: ItcImagePool;
  /** fraction of the batch mean removed before normalising (itcEmbed's `center`): 1 = centred, 0 = as CLIP */
  center: number;
}

/**
 * Registers the pre-training heads on a ViLT backbone (idempotent for itm_score, which createModel adds for the
 * itm task). projDim: width P of the contrastive projections (default hidden / 2).
 */
export function addPretrainHeads(bb: ViltModel | MeterModel, opts: { projDim?: number; pool?: ItcPool; imagePool?: ItcImagePool; imageTokens?: number; center?: number } = {}): PretrainHeads {
  const D = bb.cfg.hidden;
  const P = opts.projDim ?? Math.max(1, Math.floor(D / 2));
  const has = (n: string) => bb.namedModules().some(([name]) => name === n);
  const itm = has('itm_score') ? bb.child<ItmHead>('itm_score') : bb.registerModule('itm_score', new ItmHead(bb.clsDim));
  const meter = bb.kind === 'meter';
  const vocab = meter ? (bb.cfg as MeterConfig).roberta.vocab : (bb.cfg as ViltConfig).vocab;
  const mlm = bb.registerModule('mlm_score', new MlmHead(D, vocab));
  const textProj = bb.registerModule('itc_text_proj', new Linear(meter ? (bb.cfg as MeterConfig).roberta.hidden : D, P));
  const pool = opts.pool ?? 'cls', imagePool = opts.imagePool ?? pool;
  const N = opts.imageTokens ?? 0;
  if (imagePool === 'flat' && !(Number.isInteger(N) && N >= 1)) throw new Error(`addPretrainHeads: imagePool 'flat' needs imageTokens (the image token count), got ${opts.imageTokens}`);
  const width = meter ? (bb.cfg as MeterConfig).clip.width : D;
  const imageProj = bb.registerModule('itc_image_proj', new Linear(imagePool === 'flat' ? width * N : width, P));
  bb.registerParameter('itc_logit_scale', constant([1], ITC_INIT_LOG_SCALE));
  return { mlm, itm, textProj, imageProj, pool, imagePool, center: opts.center ?? 1 };
}

/**
 * One modality through the shared layers: the blocks and the final norm of forwardTokens, nothing else.
 * x [B, N, D] (modality type row already added), valid rows [B][N] or null (all valid) -> [B, N, D]
 */
export function encodeSingle(bb: ViltModel, x: Tensor, valid: number[][] | null): Tensor {
  const mask = valid && valid.some((r) => r.some((v) => v === 0)) ? additiveKeyMask(valid, -1e9) : null;
  let h = x;
  for (const blk of bb.transformer.blocks.items) h = blk.forward(h, mask);
  return bb.transformer.norm.forward(h);
}

/** METER's text encoder alone (RoBERTa embeddings + layers, additive mask -10000 as MeterModel.embed). ids [B, L] -> [B, L, Dt] */
export function meterText(bb: MeterModel, ids: Tensor, valid: number[][]): Tensor {
  const host = ids.toArray();
  return bb.text_transformer.encode(bb.text_transformer.embeddings.forward(ids, host), additiveKeyMask(valid, -10000));
}

/** METER's image encoder alone (the CLIP tower). img [B, 3, H, W] -> [B, 1 + g², Wc] */
export function meterImage(bb: MeterModel, img: Tensor): Tensor {
  return bb.vit_model.forward(img);
}

/** Whether a backbone is METER (narrowing helper). */
export function isMeter(bb: VLBackbone): bb is MeterModel { return bb.kind === 'meter'; }

/** Text embeddings + modality type row 0. ids int32 [B, L] -> [B, L, D] */
export function textTokens(bb: ViltModel, ids: Tensor): Tensor {
  return bb.text_embeddings.forward(ids).add(bb.token_type_embeddings.weight.slice(0, 0, 1));
}

/** visual_embed + modality type row 1. img [B, 3, H, W] -> tokens [B, 1 + Lmax, D] and validity rows. */
export function imageTokens(bb: ViltModel, img: Tensor): { x: Tensor; mask: number[][] } {
  const v = bb.transformer.visualEmbed(img);
  return { x: v.x.add(bb.token_type_embeddings.weight.slice(0, 1, 2)), mask: v.mask };
}

/** Row-wise L2 normalisation of [B, P]. */
export function l2normalize(x: Tensor, eps = 1e-12): Tensor {
  return x.div(x.mul(x).sum(-1, true).add(eps).sqrt());
}

/**
 * Contrastive projection of single-modality features: token 0 ('cls'), the mean of the valid tokens ('mean') or all
 * tokens flattened ('flat': [B, N * D], every token valid, the projection's input N * D).
 * feats [B, N, D], valid [B][N] or null (all valid) -> [B, P] (not normalised).
 */
export function itcProject(proj: Linear, feats: Tensor, valid: number[][] | null = null, pool: ItcImagePool = 'cls'): Tensor {
  const [B, N, D] = feats.shape;
  let pooled: Tensor;
  if (pool === 'flat') {
    const bad = valid ? valid.findIndex((r) => r.some((v) => !v)) : -1;
    if (bad >= 0) throw new Error(`itcProject: flat pooling needs every token valid (fixed-size images); row ${bad} has padding`);
    const inDim = proj.weight.shape[1];
    if (inDim !== N * D) throw new Error(`itcProject: flat pooling of [${B}, ${N}, ${D}] needs a projection from ${N * D}, this one takes ${inDim} (${inDim / D} tokens)`);
    pooled = feats.reshape([B, N * D]);
  } else if (pool === 'cls') pooled = feats.slice(1, 0, 1).reshape([B, D]);
  else if (!valid) pooled = feats.mean(1);
  else {
    const w = new Float32Array(B * N);
    valid.forEach((r, b) => {
      const n = r.reduce((s, v) => s + (v ? 1 : 0), 0);
      if (n === 0) throw new Error(`itcProject: row ${b} has no valid token`);
      r.forEach((v, j) => { if (v) w[b * N + j] = 1 / n; });
    });
    pooled = feats.mul(tensor(w, [B, N, 1])).sum(1); // [B, D]
  }
  return proj.forward(pooled);
}

/**
 * Normalised contrastive embeddings [B, P]: itcProject, minus `center` times the batch mean (0: none, 1: centred),
 * L2-normalised.
 * Why centring: at init every token 0 (and every pooled vector) of a modality is nearly the same
 * vector (cosine > 0.96), so an uncentred loss sits at log B for hundreds of steps; removing the batch's common
 * component makes the differences visible from the first step (measured: a fixed batch of 32 pairs goes from
 * 4.7 to 0.03 in 27 steps centred, and stays flat uncentred). Evaluation centres with the mean over the whole set.
 * Why partial centring (METER): the fully centred loss is blind to the common component, so the encoders may keep
 * their features a near-constant vector plus a small sample-dependent part (measured on METER's CLIP class token
 * after 400 steps: batch spread 4% of the mean's norm); retrieval does not care, but a fusion reading those features
 * sees almost the same input for every image. Removing a fraction < 1 of the mean keeps the fast start and leaves the
 * loss a reason to shrink the common part.
 */
export function itcEmbed(proj: Linear, feats: Tensor, valid: number[][] | null = null, center = 0, pool: ItcImagePool = 'cls'): Tensor {
  if (!(center >= 0 && center <= 1)) throw new Error(`itcEmbed: center must be in [0, 1], got ${center}`);
  let z = itcProject(proj, feats, valid, pool);
  if (center === 1) z = z.sub(z.mean(0, true));
  else if (center > 0) z = z.sub(z.mean(0, true).mul(center));
  return l2normalize(z);
}

/** Current temperature value (host number), for logs. */
export function itcScaleValue(bb: Module): number {
  return noGrad(() => itcScale(bb).item());
}
