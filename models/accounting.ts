// The paper's accounting (apt-spec §7): "Updated Parameter" and "Additional FLOPs" per backbone and method,
// measured on the instantiated modules, never copied from the paper.
// - Parameters: the elements of the parameters owned by the method's injected modules (the names injectMethod
//   returns), i.e. PETL modules only; heads, poolers, type tables and token4classifier are excluded (§7.1).
//   A method whose definition says updatedParams 'backbone' (full) counts every backbone parameter (task heads
//   excluded); 'classifier_only' owns none.
// - FLOPs: an actual forward pass on the shape backend (engine/backends/shape.ts), full size, batch 1:
//   additional = work(forward with the method) - work(same backbone with classifier_only). The forward is the
//   models' own forwardTokens (models/backbone.ts), i.e. the real forward after the embeddings, started from zero
//   token embeddings like the authors' harness (§7.2): ViLT [text; image; shallow prompts] through the 12 blocks,
//   final norm and pooler; METER text [1, Lt, D] and image [1, Li, D] (plus shallow prompts) through the 6+6
//   fusion layers and both poolers. The encoders and poolers cost the same with and without a method, so they
//   cancel in the difference.
// Convention (fvcore style, the "best single consistent assumption" of §7.3): one multiply-add = one FLOP; count
// the MACs of every matmul/linear, plus LayerNorms whose weights belong to the method's own modules (PA's LN,
// 5 ops per element); the prompts' pass through the backbone's norm1 is NOT counted; element-wise ops, softmax,
// ReLU, max are not counted. A mergeable method (LoRA) is reported as 0 because A·B merges into the frozen weight at
// inference (the unmerged cost is measured and shown as a note).
// The rows are the registry's (petl/registry.ts ACCOUNTED_METHODS: the paper's table order, then the other methods);
// what is method-specific here (updatedParams, mergeable) is read from the method definitions. Default token counts: ViLT 41 text + 201 visual = 242,
// METER 41 text + 577 image (384 px, ViT-B/16) = 618; both are options.
// The paper's values appear only in PAPER_REFERENCE, printed as a labelled reference column.
// Invariants: measuring never changes the default backend (restored even on error); rows are raw counts.
import { getBackend, setBackend, zeros, type Storage } from '../engine/index.ts';
import { shapeBackend, LAYER_NORM_OPS_PER_ELEMENT, type WorkTally } from '../engine/backends/shape.ts';
import { createModel, type BackboneName, type MeterConfig, type ViltConfig, type VLModel } from './index.ts';
import { ACCOUNTED_METHODS, getMethod, type MethodName } from './petl/registry.ts';

export type AccountModel = BackboneName;
/** Every method, in the accounting's row order (from the registry). */
export const ACCOUNT_METHODS: readonly MethodName[] = ACCOUNTED_METHODS;
export type AccountMethod = MethodName;

export interface TokenCounts { text: number; image: number }
/** §7.3: one extra text token over the harness (ViLT 40 + 201, METER 40 + 577). */
export const DEFAULT_TOKENS: Record<AccountModel, TokenCounts> = {
  vilt: { text: 41, image: 201 },
  meter: { text: 41, image: 577 },
};

export const CONVENTION =
  'FLOPs = multiply-adds (fvcore style) of matmul/linear in a batch-1 forward from token embeddings, plus 5 ops per ' +
  "element of LayerNorms owned by the method (PA's LN); prompts through the backbone's norm1 not counted; LoRA = 0 " +
  '(mergeable into the frozen weights). Params = elements of the method modules only (heads, poolers, type tables, ' +
  'token4classifier excluded); full = every backbone parameter without task heads.';

/** The paper's README table (reference data only; never used as a result). */
export const PAPER_REFERENCE: Record<AccountModel, Partial<Record<AccountMethod, { params: string; flops: string }>>> = {
  vilt: {
    full: { params: '115.43M', flops: '0.0' }, classifier_only: { params: '-', flops: '0.0' },
    deep_prompt: { params: '1.84M', flops: '5.14G' }, lora: { params: '0.15M', flops: '0.0' },
    parallel_adapter: { params: '1.80M', flops: '0.44G' }, adapter: { params: '3.56M', flops: '0.86G' },
    apt: { params: '1.92M', flops: '0.91G' },
  },
  meter: {
    full: { params: '323.31M', flops: '0.0' }, classifier_only: { params: '-', flops: '0.0' },
    deep_prompt: { params: '3.68M', flops: '13.05G' }, lora: { params: '0.29M', flops: '0.0' },
    adapter: { params: '5.34M', flops: '1.64G' }, parallel_adapter: { params: '3.82M', flops: '1.12G' },
    apt: { params: '3.83M', flops: '2.31G' },
  },
};

