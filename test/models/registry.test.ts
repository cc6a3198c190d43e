// Methods as typed data (models/petl/registry.ts): the registry drives the accounting's rows and the paper's method
// list; option errors name the method, the option and what it accepts (and a wrong option is a compile error); the
// method files never branch on a backbone; a third backbone declared only by its insertion points takes a method
// (LoRA on a tiny custom module tree) without any method file knowing it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, type Tensor } from '../../engine/index.ts';
import { Module, ModuleList } from '../../models/nn/module.ts';
import { Linear } from '../../models/nn/layers.ts';
import { ACCOUNT_METHODS, PAPER_REFERENCE, accountMethod } from '../../models/accounting.ts';
import {
  ACCOUNTED_METHODS, DEFAULT_METHOD, METHODS, METHOD_NAMES, PAPER_METHODS, getMethod, injectMethod, listMethods,
  type InsertionPoints, type PetlHost,
} from '../../models/petl/index.ts';
import { createModel } from '../../models/index.ts';
import { MINI_METHODS } from '../../experiments/mini-table.ts';
import { allclose } from '../helpers.ts';

test('the accounting rows are the registry: every method once, the paper table first in its order', () => {
  assert.equal([...ACCOUNT_METHODS].sort(), [...METHOD_NAMES].sort());
  assert.is(ACCOUNT_METHODS, ACCOUNTED_METHODS);
  assert.equal(ACCOUNT_METHODS.slice(0, PAPER_METHODS.length), PAPER_METHODS);
  assert.equal([...PAPER_METHODS].sort(), Object.keys(PAPER_REFERENCE.vilt).sort(), 'the paper methods are the paper table rows');
  assert.equal(MINI_METHODS, PAPER_METHODS);
  assert.ok(METHOD_NAMES.includes(DEFAULT_METHOD));
  for (const n of METHOD_NAMES) assert.is(METHODS[n].name, n);
});

test('the accounting reads the definitions: mergeable -> 0 FLOPs with the unmerged cost kept; backbone-wide params', () => {
  for (const n of METHOD_NAMES) {
    const spec = getMethod(n);
    if (n === 'shallow_prompt') continue; // its tiny shallow prompt carries 4 tokens; nothing method-specific to check
    const r = accountMethod('vilt', n, { config: 'tiny', tokens: { text: 4, image: 5 }, options: n === 'apt' ? { tokens: 6, rank: 2 } : {} });
    if (spec.mergeable) { assert.is(r.flops, 0, n); assert.ok(r.unmergedFlops! > 0, n); }
    else assert.is(r.unmergedFlops, undefined, n);
    if (spec.updatedParams === 'backbone') assert.ok(r.params > 100_000, `${n}: ${r.params}`);
  }
  assert.ok(getMethod('lora').mergeable);
});

test('a bad option names the method, the option and what it accepts', () => {
  const mk = (method: string, methodOptions: Record<string, unknown>) => () => createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', numAnswers: 5, method, methodOptions });
  assert.throws(mk('lora', { rank: 0 }), /method 'lora': option 'rank' must be >= 1, got 0 \(allowed: integer >= 1\)/);
  assert.throws(mk('lora', { dropout: 1.5 }), /method 'lora': option 'dropout' must be <= 0.99, got 1.5 \(allowed: number in \[0, 0.99\]\)/);
  assert.throws(mk('apt', { trainScale: 1 }), /method 'apt': option 'trainScale' must be a boolean, got 1 \(allowed: true or false\)/);
  assert.throws(mk('adapter', { rank: 2.5 }), /method 'adapter': option 'rank' must be an integer, got 2.5/);
  assert.throws(mk('apt', { heads: 2 }), /method 'apt': unknown option 'heads' \(options: tokens, rank, dropout, trainScale\)/);
  const apt = listMethods().find((m) => m.name === 'apt')!;
  assert.is(apt.options.find((o) => o.name === 'dropout')!.allowed, 'number in [0, 0.99]');
  assert.equal(listMethods().find((m) => m.name === 'lora')!.points, ['attn.q', 'attn.v']);
  assert.equal(listMethods().find((m) => m.name === 'deep_prompt')!.points, ['layer.kv']);
});

