// Where a result came from: the git commit of the source tree (with "-dirty" when tracked files differ from it),
// the machine (CPU model, cores, OS, Node), the command line and the digest of an input file (which weights a result
// was measured on: a file name does not say). Recorded in pre-trained checkpoints and result files.
// Does not: fail when git or the repository is missing (the commit is then "unknown").
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The commit of the source tree, "<sha>-dirty" if tracked files are modified, "unknown" without git. */
export function sourceCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch { return 'unknown'; }
}

/** One line describing the machine: CPU model x cores, OS, Node version. */
export function machineLine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'} x ${cpus.length}, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

/** The command as typed, "aptune <args>". */
export function commandLine(argv: readonly string[] = process.argv.slice(2)): string {
  return ['aptune', ...argv.map((a) => (/^[\w./=,:+-]+$/.test(a) ? a : JSON.stringify(a)))].join(' ');
}

/** The SHA-256 of a file's bytes, hex. */
export function fileSha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
