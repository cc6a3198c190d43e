// CLIP ViT visual tower as METER builds it (apt-spec §2.1): conv1 (no bias), class_embedding,
// positional_embedding sized for the fine-tuning resolution, ln_pre, `layers - 1` pre-LN residual blocks
// (nn.MultiheadAttention in_proj/out_proj, QuickGELU MLP c_fc/c_proj), ln_post, no output projection; plus the
// unused text-side tensors METER's checkpoint carries (positional_embedding [77, 512], ln_final) so that names and
// parameter counts match. Also the bicubic position-table resize used when the checkpoint grid differs.
// Deliberately NOT here: the CLIP text transformer, image preprocessing.
// Invariants: names under the METER prefix `vit_model.` are visual.conv1.weight, visual.class_embedding,
// visual.positional_embedding, visual.ln_pre.*, visual.transformer.resblocks.{i}.{attn.in_proj_weight,
// attn.in_proj_bias, attn.out_proj.*, ln_1.*, mlp.c_fc.*, mlp.c_proj.*, ln_2.*}, visual.ln_post.*; LN eps 1e-5.
import { Tensor, concat, resizeBicubic } from '../engine/index.ts';
import { Module, ModuleList } from './nn/module.ts';
import { LayerNorm, Linear } from './nn/layers.ts';
import { normal, zerosInit } from './nn/init.ts';
import { mergeHeads, scaledDotProduct, splitHeads } from './nn/attention.ts';
import { PatchConv } from './vilt.ts';

export interface ClipConfig {
  width: number;
  heads: number;
  /** CLIP's layer count; METER builds layers - 1 blocks */
  layers: number;
  patch: number;
  /** resolution the position table is sized for (METER's image_size) */
  imageSize: number;
  lnEps: number;
  /** the unused text-side tensors of METER's CLIP (null: not created) */
  textStub: { context: number; width: number } | null;
}

export const CLIP_B16: ClipConfig = Object.freeze({
  width: 768, heads: 12, layers: 12, patch: 16, imageSize: 384, lnEps: 1e-5, textStub: { context: 77, width: 512 },
});

export const CLIP_TINY: ClipConfig = Object.freeze({
  width: 64, heads: 4, layers: 3, patch: 8, imageSize: 16, lnEps: 1e-5, textStub: null,
});

class QuickGELU extends Module {
  forward(x: Tensor): Tensor {
    return x.quickGelu();
  }
}

/** c_fc -> QuickGELU -> c_proj (children named like CLIP's OrderedDict). */
export class ClipMlp extends Module {
  readonly c_fc: Linear;
  readonly c_proj: Linear;
  constructor(width: number) {
    super();
    this.c_fc = this.registerModule('c_fc', new Linear(width, 4 * width));
    this.registerModule('gelu', new QuickGELU());
    this.c_proj = this.registerModule('c_proj', new Linear(4 * width, width));
  }
  forward(x: Tensor): Tensor {
    return this.c_proj.forward(this.c_fc.forward(x).quickGelu());
  }
}

/** torch nn.MultiheadAttention parameter layout: in_proj_weight [3W, W], in_proj_bias [3W], out_proj. */
export class ClipAttention extends Module {
  readonly out_proj: Linear;
  constructor(readonly width: number, readonly heads: number) {
    super();
    this.registerParameter('in_proj_weight', normal([3 * width, width], width ** -0.5));
    this.registerParameter('in_proj_bias', zerosInit([3 * width]));
    this.out_proj = this.registerModule('out_proj', new Linear(width, width));
  }
  // [B, N, W] -> [B, N, W]
  forward(x: Tensor): Tensor {
    const W = this.width;
    const qkv = x.matmul(this.param('in_proj_weight'), { transB: true }).add(this.param('in_proj_bias'));
    const H = this.heads;
    const q = splitHeads(qkv.slice(2, 0, W), H);
    const k = splitHeads(qkv.slice(2, W, 2 * W), H);
    const v = splitHeads(qkv.slice(2, 2 * W, 3 * W), H);
    return this.out_proj.forward(mergeHeads(scaledDotProduct(q, k, v, null, (W / H) ** -0.5)));
  }
}

