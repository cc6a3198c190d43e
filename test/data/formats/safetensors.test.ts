// safetensors: round trip, reading every supported dtype from hand-built files, metadata, atomic write, errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { halfToFloat, parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors, type HostTensor } from '../../../data/formats/safetensors.ts';

const dir = mkdtempSync(join(tmpdir(), 'aptune-st-'));

/** Build a file by hand: header JSON + raw little-endian bytes (independent of the writer under test). */
function build(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('round trip F32 and I32 with metadata, names sorted, header 8-byte aligned', () => {
  const a: HostTensor = { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, -2.5, 3.25, 0, 1e-8, -7]) };
  const b: HostTensor = { dtype: 'int32', shape: [4], data: Int32Array.from([0, -1, 2147483647, -2147483648]) };
  const s: HostTensor = { dtype: 'float32', shape: [], data: Float32Array.from([42]) };
  const bytes = serializeSafetensors({ 'z.weight': a, 'a.ids': b, scalar: s }, { format: 'x', config: '{"k":1}' });
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(hlen % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  assert.equal(header['a.ids'], { dtype: 'I32', shape: [4], data_offsets: [0, 16] });
  assert.equal(header.scalar.data_offsets, [16, 20]);
  assert.equal(header['z.weight'].data_offsets, [20, 44]);
  const back = parseSafetensors(bytes);
  assert.equal(back.metadata, { format: 'x', config: '{"k":1}' });
  assert.equal([...back.tensors.get('z.weight')!.data], [...a.data]);
  assert.equal(back.tensors.get('z.weight')!.shape, [2, 3]);
  assert.equal([...back.tensors.get('a.ids')!.data], [...b.data]);
  assert.is(back.tensors.get('a.ids')!.dtype, 'int32');
  assert.equal(back.tensors.get('scalar')!.shape, []);
});

test('reads F64, F16, BF16 (to float32) and I64 (to int32)', () => {
  const data = new Uint8Array(16 + 4 + 4 + 16);
  const dv = new DataView(data.buffer);
  dv.setFloat64(0, 0.1, true); dv.setFloat64(8, -3, true);
  dv.setUint16(16, 0x3c00, true); dv.setUint16(18, 0xc500, true); // 1.0, -5.0 in half
  dv.setUint16(20, 0x3f80, true); dv.setUint16(22, 0x4049, true); // 1.0, 3.140625 in bf16
  dv.setBigInt64(24, -7n, true); dv.setBigInt64(32, 123456789n, true);
  const f = build({
    d: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
    h: { dtype: 'F16', shape: [2], data_offsets: [16, 20] },
    b: { dtype: 'BF16', shape: [2], data_offsets: [20, 24] },
    l: { dtype: 'I64', shape: [2, 1], data_offsets: [24, 40] },
  }, data);
  const t = parseSafetensors(f).tensors;
  assert.equal([...t.get('d')!.data], [Math.fround(0.1), -3]);
  assert.equal([...t.get('h')!.data], [1, -5]);
  assert.equal([...t.get('b')!.data], [1, 3.140625]);
  assert.equal([...t.get('l')!.data], [-7, 123456789]);
  assert.is(t.get('l')!.dtype, 'int32');
  assert.is(halfToFloat(0x0001), 2 ** -24);
  assert.is(halfToFloat(0x7c00), Infinity);
});

test('I64 outside int32 range is an error naming the tensor', () => {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setBigInt64(0, 1n << 40n, true);
  assert.throws(() => parseSafetensors(build({ big: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, data), 'f.st'), /f\.st: tensor 'big'.*int32/);
});

test('errors name the file and the tensor', () => {
  assert.throws(() => parseSafetensors(new Uint8Array(3), 'tiny.st'), /tiny\.st: not a safetensors file/);
  const good = serializeSafetensors({ w: { dtype: 'float32', shape: [4], data: new Float32Array(4) } });
  assert.throws(() => parseSafetensors(good.subarray(0, good.length - 4), 'cut.st'), /cut\.st: tensor 'w'.*truncated/);
  const bogus = new Uint8Array(16); new DataView(bogus.buffer).setBigUint64(0, 1000n, true);
  assert.throws(() => parseSafetensors(bogus, 'b.st'), /b\.st: not a safetensors file or truncated/);
  assert.throws(() => parseSafetensors(build({ w: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), 'u.st'), /u\.st: tensor 'w': unsupported dtype "U8"/);
  assert.throws(() => parseSafetensors(build({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), 'o.st'), /o\.st: tensor 'w'.*needs 12/);
  assert.throws(() => parseSafetensors(build({ w: 5 } as never, new Uint8Array(0)), 'n.st'), /n\.st: tensor 'w'/);
  assert.throws(() => serializeSafetensors({ w: { dtype: 'float32', shape: [2, 2], data: new Float32Array(3) } }), /'w'.*3 elements.*\[2,2\]/);
  assert.throws(() => readSafetensors(join(dir, 'absent.safetensors')), /absent\.safetensors: cannot read/);
});

test('writeSafetensors is atomic: the file appears whole, no temp file is left', () => {
  const p = join(dir, 'w.safetensors');
  writeFileSync(p, 'old content');
  const w: HostTensor = { dtype: 'float32', shape: [3], data: Float32Array.from([1, 2, 3]) };
  writeSafetensors(p, { w }, { a: 'b' });
  assert.equal([...readSafetensors(p).tensors.get('w')!.data], [1, 2, 3]);
  assert.equal(readdirSync(dir).filter((n) => n.includes('.tmp-')), []);
  // a missing directory is created; a path under a regular file fails cleanly and leaves nothing behind
  writeSafetensors(join(dir, 'sub', 'x.safetensors'), { w });
  assert.equal([...readSafetensors(join(dir, 'sub', 'x.safetensors')).tensors.get('w')!.data], [1, 2, 3]);
  assert.throws(() => writeSafetensors(join(p, 'x.safetensors'), { w }), /x\.safetensors: cannot write/);
  assert.ok(readFileSync(p).length > 8);
});

test.run();
