// ViLT-B/32 backbone (apt-spec §1): BERT text embeddings (roberta.ts BertEmbeddings), the timm ViT with ViLT's
// visual_embed (per-image bilinear align_corners=true resize of the position grid, valid-patch selection to
// max_image_len), modality type embeddings, pre-LN blocks (eps 1e-6), final norm and pooler, as a VLBackbone
// (backbone.ts): embed() up to the modality tokens, forwardTokens() from there. Parameter names equal the ViLT
// checkpoint's.
// Deliberately NOT here: task heads and losses (heads.ts), PETL modules (petl/), checkpoint I/O.
// Deviations (listed in the README): when every valid patch is kept the patches stay in raster order (the
// reference permutes them randomly, which cannot change any output); padding patches are taken cyclically in
// raster order from the image's padding cells instead of drawn at random (they carry mask 0; all padding cells
// of a zero-padded image are identical, so outputs do not change); a subset drawn when an image has more than
// max_image_len valid patches keeps raster order.
// Invariants: text length L <= maxTextLen; image [B, 3, H, W] with H, W multiples of the patch size; the
// sequence is [text (L); CLS; patches (Lmax)] plus any appended prompt tokens; masked keys get -1e9.
// Hook points: ViltAttention 'q', 'v', 'out' (before proj_drop), 'out_dropped' (after proj_drop);
// ViltBlock 'prompt' (token source appended as extra keys/values), 'attn_branch', 'mlp_branch';
// ViltModel 'sequence' (token source appended after the image tokens, carried through all blocks).
// Insertion points (VILT_POINTS, petl/points.ts) map the methods' point names onto these.
import { Tensor, concat, indexSelect, pad, resizeBilinear, scope, tensor, zeros } from '../engine/index.ts';
import { Module, ModuleList, type HookContext } from './nn/module.ts';
import { Dropout, Embedding, LayerNorm, Linear } from './nn/layers.ts';
import { truncNormal, zerosInit } from './nn/init.ts';
import { additiveKeyMask, mergeHeads, scaledDotProduct, splitHeads } from './nn/attention.ts';
import { Pooler } from './heads.ts';
import { BertEmbeddings } from './roberta.ts';
import type { InsertionPoints } from './petl/points.ts';
import { VLBackbone, validRows, type BackboneInput, type BackboneOutput, type TokenInput } from './backbone.ts';

export type { BackboneInput, BackboneOutput, TokenInput } from './backbone.ts';

export interface ViltConfig {
  hidden: number;
  heads: number;
  layers: number;
  mlp: number;
  vocab: number;
  maxTextLen: number;
  patch: number;
  /** side of the pre-training position grid (384/32 = 12): the table has posGrid² + 1 rows */
  posGrid: number;
  lnEps: number;
  textLnEps: number;
  drop: number;
  /** id whose embedding initialises token4classifier ([CLS] = 101 for bert-base-uncased) */
  clsTokenId: number;
  /** -1: the largest image's patch count (fine-tuning configs) */
  maxImageLen: number;
}

export const VILT_BASE: ViltConfig = Object.freeze({
  hidden: 768, heads: 12, layers: 12, mlp: 3072, vocab: 30522, maxTextLen: 40, patch: 32, posGrid: 12,
  lnEps: 1e-6, textLnEps: 1e-12, drop: 0.1, clsTokenId: 101, maxImageLen: -1,
});

export const VILT_TINY: ViltConfig = Object.freeze({
  hidden: 64, heads: 4, layers: 2, mlp: 256, vocab: 64, maxTextLen: 8, patch: 8, posGrid: 3,
  lnEps: 1e-6, textLnEps: 1e-12, drop: 0, clsTokenId: 1, maxImageLen: -1,
});

const NEG = -1e9;

