#!/usr/bin/env node
// The `aptune` command (package bin): registers tsx so Node can load the TypeScript sources, then runs
// train/cli.ts. Holds no logic; the exit status is the CLI's.
import { register } from 'tsx/esm/api';

register();
const { main, quietOnClosedPipe } = await import('../train/cli.ts');
quietOnClosedPipe();
process.exitCode = await main(process.argv.slice(2));
