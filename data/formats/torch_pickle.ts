// Reader for PyTorch checkpoints, both `torch.save` formats:
//   zip (since 1.6; Lightning `.ckpt`): a zip archive holding `<archive>/data.pkl` (a pickle) and
//     `<archive>/data/<key>` (raw little-endian tensor storages); the central directory is read here (zip64
//     included); stored entries are read directly, deflated ones through node:zlib with the output capped at the
//     declared size; every entry read whole is checked against its CRC-32.
//   legacy (before 1.6, `_use_new_zipfile_serialization=False`): back-to-back pickles (magic number, protocol
//     1001, sys_info, the object), the sorted storage keys, then per key an int64 element count and the raw bytes.
// The pickle is read by a restricted unpickler that implements only the opcodes torch writes
// and resolves only a whitelist of globals into inert data: NOTHING in the file is ever executed or imported.
// Classes that Lightning/sacred/numpy leave beside the weights (callback classes as dict keys, config dicts, numpy
// scalars) are recorded as OpaqueObject (name + arguments), never constructed; any other global is refused.
// Does not: read the pre-0.4 tar format or storage views, or write checkpoints.
// Invariants: a global outside GLOBAL_WHITELIST raises an error naming it; every length, offset, shape, stride and
// storage size is checked (data/formats/bytes.ts) against the bytes that exist before anything is allocated, so memory
// is about the file plus the valid tensors; tensor data is read lazily (optimizer states in a Lightning
// checkpoint cost nothing unless asked for); every error names the file and, where it applies, the zip entry,
// the tensor or storage, and the byte offset.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';
import { ByteReader, InputError, checkedProduct, decodeUtf8 } from './bytes.ts';
import { decodeElements, type HostTensor, type SafeDType } from './safetensors.ts';

// ---------------------------------------------------------------------------------------------------------- zip

interface ZipEntry { name: string; method: number; compSize: number; size: number; localOffset: number; crc: number }

