// Seeded fuzzing of every reader (torch zip, legacy torch.save, safetensors, Arrow, PNG, JPEG): base files made
// here from the test fixtures (nothing large is committed), crafted hostile cases for each class of the
// hardening issue, and random byte mutations of the base files. Every case runs in a child process
// (test/fuzz/worker.ts) under limits: --max-old-space-size, an RSS watchdog (external buffers count too) and a
// per-case timeout; a worker that dies or stalls is recorded against the case and restarted.
// Outcomes per case: 'same' (read, content equal to the base), 'changed' (read, content differs: a mutation of
// values that the format has no checksum for), 'refused' (an error naming the input file), 'unnamed' (an error
// that does not name the input, or a JavaScript internal error), 'silent' (read, but the result violates an
// invariant, or a crafted hostile case was accepted), 'crash' (worker died, e.g. out of memory), 'hang'
// (timeout), 'memory' (RSS above the limit).
// Invariants: the same seed gives the same cases; temporary files are removed; nothing here is imported by the
// library.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { crc32, deflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import { readTorchStateDict } from '../../data/formats/torch_pickle.ts';
import { serializeSafetensors, type HostTensor } from '../../data/formats/safetensors.ts';
import { VQAV2_LAYOUT, writeTable } from '../../data/formats/arrow.ts';
import { verifyBatchMessage, verifyFooter } from '../../data/formats/arrow-verify.ts';
import { legacyTorchSave } from '../train/torch-legacy-writer.ts';

export type Format = 'torch-zip' | 'torch-legacy' | 'safetensors' | 'arrow' | 'png' | 'jpeg' | 'selftest';
export const FORMATS: readonly Format[] = ['torch-zip', 'torch-legacy', 'safetensors', 'arrow', 'png', 'jpeg'];
/** The worker's self-test cases (file content 'hang' | 'memory' | 'unnamed'): each must be classified as such. */
export const selfTestCase = (what: 'hang' | 'memory' | 'unnamed'): Case => ({ format: 'selftest', name: `selftest ${what}`, bytes: Buffer.from(what), fileName: 'selftest.txt' });
export type Outcome = 'same' | 'changed' | 'refused' | 'unnamed' | 'silent' | 'crash' | 'hang' | 'memory';

export interface Case { format: Format; name: string; bytes: Uint8Array; fileName: string; expect?: RegExp }
export interface Result { c: Case; outcome: Outcome; detail: string; ms: number }

const ROOT = new URL('../..', import.meta.url).pathname;
const FILE_NAME: Record<Exclude<Format, 'selftest'>, string> = { 'torch-zip': 'model.ckpt', 'torch-legacy': 'model.pt', safetensors: 'model.safetensors', arrow: 'vqav2_train.arrow', png: 'image.png', jpeg: 'image.jpg' };

// ------------------------------------------------------------------------------------------------ randomness

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => { // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffb, 0x40000000];

/** One random mutation of `base` (copy): byte flips, an interesting 32-bit word, truncation, insertion, deletion, chunk copy. */
export function mutate(base: Uint8Array, r: () => number, tailBias = 0): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  // with probability tailBias, aim at the last 15% (footers, central directories)
  const pos = (n: number) => (r() < tailBias ? n - 1 - pick(Math.max(1, Math.floor(n * 0.15))) : pick(n));
  const b = Uint8Array.from(base);
  switch (pick(6)) {
    case 0: { const k = 1 + pick(4); for (let i = 0; i < k; i++) b[pos(b.length)] = pick(256); return b; }
    case 1: { const p = Math.min(pos(b.length), b.length - 4); new DataView(b.buffer).setUint32(Math.max(0, p), INTERESTING[pick(INTERESTING.length)], r() < 0.5); return b; }
    case 2: return b.subarray(0, pick(b.length));
    case 3: { const p = pos(b.length), n = 1 + pick(16); const ins = Uint8Array.from({ length: n }, () => pick(256)); return concat([b.subarray(0, p), ins, b.subarray(p)]); }
    case 4: { const p = pos(b.length), n = 1 + pick(16); return concat([b.subarray(0, p), b.subarray(Math.min(b.length, p + n))]); }
    default: { const from = pick(b.length), to = pos(b.length), n = Math.min(1 + pick(64), b.length - from, b.length - to); b.copyWithin(to, from, from + n); return b; }
  }
}

