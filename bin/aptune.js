#!/usr/bin/env node
// The `aptune` command (package bin). In a checkout (train/cli.ts beside this folder) it registers tsx and runs the
// TypeScript sources, so the repository never needs a build; in an installed package it runs the compiled
// dist/train/cli.js. Holds no logic; the exit status is the CLI's.
import { existsSync } from 'node:fs';

const source = new URL('../train/cli.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  const compiled = new URL('../dist/train/cli.js', import.meta.url);
  if (!existsSync(compiled)) {
    console.error('aptune: dist/train/cli.js is missing: this copy of aptune was not built (run `npm run build` in it)');
    process.exit(1);
  }
  cli = await import(compiled.href);
}
cli.quietOnClosedPipe();
process.exitCode = await cli.main(process.argv.slice(2));