const ATTN = ['transformer.blocks.*.attn'];
const BLOCKS = ['transformer.blocks.*'];
/** Where methods attach in ViLT (module paths and their local hook points). */
export const VILT_POINTS: InsertionPoints = Object.freeze({
  hooks: [
    { paths: ATTN, offers: { 'attn.q': 'q', 'attn.v': 'v', 'attn.out': 'out', 'attn.parallel': 'out_dropped' } },
    { paths: BLOCKS, offers: { 'attn.branch': 'attn_branch', 'ffn.branch': 'mlp_branch' } },
  ],
  tokens: {
    'layer.kv': [{ paths: BLOCKS, point: 'prompt' }],
    input: [{ paths: [''], point: 'sequence' }],
  },
});

/** Conv2d(3 -> D, kernel = stride = patch, bias) as patchify + matmul; weight [D, 3, P, P] like torch. */
export class PatchConv extends Module {
  constructor(readonly channels: number, readonly dim: number, readonly patch: number, opts: { bias: boolean; std?: number }) {
    super();
    this.registerParameter('weight', truncNormal([dim, channels, patch, patch], opts.std ?? 0.02));
    if (opts.bias) this.registerParameter('bias', zerosInit([dim]));
  }
  // [B, C, H, W] -> [B, Hp*Wp, D] in raster order of the patch grid
  forward(img: Tensor): Tensor {
    const [B, C, H, W] = img.shape;
    const P = this.patch;
    if (img.ndim !== 4 || C !== this.channels) throw new Error(`patch embedding: image must be [B, ${this.channels}, H, W], got [${img.shape}]`);
    if (H % P || W % P) throw new Error(`patch embedding: image size ${H}x${W} is not a multiple of the patch size ${P}`);
    const Hp = H / P, Wp = W / P;
    const patches = img.reshape([B, C, Hp, P, Wp, P]).permute(0, 2, 4, 1, 3, 5).reshape([B, Hp * Wp, C * P * P]);
    const w = this.param('weight').reshape([this.dim, C * P * P]);
    let y = patches.matmul(w, { transB: true });
    if (this.hasParam('bias')) y = y.add(this.param('bias'));
    return y;
  }
}

export class ViltAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly attn_drop: Dropout;
  readonly proj_drop: Dropout;
  constructor(readonly cfg: ViltConfig) {
    super();
    this.qkv = this.registerModule('qkv', new Linear(cfg.hidden, 3 * cfg.hidden, { init: 'trunc0.02' }));
    this.attn_drop = this.registerModule('attn_drop', new Dropout(0)); // ViT attn_drop_rate is never set (§1.1)
    this.proj = this.registerModule('proj', new Linear(cfg.hidden, cfg.hidden, { init: 'trunc0.02' }));
    this.proj_drop = this.registerModule('proj_drop', new Dropout(cfg.drop));
  }
  override hookPoints(): readonly string[] {
    return ['q', 'v', 'out', 'out_dropped'];
  }
  /** h [B, Nk, D] (= LN1 of the block input, prompts included), mask [B,1,1,Nk]; queries are the first nq rows. */
  forward(h: Tensor, mask: Tensor | null, nq: number): Tensor {
    const D = this.cfg.hidden;
    const Nk = h.shape[1];
    const qkv = this.qkv.forward(h); // [B, Nk, 3D]
    const hq = nq === Nk ? h : h.slice(1, 0, nq);
    let q = qkv.slice(2, 0, D);
    if (nq !== Nk) q = q.slice(1, 0, nq);
    const k = qkv.slice(2, D, 2 * D);
    let v = qkv.slice(2, 2 * D, 3 * D);
    q = this.runHooks('q', q, { input: hq });
    v = this.runHooks('v', v, { input: h });
    const H = this.cfg.heads;
    const ctx = scaledDotProduct(splitHeads(q, H), splitHeads(k, H), splitHeads(v, H), mask, (D / H) ** -0.5, this.attn_drop);
    let o = this.proj.forward(mergeHeads(ctx)); // [B, nq, D]
    const hc: HookContext = { input: hq };
    o = this.runHooks('out', o, hc);
    o = this.proj_drop.forward(o);
    return this.runHooks('out_dropped', o, hc);
  }
}

