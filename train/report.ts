// Run records and the HTML report (`aptune report RUN_DIR... [--out report.html]`).
// A run directory holds metrics.jsonl (the trainer's records: {type: 'train', step, epoch, loss, metric, lr} and
// {type: 'eval', step, ...scores}) and run.json (written by runTrain: the options, the resolved run configuration
// and, at the end, the summary: score, updated parameters, additional FLOPs, ms/step, peak memory, wall time).
// renderReport() turns runs into ONE self-contained HTML page: no script, no network, no external font or CDN;
// loss, training-metric and evaluation curves as inline SVG (one coloured line per run, labelled axes and ticks),
// a table of the runs and each run's configuration.
// Does not: train or evaluate anything; guess numbers a run did not record (a missing value prints as "n/a").
// Invariants: every text that comes from a run is HTML-escaped; a run directory without metrics.jsonl is an error
// naming it; the summary's additional FLOPs come from models/accounting.ts (its convention: one multiply-add = one
// FLOP, method modules only, batch 1, square image), never from a hand formula.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { accountMethod, ACCOUNT_METHODS, type AccountMethod, type AccountModel } from '../models/accounting.ts';
import type { MeterConfig, ViltConfig } from '../models/index.ts';
import { writeFileAtomicSync } from '../data/formats/atomic.ts';

export const RUN_FILE = 'run.json';
export const METRICS_FILE = 'metrics.jsonl';

export interface RunSummary {
  method: string;
  task: string;
  backbone: string;
  /** the main score of the last evaluation (vqa_score, NLVR2 accuracy, F30K ir_r1), null without evaluation */
  score: { name: string; value: number } | null;
  steps: number;
  trainableParams: number;
  /** models/accounting.ts: parameters of the method's modules (null when the accounting cannot build this config) */
  updatedParams: number | null;
  /** models/accounting.ts: additional FLOPs per sample at the run's token counts */
  additionalFlops: number | null;
  /** wall milliseconds per optimizer step of this process's fit (evaluations included) */
  msPerStep: number | null;
  /** peak resident set size of the process, bytes */
  peakRssBytes: number;
  wallSeconds: number;
  /** whether the run reached its last step (false: stopped by Ctrl-C) */
  finished: boolean;
}

export interface RunFile {
  command: string;
  started: string;
  /** the options the run was called with */
  options: Record<string, unknown>;
  /** the resolved run configuration (what the checkpoint stores) */
  resolved: Record<string, unknown>;
  /** the source commit that trained it (train/provenance.ts; "-dirty": with uncommitted changes) */
  commit?: string;
  summary?: RunSummary;
}

export interface RunData {
  dir: string;
  name: string;
  run: RunFile | null;
  train: { step: number; epoch: number; loss: number; metric: number }[];
  evals: Record<string, number>[];
}

/** The main score of an evaluation record for a task. */
export function mainScore(task: string, ev: Record<string, unknown> | null | undefined): { name: string; value: number } | null {
  if (!ev) return null;
  const name = task === 'vqa' ? 'vqa_score' : task === 'nlvr2' ? 'accuracy' : task === 'irtr' ? 'ir_r1' : '';
  const v = ev[name];
  return typeof v === 'number' ? { name, value: v } : null;
}

/** Updated parameters and additional FLOPs of a run (accounting's rule), or nulls when it cannot be measured. */
export function accountRun(rc: Record<string, unknown>): { updatedParams: number | null; additionalFlops: number | null } {
  try {
    const backbone = rc.backbone as AccountModel, method = rc.method as AccountMethod;
    if (!ACCOUNT_METHODS.includes(method)) return { updatedParams: null, additionalFlops: null };
    const cfg = rc.modelConfig as ViltConfig | MeterConfig;
    const patch = backbone === 'vilt' ? (cfg as ViltConfig).patch : (cfg as MeterConfig).clip.patch;
    const side = Math.floor(Number(rc.imageSize) / patch);
    const row = accountMethod(backbone, method, { config: cfg, options: rc.methodOptions as Record<string, unknown>, tokens: { text: Number(rc.maxTextLen), image: side * side + 1 } });
    return { updatedParams: row.params, additionalFlops: row.flops };
  } catch {
    return { updatedParams: null, additionalFlops: null };
  }
}

/** Write OUT/run.json atomically. */
export function writeRunFile(dir: string, run: RunFile): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomicSync(path.join(dir, RUN_FILE), JSON.stringify(run, (_k, v: unknown) => (typeof v === 'function' ? undefined : v), 2) + '\n');
}

/** DIR/run.json, or null when it is absent or not a JSON object with options (a torn or foreign file). */
export function readRunFile(dir: string): RunFile | null {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(dir, RUN_FILE), 'utf8')) as RunFile;
    return r && typeof r === 'object' && r.options && typeof r.options === 'object' ? r : null;
  } catch { return null; }
}

