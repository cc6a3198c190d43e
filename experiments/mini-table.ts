// `aptune table --mini`: the miniature version of the paper's table on the synthetic benchmark. Cells: the shipped
// ViLT (pretrained/vilt-synth.safetensors) on VQA (test VQA score), NLVR2 (test1 accuracy) and retrieval (test IR and
// TR R@1), and the shipped METER on VQA; rows: the seven methods of the paper's table. Every cell is one runCompare
// (experiments/compare.ts; nothing here trains or scores by itself) with the same learning-rate grid for every method
// (chosen on the validation table, first seed, same step budget), then the remaining seeds at the chosen rate.
// Writes OUT/mini-table.json (one row per backbone x task x method with every seed's value, the chosen rate and the
// grid's validation scores, params, additional MACs, ms/step, peak memory, the cell's floors) and OUT/mini-table.md,
// both stating the command, the commit and the machine; runs go to OUT/cells/<backbone>-<task>/runs/. Both files
// are rewritten after every finished method, so an interrupted table keeps what it measured and lists what was not run.
// A table can be measured a cell at a time: a run into an OUT that already holds a table of the same settings keeps
// that table's other cells, and `table --mini --merge FILE` adds the cells of another run's table (mergeMiniTables);
// every cell records the command, commit, machine and date that measured it. Inside a cell, a run whose directory holds
// its own checkpoint (same options, run config and source commit) is resumed, or reused when finished, so a killed
// table run again goes on where it stopped with the scores of an uninterrupted run.
// Invariants: rows are in MINI_CELLS x methods order; mean and std are over the seeds' test values (std: n - 1).
// Does not: run cells in parallel; gate on the backbones (aptune pretrain and test/train/shipped.test.ts do).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProgressMode } from '../train/progress.ts';
import { runCompare, floorRows, primaryMetricName, type CompareResult, type Floors } from './compare.ts';
import type { Backbone, Preset } from '../train/run.ts';
import type { ModelTask } from '../train/batch.ts';
import { PAPER_METHODS } from '../models/index.ts';
import { ensureSynthData } from './synth-cache.ts';
import { resolvePretrained } from '../train/pretrained.ts';
import { ensureDirSync, writeFileAtomicSync } from '../data/formats/atomic.ts';
import { commandLine, fileSha256, machineLine, sourceCommit } from '../train/provenance.ts';

export interface MiniCell { backbone: Backbone; task: ModelTask }

export const MINI_CELLS: readonly MiniCell[] = Object.freeze([
  { backbone: 'vilt', task: 'vqa' }, { backbone: 'vilt', task: 'nlvr2' }, { backbone: 'vilt', task: 'irtr' }, { backbone: 'meter', task: 'vqa' },
]);

/** The paper's table, in its row order (the registry's PAPER_METHODS). */
export const MINI_METHODS: readonly string[] = PAPER_METHODS;

/**
 * Retrieval: random captions drawn per image as the ranking loss's negatives. The reference draws 15
 * (draw_false_text); the miniature draws 3, which cuts a retrieval step's sequences from 16 to 4 per image.
 */
export const MINI_NEGATIVES = 3;

/** One small grid for every method: the reference's full-tuning rate, its PETL rate, and 4x above it. */
export const MINI_LR_GRID: readonly number[] = Object.freeze([1e-4, 5e-4, 2e-3]);

export interface MiniOptions {
  /** default: the embedded synthetic benchmark (synth-cache.ts) */
  data?: string;
  out: string;
  seeds: number[];
  steps: number;
  methods?: readonly string[];
  cells?: readonly MiniCell[];
  lrGrid?: readonly number[];
  batchSize?: number;
  /** retrieval cells: negatives per image (default MINI_NEGATIVES) */
  negatives?: number;
  /** backbone file per backbone (default: the shipped preset 'synth'); preset = model config preset (default: the file's) */
  pretrained?: Partial<Record<Backbone, string>>;
  config?: Preset;
  maxTextLen?: number;
  command?: string;
  log?: (s: string) => void;
  /** live display of each run (CompareOptions.progress) */
  progress?: ProgressMode;
}