export class ViltMlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly drop: Dropout;
  constructor(cfg: ViltConfig) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(cfg.hidden, cfg.mlp, { init: 'trunc0.02' }));
    this.fc2 = this.registerModule('fc2', new Linear(cfg.mlp, cfg.hidden, { init: 'trunc0.02' }));
    this.drop = this.registerModule('drop', new Dropout(cfg.drop));
  }
  forward(x: Tensor): Tensor {
    return this.drop.forward(this.fc2.forward(this.drop.forward(this.fc1.forwardGelu(x))));
  }
}

export class ViltBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: ViltAttention;
  readonly norm2: LayerNorm;
  readonly mlp: ViltMlp;
  constructor(readonly cfg: ViltConfig) {
    super();
    this.norm1 = this.registerModule('norm1', new LayerNorm(cfg.hidden, cfg.lnEps));
    this.attn = this.registerModule('attn', new ViltAttention(cfg));
    this.norm2 = this.registerModule('norm2', new LayerNorm(cfg.hidden, cfg.lnEps));
    this.mlp = this.registerModule('mlp', new ViltMlp(cfg));
  }
  override hookPoints(): readonly string[] {
    return ['prompt', 'attn_branch', 'mlp_branch'];
  }
  // x [B, N, D], mask [B, 1, 1, N] -> [B, N, D]
  forward(x: Tensor, mask: Tensor | null): Tensor {
    const [B, N] = x.shape;
    let xe = x;
    let m = mask;
    const extra = this.tokenSources('prompt', B); // deep prompt: appended, keys/values only
    if (extra.length) {
      xe = concat([x, ...extra], 1);
      const P = xe.shape[1] - N;
      m = concat([mask ?? zeros([B, 1, 1, N]), zeros([B, 1, 1, P])], 3);
    }
    let a = this.attn.forward(this.norm1.forward(xe), m, N);
    a = this.runHooks('attn_branch', a);
    x = x.add(a);
    let f = this.mlp.forward(this.norm2.forward(x));
    f = this.runHooks('mlp_branch', f);
    return x.add(f);
  }
}

export interface VisualEmbedOut {
  x: Tensor; // [B, 1 + Lmax, D]
  mask: number[][]; // [B][1 + Lmax]
}

export class ViltTransformer extends Module {
  readonly patch_embed: Module & { proj: PatchConv };
  readonly blocks: ModuleList<ViltBlock>;
  readonly norm: LayerNorm;
  readonly pos_drop: Dropout;
  constructor(readonly cfg: ViltConfig) {
    super();
    const pe = new Module() as Module & { proj: PatchConv };
    pe.proj = pe.registerModule('proj', new PatchConv(3, cfg.hidden, cfg.patch, { bias: true }));
    this.patch_embed = this.registerModule('patch_embed', pe);
    this.registerParameter('cls_token', truncNormal([1, 1, cfg.hidden], 0.02));
    this.registerParameter('pos_embed', truncNormal([1, cfg.posGrid * cfg.posGrid + 1, cfg.hidden], 0.02));
    this.pos_drop = this.registerModule('pos_drop', new Dropout(cfg.drop));
    this.blocks = this.registerModule('blocks', new ModuleList(Array.from({ length: cfg.layers }, () => new ViltBlock(cfg))));
    this.norm = this.registerModule('norm', new LayerNorm(cfg.hidden, cfg.lnEps));
  }

