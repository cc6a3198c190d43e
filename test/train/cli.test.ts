// The `aptune` command, spawned through the package bin (bin/aptune.js): methods, params --json values,
// usage errors (unknown option / command: exit 2, named), help, and import errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/aptune.js'), ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test('methods lists every method with its options', () => {
  const r = run('methods', '--json');
  assert.is(r.code, 0, r.err);
  const ms = JSON.parse(r.out) as { name: string; options: { name: string; default: unknown }[] }[];
  assert.equal(ms.map((m) => m.name).sort(), ['adapter', 'apt', 'classifier_only', 'deep_prompt', 'full', 'lora', 'parallel_adapter', 'shallow_prompt']);
  const apt = ms.find((m) => m.name === 'apt')!;
  assert.is(apt.options.find((o) => o.name === 'tokens')?.default, 200);
  const text = run('methods');
  assert.is(text.code, 0);
  assert.match(text.out, /^apt\n/);
});

test('params --json: raw counts for ViLT; token options reach the FLOP count', () => {
  const r = run('params', '--model', 'vilt', '--json', '--text-tokens', '40');
  assert.is(r.code, 0, r.err);
  const rows = JSON.parse(r.out) as { model: string; method: string; params: number; flops: number }[];
  const get = (m: string) => rows.find((x) => x.method === m)!;
  assert.equal(Object.keys(get('apt')).sort(), ['flops', 'method', 'model', 'params']);
  assert.is(get('apt').params, 1_916_940);
  assert.is(get('lora').params, 147_456);
  assert.is(get('adapter').params, 3_559_680);
  assert.is(get('apt').flops, 12 * (2 * 241 * 200 * 768 + 2 * 200 * 768 * 4)); // N = 40 + 201
  assert.ok(rows.every((x) => x.model === 'vilt'));
});

test('--method and --opt select methods and their options (APT M = 50: the committed ViLT code)', () => {
  const r = run('params', '--model', 'vilt', '--method', 'apt', '--opt', 'tokens=50', '--json');
  assert.is(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).map((x: { params: number }) => x.params), [534_540]);
  const e = run('params', '--method', 'apt,lora', '--opt', 'rank=2');
  assert.is(e.code, 2);
  assert.match(e.err, /--opt needs exactly one --method/);
});

test('usage errors exit 2 and name the culprit', () => {
  const a = run('params', '--bogus');
  assert.is(a.code, 2);
  assert.match(a.err, /unknown option '--bogus' for 'aptune params'/);
  const b = run('frobnicate');
  assert.is(b.code, 2);
  assert.match(b.err, /unknown command 'frobnicate'/);
  const c = run('flops', '--model', 'clip');
  assert.is(c.code, 2);
  assert.match(c.err, /--model must be vilt, meter or all, got 'clip'/);
  const d = run('flops', '--text-tokens', 'abc');
  assert.is(d.code, 2);
  assert.match(d.err, /--text-tokens must be a positive integer/);
});

test('start --help (npm start -- --help) says what it trains and how to run the full table', () => {
  const r = run('start', '--help');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /APT, deep prompt, LoRA and classifier-only on synthetic VQA/);
  assert.match(r.out, /pretrained\/vilt-synth\.safetensors/);
  assert.match(r.out, /aptune table --mini --seeds 0,1,2 --out results\//);
  assert.is(run('table', '--seeds', '0').code, 2, '--seeds without --mini is a usage error');
});

test('table prints the params + FLOPs table of both backbones beside the paper column', () => {
  const r = run('table');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^ViLT-B\/32 \(tokens: 41 text \+ 201 visual = 242\)/);
  assert.match(r.out, /\nMETER-CLIP-ViT-B\/16/);
  assert.match(r.out, /updated params \(ours\).*add\. FLOPs \(ours\)/);
  assert.match(r.out, /\n {2}apt +1\.92M \(1,916,940\) +\[1\.92M\] = +0\.91G/);
  assert.match(r.out, /\nConvention: /);
});

test('help for the program and for each command', () => {
  const h = run('--help');
  assert.is(h.code, 0);
  for (const c of ['methods', 'params', 'flops', 'table', 'synth', 'import', 'start']) assert.match(h.out, new RegExp(`\\n  ${c} `));
  const f = run('import', '--help');
  assert.is(f.code, 0);
  assert.match(f.out, /--from FILE/);
  assert.match(f.out, /examples:\n  aptune import --from vilt_200k_mlm_itm\.ckpt/);
  const m = run('methods');
  assert.match(m.out, /\n {4}tokens=<int> {2}\(default 200, >= 1\)/);
  assert.match(m.out, /--opt tokens=50,rank=4/);
});

test('import: a file that is not a checkpoint fails with status 1 naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aptune-cli-'));
  const junk = join(dir, 'junk.ckpt');
  writeFileSync(junk, 'not weights');
  const r = run('import', '--from', junk, '--out', join(dir, 'o.safetensors'), '--model', 'vilt');
  assert.is(r.code, 1);
  assert.match(r.err, /junk\.ckpt: not a checkpoint/);
  const m = run('import', '--from', junk);
  assert.is(m.code, 2);
  assert.match(m.err, /import needs --from, --out and --model/);
});

test.run();
