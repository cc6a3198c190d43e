// Test helper: writes a state dict in PyTorch's legacy (pre-zip) torch.save layout, byte for byte the way
// torch.serialization._legacy_save lays it out: four protocol-2 pickles (magic number, protocol 1001, sys_info,
// the OrderedDict whose tensors are _rebuild_tensor_v2 of a persistent id ('storage', torch.FloatStorage, key,
// 'cpu', numel, None)), the sorted storage keys, then per storage an int64 element count and the raw bytes.
// Used to test data/formats/torch_pickle.ts's legacy reader and as a base file for the fuzz suite (no Python here).
// Invariants: float32 -> FloatStorage, int32 -> IntStorage; tensors are contiguous (stride = row-major).
import type { HostTensor } from '../../data/formats/safetensors.ts';

class Pickle {
  parts: number[] = [];
  op(...b: number[]): this { this.parts.push(...b); return this; }
  u32(n: number): this { return this.op(n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255); }
  str(s: string): this { const b = Buffer.from(s, 'utf8'); return this.op(0x58).u32(b.length).op(...b); }
  int(n: number): this { return this.op(0x4a).u32(n); }
  global(m: string, n: string): this { return this.op(0x63, ...Buffer.from(`${m}\n${n}\n`, 'latin1')); }
  tuple(items: number[]): this { this.op(0x28); for (const i of items) this.int(i); return this.op(0x74); }
  bytes(): Buffer { return Buffer.from([0x80, 0x02, ...this.parts, 0x2e]); }
}

export function legacyTorchSave(tensors: Map<string, HostTensor>): Buffer {
  const magic = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
  const proto = new Pickle().op(0x4d, 0xe9, 0x03).bytes();
  const sys = new Pickle().op(0x7d, 0x28).str('protocol_version').op(0x4d, 0xe9, 0x03).str('little_endian').op(0x88)
    .str('type_sizes').op(0x7d, 0x28).str('short').int(2).str('int').int(4).str('long').int(4).op(0x75).op(0x75).bytes();
  const main = new Pickle().global('collections', 'OrderedDict').op(0x29, 0x52, 0x28);
  const keys: string[] = [];
  let k = 0;
  for (const [name, t] of tensors) {
    const key = String(k++);
    keys.push(key);
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    main.str(name).global('torch._utils', '_rebuild_tensor_v2').op(0x28)
      .op(0x28).str('storage').global('torch', t.dtype === 'int32' ? 'IntStorage' : 'FloatStorage').str(key).str('cpu').int(t.data.length).op(0x4e, 0x74, 0x51)
      .int(0).tuple(t.shape).tuple(stride).op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52, 0x74, 0x52);
  }
  main.op(0x75);
  const sorted = [...keys].sort();
  const keyList = new Pickle().op(0x28);
  for (const key of sorted) keyList.str(key);
  keyList.op(0x6c);
  const chunks: Buffer[] = [magic, proto, sys, main.bytes(), keyList.bytes()];
  const byKey = new Map(keys.map((key, i) => [key, [...tensors.values()][i]] as const));
  for (const key of sorted) {
    const t = byKey.get(key)!;
    const n = Buffer.alloc(8); n.writeBigInt64LE(BigInt(t.data.length));
    chunks.push(n, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return Buffer.concat(chunks);
}