  /** apt-spec §1.3. img [B, 3, H, W] zero-padded, normalised. */
  visualEmbed(img: Tensor, maxImageLen = this.cfg.maxImageLen): VisualEmbedOut {
    const { hidden: D, patch: P, posGrid: G } = this.cfg;
    const x = this.patch_embed.proj.forward(img); // [B, Hp*Wp, D]
    const [B, , H, W] = img.shape;
    const Hp = H / P, Wp = W / P;
    // validity grid: nearest resize of (channel sum != 0) samples pixel (i*P, j*P)
    const px = img.toArray();
    const plane = H * W;
    const valid: Uint8Array[] = [];
    const hs: number[] = [], ws: number[] = [];
    for (let b = 0; b < B; b++) {
      const g = new Uint8Array(Hp * Wp);
      for (let i = 0; i < Hp; i++) {
        for (let j = 0; j < Wp; j++) {
          const o = b * 3 * plane + i * P * W + j * P;
          g[i * Wp + j] = px[o] + px[o + plane] + px[o + 2 * plane] !== 0 ? 1 : 0;
        }
      }
      let h = 0, w = 0;
      for (let i = 0; i < Hp; i++) h += g[i * Wp];
      for (let j = 0; j < Wp; j++) w += g[j];
      if (h === 0 || w === 0) throw new Error(`ViLT visual_embed: image ${b} of the batch has no valid (non-zero) patch`);
      valid.push(g);
      hs.push(h);
      ws.push(w);
    }
    let lmax = Math.max(...hs.map((h, b) => h * ws[b]));
    if (maxImageLen >= 0) lmax = Math.min(lmax, maxImageLen);
    // position maps per distinct (h, w): [Hp*Wp, D], zero outside the h x w corner
    const table = this.param('pos_embed'); // [1, G*G+1, D]
    const spatial = table.slice(1, 1, G * G + 1).reshape([G * G, D]).transpose(0, 1).reshape([D, G, G]);
    const cache = new Map<string, Tensor>();
    const posMaps: Tensor[] = [];
    for (let b = 0; b < B; b++) {
      const key = `${hs[b]}x${ws[b]}`;
      let pm = cache.get(key);
      if (!pm) {
        const r = resizeBilinear(spatial, hs[b], ws[b], true); // [D, h, w]
        const padded = pad(r, [[0, 0], [0, Hp - hs[b]], [0, Wp - ws[b]]], 0);
        pm = padded.reshape([D, Hp * Wp]).transpose(0, 1); // [Hp*Wp, D]
        cache.set(key, pm);
      }
      posMaps.push(pm);
    }
    // patch selection (raster order; see header for the deviations)
    const sel: number[] = [];
    const mask: number[][] = [];
    for (let b = 0; b < B; b++) {
      const g = valid[b];
      const v: number[] = [], nv: number[] = [];
      for (let c = 0; c < Hp * Wp; c++) (g[c] ? v : nv).push(c);
      const row: number[] = [1];
      if (v.length >= lmax) {
        const pick = v.length === lmax ? v : evenSubset(v, lmax);
        for (const c of pick) { sel.push(b * Hp * Wp + c); row.push(1); }
      } else {
        for (const c of v) { sel.push(b * Hp * Wp + c); row.push(1); }
        const need = lmax - v.length;
        if (nv.length === 0) throw new Error(`ViLT visual_embed: image ${b} needs ${need} padding patches but has no padding cell`);
        for (let k = 0; k < need; k++) { sel.push(b * Hp * Wp + nv[k % nv.length]); row.push(0); }
      }
      mask.push(row);
    }
    const idx = tensor(Int32Array.from(sel), [sel.length], { dtype: 'int32' });
    const feats = indexSelect(x.reshape([B * Hp * Wp, D]), idx, 0).reshape([B, lmax, D]);
    const pos = indexSelect(concat(posMaps, 0), idx, 0).reshape([B, lmax, D]);
    const cls = this.param('cls_token').expand([B, 1, D]);
    const clsPos = table.slice(1, 0, 1).expand([B, 1, D]);
    let out = concat([cls, feats], 1).add(concat([clsPos, pos], 1));
    out = this.pos_drop.forward(out);
    return { x: out, mask };
  }
}

