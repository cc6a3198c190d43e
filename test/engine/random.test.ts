// The counter-based generator: Philox4x32-10 known-answer vectors, the documented element mapping, determinism
// and disjoint ranges, dropout mask statistics.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { Generator, philox, setBackend } from '../../engine/index.ts';

setBackend('ref');

test('Philox4x32-10 known-answer vectors (Random123)', () => {
  const o = [0, 0, 0, 0];
  philox(0, 0, 0, 0, 0, 0, o);
  assert.equal(o, [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  philox(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, o);
  assert.equal(o, [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  philox(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, o);
  assert.equal(o, [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
});

test('uniform element n is word n%4 of block n/4, top 24 bits', () => {
  const seed = 0x123456789;
  const u = E.rand([9], { generator: Generator.fromState({ seed, offset: 8 }), dtype: 'float64' }).toArray();
  const w = [0, 0, 0, 0];
  for (let i = 0; i < 9; i++) {
    const n = 8 + i;
    philox(Math.floor(n / 4), 0, 0, 0, seed >>> 0, Math.floor(seed / 2 ** 32), w);
    assert.is(u[i], (w[n % 4] >>> 8) / 2 ** 24, `element ${i}`);
  }
});

test('normal element n: Box-Muller on words (n&2, n&2+1)', () => {
  const z = E.randn([6], { generator: new Generator(42), dtype: 'float64' }).toArray();
  const w = [0, 0, 0, 0];
  for (let n = 0; n < 6; n++) {
    philox(Math.floor(n / 4), 0, 0, 0, 42, 0, w);
    const j = n & 2;
    const u1 = ((w[j] >>> 8) + 1) / 2 ** 24, u2 = (w[j + 1] >>> 8) / 2 ** 24;
    const r = Math.sqrt(-2 * Math.log(u1)), t = 2 * Math.PI * u2;
    assert.is(z[n], n % 2 === 0 ? r * Math.cos(t) : r * Math.sin(t));
  }
});

test('same seed, same numbers; generator draws are disjoint and advance by multiples of 4', () => {
  const g1 = new Generator(7), g2 = new Generator(7);
  const a = E.randn([5], { generator: g1 }).toArray(), b = E.randn([5], { generator: g2 }).toArray();
  assert.equal(Array.from(a), Array.from(b));
  assert.is(g1.offset, 8);
  const c = E.randn([5], { generator: g1 }).toArray();
  assert.not.equal(Array.from(a), Array.from(c));
  E.manualSeed(3);
  const d1 = E.rand([4]).toArray();
  E.manualSeed(3);
  assert.equal(Array.from(E.rand([4]).toArray()), Array.from(d1));
});

test('dropout: mask is 0 or 1/(1-p) at the documented rate, y = x * mask, identity in eval', () => {
  const x = E.ones([4000]);
  const y = E.dropout(x, 0.25, { training: true, generator: new Generator(9) }).toArray();
  let kept = 0;
  for (const v of y) {
    assert.ok(v === 0 || Math.abs(v - 1 / 0.75) < 1e-6, `value ${v}`);
    if (v !== 0) kept++;
  }
  assert.ok(Math.abs(kept / 4000 - 0.75) < 0.03, `keep rate ${kept / 4000}`);
  assert.is(E.dropout(x, 0.25, { training: false }), x);
  // element i is dropped iff uniform(seed, offset + i) < p
  const u = E.rand([4000], { generator: new Generator(9) }).toArray();
  for (let i = 0; i < 4000; i++) assert.is(y[i] === 0, u[i] < 0.25, `element ${i}`);
});

test.run();
