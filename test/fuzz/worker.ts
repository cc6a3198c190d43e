// Fuzz worker (child process of test/fuzz/harness.ts): reads one JSON request per stdin line
// {id, format, file}, runs the project's reader for that format on the file, and answers one JSON line
// {id, ok: true, summary} or {id, ok: false, error, name}. The summary is a content digest (names, shapes,
// values hashed) so the parent can compare with the unmutated file, plus `bad`: the internal-consistency
// violations found (data length vs shape, non-finite row counts...), which count as silent corruption.
// Runs under the parent's limits (--max-old-space-size, RSS watchdog, per-case timeout): a crash or hang here
// is a finding, never a test-runner failure.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { readTorchStateDict } from '../../data/formats/torch_pickle.ts';
import { readSafetensors, type HostTensor } from '../../data/formats/safetensors.ts';
import { ArrowTableReader } from '../../data/formats/arrow.ts';
import { decodeRGB } from '../../data/images.ts';

function digestTensors(m: Map<string, HostTensor>): { summary: string; bad: string[] } {
  const h = createHash('sha256'), bad: string[] = [];
  for (const [k, t] of m) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) bad.push(`${k}: ${t.data.length} elements for shape [${t.shape}]`);
    h.update(`${k}|${t.dtype}|${t.shape.join(',')}|`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return { summary: h.digest('hex'), bad };
}

async function digestArrow(file: string): Promise<{ summary: string; bad: string[] }> {
  const t = await ArrowTableReader.open(file);
  const h = createHash('sha256'), bad: string[] = [];
  try {
    h.update(`${t.numRows}|${t.columnNames.join(',')}|`);
    for (const c of t.columnNames) {
      if (t.layout?.imageColumns.includes(c)) {
        for (let r = 0; r < t.numRows; r++) { const b = await t.binaryCell(r, c); h.update(b ?? new Uint8Array([0xde, 0xad])); }
        continue;
      }
      const vals = await t.columnValues(c);
      if (vals.length !== t.numRows) bad.push(`column ${c}: ${vals.length} values for ${t.numRows} rows`);
      const intColumn = /int/.test(t.layout?.columns[c] ?? '');
      const walk = (v: unknown): void => {
        if (intColumn && typeof v === 'number' && !Number.isSafeInteger(v)) bad.push(`column ${c}: unsafe integer ${v}`);
        if (typeof v === 'string' && v.includes('\ufffd')) bad.push(`column ${c}: replacement character in text`);
        if (Array.isArray(v)) v.forEach(walk);
      };
      vals.forEach(walk);
      h.update(JSON.stringify(vals, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));
    }
  } finally { await t.close(); }
  return { summary: h.digest('hex'), bad };
}

async function run(format: string, file: string): Promise<{ summary: string; bad: string[] }> {
  switch (format) {
    case 'torch-zip': case 'torch-legacy': return digestTensors(readTorchStateDict(file));
    case 'safetensors': return digestTensors(readSafetensors(file).tensors);
    case 'arrow': return digestArrow(file);
    case 'png': case 'jpeg': {
      const img = await decodeRGB(readFileSync(file), { file, row: 0, column: 'image' });
      const bad = img.data.length === img.width * img.height * 3 ? [] : [`${img.data.length} bytes for ${img.width}x${img.height}`];
      return { summary: createHash('sha256').update(`${img.width}x${img.height}|`).update(img.data).digest('hex'), bad };
    }
    case 'selftest': { // proves the parent's limits work: a hang, unbounded memory, an error that names nothing
      const what = readFileSync(file, 'utf8');
      if (what === 'hang') for (;;) { /* spin */ }
      if (what === 'memory') { const keep: Buffer[] = []; for (;;) keep.push(Buffer.alloc(64 << 20, 1)); }
      throw new Error('something went wrong');
    }
    default: throw new Error(`fuzz worker: unknown format ${format}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const req = JSON.parse(line) as { id: number; format: string; file: string };
  let reply: Record<string, unknown>;
  try {
    const r = await run(req.format, req.file);
    reply = { id: req.id, ok: true, ...r };
  } catch (e) {
    const err = e as Error;
    reply = { id: req.id, ok: false, error: String(err?.message ?? e), name: err?.name ?? typeof e };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
});
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
