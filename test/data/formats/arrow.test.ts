// Arrow layouts: round trip of each §5.1 layout (write, read back, same content), multi-batch random access, the
// streaming reader on a table several times larger than its memory budget, and the structural error cases
// (missing / mistyped column, empty table, not an Arrow file, truncated file, stream instead of file).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { tableToIPC, tableFromArrays, Table, vectorFromArray, List, Field, Null, Utf8, Binary, Int32 } from 'apache-arrow';
import {
  ArrowTableReader, ArrowTableWriter, writeTable, VQAV2_LAYOUT, NLVR2_LAYOUT, F30K_LAYOUT, layoutForFile,
} from '../../../data/formats/arrow.ts';
import { writeFileAtomic } from '../../../data/formats/atomic.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aptune-arrow-'));
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 255);

function vqaRows(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    image: bytes(10 + i, i), questions: [`what is ${i}?`, `é unicode ${i} 😀`],
    answers: [['yes', 'no'], []], answer_labels: [[0, 1], []], answer_scores: [[1.0, 0.3], []],
    image_id: 9_000_000_000 + i, question_id: [i * 10, i * 10 + 1], split: 'train',
  }));
}

test('vqav2 layout round trip across several record batches', async () => {
  const file = path.join(tmp, 'vqav2_train.arrow');
  const rows = vqaRows(11);
  await writeTable(file, VQAV2_LAYOUT.columns, rows, { batchRows: 4 });
  const t = await ArrowTableReader.open(file);
  assert.is(t.numRows, 11);
  assert.is(t.numBatches, 3);
  assert.is(t.layout!.name, 'vqav2');
  for (const r of [10, 0, 5, 4, 3]) {
    const got = await t.row(r, Object.keys(VQAV2_LAYOUT.columns));
    assert.equal({ ...got, image: Array.from(got.image as Uint8Array) }, { ...rows[r], image: Array.from(rows[r].image) });
  }
  await t.close();
});

test('nlvr2 and f30k layouts round trip', async () => {
  const nf = path.join(tmp, 'nlvr2_dev.arrow');
  const nrows = Array.from({ length: 5 }, (_, i) => ({ image_0: bytes(7, i), image_1: bytes(9, i + 1), questions: ['s0', 's1'], answers: ['True', 'False'], identifier: `dev-${i}-0` }));
  await writeTable(nf, NLVR2_LAYOUT.columns, nrows, { batchRows: 2 });
  const n = await ArrowTableReader.open(nf);
  for (let r = 0; r < 5; r++) {
    const g = await n.row(r);
    assert.equal(Array.from(g.image_1 as Uint8Array), Array.from(nrows[r].image_1));
    assert.equal(g.answers, ['True', 'False']);
    assert.is(g.identifier, `dev-${r}-0`);
  }
  await n.close();
  const ff = path.join(tmp, 'f30k_caption_karpathy_test.arrow');
  const frows = Array.from({ length: 3 }, (_, i) => ({ image: bytes(5, i), caption: ['c0', 'c1', 'c2', 'c3', `c${i}`], image_id: `${i}.jpg`, split: 'test' }));
  await writeTable(ff, F30K_LAYOUT.columns, frows);
  const f = await ArrowTableReader.open(ff);
  assert.equal(await f.columnValues('image_id'), ['0.jpg', '1.jpg', '2.jpg']);
  assert.equal((await f.row(2)).caption, frows[2].caption);
  await f.close();
});

test('tables written by apache-arrow itself (other batch layout, list<null> for all-empty lists) are read', async () => {
  // a vqav2_test-like table where every answers list is empty: pandas/pyarrow infer list<null>
  const emptyL = new List(new Field('item', new Null(), true));
  const strL = new List(new Field('item', new Utf8(), true));
  const t = new Table({
    image: vectorFromArray([bytes(3, 1), bytes(4, 2)], new Binary()),
    questions: vectorFromArray([['q0'], ['q1', 'q2']], strL),
    answers: vectorFromArray([[], []], emptyL), answer_labels: vectorFromArray([[], []], emptyL), answer_scores: vectorFromArray([[], []], emptyL),
    image_id: vectorFromArray([1, 2], new Int32()), question_id: vectorFromArray([[5], [6, 7]], new List(new Field('item', new Int32(), true))),
    split: vectorFromArray(['test', 'test'], new Utf8()),
    __index_level_0__: vectorFromArray([0, 1], new Int32()),
  });
  const file = path.join(tmp, 'vqav2_test.arrow');
  fs.writeFileSync(file, tableToIPC(t, 'file'));
  const r = await ArrowTableReader.open(file);
  assert.equal((await r.row(1)).questions, ['q1', 'q2']);
  assert.equal((await r.row(1)).answers, []);
  assert.equal((await r.row(1)).question_id, [6, 7]);
  assert.equal(Array.from((await r.row(0)).image as Uint8Array), Array.from(bytes(3, 1)));
  await r.close();
});

