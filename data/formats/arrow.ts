// Arrow IPC *file* readers and writers for the ViLT/METER table layouts of apt-spec §5.1 (vqav2_*, nlvr2_*,
// f30k_caption_karpathy_*, plus the caption-corpus layout of the synthetic benchmark), by file name and column.
//
// Reading never holds a table, nor even a record batch, whole: `open` reads the footer and every record batch's
// metadata message (field nodes + buffer regions, a few hundred bytes each). After that
//   * a binary (image) cell is read with small positioned reads (offsets pair, then the value bytes), and
//   * a non-binary column of one batch (texts, labels, ids) is read as just that column's buffers, decoded to JS
//     values and kept in a small LRU cache bounded in bytes.
// So the memory held is O(metadata + the cached small columns), whatever the table's size or batch layout
// (pyarrow's `write_table` of a pandas frame gives one or a few multi-GB batches: still fine).
// Does not: decompress compressed IPC bodies (an error says so), read Arrow *stream* files, handle view types,
// or depend on the engine (values are plain JS / typed arrays).
// Invariants: every structural problem (not an Arrow file, truncated, missing/mistyped column, empty table, bad
// row index) raises an Error naming the file and, where relevant, the column and row. Nothing untrusted reaches
// apache-arrow or an allocation unchecked: the footer and batch messages are verified first (arrow-verify.ts),
// buffers lie inside their body, offsets are monotone and inside their buffers, text is strict UTF-8, and int64
// values beyond 2^53 are refused, never rounded.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  RecordBatchReader, DataType, Type, Field, Schema, List, Utf8, Binary, Int64, Float64,
  Table, vectorFromArray, RecordBatchFileWriter, type Vector,
} from 'apache-arrow';
import { tempPathFor } from './atomic.ts';
import { InputError, decodeUtf8, safeNumber } from './bytes.ts';
import { verifyBatchMessage, verifyFooter } from './arrow-verify.ts';

// ---------------------------------------------------------------------------------------------------------------
// Layouts

export type ColumnKind =
  | 'binary' | 'string' | 'int' | 'float'
  | 'list<string>' | 'list<int>' | 'list<float>'
  | 'list<list<string>>' | 'list<list<int>>' | 'list<list<float>>';

export interface LayoutSpec {
  /** Layout id. */
  readonly name: 'vqav2' | 'nlvr2' | 'f30k' | 'caption';
  /** File-name prefix, e.g. `vqav2_` (the rest of the name is the split). */
  readonly prefix: string;
  /** Columns the layout requires, with their kinds. Extra columns in a file are allowed and ignored. */
  readonly columns: Readonly<Record<string, ColumnKind>>;
  /** The list<string> column whose entries are the dataset items. */
  readonly textColumn: string;
  /** Binary image columns. */
  readonly imageColumns: readonly string[];
}

export const VQAV2_LAYOUT: LayoutSpec = {
  name: 'vqav2', prefix: 'vqav2_', textColumn: 'questions', imageColumns: ['image'],
  columns: {
    image: 'binary', questions: 'list<string>', answers: 'list<list<string>>', answer_labels: 'list<list<int>>',
    answer_scores: 'list<list<float>>', image_id: 'int', question_id: 'list<int>', split: 'string',
  },
};
export const NLVR2_LAYOUT: LayoutSpec = {
  name: 'nlvr2', prefix: 'nlvr2_', textColumn: 'questions', imageColumns: ['image_0', 'image_1'],
  columns: { image_0: 'binary', image_1: 'binary', questions: 'list<string>', answers: 'list<string>', identifier: 'string' },
};
export const F30K_LAYOUT: LayoutSpec = {
  name: 'f30k', prefix: 'f30k_caption_karpathy_', textColumn: 'caption', imageColumns: ['image'],
  columns: { image: 'binary', caption: 'list<string>', image_id: 'string', split: 'string' },
};
/** Image-caption corpus (same columns as F30K; used for the synthetic pre-training corpus `synth_caption_*`). */
export const CAPTION_LAYOUT: LayoutSpec = {
  name: 'caption', prefix: 'synth_caption_', textColumn: 'caption', imageColumns: ['image'],
  columns: { image: 'binary', caption: 'list<string>', image_id: 'string', split: 'string' },
};
export const LAYOUTS: readonly LayoutSpec[] = [VQAV2_LAYOUT, NLVR2_LAYOUT, F30K_LAYOUT, CAPTION_LAYOUT];

