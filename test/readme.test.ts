// The README stays true: its library example runs as written (with 'aptune' resolved to this checkout's index.ts),
// prints three steps and the loss goes down; every command the README lists exists in `aptune --help`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

test('the README library example runs and its loss decreases', () => {
  const block = /```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has a ```js example');
  const dir = mkdtempSync(join(tmpdir(), 'aptune-readme-'));
  try {
    const file = join(dir, 'example.ts');
    writeFileSync(file, block![1].replace(/from 'aptune'/g, `from ${JSON.stringify(join(root, 'index.ts'))}`));
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const losses = [...r.stdout.matchAll(/step (\d): loss ([\d.]+)/g)].map((m) => Number(m[2]));
    assert.is(losses.length, 3, r.stdout);
    assert.ok(losses[2] < losses[0], `loss should decrease: ${losses.join(', ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every command the README lists is an aptune command', () => {
  const help = spawnSync(process.execPath, [join(root, 'bin/aptune.js'), '--help'], { encoding: 'utf8' }).stdout;
  const listed = [...readme.matchAll(/^aptune ([a-z|]+)/gm)].flatMap((m) => m[1].split('|'));
  assert.ok(listed.length >= 5, `README lists commands: ${listed}`);
  for (const c of listed) assert.match(help, new RegExp(`^\\s+${c}\\b`, 'm'), `README lists 'aptune ${c}' but --help does not`);
});

test.run();