/** deflate's best ratio is about 1032:1; a declared size beyond it cannot be honest */
const MAX_DEFLATE_RATIO = 1032;

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private fd: number;
  readonly fileSize: number;

  constructor(readonly path: string) {
    try { this.fd = openSync(path, 'r'); } catch (e) { throw new InputError(`${path}: cannot open: ${(e as Error).message}`); }
    this.fileSize = fstatSync(this.fd).size;
    try { this.readCentralDirectory(); } catch (e) { this.close(); throw e; }
  }

  private read(pos: number, len: number, what: string): Buffer {
    if (!Number.isSafeInteger(pos) || pos < 0 || !Number.isSafeInteger(len) || len < 0 || pos + len > this.fileSize) {
      throw new InputError(`${this.path}: truncated or corrupt zip: ${what} needs ${len} bytes at offset ${pos}, the file has ${this.fileSize}`);
    }
    const b = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, b, got, len - got, pos + got);
      if (n === 0) throw new InputError(`${this.path}: truncated zip (wanted ${len} bytes at offset ${pos}, file has ${this.fileSize})`);
      got += n;
    }
    return b;
  }

  private readCentralDirectory(): void {
    if (this.fileSize < 22) throw new InputError(`${this.path}: not a zip archive (${this.fileSize} bytes)`);
    const tailLen = Math.min(this.fileSize, 65557);
    const tailAt = this.fileSize - tailLen;
    const tail = this.read(tailAt, tailLen, 'end of central directory');
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
    if (eocd < 0) throw new InputError(`${this.path}: not a zip archive (no end-of-central-directory record; truncated or not a torch.save file)`);
    const t = new ByteReader(tail, this.path, tailAt);
    t.pos = eocd + 10;
    let count = t.u16('EOCD entry count');
    let cdSize = t.u32('EOCD central directory size');
    let cdOffset = t.u32('EOCD central directory offset');
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locPos = tailAt + eocd - 20; // zip64 locator right before the EOCD
      const loc = new ByteReader(this.read(locPos, 20, 'zip64 locator'), this.path, locPos);
      if (loc.u32() !== 0x07064b50) throw loc.error('zip64 locator missing', 0);
      loc.pos = 8;
      const z64At = loc.u64('zip64 EOCD offset');
      const z = new ByteReader(this.read(z64At, 56, 'zip64 end-of-central-directory record'), this.path, z64At);
      if (z.u32() !== 0x06064b50) throw z.error('zip64 end-of-central-directory record missing', 0);
      z.pos = 32;
      count = z.u64('zip64 entry count'); cdSize = z.u64('zip64 central directory size'); cdOffset = z.u64('zip64 central directory offset');
    }
    if (count > cdSize / 46) throw new InputError(`${this.path}: corrupt zip: ${count} entries cannot fit in a ${cdSize}-byte central directory`);
    const cd = new ByteReader(this.read(cdOffset, cdSize, 'central directory'), this.path, cdOffset);
    for (let i = 0; i < count; i++) {
      const at = cd.pos;
      if (cd.u32(`central directory entry ${i}`) !== 0x02014b50) throw cd.error(`corrupt zip central directory (entry ${i} has no signature)`, at);
      cd.pos = at + 10;
      const method = cd.u16('compression method');
      cd.pos = at + 16;
      const crc = cd.u32('CRC-32');
      let compSize = cd.u32('compressed size');
      let size = cd.u32('size');
      const nlen = cd.u16('name length'), xlen = cd.u16('extra length'), clen = cd.u16('comment length');
      cd.pos = at + 42;
      let localOffset = cd.u32('local header offset');
      const name = cd.utf8(nlen, `entry ${i} name`);
      const x = new ByteReader(cd.take(xlen, `entry '${name}' extra field`), `${this.path}: entry '${name}' extra field`, cdOffset + cd.pos - xlen);
      cd.take(clen, `entry '${name}' comment`);
      // zip64 extended information extra field (id 1): present values replace the 0xffffffff ones, in order
      while (x.remaining >= 4) {
        const id = x.u16('extra id'), len = x.u16('extra length');
        const body = new ByteReader(x.take(len, 'extra field body'), x.source, x.base + x.pos - len);
        if (id === 1) {
          if (size === 0xffffffff) size = body.u64('zip64 size');
          if (compSize === 0xffffffff) compSize = body.u64('zip64 compressed size');
          if (localOffset === 0xffffffff) localOffset = body.u64('zip64 local header offset');
        }
      }
      if (this.entries.has(name)) throw new InputError(`${this.path}: corrupt zip: entry '${name}' appears twice`);
      if (localOffset + 30 + compSize > this.fileSize) throw new InputError(`${this.path}: truncated zip (entry '${name}' at ${localOffset} with ${compSize} compressed bytes runs past the ${this.fileSize}-byte file)`);
      if (method === 0 && compSize !== size) throw new InputError(`${this.path}: corrupt zip: stored entry '${name}' declares ${size} bytes but holds ${compSize}`);
      if (method === 8 && size > compSize * MAX_DEFLATE_RATIO + 1024) throw new InputError(`${this.path}: corrupt zip: entry '${name}' declares ${size} bytes, more than deflate can produce from ${compSize}`);
      this.entries.set(name, { name, method, compSize, size, localOffset, crc });
    }
  }

  /** Declared (uncompressed) size of an entry. */
  sizeOf(name: string): number | undefined { return this.entries.get(name)?.size; }

  /** Bytes of an entry, whole, CRC-checked; deflated entries are inflated with the output capped at the declared size. */
  readEntry(name: string): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new InputError(`${this.path}: zip entry '${name}' not found`);
    const lh = new ByteReader(this.read(e.localOffset, 30, `local header of '${name}'`), this.path, e.localOffset);
    if (lh.u32() !== 0x04034b50) throw lh.error(`corrupt local header for '${name}'`, 0);
    lh.pos = 26;
    const dataPos = e.localOffset + 30 + lh.u16() + lh.u16();
    const comp = this.read(dataPos, e.compSize, `data of entry '${name}'`);
    let out: Buffer;
    if (e.method === 0) out = comp;
    else if (e.method === 8) {
      try { out = inflateRawSync(comp, { maxOutputLength: Math.max(1, e.size) }); } catch (err) {
        const m = (err as Error).message;
        throw new InputError(`${this.path}: entry '${name}' ${/larger than|maxOutputLength|too large/i.test(m) ? `inflates to more than its declared ${e.size} bytes` : `is not valid deflate data (${m})`}`);
      }
      if (out.length !== e.size) throw new InputError(`${this.path}: entry '${name}' inflated to ${out.length} bytes, its header declares ${e.size}`);
    } else throw new InputError(`${this.path}: entry '${name}' uses unsupported zip compression method ${e.method}`);
    if ((crc32(out) >>> 0) !== e.crc) throw new InputError(`${this.path}: entry '${name}' fails its CRC-32 check (corrupt data)`);
    return out;
  }

  close(): void { if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; } }
}