/** Deterministic subset of `n` items keeping raster order (used only when max_image_len truncates). */
function evenSubset(v: number[], n: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(v[Math.floor((k * v.length) / n)]);
  return out;
}

export class ViltModel extends VLBackbone {
  readonly kind = 'vilt' as const;
  readonly text_embeddings: BertEmbeddings;
  readonly transformer: ViltTransformer;
  readonly pooler: Pooler;
  token_type_embeddings: Embedding;
  constructor(readonly cfg: ViltConfig, opts: { typeRows?: number } = {}) {
    super();
    this.text_embeddings = this.registerModule('text_embeddings', new BertEmbeddings({
      vocab: cfg.vocab, hidden: cfg.hidden, maxPositions: cfg.maxTextLen, typeVocab: 2, padIdx: 0, lnEps: cfg.textLnEps, drop: cfg.drop,
    }));
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new Embedding(opts.typeRows ?? 2, cfg.hidden));
    this.transformer = this.registerModule('transformer', new ViltTransformer(cfg));
    this.pooler = this.registerModule('pooler', new Pooler(cfg.hidden));
  }
  get hidden(): number {
    return this.cfg.hidden;
  }
  get clsDim(): number {
    return this.cfg.hidden;
  }
  override hookPoints(): readonly string[] {
    return ['sequence'];
  }
  insertionPoints(): InsertionPoints {
    return VILT_POINTS;
  }

  protected embedClassifierId(): Tensor {
    return this.text_embeddings.forward(tensor(Int32Array.from([this.cfg.clsTokenId]), [1, 1], { dtype: 'int32' }));
  }

  /** §1.2-1.4: text embeddings (position 0 := token4classifier), visual_embed, modality types. */
  embed(inp: BackboneInput): TokenInput {
    const k = inp.imageTypeIdx ?? 1;
    this.checkImageType(k);
    const t = this.placeTokenForClassifier(this.text_embeddings.forward(inp.textIds)); // [B, L, D]
    const vis = this.transformer.visualEmbed(inp.image); // [B, 1 + Lmax, D]
    const [text, image] = this.addModalityTypes(t, vis.x, k);
    return { text, image, textMask: inp.textMasks.toList() as number[][], imageMask: vis.mask };
  }

  /**
   * [text; image; 'sequence' token sources (shallow prompt, all valid)] through the blocks, the final norm and
   * the pooler (on token 0). Masked keys get -1e9; no mask at all when every token is valid.
   */
  forwardTokens(tok: TokenInput): BackboneOutput {
    this.checkTokens(tok);
    const [B, L] = tok.text.shape;
    const Li = tok.image.shape[1];
    let x = concat([tok.text, tok.image], 1); // [B, L + Li, D]
    let rows: number[][] | null = null;
    if (tok.textMask || tok.imageMask) {
      const tr = validRows(tok.textMask, B, L), ir = validRows(tok.imageMask, B, Li);
      rows = tr.map((r, b) => [...r, ...ir[b]]);
    }
    const extra = this.tokenSources('sequence', B);
    if (extra.length) {
      x = concat([x, ...extra], 1);
      const P = x.shape[1] - L - Li;
      if (rows) rows = rows.map((r) => [...r, ...new Array<number>(P).fill(1)]);
    }
    const mask = rows ? additiveKeyMask(rows, NEG) : null;
    // one scope per block: its temporaries that no gradient rule saved are freed at once, not at the end of the step
    for (const blk of this.transformer.blocks.items) x = scope(() => blk.forward(x, mask), 'vilt block');
    x = this.transformer.norm.forward(x);
    const N = x.shape[1];
    return { textFeats: x.slice(1, 0, L), imageFeats: x.slice(1, L, N), clsFeats: this.pooler.forward(x) };
  }
}