/** The layout a file belongs to, from its base name (`vqav2_train.arrow` -> vqav2). Throws for unknown names. */
export function layoutForFile(file: string): LayoutSpec {
  const base = path.basename(file);
  for (const l of LAYOUTS) if (base.startsWith(l.prefix) && base.endsWith('.arrow')) return l;
  throw new Error(`${file}: unknown table name; expected one of ${LAYOUTS.map((l) => `${l.prefix}<split>.arrow`).join(', ')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Type checking

function describeType(t: DataType): string {
  try { return String(t); } catch { return Type[t.typeId] ?? 'an unknown type'; } // a corrupt nested type cannot print itself
}

/** Whether an Arrow type satisfies a column kind. Lists whose element type is Null (all empty) match any list. */
export function typeMatchesKind(t: DataType, kind: ColumnKind): boolean {
  const scalar = (x: DataType, k: string): boolean => {
    switch (k) {
      case 'binary': return DataType.isBinary(x) || DataType.isLargeBinary(x);
      case 'string': return DataType.isUtf8(x) || DataType.isLargeUtf8(x);
      case 'int': return DataType.isInt(x);
      case 'float': return DataType.isFloat(x) || DataType.isInt(x);
      default: return false;
    }
  };
  const m = /^list<(.*)>$/.exec(kind);
  if (!m) return scalar(t, kind);
  if (!DataType.isList(t)) return false;
  const child = (t as List).children[0].type;
  if (DataType.isNull(child)) return true;
  return typeMatchesKind(child, m[1] as ColumnKind);
}

// ---------------------------------------------------------------------------------------------------------------
// Raw IPC metadata (field nodes and buffer regions per record batch)

interface NodeMeta { length: number; nullCount: number }
interface BufferMeta { offset: number; length: number }
interface BatchMeta {
  numRows: number;
  bodyOffset: number; // absolute file offset of the message body
  bodyLength: number;
  nodes: NodeMeta[];
  buffers: BufferMeta[];
}
/** Where one column's nodes/buffers start inside a batch's flat DFS lists. */
interface ColumnLayout { nodeStart: number; bufferStart: number; type: DataType }

function numberOf(x: number | bigint): number { return typeof x === 'bigint' ? Number(x) : x; }

/** Count of (nodes, buffers) a field of this type occupies in IPC DFS order. */
function fieldFootprint(t: DataType, where: string): { nodes: number; buffers: number } {
  if (DataType.isDictionary(t)) return { nodes: 1, buffers: 2 };
  if (DataType.isNull(t)) return { nodes: 1, buffers: 0 };
  if (DataType.isUtf8(t) || DataType.isBinary(t) || DataType.isLargeUtf8(t) || DataType.isLargeBinary(t)) return { nodes: 1, buffers: 3 };
  const nested = DataType.isList(t) || DataType.isLargeList(t) || DataType.isMap(t) || DataType.isFixedSizeList(t);
  if (nested && (t.children?.length !== 1 || !t.children[0]?.type)) throw new InputError(`${where}: a ${Type[t.typeId] ?? 'nested'} field without its one child field (corrupt schema)`);
  if (DataType.isList(t) || DataType.isLargeList(t) || DataType.isMap(t)) {
    const c = fieldFootprint(t.children[0].type, where);
    return { nodes: 1 + c.nodes, buffers: 2 + c.buffers };
  }
  if (DataType.isFixedSizeList(t)) {
    const c = fieldFootprint(t.children[0].type, where);
    return { nodes: 1 + c.nodes, buffers: 1 + c.buffers };
  }
  if (DataType.isStruct(t)) {
    let nodes = 1, buffers = 1;
    for (const ch of t.children) { const c = fieldFootprint(ch.type, where); nodes += c.nodes; buffers += c.buffers; }
    return { nodes, buffers };
  }
  if (DataType.isInt(t) || DataType.isFloat(t) || DataType.isBool(t) || DataType.isDate(t) || DataType.isTime(t)
    || DataType.isTimestamp(t) || DataType.isDecimal(t) || DataType.isInterval(t) || DataType.isDuration(t)
    || DataType.isFixedSizeBinary(t)) return { nodes: 1, buffers: 2 };
  throw new Error(`${where}: Arrow type ${describeType(t)} is not supported by this reader`);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding column buffers into JS values

type Cell = unknown;

/**
 * A view over raw column buffers read from the body; decodes rows [start, end) of one (possibly nested) field.
 * Before a value is produced, the buffers it needs are checked against the field node: validity bitmaps and
 * fixed-width data long enough, offsets monotone, starting >= 0 and ending inside the data buffer (or the child
 * field), text valid UTF-8, 64-bit integers within 2^53. Errors name file, column, (global) row and the rule.
 */
class ColumnDecoder {
  constructor(
    private readonly file: string,
    private readonly column: string,
    private readonly meta: BatchMeta,
    private readonly bufs: Map<number, Uint8Array>, // buffer index -> bytes
    private readonly rowBase: number, // global row of the batch's first row
  ) {}

  private fail(msg: string, row?: number): never {
    throw new InputError(`${this.file}: column "${this.column}"${row === undefined ? '' : ` row ${this.rowBase + row}`}: ${msg}`);
  }

  private buf(i: number): Uint8Array {
    const b = this.bufs.get(i);
    if (!b) return this.fail(`internal error, buffer ${i} not loaded`);
    return b;
  }

  private node(nodeIdx: number, end: number): { length: number; nullCount: number } {
    const node = this.meta.nodes[nodeIdx];
    if (!node) return this.fail(`field node ${nodeIdx} missing`);
    if (end > node.length) this.fail(`values [0, ${end}) needed but the field holds ${node.length} (corrupt offsets or lengths)`);
    return node;
  }

  /** The validity test for a field of `len` values (a missing bitmap is allowed only without nulls). */
  private validity(nodeIdx: number, bufIdx: number, len: number): (i: number) => boolean {
    const node = this.meta.nodes[nodeIdx];
    if (node.nullCount === 0) return () => true;
    const v = this.buf(bufIdx);
    if (v.length < Math.ceil(len / 8)) this.fail(`validity bitmap of ${v.length} bytes is too short for ${len} values with ${node.nullCount} nulls`);
    return (i) => ((v[i >> 3] >> (i & 7)) & 1) === 1;
  }

  /** Offsets [start, end] (inclusive) of a variable-size field, checked monotone, >= 0 and <= `limit`. */
  private offsets(bufIdx: number, large: boolean, start: number, end: number, limit: number, what: string): (i: number) => number {
    const b = this.buf(bufIdx);
    const w = large ? 8 : 4;
    if (end === start && b.length === 0) return () => 0;
    if (b.length < (end + 1) * w) this.fail(`offsets buffer of ${b.length} bytes is too short for ${end + 1} offsets`);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const get = large ? (i: number) => safeNumber(dv.getBigInt64(i * 8, true), `${this.file}: column "${this.column}" offset ${i}`) : (i: number) => dv.getInt32(i * 4, true);
    let prev = get(start);
    if (prev < 0 || prev > limit) this.fail(`offset ${prev} outside [0, ${limit}] of the ${what}`, start);
    for (let i = start + 1; i <= end; i++) {
      const o = get(i);
      if (o < prev) this.fail(`offsets decrease (${prev} then ${o})`, i - 1);
      if (o > limit) this.fail(`offset ${o} beyond the ${limit} values of the ${what}`, i - 1);
      prev = o;
    }
    return get;
  }

  /** Decode values [start, end) of the field whose node is `nodeIdx` and first buffer is `bufIdx`. */
  decode(t: DataType, nodeIdx: number, bufIdx: number, start: number, end: number, depth = 0): Cell[] {
    const out: Cell[] = new Array(end - start);
    if (DataType.isNull(t)) { out.fill(null); return out; }
    this.node(nodeIdx, end);
    // rows are named only at the top level (nested values are named by their row's column)
    const rowOf = (i: number) => (depth === 0 ? i : undefined);
    if (DataType.isUtf8(t) || DataType.isLargeUtf8(t) || DataType.isBinary(t) || DataType.isLargeBinary(t)) {
      const large = DataType.isLargeUtf8(t) || DataType.isLargeBinary(t);
      const data = this.buf(bufIdx + 2);
      const off = this.offsets(bufIdx + 1, large, start, end, data.length, 'data buffer (bytes)');
      const valid = this.validity(nodeIdx, bufIdx, end);
      const isText = DataType.isUtf8(t) || DataType.isLargeUtf8(t);
      for (let i = start; i < end; i++) {
        if (!valid(i)) { out[i - start] = null; continue; }
        const a = off(i), b = off(i + 1);
        if (isText) {
          try { out[i - start] = decodeUtf8(data.subarray(a, b), ''); } catch { this.fail(`invalid UTF-8 text`, rowOf(i)); }
        } else out[i - start] = data.slice(a, b);
      }
      return out;
    }
    if (DataType.isInt(t) || DataType.isFloat(t)) {
      const data = this.buf(bufIdx + 1);
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      let get: (i: number) => number;
      let width: number;
      if (DataType.isInt(t)) {
        const bw = t.bitWidth, signed = t.isSigned;
        width = bw / 8;
        const big = (v: bigint, i: number) => {
          if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) this.fail(`int64 value ${v} is beyond 2^53 and cannot be represented exactly`, rowOf(i));
          return Number(v);
        };
        get = bw === 64 ? (signed ? (i) => big(dv.getBigInt64(i * 8, true), i) : (i) => big(dv.getBigUint64(i * 8, true), i))
          : bw === 32 ? (signed ? (i) => dv.getInt32(i * 4, true) : (i) => dv.getUint32(i * 4, true))
          : bw === 16 ? (signed ? (i) => dv.getInt16(i * 2, true) : (i) => dv.getUint16(i * 2, true))
          : (signed ? (i) => dv.getInt8(i) : (i) => dv.getUint8(i));
      } else {
        const p = (t as unknown as { precision: number }).precision; // 0 half, 1 single, 2 double
        if (p === 0) this.fail('float16 values are not supported');
        width = p === 1 ? 4 : 8;
        get = p === 1 ? (i) => dv.getFloat32(i * 4, true) : (i) => dv.getFloat64(i * 8, true);
      }
      if (data.length < end * width) this.fail(`data buffer of ${data.length} bytes is too short for ${end} values of ${width} bytes`);
      const valid = this.validity(nodeIdx, bufIdx, end);
      for (let i = start; i < end; i++) out[i - start] = valid(i) ? get(i) : null;
      return out;
    }
    if (DataType.isList(t)) {
      const childType = t.children[0].type;
      const childNode = this.meta.nodes[nodeIdx + 1];
      if (!childNode) this.fail(`child field node ${nodeIdx + 1} missing`);
      const off = this.offsets(bufIdx + 1, false, start, end, childNode.length, 'child field');
      const valid = this.validity(nodeIdx, bufIdx, end);
      const a0 = off(start), b0 = off(end);
      const child = this.decode(childType, nodeIdx + 1, bufIdx + 2, a0, b0, depth + 1);
      for (let i = start; i < end; i++) {
        if (!valid(i)) { out[i - start] = null; continue; }
        out[i - start] = child.slice(off(i) - a0, off(i + 1) - a0);
      }
      return out;
    }
    return this.fail(`decoding Arrow type ${describeType(t)} is not supported`);
  }
}

/** Buffer indices (relative to the column's first buffer) that hold a field's data, in DFS order. */
function allBufferIndices(t: DataType, first: number, out: number[], where: string): number {
  const fp = fieldFootprint(t, where);
  for (let i = 0; i < fp.buffers; i++) out.push(first + i);
  return fp.buffers;
}

// ---------------------------------------------------------------------------------------------------------------
// The reader

export interface OpenTableOptions {
  /** Layout to validate against; default: inferred from the file name (`null` disables validation). */
  layout?: LayoutSpec | null;
  /** Extra required columns (name -> kind) to validate. */
  columns?: Record<string, ColumnKind>;
  /** Accept a table with zero rows (default false: an empty table is an error). */
  allowEmpty?: boolean;
  /** Byte budget of the decoded small-column cache (default 64 MiB). */
  cacheBytes?: number;
}

/** Ceiling on the byte size of one non-binary column chunk we are willing to read whole. */
const MAX_SMALL_COLUMN_BYTES = 1 << 30;

export class ArrowTableReader {
  readonly file: string;
  /** File base name without `.arrow` (e.g. `vqav2_train`). */
  readonly name: string;
  readonly schema: Schema;
  readonly layout: LayoutSpec | null;
  readonly numRows: number;
  /** Cumulative row offsets: batch b holds rows [batchStarts[b], batchStarts[b+1]). */
  readonly batchStarts: Int32Array | Float64Array;
  private readonly batches: BatchMeta[];
  private readonly columnLayouts: Map<string, ColumnLayout>;
  private readonly cache = new Map<string, { bytes: number; values: Cell[] }>();
  private cacheBytesUsed = 0;
  private readonly cacheBytes: number;
  private fh: fs.promises.FileHandle | null;
  /** Bytes read from the file so far (for tests and benchmarks). */
  bytesRead = 0;

  private constructor(file: string, fh: fs.promises.FileHandle, schema: Schema, batches: BatchMeta[], layout: LayoutSpec | null, cacheBytes: number) {
    this.file = file;
    this.name = path.basename(file).replace(/\.arrow$/, '');
    this.fh = fh;
    this.schema = schema;
    this.batches = batches;
    this.layout = layout;
    this.cacheBytes = cacheBytes;
    const starts = new Float64Array(batches.length + 1);
    for (let b = 0; b < batches.length; b++) starts[b + 1] = starts[b] + batches[b].numRows;
    this.batchStarts = starts;
    this.numRows = starts[batches.length];
    this.columnLayouts = new Map();
    let node = 0, buf = 0;
    for (const f of schema.fields) {
      this.columnLayouts.set(f.name, { nodeStart: node, bufferStart: buf, type: f.type });
      const fp = fieldFootprint(f.type, `${file}: column "${f.name}"`);
      node += fp.nodes; buf += fp.buffers;
    }
    for (let b = 0; b < batches.length; b++) {
      if (batches[b].nodes.length !== node || batches[b].buffers.length !== buf) {
        throw new Error(`${file}: record batch ${b} has ${batches[b].nodes.length} field nodes / ${batches[b].buffers.length} buffers, the schema needs ${node} / ${buf}`);
      }
      for (const [name, c] of this.columnLayouts) {
        const n = batches[b].nodes[c.nodeStart];
        if (n.length !== batches[b].numRows) throw new InputError(`${file}: record batch ${b}: column "${name}" holds ${n.length} values for ${batches[b].numRows} rows`);
      }
    }
  }

  /** Open and validate a table. See OpenTableOptions. */
  static async open(file: string, opts: OpenTableOptions = {}): Promise<ArrowTableReader> {
    let layout: LayoutSpec | null;
    if (opts.layout === undefined) layout = layoutForFile(file);
    else layout = opts.layout;
    let fh: fs.promises.FileHandle;
    try { fh = await fs.promises.open(file, 'r'); } catch (e) {
      throw new Error(`${file}: cannot open table: ${(e as Error).message}`);
    }
    try {
      const { size } = await fh.stat();
      const head = Buffer.alloc(6), tail = Buffer.alloc(6);
      if (size >= 6) await fh.read(head, 0, 6, 0);
      if (size >= 12) await fh.read(tail, 0, 6, size - 6);
      const magic = 'ARROW1';
      if (head.toString('latin1') !== magic) {
        const cont = size >= 4 && head.readUInt32LE(0) === 0xffffffff;
        throw new Error(cont
          ? `${file}: this is an Arrow IPC *stream*, not an Arrow IPC file (RecordBatchFileWriter); random access needs the file format`
          : `${file}: not an Arrow IPC file (no ARROW1 magic at the start; ${size} bytes)`);
      }
      if (size < 14 || tail.toString('latin1') !== magic) {
        throw new Error(`${file}: truncated Arrow IPC file (no ARROW1 magic at the end; ${size} bytes): the footer is missing`);
      }
      const readSync = async (pos: number, len: number): Promise<Buffer> => {
        const out = Buffer.alloc(len);
        let done = 0;
        while (done < len) {
          const { bytesRead } = await fh.read(out, done, len - done, pos + done);
          if (bytesRead === 0) throw new Error(`${file}: unexpected end of file at byte ${pos + done} (truncated table)`);
          done += bytesRead;
        }
        return out;
      };
      // the footer region is read whole (it is at most the file) and verified before apache-arrow sees it
      const flen = (await readSync(size - 10, 4)).readInt32LE(0);
      const footerBytes = flen > 0 && flen <= size - 18 ? await readSync(size - 10 - flen, flen) : Buffer.alloc(0);
      const { blocks } = verifyFooter(file, size, flen, footerBytes);
      let reader;
      try {
        reader = await RecordBatchReader.from(fh);
        await reader.open();
      } catch (e) {
        throw new Error(`${file}: corrupt Arrow IPC footer or schema: ${(e as Error).message}`);
      }
      if (!reader.isFile() || !reader.footer) throw new Error(`${file}: not an Arrow IPC file`);
      const schema = reader.schema;
      const batches: BatchMeta[] = [];
      for (let b = 0; b < blocks.length; b++) {
        const { offset, metaDataLength, bodyLength } = blocks[b];
        const meta = verifyBatchMessage(file, b, offset, await readSync(offset, metaDataLength), bodyLength);
        batches.push({ ...meta, bodyOffset: offset + metaDataLength, bodyLength });
      }
      const t = new ArrowTableReader(file, fh, schema, batches, layout, opts.cacheBytes ?? 64 * 1024 * 1024);
      const required: Record<string, ColumnKind> = { ...(layout?.columns ?? {}), ...(opts.columns ?? {}) };
      t.validateColumns(required);
      if (t.numRows === 0 && !opts.allowEmpty) throw new Error(`${file}: table is empty (0 rows)`);
      return t;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** Throws naming file and column if a column is missing or has the wrong type. */
  validateColumns(required: Record<string, ColumnKind>): void {
    const have = new Map(this.schema.fields.map((f) => [f.name, f] as const));
    for (const [name, kind] of Object.entries(required)) {
      const f = have.get(name);
      if (!f) {
        throw new Error(`${this.file}: missing column "${name}" (expected ${kind}${this.layout ? ` for the ${this.layout.name} layout` : ''}); the file has: ${[...have.keys()].join(', ') || '(no columns)'}`);
      }
      if (!typeMatchesKind(f.type, kind)) {
        throw new Error(`${this.file}: column "${name}" has type ${describeType(f.type)}, expected ${kind}`);
      }
    }
  }

  get numBatches(): number { return this.batches.length; }
  get columnNames(): string[] { return this.schema.fields.map((f) => f.name); }
  hasColumn(name: string): boolean { return this.columnLayouts.has(name); }
  /** Number of decoded column chunks currently cached, and their bytes. */
  cacheStats(): { entries: number; bytes: number } { return { entries: this.cache.size, bytes: this.cacheBytesUsed }; }

  private col(name: string): ColumnLayout {
    const c = this.columnLayouts.get(name);
    if (!c) throw new Error(`${this.file}: no column "${name}"; the file has: ${this.columnNames.join(', ')}`);
    return c;
  }

  /** The batch holding `row` and the row's index inside it. */
  locate(row: number): { batch: number; local: number } {
    if (!Number.isInteger(row) || row < 0 || row >= this.numRows) {
      throw new Error(`${this.file}: row ${row} out of range (table has ${this.numRows} rows)`);
    }
    let lo = 0, hi = this.batches.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.batchStarts[mid] <= row) lo = mid; else hi = mid - 1;
    }
    return { batch: lo, local: row - this.batchStarts[lo] };
  }

  private async readAt(pos: number, len: number): Promise<Uint8Array> {
    if (!this.fh) throw new Error(`${this.file}: reader is closed`);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.fh.read(out, done, len - done, pos + done);
      if (bytesRead === 0) throw new Error(`${this.file}: unexpected end of file at byte ${pos + done} (truncated table)`);
      done += bytesRead;
    }
    this.bytesRead += len;
    return out;
  }

  private async readBuffer(b: BatchMeta, bufIdx: number, column: string, batchIdx: number): Promise<Uint8Array> {
    const r = b.buffers[bufIdx];
    if (r.length > MAX_SMALL_COLUMN_BYTES) {
      throw new Error(`${this.file}: column "${column}" of record batch ${batchIdx} has a ${r.length}-byte buffer; too large to read whole`);
    }
    return this.readAt(b.bodyOffset + r.offset, r.length); // inside the body: checked by verifyBatchMessage
  }

  /** All values of one non-binary column in one batch (cached, LRU, bounded by cacheBytes). */
  async batchColumn(batchIdx: number, column: string): Promise<Cell[]> {
    const key = `${batchIdx}\u0000${column}`;
    const hit = this.cache.get(key);
    if (hit) { this.cache.delete(key); this.cache.set(key, hit); return hit.values; }
    const c = this.col(column);
    const b = this.batches[batchIdx];
    const idx: number[] = [];
    allBufferIndices(c.type, c.bufferStart, idx, `${this.file}: column "${column}"`);
    const bufs = new Map<number, Uint8Array>();
    let bytes = 0;
    for (const i of idx) { const u = await this.readBuffer(b, i, column, batchIdx); bufs.set(i, u); bytes += u.length; }
    const dec = new ColumnDecoder(this.file, column, b, bufs, this.batchStarts[batchIdx]);
    const values = dec.decode(c.type, c.nodeStart, c.bufferStart, 0, b.numRows);
    bytes *= 2; // decoded JS values cost roughly twice their raw bytes
    if (bytes <= this.cacheBytes) {
      this.cache.set(key, { bytes, values });
      this.cacheBytesUsed += bytes;
      for (const [k, v] of this.cache) {
        if (this.cacheBytesUsed <= this.cacheBytes) break;
        this.cache.delete(k); this.cacheBytesUsed -= v.bytes;
      }
    }
    return values;
  }

  /** One binary cell (an image), read with positioned reads only; null if the cell is null. */
  async binaryCell(row: number, column: string): Promise<Uint8Array | null> {
    const c = this.col(column);
    if (!(DataType.isBinary(c.type) || DataType.isLargeBinary(c.type))) {
      throw new Error(`${this.file}: column "${column}" has type ${describeType(c.type)}, expected binary`);
    }
    const { batch, local } = this.locate(row);
    const b = this.batches[batch];
    const node = b.nodes[c.nodeStart];
    const vb = b.buffers[c.bufferStart];
    if (node.nullCount > 0) {
      if (vb.length < Math.ceil(node.length / 8)) throw new InputError(`${this.file}: column "${column}" row ${row}: validity bitmap of ${vb.length} bytes is too short for ${node.length} values with ${node.nullCount} nulls`);
      const byte = await this.readAt(b.bodyOffset + vb.offset + (local >> 3), 1);
      if (((byte[0] >> (local & 7)) & 1) === 0) return null;
    }
    const large = DataType.isLargeBinary(c.type);
    const w = large ? 8 : 4;
    const ob = b.buffers[c.bufferStart + 1];
    const where = `${this.file}: column "${column}" row ${row}`;
    if (ob.length < (local + 2) * w) throw new InputError(`${where}: offsets buffer of ${ob.length} bytes is too short for row ${local} of record batch ${batch}`);
    const offs = await this.readAt(b.bodyOffset + ob.offset + local * w, 2 * w);
    const dv = new DataView(offs.buffer);
    const start = large ? safeNumber(dv.getBigInt64(0, true), where) : dv.getInt32(0, true);
    const end = large ? safeNumber(dv.getBigInt64(8, true), where) : dv.getInt32(4, true);
    const db = b.buffers[c.bufferStart + 2];
    if (start < 0 || end < start || end > db.length) {
      throw new InputError(`${where}: corrupt offsets [${start}, ${end}) for a ${db.length}-byte data buffer`);
    }
    return this.readAt(b.bodyOffset + db.offset + start, end - start);
  }

  /** One cell of any supported column. */
  async cell(row: number, column: string): Promise<Cell> {
    const c = this.col(column);
    if (DataType.isBinary(c.type) || DataType.isLargeBinary(c.type)) return this.binaryCell(row, column);
    const { batch, local } = this.locate(row);
    return (await this.batchColumn(batch, column))[local];
  }

  /** Several cells of one row as an object. */
  async row(row: number, columns: readonly string[] = this.columnNames): Promise<Record<string, Cell>> {
    const out: Record<string, Cell> = {};
    for (const c of columns) out[c] = await this.cell(row, c);
    return out;
  }

  /** Every value of a non-binary column, read batch by batch (only that column's buffers are read). */
  async columnValues(column: string): Promise<Cell[]> {
    const out: Cell[] = [];
    for (let b = 0; b < this.batches.length; b++) {
      const v = await this.batchColumn(b, column);
      for (const x of v) out.push(x);
    }
    return out;
  }

  /** Rows in order, `columns` decoded per row; binary columns are read cell by cell. */
  async *rows(columns: readonly string[] = this.columnNames): AsyncGenerator<{ row: number; values: Record<string, Cell> }> {
    for (let r = 0; r < this.numRows; r++) yield { row: r, values: await this.row(r, columns) };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.cache.clear();
    this.cacheBytesUsed = 0;
    if (fh) await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Typed cell accessors (errors name file, column and row)

export function asStringList(v: Cell, file: string, column: string, row: number): string[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${file}: column "${column}" row ${row}: expected a list of strings`);
  return v as string[];
}
export function asNumberList(v: Cell, file: string, column: string, row: number): number[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new Error(`${file}: column "${column}" row ${row}: expected a list of numbers`);
  return v as number[];
}
export function asNested<T>(v: Cell, file: string, column: string, row: number, inner: (x: Cell, f: string, c: string, r: number) => T[]): T[][] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) throw new Error(`${file}: column "${column}" row ${row}: expected a list of lists`);
  return v.map((x) => inner(x, file, column, row));
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