export interface MiniRow {
  backbone: Backbone; task: ModelTask; method: string; metric: string;
  lr: number; lrSearch: { lr: number; val: number }[] | null;
  seeds: { seed: number; value: number; metrics: Record<string, number> }[];
  mean: number; std: number;
  /** retrieval: IR and TR R@1 separately (mean ± std over seeds) */
  parts?: Record<string, { mean: number; std: number }>;
  params: number; trainable: number; addMacs: number; unmergedMacs?: number; tokens: { text: number; image: number };
  msPerStep: number; peakRssMb: number;
}

/** Who measured a cell: the command, the commit, the machine and the date of its run. */
export interface MiniProvenance { command: string; commit: string; machine: string; date: string }

export interface MiniTable extends MiniProvenance {
  settings: { steps: number; seeds: number[]; lrGrid: number[]; batchSize: number | null; methods: string[]; data: string };
  cells: {
    backbone: Backbone; task: ModelTask; metric: string; pretrained: string | null; floors: Floors | null; done: boolean; seconds: number | null; run?: MiniProvenance;
    /** SHA-256 of the backbone file the cell's runs started from (the name alone does not say which weights) */
    pretrainedSha256?: string;
    /** retrieval cells: negative captions per image the runs trained with */
    negatives?: number;
    /** a cell measured in parts (disjoint methods, e.g. two processes side by side): each part's run; `seconds` is their sum */
    parts?: MiniProvenance[];
  }[];
  rows: MiniRow[];
  notRun: string[];
}

function meanStd(a: number[]): { mean: number; std: number } {
  const m = a.reduce((s, x) => s + x, 0) / a.length;
  return { mean: m, std: a.length < 2 ? 0 : Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1)) };
}

function rowsOf(cell: MiniCell, r: CompareResult): MiniRow[] {
  return r.rows.map((row) => {
    const parts = cell.task === 'irtr'
      ? { ir_r1: meanStd(row.seeds.map((s) => s.metrics.ir_r1)), tr_r1: meanStd(row.seeds.map((s) => s.metrics.tr_r1)) }
      : undefined;
    return {
      backbone: cell.backbone, task: cell.task, method: row.method, metric: r.settings.metric, lr: row.lr, lrSearch: row.lrSearch ?? null,
      seeds: row.seeds.map((s) => ({ seed: s.seed, value: s.test, metrics: s.metrics })), mean: row.mean, std: row.std, ...(parts ? { parts } : {}),
      params: row.params, trainable: row.trainable, addMacs: row.addMacs, ...(row.unmergedMacs !== undefined ? { unmergedMacs: row.unmergedMacs } : {}), tokens: row.tokens,
      msPerStep: row.msPerStep, peakRssMb: row.peakRssMb,
    };
  });
}

const pc = (x: number) => (100 * x).toFixed(2);
const num = (x: number) => x.toLocaleString('en-US');

