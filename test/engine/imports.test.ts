// The import graph of engine/**/*.ts is acyclic (DESIGN.md: dependencies run one way). Parses every import and
// re-export with a module specifier (side-effect imports included) and fails naming the first cycle it finds.
// Type-only imports count too: engine/ keeps even its type dependencies one-way.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? (n === 'build' ? [] : files(p)) : n.endsWith('.ts') ? [p] : [];
  });
}

/** Relative module specifiers of a file's imports and re-exports. */
export function importsOf(text: string): string[] {
  // line comments first (they may mention a path with /*), then block comments
  const code = text.replace(/(^|\s)\/\/.*$/gm, '$1').replace(/\/\*[\s\S]*?\*\//g, '');
  const out: string[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('.')) out.push(spec);
  }
  return out;
}

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files(join(root, 'engine'))) {
    const deps = importsOf(readFileSync(f, 'utf8')).map((s) => {
      const p = resolve(dirname(f), s);
      return existsSync(p) ? p : `${p}.ts`; // AssemblyScript imports omit the extension
    }).filter((p) => p.startsWith(join(root, 'engine')));
    g.set(f, deps);
  }
  return g;
}

function findCycle(g: Map<string, string[]>): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1 on the stack, 2 done
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 1);
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (!state.has(d)) { const c = visit(d); if (c) return c; }
    }
    stack.pop();
    state.set(n, 2);
    return null;
  };
  for (const n of [...g.keys()].sort()) if (!state.has(n)) { const c = visit(n); if (c) return c; }
  return null;
}

test('the parser sees imports, type imports, re-exports and side-effect imports', () => {
  const src = "// see engine/backends/*\n/** doc */\nimport { a } from './a.ts';\nimport type { B } from './b.ts';\nexport { c } from './c.ts';\nimport './d.ts';\nimport {\n  e,\n} from './e';\n// import './no.ts';\nimport x from 'node:fs';\n";
  assert.equal(importsOf(src), ['./a.ts', './b.ts', './c.ts', './d.ts', './e']);
});

test('engine/ has no import cycle', () => {
  const g = graph();
  assert.ok(g.size > 20, `parsed ${g.size} files`);
  const cycle = findCycle(g);
  assert.equal(cycle?.map((p) => relative(root, p)).join(' -> ') ?? null, null);
});

test('a cycle is reported', () => {
  const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]);
  assert.equal(findCycle(g), ['a', 'b', 'c', 'a']);
});

test.run();
