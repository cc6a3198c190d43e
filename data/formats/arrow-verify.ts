// Verification of the Arrow IPC file's flatbuffers (the footer with its schema, and each record batch's metadata
// message) BEFORE apache-arrow decodes any of them: apache-arrow trusts every offset and length in a flatbuffer,
// and a two-byte corruption of the footer made it allocate gigabytes and abort the process (no catchable error).
// A small table-driven walker checks, for the Arrow schema (format/File.fbs, Schema.fbs, Message.fbs): the root
// offset, every table's vtable and inline size, every present field inside its table, every offset to a table,
// vector or string (elements included) inside the buffer, string UTF-8 and nesting depth; union members by their
// type tag. Also reads the footer's record-batch blocks and each batch's field nodes and buffer regions itself
// (numbers checked: non-negative, safe integers), so nothing of the batch metadata comes from unchecked code.
// Does not: verify alignment (nothing here reads through aligned views), or know dictionary batches (refused).
// Invariants: every access goes through ByteReader (data/formats/bytes.ts); total work is bounded (MAX_VISITS tables, string
// bytes reached at most 16x the buffer, each distinct string decoded once; a batch's values at most 8x its body);
// every error names the file, the part of it, and the byte offset.
import { ByteReader, InputError, decodeUtf8 } from './bytes.ts';

type Kind =
  | { k: 'scalar'; size: number }
  | { k: 'table'; t: TableDef }
  | { k: 'union'; tag: number; members: Record<number, TableDef> }
  | { k: 'string' }
  | { k: 'vscalar'; size: number } // vector of scalars or structs of this byte size
  | { k: 'vtable'; t: TableDef };
interface TableDef { name: string; fields: (Kind | (() => Kind))[] }

const S = (size: number): Kind => ({ k: 'scalar', size });
const STR: Kind = { k: 'string' };
const KeyValue: TableDef = { name: 'KeyValue', fields: [STR, STR] };
const VKV: Kind = { k: 'vtable', t: KeyValue };
const scalars = (name: string, ...sizes: number[]): TableDef => ({ name, fields: sizes.map(S) });
const IntT = scalars('Int', 4, 1);
/** Arrow's Type union (Schema.fbs), by tag. */
const TYPES: Record<number, TableDef> = {
  1: scalars('Null'), 2: IntT, 3: scalars('FloatingPoint', 2), 4: scalars('Binary'), 5: scalars('Utf8'), 6: scalars('Bool'),
  7: scalars('Decimal', 4, 4, 4), 8: scalars('Date', 2), 9: scalars('Time', 2, 4), 10: { name: 'Timestamp', fields: [S(2), STR] },
  11: scalars('Interval', 2), 12: scalars('List'), 13: scalars('Struct_'), 14: { name: 'Union', fields: [S(2), { k: 'vscalar', size: 4 }] },
  15: scalars('FixedSizeBinary', 4), 16: scalars('FixedSizeList', 4), 17: scalars('Map', 1), 18: scalars('Duration', 2),
  19: scalars('LargeBinary'), 20: scalars('LargeUtf8'), 21: scalars('LargeList'), 22: scalars('RunEndEncoded'),
  23: scalars('BinaryView'), 24: scalars('Utf8View'), 25: scalars('ListView'), 26: scalars('LargeListView'),
};
const DictionaryEncoding: TableDef = { name: 'DictionaryEncoding', fields: [S(8), { k: 'table', t: IntT }, S(1), S(2)] };
const Field: TableDef = { name: 'Field', fields: [] };
Field.fields.push(STR, S(1), S(1), { k: 'union', tag: 2, members: TYPES }, { k: 'table', t: DictionaryEncoding }, { k: 'vtable', t: Field }, VKV);
const Schema: TableDef = { name: 'Schema', fields: [S(2), { k: 'vtable', t: Field }, VKV, { k: 'vscalar', size: 8 }] };
const Footer: TableDef = { name: 'Footer', fields: [S(2), { k: 'table', t: Schema }, { k: 'vscalar', size: 24 }, { k: 'vscalar', size: 24 }, VKV] };
const RecordBatch: TableDef = {
  name: 'RecordBatch',
  fields: [S(8), { k: 'vscalar', size: 16 }, { k: 'vscalar', size: 16 }, { k: 'table', t: scalars('BodyCompression', 1, 1) }, { k: 'vscalar', size: 8 }],
};
const Message: TableDef = {
  name: 'Message',
  fields: [S(2), S(1), { k: 'union', tag: 1, members: { 1: Schema, 2: { name: 'DictionaryBatch', fields: [S(8), { k: 'table', t: RecordBatch }, S(1)] }, 3: RecordBatch } }, S(8), VKV],
};

const MAX_DEPTH = 64;
const MAX_VISITS = 1_000_000;

