// Checkpoints: the project's own format and the import of the original weights.
// - Own format: safetensors (data/formats/safetensors.ts) whose __metadata__ holds {"format": CHECKPOINT_FORMAT,
//   "config": JSON of the run/method config}. A method checkpoint holds only the trainable weights plus the config.
// - Import: the original Lightning checkpoints (`vilt_200k_mlm_itm.ckpt`, `meter_clip16_288_roberta_pretrain.ckpt`,
//   zip + pickle, read by data/formats/torch_pickle.ts without executing anything) and HF ViLT safetensors
//   (dandelin/vilt-b32-* naming, mapped to the original ViLT names). Loading is a name lookup against the model's
//   own names (which equal the original checkpoint's), with a report of missing and unexpected keys, and the
//   position-table resize of spec §2.1 (CLIP's table bicubically resized to the run's grid, CLS row kept) and the
//   NLVR2 type-table growth, both by the models' own functions (resizeClipPosTable, typeTableForNlvr2).
// Does not: guess renamings beyond the HF ViLT map, convert optimizer states, or load METER from HF.
// Invariants: files are written atomically; every error names the file and the tensor at fault; shapes are
// checked before anything is loaded into the model (a failed import leaves the model unchanged).
import { readFileSync, openSync, readSync, closeSync } from 'node:fs';
import { noGrad, numel, scope, tensor, type Tensor } from '../engine/index.ts';
import { sameShape, type Module } from '../models/nn/module.ts';
import { createModel, loadPretrained, typeTableForNlvr2, METER_BASE, VILT_BASE, type MeterConfig, type ViltConfig, type VLModel } from '../models/index.ts';
import { resizeClipPosTable } from '../models/clip.ts';
import { onShapeBackend } from '../models/accounting.ts';
import { parseSafetensors, writeSafetensors, type HostTensor } from '../data/formats/safetensors.ts';
import { isLegacyTorch, readTorchStateDict } from '../data/formats/torch_pickle.ts';

export const CHECKPOINT_FORMAT = 'aptune-checkpoint/1';
export type ModelKind = 'vilt' | 'meter';

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Host copy of an engine tensor (float32 / int32; float64 is narrowed to float32). */
export function toHost(t: Tensor): HostTensor {
  const a = t.toArray();
  if (a instanceof Int32Array) return { dtype: 'int32', shape: [...t.shape], data: a };
  return { dtype: 'float32', shape: [...t.shape], data: a instanceof Float32Array ? a : Float32Array.from(a) };
}

/** An engine tensor from a host tensor (on the default backend unless `backend` is given). */
export function fromHost(h: HostTensor, backend?: string): Tensor {
  return tensor(h.data, h.shape, { dtype: h.dtype, ...(backend ? { backend } : {}) });
}

// ------------------------------------------------------------------------------------------- own format

/** Write tensors + config as an aptune checkpoint (safetensors, atomic). */
export function saveCheckpoint(path: string, tensors: Map<string, Tensor | HostTensor>, config: unknown): void {
  const host = new Map<string, HostTensor>();
  for (const [k, v] of tensors) host.set(k, 'toArray' in v ? toHost(v) : v);
  writeSafetensors(path, host, { format: CHECKPOINT_FORMAT, config: JSON.stringify(config ?? null) });
}

export interface LoadedCheckpoint {
  tensors: Map<string, HostTensor>;
  config: unknown;
  metadata: Record<string, string>;
}

