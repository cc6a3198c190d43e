// The seeded fuzz suite of the loaders (test/fuzz/harness.ts), small enough for every `npm test`: every crafted
// hostile case (negative pickle lengths, expansion bombs, bad strides, zip inflation beyond the declared size,
// legacy torch.save damage, each safetensors rule, Arrow footer / offsets / UTF-8 / int64, image dimensions) must
// be refused with its named error, and 40 random mutations per format must end read or refused-with-the-file-named:
// no crash, hang, memory blow-up, silent acceptance or anonymous error. Each case runs in a child process with a
// heap limit, an RSS watchdog and a timeout; the self-test cases prove those limits catch what they should.
// `npm run fuzz -- --cases N` runs the same with thousands of mutations.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAILURES, FORMATS, craftedCases, makeBases, mutationCases, runCases, selfTestCase, tally } from '../fuzz/harness.ts';

test('the limits catch a hang, a memory blow-up and an error that names nothing', async () => {
  const bases = await makeBases();
  const h = await runCases([selfTestCase('hang')], bases, { timeoutMs: 2000 });
  const r = await runCases([selfTestCase('memory'), selfTestCase('unnamed')], bases, { timeoutMs: 30_000, rssLimitMb: 400 });
  assert.equal([...h, ...r].map((x) => x.outcome), ['hang', 'memory', 'unnamed'], [...h, ...r].map((x) => x.detail).join(' | '));
});

test('crafted hostile inputs are refused with named errors; 40 seeded mutations per format never crash, hang or pass silently', async () => {
  const bases = await makeBases();
  const crafted = await craftedCases(bases);
  assert.ok(crafted.length >= 40, `${crafted.length} crafted cases`);
  const results = await runCases([...crafted, ...mutationCases(bases, FORMATS, 40, 20261204)], bases, { timeoutMs: 10_000, rssLimitMb: 1024 });
  const bad = results.filter((r) => FAILURES.includes(r.outcome) || (r.c.expect && r.outcome !== 'refused'));
  assert.is(bad.length, 0, bad.slice(0, 8).map((r) => `${r.outcome}: ${r.c.name}: ${r.detail}`).join('\n'));
  const t = tally(results);
  for (const f of FORMATS) assert.ok(t[f].refused > 0, `${f}: some mutations are refused`);
});

test.run();