/** The Markdown report of a (possibly partial) mini table. */
export function formatMiniTable(t: MiniTable): string {
  const L: string[] = [];
  L.push('# Miniature paper table (synthetic benchmark)', '');
  L.push(`Generated by \`${t.command}\` at commit \`${t.commit}\` on ${t.machine}, ${t.date}.`, '');
  L.push(`${t.settings.steps} steps per run, seeds ${t.settings.seeds.join(', ')}; learning rate per method chosen from {${t.settings.lrGrid.join(', ')}} on the validation table with the first seed and the same step budget; cells give the test metric as mean ± std (sample std over seeds), in percent.`, '');
  for (const c of t.cells) {
    const rows = t.rows.filter((r) => r.backbone === c.backbone && r.task === c.task);
    L.push(`## ${c.backbone.toUpperCase()} / ${c.task} (${c.metric})${c.done ? '' : ' - NOT COMPLETE'}`, '');
    if (c.pretrained) L.push(`Backbone: \`${path.basename(c.pretrained)}\`${c.pretrainedSha256 ? ` (sha256 \`${c.pretrainedSha256.slice(0, 16)}\`)` : ' (sha256 not recorded: measured before the table recorded digests, so not necessarily the file of that name now)'}${c.seconds !== null ? `; cell ${c.parts ? 'compute time (sum of its parts)' : 'wall time'} ${(c.seconds / 60).toFixed(1)} min` : ''}.`, '');
    const by = (r: MiniProvenance) => `\`${r.command}\` at commit \`${r.commit}\` on ${r.machine}, ${r.date}`;
    if (c.parts) L.push(`Measured in ${c.parts.length} parts (disjoint methods): ${c.parts.map(by).join('; ')}.`, '');
    else if (c.run && c.run.command !== t.command) L.push(`Measured by ${by(c.run)}.`, '');
    const irtr = c.task === 'irtr';
    if (irtr && c.negatives !== undefined) L.push(`Training: each image ranked against its caption and ${c.negatives} random captions (the reference draws 15); test: every (image, caption) pair of the test split scored.`, '');
    L.push(`| method | ${irtr ? 'IR R@1 | TR R@1' : 'test'} | per seed | lr (val per grid rate) | updated params | add. MACs/sample | ms/step | peak RSS MB |`);
    L.push(`|---|${irtr ? '---|---' : '---'}|---|---|---|---|---|---|`);
    for (const r of rows) {
      const score = irtr && r.parts ? `${pc(r.parts.ir_r1.mean)} ± ${pc(r.parts.ir_r1.std)} | ${pc(r.parts.tr_r1.mean)} ± ${pc(r.parts.tr_r1.std)}` : `${pc(r.mean)} ± ${pc(r.std)}`;
      const search = r.lrSearch ? ` (${r.lrSearch.map((x) => `${x.lr}: ${pc(x.val)}`).join(', ')})` : '';
      L.push(`| ${r.method} | ${score} | ${r.seeds.map((s) => pc(s.value)).join(' ')} | ${r.lr}${search} | ${num(r.params)} | ${r.unmergedMacs !== undefined ? `${num(r.addMacs)} (unmerged ${num(r.unmergedMacs)})` : num(r.addMacs)} | ${r.msPerStep.toFixed(0)} | ${r.peakRssMb.toFixed(0)} |`);
    }
    for (const [label, v] of floorRows(c.floors)) L.push(`| *${label}* | ${pc(v)}${irtr ? ' |' : ''} | | | | | | |`);
    L.push('');
  }
  if (t.notRun.length) L.push('## Not run', '', ...t.notRun.map((x) => `- ${x}`), '');
  return L.join('\n');
}

const SETTING_KEYS = ['steps', 'seeds', 'lrGrid', 'batchSize', 'methods'] as const;

/**
 * `base` with the cells of `add` that have rows or are done, in MINI_CELLS order. A cell measured in both replaces
 * base's, unless their methods are disjoint: then it is one cell measured in parts (processes side by side, each with
 * some of the methods), its rows the union in the methods' order, each part's provenance kept and its seconds summed.
 * The settings (steps, seeds, grid, batch size) must be equal; the result's methods are base's, then add's others, and
 * a cell is done only when its rows cover those methods (else notRun names the missing ones). Every
 * cell keeps the provenance of the run that measured it. The result's command / commit / machine / date are `add`'s.
 */
export function mergeMiniTables(base: MiniTable, add: MiniTable, where = 'mini table'): MiniTable {
  for (const k of SETTING_KEYS) {
    if (k !== 'methods' && JSON.stringify(base.settings[k]) !== JSON.stringify(add.settings[k])) {
      throw new Error(`${where}: cannot merge tables with different ${k} (${JSON.stringify(base.settings[k])} vs ${JSON.stringify(add.settings[k])})`);
    }
  }
  const prov = (t: MiniTable): MiniProvenance => ({ command: t.command, commit: t.commit, machine: t.machine, date: t.date });
  const key = (c: { backbone: Backbone; task: ModelTask }) => `${c.backbone}-${c.task}`;
  const methods = [...base.settings.methods, ...add.settings.methods.filter((m) => !base.settings.methods.includes(m))];
  type Cell = MiniTable['cells'][number];
  const pick = new Map<string, { cell: Cell; rows: MiniRow[]; notRun: string[] }>();
  for (const t of [base, add]) {
    for (const c0 of t.cells) {
      const k = key(c0), c: Cell = { ...c0, run: c0.run ?? prov(t) }, rows = t.rows.filter((r) => key(r) === k);
      const have = pick.get(k);
      if (have && !c.done && !rows.length) continue; // nothing measured here: keep base's
      if (!have || !have.rows.length || rows.some((r) => have.rows.some((h) => h.method === r.method))) { // new, or measured again: the newer wins
        pick.set(k, { cell: c, rows, notRun: t.notRun.filter((x) => x.startsWith(`${c.backbone} ${c.task}:`)) });
        continue;
      }
      if (c.pretrainedSha256 !== have.cell.pretrainedSha256) throw new Error(`${where}: the parts of cell ${k} started from different backbone files (sha256 ${have.cell.pretrainedSha256 ?? 'unrecorded'} vs ${c.pretrainedSha256 ?? 'unrecorded'})`);
      if (c.negatives !== have.cell.negatives) throw new Error(`${where}: the parts of cell ${k} trained with different negatives per image (${have.cell.negatives} vs ${c.negatives})`);
      pick.set(k, { // the other part of a cell measured in parts
        cell: {
          ...c, pretrained: c.pretrained ?? have.cell.pretrained, floors: c.floors ?? have.cell.floors, done: true, // whether the rows cover the methods is checked below for every cell
          seconds: have.cell.seconds !== null && c.seconds !== null ? have.cell.seconds + c.seconds : null,
          parts: [...(have.cell.parts ?? [have.cell.run!]), ...(c.parts ?? [c.run!])],
        },
        rows: [...have.rows, ...rows].sort((x, y) => methods.indexOf(x.method) - methods.indexOf(y.method)),
        notRun: [],
      });
    }
  }
  const order = (k: string) => { const i = MINI_CELLS.findIndex((m) => key(m) === k); return i < 0 ? MINI_CELLS.length : i; };
  const keys = [...pick.keys()].sort((a, b) => order(a) - order(b));
  for (const k of keys) { // a cell done with fewer methods than the union is not done, and says which it misses
    const p = pick.get(k)!, missing = methods.filter((m) => !p.rows.some((r) => r.method === m));
    if (p.cell.done && missing.length) pick.set(k, { ...p, cell: { ...p.cell, done: false }, notRun: [`${p.cell.backbone} ${p.cell.task}: ${missing.join(', ')} (not reached)`] });
  }
  return {
    ...prov(add), settings: { ...add.settings, methods },
    cells: keys.map((k) => pick.get(k)!.cell),
    rows: keys.flatMap((k) => pick.get(k)!.rows),
    notRun: keys.flatMap((k) => (pick.get(k)!.cell.done ? [] : pick.get(k)!.notRun)),
  };
}

/** The 'not run' lines of the cells not done: each names the methods that have no row yet (or why the cell was skipped). */
export function pendingCells(t: Pick<MiniTable, 'cells' | 'rows' | 'notRun'>, methods: readonly string[]): string[] {
  return t.cells.filter((c) => !c.done).map((c) => {
    const key = `${c.backbone} ${c.task}:`;
    const skipped = t.notRun.find((x) => x.startsWith(`${key} not run`));
    if (skipped) return skipped;
    const left = methods.filter((m) => !t.rows.some((r) => r.backbone === c.backbone && r.task === c.task && r.method === m));
    return `${key} ${left.join(', ')} (not reached)`;
  });
}

export async function runMiniTable(o: MiniOptions): Promise<MiniTable> {
  const log = o.log ?? ((s: string) => console.error(s));
  ensureDirSync(o.out, '--out'); // before anything is generated or trained
  const data = o.data ?? await ensureSynthData({ log });
  const cells = o.cells ?? MINI_CELLS;
  const methods = [...(o.methods ?? MINI_METHODS)];
  const grid = [...(o.lrGrid ?? MINI_LR_GRID)];
  const negatives = o.negatives ?? MINI_NEGATIVES;
  const t: MiniTable = {
    command: o.command ?? commandLine(), commit: sourceCommit(), machine: machineLine(), date: new Date().toISOString(),
    settings: { steps: o.steps, seeds: [...o.seeds], lrGrid: grid, batchSize: o.batchSize ?? null, methods, data: path.resolve(data) },
    cells: cells.map((c) => ({ ...c, metric: primaryMetricName(c.task), pretrained: null, floors: null, done: false, seconds: null, ...(c.task === 'irtr' ? { negatives } : {}) })),
    rows: [], notRun: cells.map((c) => `${c.backbone} ${c.task}: ${methods.join(', ')} (not reached)`),
  };
  // a table of the same settings already in OUT keeps its other cells (a table measured a cell at a time)
  const prevFile = path.join(o.out, 'mini-table.json');
  let prev: MiniTable | null = null;
  if (fs.existsSync(prevFile)) {
    const p = readMiniTable(prevFile);
    const same = SETTING_KEYS.every((k) => JSON.stringify(p.settings[k]) === JSON.stringify(t.settings[k]));
    if (same) { prev = p; log(`table --mini: keeping the other cells of ${prevFile}`); } else log(`table --mini: replacing ${prevFile} (other settings)`);
  }
  const write = () => {
    const out = prev ? mergeMiniTables(prev, t, prevFile) : t;
    writeFileAtomicSync(path.join(o.out, 'mini-table.json'), JSON.stringify(out, null, 2) + '\n');
    writeFileAtomicSync(path.join(o.out, 'mini-table.md'), formatMiniTable(out));
  };
  write();
  for (const [i, c] of cells.entries()) {
    const t0 = performance.now();
    const pre = o.pretrained?.[c.backbone] ?? 'synth';
    let missing: string | null = null, sha: string | undefined;
    try {
      const file = resolvePretrained(pre, c.backbone);
      if (!fs.existsSync(file)) missing = `${file}: no such backbone file`;
      else sha = fileSha256(file);
    } catch (e) { missing = (e as Error).message; }
    if (missing) { // a backbone that is not shipped (or a file that is not there): say so in the table and go on with the other cells
      log(`table --mini: cell ${c.backbone}-${c.task} skipped: ${missing}`);
      t.notRun = t.notRun.map((x) => (x.startsWith(`${c.backbone} ${c.task}:`) ? `${c.backbone} ${c.task}: not run, no backbone (${missing})` : x));
      write();
      continue;
    }
    const r = await runCompare({
      data, pretrained: pre, backbone: c.backbone, task: c.task, config: o.config, methods, seeds: o.seeds, steps: o.steps,
      batchSize: o.batchSize, lrGrid: grid, negatives, maxTextLen: o.maxTextLen, out: path.join(o.out, 'cells', `${c.backbone}-${c.task}`), log, progress: o.progress,
      resume: true, // a killed table run again resumes each run from its checkpoint and reuses the finished ones
      onRow: (row, partial) => { // each finished method is written at once (a long table keeps what it measured)
        t.rows.push(...rowsOf(c, { ...partial, rows: [row] }));
        t.cells[i] = { ...t.cells[i], pretrained: partial.settings.pretrained, pretrainedSha256: sha, floors: partial.floors };
        t.notRun = pendingCells(t, methods);
        write();
      },
    });
    t.cells[i] = { ...t.cells[i], pretrained: r.settings.pretrained, pretrainedSha256: sha, floors: r.floors, done: true, seconds: (performance.now() - t0) / 1000 };
    t.notRun = t.notRun.filter((x) => !x.startsWith(`${c.backbone} ${c.task}:`));
    write();
  }
  return prev ? mergeMiniTables(prev, t, prevFile) : t;
}

/** A mini-table.json, checked enough to merge: its settings, cells, rows and provenance. */
export function readMiniTable(file: string): MiniTable {
  let t: MiniTable;
  try { t = JSON.parse(fs.readFileSync(file, 'utf8')) as MiniTable; } catch (e) { throw new Error(`${file}: not a mini table (${(e as Error).message})`); }
  if (!t || typeof t !== 'object' || !t.settings || !Array.isArray(t.cells) || !Array.isArray(t.rows) || !Array.isArray(t.notRun) || typeof t.command !== 'string') {
    throw new Error(`${file}: not a mini table (settings, cells, rows, notRun and command expected)`);
  }
  return t;
}

/** `table --mini --merge FILE`: OUT's table with FILE's measured cells merged in, both files rewritten. */
export function mergeMiniTableFiles(out: string, file: string): MiniTable {
  const baseFile = path.join(out, 'mini-table.json');
  if (!fs.existsSync(baseFile)) throw new Error(`${baseFile}: no table to merge into`);
  const t = mergeMiniTables(readMiniTable(baseFile), readMiniTable(file), `merging ${file} into ${baseFile}`);
  writeFileAtomicSync(baseFile, JSON.stringify(t, null, 2) + '\n');
  writeFileAtomicSync(path.join(out, 'mini-table.md'), formatMiniTable(t));
  return t;
}