function concat(parts: Uint8Array[]): Uint8Array { return Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)))); }

// ------------------------------------------------------------------------------------------------ base files

/** A zip archive of stored (or deflated) entries, with `sizeOverride` to declare a false uncompressed size. */
export function makeZip(entries: { name: string; data: Uint8Array; deflate?: boolean; sizeOverride?: number }[]): Buffer {
  const locals: Buffer[] = [], centrals: Buffer[] = [];
  let off = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const comp = e.deflate ? deflateRawSync(e.data) : Buffer.from(e.data);
    const crc = crc32(e.data) >>> 0, size = e.sizeOverride ?? e.data.length;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(e.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(comp.length, 18); lh.writeUInt32LE(size, 22); lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(e.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(comp.length, 20); ch.writeUInt32LE(size, 24); ch.writeUInt16LE(name.length, 28); ch.writeUInt32LE(off, 42);
    locals.push(lh, name, comp); centrals.push(ch, name);
    off += 30 + name.length + comp.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(entries.length, 8); eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12); eocd.writeUInt32LE(off, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

/** Protocol-2 pickle fragments for crafted torch files. */
const P = {
  str: (s: string) => { const b = Buffer.from(s); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); return Buffer.concat([h, b]); },
  int: (n: number) => { const h = Buffer.alloc(5); h[0] = 0x4a; h.writeInt32LE(n, 1); return h; },
  global: (m: string, n: string) => Buffer.from(`c${m}\n${n}\n`, 'latin1'),
  tuple: (items: Buffer[]) => Buffer.concat([Buffer.from([0x28]), ...items, Buffer.from([0x74])]),
};

/** A torch zip whose state dict has one tensor 'w' with the given geometry over a FloatStorage of `numel` floats. */
export function craftedTorchZip(o: { size: number[]; stride: number[]; offset?: number; numel: number; dataBytes?: number; copies?: number }): Buffer {
  const entry = (name: string) => [
    P.str(name), P.global('torch._utils', '_rebuild_tensor_v2'),
    P.tuple([
      Buffer.concat([P.tuple([P.str('storage'), P.global('torch', 'FloatStorage'), P.str('0'), P.str('cpu'), P.int(o.numel)]), Buffer.from([0x51])]),
      P.int(o.offset ?? 0), P.tuple(o.size.map(P.int)), P.tuple(o.stride.map(P.int)), Buffer.from([0x89]),
    ]),
    Buffer.from([0x52]),
  ];
  const names = o.copies ? Array.from({ length: o.copies }, (_, i) => `w${i}`) : ['w'];
  const pkl = Buffer.concat([Buffer.from([0x80, 0x02, 0x7d, 0x28]), ...names.flatMap(entry), Buffer.from([0x75, 0x2e])]);
  return makeZip([{ name: 'archive/data.pkl', data: pkl }, { name: 'archive/data/0', data: new Uint8Array(o.dataBytes ?? o.numel * 4) }]);
}

/** A torch zip whose data.pkl is `pkl` (raw pickle bytes). */
export const torchZipWithPickle = (pkl: Uint8Array) => makeZip([{ name: 'archive/data.pkl', data: pkl }]);

/** A safetensors file from a raw header object/string and a data buffer. */
export function rawSafetensors(header: string, data: Uint8Array, declared?: bigint): Buffer {
  const h = Buffer.from(header);
  const n = Buffer.alloc(8); n.writeBigUInt64LE(declared ?? BigInt(h.length));
  return Buffer.concat([n, h, Buffer.from(data)]);
}

export type Bases = Record<Exclude<Format, 'selftest'>, Uint8Array>;

/** The unmutated files, one per format (a few KB each). */
export async function makeBases(): Promise<Record<Exclude<Format, 'selftest'>, Uint8Array>> {
  const zip = fs.readFileSync(path.join(ROOT, 'test/fixtures/ckpt/vilt_tiny_deflated.ckpt'));
  const sd = readTorchStateDict(path.join(ROOT, 'test/fixtures/ckpt/vilt_tiny.ckpt'));
  const small = new Map<string, HostTensor>([...sd].filter(([, t]) => t.data.length <= 512).slice(0, 10));
  const img = (w: number, h: number, seed: number) => {
    const r = rng(seed);
    return sharp(Buffer.from(Uint8Array.from({ length: w * h * 3 }, () => Math.floor(r() * 256))), { raw: { width: w, height: h, channels: 3 } });
  };
  const png = await img(12, 10, 1).png().toBuffer();
  const jpeg = await img(16, 16, 2).jpeg({ quality: 80 }).toBuffer();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-fuzz-base-'));
  const arrowFile = path.join(tmp, 'vqav2_train.arrow');
  const rows = [0, 1, 2].map((i) => ({
    image: i === 1 ? png : jpeg, questions: [`what colour is shape ${i}?`, 'how many?'], answers: [['red', 'blue'], [String(i)]],
    answer_labels: [[0, 1], [2 + i]], answer_scores: [[1, 0.3], [0.9]], image_id: 1000 + i, question_id: [10 * i, 10 * i + 1], split: i ? 'train' : 'val',
  }));
  await writeTable(arrowFile, VQAV2_LAYOUT.columns, rows, { batchRows: 2 });
  const arrow = fs.readFileSync(arrowFile);
  fs.rmSync(tmp, { recursive: true, force: true });
  return {
    'torch-zip': zip, 'torch-legacy': legacyTorchSave(small),
    safetensors: serializeSafetensors(small, { format: 'fuzz', note: 'base' }), arrow, png, jpeg,
  };
}

// ------------------------------------------------------------------------------------------------ crafted cases

/** Buffer regions of record batch `b` of an Arrow file (absolute file offsets). */
function arrowBuffers(file: Uint8Array, b: number): { at: number; length: number }[] {
  const buf = Buffer.from(file);
  const size = buf.length, flen = buf.readInt32LE(size - 10);
  const { blocks } = verifyFooter('<base>', size, flen, buf.subarray(size - 10 - flen, size - 10));
  const blk = blocks[b];
  const meta = verifyBatchMessage('<base>', b, blk.offset, buf.subarray(blk.offset, blk.offset + blk.metaDataLength), blk.bodyLength);
  return meta.buffers.map((x) => ({ at: blk.offset + blk.metaDataLength + x.offset, length: x.length }));
}

/** Hostile inputs, one or more per class of the issue; each must be refused with an error matching `expect`. */
export async function craftedCases(bases: Bases): Promise<Case[]> {
  const out: Case[] = [];
  const add = (format: Exclude<Format, 'selftest'>, name: string, bytes: Uint8Array, expect: RegExp) => out.push({ format, name, bytes, fileName: FILE_NAME[format], expect });
  const pk = (...parts: (number[] | Buffer)[]) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
  // --- pickle lengths (the 20-byte heap-exhaustion pickles)
  add('torch-zip', 'LONG4 with a negative length', torchZipWithPickle(pk([0x80, 0x02, 0x8b, 0xfb, 0xff, 0xff, 0xff, 0x8b, 0xfb, 0xff, 0xff, 0xff, 0x2e])), /LONG4 length: negative length -5/);
  add('torch-zip', 'BINSTRING with a negative length', torchZipWithPickle(pk([0x80, 0x02, 0x54, 0xf0, 0xff, 0xff, 0xff, 0x61, 0x62, 0x2e])), /BINSTRING length: negative length -16/);
  add('torch-zip', 'BINUNICODE longer than the pickle', torchZipWithPickle(pk([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x2e])), /BINUNICODE length: needs 2147483647 bytes/);
  add('torch-zip', 'LONG4 of 1 MB (quadratic bigint)', torchZipWithPickle(pk([0x80, 0x02, 0x8b, 0x00, 0x00, 0x10, 0x00], Buffer.alloc(1 << 20), [0x2e])), /LONG of 1048576 bytes/);
  add('torch-zip', 'invalid UTF-8 in BINUNICODE', torchZipWithPickle(pk([0x80, 0x02, 0x58, 2, 0, 0, 0, 0xc3, 0x28, 0x2e])), /invalid UTF-8/);
  add('torch-zip', 'global outside the whitelist', torchZipWithPickle(pk([0x80, 0x02], P.global('os', 'system'), P.str('id'), [0x85, 0x52, 0x2e])), /refusing global 'os\.system'/);
  // --- shapes and strides before expansion
  add('torch-zip', 'shape [2^30] stride [0] (4 GB expansion)', craftedTorchZip({ size: [2 ** 30], stride: [0], numel: 1 }), /tensor 'w': 1073741824 elements view a storage '0' of only 1/);
  add('torch-zip', 'shape [2^31 - 1] stride [1] over 4 elements', craftedTorchZip({ size: [2 ** 31 - 1], stride: [1], numel: 4 }), /tensor 'w': shape \[2147483647\] with stride \[1\] at offset 0 reaches element 2147483646 of storage '0', which holds 4/);
  add('torch-zip', 'stride list shorter than the shape', craftedTorchZip({ size: [2, 3], stride: [3], numel: 6 }), /tensor 'w': stride \[3\] has rank 1, shape \[2, 3\] has rank 2/);
  add('torch-zip', 'negative stride', craftedTorchZip({ size: [2, 3], stride: [-3, 1], numel: 6 }), /tensor 'w': stride \[-3, 1\] must be non-negative/);
  add('torch-zip', 'negative dimension', craftedTorchZip({ size: [-2, 3], stride: [3, 1], numel: 6 }), /tensor 'w': shape: invalid dimension -2/);
  add('torch-zip', 'offset beyond the storage', craftedTorchZip({ size: [2], stride: [1], offset: 5, numel: 6 }), /tensor 'w': .*reaches element 6 of storage '0', which holds 6/);
  add('torch-zip', '1000 full views of one 1 MB storage (1 GB of copies)', craftedTorchZip({ size: [1 << 18], stride: [1], numel: 1 << 18, copies: 1000 }), /tensor 'w4': the tensors viewing storage '0' hold 1310720 elements, more than 4x its 262144/);
  add('torch-zip', 'storage entry shorter than its element count', craftedTorchZip({ size: [2], stride: [1], numel: 6, dataBytes: 8 }), /storage '0' declares 6 elements \(24 bytes\) but its entry holds 8 bytes/);
  // --- zip sizes: an entry that inflates beyond what it declares, and a declared size deflate cannot produce
  const zeros = new Uint8Array(32 << 20);
  add('torch-zip', 'entry declaring 256 bytes that inflates to 32 MiB', makeZip([{ name: 'archive/data.pkl', data: zeros, deflate: true, sizeOverride: 256 }]), /entry 'archive\/data\.pkl' inflates to more than its declared 256 bytes/);
  add('torch-zip', 'entry declaring 3 GiB from 1 KiB', makeZip([{ name: 'archive/data.pkl', data: new Uint8Array(1024), sizeOverride: 3 * 2 ** 30, deflate: true }]), /declares 3221225472 bytes, more than deflate can produce/);
  { const z = Buffer.from(bases['torch-zip']); const eo = z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])); z.writeUInt16LE(0xfff0, eo + 10); add('torch-zip', 'EOCD entry count beyond the directory', z, /entries cannot fit in a \d+-byte central directory/); }
  // --- legacy torch.save
  { const l = Buffer.from(bases['torch-legacy']); add('torch-legacy', 'legacy: storage data cut short', l.subarray(0, l.length - 7), /needs \d+ bytes, \d+ remain|truncated/); }
  { const l = Buffer.concat([Buffer.from(bases['torch-legacy']), Buffer.from([1, 2, 3])]); add('torch-legacy', 'legacy: trailing bytes', l, /3 trailing bytes after the last storage/); }
  { // the element count of the first storage made negative
    const l = Buffer.from(bases['torch-legacy']);
    const keysEnd = l.indexOf(Buffer.from([0x6c, 0x2e]), l.indexOf(Buffer.from('_rebuild_tensor_v2'))) + 2; // end of the keys pickle (LIST STOP)
    l.writeBigInt64LE(-5n, keysEnd);
    add('torch-legacy', 'legacy: negative storage element count', l, /storage '\d+' holds -5 elements/);
  }
  // --- safetensors as its specification requires
  const f4 = (n: number) => new Uint8Array(4 * n);
  add('safetensors', 'overlapping offsets', rawSafetensors('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', f4(3)), /tensor '[ab]': data_offsets \[\d+, \d+\] overlap/);
  add('safetensors', 'a gap between tensors', rawSafetensors('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', f4(3)), /tensor 'b': data_offsets \[8, 12\] leave a gap of 4 bytes/);
  add('safetensors', 'trailing bytes', rawSafetensors('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f4(2)), /4 trailing bytes after the last tensor/);
  add('safetensors', 'duplicate keys', rawSafetensors('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f4(1)), /duplicate key "a"/);
  add('safetensors', 'header length above 100 MB', rawSafetensors('{}', f4(1), 100_000_001n), /header length 100000001 exceeds the 100000000-byte limit/);
  add('safetensors', 'unknown dtype', rawSafetensors('{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}', f4(1)), /tensor 'a': unsupported dtype "Q7"/);
  add('safetensors', 'shape x dtype size differs from the byte length', rawSafetensors('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', f4(2)), /tensor 'a': data_offsets \[0, 8\] span 8 bytes but shape \[3\] of F32 needs 12/);
  add('safetensors', 'shape product beyond 2^53', rawSafetensors('{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}', f4(1)), /tensor 'a': shape \[4294967296, 4294967296, 4\] has more than/);
  add('safetensors', 'header not an object', rawSafetensors('[1,2]', f4(0)), /header does not start with '\{'|not a JSON object/);
  add('safetensors', 'invalid UTF-8 in the header', rawSafetensors('{"\xff":1}', f4(0)).fill(0xff, 10, 11), /invalid UTF-8/);
  add('safetensors', 'offsets beyond the file', rawSafetensors('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f4(1)), /data ends at byte 16 but the file holds only 4/);
  // --- Arrow: footer and message flatbuffers, offsets, UTF-8, int64
  const A = bases.arrow, size = A.length;
  { const b = Buffer.from(A); b.writeInt32LE(0x7ffffff0, size - 10); add('arrow', 'footer length beyond the file', b, /corrupt Arrow footer length 2147483632/); }
  { const b = Buffer.from(A); const flen = b.readInt32LE(size - 10); b.writeUInt32LE(0xfffffff0, size - 10 - flen); add('arrow', 'footer root offset beyond the footer', b, /Arrow footer: at byte \d+: Footer root offset|Footer root/); }
  { // the footer's record-batch vector length set to 2^31 - 1 (the two-byte kind of corruption that aborted the process)
    const b = Buffer.from(A);
    const flen = b.readInt32LE(size - 10), fs0 = size - 10 - flen;
    const blocks = verifyFooter('<base>', size, flen, b.subarray(fs0, size - 10)).blocks;
    const first = Buffer.alloc(8); first.writeBigInt64LE(BigInt(blocks[0].offset));
    const at = b.indexOf(first, fs0); // first Block struct; its vector length precedes it
    b.writeUInt16LE(0x7fff, at - 2);
    add('arrow', 'footer block-vector length corrupted (2 bytes)', b, /Footer vector of \d+: needs|lies outside/);
  }
  const bufs = arrowBuffers(A, 0);
  // buffer order of VQAV2_LAYOUT: image 0-2, questions 3-7 (child string: offsets 6, data 7), answers 8-14, answer_labels 15-20, answer_scores 21-26, image_id 27-28, question_id 29-32, split 33-35
  { const b = Buffer.from(A); b.writeInt32LE(1 << 20, bufs[34].at + 4); add('arrow', 'string offset beyond its data buffer', b, /column "split" row 0: offset 1048576 beyond the \d+ values of the data buffer/); }
  { const b = Buffer.from(A); b.writeInt32LE(-8, bufs[34].at + 4); add('arrow', 'string offsets decreasing', b, /column "split" row 0: offsets decrease|offset -8/); }
  { const b = Buffer.from(A); b.writeInt32LE(1 << 20, bufs[4].at + 4); add('arrow', 'list offset beyond the child field', b, /column "questions" row 0: offset 1048576 beyond the \d+ values of the child field/); }
  { const b = Buffer.from(A); b[bufs[7].at] = 0xff; add('arrow', 'invalid UTF-8 text', b, /column "questions": invalid UTF-8 text|column "questions" row \d+: invalid UTF-8/); }
  { const b = Buffer.from(A); b.writeBigInt64LE(2n ** 60n, bufs[28].at); add('arrow', 'int64 beyond 2^53', b, /column "image_id" row 0: int64 value 1152921504606846976 is beyond 2\^53/); }
  { const b = Buffer.from(A); b.writeInt32LE(1 << 24, bufs[1].at + 4); add('arrow', 'image offset beyond its data buffer', b, /column "image" row 0: corrupt offsets/); }
  // --- images: dimensions limited before decoding
  { // a 16000 x 16000 PNG header (IHDR rewritten, CRC fixed): refused from the header, never decoded
    const b = Buffer.from(bases.png);
    b.writeUInt32BE(16000, 16); b.writeUInt32BE(16000, 20);
    b.writeUInt32BE(crc32(b.subarray(12, 29)) >>> 0, 29);
    add('png', '16000 x 16000 PNG header', b, /larger than the limit of 40000000 pixels/);
  }
  add('jpeg', 'truncated JPEG', Buffer.from(bases.jpeg).subarray(0, bases.jpeg.length >> 1), /cannot decode/);
  return out;
}

/** `n` seeded mutations of each base. */
export function mutationCases(bases: Bases, formats: readonly Format[], n: number, seed: number): Case[] {
  const out: Case[] = [];
  for (const f of formats) {
    if (f === 'selftest') continue;
    const r = rng(seed ^ (FORMATS.indexOf(f) * 0x9e3779b1));
    for (let i = 0; i < n; i++) out.push({ format: f, name: `${f} mutation ${i}`, bytes: mutate(bases[f], r, f === 'arrow' || f === 'torch-zip' ? 0.4 : 0.15), fileName: FILE_NAME[f] });
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ runner

interface WorkerHandle { child: ChildProcess; next: (line: string) => void; died: (why: string) => void }

export interface RunOptions { timeoutMs?: number; rssLimitMb?: number; heapMb?: number; onResult?: (r: Result) => void }

/** Run the cases one by one in a limited worker process; classifies each (see the file comment). */
export async function runCases(cases: Case[], bases: Bases, o: RunOptions = {}): Promise<Result[]> {
  const timeoutMs = o.timeoutMs ?? 10_000, rssLimit = (o.rssLimitMb ?? 1024) * 1024 * 1024;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-fuzz-'));
  const results: Result[] = [];
  let w: WorkerHandle | null = null;
  const start = async (): Promise<WorkerHandle> => {
    const child = spawn(process.execPath, [`--max-old-space-size=${o.heapMb ?? 512}`, '--import', 'tsx', path.join(ROOT, 'test/fuzz/worker.ts')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const h: WorkerHandle = { child, next: () => undefined, died: () => undefined };
    createInterface({ input: child.stdout! }).on('line', (l) => h.next(l));
    child.stderr!.on('data', () => undefined);
    child.on('exit', (code, sig) => h.died(`worker exited (${sig ?? code})`));
    await new Promise<void>((res, rej) => { h.next = () => res(); h.died = (why) => rej(new Error(`fuzz worker did not start: ${why}`)); });
    return h;
  };
  const baseDigest = new Map<Format, string>();
  const one = async (c: Case, id: number): Promise<{ outcome: Outcome | 'ok'; detail: string; summary?: string; bad?: string[] }> => {
    const caseDir = path.join(dir, `c${id}`);
    fs.mkdirSync(caseDir);
    const file = path.join(caseDir, c.fileName);
    fs.writeFileSync(file, c.bytes);
    w ??= await start();
    const h = w;
    try {
      return await new Promise((resolve) => {
        const timer = setTimeout(() => { h.child.kill('SIGKILL'); resolve({ outcome: 'hang', detail: `no answer within ${timeoutMs} ms` }); }, timeoutMs);
        const watch = setInterval(() => {
          try {
            const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${h.child.pid}/status`, 'utf8'));
            if (m && +m[1] * 1024 > rssLimit) { h.child.kill('SIGKILL'); clearTimeout(timer); clearInterval(watch); resolve({ outcome: 'memory', detail: `RSS ${m[1]} kB above the limit` }); }
          } catch { /* exited */ }
        }, 20);
        h.died = (why) => { clearTimeout(timer); clearInterval(watch); resolve({ outcome: 'crash', detail: why }); };
        h.next = (line) => {
          clearTimeout(timer); clearInterval(watch);
          const r = JSON.parse(line) as { ok: boolean; error?: string; name?: string; summary?: string; bad?: string[] };
          if (r.ok) return resolve({ outcome: 'ok', detail: '', summary: r.summary, bad: r.bad });
          const msg = r.error ?? '';
          const internal = /^(TypeError|RangeError|ReferenceError|SyntaxError)$/.test(r.name ?? '') && !msg.includes(file);
          resolve({ outcome: msg.includes(file) && !internal ? 'refused' : 'unnamed', detail: `${r.name}: ${msg.slice(0, 400)}` });
        };
        h.child.stdin!.write(JSON.stringify({ id, format: c.format, file }) + '\n');
      });
    } finally {
      fs.rmSync(caseDir, { recursive: true, force: true });
      if (h.child.exitCode !== null || h.child.signalCode !== null || h.child.killed) w = null;
    }
  };
  try {
    let id = 0;
    for (const f of new Set(cases.map((c) => c.format))) {
      if (!FORMATS.includes(f)) continue; // 'selftest'
      const r = await one({ format: f, name: `${f} base`, bytes: bases[f as Exclude<Format, 'selftest'>], fileName: FILE_NAME[f as Exclude<Format, 'selftest'>] }, id++);
      if (r.outcome !== 'ok') throw new Error(`fuzz: the base ${f} file is not read: ${r.detail}`);
      baseDigest.set(f, r.summary!);
    }
    for (const c of cases) {
      const t0 = Date.now();
      const r = await one(c, id++);
      let outcome: Outcome, detail = r.detail;
      if (r.outcome === 'ok') {
        if (r.bad?.length) { outcome = 'silent'; detail = `read with invariant violations: ${r.bad.slice(0, 3).join('; ')}`; }
        else if (c.expect) { outcome = 'silent'; detail = 'a hostile case was accepted'; }
        else outcome = r.summary === baseDigest.get(c.format) ? 'same' : 'changed';
      } else outcome = r.outcome;
      if (c.expect && outcome === 'refused' && !c.expect.test(detail)) { outcome = 'unnamed'; detail = `refused, but not with ${c.expect}: ${detail}`; }
      const res: Result = { c, outcome, detail, ms: Date.now() - t0 };
      results.push(res);
      o.onResult?.(res);
    }
  } finally {
    (w as WorkerHandle | null)?.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

/** Counts per format and outcome. */
export function tally(results: Result[]): Record<string, Record<Outcome, number>> {
  const t: Record<string, Record<Outcome, number>> = {};
  for (const r of results) {
    const row = (t[r.c.format] ??= { same: 0, changed: 0, refused: 0, unnamed: 0, silent: 0, crash: 0, hang: 0, memory: 0 });
    row[r.outcome]++;
  }
  return t;
}

/** Outcomes that are failures of the hardening: the target is zero of each. */
export const FAILURES: readonly Outcome[] = ['unnamed', 'silent', 'crash', 'hang', 'memory'];
