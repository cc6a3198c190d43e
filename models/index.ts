// Public entry of models/: createModel({backbone, config, task, numAnswers, method, methodOptions}) builds ONE
// backbone, registers the task heads on it under the reference names, injects the chosen method and applies the
// trainable rule; VLModel runs a batch for the task (NLVR2 twice, IRTR over 1 + K candidates) and computes the
// loss of apt-spec §4. Also loadPretrained(): name-mapped load of a backbone checkpoint with the reference's
// post-load steps (NLVR2 type row 2 := row 1 by typeTableForNlvr2, rank_output := ITM row 1, CLIP position-table
// resize, token4classifier re-initialised), and the §6.3 optimiser groups (parameterGroups).
// Deliberately NOT here: checkpoint file formats (train/checkpoint.ts), optimisers, data.
// Invariants: every parameter name is the original checkpoint's (see models/NAMES.md); heads are created before the
// method so the §3.0 rule sees them; forward never changes which parameters require grad.
import { Generator, Tensor, concat, noGrad, tensor } from '../engine/index.ts';
import { Module, type LoadResult } from './nn/module.ts';
import { Linear, setDropoutGenerator, setDropoutRate } from './nn/layers.ts';
import { withInitGenerator } from './nn/init.ts';
import { ViltModel, VILT_BASE, VILT_TINY, type ViltConfig } from './vilt.ts';
import type { BackboneOutput } from './backbone.ts';
import { MeterModel, METER_BASE, METER_TINY, type MeterConfig } from './meter.ts';
import { resizeClipPosTable } from './clip.ts';
import { ItmHead, ceLoss, classifierMlp, vqaLoss } from './heads.ts';
import { DEFAULT_METHOD, getMethod, injectMethod, type InjectResult, type MethodOptionsOf } from './petl/index.ts';
import { resolveModelConfig, type ModelConfigInput } from './config.ts';

export { VILT_BASE, VILT_TINY, METER_BASE, METER_TINY };
export type { ViltConfig, MeterConfig };
export { ViltModel } from './vilt.ts';
export { MeterModel } from './meter.ts';
export { VLBackbone, type BackboneInput, type BackboneOutput, type TokenInput } from './backbone.ts';
export {
  listMethods, getMethod, isMethodName, TINY_METHOD_OPTIONS, DEFAULT_METHOD, METHOD_NAMES, PAPER_METHODS, ACCOUNTED_METHODS,
  type MethodName, type MethodOptionsMap, type MethodOptionsFor, type MethodOptionsOf, type TypedMethodName, type MethodDef,
  type InsertionPoints, type PetlHost, type HookPointName, type TokenPointName,
} from './petl/index.ts';
export { vqaLoss, vqaScore, ceLoss, accuracy } from './heads.ts';
export {
  resolveModelConfig, resolveModelConfigReport, resolveModelConfigFile,
  type ModelPreset, type ModelConfigInput, type ViltConfigInput, type MeterConfigInput, type HfConfigNames,
} from './config.ts';
export { setDropoutRate, setDropoutGenerator } from './nn/layers.ts';

export type Task = 'vqa' | 'nlvr2' | 'irtr' | 'itm';
export type BackboneName = 'vilt' | 'meter';

export interface CreateModelOptions<M extends string = string> {
  backbone: BackboneName;
  /** a preset name ('base' default, 'tiny', 'synth'), a preset plus overrides ({ preset: 'tiny', hidden: 96 }), a
   *  Hugging Face config.json object (hidden_size, num_hidden_layers, ...) or a full config (models/config.ts) */
  config?: ModelConfigInput | ViltConfig | MeterConfig;
  task: Task;
  /** VQA answer vocabulary size (3129 for VQAv2) */
  numAnswers?: number;
  /** default DEFAULT_METHOD (petl/registry.ts) */
  method?: M;
  /** typed per method when `method` is a literal (MethodOptionsFor<'lora'>); checked at run time in any case */
  methodOptions?: MethodOptionsOf<M>;
  /** seeds weight init (and dropout masks, seed + 1) */
  seed?: number;
}

