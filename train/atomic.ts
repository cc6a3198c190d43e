// Atomic file writes: every file this project writes (Arrow tables, reports, checkpoints) goes to a temporary file
// in the destination's directory and is renamed into place only after it was fully written and fsync'ed.
// Does not: lock files against concurrent writers, or keep backups of the file it replaces.
// Invariants: the destination path either keeps its old content or holds the complete new content, never a
// partial file; on any failure the temporary file is removed and the error is rethrown unchanged.
import * as fs from 'node:fs';
import * as path from 'node:path';

let counter = 0;

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
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, dest);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