// ------------------------------------------------------------------------------------------------------ pickle

/** A reference to a global the whitelist allows; it is only a name, never imported. */
export class PickleGlobal {
  /** inert: a class/function known to appear around the weights in Lightning checkpoints; only recorded */
  constructor(readonly module: string, readonly name: string, readonly inert = false) {}
  get full() { return `${this.module}.${this.name}`; }
}

/**
 * What REDUCE / NEWOBJ of an inert global yields: nothing is constructed or called; the global's name, its
 * arguments, dict items, list items and BUILD state are only recorded (dict subclasses such as sacred's
 * ReadOnlyDict keep their items in the Map).
 */
export class OpaqueObject extends Map<unknown, unknown> {
  readonly items: unknown[] = [];
  state: unknown = undefined;
  constructor(readonly global: PickleGlobal, readonly args: readonly unknown[]) { super(); }
}

const STORAGE_DTYPES: Record<string, { dtype: SafeDType | 'U8' | 'I8' | 'I16' | 'BOOL'; bytes: number }> = {
  FloatStorage: { dtype: 'F32', bytes: 4 }, DoubleStorage: { dtype: 'F64', bytes: 8 }, HalfStorage: { dtype: 'F16', bytes: 2 },
  BFloat16Storage: { dtype: 'BF16', bytes: 2 }, IntStorage: { dtype: 'I32', bytes: 4 }, LongStorage: { dtype: 'I64', bytes: 8 },
  ShortStorage: { dtype: 'I16', bytes: 2 }, CharStorage: { dtype: 'I8', bytes: 1 }, ByteStorage: { dtype: 'U8', bytes: 1 },
  BoolStorage: { dtype: 'BOOL', bytes: 1 },
};

/**
 * Globals recorded inertly (never called): Lightning callback classes used as dict keys, sacred's config
 * containers, numpy scalars (and the _codecs.encode their bytes go through), copyreg's reconstructor.
 * They occur beside the weights in the original checkpoints; a tensor is never built from them.
 */
export const INERT_GLOBAL_PREFIXES: readonly string[] = [
  'pytorch_lightning.', 'lightning_fabric.', 'lightning.', 'sacred.', 'numpy.', '_codecs.encode', 'copyreg._reconstructor', 'builtins.object',
];

/** Globals resolved into inert values. Anything else (and not inert) is refused. */
export const GLOBAL_WHITELIST: readonly string[] = [
  'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor', 'torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state',
  'collections.OrderedDict',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
  // Lightning hyper-parameters / argparse namespaces: plain attribute containers, read as dicts
  'pytorch_lightning.utilities.parsing.AttributeDict', 'argparse.Namespace',
  // torch.Size and the device object reduce to plain values
  'torch.Size', 'torch.device', 'builtins.set', 'builtins.frozenset', 'builtins.slice',
];

/** A storage record from the persistent id ('storage', <type>, key, location, numel). */
export interface StorageRef { key: string; dtype: string; bytes: number; numel: number }

/** How many times over the tensors of a state dict may view one storage (readTorchStateDict). */
const SHARED_VIEW_LIMIT = 4;

/** Highest tensor rank accepted. */
const MAX_RANK = 64;

/** A tensor as described by the pickle; data is read on demand. */
export class TorchTensor {
  constructor(
    readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[],
    readonly requiresGrad: boolean, private readonly load: (s: StorageRef) => Buffer,
  ) {}
  get numel(): number { return this.shape.reduce((a, b) => a * b, 1); }

