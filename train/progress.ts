// Progress display of the long-running commands (train, pretrain, eval, compare), fed with the records the trainer
// already logs ({type: 'train', step, epoch, loss, metric, ...}, {type: 'eval' | 'gate', ...}) and free text lines.
// Three modes:
//   bar    (stderr is a terminal): one redrawn line: bar, step/total, epoch, smoothed loss, running metric, steps/s,
//          ETA; each evaluation and each text line is printed above it as its own line;
//   lines  (not a terminal): a plain line every `every` steps (and the last step), evaluations and text as lines;
//   json   (--json): every record as one JSON line on stdout, text lines on stderr (the machine-readable stream).
// Does not: write metrics.jsonl (the trainer does, in every mode), touch the training loop, handle signals.
// Invariants: in bar mode the bar is cleared before anything else is written and redrawn after, so output never
// interleaves with a half-drawn bar; finish() leaves the cursor on a fresh line; nothing is drawn to a non-TTY
// stream except whole lines; the clock is injectable (tests).

export type ProgressMode = 'bar' | 'lines' | 'json';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  mode: ProgressMode;
  /** total steps (ETA and bar need it; unknown: neither is shown) */
  total?: number;
  /** lines mode: print every N steps (default: about 20 lines per run) */
  every?: number;
  /** what the running metric is called (e.g. 'vqa', 'acc') */
  metricName?: string;
  /** progress and text (default process.stderr) */
  stream?: ProgressStream;
  /** JSON records (default process.stdout) */
  out?: ProgressStream;
  /** milliseconds clock (default performance.now) */
  now?: () => number;
  /** label at the start of each line (e.g. 'apt-s0') */
  label?: string;
}

/** The mode a command uses: --json wins, then a terminal on stderr gets the bar, anything else plain lines. */
export function progressMode(json: boolean, stream: ProgressStream = process.stderr): ProgressMode {
  return json ? 'json' : stream.isTTY ? 'bar' : 'lines';
}