async function streamAll(file: string, budget: number): Promise<{ peak: number; tableBytes: number; reader: ArrowTableReader }> {
  const reader = await ArrowTableReader.open(file, { cacheBytes: 256 * 1024 });
  gc(); await new Promise((r) => setTimeout(r, 10)); gc();
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0, sum = 0, maxRead = 0;
  for (let r = 0; r < reader.numRows; r++) {
    const before = reader.bytesRead;
    const row = await reader.row(r, ['image', 'questions', 'question_id']);
    // deterministic half of the check: no row read pulls more than its image plus small column chunks from disk
    maxRead = Math.max(maxRead, reader.bytesRead - before - (row.image as Uint8Array).length);
    sum += (row.image as Uint8Array)[0];
    // measured before collecting: includes the garbage of up to 2 rows (2 images, 0.5 MiB) plus V8's lag in
    // freeing backing stores, so a reader that loads a whole record batch (4 MiB or 24 MiB here), even
    // transiently, exceeds the budget
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    if (r % 2 === 1) gc();
  }
  assert.ok(sum > 0);
  assert.ok(reader.cacheStats().bytes <= 256 * 1024);
  assert.ok(peak < budget, `arrayBuffers grew by ${peak} bytes, budget ${budget}`);
  assert.ok(maxRead < 64 * 1024, `a row read pulled ${maxRead} bytes besides its image`);
  if (process.env.APTUNE_DEBUG) console.log(`peak arrayBuffers growth ${peak} bytes, max non-image bytes read per row ${maxRead}`);
  return { peak, tableBytes: fs.statSync(file).size, reader };
}

test('streaming reader: a table 8x larger than the memory budget, multi-batch and single-batch', async () => {
  const n = 96, size = 256 * 1024; // 24 MiB of image bytes
  const budget = 3 * 1024 * 1024;
  const rows = function* () { for (let i = 0; i < n; i++) yield { ...vqaRows(1)[0], image: bytes(size, i + 1), image_id: i }; };
  for (const [name, batchRows] of [['vqav2_big_multi.arrow', 16], ['vqav2_big_single.arrow', 1 << 20]] as const) {
    const file = path.join(tmp, name);
    await writeTable(file, VQAV2_LAYOUT.columns, rows(), { batchRows, batchBytes: 1 << 30 });
    const { tableBytes, reader } = await streamAll(file, budget);
    assert.ok(tableBytes > 8 * budget, `table ${tableBytes} bytes`);
    assert.is(reader.numBatches, batchRows === 16 ? 6 : 1);
    // every image byte was read once, plus small metadata / column reads
    assert.ok(reader.bytesRead < tableBytes * 1.05, `read ${reader.bytesRead} of ${tableBytes}`);
    await reader.close();
    fs.rmSync(file);
  }
});

test('missing column and mistyped column name the file and the column', async () => {
  const cols = { ...VQAV2_LAYOUT.columns } as Record<string, never>;
  delete (cols as Record<string, unknown>).answer_scores;
  const f1 = path.join(tmp, 'vqav2_missing.arrow');
  await writeTable(f1, cols, vqaRows(2).map(({ answer_scores: _, ...r }) => r));
  try { await ArrowTableReader.open(f1); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, f1);
    assert.match((e as Error).message, 'missing column "answer_scores"');
  }
  const f2 = path.join(tmp, 'nlvr2_badtype.arrow');
  await writeTable(f2, { ...NLVR2_LAYOUT.columns, answers: 'list<int>' }, [{ image_0: bytes(2, 1), image_1: bytes(2, 2), questions: ['a'], answers: [1], identifier: 'x' }]);
  try { await ArrowTableReader.open(f2); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, f2);
    assert.match((e as Error).message, 'column "answers" has type List<Int64>, expected list<string>');
  }
});