/**
 * A batch for any task. vqa: textIds [B, L], textMasks [B, L], image, vqaTargets [B, numAnswers].
 * nlvr2: image (image_0) and image1 (image_1), labels int32 [B]. itm: labels int32 [B] (1 = match).
 * irtr: textIds / textMasks [B, 1 + K, L] (candidate 0 is the true caption), image [B, 3, H, W]; METER adds the
 * ITM loss when `itm` (an itm batch) is given (apt-spec §4.3).
 */
export interface Batch {
  textIds: Tensor;
  textMasks: Tensor;
  image: Tensor;
  image1?: Tensor;
  vqaTargets?: Tensor;
  labels?: Tensor;
  itm?: Batch;
}

export interface ForwardOutput extends BackboneOutput {
  /** vqa [B, numAnswers]; nlvr2 [B, 2]; itm [B, 2]; irtr [B, 1 + K] */
  logits: Tensor;
}

export class VLModel {
  readonly injected: InjectResult;
  constructor(
    readonly backbone: ViltModel | MeterModel,
    readonly task: Task,
    readonly numAnswers: number,
    injected: InjectResult,
  ) {
    this.injected = injected;
  }
  get method(): string {
    return this.injected.method;
  }
  get methodOptions(): Record<string, number | boolean> {
    return this.injected.options;
  }
  namedParameters(): [string, Tensor][] {
    return this.backbone.namedParameters();
  }
  parameters(): Tensor[] {
    return this.backbone.parameters();
  }
  trainableParameters(): [string, Tensor][] {
    return this.backbone.trainableParameters();
  }
  /** Only the trainable weights (a method checkpoint, DESIGN.md lesson 9). */
  methodStateDict(): Map<string, Tensor> {
    return new Map(this.trainableParameters());
  }
  stateDict(): Map<string, Tensor> {
    return this.backbone.stateDict();
  }
  loadStateDict(sd: Map<string, Tensor> | Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    return this.backbone.loadStateDict(sd, opts);
  }
  train(flag = true): this {
    this.backbone.train(flag);
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  private head(name: string): Module & { forward(x: Tensor): Tensor } {
    return this.backbone.child(name) as Module & { forward(x: Tensor): Tensor };
  }

  forward(batch: Batch): ForwardOutput {
    const bb = this.backbone;
    const run = (image: Tensor, imageTypeIdx = 1) => bb.infer({ textIds: batch.textIds, textMasks: batch.textMasks, image, imageTypeIdx });
    switch (this.task) {
      case 'vqa': {
        const o = run(batch.image);
        return { ...o, logits: this.head('vqa_classifier').forward(o.clsFeats) };
      }
      case 'itm': {
        const o = run(batch.image);
        return { ...o, logits: this.head('itm_score').forward(o.clsFeats) };
      }
      case 'nlvr2': {
        if (!batch.image1) throw new Error('NLVR2 batch: missing image1 (the second image)');
        const a = run(batch.image, 1);
        const b = run(batch.image1, 2);
        const cls = concat([a.clsFeats, b.clsFeats], 1); // [B, 2c]
        return { ...a, clsFeats: cls, logits: this.head('nlvr2_classifier').forward(cls) };
      }
      case 'irtr': {
        const ids = batch.textIds;
        if (ids.ndim !== 3) throw new Error(`IRTR batch: textIds must be [B, 1+K, L], got [${ids.shape}]`);
        const [B, C, L] = ids.shape;
        const [, ch, H, W] = batch.image.shape;
        const img = batch.image.unsqueeze(1).expand([B, C, ch, H, W]).reshape([B * C, ch, H, W]);
        const o = bb.infer({ textIds: ids.reshape([B * C, L]), textMasks: batch.textMasks.reshape([B * C, L]), image: img, imageTypeIdx: 1 });
        const scores = this.head('rank_output').forward(o.clsFeats).reshape([B, C]);
        return { ...o, logits: scores };
      }
    }
  }

  /** Task loss of apt-spec §4 (scalar) plus the forward outputs. */
  loss(batch: Batch): { loss: Tensor; out: ForwardOutput } {
    const out = this.forward(batch);
    let loss: Tensor;
    switch (this.task) {
      case 'vqa':
        if (!batch.vqaTargets) throw new Error('VQA batch: missing vqaTargets [B, numAnswers]');
        loss = vqaLoss(out.logits, batch.vqaTargets);
        break;
      case 'nlvr2':
      case 'itm':
        if (!batch.labels) throw new Error(`${this.task} batch: missing int32 labels [B]`);
        loss = ceLoss(out.logits, batch.labels);
        break;
      case 'irtr': {
        const B = out.logits.shape[0];
        loss = ceLoss(out.logits, tensor(new Int32Array(B), [B], { dtype: 'int32' }));
        if (this.backbone.kind === 'meter' && batch.itm) {
          const it = batch.itm;
          if (!it.labels) throw new Error('IRTR batch: itm sub-batch needs int32 labels');
          const o = this.backbone.infer({ textIds: it.textIds, textMasks: it.textMasks, image: it.image, imageTypeIdx: 1 });
          loss = loss.add(ceLoss(this.head('itm_score').forward(o.clsFeats), it.labels));
        }
        break;
      }
    }
    return { loss, out };
  }
}

export function createModel<const M extends string = typeof DEFAULT_METHOD>(o: CreateModelOptions<M>): VLModel {
  const cfg = resolveModelConfig(o.backbone, o.config);
  const method: string = o.method ?? DEFAULT_METHOD;
  const spec = getMethod(method);
  if (o.task === 'vqa' && !(o.numAnswers && o.numAnswers > 0)) throw new Error('createModel: task vqa needs numAnswers > 0');
  const seed = o.seed ?? 0;
  return withInitGenerator(new Generator(seed), () => {
    const typeRows = o.task === 'nlvr2' ? 3 : 2;
    const bb = o.backbone === 'vilt' ? new ViltModel(cfg as ViltConfig, { typeRows }) : new MeterModel(cfg as MeterConfig, { typeRows });
    if (o.backbone !== 'vilt' && o.backbone !== 'meter') throw new Error(`createModel: unknown backbone '${o.backbone as string}'`);
    if (typeRows === 3) bb.token_type_embeddings.setParam('weight', typeTableForNlvr2(bb.token_type_embeddings.weight));
    const c = bb.clsDim, h2 = 2 * bb.hidden;
    if (o.task === 'vqa') bb.registerModule('vqa_classifier', classifierMlp(c, h2, o.numAnswers!));
    if (o.task === 'nlvr2') bb.registerModule('nlvr2_classifier', classifierMlp(2 * c, h2, 2));
    if (o.task === 'itm' || o.task === 'irtr') bb.registerModule('itm_score', new ItmHead(c));
    if (o.task === 'irtr') {
      bb.registerModule('rank_output', new Linear(c, 1));
      copyRankFromItm(bb);
    }
    if (spec.tokenForClassifier) bb.addTokenForClassifier();
    const injected = injectMethod(bb, method, (o.methodOptions ?? {}) as Record<string, unknown>);
    setDropoutGenerator(bb, new Generator(seed + 1));
    return new VLModel(bb, o.task, o.numAnswers ?? 0, injected);
  });
}

/** NLVR2 (§4.2): rows 0 and 1 of a modality type table [>= 2, D], then row 2 := row 1 -> [3, D]. No gradient. */
export function typeTableForNlvr2(w: Tensor): Tensor {
  return noGrad(() => concat([w.slice(0, 0, 2), w.slice(0, 1, 2)], 0));
}

/** IRTR: rank_output := row 1 ("match") of the ITM head (§4.3). */
function copyRankFromItm(bb: ViltModel | MeterModel): void {
  const itm = bb.child<ItmHead>('itm_score').fc;
  const rank = bb.child<Linear>('rank_output');
  rank.setParam('weight', noGrad(() => itm.weight.slice(0, 1, 2)));
  rank.setParam('bias', noGrad(() => itm.bias!.slice(0, 1, 2)));
}

/**
 * Loads a pre-trained backbone checkpoint (names as in the original .ckpt) with strict=false, applying the
 * reference's post-load steps: a 2-row type table grows to 3 rows for NLVR2 (row 2 := row 1), a CLIP position
 * table is bicubically resized to the model's grid, rank_output is copied from itm_score row 1 when the
 * checkpoint has none, and token4classifier is re-initialised from the loaded embeddings.
 */
export function loadPretrained(model: VLModel, sd: Map<string, Tensor> | Record<string, Tensor>): LoadResult {
  const src = new Map(sd instanceof Map ? sd : Object.entries(sd));
  const bb = model.backbone;
  const tt = src.get('token_type_embeddings.weight');
  const want = bb.token_type_embeddings.weight.shape;
  if (tt && tt.shape[0] === 2 && want[0] === 3 && tt.shape[1] === want[1]) {
    src.set('token_type_embeddings.weight', typeTableForNlvr2(tt));
  }
  if (bb.kind === 'meter') {
    const key = 'vit_model.visual.positional_embedding';
    const pe = src.get(key);
    const cur = bb.vit_model.visual.param('positional_embedding');
    if (pe && pe.shape[0] !== cur.shape[0]) src.set(key, resizeClipPosTable(pe, Math.round(Math.sqrt(cur.shape[0] - 1))));
  }
  const hadRank = src.has('rank_output.weight');
  const res = bb.loadStateDict(src, { strict: false });
  if (model.task === 'irtr' && !hadRank && src.has('itm_score.fc.weight')) copyRankFromItm(bb);
  bb.initTokenForClassifier();
  return res;
}


/** Substrings whose parameters get no weight decay (§6.3, ViLT/METER set_schedule). */
export const NO_DECAY = ['bias', 'LayerNorm.bias', 'LayerNorm.weight', 'norm.bias', 'norm.weight', 'norm1.bias', 'norm1.weight', 'norm2.bias', 'norm2.weight'] as const;
const VILT_HEADS = ['vqa_classifier', 'nlvr2_classifier'];
const METER_HEADS = ['vqa_classifier', 'nlvr2_classifier', 'mlm_score', 'itm_score', 'snli_classifier'];

export interface ParamGroupSpec {
  name: string;
  names: string[];
  params: Tensor[];
  lr: number;
  weightDecay: number;
}

/**
 * The optimiser groups of §6.3 over the trainable parameters: weight decay `weightDecay` unless the name has a
 * NO_DECAY substring; lr x lrMultHead for head names (ViLT: vqa/nlvr2 classifiers; METER: also itm/mlm/snli),
 * METER lr x lrMultCrossModal for names containing 'cross_modal', lr otherwise. Empty groups are dropped.
 * (Pass the result to train/optim.ts AdamW as parameter groups.)
 */
export function parameterGroups(model: VLModel, o: { lr: number; weightDecay?: number; lrMultHead?: number; lrMultCrossModal?: number }): ParamGroupSpec[] {
  const wd = o.weightDecay ?? 0.01;
  const meter = model.backbone.kind === 'meter';
  const heads = meter ? METER_HEADS : VILT_HEADS;
  const groups = new Map<string, ParamGroupSpec>();
  for (const [n, p] of model.trainableParameters()) {
    const kind = heads.some((h) => n.includes(h)) ? 'head' : meter && n.includes('cross_modal') ? 'cross_modal' : 'base';
    const decay = !NO_DECAY.some((s) => n.includes(s));
    const key = `${kind}${decay ? '' : '_no_decay'}`;
    let g = groups.get(key);
    if (!g) {
      const mult = kind === 'head' ? (o.lrMultHead ?? 1) : kind === 'cross_modal' ? (o.lrMultCrossModal ?? 1) : 1;
      g = { name: key, names: [], params: [], lr: o.lr * mult, weightDecay: decay ? wd : 0 };
      groups.set(key, g);
    }
    g.names.push(n);
    g.params.push(p);
  }
  return [...groups.values()];
}
