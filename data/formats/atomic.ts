// Atomic file writes: every file this project writes (Arrow tables, reports, checkpoints) goes to a temporary file
// in the destination's directory and is renamed into place only after it was fully written and fsync'ed.
// After the rename the directory is fsync'ed too (so the rename itself survives a power cut). removeStaleTemps
// deletes the temporaries a killed process left beside a destination.
// Fault injection for the kill tests: APTUNE_FAULT_ATOMIC="<basename>:<n>:<phase>" SIGKILLs this process during the
// n-th (1-based) synchronous atomic write of a file of that base name, at phase 'partial' (half the temporary
// written), 'written' (temporary complete, not renamed) or 'renamed' (renamed, directory not yet synced).
// Does not: lock files against concurrent writers, or keep backups of the file it replaces.
// Invariants: the destination path either keeps its old content or holds the complete new content, never a
// partial file; on any failure the temporary file is removed and the error is rethrown unchanged.
import * as fs from 'node:fs';
import * as path from 'node:path';

let counter = 0;
const faultCounts = new Map<string, number>();

/** Kills this process (SIGKILL: no handler, no cleanup) when APTUNE_FAULT_ATOMIC names this write and phase. */
function fault(dest: string, phase: 'partial' | 'written' | 'renamed', count: boolean): void {
  const spec = process.env.APTUNE_FAULT_ATOMIC;
  if (!spec) return;
  const [base, n, ph] = spec.split(':');
  if (base !== path.basename(dest)) return;
  if (count) faultCounts.set(base, (faultCounts.get(base) ?? 0) + 1);
  if (faultCounts.get(base) === Number(n) && ph === phase) process.kill(process.pid, 'SIGKILL');
}

/**
 * Create the folder `dir` (and its parents) for output, or fail with an error that names it and what it is for
 * (`what`, e.g. "--out") when it, or a parent on its path, is a file: mkdirSync's bare EEXIST / ENOTDIR name neither.
 */
export function ensureDirSync(dir: string, what: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      let p = path.resolve(dir);
      while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
      throw new Error(`${what} ${dir}: cannot create the folder, ${p} is a file`);
    }
    throw new Error(`${what} ${dir}: cannot create the folder (${(e as Error).message})`);
  }
}

/** fsync a directory so a rename inside it is durable (not supported everywhere: errors are ignored). */
export function syncDir(dir: string): void {
  let fd = -1;
  try { fd = fs.openSync(dir, 'r'); fs.fsyncSync(fd); } catch { /* e.g. Windows: directories cannot be opened */ } finally { if (fd >= 0) fs.closeSync(fd); }
}

/** Remove the temporaries (`.<base>.tmp-*`) that a killed writer left beside `dest`; returns their names. */
export function removeStaleTemps(dest: string): string[] {
  const dir = path.dirname(dest), prefix = `.${path.basename(dest)}.tmp-`;
  let names: string[];
  try { names = fs.readdirSync(dir).filter((n) => n.startsWith(prefix)); } catch { return []; }
  for (const n of names) fs.rmSync(path.join(dir, n), { force: true });
  return names;
}

/** A unique temporary path next to `dest` (same directory, so the final rename never crosses file systems). */
export function tempPathFor(dest: string): string {
  const dir = path.dirname(dest);
  const base = path.basename(dest);
  counter += 1;
  return path.join(dir, `.${base}.tmp-${process.pid}-${Date.now().toString(36)}-${counter}`);
}

/**
 * Run `write(tmpPath)`, which must create and fully write `tmpPath`; then fsync it and rename it onto `dest`.
 * The destination directory is created if needed. On error the temporary file is unlinked.
 */
export async function withAtomicFile<T>(dest: string, write: (tmpPath: string) => Promise<T>): Promise<T> {
  await fs.promises.mkdir(path.dirname(dest), { recursive: true });
  const tmp = tempPathFor(dest);
  try {
    const result = await write(tmp);
    const fh = await fs.promises.open(tmp, 'r+');
    try { await fh.sync(); } finally { await fh.close(); }
    await fs.promises.rename(tmp, dest);
    syncDir(path.dirname(dest));
    return result;
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Write `data` to `dest` atomically. */
export async function writeFileAtomic(dest: string, data: Uint8Array | string): Promise<void> {
  await withAtomicFile(dest, async (tmp) => {
    await fs.promises.writeFile(tmp, data);
  });
}

/** Synchronous variant for small files (reports, configs). */
export function writeFileAtomicSync(dest: string, data: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = tempPathFor(dest);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      if (process.env.APTUNE_FAULT_ATOMIC) {
        const half = typeof data === 'string' ? Buffer.from(data) : data;
        fs.writeSync(fd, half, 0, half.byteLength >> 1);
        fault(dest, 'partial', true);
        fs.writeSync(fd, half, half.byteLength >> 1, half.byteLength - (half.byteLength >> 1));
      } else fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fault(dest, 'written', false);
    fs.renameSync(tmp, dest);
    fault(dest, 'renamed', false);
    syncDir(path.dirname(dest));
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
