// Bounds-checked reading of untrusted bytes, shared by every reader (pickle, torch zip, legacy torch.save,
// safetensors, the Arrow footer / message flatbuffers): one ByteReader, one checked-length rule, one strict
// UTF-8 decoder, one strict JSON parser, one safe-integer rule.
// Does not: read files (callers own their file handles), or know any format.
// Invariants: every read is checked against the bytes that exist BEFORE anything is allocated or decoded; a
// length or offset that is negative, not a safe integer, or beyond the end raises an InputError naming the source,
// the absolute byte offset and what was being read; nothing here ever returns a value that lost precision
// (64-bit integers beyond 2^53 are refused) or text that was repaired (invalid UTF-8 is refused).

/** A refusal of malformed input. The message names the source and, where it applies, the byte offset. */
export class InputError extends Error {
  constructor(message: string) { super(message); this.name = 'InputError'; }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 decoding: invalid sequences are refused, never replaced. */
export function decodeUtf8(bytes: Uint8Array, where: string): string {
  try { return UTF8.decode(bytes); } catch { throw new InputError(`${where}: invalid UTF-8 text`); }
}

/** A 64-bit integer as a JS number, refused (naming `where`) when it is beyond +-2^53. */
export function safeNumber(v: bigint, where: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new InputError(`${where}: 64-bit integer ${v} is beyond 2^53 and cannot be represented exactly`);
  return Number(v);
}

/** Checks that [off, off + len) lies inside [0, size): both non-negative safe integers. */
export function checkRange(where: string, off: number, len: number, size: number): void {
  if (!Number.isSafeInteger(off) || off < 0) throw new InputError(`${where}: invalid offset ${off}`);
  if (!Number.isSafeInteger(len) || len < 0) throw new InputError(`${where}: invalid length ${len}`);
  if (off + len > size) throw new InputError(`${where}: ${len} bytes at offset ${off} run past the end (${size} bytes available; truncated or corrupt)`);
}

/** Multiplies non-negative integers, refusing a product beyond `limit` (default 2^53) before it overflows. */
export function checkedProduct(dims: readonly number[], where: string, limit = Number.MAX_SAFE_INTEGER): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new InputError(`${where}: invalid dimension ${d} in [${dims.join(', ')}]`);
    if (d !== 0 && n > limit / d) throw new InputError(`${where}: shape [${dims.join(', ')}] has more than ${limit} elements`);
    n *= d;
  }
  return n;
}

/**
 * A cursor over bytes with checked reads. `base` is the absolute file offset of bytes[0] (so errors give file
 * offsets); `source` names the file (and the part of it) in every error.
 */
export class ByteReader {
  pos = 0;
  readonly dv: DataView;
  constructor(readonly bytes: Uint8Array, readonly source: string, readonly base = 0) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get length(): number { return this.bytes.byteLength; }
  get remaining(): number { return this.bytes.byteLength - this.pos; }

  /** An InputError at `at` (default: the cursor) naming the source and absolute offset. */
  error(msg: string, at = this.pos): InputError { return new InputError(`${this.source}: at byte ${this.base + at}: ${msg}`); }

  /** Checks that `len` bytes exist at `at` (default: the cursor); `what` says what is being read. */
  need(len: number, what: string, at = this.pos): void {
    if (!Number.isSafeInteger(len) || len < 0) throw this.error(`${what}: invalid length ${len}`, at);
    if (!Number.isSafeInteger(at) || at < 0 || at + len > this.bytes.byteLength) {
      throw this.error(`${what}: needs ${len} bytes, ${Math.max(0, this.bytes.byteLength - at)} remain (truncated or corrupt)`, at);
    }
  }
  seek(at: number, what: string): void { this.need(0, what, at); this.pos = at; }

  u8(what = 'byte'): number { this.need(1, what); return this.bytes[this.pos++]; }
  u16(what = 'uint16'): number { this.need(2, what); const v = this.dv.getUint16(this.pos, true); this.pos += 2; return v; }
  i32(what = 'int32'): number { this.need(4, what); const v = this.dv.getInt32(this.pos, true); this.pos += 4; return v; }
  u32(what = 'uint32'): number { this.need(4, what); const v = this.dv.getUint32(this.pos, true); this.pos += 4; return v; }
  /** Little-endian int64, refused beyond 2^53. */
  i64(what = 'int64'): number { this.need(8, what); const v = this.dv.getBigInt64(this.pos, true); this.pos += 8; return safeNumber(v, `${this.source}: at byte ${this.base + this.pos - 8}: ${what}`); }
  /** Little-endian uint64, refused beyond 2^53. */
  u64(what = 'uint64'): number { this.need(8, what); const v = this.dv.getBigUint64(this.pos, true); this.pos += 8; return safeNumber(v, `${this.source}: at byte ${this.base + this.pos - 8}: ${what}`); }
  f64be(what = 'float64'): number { this.need(8, what); const v = this.dv.getFloat64(this.pos, false); this.pos += 8; return v; }
  /** A length field that must be >= 0 and fit in the remaining bytes (checked before anything is allocated). */
  length32(what: string, signed = true): number {
    const at = this.pos;
    const n = signed ? this.i32(what) : this.u32(what);
    if (n < 0) throw this.error(`${what}: negative length ${n}`, at);
    this.need(n, what);
    return n;
  }
  /** `len` bytes (a view, no copy). */
  take(len: number, what: string): Uint8Array { this.need(len, what); const b = this.bytes.subarray(this.pos, this.pos + len); this.pos += len; return b; }
  utf8(len: number, what: string): string { const at = this.pos; const b = this.take(len, what); try { return UTF8.decode(b); } catch { throw this.error(`${what}: invalid UTF-8 text`, at); } }

  // random access (flatbuffers)
  u8At(at: number, what: string): number { this.need(1, what, at); return this.bytes[at]; }
  u16At(at: number, what: string): number { this.need(2, what, at); return this.dv.getUint16(at, true); }
  i16At(at: number, what: string): number { this.need(2, what, at); return this.dv.getInt16(at, true); }
  i32At(at: number, what: string): number { this.need(4, what, at); return this.dv.getInt32(at, true); }
  u32At(at: number, what: string): number { this.need(4, what, at); return this.dv.getUint32(at, true); }
  i64At(at: number, what: string): number { this.need(8, what, at); return safeNumber(this.dv.getBigInt64(at, true), `${this.source}: at byte ${this.base + at}: ${what}`); }
}

/**
 * Strict JSON: like JSON.parse, but refuses duplicate object keys (JSON.parse keeps the last silently) and nesting
 * deeper than `maxDepth`. Errors name `where` and the character offset.
 */
export function parseJsonStrict(text: string, where: string, maxDepth = 64): unknown {
  let i = 0;
  const fail = (msg: string): never => { throw new InputError(`${where}: invalid JSON at character ${i}: ${msg}`); };
  const ws = () => { while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++; };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in string');
      i += c === 0x5c ? 2 : 1;
    }
    i++;
    try { return JSON.parse(text.slice(start, i)) as string; } catch (e) { return fail((e as Error).message); }
  };
  const value = (depth: number): unknown => {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth}`);
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') { i++; return out; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const k = str();
        if (seen.has(k)) fail(`duplicate key ${JSON.stringify(k)}`);
        seen.add(k);
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        out[k] = value(depth + 1);
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return out; }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') { i++; return out; }
      for (;;) {
        out.push(value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return out; }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}