export const ARROW_TYPES: Record<ColumnKind, () => DataType> = {
  binary: () => new Binary(),
  string: () => new Utf8(),
  int: () => new Int64(),
  float: () => new Float64(),
  'list<string>': () => new List(new Field('item', new Utf8(), true)),
  'list<int>': () => new List(new Field('item', new Int64(), true)),
  'list<float>': () => new List(new Field('item', new Float64(), true)),
  'list<list<string>>': () => new List(new Field('item', new List(new Field('item', new Utf8(), true)), true)),
  'list<list<int>>': () => new List(new Field('item', new List(new Field('item', new Int64(), true)), true)),
  'list<list<float>>': () => new List(new Field('item', new List(new Field('item', new Float64(), true)), true)),
};

function toColumnVector(values: unknown[], kind: ColumnKind, column: string): Vector {
  const t = ARROW_TYPES[kind]();
  if (kind === 'int') return vectorFromArray(values.map((v) => BigInt(v as number)), t as Int64);
  if (kind === 'list<int>') return vectorFromArray(values.map((l) => (l as number[]).map((v) => BigInt(v))), t);
  if (kind === 'list<list<int>>') return vectorFromArray(values.map((l) => (l as number[][]).map((q) => q.map((v) => BigInt(v)))), t);
  try {
    return vectorFromArray(values as never[], t);
  } catch (e) {
    throw new Error(`column "${column}" (${kind}): cannot build Arrow vector: ${(e as Error).message}`);
  }
}