/** A verified flatbuffer: checked accessors over a ByteReader. */
class Flat {
  visits = 0;
  /** bytes of strings reached, counting every path to them: bounds what a decoder following the same paths reads */
  stringBytes = 0;
  private readonly checkedStrings = new Set<number>();
  constructor(readonly r: ByteReader) {}
  /** Position of field `i` of the table at `t` (0 when absent); the vtable was checked by verifyTable. */
  field(t: number, i: number): number {
    const v = t - this.r.i32At(t, 'table vtable offset');
    const vs = this.r.u16At(v, 'vtable size');
    if (4 + 2 * i >= vs) return 0;
    const fo = this.r.u16At(v + 4 + 2 * i, 'vtable entry');
    return fo ? t + fo : 0;
  }
  deref(p: number, what: string): number {
    const target = p + this.r.u32At(p, `${what} offset`);
    this.r.need(4, what, target);
    return target;
  }
  verifyTable(t: number, def: TableDef, depth: number): void {
    if (++this.visits > MAX_VISITS) throw this.r.error(`more than ${MAX_VISITS} flatbuffer tables (corrupt?)`, t);
    if (depth > MAX_DEPTH) throw this.r.error(`${def.name} nested deeper than ${MAX_DEPTH}`, t);
    this.r.need(4, `${def.name} table`, t);
    const v = t - this.r.i32At(t, `${def.name} vtable offset`);
    const vs = this.r.u16At(v, `${def.name} vtable size`);
    const ts = this.r.u16At(v + 2, `${def.name} table size`);
    if (vs < 4 || vs % 2) throw this.r.error(`${def.name} vtable size ${vs} is invalid`, v);
    this.r.need(vs, `${def.name} vtable`, v);
    this.r.need(ts, `${def.name} table`, t);
    for (let i = 0; i < def.fields.length && 4 + 2 * i < vs; i++) {
      const fo = this.r.u16At(v + 4 + 2 * i, `${def.name} vtable entry ${i}`);
      if (!fo) continue;
      const f = def.fields[i];
      const kind = typeof f === 'function' ? f() : f;
      const size = kind.k === 'scalar' ? kind.size : 4;
      if (fo + size > ts) throw this.r.error(`${def.name} field ${i} at ${fo} (+${size}) lies outside the ${ts}-byte table`, t);
      const p = t + fo;
      switch (kind.k) {
        case 'scalar': break;
        case 'string': {
          const s = this.deref(p, `${def.name} string`);
          const n = this.r.u32At(s, 'string length');
          this.r.need(n + 1, `${def.name} string`, s + 4);
          this.stringBytes += n;
          if (this.stringBytes > 16 * this.r.length + (1 << 20)) throw this.r.error(`the flatbuffer reaches more than ${16 * this.r.length + (1 << 20)} bytes of strings (shared strings referenced over and over)`, s);
          if (!this.checkedStrings.has(s)) { decodeUtf8(this.r.bytes.subarray(s + 4, s + 4 + n), `${this.r.source}: at byte ${this.r.base + s}: ${def.name} string`); this.checkedStrings.add(s); }
          break;
        }
        case 'table': this.verifyTable(this.deref(p, def.name), kind.t, depth + 1); break;
        case 'union': {
          const tp = this.field(t, kind.tag);
          const tag = tp ? this.r.u8At(tp, 'union tag') : 0;
          const m = kind.members[tag];
          if (!m) throw this.r.error(`${def.name} field ${i}: unknown or unsupported union member ${tag}`, p);
          this.verifyTable(this.deref(p, m.name), m, depth + 1);
          break;
        }
        case 'vscalar': { const q = this.deref(p, `${def.name} vector`); const n = this.r.u32At(q, 'vector length'); this.r.need(n * kind.size, `${def.name} vector of ${n}`, q + 4); break; }
        case 'vtable': {
          const q = this.deref(p, `${def.name} vector`);
          const n = this.r.u32At(q, 'vector length');
          this.r.need(n * 4, `${def.name} vector of ${n}`, q + 4);
          for (let j = 0; j < n; j++) this.verifyTable(this.deref(q + 4 + 4 * j, kind.t.name), kind.t, depth + 1);
          break;
        }
      }
    }
  }
  /** Verify the whole buffer as a `def` root; returns the root table's position. */
  root(def: TableDef): number {
    const t = this.deref(0, `${def.name} root`);
    this.verifyTable(t, def, 0);
    return t;
  }
  vector(t: number, i: number): { at: number; n: number } {
    const p = this.field(t, i);
    if (!p) return { at: 0, n: 0 };
    const q = this.deref(p, 'vector');
    return { at: q + 4, n: this.r.u32At(q, 'vector length') };
  }
}

export interface FooterBlock { offset: number; metaDataLength: number; bodyLength: number }

