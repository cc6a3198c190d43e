// `npm run fuzz -- [--cases N] [--seed S] [--format F,..] [--timeout MS] [--rss MB]`: the crafted hostile cases
// plus N seeded random mutations per format (default 1000), each in a limited child process (test/fuzz/harness.ts);
// prints the counts per format and outcome and every failure (unnamed error, silent acceptance, crash, hang,
// memory), and exits non-zero if there was any.
import { FAILURES, FORMATS, craftedCases, makeBases, mutationCases, runCases, tally, type Format } from './harness.ts';

const args = process.argv.slice(2);
const opt = (k: string, d: string) => { const i = args.indexOf(`--${k}`); return i >= 0 && args[i + 1] ? args[i + 1] : d; };
const n = Number(opt('cases', '1000')), seed = Number(opt('seed', '1'));
const formats = opt('format', FORMATS.join(',')).split(',') as Format[];
for (const f of formats) if (!FORMATS.includes(f)) { console.error(`unknown format ${f} (formats: ${FORMATS.join(', ')})`); process.exit(2); }
const t0 = Date.now();
const bases = await makeBases();
const crafted = (await craftedCases(bases)).filter((c) => formats.includes(c.format));
const cases = [...crafted, ...mutationCases(bases, formats, n, seed)];
let done = 0;
const results = await runCases(cases, bases, {
  timeoutMs: Number(opt('timeout', '10000')), rssLimitMb: Number(opt('rss', '1024')),
  onResult: (r) => {
    done++;
    if (FAILURES.includes(r.outcome)) console.log(`FAIL ${r.outcome}: ${r.c.name}: ${r.detail}`);
    if (done % 500 === 0) console.error(`${done}/${cases.length} cases, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  },
});
const t = tally(results);
console.log(`\n${crafted.length} crafted + ${n} mutations per format, seed ${seed}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(['format', 'same', 'changed', 'refused', 'unnamed', 'silent', 'crash', 'hang', 'memory'].map((s) => s.padStart(12)).join(''));
for (const [f, row] of Object.entries(t)) console.log([f, ...Object.values(row).map(String)].map((s) => s.padStart(12)).join(''));
const slow = [...results].sort((a, b) => b.ms - a.ms)[0];
if (slow) console.log(`slowest case: ${slow.c.name} ${slow.ms} ms`);
const bad = results.filter((r) => FAILURES.includes(r.outcome)).length;
console.log(bad ? `${bad} failure(s)` : 'no failures');
process.exit(bad ? 1 : 0);