/** Read a run directory (metrics.jsonl required, run.json optional). */
export function readRun(dir: string): RunData {
  const mf = path.join(dir, METRICS_FILE);
  if (!fs.existsSync(mf)) throw new Error(`${dir}: not a run directory (no ${METRICS_FILE})`);
  const train: RunData['train'] = [];
  const evals: RunData['evals'] = [];
  const lines = fs.readFileSync(mf, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let r: Record<string, unknown>;
    try { r = JSON.parse(line) as Record<string, unknown>; } catch { throw new Error(`${mf}:${i + 1}: not a JSON line`); }
    if (r.type === 'train' && typeof r.step === 'number') train.push({ step: r.step, epoch: Number(r.epoch ?? 0), loss: Number(r.loss), metric: Number(r.metric) });
    else if (r.type === 'eval' || r.type === 'gate') evals.push(r as Record<string, number>);
  });
  const rf = path.join(dir, RUN_FILE);
  let run: RunFile | null = null;
  if (fs.existsSync(rf)) {
    try { run = JSON.parse(fs.readFileSync(rf, 'utf8')) as RunFile; } catch (e) { throw new Error(`${rf}: ${(e as Error).message}`); }
  }
  return { dir, name: path.basename(path.resolve(dir)), run, train, evals };
}

// ---- HTML ------------------------------------------------------------------------------------------------------------

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** About `n` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) { const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1; lo -= d; hi += d; }
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw)), r = raw / mag;
  const step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

const tickText = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(+v.toPrecision(4)));

export interface Series { name: string; color: string; points: [number, number][] }

/** A line chart as inline SVG: one polyline per series, labelled axes with ticks, a legend. */
export function lineChart(o: { title: string; xLabel: string; yLabel: string; series: Series[]; width?: number; height?: number }): string {
  const W = o.width ?? 560, H = o.height ?? 320, L = 64, R = 16, T = 34, B = 48;
  const pts = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const head = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(o.title)}">`
    + `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`
    + `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeHtml(o.title)}</text>`;
  if (!pts.length) return `${head}<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12" fill="#666">no data</text></svg>`;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs)), yt = niceTicks(Math.min(...ys), Math.max(...ys));
  const x0 = Math.min(xt[0], ...xs), x1 = Math.max(xt[xt.length - 1], ...xs), y0 = Math.min(yt[0], ...ys), y1 = Math.max(yt[yt.length - 1], ...ys);
  const sx = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - T - B);
  const f = (v: number) => v.toFixed(1);
  let g = `<g stroke="#ccc" stroke-width="1">`;
  for (const v of xt) g += `<line x1="${f(sx(v))}" y1="${T}" x2="${f(sx(v))}" y2="${H - B}"/>`;
  for (const v of yt) g += `<line x1="${L}" y1="${f(sy(v))}" x2="${W - R}" y2="${f(sy(v))}"/>`;
  g += `</g><g font-size="11" fill="#333">`;
  for (const v of xt) g += `<text x="${f(sx(v))}" y="${H - B + 15}" text-anchor="middle">${tickText(v)}</text>`;
  for (const v of yt) g += `<text x="${L - 6}" y="${f(sy(v) + 4)}" text-anchor="end">${tickText(v)}</text>`;
  g += `</g><rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`;
  g += `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${escapeHtml(o.xLabel)}</text>`;
  g += `<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${(T + H - B) / 2})">${escapeHtml(o.yLabel)}</text>`;
  let lines = '', legend = '', shown = 0;
  o.series.forEach((s) => {
    const i = shown;
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (!p.length) return;
    lines += p.length === 1
      ? `<circle cx="${f(sx(p[0][0]))}" cy="${f(sy(p[0][1]))}" r="3.5" fill="${s.color}"/>`
      : `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${p.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(' ')}"/>`;
    if (p.length > 1 && p.length <= 30) for (const [x, y] of p) lines += `<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="2.5" fill="${s.color}"/>`;
    legend += `<rect x="${L + 10}" y="${T + 8 + i * 15}" width="10" height="10" fill="${s.color}"/><text x="${L + 24}" y="${T + 17 + i * 15}">${escapeHtml(s.name)}</text>`;
    shown++;
  });
  const lw = 30 + 6.5 * Math.max(...o.series.map((s) => s.name.length));
  const box = shown ? `<g font-size="11"><rect x="${L + 4}" y="${T + 4}" width="${f(lw)}" height="${shown * 15 + 6}" fill="#ffffff" fill-opacity="0.85" stroke="#bbb"/>${legend}</g>` : '';
  return `${head}${g}${lines}${box}</svg>`;
}