/**
 * Check the footer length `flen` (the int32 before the trailing magic) against the file size and verify the
 * footer flatbuffer (`footer`, the flen bytes before it); returns where the footer starts and its record-batch
 * blocks, each checked to lie inside the data region.
 */
export function verifyFooter(file: string, size: number, flen: number, footer: Uint8Array): { footerStart: number; blocks: FooterBlock[] } {
  const footerStart = size - 10 - flen;
  if (flen <= 0 || footerStart < 8 || footer.byteLength !== flen) throw new InputError(`${file}: at byte ${size - 10}: corrupt Arrow footer length ${flen} (the file has ${size} bytes)`);
  const r = new ByteReader(footer, `${file}: Arrow footer`, footerStart);
  const fb = new Flat(r);
  const root = fb.root(Footer);
  if (!fb.field(root, 1)) throw r.error('the footer has no schema', 0);
  const dicts = fb.vector(root, 2);
  if (dicts.n) throw new InputError(`${file}: dictionary-encoded columns (${dicts.n} dictionary batches) are not supported by this reader`);
  const rb = fb.vector(root, 3);
  const blocks: FooterBlock[] = [];
  for (let b = 0; b < rb.n; b++) {
    const at = rb.at + 24 * b;
    const offset = r.i64At(at, `record batch ${b} offset`), metaDataLength = r.i32At(at + 8, `record batch ${b} metadata length`), bodyLength = r.i64At(at + 16, `record batch ${b} body length`);
    if (offset < 8 || metaDataLength < 8 || bodyLength < 0 || offset + metaDataLength + bodyLength > footerStart) {
      throw r.error(`record batch ${b}: block [offset ${offset}, metadata ${metaDataLength}, body ${bodyLength}] lies outside the file's data region [8, ${footerStart})`, at);
    }
    blocks.push({ offset, metaDataLength, bodyLength });
  }
  return { footerStart, blocks };
}

export interface BatchLayout { numRows: number; nodes: { length: number; nullCount: number }[]; buffers: { offset: number; length: number }[] }

/**
 * Verify a record batch's metadata message (`meta` = the block's metaDataLength bytes at `at`) and read its
 * row count, field nodes and buffer regions; every buffer must lie inside the block's body.
 */
export function verifyBatchMessage(file: string, b: number, at: number, meta: Buffer, bodyLength: number): BatchLayout {
  const m = new ByteReader(meta, `${file}: record batch ${b} metadata`, at);
  let len = m.i32('message length');
  if (len === -1) len = m.i32('message length');
  if (len < 0) throw m.error(`negative message length ${len}`, 0);
  const r = new ByteReader(m.take(len, 'message'), m.source, at + m.pos - len);
  const fb = new Flat(r);
  const root = fb.root(Message);
  const tp = fb.field(root, 1);
  if (!tp || r.u8At(tp, 'header type') !== 3) throw r.error('the block is not a record batch message', 0);
  const hp = fb.field(root, 2);
  if (!hp) throw r.error('the record batch message has no header', 0);
  const h = fb.deref(hp, 'header');
  if (fb.field(h, 3)) throw new InputError(`${file}: record batch ${b} uses IPC body compression, which this reader does not support; rewrite the table uncompressed`);
  const lp = fb.field(h, 0);
  const numRows = lp ? r.i64At(lp, 'row count') : 0;
  if (numRows < 0) throw r.error(`negative row count ${numRows}`, lp);
  const nv = fb.vector(h, 1), bv = fb.vector(h, 2);
  const nodes: BatchLayout['nodes'] = [];
  const maxValues = 8 * bodyLength + 1024; // a value needs at least a bit of body (all-null fields aside)
  if (numRows > maxValues) throw r.error(`${numRows} rows cannot be described by a ${bodyLength}-byte body`, lp);
  for (let i = 0; i < nv.n; i++) {
    const length = r.i64At(nv.at + 16 * i, `field node ${i} length`), nullCount = r.i64At(nv.at + 16 * i + 8, `field node ${i} null count`);
    if (length < 0 || nullCount < 0 || nullCount > length) throw r.error(`field node ${i}: length ${length}, null count ${nullCount} are invalid`, nv.at + 16 * i);
    if (length > maxValues) throw r.error(`field node ${i}: ${length} values cannot be described by a ${bodyLength}-byte body`, nv.at + 16 * i);
    nodes.push({ length, nullCount });
  }
  const buffers: BatchLayout['buffers'] = [];
  for (let i = 0; i < bv.n; i++) {
    const offset = r.i64At(bv.at + 16 * i, `buffer ${i} offset`), length = r.i64At(bv.at + 16 * i + 8, `buffer ${i} length`);
    if (offset < 0 || length < 0 || offset + length > bodyLength) throw r.error(`buffer ${i} [${offset}, +${length}) lies outside the ${bodyLength}-byte body`, bv.at + 16 * i);
    buffers.push({ offset, length });
  }
  return { numRows, nodes, buffers };
}
