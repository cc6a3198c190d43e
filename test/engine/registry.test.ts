// Backend selection: APTUNE_BACKEND picks a backend by name (an unavailable or unknown name is an error, never a
// silent fallback); otherwise the highest-priority available backend is the default. Runs child processes so the
// environment variable is read fresh.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { backendStatus, registerBackend } from '../../engine/index.ts';

const root = new URL('../..', import.meta.url).pathname;
const probe = `import('./engine/index.ts').then((E) => { try { console.log('DEFAULT=' + E.getBackend().name); } catch (e) { console.log('ERROR=' + e.message); } });`;
function defaultIn(env: Record<string, string | undefined>): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('DEFAULT=') || l.startsWith('ERROR='));
  if (!line) throw new Error(`probe failed: ${r.stderr}`);
  return line;
}

test('APTUNE_BACKEND selects by name; an unknown name is an error naming the registered ones', () => {
  assert.is(defaultIn({ APTUNE_BACKEND: 'ref' }), 'DEFAULT=ref');
  assert.match(defaultIn({ APTUNE_BACKEND: 'nope' }), /^ERROR=backend "nope" is not registered \(registered: .*ref/);
});

test('without APTUNE_BACKEND the highest-priority available backend is the default', () => {
  const best = backendStatus().filter((s) => s.available && s.priority >= 0)[0];
  assert.is(defaultIn({ APTUNE_BACKEND: undefined }), `DEFAULT=${best.name}`);
});

test('registering a name twice is an error', () => {
  assert.throws(() => registerBackend('ref', () => { throw new Error('unused'); }, 0), /registered twice/);
});

test.run();
