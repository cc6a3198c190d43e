// `npm run size`: counts non-blank, non-comment lines per area of the code (DESIGN.md lesson 12: size is a budget) and
// exits 1 when an area is above its budget. `npm test`'s driver (scripts/test.mjs) runs it first, so CI checks it.
// Areas are matched in table order, first match wins: by folder where an area is a folder, by file list otherwise
// (the synthetic experiments also match train/experiments/ should they move there). --json prints the figures only.
// Does not: count tests, benchmarks, scripts, generated kernels' binaries or fixtures. Raising a budget is a decision
// to record in the commit that does it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** area, budget (lines; set about 5% above the figures of December 2026), and what belongs to it: folders (prefix
 *  match) and single files. */
const AREAS = [
  { area: 'engine kernels (AssemblyScript)', budget: 1070, folders: ['engine/assembly/'], files: [] },
  { area: 'engine (TypeScript)', budget: 4870, folders: ['engine/'], files: [] },
  { area: 'models', budget: 2560, folders: ['models/'], files: [] },
  { area: 'experiments (synthetic benchmark, pre-training, comparisons)', budget: 2320, folders: ['experiments/'], files: [] },
  { area: 'data (readers, formats, images, tokenizers)', budget: 4380, folders: ['data/'], files: [] },
  { area: 'training (train/)', budget: 2670, folders: ['train/'], files: [] },
  { area: 'native + cuda', budget: 2860, folders: ['native/', 'cuda/'], files: [] },
];
const EXT = /\.(ts|mjs|cc|h|cu|cuh)$/;
const SKIP = /(^|\/)(build|node_modules)\//;

const root = new URL('..', import.meta.url).pathname;

function walk(dir) {
  let out = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else out.push(relative(root, p));
  }
  return out;
}

/** Lines that are neither blank nor comments (// line comments, C-style block comments). */
export function codeLines(text) {
  let n = 0, inBlock = false;
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (inBlock) {
      const end = line.indexOf('*/');
      if (end < 0) continue;
      inBlock = false;
      line = line.slice(end + 2).trim();
    }
    while (line.startsWith('/*')) {
      const end = line.indexOf('*/', 2);
      if (end < 0) { inBlock = true; line = ''; break; }
      line = line.slice(end + 2).trim();
    }
    if (line === '' || line.startsWith('//')) continue;
    n++;
  }
  return n;
}

const counts = AREAS.map((a) => ({ ...a, lines: 0, nfiles: 0 }));
for (const f of ['engine', 'models', 'data', 'train', 'experiments', 'native', 'cuda'].flatMap((d) => walk(join(root, d)))) {
  if (!EXT.test(f) || SKIP.test(f)) continue;
  const a = counts.find((c) => c.files.includes(f) || c.folders.some((d) => f.startsWith(d)));
  if (!a) continue;
  a.lines += codeLines(readFileSync(join(root, f), 'utf8'));
  a.nfiles++;
}
if (process.argv.includes('--json')) {
  console.log(JSON.stringify(Object.fromEntries(counts.map((c) => [c.area, c.lines]))));
} else {
  const w = Math.max(...counts.map((c) => c.area.length));
  for (const c of counts) {
    console.log(`${c.area.padEnd(w)}  ${String(c.lines).padStart(6)} / ${String(c.budget).padStart(6)} lines  (${c.nfiles} files)${c.lines > c.budget ? '  OVER BUDGET' : ''}`);
  }
  console.log(`${'total'.padEnd(w)}  ${String(counts.reduce((s, c) => s + c.lines, 0)).padStart(6)}`);
}
const over = counts.filter((c) => c.lines > c.budget);
if (over.length) {
  console.error(`size: over budget: ${over.map((c) => `${c.area} ${c.lines} > ${c.budget}`).join('; ')}`);
  process.exit(1);
}
