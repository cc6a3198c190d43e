// The folders are the architecture: dependencies between the top-level source folders run one way,
//   experiments -> train -> models -> engine,   and data/ is used by train/ and experiments/,
// so each folder may import only the folders below it. This test reads every .ts file of each folder as text and
// fails naming the file and the import for any relative import (static `import` / `export ... from`, or dynamic
// `import()`) that reaches a folder the rule forbids.
// Allowed exception: train/cli.ts reaches experiments/ only through a dynamic `import()` inside a command (the CLI
// is the one entry point for every command; train/ does not otherwise know experiments/).
// Does not: resolve bare package imports (node:, sharp, apache-arrow are not folders of this repository), or
// check the test/, bench/ and scripts/ folders (they may import anything).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';

const root = join(import.meta.dirname, '..');

/** Folders each top-level source folder must not import. */
const FORBIDDEN: Record<string, readonly string[]> = {
  engine: ['models', 'data', 'train', 'experiments'],
  models: ['data', 'train', 'experiments'],
  data: ['engine', 'models', 'train', 'experiments'],
  train: ['experiments'],
  experiments: [],
};
/** file -> folders it may reach through a dynamic import() only. */
const DYNAMIC_ONLY: Record<string, readonly string[]> = { 'train/cli.ts': ['experiments'] };

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (name !== 'node_modules' && name !== 'assembly') out.push(...tsFiles(p)); }
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative import specifiers of a source text: [specifier, dynamic]. */
function relativeImports(src: string): [string, boolean][] {
  const out: [string, boolean][] = [];
  for (const m of src.matchAll(/\b(?:from|import)\s*(['"])(\.{1,2}\/[^'"]*)\1/g)) out.push([m[2], false]);
  for (const m of src.matchAll(/\bimport\s*\(\s*(['"])(\.{1,2}\/[^'"]*)\1/g)) out.push([m[2], true]);
  return out;
}

/** The top-level folder a specifier of `file` (repository-relative) reaches. */
function folderOf(file: string, spec: string): string {
  return posix.normalize(posix.join(posix.dirname(file), spec)).split('/')[0];
}

/** Every forbidden import of the tree, as 'file: specifier (folder -> folder)'. */
function violations(): { files: number; bad: string[] } {
  const bad: string[] = [];
  let files = 0;
  for (const [folder, forbidden] of Object.entries(FORBIDDEN)) {
    for (const abs of tsFiles(join(root, folder))) {
      const file = relative(root, abs).split(sep).join('/');
      files++;
      for (const [spec, dynamic] of relativeImports(readFileSync(abs, 'utf8'))) {
        const to = folderOf(file, spec);
        if (!forbidden.includes(to)) continue;
        if (dynamic && DYNAMIC_ONLY[file]?.includes(to)) continue;
        bad.push(`${file}: '${spec}' (${folder}/ -> ${to}/${dynamic ? ', dynamic' : ''})`);
      }
    }
  }
  return { files, bad };
}

test('the import scanner sees static, re-export, side-effect and dynamic imports', () => {
  const src = `import { a } from '../engine/index.ts';\nexport * as b from "./b.ts";\nimport '../models/x.ts';\n` +
    `import {\n  c,\n} from '../../train/c.ts';\nconst d = await import('../experiments/d.ts');\nimport sharp from 'sharp';`;
  assert.equal(relativeImports(src), [
    ['../engine/index.ts', false], ['./b.ts', false], ['../models/x.ts', false], ['../../train/c.ts', false],
    ['../experiments/d.ts', true],
  ]);
  assert.is(folderOf('data/formats/arrow.ts', '../../engine/index.ts'), 'engine');
  assert.is(folderOf('data/formats/arrow.ts', './bytes.ts'), 'data');
});

test('data/ imports neither engine/ nor models/ (nor train/, experiments/); every folder imports only those below it', () => {
  const { files, bad } = violations();
  assert.ok(files > 50, `scanned ${files} files`);
  assert.equal(bad, [], `imports against the layering:\n${bad.join('\n')}`);
});

test('each layer folder exists and holds sources', () => {
  for (const folder of Object.keys(FORBIDDEN)) assert.ok(tsFiles(join(root, folder)).length > 0, `${folder}/ has no .ts files`);
});

test.run();