/**
 * Streams rows to an Arrow IPC file in record batches of at most `batchRows` rows or about `batchBytes` bytes of
 * binary data, into a temporary file that `close()` fsyncs and renames into place; `abort()` removes it.
 * Memory held: the pending rows of one batch plus the bytes the file has not yet taken.
 */
export class ArrowTableWriter {
  private rows: Record<string, unknown>[] = [];
  private pendingBytes = 0;
  private writer: RecordBatchFileWriter | null = null;
  private fh: fs.promises.FileHandle | null = null;
  private pump: Promise<void> | null = null;
  private pumped = 0;
  private readonly tmp: string;
  rowsWritten = 0;

  constructor(
    readonly file: string,
    readonly columns: Readonly<Record<string, ColumnKind>>,
    readonly opts: { batchRows?: number; batchBytes?: number } = {},
  ) {
    this.tmp = tempPathFor(file);
  }

  private async start(): Promise<RecordBatchFileWriter> {
    if (this.writer) return this.writer;
    await fs.promises.mkdir(path.dirname(this.file), { recursive: true });
    const fh = await fs.promises.open(this.tmp, 'w');
    this.fh = fh;
    const w = new RecordBatchFileWriter();
    this.writer = w;
    this.pump = (async () => {
      for await (const chunk of w) {
        let done = 0;
        while (done < chunk.byteLength) done += (await fh.write(chunk, done, chunk.byteLength - done)).bytesWritten;
        this.pumped += chunk.byteLength;
      }
    })();
    this.pump.catch(() => undefined);
    return w;
  }