export class ResidualAttentionBlock extends Module {
  readonly attn: ClipAttention;
  readonly ln_1: LayerNorm;
  readonly mlp: ClipMlp;
  readonly ln_2: LayerNorm;
  constructor(cfg: ClipConfig) {
    super();
    this.attn = this.registerModule('attn', new ClipAttention(cfg.width, cfg.heads));
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(cfg.width, cfg.lnEps));
    this.mlp = this.registerModule('mlp', new ClipMlp(cfg.width));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(cfg.width, cfg.lnEps));
  }
  forward(x: Tensor): Tensor {
    x = x.add(this.attn.forward(this.ln_1.forward(x)));
    return x.add(this.mlp.forward(this.ln_2.forward(x)));
  }
}

export class ClipVisual extends Module {
  readonly conv1: PatchConv;
  readonly ln_pre: LayerNorm;
  readonly transformer: Module & { resblocks: ModuleList<ResidualAttentionBlock> };
  readonly ln_post: LayerNorm;
  constructor(readonly cfg: ClipConfig) {
    super();
    if (cfg.imageSize % cfg.patch) throw new Error(`CLIP: image size ${cfg.imageSize} is not a multiple of the patch ${cfg.patch}`);
    const grid = cfg.imageSize / cfg.patch;
    this.conv1 = this.registerModule('conv1', new PatchConv(3, cfg.width, cfg.patch, { bias: false }));
    this.registerParameter('class_embedding', normal([cfg.width], cfg.width ** -0.5));
    this.registerParameter('positional_embedding', normal([grid * grid + 1, cfg.width], cfg.width ** -0.5));
    this.ln_pre = this.registerModule('ln_pre', new LayerNorm(cfg.width, cfg.lnEps));
    const tr = new Module() as Module & { resblocks: ModuleList<ResidualAttentionBlock> };
    tr.resblocks = tr.registerModule('resblocks', new ModuleList(Array.from({ length: cfg.layers - 1 }, () => new ResidualAttentionBlock(cfg))));
    this.transformer = this.registerModule('transformer', tr);
    this.ln_post = this.registerModule('ln_post', new LayerNorm(cfg.width, cfg.lnEps));
  }
  // [B, 3, S, S] -> [B, grid² + 1, W] (all tokens after ln_post)
  forward(img: Tensor): Tensor {
    const [B, , H, W] = img.shape;
    if (H !== this.cfg.imageSize || W !== this.cfg.imageSize) {
      throw new Error(`CLIP visual: image is ${H}x${W} but the position table is sized for ${this.cfg.imageSize}x${this.cfg.imageSize}`);
    }
    const width = this.cfg.width;
    const p = this.conv1.forward(img); // [B, g², W]
    const cls = this.param('class_embedding').reshape([1, 1, width]).expand([B, 1, width]);
    let x = concat([cls, p], 1).add(this.param('positional_embedding'));
    x = this.ln_pre.forward(x);
    for (const blk of this.transformer.resblocks.items) x = blk.forward(x);
    return this.ln_post.forward(x);
  }
}

/** `vit_model` of METER: the visual tower plus the unused text-side tensors of its checkpoint. */
export class ClipModel extends Module {
  readonly visual: ClipVisual;
  constructor(readonly cfg: ClipConfig) {
    super();
    this.visual = this.registerModule('visual', new ClipVisual(cfg));
    if (cfg.textStub) {
      this.registerParameter('positional_embedding', normal([cfg.textStub.context, cfg.textStub.width], 0.01));
      this.registerModule('ln_final', new LayerNorm(cfg.textStub.width, cfg.lnEps));
    }
  }
  forward(img: Tensor): Tensor {
    return this.visual.forward(img);
  }
}

/**
 * Bicubic (a = -0.75, align_corners false, like torch) resize of a CLIP position table [g0² + 1, W] to
 * [g1² + 1, W], keeping the CLS row (METER adapt_position_encoding). No gradient: used on checkpoints.
 */
export function resizeClipPosTable(table: Tensor, newGrid: number): Tensor {
  const [n, W] = table.shape;
  const g0 = Math.round(Math.sqrt(n - 1));
  if (g0 * g0 + 1 !== n) throw new Error(`resizeClipPosTable: ${n} rows is not grid² + 1`);
  if (g0 === newGrid) return table;
  const grid = table.slice(0, 1, n).reshape([g0, g0, W]).permute(2, 0, 1); // [W, g0, g0]
  const r = resizeBicubic(grid, newGrid, newGrid, false); // [W, g1, g1]
  const body = r.reshape([W, newGrid * newGrid]).transpose(0, 1);
  return concat([table.slice(0, 0, 1), body], 0);
}
