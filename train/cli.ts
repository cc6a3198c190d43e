// The `aptune` command line: methods, params / flops / table (the paper's accounting), synth (synthetic
// benchmark), import (original .ckpt / HF ViLT safetensors -> aptune checkpoint), pretrain, train / eval
// (train/run.ts) with the progress display (train/progress.ts), compare, report (train/report.ts), build-native
// (scripts/build-native.mjs), start. Every command but synth takes --config FILE.json (its options as a JSON object;
// the command line wins); `--config NAME` (not .json) keeps the command's own meaning: train's older spelling of
// --preset, compare's preset.
// Layering: the experiment commands (synth, pretrain, compare, table --mini, start) live in experiments/ and are
// reached only through a lazy `import()` inside their command; that is the one place train/ names experiments/.
// Deliberately NOT here: the training loop itself (train/trainer.ts, train/run.ts), any number that is not
// computed by models/accounting.ts.
// Invariants: unknown commands and options are errors (exit 2) naming them, in a --config file too; --help works on
// every command and states each option's default (or that it is required);
// `main` returns the exit status and never calls process.exit (so tests and bin/aptune.js can call it).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_METHOD, METHOD_NAMES, PAPER_METHODS, getMethod, isMethodName, listMethods, validateOptions } from '../models/petl/index.ts';
import { ACCOUNT_METHODS, CONVENTION, DEFAULT_TOKENS, accountingTable, formatAccountingTable, type AccountMethod, type AccountModel, type TokenCounts } from '../models/accounting.ts';

import { UsageError } from './usage-error.ts';
import { Progress, progressMode } from './progress.ts';
import { METER_SYNTH_RECIPE, PRETRAIN_GATES, SYNTH_RECIPE } from './pretrain-recipe.ts';

interface OptSpec {
  name: string;
  arg?: string;
  help: string;
  /** shown by --help as "(default: ...)" unless the help text already states its default */
  default?: string;
  /** shown by --help as "(required)" */
  required?: boolean;
}
interface Command {
  name: string;
  summary: string;
  usage: string;
  options: OptSpec[];
  /** paragraphs printed by --help after the usage line (what it does, examples) */
  details?: string;
  run(o: Record<string, string | boolean>, rest: string[]): Promise<number> | number;
  /** pass everything after the command through untouched (synth) */
  passthrough?: boolean;
  /** positional arguments are allowed (report's run directories) */
  takesArgs?: boolean;
}

const METHOD_OPTIONS_NOTE =
  "Defaults are the configurations behind the paper's table. A method is chosen by name and its options are given " +
  'as KEY=VALUE, e.g. `aptune params --method apt --opt tokens=50,rank=4`.';

const PROGRESS_OPTS: OptSpec[] = [
  { name: 'json', help: 'print every training record as one JSON line on stdout instead of the progress display (metrics.jsonl is written either way)', default: 'a progress bar on a terminal, else a plain line every N steps' },
  { name: 'log-every', arg: 'N', help: 'not on a terminal: print a progress line every N optimizer steps', default: 'about 20 lines per run' },
];
const JSON_OPT: OptSpec = { name: 'json', help: 'print JSON instead of a table', default: 'off' };
const ACCOUNT_OPTS: OptSpec[] = [
  { name: 'model', arg: 'vilt|meter|all', help: 'backbone(s) to account (default all)' },
  { name: 'text-tokens', arg: 'N', help: `text tokens of the measuring forward (default ${DEFAULT_TOKENS.vilt.text})` },
  { name: 'image-tokens', arg: 'N', help: `visual tokens (default ViLT ${DEFAULT_TOKENS.vilt.image}, METER ${DEFAULT_TOKENS.meter.image}); applies to every selected model` },
  { name: 'method', arg: 'NAME[,NAME..]', help: `only these methods (default all: ${ACCOUNT_METHODS.join(', ')})` },
  { name: 'opt', arg: 'KEY=VALUE[,KEY=VALUE..]', help: 'method options (with a single --method), e.g. --method apt --opt tokens=50,rank=4', default: "the method's defaults (aptune methods)" },
  JSON_OPT,
];

const RUN_CONFIG_OPT: OptSpec = {
  name: 'config', arg: 'FILE.json',
  help: "read this command's options from a JSON object whose keys are the option names without '--' (flags: true); options on the command line win",
  default: 'none',
};

/** Whether the command reads `--config NAME` (not a .json file) as its own option: compare's model preset, and train's
 *  --preset under its older spelling `--config tiny|base|synth`. */
function ownConfigTarget(cmd: Command): string | null {
  if (cmd.options.some((o) => o.name === 'config')) return 'config';
  if (cmd.name === 'train') return 'preset';
  return null;
}

function optionSpec(cmd: Command, name: string): OptSpec | undefined {
  return cmd.options.find((o) => o.name === name) ?? (name === 'config' ? RUN_CONFIG_OPT : undefined);
}

function unknownOption(cmd: Command, name: string, where = ''): UsageError {
  return new UsageError(`${where}unknown option '--${name}' for 'aptune ${cmd.name}' (options: ${[...cmd.options, RUN_CONFIG_OPT].filter((o, i, a) => a.findIndex((x) => x.name === o.name) === i).map((o) => '--' + o.name).join(', ')}; see aptune ${cmd.name} --help)`);
}

/** The options of a run configuration file, as command-line strings / flags. */
function readRunConfig(cmd: Command, file: string): Record<string, string | boolean> {
  let json: unknown;
  try { json = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new UsageError(`--config ${file}: ${(e as Error).message}`); }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new UsageError(`--config ${file}: expected a JSON object of options`);
  const out: Record<string, string | boolean> = {};
  const own = ownConfigTarget(cmd);
  for (const [k0, v] of Object.entries(json as Record<string, unknown>)) {
    let k = k0.replace(/^--/, '');
    if (k === 'config') {
      if (own && typeof v === 'string' && !v.endsWith('.json')) k = own;
      else throw new UsageError(`--config ${file}: a run configuration cannot name another (--config)`);
    }
    const spec = optionSpec(cmd, k);
    if (!spec || k === 'help') throw unknownOption(cmd, k, `--config ${file}: `);
    if (!spec.arg) {
      if (typeof v !== 'boolean') throw new UsageError(`--config ${file}: '${k}' is a flag: give true or false, got ${JSON.stringify(v)}`);
      if (v) out[k] = true;
    } else if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) out[k] = v.join(',');
    else if (v && typeof v === 'object' && k === 'model-config') out[k] = JSON.stringify(v);
    else throw new UsageError(`--config ${file}: '${k}' needs a value (${spec.arg}), got ${JSON.stringify(v)}`);
  }
  return out;
}

function parseArgs(cmd: Command, argv: string[]): { opts: Record<string, string | boolean>; rest: string[] } {
  const opts: Record<string, string | boolean> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') { opts.help = true; continue; }
    if (!a.startsWith('--')) { rest.push(a); continue; }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = optionSpec(cmd, name);
    if (!spec) throw unknownOption(cmd, name);
    if (!spec.arg) {
      if (eq >= 0) throw new UsageError(`option '--${name}' takes no value`);
      opts[name] = true;
      continue;
    }
    const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || (eq < 0 && v.startsWith('--'))) throw new UsageError(`option '--${name}' needs a value (${spec.arg})`);
    opts[name] = v;
  }
  if (typeof opts.config === 'string') {
    const own = ownConfigTarget(cmd);
    if (own && !opts.config.endsWith('.json')) { // --config NAME: the command's own meaning (a model preset)
      if (own !== 'config') { if (opts[own] !== undefined) throw new UsageError(`give --${own} or --config ${opts.config}, not both`); opts[own] = opts.config; delete opts.config; }
    } else if (!opts.help) {
      const file = opts.config;
      delete opts.config;
      for (const [k, v] of Object.entries(readRunConfig(cmd, file))) if (opts[k] === undefined) opts[k] = v;
    }
  }
  return { opts, rest };
}