/** seconds -> "1:02:03" / "2:03" */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** A metric value for humans: fractions with 4 decimals, counts as integers, large values with 4 significant digits. */
export function formatValue(v: unknown): string {
  if (typeof v !== 'number') return JSON.stringify(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1000 ? v.toPrecision(6) : v.toFixed(4);
}

const BORING = new Set(['type', 'step', 'epoch', 'seconds']);

export class Progress {
  readonly mode: ProgressMode;
  total: number | undefined;
  private readonly every: number | undefined;
  private readonly stream: ProgressStream;
  private readonly out: ProgressStream;
  private readonly now: () => number;
  private readonly metricName: string;
  private readonly label: string;
  private barShown = false;
  private first: { step: number; t: number } | null = null;
  private last: { step: number; t: number } | null = null;
  private epoch = 0;
  private lossEma: number | null = null;
  private metricSum = 0;
  private metricCount = 0;
  private metricEpoch = -1;
  private lastPrinted = 0;

  constructor(o: ProgressOptions) {
    this.mode = o.mode;
    this.total = o.total;
    this.every = o.every;
    this.stream = o.stream ?? process.stderr;
    this.out = o.out ?? process.stdout;
    this.now = o.now ?? (() => performance.now());
    this.metricName = o.metricName ?? 'metric';
    this.label = o.label ? `${o.label} ` : '';
  }

  setTotal(total: number): void { this.total = total; }

  /** Feed one logged record (train step, eval / gate, or anything else). */
  record(r: Record<string, unknown>): void {
    if (this.mode === 'json') { this.out.write(JSON.stringify(r) + '\n'); return; }
    if (r.type === 'train' && typeof r.step === 'number') { this.step(r); return; }
    if (r.type === 'eval' || r.type === 'gate') {
      const vals = Object.entries(r).filter(([k]) => !BORING.has(k)).map(([k, v]) => `${k} ${formatValue(v)}`).join(', ');
      this.line(`${this.label}${r.type === 'eval' ? 'eval' : 'gates'} @ step ${String(r.step)}${typeof r.epoch === 'number' ? ` (epoch ${r.epoch})` : ''}: ${vals}`);
      return;
    }
    this.line(this.label + JSON.stringify(r));
  }

  /** A text line (above the bar in bar mode; stderr in json mode). */
  message(s: string): void {
    if (this.mode === 'json') { this.stream.write(s + '\n'); return; }
    this.line(this.label + s);
  }

  /** A log callback for code that logs strings: JSON lines become records, anything else a message. */
  readonly log = (s: string): void => {
    if (s.startsWith('{')) {
      try { this.record(JSON.parse(s) as Record<string, unknown>); return; } catch { /* not JSON: a message */ }
    }
    this.message(s);
  };

  /** Evaluation progress (bar mode only: `eval [###...] done/total batches`; the other modes print the result only). */
  evalTick(done: number, total: number): void {
    if (this.mode !== 'bar') return;
    const cols = this.stream.columns ?? 100;
    const text = `${this.label}eval ${done}/${total} batches`;
    const width = Math.max(0, Math.min(30, cols - text.length - 4));
    const full = total ? Math.floor(Math.min(1, done / total) * width) : 0;
    this.stream.write(`\r\x1b[2K${(width >= 5 ? `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ` : '') + text}`.slice(0, Math.max(1, cols - 1) + 5));
    this.barShown = true;
  }

  /** Clear the bar (bar mode) and end on a fresh line. */
  finish(): void {
    if (this.mode === 'bar' && this.barShown) { this.stream.write('\r\x1b[2K'); this.barShown = false; }
  }

  /** steps per second since the first record, or null before two records */
  rate(): number | null {
    if (!this.first || !this.last || this.last.step <= this.first.step || this.last.t <= this.first.t) return null;
    return ((this.last.step - this.first.step) * 1000) / (this.last.t - this.first.t);
  }

  /** The status text of the current state (what the bar and the plain lines show). */
  status(): string {
    const step = this.last?.step ?? 0;
    const parts = [`step ${step}${this.total ? `/${this.total}` : ''}`, `epoch ${this.epoch}`];
    if (this.lossEma !== null) parts.push(`loss ${this.lossEma.toFixed(4)}`);
    if (this.metricCount) parts.push(`${this.metricName} ${(this.metricSum / this.metricCount).toFixed(4)}`);
    const rate = this.rate();
    if (rate !== null) {
      parts.push(rate >= 1 ? `${rate.toFixed(2)} steps/s` : `${(1 / rate).toFixed(2)} s/step`);
      if (this.total) parts.push(`ETA ${formatDuration((this.total - step) / rate)}`);
    }
    return parts.join('  ');
  }

  private step(r: Record<string, unknown>): void {
    const step = r.step as number, t = this.now();
    if (!this.first) this.first = { step, t };
    this.last = { step, t };
    if (typeof r.epoch === 'number') this.epoch = r.epoch;
    if (typeof r.loss === 'number' && Number.isFinite(r.loss)) this.lossEma = this.lossEma === null ? r.loss : 0.9 * this.lossEma + 0.1 * r.loss;
    if (typeof r.metric === 'number') {
      if (this.metricEpoch !== this.epoch) { this.metricSum = 0; this.metricCount = 0; this.metricEpoch = this.epoch; }
      this.metricSum += r.metric; this.metricCount++;
    }
    if (this.mode === 'bar') { this.drawBar(); return; }
    const every = this.every ?? Math.max(1, Math.floor((this.total ?? 200) / 20));
    if (step - this.lastPrinted >= every || step === this.total) {
      this.lastPrinted = step;
      this.stream.write(`${this.label}${this.status()}\n`);
    }
  }

  private line(s: string): void {
    if (this.mode === 'bar' && this.barShown) this.stream.write('\r\x1b[2K');
    this.stream.write(s + '\n');
    if (this.mode === 'bar' && this.barShown) this.drawBar();
  }

  private drawBar(): void {
    const status = this.label + this.status();
    const cols = this.stream.columns ?? 100;
    const width = Math.max(0, Math.min(30, cols - status.length - 4));
    let bar = '';
    if (this.total && width >= 5) {
      const frac = Math.min(1, (this.last?.step ?? 0) / this.total);
      const full = Math.floor(frac * width);
      bar = `[${'#'.repeat(full)}${'.'.repeat(width - full)}] `;
    }
    this.stream.write(`\r\x1b[2K${(bar + status).slice(0, Math.max(1, cols - 1))}`);
    this.barShown = true;
  }
}
