// safetensors read/write: the project's own weight format (https://github.com/huggingface/safetensors).
// Layout: u64 little-endian header length N, N bytes of JSON header
//   { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ..., "__metadata__": {str: str} }
// then the byte buffer; offsets are relative to the start of the buffer.
// Reads F32/F64/F16/BF16 (returned as float32) and I32/I64 (returned as int32, range-checked); writes F32/I32.
// Does not: memory-map, stream, or keep dtypes other than float32/int32 in memory.
// Invariants: every written file is complete or absent (temp file + rename); offsets written are contiguous,
// sorted by name, and cover the buffer exactly; the header is padded with spaces to a multiple of 8 bytes.
// Reading validates the whole header (parseSafetensors lists the rules) before decoding any tensor, so memory is
// the file plus the valid tensors. Every error names the file (or '<buffer>') and, where there is one, the tensor.
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from './atomic.ts';
import { ByteReader, InputError, checkedProduct, decodeUtf8, parseJsonStrict } from './bytes.ts';

export type SafeDType = 'F32' | 'F64' | 'F16' | 'BF16' | 'I32' | 'I64';
const ELEM_BYTES: Record<SafeDType, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I32: 4, I64: 8 };

/** A host tensor as stored: row-major, contiguous. */
export interface HostTensor {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface SafetensorsContent {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

const numelOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** IEEE half -> float */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Decode `numel` little-endian elements of a stored dtype into float32 or int32. */
export function decodeElements(bytes: Uint8Array, dtype: SafeDType, numel: number, where: string): Float32Array | Int32Array {
  const need = numel * ELEM_BYTES[dtype];
  if (bytes.byteLength < need) throw new Error(`${where}: ${dtype} data holds ${bytes.byteLength} bytes, ${need} needed`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, need);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(numel);
      for (let i = 0; i < numel; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(numel);
      for (let i = 0; i < numel; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(numel);
      for (let i = 0; i < numel; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(numel);
      const u = new Uint32Array(1), f = new Float32Array(u.buffer);
      for (let i = 0; i < numel; i++) { u[0] = dv.getUint16(i * 2, true) << 16; out[i] = f[0]; }
      return out;
    }
    case 'I32': {
      const out = new Int32Array(numel);
      for (let i = 0; i < numel; i++) out[i] = dv.getInt32(i * 4, true);
      return out;
    }
    case 'I64': {
      const out = new Int32Array(numel);
      for (let i = 0; i < numel; i++) {
        const v = dv.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) throw new Error(`${where}: I64 element ${i} = ${v} does not fit in int32`);
        out[i] = Number(v);
      }
      return out;
    }
  }
}

/** The largest header accepted (the safetensors specification's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Parse a whole safetensors file held in memory, checked as the specification requires: header length within
 * 100 MB and the file, a UTF-8 JSON object starting with '{' without duplicate keys, known dtypes, non-negative
 * integer shapes, shape x dtype size = byte length, data_offsets contiguous from 0 (no overlap, no gap) and
 * covering the buffer exactly (no trailing bytes). Nothing is decoded before the whole header passed.
 * `source` names the file in errors.
 */
export function parseSafetensors(buf: Uint8Array, source = '<buffer>'): SafetensorsContent {
  const r = new ByteReader(buf, source);
  if (buf.byteLength < 8) throw new InputError(`${source}: not a safetensors file (${buf.byteLength} bytes, shorter than the 8-byte header length)`);
  const n = r.dv.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new InputError(`${source}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit of the safetensors specification (not a safetensors file?)`);
  if (n > BigInt(buf.byteLength - 8)) throw new InputError(`${source}: not a safetensors file or truncated (header length ${n} exceeds the ${buf.byteLength - 8} bytes that follow)`);
  const hlen = Number(n);
  if (hlen < 2 || buf[8] !== 0x7b) throw new InputError(`${source}: not a safetensors file (the header does not start with '{')`);
  const header = parseJsonStrict(decodeUtf8(buf.subarray(8, 8 + hlen), `${source}: header`), `${source}: header`);
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new InputError(`${source}: safetensors header is not a JSON object`);
  const data = buf.subarray(8 + hlen);
  const metadata: Record<string, string> = {};
  const specs: { name: string; dtype: SafeDType; shape: number[]; b: number; e: number }[] = [];
  for (const [name, spec] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new InputError(`${source}: __metadata__ is not an object`);
      for (const [k, v] of Object.entries(spec as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new InputError(`${source}: __metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${source}: tensor '${name}'`;
    const s = spec as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!s || typeof s !== 'object' || Array.isArray(s)) throw new InputError(`${where}: header entry is not an object`);
    if (typeof s.dtype !== 'string' || !(s.dtype in ELEM_BYTES)) throw new InputError(`${where}: unsupported dtype ${JSON.stringify(s.dtype)} (supported: ${Object.keys(ELEM_BYTES).join(', ')})`);
    if (!Array.isArray(s.shape) || s.shape.length > 64 || !s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new InputError(`${where}: bad shape ${JSON.stringify(s.shape)} (non-negative integers, rank <= 64)`);
    const off = s.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) throw new InputError(`${where}: bad data_offsets ${JSON.stringify(off)}`);
    const dtype = s.dtype as SafeDType;
    const shape = s.shape as number[];
    const [b, e] = off as [number, number];
    const bytes = checkedProduct([...shape, ELEM_BYTES[dtype]], where);
    if (e - b !== bytes) throw new InputError(`${where}: data_offsets [${b}, ${e}] span ${e - b} bytes but shape [${shape}] of ${dtype} needs ${bytes}`);
    if (e > data.byteLength) throw new InputError(`${where}: data ends at byte ${e} but the file holds only ${data.byteLength} data bytes (truncated file?)`);
    specs.push({ name, dtype, shape, b, e });
  }
  // the buffer is covered exactly: sorted by offset, each tensor starts where the previous ended
  const sorted = [...specs].sort((x, y) => x.b - y.b || x.e - y.e);
  let at = 0;
  for (const t of sorted) {
    if (t.b < at) throw new InputError(`${source}: tensor '${t.name}': data_offsets [${t.b}, ${t.e}] overlap the previous tensor (which ends at ${at})`);
    if (t.b > at) throw new InputError(`${source}: tensor '${t.name}': data_offsets [${t.b}, ${t.e}] leave a gap of ${t.b - at} bytes after byte ${at}`);
    at = t.e;
  }
  if (at !== data.byteLength) throw new InputError(`${source}: ${data.byteLength - at} trailing bytes after the last tensor (data ends at ${at}, the buffer holds ${data.byteLength})`);
  const tensors = new Map<string, HostTensor>();
  for (const t of specs) {
    const arr = decodeElements(data.subarray(t.b, t.e), t.dtype, checkedProduct(t.shape, t.name), `${source}: tensor '${t.name}'`);
    tensors.set(t.name, { dtype: arr instanceof Int32Array ? 'int32' : 'float32', shape: [...t.shape], data: arr });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsContent {
  let buf: Buffer;
  try { buf = readFileSync(path); } catch (e) { throw new Error(`${path}: cannot read safetensors file: ${(e as Error).message}`); }
  return parseSafetensors(buf, path);
}

/** Serialise tensors (float32 -> F32, int32 -> I32) and string metadata. Names are sorted. */
export function serializeSafetensors(tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new Error(`safetensors metadata '${k}' must be a string`);
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error(`safetensors: '__metadata__' is reserved and cannot name a tensor`);
    const numel = numelOf(t.shape);
    if (t.data.length !== numel) throw new Error(`safetensors: tensor '${name}' has ${t.data.length} elements but shape [${t.shape}] needs ${numel}`);
    let dtype: SafeDType;
    if (t.data instanceof Float32Array) dtype = 'F32';
    else if (t.data instanceof Int32Array) dtype = 'I32';
    else throw new Error(`safetensors: tensor '${name}' must be Float32Array or Int32Array to be written`);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + numel * 4] };
    offset += numel * 4;
  }
  let json = JSON.stringify(header);
  let hbytes = new TextEncoder().encode(json);
  const pad = (8 - (hbytes.byteLength % 8)) % 8;
  if (pad) { json += ' '.repeat(pad); hbytes = new TextEncoder().encode(json); }
  const out = new Uint8Array(8 + hbytes.byteLength + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hbytes.byteLength), true);
  out.set(hbytes, 8);
  let p = 8 + hbytes.byteLength;
  for (const [, t] of entries) {
    const n = t.data.length;
    if (t.data instanceof Float32Array) for (let i = 0; i < n; i++) dv.setFloat32(p + i * 4, t.data[i], true);
    else for (let i = 0; i < n; i++) dv.setInt32(p + i * 4, t.data[i], true);
    p += n * 4;
  }
  return out;
}

export function writeSafetensors(path: string, tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata: Record<string, string> = {}): void {
  try {
    writeFileAtomicSync(path, serializeSafetensors(tensors, metadata));
  } catch (e) {
    throw new Error(`${path}: cannot write file: ${(e as Error).message}`);
  }
}
