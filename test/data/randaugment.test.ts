// RandAugment(2, 9): magnitudes of spec §5.4, hand-checked effects, bit-identity of every op with real PIL
// (test/fixtures/images/pil_golden.json), and determinism for a seed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import {
  RandAugment, OP_NAMES, opValue, applyOp, posterize, solarize, solarizeAdd, brightness,
  translateX, luma, type OpName,
} from '../../data/randaugment.ts';
import type { RGBImage } from '../../data/images.ts';
import { createRng, mixSeed } from '../../data/rng.ts';

const golden = JSON.parse(readFileSync(new URL('../fixtures/images/pil_golden.json', import.meta.url), 'utf8'));
const dec = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const input: RGBImage = { data: dec(golden.input), width: golden.width, height: golden.height };
const big: RGBImage = { data: dec(golden.big.data), width: golden.big.width, height: golden.big.height };
const flat = (vals: number[]): RGBImage => ({ data: new Uint8Array(vals), width: vals.length / 3, height: 1 });

test('magnitudes at m = 9 match the spec table', () => {
  assert.is(OP_NAMES.length, 14);
  assert.ok(Math.abs(opValue('Rotate', 9) - 9) < 1e-12);
  assert.is(Math.trunc(opValue('Posterize', 9)), 1);
  assert.ok(Math.abs(opValue('Solarize', 9) - 76.8) < 1e-12);
  assert.ok(Math.abs(opValue('SolarizeAdd', 9) - 33) < 1e-12);
  for (const op of ['Color', 'Contrast', 'Brightness', 'Sharpness'] as const) assert.ok(Math.abs(opValue(op, 9) - 0.64) < 1e-12);
  assert.ok(Math.abs(opValue('ShearX', 9) - 0.09) < 1e-12 && Math.abs(opValue('ShearY', 9) - 0.09) < 1e-12);
  assert.ok(Math.abs(opValue('TranslateX', 9) - 30) < 1e-12 && Math.abs(opValue('TranslateY', 9) - 30) < 1e-12);
});

test('hand-checked point ops', () => {
  assert.equal(Array.from(posterize(flat([200, 127, 128]), 1).data), [128, 0, 128]);
  // solarize at 76.8: 76 stays, 77 and above invert
  assert.equal(Array.from(solarize(flat([76, 77, 255]), 76.8).data), [76, 178, 0]);
  // +33 then solarize at 128: 94 -> 127 stays, 100 -> 133 -> 122, 250 -> 255 (clipped) -> 0
  assert.equal(Array.from(solarizeAdd(flat([94, 100, 250]), 33).data), [127, 122, 0]);
  // brightness 0.64 truncates: 100 * 0.64 = 64, 255 * 0.64 = 163.2 -> 163
  assert.equal(Array.from(brightness(flat([100, 255, 1]), 0.64).data), [64, 163, 0]);
  assert.is(luma(255, 255, 255), 255);
  assert.is(luma(255, 0, 0), 76); // (255 * 19595 + 32768) >> 16
});

test('translate by 30 px shifts content left and fills black', () => {
  const w = 40, img: RGBImage = { data: new Uint8Array(w * 3), width: w, height: 1 };
  for (let x = 0; x < w; x++) img.data[x * 3] = x + 1;
  const t = translateX(img, 30);
  assert.is(t.data[0], 31); // output x reads input x + 30
  assert.is(t.data[9 * 3], 40);
  assert.is(t.data[10 * 3], 0);
  const u = translateX(img, -30);
  assert.is(u.data[29 * 3], 0);
  assert.is(u.data[30 * 3], 1);
});

test('every op is bit-identical to PIL on the golden image (both signs for geometric ops)', () => {
  const seen = new Set<string>();
  for (const o of golden.ops) {
    const out = applyOp(o.big ? big : input, o.op as OpName, o.value);
    assert.equal(Array.from(out.data), Array.from(dec(o.data)), `${o.op}(${o.value})`);
    seen.add(o.op);
  }
  assert.is(seen.size, 14);
});

test('ops do not modify their input', () => {
  const copy = new Uint8Array(input.data);
  for (const op of OP_NAMES) applyOp(input, op, opValue(op, 9));
  assert.equal(Array.from(input.data), Array.from(copy));
});

test('determinism: same seed, same image; different seeds differ; plan matches apply', () => {
  const ra = new RandAugment(2, 9);
  const a = ra.apply(big, createRng(7)), b = ra.apply(big, createRng(7));
  assert.equal(Array.from(a.data), Array.from(b.data));
  let differs = 0;
  for (let s = 0; s < 8; s++) if (Buffer.compare(Buffer.from(ra.apply(big, createRng(100 + s)).data), Buffer.from(a.data)) !== 0) differs++;
  assert.ok(differs >= 6, `only ${differs} of 8 seeds differ`);
  const plan = ra.plan(createRng(7));
  assert.is(plan.length, 2);
  let manual = big;
  for (const st of plan) manual = applyOp(manual, st.op, st.value);
  assert.equal(Array.from(manual.data), Array.from(a.data));
});

test('ops are drawn with replacement, uniformly, and signs flip for geometric ops', () => {
  const ra = new RandAugment(2, 9);
  const counts = new Map<string, number>();
  let neg = 0, geo = 0, repeats = 0;
  for (let s = 0; s < 2000; s++) {
    const p = ra.plan(createRng(mixSeed(3, s)));
    if (p[0].op === p[1].op) repeats++;
    for (const st of p) {
      counts.set(st.op, (counts.get(st.op) ?? 0) + 1);
      if (['Rotate', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY'].includes(st.op)) { geo++; if (st.value < 0) neg++; }
      else assert.ok(st.value >= 0);
    }
  }
  assert.is(counts.size, 14);
  for (const [op, c] of counts) assert.ok(c > 4000 / 14 * 0.7 && c < 4000 / 14 * 1.3, `${op}: ${c}`);
  assert.ok(neg > geo * 0.4 && neg < geo * 0.6);
  assert.ok(repeats > 2000 / 14 * 0.6, `with replacement: ${repeats} repeats`);
});

test('bad arguments are rejected', () => {
  assert.throws(() => new RandAugment(2, 31), /m must be in \[0, 30\]/);
  assert.throws(() => posterize(input, 9), /bits must be in \[0, 8\]/);
});

test.run();
