// The embedded default data set: the synthetic benchmark (experiments/synthetic.ts, default size, data seed 0)
// generated on first use into a cache folder ($APTUNE_CACHE, else ~/.cache/aptune) named by SYNTH_VERSION, so
// `aptune pretrain --preset synth`, `npm start` and `aptune table --mini` need no --data. Generation takes seconds.
// Invariants: the folder appears only complete (generated into a temporary sibling, then renamed); its content is a
// pure function of (SYNTH_VERSION, seed, size), so a cached copy is reused as is and never regenerated.
// Does not: lock against a concurrent generator beyond the rename (two racing processes write the same bytes; the
// loser removes its copy).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSynthetic, SYNTH_VERSION } from './synthetic.ts';

export const DEFAULT_DATA_SEED = 0;

/** The cache root: $APTUNE_CACHE, else ~/.cache/aptune. */
export function cacheRoot(): string {
  return process.env.APTUNE_CACHE || path.join(os.homedir(), '.cache', 'aptune');
}

/** The folder of the default synthetic benchmark for a data seed (generated if absent); returns its path. */
export async function ensureSynthData(o: { seed?: number; log?: (s: string) => void } = {}): Promise<string> {
  const seed = o.seed ?? DEFAULT_DATA_SEED;
  const dir = path.join(cacheRoot(), `synth-v${SYNTH_VERSION}-seed${seed}`);
  if (fs.existsSync(path.join(dir, 'report.json'))) return dir;
  fs.mkdirSync(cacheRoot(), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const t0 = performance.now();
  await generateSynthetic({ out: tmp, seed, preset: 'default' });
  try { fs.renameSync(tmp, dir); } catch (e) {
    if (!fs.existsSync(path.join(dir, 'report.json'))) throw e;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  o.log?.(`generated the synthetic benchmark (v${SYNTH_VERSION}, data seed ${seed}) into ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}