/** Read an aptune checkpoint; errors if the file is not one. */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  const bytes = readBytes(path);
  if (isZip(bytes) || isLegacyTorch(bytes)) throw new Error(`${path}: this is a PyTorch ${isZip(bytes) ? 'zip' : 'legacy torch.save'} checkpoint, not an aptune checkpoint; convert it with \`aptune import\``);
  const { tensors, metadata } = parseSafetensors(bytes, path);
  if (metadata.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: not an aptune checkpoint (__metadata__.format is ${JSON.stringify(metadata.format)}, expected ${CHECKPOINT_FORMAT})`);
  let config: unknown;
  try { config = JSON.parse(metadata.config ?? 'null'); } catch (e) { throw new Error(`${path}: __metadata__.config is not JSON: ${(e as Error).message}`); }
  return { tensors, config, metadata };
}

/**
 * Prefix of the training-state tensors (AdamW moments) that a training checkpoint holds beside the method's
 * weights, in the same file (train/trainer.ts): ignored when the weights are loaded.
 */
export const TRAIN_STATE_PREFIX = '__train_state__.';

/** A method checkpoint: only the trainable parameters of `model`, plus the config. Returns the names saved. */
export function saveMethodCheckpoint(path: string, model: Module, config: unknown): string[] {
  const trainable = model.trainableParameters();
  if (!trainable.length) throw new Error(`${path}: the model has no trainable parameters to save`);
  saveCheckpoint(path, new Map(trainable), config);
  return trainable.map(([n]) => n);
}

/**
 * Load a method checkpoint into a model that already holds the frozen (pre-trained) weights: every tensor of the
 * file must exist in the model with the same shape; model parameters absent from the file are left as they are.
 */
export function loadMethodCheckpoint(path: string, model: Module, opts: { backend?: string } = {}): { loaded: string[]; config: unknown } {
  const ck = loadCheckpoint(path);
  for (const k of [...ck.tensors.keys()]) if (k.startsWith(TRAIN_STATE_PREFIX)) ck.tensors.delete(k);
  const sd = model.stateDict();
  const unknown = [...ck.tensors.keys()].filter((k) => !sd.has(k));
  if (unknown.length) throw new Error(`${path}: ${unknown.length} tensor(s) not in the model: ${unknown.slice(0, 8).join(', ')}${unknown.length > 8 ? ', ...' : ''}`);
  for (const [k, h] of ck.tensors) {
    const cur = sd.get(k)!;
    if (!sameShape(cur.shape, h.shape)) throw new Error(`${path}: shape mismatch for '${k}': file has ${shapeStr(h.shape)}, model expects ${shapeStr(cur.shape)}`);
  }
  const load = new Map<string, Tensor>();
  for (const [k, h] of ck.tensors) load.set(k, fromHost(h, opts.backend ?? sd.get(k)!.backend.name));
  model.loadStateDict(load, { strict: false });
  return { loaded: [...ck.tensors.keys()], config: ck.config };
}

// ---------------------------------------------------------------------------------------------- import

export type ExternalFormat = 'torch-zip' | 'torch-legacy' | 'safetensors';

function readBytes(path: string): Buffer {
  try { return readFileSync(path); } catch (e) { throw new Error(`${path}: cannot read: ${(e as Error).message}`); }
}
function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
}

/** Identify a weights file by its first bytes; throws "not a checkpoint" for anything else. */
export function detectFormat(path: string): ExternalFormat {
  let head = Buffer.alloc(16);
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const n = readSync(fd, head, 0, 16, 0);
    head = head.subarray(0, n);
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  if (isZip(head)) return 'torch-zip';
  if (isLegacyTorch(head)) return 'torch-legacy';
  if (head.length >= 9 && head[8] === 0x7b /* '{' */) return 'safetensors';
  throw new Error(`${path}: not a checkpoint (neither a PyTorch checkpoint, zip or legacy, nor a safetensors file)`);
}

/** Every tensor of an external weights file, under the file's own names. */
export function readExternalWeights(path: string): { tensors: Map<string, HostTensor>; format: ExternalFormat } {
  const format = detectFormat(path);
  if (format !== 'safetensors') return { tensors: readTorchStateDict(path), format };
  return { tensors: parseSafetensors(readBytes(path), path).tensors, format };
}

const HF_VILT_LAYER: [string, string][] = [
  ['layernorm_before', 'norm1'], ['attention.output.dense', 'attn.proj'], ['layernorm_after', 'norm2'],
  ['intermediate.dense', 'mlp.fc1'], ['output.dense', 'mlp.fc2'],
];
const HF_VILT_FIXED: Record<string, string> = {
  'vilt.embeddings.cls_token': 'transformer.cls_token',
  'vilt.embeddings.position_embeddings': 'transformer.pos_embed',
  'vilt.embeddings.patch_embeddings.projection.weight': 'transformer.patch_embed.proj.weight',
  'vilt.embeddings.patch_embeddings.projection.bias': 'transformer.patch_embed.proj.bias',
  'vilt.embeddings.token_type_embeddings.weight': 'token_type_embeddings.weight',
  'vilt.layernorm.weight': 'transformer.norm.weight',
  'vilt.layernorm.bias': 'transformer.norm.bias',
  'vilt.pooler.dense.weight': 'pooler.dense.weight',
  'vilt.pooler.dense.bias': 'pooler.dense.bias',
  'mlm_score.decoder.bias': 'mlm_score.bias',
};

/** True when the names are HF transformers' ViLT names (`vilt.` prefix). */
export function isHfVilt(names: Iterable<string>): boolean {
  for (const n of names) if (n.startsWith('vilt.')) return true;
  return false;
}

/**
 * HF ViLT names -> original ViLT names (the inverse of HF's conversion script). Separate query/key/value are
 * concatenated (in that order) into `transformer.blocks.{i}.attn.qkv`. `classifier.*` (a task head) maps to
 * `classifierName.*` when given, else stays as is (and is then reported as unexpected).
 */
export function mapHfViltNames(src: Map<string, HostTensor>, opts: { classifierName?: string; source?: string } = {}): Map<string, HostTensor> {
  const where = opts.source ?? '<HF ViLT weights>';
  const out = new Map<string, HostTensor>();
  const qkv = new Map<string, { query?: HostTensor; key?: HostTensor; value?: HostTensor }>();
  for (const [name, t] of src) {
    if (name in HF_VILT_FIXED) { out.set(HF_VILT_FIXED[name], t); continue; }
    if (name.startsWith('vilt.embeddings.text_embeddings.')) { out.set(name.slice('vilt.embeddings.'.length), t); continue; }
    const m = /^vilt\.encoder\.layer\.(\d+)\.(.+)$/.exec(name);
    if (m) {
      const [, i, rest] = m;
      const a = /^attention\.attention\.(query|key|value)\.(weight|bias)$/.exec(rest);
      if (a) {
        const k = `transformer.blocks.${i}.attn.qkv.${a[2]}`;
        const e = qkv.get(k) ?? {};
        e[a[1] as 'query' | 'key' | 'value'] = t;
        qkv.set(k, e);
        continue;
      }
      const hit = HF_VILT_LAYER.find(([hf]) => rest.startsWith(hf + '.'));
      if (hit) { out.set(`transformer.blocks.${i}.${hit[1]}${rest.slice(hit[0].length)}`, t); continue; }
      out.set(name, t);
      continue;
    }
    if (opts.classifierName && name.startsWith('classifier.')) { out.set(opts.classifierName + name.slice('classifier'.length), t); continue; }
    out.set(name, t);
  }
  for (const [k, e] of qkv) {
    if (!e.query || !e.key || !e.value) throw new Error(`${where}: '${k}' needs query, key and value; got only ${Object.keys(e).join(', ')}`);
    const parts = [e.query, e.key, e.value];
    const tail = e.query.shape.slice(1);
    for (const p of parts) if (!sameShape(p.shape.slice(1), tail) || p.dtype !== 'float32') throw new Error(`${where}: query/key/value of '${k}' have shapes ${parts.map((q) => shapeStr(q.shape)).join(', ')}`);
    const rows = parts.reduce((s, p) => s + p.shape[0], 0);
    const data = new Float32Array(rows * numel(tail));
    let off = 0;
    for (const p of parts) { data.set(p.data, off); off += p.data.length; }
    out.set(k, { dtype: 'float32', shape: [rows, ...tail], data });
  }
  return out;
}

/** Names of position tables resized on load when their token count differs from the model's (spec §2.1). */
export const POSITION_TABLE_SUFFIXES = ['visual.positional_embedding', 'transformer.pos_embed'];

/**
 * Resize a ViT position table `[(g*g + 1), D]` (or `[1, g*g+1, D]`) to `[(G*G + 1), D]` (same rank): row 0 (CLS)
 * is kept, the g x g grid is resized bicubically (a = -0.75, align_corners false, like torch's F.interpolate) by
 * the models' own resizeClipPosTable.
 */
export function resizePositionTable(t: HostTensor, targetRows: number, name: string): HostTensor {
  if (t.shape.length !== 2 && !(t.shape.length === 3 && t.shape[0] === 1)) throw new Error(`${name}: position table of shape ${shapeStr(t.shape)} cannot be resized (expected [N, D] or [1, N, D])`);
  const rows = t.shape[t.shape.length - 2], dim = t.shape[t.shape.length - 1];
  const g = Math.round(Math.sqrt(rows - 1)), G = Math.round(Math.sqrt(targetRows - 1));
  if (g * g + 1 !== rows || G * G + 1 !== targetRows) throw new Error(`${name}: position table rows ${rows} -> ${targetRows} are not square grids plus a CLS row`);
  const r = onHost({ ...t, shape: [rows, dim] }, (x) => resizeClipPosTable(x, G));
  return { ...r, shape: t.shape.length === 3 ? [1, targetRows, dim] : [targetRows, dim] };
}

/** Runs a tensor function on a host tensor (default backend, no gradient) and returns the result on the host. */
function onHost(h: HostTensor, fn: (x: Tensor) => Tensor): HostTensor {
  return scope(() => toHost(noGrad(() => fn(fromHost(h))))); // every tensor made here is freed
}

export interface ImportReport {
  file: string;
  format: ExternalFormat;
  /** true when HF ViLT names were mapped */
  hfNames: boolean;
  loaded: string[];
  /** model tensors the file does not provide (left as initialised) */
  missing: string[];
  /** file tensors the model does not have (ignored) */
  unexpected: string[];
  /** position tables resized (bicubic, CLS kept) and the NLVR2 type table grown to 3 rows */
  resized: { name: string; from: number[]; to: number[] }[];
}

/**
 * Match file tensors against the model's names and shapes: maps HF names, resizes position tables, and checks
 * every shape. Pure (touches no model). Throws on a shape mismatch, naming the tensor.
 */
export function planImport(file: string, format: ExternalFormat, raw: Map<string, HostTensor>, expected: Map<string, readonly number[]>, opts: { classifierName?: string } = {}): { tensors: Map<string, HostTensor>; report: ImportReport } {
  const hfNames = isHfVilt(raw.keys());
  const src = hfNames ? mapHfViltNames(raw, { classifierName: opts.classifierName, source: file }) : raw;
  const tensors = new Map<string, HostTensor>();
  const report: ImportReport = { file, format, hfNames, loaded: [], missing: [], unexpected: [], resized: [] };
  for (const [name, shape] of expected) {
    let t = src.get(name);
    if (!t) { report.missing.push(name); continue; }
    if (!sameShape(t.shape, shape)) {
      const isTable = POSITION_TABLE_SUFFIXES.some((s) => name.endsWith(s)) && t.shape.length === shape.length && t.shape.at(-1) === shape.at(-1);
      const isTypeGrowth = name === 'token_type_embeddings.weight' && t.shape.length === 2 && t.shape[0] === 2 && shape[0] === 3 && t.shape[1] === shape[1];
      if (isTable) t = resizePositionTable(t, shape[shape.length - 2], `${file}: '${name}'`);
      else if (isTypeGrowth) t = onHost(t, typeTableForNlvr2);
      else throw new Error(`${file}: shape mismatch for '${name}': checkpoint has ${shapeStr(t.shape)}, model expects ${shapeStr(shape)}`);
      report.resized.push({ name, from: [...src.get(name)!.shape], to: [...shape] });
    }
    tensors.set(name, t);
    report.loaded.push(name);
  }
  for (const k of src.keys()) if (!expected.has(k)) report.unexpected.push(k);
  return { tensors, report };
}

export interface ImportOptions {
  /** throw if any model tensor is missing from the file, except those this predicate accepts (method modules, new heads) */
  strict?: boolean;
  allowMissing?: (name: string) => boolean;
  /** HF task head `classifier.*` -> this name (e.g. 'vqa_classifier') */
  classifierName?: string;
}

/**
 * Read an external weights file and match it against `model`'s own names, shapes and dtypes (planImport), failing
 * before anything is loaded; returns the tensors to load, on each parameter's backend, and the report.
 */
function prepareImport(file: string, model: Module, opts: ImportOptions): { load: Map<string, Tensor>; report: ImportReport } {
  const { tensors: raw, format } = readExternalWeights(file);
  const sd = model.stateDict();
  const expected = new Map<string, readonly number[]>([...sd].map(([k, t]) => [k, t.shape]));
  const { tensors, report } = planImport(file, format, raw, expected, opts);
  if (opts.strict) {
    const bad = report.missing.filter((n) => !(opts.allowMissing?.(n) ?? false));
    if (bad.length) throw new Error(`${file}: ${bad.length} missing key(s): ${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ', ...' : ''}`);
  }
  const load = new Map<string, Tensor>();
  for (const [k, h] of tensors) {
    const cur = sd.get(k)!;
    if (cur.dtype !== h.dtype) throw new Error(`${file}: '${k}' is ${h.dtype} in the file but ${cur.dtype} in the model`);
    load.set(k, fromHost(h, cur.backend.name));
  }
  return { load, report };
}

/** Import an original checkpoint / HF ViLT safetensors into `model` (parameters and buffers) by name. */
export function importCheckpoint(file: string, model: Module, opts: ImportOptions = {}): ImportReport {
  const { load, report } = prepareImport(file, model, opts);
  model.loadStateDict(load, { strict: false });
  return report;
}

/**
 * Import pre-trained weights into a model built by createModel: name mapping and checks as importCheckpoint,
 * then the models' loadPretrained post-load steps (rank_output from ITM row 1, token4classifier re-initialised
 * from the loaded embeddings). Method modules and new heads are expected to be missing.
 */
export function importPretrained(file: string, model: VLModel, opts: ImportOptions = {}): ImportReport {
  const { load, report } = prepareImport(file, model.backbone, opts);
  loadPretrained(model, load);
  return report;
}

/** A one-paragraph text summary of an import report (CLI). */
export function formatImportReport(r: ImportReport, max = 12): string {
  const list = (a: string[]) => (a.length ? ': ' + a.slice(0, max).join(', ') + (a.length > max ? `, ... (${a.length - max} more)` : '') : '');
  return [
    `${r.file} (${r.format}${r.hfNames ? ', HF ViLT names mapped' : ''}): ${r.loaded.length} tensor(s) loaded`,
    `missing ${r.missing.length}${list(r.missing)}`,
    `unexpected ${r.unexpected.length}${list(r.unexpected)}`,
    ...r.resized.map((x) => `resized ${x.name} ${shapeStr(x.from)} -> ${shapeStr(x.to)}${x.name.startsWith('token_type') ? ' (row 2 := row 1)' : ' (bicubic, CLS row kept)'}`),
  ].join('\n');
}

// ------------------------------------------------------------------------------------ conversion (CLI import)

/**
 * Names and shapes (parameters and buffers) of the full-size backbone with its ITM head, built on the shape
 * backend (no memory). METER's CLIP position table is sized for `imageSize` (default 384).
 */
export function expectedShapes(model: ModelKind, opts: { imageSize?: number; config?: ViltConfig | MeterConfig } = {}): Map<string, readonly number[]> {
  const base = opts.config ?? (model === 'vilt' ? VILT_BASE : METER_BASE);
  const config = model === 'vilt' || opts.imageSize === undefined ? base : { ...(base as MeterConfig), clip: { ...(base as MeterConfig).clip, imageSize: opts.imageSize } };
  return onShapeBackend(() => {
    const m = createModel({ backbone: model, config, task: 'itm', method: 'full' });
    return new Map([...m.stateDict()].map(([k, t]) => [k, [...t.shape]]));
  });
}

export interface ConvertOptions {
  from: string; out: string; model: ModelKind; imageSize?: number; classifierName?: string;
  /** backbone configuration to match (default the full-size one) */
  config?: ViltConfig | MeterConfig;
}

/**
 * Convert an original checkpoint / HF ViLT safetensors into an aptune checkpoint holding the backbone tensors
 * under the model's names (position table resized), with the import report in the config.
 */
export function convertCheckpoint(o: ConvertOptions): { report: ImportReport; text: string } {
  const { tensors: raw, format } = readExternalWeights(o.from);
  const expected = expectedShapes(o.model, { imageSize: o.imageSize, config: o.config });
  const { tensors, report } = planImport(o.from, format, raw, expected, { classifierName: o.classifierName });
  if (!report.loaded.length) throw new Error(`${o.from}: no tensor matches a ${o.model} name; is this a ${o.model} checkpoint?`);
  saveCheckpoint(o.out, tensors, {
    kind: 'pretrained', model: o.model, ...(o.model === 'meter' ? { imageSize: o.imageSize ?? (o.config as MeterConfig | undefined)?.clip.imageSize ?? METER_BASE.clip.imageSize } : {}),
    source: o.from, format, missing: report.missing, unexpected: report.unexpected, resized: report.resized,
  });
  return { report, text: formatImportReport(report) + `\nwrote ${o.out} (${report.loaded.length} tensors)` };
}