function intOpt(o: Record<string, string | boolean>, name: string): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got '${String(v)}'`);
  return n;
}

function intOpt0(o: Record<string, string | boolean>, name: string): number {
  const v = o[name];
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`--${name} must be a non-negative integer, got '${String(v)}'`);
  return Number(v);
}

function bbOpt(o: Record<string, unknown>): 'vilt' | 'meter' {
  const v = o.backbone ?? 'vilt';
  if (v !== 'vilt' && v !== 'meter') throw new UsageError(`--backbone must be vilt or meter, got '${String(v)}'`);
  return v;
}

function numOpt(o: Record<string, string | boolean>, name: string): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got '${String(v)}'`);
  return n;
}

/** --opt KEY=VALUE[,KEY=VALUE..] -> method options (numbers / booleans), checked against `method`'s definition. */
function methodOpts(v: string | boolean | undefined, method?: string): Record<string, number | boolean> | undefined {
  if (typeof v !== 'string') return undefined;
  const options: Record<string, number | boolean> = {};
  for (const kv of v.split(',')) {
    const m = /^([A-Za-z_][\w]*)=(.+)$/.exec(kv.trim());
    if (!m) throw new UsageError(`--opt expects KEY=VALUE, got '${kv}'`);
    options[m[1]] = m[2] === 'true' ? true : m[2] === 'false' ? false : Number.isFinite(Number(m[2])) ? Number(m[2]) : NaN;
    if (Number.isNaN(options[m[1]])) throw new UsageError(`--opt ${m[1]}: '${m[2]}' is not a number or boolean`);
  }
  if (method) try { validateOptions(getMethod(method), options); } catch (e) { throw new UsageError(`--opt: ${(e as Error).message}`); }
  return options;
}

function modelsOpt(o: Record<string, string | boolean>): AccountModel[] {
  const v = (o.model as string | undefined) ?? 'all';
  if (v === 'all') return ['vilt', 'meter'];
  if (v === 'vilt' || v === 'meter') return [v];
  throw new UsageError(`--model must be vilt, meter or all, got '${v}'`);
}

function accounting(o: Record<string, string | boolean>, columns: ('params' | 'flops')[]): number {
  const models = modelsOpt(o);
  const text = intOpt(o, 'text-tokens'), image = intOpt(o, 'image-tokens');
  const tokens: Partial<Record<AccountModel, Partial<TokenCounts>>> = {};
  for (const m of models) tokens[m] = { ...(text ? { text } : {}), ...(image ? { image } : {}) };
  let methods: AccountMethod[] | undefined;
  if (typeof o.method === 'string') {
    methods = o.method.split(',').map((m) => m.trim()) as AccountMethod[];
    for (const m of methods) if (!ACCOUNT_METHODS.includes(m)) throw new UsageError(`unknown method '${m}' (methods: ${ACCOUNT_METHODS.join(', ')})`);
  }
  if (typeof o.opt === 'string' && (!methods || methods.length !== 1)) throw new UsageError('--opt needs exactly one --method');
  const options = methodOpts(o.opt, methods?.[0]);
  const rows = accountingTable(models, { tokens, methods, options });
  if (o.json) console.log(JSON.stringify(rows.map((r) => ({ model: r.model, method: r.method, params: r.params, flops: r.flops }))));
  else console.log(formatAccountingTable(rows, columns));
  return 0;
}