  /** Append one row: an object holding every column of the layout. */
  async append(row: Record<string, unknown>): Promise<void> {
    for (const c of Object.keys(this.columns)) {
      if (!(c in row)) throw new Error(`${this.file}: row ${this.rowsWritten + this.rows.length} lacks column "${c}"`);
    }
    this.rows.push(row);
    for (const [c, k] of Object.entries(this.columns)) if (k === 'binary') this.pendingBytes += (row[c] as Uint8Array).byteLength;
    if (this.rows.length >= (this.opts.batchRows ?? 4096) || this.pendingBytes >= (this.opts.batchBytes ?? 32 * 1024 * 1024)) await this.flush();
  }

  private async writeRows(rows: Record<string, unknown>[]): Promise<void> {
    const w = await this.start();
    const cols: Record<string, Vector> = {};
    for (const [c, k] of Object.entries(this.columns)) {
      try {
        cols[c] = toColumnVector(rows.map((r) => r[c]), k, c);
      } catch (e) { throw new Error(`${this.file}: ${(e as Error).message}`); }
    }
    const t = new Table(cols);
    for (const b of t.batches) w.write(b);
    // wait until the file has taken what was queued (bounded memory); _position is the writer's byte count
    const queued = (): number => (w as unknown as { _position?: number })._position ?? 0;
    while (this.pumped < queued()) await new Promise((r) => setImmediate(r));
  }