/** Cells §7 shows cannot be reproduced from the code, with the reason printed beside them. */
export const IRREPRODUCIBLE: { model: AccountModel; method: AccountMethod; column: 'params' | 'flops'; reason: string }[] = [
  { model: 'vilt', method: 'full', column: 'params', reason: 'the paper counted an APT-equipped model: backbone 111,595,008 + 3,833,880 (24 APT modules) = 115.43M (§7.1)' },
  { model: 'meter', method: 'full', column: 'params', reason: 'the paper counted an APT-equipped model: backbone 319,474,688 + 3,833,880 (24 APT modules) = 323.31M (§7.1)' },
  { model: 'meter', method: 'deep_prompt', column: 'params', reason: 'the code has 2 x 6 x 200 x 768 = 1.84M; 3.68M implies 24 insertion points, not in the code (§7.1)' },
  { model: 'meter', method: 'deep_prompt', column: 'flops', reason: 'the coded prompts are cross-attention keys/values only (~3.97G); 13.05G implies 24 ViLT-style insertion points (§7.3)' },
  { model: 'meter', method: 'parallel_adapter', column: 'params', reason: '24 x PA(r=96, LN) = 3.60M; 3.82M needs r~102, which contradicts the 1.12G FLOPs that fit r=96 (§7.1)' },
];

export interface AccountRow {
  model: AccountModel;
  method: AccountMethod;
  /** updated parameters (raw count) */
  params: number;
  /** additional FLOPs (raw MAC count, per the convention) */
  flops: number;
  /** measured extra work when a method is reported as 0 by convention (LoRA unmerged) */
  unmergedFlops?: number;
  tokens: TokenCounts;
  options: Record<string, number | boolean>;
}

const HEADS = ['vqa_classifier', 'nlvr2_classifier', 'itm_score', 'rank_output', 'mlm_score'];
const isHead = (n: string) => HEADS.some((h) => n === h || n.startsWith(h + '.'));
const ownedBy = (mods: readonly string[]) => (n: string) => mods.some((m) => n === m || n.startsWith(m + '.'));

/** Runs fn with the shape backend as the default backend, restoring the previous default afterwards. */
export function onShapeBackend<T>(fn: () => T): T {
  const prev = getBackend().name;
  setBackend('shape');
  try {
    return fn();
  } finally {
    setBackend(prev);
  }
}

/** The model with `method` on the shape backend (no memory; createModel needs a task, 'itm' has the smallest head);
 *  full size unless a config is given. */
function build(model: AccountModel, method: AccountMethod, options: Record<string, unknown>, config: AccountConfig): VLModel {
  return createModel({ backbone: model, config, task: 'itm', method, methodOptions: options });
}
/** A preset name or a config object of the model (default 'base', the paper's sizes). */
export type AccountConfig = ViltConfig | MeterConfig | 'base' | 'tiny';

/**
 * The models' own token-level forward (VLBackbone.forwardTokens, the code infer runs after its embeddings) on
 * zero tokens, batch 1, no mask. Must run on the shape backend.
 */
function tokenForward(m: VLModel, tokens: TokenCounts): void {
  const D = m.backbone.hidden;
  m.backbone.forwardTokens({ text: zeros([1, tokens.text, D]), image: zeros([1, tokens.image, D]), textMask: null, imageMask: null });
}

function work(t: WorkTally, owned: Set<Storage>): number {
  let ln = 0;
  for (const [w, n] of t.layerNormByWeight) if (owned.has(w)) ln += n;
  return t.matmulMacs + LAYER_NORM_OPS_PER_ELEMENT * ln;
}

const baselineCache = new Map<string, number>();