const COMMANDS: Command[] = [
  {
    name: 'methods', summary: 'list the parameter-efficient methods and their options', usage: 'aptune methods [--json]', options: [JSON_OPT],
    details: METHOD_OPTIONS_NOTE,
    run(o) {
      const ms = listMethods();
      if (o.json) { console.log(JSON.stringify(ms)); return 0; }
      for (const m of ms) {
        console.log(`${m.name}\n    ${m.description}`);
        if (!m.options.length) console.log('    (no options)');
        for (const op of m.options) {
          const range = `${op.min !== undefined ? `, >= ${op.min}` : ''}${op.max !== undefined ? `, <= ${op.max}` : ''}`;
          console.log(`    ${op.name}=<${op.type}>  (default ${String(op.default)}${range})  ${op.description}`);
        }
      }
      console.log(`\n${METHOD_OPTIONS_NOTE}`);
      return 0;
    },
  },
  { name: 'params', summary: "updated parameters per method, beside the paper's values", usage: 'aptune params [--model vilt|meter|all] [--text-tokens N] [--image-tokens N] [--method M] [--opt K=V] [--json]', options: ACCOUNT_OPTS, run: (o) => accounting(o, ['params']) },
  { name: 'flops', summary: "additional FLOPs per method, beside the paper's values", usage: 'aptune flops [--model vilt|meter|all] [--text-tokens N] [--image-tokens N] [--method M] [--opt K=V] [--json]', options: ACCOUNT_OPTS, run: (o) => accounting(o, ['flops']) },
  {
    name: 'table', summary: "params and FLOPs together; --mini: the miniature paper table measured on the synthetic benchmark",
    usage: 'aptune table [--model vilt|meter|all] [--text-tokens N] [--image-tokens N] [--method M] [--opt K=V] [--json]\n       aptune table --mini [--seeds 0,1,2] [--out results/] [--steps 600] [--cells vilt-vqa,vilt-nlvr2,vilt-irtr,meter-vqa] [--methods a,b] [--lr-grid 1e-4,5e-4,2e-3] [--batch-size N] [--negatives N] [--pretrained vilt=FILE,meter=FILE]\n       aptune table --mini --merge FILE [--out results/]',
    details: [
      'Without --mini: the accounting of the full-size ViLT-B/32 and METER (updated parameters and additional FLOPs of every',
      'method, measured on the instantiated modules), beside the paper\'s values.',
      '',
      `With --mini: every method of the paper's table (${PAPER_METHODS.join(', ')})`,
      'fine-tuned from the shipped backbones (pretrained/vilt-synth.safetensors, pretrained/meter-synth.safetensors) on',
      'the embedded synthetic benchmark: ViLT on VQA (test VQA score), NLVR2 (test1 accuracy) and retrieval (test IR/TR',
      'R@1), METER on VQA. Each method gets its learning rate from the same grid, chosen on the validation table with the',
      'first seed and the same step budget; then every seed at the chosen rate. Writes OUT/mini-table.json (one row per',
      'backbone x task x method, every seed\'s value) and OUT/mini-table.md (command, commit, machine), rewritten after',
      'each method; runs under OUT/cells/. The full table is hours of compute on 2 cores (4 cells x 7 methods x (3 grid',
      'rates + 2 seeds) runs). Killed and run again with the same settings, it goes on where it stopped: measured cells',
      'are kept, and each run under OUT/cells/ that holds its own checkpoint (same options, run config and source',
      'commit) resumes from it, or is reused when finished; the scores are those of an uninterrupted table.',
    ].join('\n'),
    options: [
      ...ACCOUNT_OPTS,
      { name: 'mini', help: 'run the miniature table (training; see above)', default: 'off: the accounting table' },
      { name: 'seeds', arg: 'LIST', help: '--mini: seeds (default 0,1,2)' },
      { name: 'out', arg: 'DIR', help: '--mini: where mini-table.json / .md and the runs go (default results)' },
      { name: 'steps', arg: 'N', help: '--mini: optimizer steps per run (default 600)' },
      { name: 'cells', arg: 'LIST', help: '--mini: backbone-task cells (default vilt-vqa,vilt-nlvr2,vilt-irtr,meter-vqa)' },
      { name: 'methods', arg: 'LIST', help: '--mini: methods (default the paper\'s seven)' },
      { name: 'lr-grid', arg: 'LIST', help: '--mini: the learning-rate grid every method is tuned on (default 1e-4,5e-4,2e-3)' },
      { name: 'batch-size', arg: 'N', help: '--mini: batch size (default 32)' },
      { name: 'negatives', arg: 'N', help: '--mini: retrieval cells: random negative captions per image (default 3; the reference 15)' },
      { name: 'pretrained', arg: 'LIST', help: "--mini: the backbone file (or preset) a backbone's cells start from, as backbone=FILE pairs separated by commas; each cell records the file's SHA-256", default: 'the shipped preset synth' },
      { name: 'data', arg: 'DIR', help: '--mini: synthetic benchmark directory (default: generated into the cache)' },
      { name: 'merge', arg: 'FILE', help: "--mini: merge the measured cells of another run's mini-table.json (same steps, seeds, grid and batch size) into OUT's table, training nothing (a run into an OUT holding a table of the same settings keeps its other cells by itself); a cell measured in parts with disjoint --methods (processes side by side, each with its own --out) is united", default: 'off: run the cells' },
    ],
    async run(o) {
      if (!o.mini) {
        for (const k of ['seeds', 'out', 'steps', 'cells', 'methods', 'lr-grid', 'batch-size', 'negatives', 'data', 'merge', 'pretrained']) if (o[k] !== undefined) throw new UsageError(`--${k} applies to aptune table --mini`);
        return accounting(o, ['params', 'flops']);
      }
      const { runMiniTable, mergeMiniTableFiles, formatMiniTable, MINI_CELLS } = await import('../experiments/mini-table.ts');
      if (typeof o.merge === 'string') {
        for (const k of ['seeds', 'steps', 'cells', 'methods', 'lr-grid', 'batch-size', 'negatives', 'data', 'pretrained']) if (o[k] !== undefined) throw new UsageError(`--${k} does not apply to --merge (it trains nothing)`);
        console.log(formatMiniTable(mergeMiniTableFiles(typeof o.out === 'string' ? o.out : 'results', o.merge)));
        return 0;
      }
      const { parseMethods, parseSeeds } = await import('../experiments/compare.ts');
      const cells = typeof o.cells === 'string' ? o.cells.split(',').map((c) => {
        const hit = MINI_CELLS.find((m) => `${m.backbone}-${m.task}` === c.trim());
        if (!hit) throw new UsageError(`--cells: unknown cell '${c}' (cells: ${MINI_CELLS.map((m) => `${m.backbone}-${m.task}`).join(', ')})`);
        return hit;
      }) : undefined;
      const grid = typeof o['lr-grid'] === 'string' ? o['lr-grid'].split(',').map((x) => {
        const n = Number(x);
        if (x.trim() === '' || !(n > 0) || !Number.isFinite(n)) throw new UsageError(`--lr-grid must be positive numbers separated by commas, got '${String(o['lr-grid'])}'`);
        return n;
      }) : undefined;
      const pretrained: Partial<Record<'vilt' | 'meter', string>> = {};
      for (const kv of o.pretrained === undefined ? [] : String(o.pretrained).split(',')) {
        const m = /^(vilt|meter)=(.+)$/.exec(kv.trim());
        if (!m || pretrained[m[1] as 'vilt']) throw new UsageError(m ? `--pretrained names ${m[1]} twice` : `--pretrained must be backbone=FILE pairs (vilt=..., meter=...) separated by commas, got '${kv}'`);
        pretrained[m[1] as 'vilt'] = m[2];
      }
      const t = await runMiniTable({
        pretrained, data: typeof o.data === 'string' ? o.data : undefined, out: typeof o.out === 'string' ? o.out : 'results',
        seeds: parseSeeds(typeof o.seeds === 'string' ? o.seeds : '0,1,2'), steps: intOpt(o, 'steps') ?? 600, cells,
        methods: typeof o.methods === 'string' ? parseMethods(o.methods) : undefined, lrGrid: grid, batchSize: intOpt(o, 'batch-size'),
        negatives: intOpt(o, 'negatives'), progress: progressMode(false),
      });
      console.log(formatMiniTable(t));
      return 0;
    },
  },
  {
    name: 'synth', summary: 'generate the synthetic benchmark (options: see aptune synth --help)', usage: 'aptune synth [options of experiments/synthetic.ts]', options: [], passthrough: true,
    async run(_o, rest) {
      const { runSynth } = await import('../experiments/synthetic.ts');
      await runSynth(rest);
      return 0;
    },
  },
  {
    name: 'import', summary: 'convert an original checkpoint (.ckpt) or HF ViLT safetensors into an aptune checkpoint',
    usage: 'aptune import --from FILE --out FILE.safetensors --model vilt|meter [--image-size S] [--classifier NAME]',
    details: [
      'Reads a PyTorch Lightning checkpoint (a zip holding data.pkl; the pickle is read without executing anything) or',
      'HF ViLT safetensors (names mapped to the original ViLT names), matches every tensor by name and shape against',
      "the full-size backbone plus its ITM head, resizes METER's CLIP position table to --image-size (bicubic, CLS row",
      'kept), and writes those tensors with the report (missing, unexpected, resized) in the checkpoint config.',
      'Tensors the model does not have (e.g. mlm_score) are reported as unexpected and not written. A file that is not',
      'a checkpoint, or a shape mismatch (the tensor is named), fails with exit status 1.',
      '',
      'examples:',
      '  aptune import --from vilt_200k_mlm_itm.ckpt --out vilt.safetensors --model vilt',
      '  aptune import --from meter_clip16_288_roberta_pretrain.ckpt --out meter384.safetensors --model meter --image-size 384',
      '  aptune import --from vilt-b32-mlm/model.safetensors --out vilt.safetensors --model vilt',
    ].join('\n'),
    options: [
      { name: 'from', arg: 'FILE', help: 'vilt_200k_mlm_itm.ckpt, meter_clip16_288_roberta_pretrain.ckpt or an HF ViLT model.safetensors', required: true },
      { name: 'out', arg: 'FILE', help: 'the aptune checkpoint to write (safetensors, written atomically)', required: true },
      { name: 'model', arg: 'vilt|meter', help: 'which backbone the names are matched against', required: true },
      { name: 'image-size', arg: 'S', help: "METER: the run's image size; CLIP's position table is resized to it (default 384)" },
      { name: 'classifier', arg: 'NAME', help: "HF ViLT task head 'classifier.*' is renamed to NAME.* (e.g. vqa_classifier)", default: 'not written' },
    ],
    async run(o) {
      if (typeof o.from !== 'string' || typeof o.out !== 'string' || typeof o.model !== 'string') throw new UsageError('import needs --from, --out and --model');
      if (o.model !== 'vilt' && o.model !== 'meter') throw new UsageError(`--model must be vilt or meter, got '${o.model}'`);
      const size = intOpt(o, 'image-size');
      if (size !== undefined && o.model !== 'meter') throw new UsageError('--image-size applies to --model meter only');
      const { convertCheckpoint } = await import('./checkpoint.ts');
      const r = convertCheckpoint({ from: o.from, out: o.out, model: o.model, imageSize: size, classifierName: typeof o.classifier === 'string' ? o.classifier : undefined });
      console.log(r.text);
      return 0;
    },
  },
  {
    name: 'pretrain', summary: 'pre-train a small ViLT or METER on the synthetic caption corpus (MLM + ITM + contrastive)',
    usage: 'aptune pretrain --out FILE [--preset synth|tiny] [--backbone vilt|meter] [--seed N] [--data DIR] [--steps N] [--batch-size N] [--lr X] [--hidden N] [--layers N] [--heads N] [--mlp N] [--patch N] [--image-size S] [--mask-prob X] [--hard-fraction X] [--hard-start X] [--itm-weight X] [--mlm-pass joint|separate] [--itc-positives own|true] [--itc-warmup X] [--itc-center X] [--itc-image-pool cls|mean|flat] [--fusion-lr-mult X] [--pos-init-std X] [--single-objects N] [--init FILE] [--eval-every N] [--save-every N] [--resume] [--run-dir DIR] [--json]\n       aptune pretrain --evaluate FILE|synth [--backbone vilt|meter] [--data DIR] [--json]',
    details: [
      'Trains a ViLT (or METER) from random initialisation on synth_caption_train.arrow of the embedded synthetic',
      'benchmark (or DIR): ITM (half the rows get a negative: a random other caption labelled by its truth in the scene',
      `and, after ${100 * SYNTH_RECIPE.hardStart}% of the run (METER ${100 * METER_SYNTH_RECIPE.hardStart}%), verified one-word-swap hard negatives; loss weighted ${SYNTH_RECIPE.itmWeight} (METER ${METER_SYNTH_RECIPE.itmWeight})), MLM (content words`,
      'masked in matched and mismatched rows alike; the loss counts rows whose text is true), and an in-batch',
      'image-text contrastive loss on single-modality passes (ViLT: text-only and image-only through the same layers;',
      'METER: its two encoders). AdamW (betas 0.9/0.98, wd 0.01), warmup 10% then linear decay, dropout 0. Every',
      '--eval-every steps and at the end it reports the gates on synth_caption_val: ' +
        `ITM accuracy >= ${PRETRAIN_GATES.itmAcc}, image->text R@1 >= ${PRETRAIN_GATES.r1I2T}, text->image R@1 >= ${PRETRAIN_GATES.r1T2I}.`,
      'Writes FILE (backbone + itm_score + mlm_score + itc heads, the model config, the vocabulary and the recipe),',
      'vocab.txt beside it, and a run directory (metrics.jsonl, run.json, report.html).',
      '',
      'examples:',
      '  aptune pretrain --preset synth --seed 0 --out pretrained/vilt-synth.safetensors',
      '  aptune pretrain --preset synth --backbone meter --seed 0 --out pretrained/meter-synth.safetensors',
    ].join('\n'),
    options: [
      { name: 'data', arg: 'DIR', help: 'directory of the synthetic tables (synth_caption_{train,val}.arrow + the task tables for the vocabulary)', default: 'the embedded benchmark, generated into the cache on first use' },
      { name: 'out', arg: 'FILE', help: 'the checkpoint to write (safetensors, atomic); vocab.txt goes beside it', required: true },
      { name: 'steps', arg: 'N', help: `optimizer steps (default ${SYNTH_RECIPE.steps} ViLT, ${METER_SYNTH_RECIPE.steps} METER)` },
      { name: 'batch-size', arg: 'N', help: `images per step (default ${SYNTH_RECIPE.batchSize})` },
      { name: 'lr', arg: 'X', help: `peak learning rate (default ${SYNTH_RECIPE.lr} ViLT, ${METER_SYNTH_RECIPE.lr} METER)` },
      { name: 'backbone', arg: 'vilt|meter', help: 'vilt or meter: CLIP-style image encoder + RoBERTa-style text encoder + co-attention fusion', default: 'vilt' },
      { name: 'preset', arg: 'synth|tiny', help: 'model size (default synth: hidden 128, 4 layers, 4 heads, MLP 512, patch 16; METER: models/pretrain.ts meterSynthConfig)' },
      { name: 'hidden', arg: 'N', help: 'override the preset hidden size', default: 'the preset\'s' },
      { name: 'layers', arg: 'N', help: 'override the preset layer count', default: 'the preset\'s' },
      { name: 'heads', arg: 'N', help: 'override the preset head count', default: 'the preset\'s' },
      { name: 'mlp', arg: 'N', help: 'override the preset MLP width', default: 'the preset\'s' },
      { name: 'patch', arg: 'N', help: 'override the preset patch size', default: 'the preset\'s' },
      { name: 'image-size', arg: 'S', help: 'image size (default: the position grid x patch of the preset, 64 for synth)' },
      { name: 'mask-prob', arg: 'X', help: 'probability of masking each content word (default 0.25)' },
      { name: 'hard-fraction', arg: 'X', help: `fraction of ITM negatives taken from the verified hard negatives once they start; 0 = random captions only (default ${SYNTH_RECIPE.hardFraction} ViLT, ${METER_SYNTH_RECIPE.hardFraction} METER)` },
      { name: 'init', arg: 'FILE', help: 'continue from an aptune pretrain checkpoint (same config and data vocabulary; fresh optimizer and schedule)', default: 'random init' },
      { name: 'seed', arg: 'N', help: 'seed of init, data order, negatives and masks (default 0)' },
      { name: 'eval-every', arg: 'N', help: 'report the gates every N steps (default 100; always at the end)' },
      { name: 'save-every', arg: 'N', help: 'write the training state (weights, optimizer moments, step; one file, atomic) to RUN_DIR/last.safetensors every N steps (0: never); removed when FILE is written', default: 'every 10% of the run' },
      { name: 'resume', help: 'continue from RUN_DIR/last.safetensors when it is there (a killed run, the same command): the losses and gates of an uninterrupted run; a state of other settings is refused, naming them', default: 'off: start from step 1' },
      { name: 'itm-weight', arg: 'X', help: `weight of the ITM loss beside MLM and contrastive (default ${SYNTH_RECIPE.itmWeight} ViLT, ${METER_SYNTH_RECIPE.itmWeight} METER)` },
      { name: 'evaluate', arg: 'FILE|synth', help: 'train nothing: print the gates of a pre-training checkpoint (or the shipped preset of --backbone) on the held-out caption split, with text->image R@1 by caption kind and a position probe (one-object images: does the contrastive space tell cells apart?)', default: 'off: pre-train' },
      { name: 'run-dir', arg: 'DIR', help: 'where metrics.jsonl, run.json and report.html go', default: '<out without extension>-run beside --out' },
      { name: 'hard-start', arg: 'X', help: `fraction of the run before the verified hard negatives start (random negatives only until then) (default ${SYNTH_RECIPE.hardStart} ViLT, ${METER_SYNTH_RECIPE.hardStart} METER)` },
      { name: 'mlm-pass', arg: 'joint|separate', help: `MLM in the ITM pass on masked texts, or in its own pass (ITM then sees clean text) (default ${SYNTH_RECIPE.mlmPass})` },
      { name: 'itc-positives', arg: 'own|true', help: `contrastive positives: each caption's own image, or every image of the batch it is true of (checked against the scene) (default ${SYNTH_RECIPE.itcPositives})` },
      { name: 'fusion-lr-mult', arg: 'X', help: `learning-rate multiplier of METER's fusion (cross-modal transforms, co-attention layers, poolers) and of the ITM / MLM heads`, default: `${SYNTH_RECIPE.fusionLrMult} ViLT, ${METER_SYNTH_RECIPE.fusionLrMult} METER` },
      { name: 'itc-warmup', arg: 'X', help: `fraction of the run at its start that trains the contrastive loss alone, before ITM and MLM join (default ${SYNTH_RECIPE.itcWarmup} ViLT, ${METER_SYNTH_RECIPE.itcWarmup} METER)` },
      { name: 'itc-center', arg: 'X', help: `fraction of the batch mean removed from the contrastive embeddings before normalising: 1 centred, 0 as CLIP (default ${SYNTH_RECIPE.itcCenter} ViLT, ${METER_SYNTH_RECIPE.itcCenter} METER)` },
      { name: 'itc-image-pool', arg: 'cls|mean|flat', help: "the image's contrastive embedding from token 0, the mean of its tokens, or all its tokens flattened into one projection (each position its own weights; fixed-size images); default cls" },
      { name: 'pos-init-std', arg: 'X', help: `start the patch position table at this standard deviation, the built one scaled (ViLT's at timm's 0.02, METER's CLIP table at width^-0.5) (default ${SYNTH_RECIPE.posInitStd} ViLT, as built METER; crosses the position saddle, see the README)` },
      { name: 'single-objects', arg: 'N', help: `append N generated one-object scenes (captions and verified negatives as the corpus) to the training corpus (default ${SYNTH_RECIPE.singleObjects} ViLT, ${METER_SYNTH_RECIPE.singleObjects} METER; 0 with --preset tiny)` },
      ...PROGRESS_OPTS,
    ],
    async run(o) {
      const { runPretrain } = await import('../experiments/pretrain.ts');
      const unitOpt = (oo: Record<string, string | boolean>, name: string): number | undefined => {
        const v = oo[name];
        if (v === undefined) return undefined;
        const n = Number(v);
        if (typeof v !== 'string' || v.trim() === '' || !(n >= 0 && n <= 1)) throw new UsageError(`--${name} must be in [0, 1], got '${String(v)}'`);
        return n;
      };
      const choiceOpt = <T extends string>(name: string, choices: readonly T[]): T | undefined => {
        const v = o[name];
        if (v === undefined) return undefined;
        if (!choices.includes(v as T)) throw new UsageError(`--${name} must be ${choices.join(' or ')}, got '${String(v)}'`);
        return v as T;
      };
      if (typeof o.evaluate === 'string') { // the gates of an existing checkpoint (a shipped preset name or a file)
        const { evaluatePretrainFile, gateReport } = await import('../experiments/pretrain.ts');
        const { resolvePretrained } = await import('./pretrained.ts');
        const file = resolvePretrained(o.evaluate, bbOpt(o));
        const dir = typeof o.data === 'string' ? o.data : await (await import('../experiments/synth-cache.ts')).ensureSynthData();
        const g = await evaluatePretrainFile(file, join(dir, 'synth_caption_val.arrow'), { positions: true });
        const pp = g.positionProbe!;
        console.log(o.json === true ? JSON.stringify({ file, ...g }) : `${file}\n${gateReport(g).line}\ntext->image R@1 by caption kind: ${(['Attributes', 'Count', 'Relation', 'Position'] as const).map((k) => `${k.toLowerCase()} ${g[`r1T2I${k}`]!.toFixed(3)}`).join(', ')}` +
          `\nposition probe (216 one-object images, each colour x shape in each cell): same object in two cells, cosine ${pp.imageSameObjectCos.toFixed(3)} (images) / ${pp.textSameObjectCos.toFixed(3)} (captions), 1 = position-blind; a caption's top image has its object ${pp.objectR1.toFixed(3)}, its cell ${pp.cellR1.toFixed(3)} (chance 0.111), both ${pp.bothR1.toFixed(3)}`);
        return 0;
      }
      if (typeof o.out !== 'string') throw new UsageError('pretrain needs --out (see aptune pretrain --help)');
      const preset = (o.preset as string | undefined) ?? 'synth';
      if (preset !== 'synth' && preset !== 'tiny') throw new UsageError(`--preset must be synth or tiny, got '${preset}'`);
      const mp = numOpt(o, 'mask-prob');
      const hf = unitOpt(o, 'hard-fraction');
      if (mp !== undefined && !(mp < 1)) throw new UsageError(`--mask-prob must be in (0, 1), got '${String(o['mask-prob'])}'`);
      const itcWarmup = unitOpt(o, 'itc-warmup');
      if (itcWarmup === 1) throw new UsageError('--itc-warmup must be below 1 (the run needs joint ITM/MLM steps)');
      const progress = new Progress({ mode: progressMode(o.json === true), total: intOpt(o, 'steps') ?? (bbOpt(o) === 'meter' ? METER_SYNTH_RECIPE : SYNTH_RECIPE).steps, every: intOpt(o, 'log-every'), metricName: 'itm acc' });
      let r;
      try {
        r = await runPretrain({
        log: progress.log,
        backbone: bbOpt(o), data: typeof o.data === 'string' ? o.data : undefined, out: o.out as string, steps: intOpt(o, 'steps'), batchSize: intOpt(o, 'batch-size'), lr: numOpt(o, 'lr'),
        preset, hidden: intOpt(o, 'hidden'), layers: intOpt(o, 'layers'), heads: intOpt(o, 'heads'), mlp: intOpt(o, 'mlp'), patch: intOpt(o, 'patch'),
        imageSize: intOpt(o, 'image-size'), maskProb: mp, hardFraction: hf, init: typeof o.init === 'string' ? o.init : undefined, seed: o.seed === undefined ? undefined : intOpt0(o, 'seed'), evalEvery: intOpt(o, 'eval-every'), itmWeight: numOpt(o, 'itm-weight'), mlmPass: choiceOpt('mlm-pass', ['joint', 'separate'] as const), itcPositives: choiceOpt('itc-positives', ['own', 'true'] as const), fusionLrMult: numOpt(o, 'fusion-lr-mult'), itcWarmup, itcCenter: unitOpt(o, 'itc-center'), itcImagePool: choiceOpt('itc-image-pool', ['cls', 'mean', 'flat'] as const), hardStart: unitOpt(o, 'hard-start'), runDir: typeof o['run-dir'] === 'string' ? o['run-dir'] : undefined,
        posInitStd: numOpt(o, 'pos-init-std'), singleObjects: o['single-objects'] === undefined ? undefined : intOpt0(o, 'single-objects'),
        saveEvery: o['save-every'] === undefined ? undefined : intOpt0(o, 'save-every'), resume: o.resume === true,
        });
      } finally { progress.finish(); }
      const g = r.gates[r.gates.length - 1];
      console.log(`wrote ${r.checkpoint} (step ${r.steps}, ${r.seconds.toFixed(0)} s); ITM ${g.itmAcc.toFixed(3)}, R@1 t2i ${g.r1T2I.toFixed(3)} i2t ${g.r1I2T.toFixed(3)}`);
      return 0;
    },
  },
  {
    name: 'train', summary: 'fine-tune a method on a task (ViLT Arrow tables) and write a method checkpoint',
    usage: 'aptune train --data DIR --task vqa|nlvr2|irtr --backbone vilt|meter [--preset tiny|base|synth] [--model-config FILE.json] [--config run.json] [--json] [--method NAME] [--opt K=V,..] [--pretrained FILE] [--epochs N | --max-steps N] [--batch-size N] [--accumulate N] [--lr X] [--out DIR] [--resume FILE] [--save-every N] [--seed N] [--eval-every N] [--eval-every-epochs N] [--vocab FILE] [--no-randaug]',
    details: [
      `Trains the chosen parameter-efficient method (default ${DEFAULT_METHOD}) with AdamW (betas 0.9/0.98, eps 1e-8, wd 0.01 except`,
      'biases and norms), the head / cross-modal lr multipliers of the reference, linear warmup over 10% of the',
      'optimizer steps then linear decay to 0, and the loss of each micro-batch divided by --accumulate.',
      'Training images get RandAugment(2, 9) before the pixelbert (ViLT) / clip (METER) transform, as the reference\'s',
      '*_randaug configs (--no-randaug turns it off; evaluation never augments). METER on irtr also trains the ITM loss',
      'through the frozen ITM head: half of each batch keeps its image, half gets a random other image.',
      'Writes OUT/last.safetensors (the trainable weights, the run config, and what --resume needs: optimizer moments,',
      'step, RNG state; one file, replaced atomically every --save-every steps, every 30 minutes and at the end, so a',
      'kill at any instant leaves the previous or the new checkpoint whole) and OUT/metrics.jsonl (one JSON record per',
      'optimizer step and per evaluation; --resume cuts it back to the resumed step). --data DIR opens only the',
      'task\'s tables (others are named, not opened). Evaluation runs on VQA val, NLVR2 dev + test1, F30K test (all image-caption pairs).',
      'Ctrl-C finishes the current step, writes the checkpoint and exits. Without --vocab, a WordPiece vocabulary is',
      'built from the tables\' own text and stored as OUT/vocab.txt (fine for the synthetic benchmark; the base',
      'backbones need their own vocabulary). --config tiny is a small model sized to that vocabulary; --config synth is',
      'the ViLT of the miniature experiment (hidden 128, 4 layers, 4 heads, MLP 512, patch 16, scaled method sizes),',
      'meant for --pretrained FILE from `aptune pretrain` (its vocabulary is taken from that checkpoint).',
      '--model-config changes the model on top of the preset, in aptune names or a Hugging Face config.json\'s',
      '(hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, max_position_embeddings, layer_norm_eps, ...).',
      '--config FILE.json reads any of these options from a JSON object ({"data": "synth", "task": "nlvr2", "max-steps": 50});',
      'the command line wins. `--config tiny|base|synth` (a name, not a .json file) is the older spelling of --preset.',
      'OUT/run.json holds the options and the resolved configuration (plus a summary at the end), and OUT/report.html the',
      'run\'s report (aptune report). On a terminal a progress bar shows step, epoch, loss, the running metric, steps/s',
      'and ETA, with one line per evaluation; elsewhere a plain line every --log-every steps; --json prints the records.',
      '',
      'examples:',
      '  aptune synth --out synth --size tiny',
      '  aptune train --data synth --task nlvr2 --backbone vilt --preset tiny --max-steps 50 --batch-size 8 --out run1',
      '  aptune train --config run1.json --model-config \'{"hidden": 96}\'',
      '  aptune eval --data synth --task nlvr2 --checkpoint run1/last.safetensors',
    ].join('\n'),
    options: [
      { name: 'data', arg: 'DIR', help: 'directory of the Arrow tables (aptune synth output or the ViLT arrows)', required: true },
      { name: 'task', arg: 'vqa|nlvr2|irtr', help: 'the fine-tuning task (irtr = Flickr30k retrieval)', required: true },
      { name: 'backbone', arg: 'vilt|meter', help: 'the backbone', required: true },
      { name: 'preset', arg: 'tiny|base|synth', help: "model size (synth: the aptune pretrain preset); older spelling: --config tiny|base|synth", default: "the pretrain checkpoint's preset, else base" },
      { name: 'model-config', arg: 'FILE.json|JSON', help: 'model config overrides on top of the preset: aptune names ({"hidden": 96}) or a Hugging Face config.json (hidden_size, num_hidden_layers, ...)', default: 'none' },
      { name: 'method', arg: 'NAME', help: `method (default ${DEFAULT_METHOD}; see aptune methods)` },
      { name: 'opt', arg: 'KEY=VALUE[,KEY=VALUE..]', help: 'method options, e.g. tokens=50,rank=4 (tiny config: tiny defaults)' },
      { name: 'pretrained', arg: 'FILE|synth', help: "pre-trained backbone weights (.ckpt, HF ViLT safetensors, an aptune import or pretrain file), or 'synth': the shipped backbone pretrained/<backbone>-synth.safetensors", default: 'random init' },
      { name: 'epochs', arg: 'N', help: 'epochs (default 10); total steps = batches x epochs / accumulate' },
      { name: 'max-steps', arg: 'N', help: 'total optimizer steps instead of --epochs', default: 'from --epochs' },
      { name: 'batch-size', arg: 'N', help: 'micro-batch size (default 32)' },
      { name: 'accumulate', arg: 'N', help: 'micro-batches per optimizer step (default 1)' },
      { name: 'lr', arg: 'X', help: 'base learning rate (default: the reference value for backbone and task)' },
      { name: 'out', arg: 'DIR', help: 'output directory (default runs/<backbone>-<task>-<method>)' },
      { name: 'resume', arg: 'FILE', help: 'continue from OUT/last.safetensors (one file: weights, optimizer, step, RNG; same method/config)', default: 'a fresh run' },
      { name: 'save-every', arg: 'N', help: 'write the checkpoint every N optimizer steps (also every 30 min; 0: only at the end)', default: 'every 10% of the run' },
      { name: 'seed', arg: 'N', help: 'seed of init, dropout and data order (default 0)' },
      { name: 'eval-every', arg: 'N', help: 'evaluate every N optimizer steps (always at the end)', default: 'only at the end' },
      { name: 'eval-every-epochs', arg: 'N', help: 'evaluate at the end of every N-th epoch', default: 'off' },
      { name: 'vocab', arg: 'FILE', help: 'tokenizer vocabulary (vocab.txt / tokenizer.json / dir); default: built from the data' },
      { name: 'image-size', arg: 'S', help: 'image size (ViLT shorter side; METER crop); default 384 base, 32 tiny' },
      { name: 'max-text-len', arg: 'N', help: 'text length incl. specials (default 40 ViLT; METER 50, F30K 40)' },
      { name: 'negatives', arg: 'N', help: 'irtr: random captions per image (default 15)' },
      { name: 'grad-clip', arg: 'X', help: 'clip the gradient norm (default off, like the reference)' },
      { name: 'no-randaug', help: 'do not RandAugment the training images (default: RandAugment(2, 9), as the reference)' },
      ...PROGRESS_OPTS,
      { name: 'no-report', help: 'do not write OUT/report.html at the end', default: 'write it' },
    ],
    async run(o) {
      const { runTrain } = await import('./run.ts');
      const need = (k: string) => { if (typeof o[k] !== 'string') throw new UsageError(`train needs --${k} (see aptune train --help)`); return o[k] as string; };
      const data = need('data'), task = need('task'), backbone = need('backbone');
      if (!['vqa', 'nlvr2', 'irtr'].includes(task)) throw new UsageError(`--task must be vqa, nlvr2 or irtr, got '${task}'`);
      if (backbone !== 'vilt' && backbone !== 'meter') throw new UsageError(`--backbone must be vilt or meter, got '${backbone}'`);
      let modelOverrides: Record<string, unknown> | undefined;
      if (typeof o['model-config'] === 'string') {
        const v = o['model-config'];
        try { modelOverrides = JSON.parse(v.trim().startsWith('{') ? v : readFileSync(v, 'utf8')) as Record<string, unknown>; } catch (e) { throw new UsageError(`--model-config ${v}: ${(e as Error).message}`); }
        if (!modelOverrides || typeof modelOverrides !== 'object' || Array.isArray(modelOverrides)) throw new UsageError(`--model-config ${v}: expected a JSON object`);
        if (typeof modelOverrides.preset === 'string') {
          if (o.preset !== undefined && o.preset !== modelOverrides.preset) throw new UsageError(`--preset ${String(o.preset)} and --model-config preset '${modelOverrides.preset}' disagree`);
          o.preset = modelOverrides.preset;
          const { preset: _p, ...rest } = modelOverrides;
          modelOverrides = rest;
        }
      }
      const config = o.preset as string | undefined;
      if (config !== undefined && config !== 'tiny' && config !== 'base' && config !== 'synth') throw new UsageError(`--preset must be tiny, base or synth, got '${config}'`);
      if (o.epochs !== undefined && o['max-steps'] !== undefined) throw new UsageError('give either --epochs or --max-steps, not both');
      const method = typeof o.method === 'string' ? o.method : DEFAULT_METHOD;
      if (!isMethodName(method)) throw new UsageError(`unknown method '${method}' (methods: ${METHOD_NAMES.join(', ')})`);
      const progress = new Progress({ mode: progressMode(o.json === true), every: intOpt(o, 'log-every'), metricName: task === 'vqa' ? 'vqa' : task === 'nlvr2' ? 'acc' : 'top1' });
      const out = typeof o.out === 'string' ? o.out : `runs/${backbone}-${task}-${method}`;
      let r;
      try {
        r = await runTrain({
        data, task: task as 'vqa', backbone, config: config as 'tiny' | 'base' | 'synth' | undefined, modelOverrides, method, methodOptions: methodOpts(o.opt, method),
        pretrained: typeof o.pretrained === 'string' ? o.pretrained : undefined,
        epochs: intOpt(o, 'epochs'), maxSteps: intOpt(o, 'max-steps'), batchSize: intOpt(o, 'batch-size'), accumulate: intOpt(o, 'accumulate'),
        lr: numOpt(o, 'lr'), out,
        resume: typeof o.resume === 'string' ? o.resume : undefined, seed: o.seed === undefined ? undefined : intOpt0(o, 'seed'),
        evalEvery: intOpt(o, 'eval-every'), evalEveryEpochs: intOpt(o, 'eval-every-epochs'), vocab: typeof o.vocab === 'string' ? o.vocab : undefined,
        imageSize: intOpt(o, 'image-size'), maxTextLen: intOpt(o, 'max-text-len'), negatives: intOpt(o, 'negatives'), gradClip: numOpt(o, 'grad-clip'),
        randaug: !o['no-randaug'], saveEvery: o['save-every'] === undefined ? undefined : intOpt0(o, 'save-every'),
        log: progress.log, onRecord: (rec) => progress.record(rec), onStart: (info) => progress.setTotal(info.maxSteps),
        onEvalBatch: (d, t) => progress.evalTick(d, t),
        });
      } finally { progress.finish(); }
      let report = '';
      if (!o['no-report']) {
        const { writeReport } = await import('./report.ts');
        report = writeReport([out], join(out, 'report.html'));
      }
      console.log(`wrote ${r.checkpoint} (step ${r.steps}), ${r.metricsFile}, ${join(out, 'run.json')}${report ? ` and ${report}` : ''}${r.eval ? `\neval: ${JSON.stringify(r.eval)}` : ''}`);
      return 0;
    },
  },
  {
    name: 'eval', summary: 'evaluate a method checkpoint on the task\'s eval split',
    usage: 'aptune eval --data DIR --task vqa|nlvr2|irtr --checkpoint FILE [--split val|test] [--submit FILE.json] [--batch-size N] [--vocab FILE] [--out FILE.json]',
    details: [
      'Rebuilds the model from the run config stored in the checkpoint (and its pre-trained file, if any), loads the method',
      'weights and reports VQA score (val), NLVR2 accuracy (dev, test) or F30K TR/IR@1/5/10 (test, every image-caption',
      'pair; each image and each caption is embedded once). Where the VQA tables have a question_types column (the',
      'synthetic ones do) it also reports <type>_vqa_score and <type>_count for each question type.',
      '--submit writes VQA predictions as [{question_id, answer}]',
      '(argmax -> answer; an id outside the vocabulary -> "unknown"), e.g. for the test set:',
      '  aptune eval --data arrows --task vqa --checkpoint run/last.safetensors --split test --submit vqa_submit.json',
    ].join('\n'),
    options: [
      { name: 'data', arg: 'DIR', help: 'directory of the Arrow tables', required: true },
      { name: 'task', arg: 'vqa|nlvr2|irtr', help: 'must match the checkpoint', required: true },
      { name: 'checkpoint', arg: 'FILE', help: 'a method checkpoint written by aptune train', required: true },
      { name: 'batch-size', arg: 'N', help: 'eval batch size (default 32)' },
      { name: 'vocab', arg: 'FILE', help: 'tokenizer vocabulary (default: the one recorded in the checkpoint)' },
      { name: 'out', arg: 'FILE', help: 'also write the metrics as JSON (atomically)', default: 'stdout only' },
      { name: 'split', arg: 'val|test', help: 'tables to evaluate (default val: VQA val, NLVR2 dev + test1, F30K test); VQA test needs --submit' },
      { name: 'submit', arg: 'FILE', help: 'VQA: write the predictions of the split as [{question_id, answer}] JSON (atomically)', default: 'off' },
    ],
    async run(o) {
      const { runEval } = await import('./run.ts');
      for (const k of ['data', 'task', 'checkpoint']) if (typeof o[k] !== 'string') throw new UsageError(`eval needs --${k} (see aptune eval --help)`);
      if (!['vqa', 'nlvr2', 'irtr'].includes(o.task as string)) throw new UsageError(`--task must be vqa, nlvr2 or irtr, got '${String(o.task)}'`);
      const split = o.split === undefined ? undefined : o.split;
      if (split !== undefined && split !== 'val' && split !== 'test') throw new UsageError(`--split must be val or test, got '${String(split)}'`);
      if (o.submit !== undefined && o.task !== 'vqa') throw new UsageError('--submit writes VQA predictions; use it with --task vqa');
      if (o.task === 'vqa' && split === 'test' && typeof o.submit !== 'string') throw new UsageError('the VQA test split has no answers to score: add --submit FILE to write the predictions');
      const progress = new Progress({ mode: progressMode(false) });
      let r;
      try {
        r = await runEval({
          data: o.data as string, task: o.task as 'vqa', checkpoint: o.checkpoint as string, batchSize: intOpt(o, 'batch-size'),
          vocab: typeof o.vocab === 'string' ? o.vocab : undefined, out: typeof o.out === 'string' ? o.out : undefined,
          split, submit: typeof o.submit === 'string' ? o.submit : undefined, log: progress.log, onEvalBatch: (d, t) => progress.evalTick(d, t),
        });
      } finally { progress.finish(); }
      console.log(JSON.stringify(r));
      return 0;
    },
  },
  {
    name: 'compare', summary: 'fine-tune several methods x seeds on synthetic VQA from one backbone; table beside the floors',
    usage: 'aptune compare --data DIR [--pretrained FILE] [--config tiny|synth|base] [--methods apt,lora,..|all] [--seeds 0,1,2] [--steps N] [--batch-size N] [--lr X] [--lr-full X] [--max-text-len N] [--randaug] [--task vqa] [--out DIR [--resume]] [--json]',
    details: [
      'For each method and seed: runTrain from the same backbone (--pretrained, e.g. from `aptune pretrain`), then the VQA',
      'score on the test split (the synthetic vqav2_test has answers). One table: updated params (method modules only),',
      'additional MACs per sample at the run\'s token count (models/accounting.ts convention, shape backend), VQA score',
      'mean and [min - max] over seeds, beside the floors of DIR/report.json (question-type prior = text-only floor,',
      'image-only 5-NN). lr 5e-4 for every PETL method (the reference), 1e-4 for full, VQA head x10; RandAugment off.',
      'Telling methods apart needs a grounded backbone, ~600 steps and >= 3 seeds (shared/reference/synthetic-benchmark.md).',
      '',
      'example:',
      '  aptune compare --data synth --pretrained pre/vilt-synth.safetensors --methods apt,deep_prompt,parallel_adapter,classifier_only --out cmp',
    ].join('\n'),
    options: [
      { name: 'data', arg: 'DIR', help: 'aptune synth output (VQA tables + report.json)', required: true },
      { name: 'pretrained', arg: 'FILE', help: 'backbone every run starts from (default: random init)' },
      { name: 'config', arg: 'tiny|synth|base|FILE.json', help: "model preset (default: the pretrain checkpoint's, else synth); a FILE.json is instead a run configuration: a JSON object of these options" },
      { name: 'methods', arg: 'NAME[,NAME..]|all', help: 'methods to compare (default all)' },
      { name: 'seeds', arg: 'N[,N..]', help: 'seeds (default 0,1,2)' },
      { name: 'steps', arg: 'N', help: 'optimizer steps per run (default 600)' },
      { name: 'batch-size', arg: 'N', help: 'batch size (default 32)' },
      { name: 'lr', arg: 'X', help: 'lr of every method but full (default 5e-4, the reference ViLT PETL lr; head x10)' },
      { name: 'lr-full', arg: 'X', help: 'lr of full fine-tuning (default 1e-4, the original ViLT lr)' },
      { name: 'max-text-len', arg: 'N', help: "text length (default: the pretrain checkpoint's, else 40)" },
      { name: 'randaug', help: 'RandAugment(2, 9) on training images (default off: it changes synthetic answers)' },
      { name: 'task', arg: 'vqa', help: 'the task (only vqa)', default: 'vqa' },
      { name: 'out', arg: 'DIR', help: 'keep runs/<method>-s<seed>/ and write compare.json + compare.txt (atomically)', default: 'print only' },
      { name: 'resume', help: "with --out: a run whose directory holds this very run's checkpoint (same options and run config) resumes from it, a finished one is reused, any other trains afresh (a killed comparison run again goes on where it stopped; the scores are those of an uninterrupted one)", default: 'off: every run trains from the start' },
      JSON_OPT,
    ],
    async run(o) {
      const { compareCommand } = await import('../experiments/compare.ts');
      return compareCommand(o);
    },
  },
  {
    name: 'report', summary: 'write one self-contained HTML report (curves, table, configurations) of run directories',
    usage: 'aptune report RUN_DIR... [--out report.html] [--title TEXT]',
    details: [
      'Reads each RUN_DIR\'s metrics.jsonl and run.json (written by aptune train, and by the runs of aptune compare under',
      'OUT/runs/) and writes ONE HTML file with no script and no network access: training loss, training metric and',
      'evaluation score curves as inline SVG (one line per run), a table of the runs (method, task, score, updated',
      'parameters, additional FLOPs, ms/step, peak memory, wall time) and each run\'s configuration. aptune train writes',
      'OUT/report.html for its own run at the end.',
      '',
      'example:',
      '  aptune report cmp/runs/apt-s0 cmp/runs/lora-s0 --out cmp/report.html',
    ].join('\n'),
    options: [
      { name: 'out', arg: 'FILE', help: 'the HTML file to write (atomically)', default: 'report.html' },
      { name: 'title', arg: 'TEXT', help: 'the page title', default: "'aptune report: ' + the run names" },
    ],
    takesArgs: true,
    async run(o, rest) {
      if (!rest.length) throw new UsageError('report needs at least one RUN_DIR (see aptune report --help)');
      const { writeReport } = await import('./report.ts');
      const out = writeReport(rest, typeof o.out === 'string' ? o.out : 'report.html', { title: typeof o.title === 'string' ? o.title : undefined });
      console.log(`wrote ${out} (${rest.length} run${rest.length === 1 ? '' : 's'})`);
      return 0;
    },
  },
  {
    name: 'build-native', summary: 'build the native addon (CUDA backend) with cmake-js: what npm install does when it runs install scripts',
    usage: 'aptune build-native [--strict]',
    details: [
      'Builds native/ + cuda/ (CMakeLists.txt) with cmake-js into build/Release/aptune_cuda.node inside the aptune package,',
      'where the cuda backend looks for it. Needs cmake, a C++ compiler and nvcc (CUDACXX or PATH); nothing is downloaded.',
      'npm 11 runs a dependency\'s install script only when allowed (npm install-scripts approve aptune), so after',
      '`npm install aptune` on a GPU machine, run `npx aptune build-native`. Environment: APTUNE_CUDA_ARCHS (default',
      '"80;90"), APTUNE_BUILD_JOBS (default 2).',
    ].join('\n'),
    options: [{ name: 'strict', help: 'exit 1 when a tool is missing or the build fails (default: a warning and exit 0)', default: 'off' }],
    async run(o) {
      const { spawnSync } = await import('node:child_process');
      const { existsSync } = await import('node:fs');
      const { fileURLToPath } = await import('node:url');
      const script = ['../scripts/build-native.mjs', '../../scripts/build-native.mjs'].map((u) => fileURLToPath(new URL(u, import.meta.url))).find((f) => existsSync(f));
      if (!script) throw new Error('scripts/build-native.mjs is missing from this aptune installation');
      const r = spawnSync(process.execPath, [script, '--verbose', ...(o.strict ? ['--strict'] : [])], { stdio: 'inherit' });
      return r.status ?? 1;
    },
  },
  {
    name: 'start', summary: 'the main job (npm start): fine-tune APT, deep prompt, LoRA and classifier-only on synthetic VQA from the shipped ViLT; one table',
    usage: 'aptune start [--steps N] [--methods a,b,..] [--seed N] [--out DIR]',
    details: [
      'On the embedded default: the synthetic benchmark (generated into the cache folder, $APTUNE_CACHE or',
      '~/.cache/aptune, in seconds on first use) and the shipped ViLT backbone (pretrained/vilt-synth.safetensors), it',
      'fine-tunes APT, deep prompt, LoRA and classifier-only on synthetic VQA (one seed, live progress on stderr), then',
      'prints one table: VQA score on the test split beside the question-type prior and image-only floors, updated',
      'parameters, additional MACs per sample, measured ms per step and peak memory of each method, and where the runs',
      'were written (each run directory: run.json = resolved config + wall time, metrics.jsonl, last.safetensors).',
      'It is `aptune compare` with these defaults. About 10 minutes on 2 idle cores.',
      '',
      'The full miniature paper table (7 methods x 3 seeds, ViLT on VQA / NLVR2 / retrieval and METER on VQA, learning',
      'rate per method from one grid) is `aptune table --mini --seeds 0,1,2 --out results/` (hours on 2 cores).',
    ].join('\n'),
    options: [
      { name: 'steps', arg: 'N', help: 'optimizer steps per method', default: '400' },
      { name: 'methods', arg: 'LIST', help: 'methods', default: 'apt,deep_prompt,lora,classifier_only' },
      { name: 'seed', arg: 'N', help: 'seed', default: '0' },
      { name: 'out', arg: 'DIR', help: 'where runs and compare.json go', default: 'runs/start' },
    ],
    async run(o) {
      // No shipped backbone yet (none has passed the pre-training gates): say so, with the command that makes one, and
      // show what needs no backbone (the paper's accounting), instead of failing the new user's first command.
      const { pretrainedPath } = await import('./pretrained.ts');
      try { pretrainedPath('synth', 'vilt'); } catch (e) {
        console.error(`aptune start: no shipped ViLT backbone, so nothing is fine-tuned: ${(e as Error).message}.\nUntil one ships, npm start prints the accounting table of the paper (updated parameters, additional FLOPs):\n`);
        return accounting({}, ['params', 'flops']);
      }
      const { runStart } = await import('../experiments/start.ts');
      return runStart({
        steps: intOpt(o, 'steps'), methods: typeof o.methods === 'string' ? o.methods : undefined,
        seed: o.seed === undefined ? undefined : intOpt0(o, 'seed'), out: typeof o.out === 'string' ? o.out : undefined,
        progress: progressMode(false),
      });
    },
  },
];