const fmtInt = (v: number | null | undefined) => (typeof v === 'number' ? Math.round(v).toLocaleString('en-US') : 'n/a');
const fmtFlops = (v: number | null | undefined) => (typeof v !== 'number' ? 'n/a' : v >= 1e9 ? `${(v / 1e9).toFixed(2)} G` : v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : String(v));
const fmtBytes = (v: number | null | undefined) => (typeof v !== 'number' ? 'n/a' : `${(v / 2 ** 20).toFixed(0)} MiB`);

/** The table row of a run (the values the report shows), from its summary, else from its records. */
export function runRow(r: RunData): Record<string, string> {
  const s = r.run?.summary, rc = r.run?.resolved ?? {};
  const task = s?.task ?? String(rc.task ?? 'n/a');
  const score = s?.score ?? mainScore(task, r.evals[r.evals.length - 1]);
  return {
    run: r.name,
    method: s?.method ?? String(rc.method ?? 'n/a'),
    task,
    score: score ? `${score.name} ${score.value.toFixed(4)}` : 'n/a',
    steps: `${s?.steps ?? r.train[r.train.length - 1]?.step ?? 'n/a'}${s && !s.finished ? ' (stopped)' : ''}`,
    'updated params': fmtInt(s?.updatedParams),
    'additional FLOPs': fmtFlops(s?.additionalFlops),
    'ms/step': typeof s?.msPerStep === 'number' ? s.msPerStep.toFixed(0) : 'n/a',
    'peak memory': fmtBytes(s?.peakRssBytes),
    'wall time': typeof s?.wallSeconds === 'number' ? `${s.wallSeconds.toFixed(1)} s` : 'n/a',
  };
}

/** One self-contained HTML page for the runs. */
export function renderReport(runs: RunData[], o: { title?: string; generated?: Date } = {}): string {
  if (!runs.length) throw new Error('report: no runs');
  const color = (i: number) => PALETTE[i % PALETTE.length];
  const series = (pick: (r: RunData) => [number, number][]) => runs.map((r, i) => ({ name: r.name, color: color(i), points: pick(r) }));
  const evalKey = (r: RunData) => {
    const task = r.run?.summary?.task ?? String(r.run?.resolved?.task ?? '');
    return mainScore(task, r.evals[r.evals.length - 1])?.name ?? '';
  };
  const charts = [
    lineChart({ title: 'training loss', xLabel: 'optimizer step', yLabel: 'loss', series: series((r) => r.train.map((t) => [t.step, t.loss])) }),
    lineChart({ title: 'training metric (per step)', xLabel: 'optimizer step', yLabel: 'batch metric', series: series((r) => r.train.map((t) => [t.step, t.metric])) }),
    lineChart({ title: 'evaluation score', xLabel: 'optimizer step', yLabel: 'score (vqa_score / accuracy / ir_r1)', series: series((r) => { const k = evalKey(r); return k ? r.evals.map((e) => [e.step, e[k]] as [number, number]) : []; }) }),
  ];
  const rows = runs.map(runRow);
  const cols = Object.keys(rows[0]);
  const table = `<table id="runs"><thead><tr>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>`
    + rows.map((row, i) => `<tr>${cols.map((c, j) => `<td>${j === 0 ? `<span class="sw" style="background:${color(i)}"></span>` : ''}${escapeHtml(row[c])}</td>`).join('')}</tr>`).join('')
    + '</tbody></table>';
  const configs = runs.map((r) => `<details open><summary>${escapeHtml(r.name)} <span class="dir">${escapeHtml(path.resolve(r.dir))}</span></summary><pre>${escapeHtml(JSON.stringify(r.run ? { options: r.run.options, resolved: r.run.resolved } : { note: `no ${RUN_FILE} in this run directory` }, null, 2))}</pre></details>`).join('\n');
  const title = o.title ?? `aptune report: ${runs.map((r) => r.name).join(', ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;font-variant-numeric:tabular-nums}
th{background:#eee}td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}
.sw{display:inline-block;width:10px;height:10px;margin-right:6px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #ddd}
pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;font-size:12px}.dir{color:#777;font-size:12px}
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p>${runs.length} run${runs.length === 1 ? '' : 's'}; written ${escapeHtml((o.generated ?? new Date()).toISOString())} by aptune report. FLOPs: models/accounting.ts (one multiply-add = one FLOP, method modules only, per sample); peak memory: the process's peak resident set.</p>
<h2>Runs</h2>
${table}
<h2>Curves</h2>
<div class="charts">
${charts.join('\n')}
</div>
<h2>Configuration</h2>
${configs}
</body></html>
`;
}

/** Read the run directories and write the report; returns the output path. */
export function writeReport(dirs: string[], out: string, o: { title?: string } = {}): string {
  const html = renderReport(dirs.map(readRun), o);
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileAtomicSync(out, html);
  return out;
}