test('empty table is an error unless allowed', async () => {
  const f = path.join(tmp, 'f30k_caption_karpathy_val.arrow');
  await writeTable(f, F30K_LAYOUT.columns, []);
  try { await ArrowTableReader.open(f); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, `${f}: table is empty (0 rows)`);
  }
  const t = await ArrowTableReader.open(f, { allowEmpty: true });
  assert.is(t.numRows, 0);
  await t.close();
});

test('not an Arrow file, a truncated file, an Arrow stream, an unknown table name', async () => {
  const junk = path.join(tmp, 'vqav2_junk.arrow');
  fs.writeFileSync(junk, 'this is a JPEG, honest');
  try { await ArrowTableReader.open(junk); assert.unreachable(); } catch (e) { assert.match((e as Error).message, `${junk}: not an Arrow IPC file`); }
  const good = path.join(tmp, 'vqav2_train.arrow');
  const whole = fs.readFileSync(good);
  const cut = path.join(tmp, 'vqav2_cut.arrow');
  fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
  try { await ArrowTableReader.open(cut); assert.unreachable(); } catch (e) { assert.match((e as Error).message, `${cut}: truncated Arrow IPC file`); }
  // footer intact, body cut out: the footer's record-batch blocks point past the end of the file
  const footerLen = whole.readInt32LE(whole.length - 10);
  const hollow = path.join(tmp, 'vqav2_hollow.arrow');
  fs.writeFileSync(hollow, Buffer.concat([whole.subarray(0, 8), whole.subarray(whole.length - 10 - footerLen)]));
  try { await ArrowTableReader.open(hollow); assert.unreachable(); } catch (e) { assert.match((e as Error).message, `${hollow}: Arrow footer: at byte`); assert.match((e as Error).message, /record batch 0: block \[.*\] lies outside the file's data region/); }
  const stream = path.join(tmp, 'nlvr2_stream.arrow');
  fs.writeFileSync(stream, tableToIPC(tableFromArrays({ a: [1, 2] }), 'stream'));
  try { await ArrowTableReader.open(stream); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'Arrow IPC *stream*'); }
  try { await ArrowTableReader.open(path.join(tmp, 'nope_train.arrow')); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'unknown table name'); }
  try { layoutForFile('gqa_train.arrow'); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'gqa_train.arrow'); }
  const t = await ArrowTableReader.open(good);
  try { await t.row(11); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'row 11 out of range (table has 11 rows)'); }
  await t.close();
});

test('writes are atomic: an aborted writer leaves the old table and no temporary file', async () => {
  const f = path.join(tmp, 'atomic', 'f30k_caption_karpathy_train.arrow');
  await writeTable(f, F30K_LAYOUT.columns, [{ image: bytes(3, 1), caption: ['old'], image_id: 'a', split: 'train' }]);
  const before = fs.readFileSync(f);
  const w = new ArrowTableWriter(f, F30K_LAYOUT.columns, { batchRows: 1 });
  await w.append({ image: bytes(3, 2), caption: ['new'], image_id: 'b', split: 'train' });
  await w.append({ image: bytes(3, 3), caption: ['new'], image_id: 'c', split: 'train' });
  await w.abort();
  assert.equal(fs.readFileSync(f), before);
  assert.equal(fs.readdirSync(path.dirname(f)), ['f30k_caption_karpathy_train.arrow']);
  // a row lacking a column is refused before anything is written
  const w2 = new ArrowTableWriter(f, F30K_LAYOUT.columns);
  try { await w2.append({ image: bytes(1, 1), caption: [], split: 'x' }); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'lacks column "image_id"'); }
  await w2.abort();
  await writeFileAtomic(path.join(tmp, 'atomic', 'r.json'), '{"a":1}');
  assert.is(fs.readFileSync(path.join(tmp, 'atomic', 'r.json'), 'utf8'), '{"a":1}');
  assert.equal(fs.readdirSync(path.dirname(f)).sort(), ['f30k_caption_karpathy_train.arrow', 'r.json']);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