function helpText(cmd?: Command): string {
  if (cmd) {
    const lines = [`${cmd.summary}\n\nusage: ${cmd.usage}`];
    if (cmd.details) lines.push(`\n${cmd.details}`);
    lines.push('\noptions:');
    const opts = cmd.passthrough ? cmd.options : [...cmd.options, ...(cmd.options.some((o) => o.name === 'config') ? [] : [RUN_CONFIG_OPT])];
    for (const o of opts) {
      const note = o.required ? ' (required)' : o.default !== undefined && !/\bdefault\b/.test(o.help) ? ` (default: ${o.default})` : '';
      lines.push(`  --${o.name}${o.arg ? ' ' + o.arg : ''}\n      ${o.help}${note}`);
    }
    lines.push('  -h, --help\n      this help');
    if (cmd.options === ACCOUNT_OPTS) lines.push(`\nmethods: ${ACCOUNT_METHODS.join(', ')}`, `\nconvention: ${CONVENTION}`);
    return lines.join('\n');
  }
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return ['aptune: Approximated Prompt Tuning (APT) and parameter-efficient tuning of ViLT and METER', '', 'usage: aptune <command> [options]', '', 'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`), `  ${'help'.padEnd(w)}  help on a command (aptune help <command>)`, '', 'Each command takes --help.'].join('\n');
}

/** Runs the CLI; returns the exit status (0 ok, 1 failure, 2 usage error). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  try {
    if (!name || name === '-h' || name === '--help') { console.log(helpText()); return name ? 0 : 2; }
    if (name === 'help') {
      const c = args[0] ? COMMANDS.find((x) => x.name === args[0]) : undefined;
      if (args[0] && !c) throw new UsageError(`unknown command '${args[0]}'`);
      console.log(helpText(c));
      return 0;
    }
    const cmd = COMMANDS.find((c) => c.name === name);
    if (!cmd) throw new UsageError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
    if (cmd.passthrough) return await cmd.run({}, args); // the command parses its own options and --help
    const { opts, rest } = parseArgs(cmd, args);
    if (opts.help) { console.log(helpText(cmd)); return 0; }
    if (rest.length && !cmd.takesArgs) throw new UsageError(`unexpected argument '${rest[0]}' for 'aptune ${cmd.name}'`);
    return await cmd.run(opts, rest);
  } catch (e) {
    if (e instanceof UsageError) { console.error(`aptune: ${e.message}`); return 2; }
    console.error(`aptune: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.APTUNE_DEBUG && e instanceof Error) console.error(e.stack);
    return 1;
  }
}

/** A closed pipe (`aptune table | head`) ends the command quietly instead of crashing. */
export function quietOnClosedPipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  quietOnClosedPipe();
  process.exitCode = await main(process.argv.slice(2));
}
