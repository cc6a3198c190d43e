// The `aptune` command, spawned through the package bin (bin/aptune.js): methods, params --json values,
// usage errors (unknown option / command: exit 2, named), help, and import errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../train/cli.ts';

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

test('a bad --opt is a usage error naming the method, the option and what it accepts', () => {
  const r = run('params', '--model', 'vilt', '--method', 'lora', '--opt', 'rank=0');
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /--opt: method 'lora': option 'rank' must be >= 1, got 0 \(allowed: integer >= 1\)/);
  const t = run('train', '--data', 'nowhere', '--task', 'vqa', '--backbone', 'vilt', '--method', 'apt', '--opt', 'trainScale=3');
  assert.is(t.code, 2, t.err);
  assert.match(t.err, /option 'trainScale' must be a boolean, got 3 \(allowed: true or false\)/);
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
  const bad = run('table', '--mini', '--pretrained', 'vit=x.safetensors', '--out', '/nonexistent/never');
  assert.is(bad.code, 2, bad.err);
  assert.match(bad.err, /--pretrained must be backbone=FILE pairs .* got 'vit=x\.safetensors'/);
  assert.match(run('table', '--mini', '--pretrained', 'vilt=a,vilt=b').err, /--pretrained names vilt twice/);
  assert.is(run('table', '--pretrained', 'vilt=a').code, 2, '--pretrained without --mini is a usage error');
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

test('an --out that is a file (or lies under one) fails at once with status 1 naming it, before any work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aptune-cli-'));
  const file = join(dir, 'taken');
  writeFileSync(file, 'a file, not a folder');
  const t = await inProc('table', '--mini', '--out', file, '--data', join(dir, 'no-data-needed'));
  assert.is(t.code, 1, t.err);
  assert.match(t.err, /--out .*taken: cannot create the folder, .*taken is a file/);
  const s = await inProc('synth', '--out', join(file, 'sub'));
  assert.is(s.code, 1, s.err);
  assert.match(s.err, /--out .*taken[/\\]sub: cannot create the folder, .*taken is a file/);
  assert.is(readFileSync(file, 'utf8'), 'a file, not a folder'); // nothing lost
});

/** Runs the CLI in this process (no tsx start-up per call), capturing stdout and stderr. */
async function inProc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const saved = { log: console.log, error: console.error, ow: process.stdout.write, ew: process.stderr.write };
  console.log = (...a: unknown[]) => { out += a.join(' ') + '\n'; };
  console.error = (...a: unknown[]) => { err += a.join(' ') + '\n'; };
  process.stdout.write = ((c: string | Uint8Array) => { out += String(c); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => { err += String(c); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    console.log = saved.log; console.error = saved.error; process.stdout.write = saved.ow; process.stderr.write = saved.ew;
  }
}

test('every command\'s --help lists each option with its default (or says it is required)', async () => {
  const commands = [...(await inProc('--help')).out.matchAll(/^ {2}([a-z-]+) {2}/gm)].map((m) => m[1]).filter((c) => c !== 'help' && c !== 'synth');
  assert.ok(commands.length >= 12, commands.join());
  for (const c of commands) {
    const h = await inProc(c, '--help');
    assert.is(h.code, 0, `${c}: ${h.err}`);
    const opts = [...h.out.matchAll(/^ {2}(--[a-z-]+)(?: \S+)?\n {6}(.*)$/gm)];
    assert.ok(opts.some((m) => m[1] === '--config'), `${c} --help lists --config`);
    for (const [, name, text] of opts) assert.match(text, /default|\(required\)/, `aptune ${c} --help: ${name} states no default`);
  }
});

test('--config FILE.json supplies any option; the command line wins; unknown keys and wrong types are errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aptune-cli-'));
  const file = join(dir, 'run.json');
  writeFileSync(file, JSON.stringify({ model: 'vilt', method: ['apt'], opt: 'tokens=50', json: true }));
  const a = (await inProc('params', '--config', file));
  assert.is(a.code, 0, a.err);
  assert.equal(JSON.parse(a.out).map((x: { params: number }) => x.params), [534_540]);
  const b = (await inProc('params', '--config', file, '--model', 'meter'));
  assert.is(b.code, 0, b.err);
  assert.equal(JSON.parse(b.out).map((x: { model: string }) => x.model), ['meter']);
  writeFileSync(file, JSON.stringify({ model: 'vilt', bogus: 1 }));
  const c = (await inProc('params', '--config', file));
  assert.is(c.code, 2);
  assert.match(c.err, /--config .*run\.json: unknown option '--bogus' for 'aptune params'/);
  writeFileSync(file, JSON.stringify({ json: 'yes' }));
  assert.match((await inProc('params', '--config', file)).err, /'json' is a flag: give true or false, got "yes"/);
  assert.match((await inProc('params', '--config', join(dir, 'missing.json'))).err, /--config .*missing\.json: ENOENT/);
  const t = (await inProc('train', '--preset', 'tiny', '--config', 'base'));
  assert.is(t.code, 2);
  assert.match(t.err, /give --preset or --config base, not both/);
});

test('train from a run configuration with --model-config: run.json, report.html, plain progress lines off a terminal; eval rebuilds the model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aptune-cli-'));
  const data = join(dir, 'synth'), out = join(dir, 'run');
  assert.is((await inProc('synth', '--out', data, '--size', 'tiny')).code, 0);
  const file = join(dir, 'run.json');
  writeFileSync(file, JSON.stringify({ data, task: 'vqa', backbone: 'vilt', config: 'tiny', 'model-config': { hidden_size: 48, num_attention_heads: 4 },
    'max-steps': 4, 'batch-size': 4, 'log-every': 2, out, 'no-randaug': true }));
  const r = (await inProc('train', '--config', file, '--seed', '3'));
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /^step 2\/4 {2}epoch \d+ {2}loss \d+\.\d{4} {2}vqa \d\.\d{4} {2}.*ETA/m);
  assert.match(r.err, /^step 4\/4 /m);
  assert.match(r.err, /^eval @ step 4 \(epoch \d+\): vqa_score /m);
  assert.not.match(r.out + r.err, /\{"type":"train"/, 'no JSON records without --json');
  const rf = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.is(rf.resolved.modelConfig.hidden, 48);
  assert.is(rf.resolved.seed, 3);
  assert.equal(rf.options.modelOverrides, { hidden_size: 48, num_attention_heads: 4 });
  assert.is(rf.summary.steps, 4);
  assert.ok(rf.summary.updatedParams > 0 && rf.summary.msPerStep > 0 && rf.summary.peakRssBytes > 0, JSON.stringify(rf.summary));
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<td>vqa_score \d\.\d{4}<\/td>/);
  const e = (await inProc('eval', '--data', data, '--task', 'vqa', '--checkpoint', join(out, 'last.safetensors')));
  assert.is(e.code, 0, e.err);
  assert.is(JSON.parse(e.out.trim().split('\n').pop()!).count, 20);
  const j = (await inProc('train', '--config', file, '--json', '--max-steps', '2', '--out', join(dir, 'run2'), '--no-report'));
  assert.is(j.code, 0, j.err);
  assert.equal(j.out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).type), ['train', 'train', 'eval']);
  assert.not.ok(existsSync(join(dir, 'run2', 'report.html')));
});

test.run();