/** One row: build the model with the method (full size, shape backend), count and measure. */
export function accountMethod(model: AccountModel, method: AccountMethod, opts: { tokens?: Partial<TokenCounts>; options?: Record<string, unknown>; config?: AccountConfig } = {}): AccountRow {
  const config = opts.config ?? 'base';
  const tokens: TokenCounts = { ...DEFAULT_TOKENS[model], ...(opts.tokens ?? {}) };
  for (const [k, v] of Object.entries(tokens)) if (!Number.isInteger(v) || v < 1) throw new Error(`accounting: ${k} token count must be a positive integer, got ${v}`);
  return onShapeBackend(() => {
    const sb = shapeBackend();
    const m = build(model, method, opts.options ?? {}, config);
    m.eval();
    const mods = m.injected.modules;
    const owned = ownedBy(mods);
    const named = m.namedParameters();
    const spec = getMethod(method);
    let params = 0;
    if (spec.updatedParams === 'backbone') for (const [n, p] of named) { if (!isHead(n)) params += p.size; }
    else for (const [n, p] of named) if (owned(n)) params += p.size;
    const ownedStorages = new Set<Storage>(named.filter(([n]) => owned(n)).map(([, p]) => p._handle.storage));
    const withWork = work(sb.measure(() => tokenForward(m, tokens)).tally, ownedStorages);
    const key = `${model}:${JSON.stringify(config)}:${tokens.text}:${tokens.image}`;
    let base = baselineCache.get(key);
    if (base === undefined) {
      const b = build(model, 'classifier_only', {}, config);
      b.eval();
      base = work(sb.measure(() => tokenForward(b, tokens)).tally, new Set());
      baselineCache.set(key, base);
    }
    const measured = withWork - base;
    const row: AccountRow = { model, method, params, flops: measured, tokens, options: { ...m.methodOptions } };
    if (spec.mergeable) { row.unmergedFlops = measured; row.flops = 0; }
    return row;
  });
}

/** Rows for every (model, method); `options` are method options (meaningful with a single method). */
export function accountingTable(models: readonly AccountModel[], opts: { tokens?: Partial<Record<AccountModel, Partial<TokenCounts>>>; methods?: readonly AccountMethod[]; options?: Record<string, unknown> } = {}): AccountRow[] {
  const rows: AccountRow[] = [];
  for (const model of models) for (const method of opts.methods ?? ACCOUNT_METHODS) rows.push(accountMethod(model, method, { tokens: opts.tokens?.[model], options: opts.options }));
  return rows;
}

/** The paper's rounding: params in M with 2 decimals ('-' for 0), FLOPs in G with 2 decimals ('0.0' for 0). */
export function paperRound(column: 'params' | 'flops', v: number): string {
  if (column === 'params') return v === 0 ? '-' : `${(v / 1e6).toFixed(2)}M`;
  return v === 0 ? '0.0' : `${(v / 1e9).toFixed(2)}G`;
}

export function irreproducibleReason(model: AccountModel, method: AccountMethod, column: 'params' | 'flops'): string | undefined {
  return IRREPRODUCIBLE.find((c) => c.model === model && c.method === method && c.column === column)?.reason;
}

/** Human-readable table: ours (measured) beside the paper's values (reference column), with notes. */
export function formatAccountingTable(rows: AccountRow[], columns: ('params' | 'flops')[] = ['params', 'flops']): string {
  const lines: string[] = [];
  const notes: string[] = [];
  const models = [...new Set(rows.map((r) => r.model))];
  for (const model of models) {
    const rs = rows.filter((r) => r.model === model);
    const t = rs[0].tokens;
    lines.push(`${model === 'vilt' ? 'ViLT-B/32' : 'METER-CLIP-ViT-B/16 + RoBERTa'} (tokens: ${t.text} text + ${t.image} ${model === 'vilt' ? 'visual' : 'image'} = ${t.text + t.image})`);
    const head = ['method'];
    for (const c of columns) head.push(c === 'params' ? 'updated params (ours)' : 'add. FLOPs (ours)', c === 'params' ? '[paper]' : '[paper]');
    const body: string[][] = [];
    for (const r of rs) {
      const cells: string[] = [r.method];
      for (const c of columns) {
        const ours = paperRound(c, r[c]);
        const paper = PAPER_REFERENCE[model][r.method]?.[c] ?? '';
        const reason = irreproducibleReason(model, r.method, c);
        let mark = '';
        if (reason) { notes.push(`${model} ${r.method} ${c}: not reproducible from the code: ${reason}`); mark = ' (*)'; }
        else if (paper) mark = ours === paper ? ' =' : ' !=';
        cells.push(`${ours} (${r[c].toLocaleString('en-US')})`, `[${paper || 'n/a'}]${mark}`);
      }
      if (r.unmergedFlops !== undefined && columns.includes('flops')) notes.push(`${model} ${r.method}: 0 by convention (mergeable); unmerged it costs ${paperRound('flops', r.unmergedFlops)} (${r.unmergedFlops.toLocaleString('en-US')})`);
      body.push(cells);
    }
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
    const fmt = (cells: string[]) => '  ' + cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
    lines.push(fmt(head), ...body.map(fmt), '');
  }
  lines.push('[paper] = the paper\'s README table, a reference column only; "=" our value rounds to it, (*) see notes.');
  lines.push('Convention: ' + CONVENTION);
  if (notes.length) lines.push('Notes:', ...[...new Set(notes)].map((n) => '  - ' + n));
  return lines.join('\n');
}
