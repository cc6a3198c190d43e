// Reader for PyTorch zip checkpoints (`torch.save` since 1.6; Lightning `.ckpt`): a zip archive holding
// `<archive>/data.pkl` (a pickle) and `<archive>/data/<key>` (raw little-endian tensor storages).
// The zip central directory is read here (zip64 included); stored entries are read directly, deflated ones
// through node:zlib. The pickle is read by a restricted unpickler that implements only the opcodes torch writes
// and resolves only a whitelist of globals into inert data: NOTHING in the file is ever executed or imported.
// Classes that Lightning/sacred/numpy leave beside the weights (callback classes as dict keys, config dicts, numpy
// scalars) are recorded as OpaqueObject (name + arguments), never constructed; any other global is refused.
// Does not: read the legacy (pre-1.6, tar/raw-pickle) format, or write checkpoints.
// Invariants: a global outside GLOBAL_WHITELIST raises an error naming it; tensor data is read lazily from the
// zip (optimizer states in a Lightning checkpoint cost nothing unless asked for); every error names the file.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { decodeElements, type HostTensor, type SafeDType } from './safetensors.ts';

// ---------------------------------------------------------------------------------------------------------- zip

interface ZipEntry { name: string; method: number; compSize: number; size: number; localOffset: number }

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private fd: number;
  readonly fileSize: number;

  constructor(readonly path: string) {
    try { this.fd = openSync(path, 'r'); } catch (e) { throw new Error(`${path}: cannot open: ${(e as Error).message}`); }
    this.fileSize = fstatSync(this.fd).size;
    try { this.readCentralDirectory(); } catch (e) { this.close(); throw e; }
  }

  private read(pos: number, len: number): Buffer {
    const b = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, b, got, len - got, pos + got);
      if (n === 0) throw new Error(`${this.path}: truncated zip (wanted ${len} bytes at offset ${pos}, file has ${this.fileSize})`);
      got += n;
    }
    return b;
  }

  private readCentralDirectory(): void {
    const tailLen = Math.min(this.fileSize, 65557);
    if (this.fileSize < 22) throw new Error(`${this.path}: not a zip archive (${this.fileSize} bytes)`);
    const tail = this.read(this.fileSize - tailLen, tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
    if (eocd < 0) throw new Error(`${this.path}: not a zip archive (no end-of-central-directory record; truncated or not a torch.save file)`);
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      // zip64: locator right before the EOCD
      const locPos = this.fileSize - tailLen + eocd - 20;
      const loc = this.read(locPos, 20);
      if (loc.readUInt32LE(0) !== 0x07064b50) throw new Error(`${this.path}: zip64 locator missing`);
      const z64 = this.read(Number(loc.readBigUInt64LE(8)), 56);
      if (z64.readUInt32LE(0) !== 0x06064b50) throw new Error(`${this.path}: zip64 end-of-central-directory record missing`);
      count = Number(z64.readBigUInt64LE(32));
      cdSize = Number(z64.readBigUInt64LE(40));
      cdOffset = Number(z64.readBigUInt64LE(48));
    }
    if (cdOffset + cdSize > this.fileSize) throw new Error(`${this.path}: truncated zip (central directory at ${cdOffset}+${cdSize} beyond ${this.fileSize} bytes)`);
    const cd = this.read(cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`${this.path}: corrupt zip central directory at entry ${i}`);
      const method = cd.readUInt16LE(p + 10);
      let compSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nlen = cd.readUInt16LE(p + 28), xlen = cd.readUInt16LE(p + 30), clen = cd.readUInt16LE(p + 32);
      let localOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nlen);
      // zip64 extended information extra field (id 1): present values replace the 0xffffffff ones, in order
      let x = p + 46 + nlen;
      const xend = x + xlen;
      while (x + 4 <= xend) {
        const id = cd.readUInt16LE(x), len = cd.readUInt16LE(x + 2);
        if (id === 1) {
          let q = x + 4;
          if (size === 0xffffffff) { size = Number(cd.readBigUInt64LE(q)); q += 8; }
          if (compSize === 0xffffffff) { compSize = Number(cd.readBigUInt64LE(q)); q += 8; }
          if (localOffset === 0xffffffff) { localOffset = Number(cd.readBigUInt64LE(q)); q += 8; }
        }
        x += 4 + len;
      }
      this.entries.set(name, { name, method, compSize, size, localOffset });
      p += 46 + nlen + xlen + clen;
    }
  }

  /** Bytes of an entry (whole, or `len` bytes from `start` for stored entries). */
  readEntry(name: string, start = 0, len?: number): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.path}: zip entry '${name}' not found`);
    const lh = this.read(e.localOffset, 30);
    if (lh.readUInt32LE(0) !== 0x04034b50) throw new Error(`${this.path}: corrupt local header for '${name}'`);
    const dataPos = e.localOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    if (dataPos + e.compSize > this.fileSize) throw new Error(`${this.path}: truncated zip (entry '${name}' ends at ${dataPos + e.compSize}, file has ${this.fileSize} bytes)`);
    const want = len ?? e.size - start;
    if (start < 0 || start + want > e.size) throw new Error(`${this.path}: entry '${name}' has ${e.size} bytes, asked for ${want} at ${start}`);
    if (e.method === 0) return this.read(dataPos + start, want);
    if (e.method === 8) {
      const all = inflateRawSync(this.read(dataPos, e.compSize));
      if (all.length !== e.size) throw new Error(`${this.path}: entry '${name}' inflated to ${all.length} bytes, expected ${e.size}`);
      return all.subarray(start, start + want);
    }
    throw new Error(`${this.path}: entry '${name}' uses unsupported zip compression method ${e.method}`);
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
  'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state',
  'collections.OrderedDict',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
  // Lightning hyper-parameters / argparse namespaces: plain attribute containers, read as dicts
  'pytorch_lightning.utilities.parsing.AttributeDict', 'argparse.Namespace',
  // torch.Size and the device object reduce to plain values
  'torch.Size', 'torch.device', 'builtins.set', 'builtins.frozenset', 'builtins.slice',
];

/** A storage record from the persistent id ('storage', <type>, key, location, numel). */
export interface StorageRef { key: string; dtype: string; bytes: number; numel: number }

/** A tensor as described by the pickle; data is read on demand. */
export class TorchTensor {
  constructor(
    readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[],
    readonly requiresGrad: boolean, private readonly load: (s: StorageRef) => Buffer,
  ) {}
  get numel(): number { return this.shape.reduce((a, b) => a * b, 1); }
  /** Materialise as a contiguous float32 / int32 host tensor (strides honoured). `where` names it in errors. */
  toHost(where: string): HostTensor {
    const st = this.storage;
    let decoded: Float32Array | Int32Array;
    const raw = this.load(st);
    if (raw.length < st.numel * st.bytes) throw new Error(`${where}: storage '${st.key}' holds ${raw.length} bytes, ${st.numel * st.bytes} expected (truncated file?)`);
    switch (st.dtype) {
      case 'U8': case 'BOOL': decoded = Int32Array.from(raw.subarray(0, st.numel)); break;
      case 'I8': decoded = Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, st.numel)); break;
      case 'I16': { const o = new Int32Array(st.numel); for (let i = 0; i < st.numel; i++) o[i] = raw.readInt16LE(2 * i); decoded = o; break; }
      default: decoded = decodeElements(raw, st.dtype as SafeDType, st.numel, where);
    }
    const n = this.numel, nd = this.shape.length;
    const out = decoded instanceof Float32Array ? new Float32Array(n) : new Int32Array(n);
    const idx = new Array(nd).fill(0);
    let src = this.offset;
    for (let i = 0; i < n; i++) {
      if (src < 0 || src >= st.numel) throw new Error(`${where}: element ${i} reads storage index ${src} outside its ${st.numel} elements`);
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

/**
 * Unpickle `data` without executing anything. Dicts become Map (keys may be numbers), lists arrays, tuples
 * frozen arrays, tensors TorchTensor. `persistentLoad` maps a persistent id to a value (torch storages).
 */
export function unpickle(data: Uint8Array, source: string, persistentLoad: (pid: unknown) => unknown): unknown {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const err = (msg: string) => new Error(`${source}: pickle at byte ${p}: ${msg}`);
  const need = (n: number) => { if (p + n > buf.length) throw err('truncated pickle'); };
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
      case 'torch._utils._rebuild_tensor_v2': {
        const [storage, offset, size, stride, requiresGrad] = args as [unknown, number, number[], number[], boolean];
        if (!(storage instanceof StorageHolder)) throw err('_rebuild_tensor_v2 without a storage');
        return new TorchTensor(storage.ref, Number(offset), [...size].map(Number), [...stride].map(Number), !!requiresGrad, storage.load);
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
      case 'torch.Size': return Object.freeze([...(args[0] as number[])]);
      case 'torch.device': return `device(${args.map(String).join(':')})`;
      case 'builtins.set': case 'builtins.frozenset': return new Set(Array.isArray(args[0]) ? args[0] : []);
      case 'builtins.slice': return { slice: args };
      default: return new OpaqueObject(g, args);
    }
  };
  const readLong = (n: number): number | bigint => {
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[p + i]);
    if (buf[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    need(1);
    const op = buf[p++];
    switch (op) {
      case 0x80: need(1); p += 1; break; // PROTO
      case 0x95: need(8); p += 8; break; // FRAME (length only)
      case 0x2e: { // STOP
        if (stack.length !== 1) throw err(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const nl1 = buf.indexOf(0x0a, p); if (nl1 < 0) throw err('truncated GLOBAL');
        const nl2 = buf.indexOf(0x0a, nl1 + 1); if (nl2 < 0) throw err('truncated GLOBAL');
        const module = buf.toString('utf8', p, nl1), name = buf.toString('utf8', nl1 + 1, nl2);
        p = nl2 + 1;
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x93: { const name = pop(), module = pop(); stack.push(resolveGlobal(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x71: need(1); memo.set(buf[p], top()); p += 1; break; // BINPUT
      case 0x72: need(4); memo.set(buf.readUInt32LE(p), top()); p += 4; break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: { need(1); const k = buf[p]; p += 1; if (!memo.has(k)) throw err(`BINGET of unknown memo ${k}`); stack.push(memo.get(k)); break; }
      case 0x6a: { need(4); const k = buf.readUInt32LE(p); p += 4; if (!memo.has(k)) throw err(`LONG_BINGET of unknown memo ${k}`); stack.push(memo.get(k)); break; }
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
      case 0x61: { const v = pop(); const l = top(); if (l instanceof OpaqueObject) l.items.push(v); else if (Array.isArray(l)) l.push(v); else throw err('APPEND on a non-list'); break; } // APPEND
      case 0x65: { const items = popMark(); const l = top(); if (l instanceof OpaqueObject) l.items.push(...items); else if (Array.isArray(l)) l.push(...items); else throw err('APPENDS on a non-list'); break; } // APPENDS
      case 0x4a: need(4); stack.push(buf.readInt32LE(p)); p += 4; break; // BININT
      case 0x4b: need(1); stack.push(buf[p]); p += 1; break; // BININT1
      case 0x4d: need(2); stack.push(buf.readUInt16LE(p)); p += 2; break; // BININT2
      case 0x8a: { need(1); const n = buf[p]; p += 1; need(n); stack.push(readLong(n)); p += n; break; } // LONG1
      case 0x8b: { need(4); const n = buf.readInt32LE(p); p += 4; need(n); stack.push(readLong(n)); p += n; break; } // LONG4
      case 0x47: need(8); stack.push(buf.readDoubleBE(p)); p += 8; break; // BINFLOAT
      case 0x58: { need(4); const n = buf.readUInt32LE(p); p += 4; need(n); stack.push(buf.toString('utf8', p, p + n)); p += n; break; } // BINUNICODE
      case 0x8c: { need(1); const n = buf[p]; p += 1; need(n); stack.push(buf.toString('utf8', p, p + n)); p += n; break; } // SHORT_BINUNICODE
      case 0x8d: { need(8); const n = Number(buf.readBigUInt64LE(p)); p += 8; need(n); stack.push(buf.toString('utf8', p, p + n)); p += n; break; } // BINUNICODE8
      case 0x55: { need(1); const n = buf[p]; p += 1; need(n); stack.push(buf.toString('latin1', p, p + n)); p += n; break; } // SHORT_BINSTRING
      case 0x54: { need(4); const n = buf.readInt32LE(p); p += 4; need(n); stack.push(buf.toString('latin1', p, p + n)); p += n; break; } // BINSTRING
      case 0x43: { need(1); const n = buf[p]; p += 1; need(n); stack.push(Uint8Array.from(buf.subarray(p, p + n))); p += n; break; } // SHORT_BINBYTES
      case 0x42: { need(4); const n = buf.readUInt32LE(p); p += 4; need(n); stack.push(Uint8Array.from(buf.subarray(p, p + n))); p += n; break; } // BINBYTES
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
  /** archive prefix inside the zip (e.g. 'archive' or the saved file's stem) */
  prefix: string;
  close(): void;
}

/** Open a torch.save zip file and unpickle its data.pkl (tensor data stays in the file until toHost). */
export function readTorchZip(path: string): TorchCheckpoint {
  const zip = new ZipReader(path);
  try {
    const pkl = [...zip.entries.keys()].find((n) => n.endsWith('/data.pkl') && n.split('/').length === 2) ?? (zip.entries.has('data.pkl') ? 'data.pkl' : undefined);
    if (!pkl) throw new Error(`${path}: zip archive without data.pkl: not a PyTorch checkpoint`);
    const prefix = pkl.slice(0, -'data.pkl'.length);
    if (zip.entries.has(`${prefix}byteorder`)) {
      const bo = zip.readEntry(`${prefix}byteorder`).toString('utf8').trim();
      if (bo !== 'little') throw new Error(`${path}: storages are ${bo}-endian; only little-endian is supported`);
    }
    const cache = new Map<string, Buffer>();
    const load = (s: StorageRef): Buffer => {
      let b = cache.get(s.key);
      if (!b) { b = zip.readEntry(`${prefix}data/${s.key}`); cache.set(s.key, b); }
      return b;
    };
    const persistentLoad = (pid: unknown): unknown => {
      if (!Array.isArray(pid) || pid[0] !== 'storage') throw new Error(`${path}: unsupported persistent id ${JSON.stringify(pid)}`);
      const [, type, key, , numel] = pid as [string, unknown, string, string, number];
      if (!(type instanceof PickleGlobal) || !(type.name in STORAGE_DTYPES)) throw new Error(`${path}: storage '${key}' has unsupported type ${type instanceof PickleGlobal ? type.full : String(type)}`);
      const d = STORAGE_DTYPES[type.name];
      return new StorageHolder({ key: String(key), dtype: d.dtype, bytes: d.bytes, numel: Number(numel) }, load);
    };
    const root = unpickle(zip.readEntry(pkl), `${path}:${pkl}`, persistentLoad);
    return { root, prefix, close: () => { cache.clear(); zip.close(); } };
  } catch (e) {
    zip.close();
    throw e;
  }
}

/**
 * Read the weights of a torch checkpoint: a Lightning checkpoint's `state_dict`, or a bare state dict.
 * Non-tensor entries are skipped. Returns host tensors (float32 / int32).
 */
export function readTorchStateDict(path: string): Map<string, HostTensor> {
  const ck = readTorchZip(path);
  try {
    let sd: unknown = ck.root;
    if (sd instanceof Map && sd.has('state_dict')) sd = sd.get('state_dict');
    if (!(sd instanceof Map)) throw new Error(`${path}: checkpoint holds no state dict (top level is ${describe(ck.root)})`);
    const out = new Map<string, HostTensor>();
    for (const [k, v] of sd) if (v instanceof TorchTensor) out.set(String(k), v.toHost(`${path}: tensor '${String(k)}'`));
    if (out.size === 0) throw new Error(`${path}: the state dict holds no tensors`);
    return out;
  } finally {
    ck.close();
  }
}

function describe(v: unknown): string {
  if (v instanceof Map) return `a dict with keys ${[...v.keys()].slice(0, 8).map(String).join(', ')}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  return typeof v;
}
