// Accounting (apt-spec §7): parameter counts from the instantiated modules and FLOPs from a forward on the shape
// backend, checked against (a) the §7 closed-form formulas, computed here independently, and (b) the paper's
// rounding for every cell §7 shows to be reproducible; the irreproducible cells must be flagged, with a reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { matmul, layerNorm, zeros, ones, getBackend } from '../../engine/index.ts';
import { shapeBackend } from '../../engine/backends/shape.ts';
import {
  ACCOUNT_METHODS, IRREPRODUCIBLE, PAPER_REFERENCE, accountMethod, accountingTable, formatAccountingTable, irreproducibleReason,
  onShapeBackend, paperRound, type AccountRow,
} from '../../models/accounting.ts';

const D = 768;
const rows = accountingTable(['vilt', 'meter']);
const row = (model: string, method: string): AccountRow => {
  const r = rows.find((x) => x.model === model && x.method === method);
  if (!r) throw new Error(`no row ${model}/${method}`);
  return r;
};

test('shape backend: matmul MACs, LayerNorm elements, reads throw, default backend restored', () => {
  const before = getBackend().name;
  const sb = shapeBackend();
  const { tally } = onShapeBackend(() => sb.measure(() => {
    const a = zeros([2, 5, 7]), b = zeros([3, 7]);
    matmul(a, b, { transB: true }); // [2,5,3]: 2*5*3*7 MACs
    matmul(zeros([4, 6]), zeros([4, 9]), { transA: true }); // [6,9]: 6*9*4
    layerNorm(zeros([3, 8]), ones([8]), zeros([8]), 1e-5);
  }));
  assert.is(tally.matmulMacs, 2 * 5 * 3 * 7 + 6 * 9 * 4);
  assert.is(tally.layerNormElements, 24);
  assert.is(tally.ops.get('matmul')?.calls, 2);
  assert.is(getBackend().name, before);
  assert.throws(() => onShapeBackend(() => zeros([2]).toArray()), /shape backend holds no data/);
  assert.is(sb.allocatedBytes(), 0);
});

test('ViLT parameter counts equal the §7.1 formulas', () => {
  assert.is(row('vilt', 'deep_prompt').params, 12 * 200 * D);
  assert.is(row('vilt', 'lora').params, 12 * 2 * (D * 4 + 4 * D));
  assert.is(row('vilt', 'parallel_adapter').params, 12 * (2 * D + (D * 96 + 96) + (96 * D + D)));
  assert.is(row('vilt', 'adapter').params, 24 * ((D * 96 + 96) + (96 * D + D)));
  assert.is(row('vilt', 'apt').params, 12 * (200 * D + D * 4 + 4 * D + 1));
  assert.is(row('vilt', 'classifier_only').params, 0);
  assert.is(row('vilt', 'full').params, 111_595_008);
});

test('METER parameter counts equal the §7.1 formulas', () => {
  assert.is(row('meter', 'deep_prompt').params, 2 * 6 * 200 * D);
  assert.is(row('meter', 'lora').params, 48 * 1536 * 4);
  assert.is(row('meter', 'adapter').params, 36 * 148_320);
  assert.is(row('meter', 'parallel_adapter').params, 24 * 149_856);
  assert.is(row('meter', 'apt').params, 24 * 159_745);
  assert.is(row('meter', 'full').params, 319_474_688);
});

test('ViLT FLOPs (N = 242) equal the §7.3 formulas', () => {
  const N = 242, p = 200, M = 200, h = 4, r = 96;
  assert.is(row('vilt', 'deep_prompt').flops, 12 * (p * D * 3 * D + 2 * N * p * D));
  assert.is(row('vilt', 'apt').flops, 12 * (2 * N * M * D + 2 * M * D * h));
  assert.is(row('vilt', 'adapter').flops, 24 * 2 * N * D * 96);
  assert.is(row('vilt', 'parallel_adapter').flops, 12 * 2 * N * D * r + 12 * 5 * N * D);
  assert.is(row('vilt', 'lora').flops, 0);
  assert.is(row('vilt', 'lora').unmergedFlops, 12 * 2 * 2 * N * D * 4);
  assert.is(row('vilt', 'classifier_only').flops, 0);
  assert.is(row('vilt', 'full').flops, 0);
});

test('METER FLOPs (L = 618) equal the §7.3 formulas', () => {
  const L = 618, M = 200, h = 4, p = 200, r = 96;
  assert.is(row('meter', 'apt').flops, 12 * 2 * L * M * D + 24 * 2 * M * D * h);
  assert.is(row('meter', 'adapter').flops, 18 * 2 * L * D * 96);
  assert.is(row('meter', 'parallel_adapter').flops, 12 * (2 * D * r + 5 * D) * L);
  assert.is(row('meter', 'deep_prompt').flops, 6 * (2 * 2 * p * D * D + 2 * p * D * L));
  assert.is(row('meter', 'lora').flops, 0);
});

test("every reproducible cell matches the paper's rounding; the others are flagged and do not", () => {
  let checked = 0;
  for (const model of ['vilt', 'meter'] as const) {
    for (const [method, ref] of Object.entries(PAPER_REFERENCE[model])) {
      for (const col of ['params', 'flops'] as const) {
        const ours = paperRound(col, row(model, method)[col]);
        const reason = irreproducibleReason(model, method as never, col);
        if (reason) assert.is.not(ours, ref![col], `${model} ${method} ${col} is flagged but matches`);
        else { assert.is(ours, ref![col], `${model} ${method} ${col}`); checked++; }
      }
    }
  }
  assert.is(checked, 2 * 7 * 2 - IRREPRODUCIBLE.length);
  assert.equal(IRREPRODUCIBLE.filter((c) => c.model === 'meter' && c.method !== 'full').map((c) => `${c.method}/${c.column}`).sort(),
    ['deep_prompt/flops', 'deep_prompt/params', 'parallel_adapter/params']);
});

test('token counts are options (ViLT harness N = 241 gives APT 0.90G, as §7.3 says)', () => {
  const r = accountMethod('vilt', 'apt', { tokens: { text: 40 } });
  assert.is(r.flops, 12 * (2 * 241 * 200 * D + 2 * 200 * D * 4));
  assert.is(paperRound('flops', r.flops), '0.90G');
  assert.throws(() => accountMethod('vilt', 'apt', { tokens: { image: 0 } }), /image token count must be a positive integer/);
});

test('method options change the counts (APT M = 50, the committed ViLT code: 534,540 params)', () => {
  const r = accountMethod('vilt', 'apt', { options: { tokens: 50 } });
  assert.is(r.params, 534_540);
});

test('formatted table carries the paper column label, the convention and the reasons', () => {
  const t = formatAccountingTable(rows);
  assert.match(t, /\[paper\]/);
  assert.match(t, /Convention: /);
  assert.match(t, /meter deep_prompt flops: not reproducible/);
  assert.match(t, /lora: 0 by convention \(mergeable\)/);
  assert.is(rows.length, 2 * ACCOUNT_METHODS.length);
});

test.run();