  /**
   * Checks, before anything is read or allocated: shape and stride are non-negative integers of the same rank,
   * the offset is a non-negative integer, every element lies inside the storage, and the tensor has no more
   * elements than its storage (expanded / overlapping views are not read). Returns [numel, last element + 1].
   */
  validate(where: string): { numel: number; extent: number } {
    const st = this.storage, { shape, stride, offset } = this;
    if (shape.length > MAX_RANK) throw new InputError(`${where}: rank ${shape.length} exceeds ${MAX_RANK}`);
    if (stride.length !== shape.length) throw new InputError(`${where}: stride [${stride.join(', ')}] has rank ${stride.length}, shape [${shape.join(', ')}] has rank ${shape.length}`);
    if (!stride.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new InputError(`${where}: stride [${stride.join(', ')}] must be non-negative integers`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new InputError(`${where}: storage offset ${offset} must be a non-negative integer`);
    const numel = checkedProduct(shape, `${where}: shape`);
    if (numel === 0) return { numel, extent: offset };
    let last = offset;
    for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
    if (!Number.isSafeInteger(last) || last >= st.numel) throw new InputError(`${where}: shape [${shape.join(', ')}] with stride [${stride.join(', ')}] at offset ${offset} reaches element ${last} of storage '${st.key}', which holds ${st.numel}`);
    if (numel > st.numel) throw new InputError(`${where}: ${numel} elements view a storage '${st.key}' of only ${st.numel} (expanded or overlapping strides are not read)`);
    return { numel, extent: last + 1 };
  }

  /** Materialise as a contiguous float32 / int32 host tensor (strides honoured). `where` names it in errors. */
  toHost(where: string): HostTensor {
    const st = this.storage;
    const { numel: n, extent } = this.validate(where);
    const raw = this.load(st);
    if (raw.length !== st.numel * st.bytes) throw new InputError(`${where}: storage '${st.key}' holds ${raw.length} bytes, ${st.numel * st.bytes} expected (truncated file?)`);
    // only the elements [offset, extent) are decoded
    const lo = Math.min(this.offset, extent), cnt = extent - lo;
    const span = raw.subarray(lo * st.bytes, extent * st.bytes);
    let decoded: Float32Array | Int32Array;
    switch (st.dtype) {
      case 'U8': case 'BOOL': decoded = Int32Array.from(span); break;
      case 'I8': decoded = Int32Array.from(new Int8Array(span.buffer, span.byteOffset, cnt)); break;
      case 'I16': { const o = new Int32Array(cnt); for (let i = 0; i < cnt; i++) o[i] = span.readInt16LE(2 * i); decoded = o; break; }
      default: decoded = decodeElements(span, st.dtype as SafeDType, cnt, where);
    }
    const nd = this.shape.length;
    const out = decoded instanceof Float32Array ? new Float32Array(n) : new Int32Array(n);
    const idx = new Array(nd).fill(0);
    let src = this.offset - lo;
    for (let i = 0; i < n; i++) {
      out[i] = decoded[src];
      for (let d = nd - 1; d >= 0; d--) {
        idx[d]++; src += this.stride[d];
        if (idx[d] < this.shape[d]) break;
        src -= this.stride[d] * this.shape[d]; idx[d] = 0;
      }
    }
    return { dtype: out instanceof Float32Array ? 'float32' : 'int32', shape: [...this.shape], data: out };
  }
}

const MARK = Symbol('mark');

/** Longest LONG1/LONG4 integer read (bytes): torch writes at most 10 (the legacy magic number). */
const MAX_LONG_BYTES = 64;

/**
 * Unpickle `data` without executing anything. Dicts become Map (keys may be numbers), lists arrays, tuples
 * frozen arrays, tensors TorchTensor. `persistentLoad` maps a persistent id to a value (torch storages).
 */
export function unpickle(data: Uint8Array, source: string, persistentLoad: (pid: unknown) => unknown): unknown {
  const r = new ByteReader(data, `${source}: pickle`);
  const v = unpickleFrom(r, persistentLoad);
  return v;
}

/**
 * Unpickle one pickle starting at `r.pos`; on return `r.pos` is just past its STOP opcode (the legacy torch.save
 * format holds several pickles back to back). Every length is checked against the bytes that exist before use.
 */
export function unpickleFrom(r: ByteReader, persistentLoad: (pid: unknown) => unknown): unknown {
  const buf = r.bytes;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let opAt = r.pos;
  const err = (msg: string) => r.error(msg, opAt);
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw err('MARK expected');
    const items = stack.splice(m);
    return items;
  };
  const pop = () => { if (!stack.length) throw err('stack underflow'); return stack.pop(); };
  const top = () => { if (!stack.length) throw err('stack underflow'); return stack[stack.length - 1]; };
  const resolveGlobal = (module: string, name: string): PickleGlobal => {
    const full = `${module}.${name}`;
    if (GLOBAL_WHITELIST.includes(full)) return new PickleGlobal(module, name);
    if (INERT_GLOBAL_PREFIXES.some((p) => full === p || (p.endsWith('.') && full.startsWith(p)))) return new PickleGlobal(module, name, true);
    throw err(`refusing global '${full}': only torch tensors, storages and plain containers are read (whitelist: ${GLOBAL_WHITELIST.join(', ')}; recorded inertly: ${INERT_GLOBAL_PREFIXES.join(', ')})`);
  };
  const setItem = (d: unknown, k: unknown, v: unknown) => {
    if (!(d instanceof Map)) throw err(`SETITEM on a non-dict (${typeof d})`);
    d.set(k, v);
  };
  const reduce = (g: unknown, args: unknown): unknown => {
    if (!(g instanceof PickleGlobal)) throw err('REDUCE on something that is not a whitelisted global');
    if (!Array.isArray(args)) throw err(`REDUCE of ${g.full} without an argument tuple`);
    if (g.inert) return new OpaqueObject(g, args);
    switch (g.full) {
      case 'torch._utils._rebuild_tensor_v2': case 'torch._utils._rebuild_tensor': {
        const [storage, offset, size, stride, requiresGrad] = args as [unknown, unknown, unknown, unknown, unknown];
        if (!(storage instanceof StorageHolder)) throw err(`${g.name} without a storage`);
        const ints = (v: unknown, what: string): number[] => {
          if (!Array.isArray(v) || v.length > MAX_RANK || !v.every((d) => typeof d === 'number')) throw err(`${g.name}: ${what} is not a list of at most ${MAX_RANK} integers`);
          return v as number[];
        };
        if (typeof offset !== 'number') throw err(`${g.name}: storage offset is not an integer`);
        return new TorchTensor(storage.ref, offset, [...ints(size, 'size')], [...ints(stride, 'stride')], !!requiresGrad, storage.load);
      }
      case 'torch._utils._rebuild_parameter': case 'torch._utils._rebuild_parameter_with_state': {
        const [t] = args;
        if (!(t instanceof TorchTensor)) throw err('_rebuild_parameter without a tensor');
        return t;
      }
      case 'collections.OrderedDict': case 'pytorch_lightning.utilities.parsing.AttributeDict': case 'argparse.Namespace': {
        const m = new Map<unknown, unknown>();
        const init = args[0];
        if (Array.isArray(init)) for (const kv of init) if (Array.isArray(kv) && kv.length === 2) m.set(kv[0], kv[1]);
        return m;
      }
      case 'torch.Size': if (!Array.isArray(args[0])) throw err('torch.Size without a tuple'); return Object.freeze([...(args[0] as number[])]);
      case 'torch.device': return `device(${args.map(String).join(':')})`;
      case 'builtins.set': case 'builtins.frozenset': return new Set(Array.isArray(args[0]) ? args[0] : []);
      case 'builtins.slice': return { slice: args };
      default: return new OpaqueObject(g, args);
    }
  };
  const readLong = (n: number): number | bigint => {
    if (n > MAX_LONG_BYTES) throw err(`LONG of ${n} bytes (at most ${MAX_LONG_BYTES} are read; torch writes at most 10)`);
    const b = r.take(n, 'LONG bytes');
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const str = (n: number, enc: 'utf8' | 'latin1', what: string): string => (enc === 'utf8' ? r.utf8(n, what) : Buffer.from(r.take(n, what)).toString('latin1'));

  for (;;) {
    opAt = r.pos;
    const op = r.u8('pickle opcode (no STOP: truncated pickle)');
    switch (op) {
      case 0x80: r.u8('PROTO version'); break; // PROTO
      case 0x95: r.i64('FRAME length'); break; // FRAME (length only)
      case 0x2e: { // STOP
        if (stack.length !== 1) throw err(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const nl1 = buf.indexOf(0x0a, r.pos); if (nl1 < 0) throw err('truncated GLOBAL');
        const module = r.utf8(nl1 - r.pos, 'GLOBAL module'); r.pos++;
        const nl2 = buf.indexOf(0x0a, r.pos); if (nl2 < 0) throw err('truncated GLOBAL');
        const name = r.utf8(nl2 - r.pos, 'GLOBAL name'); r.pos++;
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x93: { const name = pop(), module = pop(); stack.push(resolveGlobal(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x71: { const k = r.u8('BINPUT index'); memo.set(k, top()); break; } // BINPUT
      case 0x72: { const k = r.u32('LONG_BINPUT index'); memo.set(k, top()); break; } // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: { const k = r.u8('BINGET index'); if (!memo.has(k)) throw err(`BINGET of unknown memo ${k}`); stack.push(memo.get(k)); break; }
      case 0x6a: { const k = r.u32('LONG_BINGET index'); if (!memo.has(k)) throw err(`LONG_BINGET of unknown memo ${k}`); stack.push(memo.get(k)); break; }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(Object.freeze([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(Object.freeze(popMark())); break; // TUPLE
      case 0x85: stack.push(Object.freeze([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(Object.freeze([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(Object.freeze([a, b, c])); break; } // TUPLE3
      case 0x64: { const items = popMark(); const m = new Map(); for (let i = 0; i + 1 < items.length; i += 2) m.set(items[i], items[i + 1]); stack.push(m); break; } // DICT
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x73: { const v = pop(), k = pop(); setItem(top(), k, v); break; } // SETITEM
      case 0x75: { const items = popMark(); const d = top(); for (let i = 0; i + 1 < items.length; i += 2) setItem(d, items[i], items[i + 1]); break; } // SETITEMS
      case 0x61: { const v = pop(); const l = top(); if (l instanceof OpaqueObject) l.items.push(v); else if (Array.isArray(l) && !Object.isFrozen(l)) l.push(v); else throw err('APPEND on a non-list'); break; } // APPEND
      case 0x65: { const items = popMark(); const l = top(); const into = l instanceof OpaqueObject ? l.items : Array.isArray(l) && !Object.isFrozen(l) ? l : null; if (!into) throw err('APPENDS on a non-list'); for (const x of items) into.push(x); break; } // APPENDS
      case 0x4a: stack.push(r.i32('BININT')); break; // BININT
      case 0x4b: stack.push(r.u8('BININT1')); break; // BININT1
      case 0x4d: stack.push(r.u16('BININT2')); break; // BININT2
      case 0x8a: stack.push(readLong(r.u8('LONG1 length'))); break; // LONG1
      case 0x8b: stack.push(readLong(r.length32('LONG4 length'))); break; // LONG4 (a negative length is refused)
      case 0x47: stack.push(r.f64be('BINFLOAT')); break; // BINFLOAT
      case 0x58: stack.push(str(r.length32('BINUNICODE length', false), 'utf8', 'BINUNICODE')); break; // BINUNICODE
      case 0x8c: stack.push(str(r.u8('SHORT_BINUNICODE length'), 'utf8', 'SHORT_BINUNICODE')); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(r.u64('BINUNICODE8 length'), 'utf8', 'BINUNICODE8')); break; // BINUNICODE8
      case 0x55: stack.push(str(r.u8('SHORT_BINSTRING length'), 'latin1', 'SHORT_BINSTRING')); break; // SHORT_BINSTRING
      case 0x54: stack.push(str(r.length32('BINSTRING length'), 'latin1', 'BINSTRING')); break; // BINSTRING (a negative length is refused)
      case 0x43: stack.push(Uint8Array.from(r.take(r.u8('SHORT_BINBYTES length'), 'SHORT_BINBYTES'))); break; // SHORT_BINBYTES
      case 0x42: stack.push(Uint8Array.from(r.take(r.length32('BINBYTES length', false), 'BINBYTES'))); break; // BINBYTES
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4e: stack.push(null); break; // NONE
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x52: { const args = pop(), g = pop(); stack.push(reduce(g, args)); break; } // REDUCE
      case 0x81: { const args = pop(), g = pop(); stack.push(reduce(g, args)); break; } // NEWOBJ (same inert treatment)
      case 0x62: { // BUILD: state onto the object; dicts get the items, everything else keeps the state inertly
        const state = pop(); const obj = top();
        if (obj instanceof OpaqueObject) obj.state = state;
        else if (obj instanceof Map && state instanceof Map) for (const [k, v] of state) obj.set(k, v);
        else if (obj instanceof TorchTensor || (obj !== null && typeof obj === 'object')) { /* tensor hooks / object state: ignored, never applied */ }
        else throw err('BUILD on a non-object');
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      default:
        throw err(`unsupported pickle opcode 0x${op.toString(16)} (not one torch.save writes)`);
    }
  }
}

class StorageHolder { constructor(readonly ref: StorageRef, readonly load: (s: StorageRef) => Buffer) {} }

export interface TorchCheckpoint {
  /** the unpickled top-level object */
  root: unknown;
  /** archive prefix inside the zip (e.g. 'archive' or the saved file's stem); '' for the legacy format */
  prefix: string;
  close(): void;
}

/** The persistent-id loader shared by both formats: checks the storage record, then `make` builds the holder. */
function storagePid(path: string, pid: unknown, legacy: boolean, make: (ref: StorageRef) => StorageHolder): StorageHolder {
  const n = legacy ? 6 : 5;
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length !== n) throw new InputError(`${path}: unsupported persistent id ${describe(pid)} (expected ('storage', type, key, location, numel${legacy ? ', view' : ''}))`);
  const [, type, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
  if (typeof key !== 'string') throw new InputError(`${path}: storage key ${describe(key)} is not a string`);
  if (!(type instanceof PickleGlobal) || !(type.name in STORAGE_DTYPES)) throw new InputError(`${path}: storage '${key}' has unsupported type ${type instanceof PickleGlobal ? type.full : describe(type)}`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw new InputError(`${path}: storage '${key}' has an invalid element count ${describe(numel)}`);
  if (legacy && pid[5] !== null) throw new InputError(`${path}: storage '${key}' is a storage view (torch < 0.4), which is not read`);
  const d = STORAGE_DTYPES[type.name];
  return make({ key, dtype: d.dtype, bytes: d.bytes, numel });
}

/** Open a torch.save zip file and unpickle its data.pkl (tensor data stays in the file until toHost). */
export function readTorchZip(path: string): TorchCheckpoint {
  const zip = new ZipReader(path);
  try {
    const pkl = [...zip.entries.keys()].find((n) => n.endsWith('/data.pkl') && n.split('/').length === 2) ?? (zip.entries.has('data.pkl') ? 'data.pkl' : undefined);
    if (!pkl) throw new InputError(`${path}: zip archive without data.pkl: not a PyTorch checkpoint`);
    const prefix = pkl.slice(0, -'data.pkl'.length);
    if (zip.entries.has(`${prefix}byteorder`)) {
      const bo = decodeUtf8(zip.readEntry(`${prefix}byteorder`), `${path}: ${prefix}byteorder`).trim();
      if (bo !== 'little') throw new InputError(`${path}: storages are ${bo}-endian; only little-endian is supported`);
    }
    const cache = new Map<string, Buffer>();
    const load = (s: StorageRef): Buffer => {
      let b = cache.get(s.key);
      if (!b) { b = zip.readEntry(`${prefix}data/${s.key}`); cache.set(s.key, b); }
      return b;
    };
    const persistentLoad = (pid: unknown): unknown => storagePid(path, pid, false, (ref) => {
      const entry = `${prefix}data/${ref.key}`;
      const size = zip.sizeOf(entry);
      if (size === undefined) throw new InputError(`${path}: storage '${ref.key}' has no zip entry '${entry}'`);
      if (size !== ref.numel * ref.bytes) throw new InputError(`${path}: storage '${ref.key}' declares ${ref.numel} elements (${ref.numel * ref.bytes} bytes) but its entry holds ${size} bytes`);
      return new StorageHolder(ref, load);
    });
    const root = unpickle(zip.readEntry(pkl), `${path}:${pkl}`, persistentLoad);
    return { root, prefix, close: () => { cache.clear(); zip.close(); } };
  } catch (e) {
    zip.close();
    throw e;
  }
}

/** The number the legacy format's first pickle holds. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** True when the bytes start like a legacy torch.save file (PROTO 2, LONG1 of 10 bytes: the magic number). */
export function isLegacyTorch(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a && head[3] === 0x0a;
}

/**
 * Read a legacy (pre-zip) torch.save file: magic number, protocol 1001, sys_info (little-endian required), the
 * object pickle, the storage keys, then each storage as an int64 element count and its bytes. The file is read
 * whole (these files are small); every storage's count and bytes are checked before tensors can use them.
 */
export function readTorchLegacy(path: string): TorchCheckpoint {
  let bytes: Buffer;
  try { bytes = readFileSync(path); } catch (e) { throw new InputError(`${path}: cannot read: ${(e as Error).message}`); }
  const r = new ByteReader(bytes, `${path}: legacy torch.save`);
  const none = (pid: unknown): unknown => { throw r.error(`unexpected persistent id ${describe(pid)} outside the object pickle`); };
  const magic = unpickleFrom(r, none);
  if (magic !== LEGACY_MAGIC) throw new InputError(`${path}: not a torch.save file (first pickle is ${describe(magic)}, not the magic number)`);
  const proto = unpickleFrom(r, none);
  if (proto !== 1001) throw new InputError(`${path}: unsupported legacy torch.save protocol ${describe(proto)} (1001 is read)`);
  const sys = unpickleFrom(r, none);
  if (!(sys instanceof Map)) throw new InputError(`${path}: legacy torch.save sys_info is ${describe(sys)}, not a dict`);
  if (sys.get('little_endian') !== true) throw new InputError(`${path}: storages are big-endian; only little-endian is supported`);
  const refs = new Map<string, StorageRef>();
  const offsets = new Map<string, number>();
  const load = (s: StorageRef): Buffer => {
    const at = offsets.get(s.key);
    if (at === undefined) throw new InputError(`${path}: storage '${s.key}' has no data`);
    return bytes.subarray(at, at + s.numel * s.bytes);
  };
  const root = unpickleFrom(r, (pid) => storagePid(path, pid, true, (ref) => {
    const seen = refs.get(ref.key);
    if (seen && (seen.dtype !== ref.dtype || seen.numel !== ref.numel)) throw new InputError(`${path}: storage '${ref.key}' is declared twice with different types or sizes`);
    refs.set(ref.key, ref);
    return new StorageHolder(ref, load);
  }));
  const keys = unpickleFrom(r, none);
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new InputError(`${path}: legacy torch.save storage keys are ${describe(keys)}, not a list of strings`);
  for (const key of keys as string[]) {
    const ref = refs.get(key);
    if (!ref) throw new InputError(`${path}: storage '${key}' is listed but no tensor uses it`);
    if (offsets.has(key)) throw new InputError(`${path}: storage '${key}' is listed twice`);
    const at = r.pos;
    const n = r.i64(`element count of storage '${key}'`);
    if (n !== ref.numel) throw r.error(`storage '${key}' holds ${n} elements, the pickle declares ${ref.numel}`, at);
    offsets.set(key, r.pos);
    r.take(n * ref.bytes, `data of storage '${key}'`);
  }
  for (const key of refs.keys()) if (!offsets.has(key)) throw new InputError(`${path}: storage '${key}' is used by a tensor but has no data`);
  if (r.remaining) throw r.error(`${r.remaining} trailing bytes after the last storage`);
  return { root, prefix: '', close: () => undefined };
}

/** Open a torch.save file of either format (zip or legacy), by its first bytes. */
export function readTorchFile(path: string): TorchCheckpoint {
  const head = Buffer.alloc(4);
  let fd = -1, n = 0;
  try { fd = openSync(path, 'r'); n = readSync(fd, head, 0, 4, 0); } catch (e) { throw new InputError(`${path}: cannot read: ${(e as Error).message}`); } finally { if (fd >= 0) closeSync(fd); }
  return isLegacyTorch(head.subarray(0, n)) ? readTorchLegacy(path) : readTorchZip(path);
}

/**
 * Read the weights of a torch checkpoint (zip or legacy): a Lightning checkpoint's `state_dict`, or a bare state
 * dict. Non-tensor entries are skipped. Returns host tensors (float32 / int32).
 */
export function readTorchStateDict(path: string): Map<string, HostTensor> {
  const ck = readTorchFile(path);
  try {
    let sd: unknown = ck.root;
    if (sd instanceof Map && sd.has('state_dict')) sd = sd.get('state_dict');
    if (!(sd instanceof Map)) throw new InputError(`${path}: checkpoint holds no state dict (top level is ${describe(ck.root)})`);
    const out = new Map<string, HostTensor>();
    // shared storages: the tensors viewing one storage may hold at most SHARED_VIEW_LIMIT times its elements (tied
    // weights view a storage twice), so a small file cannot expand one storage into gigabytes of copies
    const viewed = new Map<string, number>();
    for (const [k, v] of sd) {
      if (!(v instanceof TorchTensor)) continue;
      const where = `${path}: tensor '${String(k)}'`;
      const { numel } = v.validate(where);
      const total = (viewed.get(v.storage.key) ?? 0) + numel;
      if (total > SHARED_VIEW_LIMIT * v.storage.numel + 1024) throw new InputError(`${where}: the tensors viewing storage '${v.storage.key}' hold ${total} elements, more than ${SHARED_VIEW_LIMIT}x its ${v.storage.numel} (refused: copies of shared views)`);
      viewed.set(v.storage.key, total);
    }
    for (const [k, v] of sd) if (v instanceof TorchTensor) out.set(String(k), v.toHost(`${path}: tensor '${String(k)}'`));
    if (out.size === 0) throw new InputError(`${path}: the state dict holds no tensors`);
    return out;
  } finally {
    ck.close();
  }
}

function describe(v: unknown): string {
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 40));
  if (v instanceof Map) return `a dict with keys ${[...v.keys()].slice(0, 8).map(String).join(', ')}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  return typeof v;
}