// compile-time: wrong option names and types do not type-check (never called)
export function typeErrors(): void {
  // @ts-expect-error 'tokens' is not a LoRA option
  createModel({ backbone: 'vilt', task: 'vqa', numAnswers: 5, method: 'lora', methodOptions: { tokens: 6 } });
  // @ts-expect-error trainScale is a boolean
  createModel({ backbone: 'vilt', task: 'vqa', numAnswers: 5, method: 'apt', methodOptions: { trainScale: 1 } });
  // @ts-expect-error classifier_only takes no option
  createModel({ backbone: 'vilt', task: 'vqa', numAnswers: 5, method: 'classifier_only', methodOptions: { rank: 2 } });
}

test('no method file branches on a backbone or imports one', () => {
  const dir = join(import.meta.dirname, '../../models/petl');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
    const src = readFileSync(join(dir, f), 'utf8');
    assert.not.match(src, /\bkind\b/, `${f} mentions kind`);
    assert.not.match(src, /from '\.\.\/(vilt|meter|roberta|clip|backbone)\.ts'/, `${f} imports a backbone`);
  }
});

// ---- a third backbone, declared only by its insertion points ----

class Mixer extends Module {
  readonly q: Linear;
  readonly v: Linear;
  constructor(d: number) {
    super();
    this.q = this.registerModule('q', new Linear(d, d));
    this.v = this.registerModule('v', new Linear(d, d));
  }
  override hookPoints(): readonly string[] {
    return ['q_out', 'v_out'];
  }
  forward(x: Tensor): Tensor {
    const q = this.runHooks('q_out', this.q.forward(x), { input: x });
    const v = this.runHooks('v_out', this.v.forward(x), { input: x });
    return x.add(q.mul(v));
  }
}

class TinyNet extends Module implements PetlHost {
  readonly hidden = 8;
  readonly petlFrozen: readonly string[] = [];
  encoderGrad = false;
  readonly layers: ModuleList<Module & { mix: Mixer }>;
  constructor() {
    super();
    const layer = () => { const m = new Module() as Module & { mix: Mixer }; m.mix = m.registerModule('mix', new Mixer(this.hidden)); return m; };
    this.layers = this.registerModule('layers', new ModuleList([layer(), layer()]));
    this.registerModule('classifier', new Linear(this.hidden, 2));
  }
  insertionPoints(): InsertionPoints {
    return { hooks: [{ paths: ['layers.*.mix'], offers: { 'attn.q': 'q_out', 'attn.v': 'v_out' } }], tokens: {} };
  }
  forward(x: Tensor): Tensor {
    for (const l of this.layers.items) x = l.mix.forward(x);
    return x;
  }
}

test('a third backbone declared by its insertion points takes LoRA (no method file edited)', () => {
  const net = new TinyNet();
  const x = tensor(Float32Array.from({ length: 2 * 3 * 8 }, (_, i) => Math.sin(i)), [2, 3, 8]);
  const before = net.forward(x).toArray();
  const r = injectMethod(net, 'lora', { rank: 2, dropout: 0 });
  assert.equal(r.modules, ['layers.0.mix.q_lora', 'layers.0.mix.v_lora', 'layers.1.mix.q_lora', 'layers.1.mix.v_lora']);
  assert.equal(r.trainable.filter((n) => n.includes('lora')).length, 8);
  assert.ok(r.trainable.every((n) => n.includes('lora') || n.startsWith('classifier.')), r.trainable.join(', '));
  assert.equal(net.layers.at(0).mix.attachedHooks(), ['q_out<-lora', 'v_out<-lora']);
  allclose(net.forward(x).toArray(), before, { atol: 0, rtol: 0, msg: 'B = 0: the output is unchanged at init' });
  const B = net.layers.at(1).mix.child('v_lora');
  B.setParam('lora_B', tensor(new Float32Array(2 * 8).fill(0.1), [2, 8]));
  assert.ok(net.forward(x).toArray().some((v, i) => Math.abs(v - before[i]) > 1e-4), 'a non-zero B changes the output');
  assert.throws(() => injectMethod(new TinyNet(), 'apt'), /method 'apt': TinyNet declares no insertion point 'attn.out' \(it has: attn.q, attn.v\)/);
  assert.throws(() => injectMethod(new TinyNet(), 'deep_prompt'), /TinyNet declares no token point 'layer.kv'/);
});

test.run();
