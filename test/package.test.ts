// The package as a user gets it: `npm pack` (prepack builds dist/ and the WebAssembly kernels), the tarball installed
// into a fresh temporary project (dependencies from the npm cache or registry; install scripts are npm's business:
// npm 11 skips them unless allowed, so nothing here depends on them), then as that user:
//   - the tarball holds dist/, the prebuilt kernels, the addon sources and no test fixtures, and is <= 3 MB;
//   - a plain-JavaScript .mjs consumer runs the README's library example (three training steps) on the default
//     backend, with no tsx and no build step, and imports the namespaces aptune/engine, aptune/models, aptune/train;
//   - the unbuilt cuda backend names the command that builds it (`npx aptune build-native`);
//   - `npx aptune --help` lists the commands;
//   - a TypeScript consumer type-checks with tsc (strict, NodeNext, no skipLibCheck) against the shipped .d.ts,
//     including a method option error that must be a compile error.
// APTUNE_SKIP_PACK_TEST=1 skips it (visibly).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const MB = 1024 * 1024;

function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  if (r.error) throw r.error;
  return r;
}
const show = (r: SpawnSyncReturns<string>) => `exit ${r.status}\n${r.stdout}\n${r.stderr}`.slice(-4000);

if (process.env.APTUNE_SKIP_PACK_TEST === '1') {
  console.log('SKIPPED: the packed-tarball test (APTUNE_SKIP_PACK_TEST=1)');
  test.skip('packed tarball installs and runs as a user would', () => {});
} else {
  test('packed tarball installs and runs as a user would', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aptune-pack-'));
    const t0 = Date.now();
    try {
      const pack = sh('npm', ['pack', '--json', '--pack-destination', dir], root);
      assert.is(pack.status, 0, show(pack));
      const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; size: number; files: { path: string }[] }[];
      const tgz = join(dir, info[0].filename);
      const files = info[0].files.map((f) => f.path);
      const size = statSync(tgz).size;
      console.log(`tarball ${info[0].filename}: ${(size / MB).toFixed(2)} MB, ${files.length} files (packed in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      assert.ok(size <= 3 * MB, `tarball is ${size} bytes, over 3 MB`);
      for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/index.js.map', 'dist/train/cli.js', 'dist/data/images.js', 'dist/experiments/index.js', 'dist/engine/assembly/build/simd.wasm',
        'dist/engine/assembly/build/relaxed-mt.wasm', 'bin/aptune.js', 'scripts/build-native.mjs', 'scripts/install.mjs', 'CMakeLists.txt',
        'native/addon.cc', 'README.md', 'LICENSE', 'package.json']) assert.ok(files.includes(f), `tarball lacks ${f}`);
      assert.ok(files.some((f) => f.startsWith('cuda/') && f.endsWith('.cu')), 'tarball lacks the CUDA kernels');
      const stray = files.filter((f) => /^(test|bench|reference|node_modules)\/|\.test\.|fixtures|^(engine|models|train|data|experiments)\/.*\.ts$/.test(f));
      assert.equal(stray, [], 'tarball ships files a user does not run');

      const proj = join(dir, 'consumer');
      sh('mkdir', ['-p', proj], dir);
      writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      const t1 = Date.now();
      const inst = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tgz], proj, { APTUNE_SKIP_NATIVE: '1' });
      assert.is(inst.status, 0, show(inst));
      console.log(`npm install of the tarball: ${((Date.now() - t1) / 1000).toFixed(1)} s`);
      assert.not.ok(readdirSync(join(proj, 'node_modules')).includes('tsx'), 'tsx must not be a runtime dependency');

      // the README's library example, as plain JavaScript, plus the namespaces and the default backend
      const block = /```js\n([\s\S]*?)```/.exec(readme);
      assert.ok(block, 'README has a ```js library example');
      writeFileSync(join(proj, 'example.mjs'), block![1] + `
import * as aptuneEngine from 'aptune/engine';
import * as aptuneModels from 'aptune/models';
import * as aptuneTrain from 'aptune/train';
console.log('backend ' + aptuneEngine.getBackend().name);
console.log('namespaces ' + [typeof aptuneModels.createModel, typeof aptuneTrain.Trainer, typeof aptuneTrain.writeReport].join(','));
const cuda = aptuneEngine.backendStatus().find((b) => b.name === 'cuda');
console.log('cuda ' + (cuda ? (cuda.available ? 'available' : cuda.reason) : 'not registered'));
`);
      const ex = sh(process.execPath, ['example.mjs'], proj, { APTUNE_BACKEND: '' });
      assert.is(ex.status, 0, show(ex));
      const losses = [...ex.stdout.matchAll(/step (\d): loss ([\d.]+)/g)].map((m) => Number(m[2]));
      assert.is(losses.length, 3, ex.stdout);
      assert.ok(losses[2] < losses[0], `loss should decrease: ${losses.join(', ')}`);
      assert.match(ex.stdout, /^backend wasm$/m, 'the default backend on a CPU install is the prebuilt wasm');
      assert.match(ex.stdout, /^namespaces function,function,function$/m);
      const cudaLine = /^cuda (.*)$/m.exec(ex.stdout)?.[1] ?? '';
      if (cudaLine !== 'available') assert.match(cudaLine, /npx aptune build-native|driver|GPU|cuBLAS|libcublas/i, `unbuilt cuda must name its build command: ${cudaLine}`);
      if (/not built/.test(cudaLine)) assert.match(cudaLine, /npx aptune build-native/);

      const help = sh('npx', ['--no-install', 'aptune', '--help'], proj);
      assert.is(help.status, 0, show(help));
      for (const c of ['train', 'eval', 'report', 'build-native', 'table']) assert.match(help.stdout, new RegExp(`^\\s+${c}\\b`, 'm'), `npx aptune --help lacks ${c}`);

      // a TypeScript consumer, type-checked against the shipped declarations
      writeFileSync(join(proj, 'consumer.ts'), `
import { engine, models, optim } from 'aptune';
import { tensor, type Tensor } from 'aptune/engine';
import { createModel, resolveModelConfig, type MethodOptionsFor } from 'aptune/models';
import { Trainer, writeReport, type StepRecord } from 'aptune/train';
import { runCompare, type CompareOptions } from 'aptune/experiments';
const t: Tensor = tensor([1, 2, 3]);
const model = createModel({ backbone: 'vilt', config: { preset: 'tiny', hidden: 96 }, task: 'vqa', numAnswers: 7, method: 'lora', methodOptions: { rank: 2 } });
const opt: optim.AdamW = new optim.AdamW(models.parameterGroups(model, { lr: 1e-3, weightDecay: 0.01 }), { lr: 1e-3 });
const apt: MethodOptionsFor<'apt'> = { tokens: 6, rank: 2 };
const cfg = resolveModelConfig('vilt', { hidden_size: 96, num_hidden_layers: 2, num_attention_heads: 4 });
// @ts-expect-error: 'tokens' is not a LoRA option
createModel({ backbone: 'vilt', config: 'tiny', task: 'vqa', method: 'lora', methodOptions: { tokens: 6 } });
// @ts-expect-error: rank is a number
const bad: MethodOptionsFor<'apt'> = { rank: 'four' };
const rec: StepRecord | undefined = undefined;
const cmp: Partial<CompareOptions> = {};
void [t, opt, apt, cfg, bad, rec, cmp, Trainer, writeReport, runCompare, engine];
`);
      writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022'], strict: true, noEmit: true,
          types: ['node'], typeRoots: [join(root, 'node_modules/@types')] },
        files: ['consumer.ts'],
      }));
      const tsc = sh(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], proj);
      assert.is(tsc.status, 0, show(tsc));
      console.log(`pack test: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