  private async flush(): Promise<void> {
    if (this.rows.length === 0) return;
    const rows = this.rows;
    this.rows = [];
    this.pendingBytes = 0;
    await this.writeRows(rows);
    this.rowsWritten += rows.length;
  }

  /** Flush, write the footer, fsync and rename into place. A table with no rows gets one zero-row batch. */
  async close(): Promise<void> {
    try {
      if (this.rows.length) await this.flush();
      if (!this.writer) await this.writeRows([]);
      this.writer!.finish();
      await this.pump;
      await this.fh!.sync();
      await this.fh!.close();
      this.fh = null;
      await fs.promises.rename(this.tmp, this.file);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Discard everything written; the destination is left untouched. */
  async abort(): Promise<void> {
    try { this.writer?.abort(); } catch { /* already closed */ }
    await this.pump?.catch(() => undefined);
    if (this.fh) { await this.fh.close().catch(() => undefined); this.fh = null; }
    await fs.promises.rm(this.tmp, { force: true });
  }
}

/** Write all rows of a table in one call (tests, small tables). */
export async function writeTable(file: string, columns: Readonly<Record<string, ColumnKind>>, rows: Iterable<Record<string, unknown>>, opts?: { batchRows?: number; batchBytes?: number }): Promise<void> {
  const w = new ArrowTableWriter(file, columns, opts);
  try {
    for (const r of rows) await w.append(r);
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
